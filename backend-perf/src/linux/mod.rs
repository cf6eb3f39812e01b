//! The Linux recorder: places the probes, follows the target, reads the ring buffers in time
//! order and feeds every record to the interpreter (and to a raw capture, if asked); at the
//! end, reads the kernel's counters of every event so that the loss accounting is exact.

mod discover;
mod events;
mod follow;
mod resolve;
pub mod spawn;
mod stopper;
mod uprobes;

use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use allocflame_core::probes::{catalog, Platform};
use allocflame_core::source::{ProgramExit, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

use crate::capture::{CaptureWriter, End};
use crate::interpret::{Interpreter, Setup, MAX_STACK_BYTES};
use crate::objects::Opener;
use crate::procfs;
use crate::record::{self, Layout, Synthetic};
use crate::PerfSource;
use events::Ring;
use follow::Shared;

fn online_cpus() -> Vec<i32> {
    let parse = |text: &str| -> Vec<i32> {
        let mut out = Vec::new();
        for part in text.trim().split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                        out.extend(a..=b);
                    }
                }
                None => out.extend(part.parse::<i32>().ok()),
            }
        }
        out
    };
    match std::fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(t) if !parse(&t).is_empty() => parse(&t),
        _ => {
            // SAFETY: sysconf has no preconditions.
            let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
            (0..n as i32).collect()
        }
    }
}

fn alive(pid: u32) -> bool {
    procfs::alive(pid)
}

/// Live files: the file the tracer opened while the process lived (same device and inode),
/// else the path if it is still the file the kernel mapped, else the mapping itself through
/// `/proc/PID/map_files` or the path in the process's root while the process lives.
struct LiveOpener(Arc<Shared>);

impl Opener for LiveOpener {
    fn open(
        &mut self,
        pid: u32,
        path: &Path,
        inode: Option<(u64, u64)>,
        range: (u64, u64),
    ) -> std::result::Result<std::fs::File, String> {
        let held = inode.and_then(|i| self.0.files.lock().ok()?.get(&i)?.try_clone().ok());
        if let Some(f) = held {
            return Ok(f);
        }
        let in_root = || std::fs::File::open(format!("/proc/{pid}/root{}", path.display())).ok();
        let by_path = std::fs::File::open(path).ok();
        if let Some(f) = by_path {
            if inode.is_none() || procfs::inode_of(&f) == inode {
                return Ok(f);
            }
        }
        if let Some(f) = procfs::map_file(pid, range.0, range.1)
            .ok()
            .or_else(in_root)
        {
            if inode.is_none() || procfs::inode_of(&f) == inode {
                return Ok(f);
            }
        }
        Err(format!(
            "{} was replaced (or removed) before its mapping in pid {pid} could be read: its frames are left unnamed",
            path.display()
        ))
    }
}

/// The stack copied per allocation when stacks are kept: what Debian's python3, perl, git and
/// cc1 need for complete stacks (python3 running a small JSON script needs more than 16 KiB).
/// A copy that reaches the end of the stack's memory stops there.
pub(crate) const DEFAULT_STACK_BYTES: u32 = 32 << 10;

/// Lets this process hold one fd per (probe, task, CPU).
fn raise_fd_limit() {
    // SAFETY: reading and raising our own soft limit up to the hard limit.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Records `target`.
pub(crate) fn record(
    source: &PerfSource,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let mut report = RecordReport::new("perf", options.probes.len());
    let t0 = Instant::now();
    let timing = std::env::var_os("ALLOCFLAME_TIMING").is_some();
    let phase = |what: &str| {
        if timing {
            eprintln!(
                "allocflame: timing: {what} at {:.3} s",
                t0.elapsed().as_secs_f64()
            );
        }
    };
    let pmu = events::uprobe_pmu_type()?;
    let uprobes = Arc::new(uprobes::Uprobes::new(pmu));
    let stack_bytes = source
        .stack_bytes
        .unwrap_or(if options.stacks {
            DEFAULT_STACK_BYTES
        } else {
            1024
        })
        .clamp(64, MAX_STACK_BYTES)
        & !7;
    let buffer_bytes = source.buffer_bytes.unwrap_or(64 << 20);
    // A buffer holds a few samples at least.
    let fit = ((buffer_bytes / 4) as u32).clamp(64, MAX_STACK_BYTES) & !7;
    let stack_bytes = if stack_bytes > fit {
        report.notes.push(format!(
            "the stack copy is {fit} bytes, what a {} KiB buffer holds four of",
            buffer_bytes / 1024
        ));
        fit
    } else {
        stack_bytes
    };
    // Opt-in: the kernel's frame-pointer callchain continues a stack past the copied bytes
    // (it costs ~0.8 µs per allocation here, as much as the rest of the sample).
    let max_callchain = if options.stacks && source.kernel_callchain {
        let sysctl = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(127);
        options.max_depth.min(sysctl).clamp(1, u16::MAX as usize) as u16
    } else {
        0
    };
    let layout = Layout::new(stack_bytes, max_callchain > 0);
    let builtin = catalog(Platform::current());
    let user_probe: Vec<bool> = options
        .probes
        .iter()
        .map(|p| !builtin.contains(p))
        .collect();

    let (start, pid_hint, comm, duration) = match target {
        Target::Spawn { argv } => {
            let Some(program) = argv.first() else {
                return Err(Error::Invalid("no program given to record".into()));
            };
            let path = spawn::resolve_program(program)?;
            let comm = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                follow::Start::Spawn {
                    program: path,
                    argv: argv.clone(),
                },
                None,
                comm,
                None,
            )
        }
        Target::Attach { pid, duration } => {
            if !alive(*pid) {
                return Err(Error::Invalid(format!(
                    "no process {pid} (check the pid with `pgrep`)"
                )));
            }
            let comm = procfs::comm(*pid).unwrap_or_else(|| format!("pid {pid}"));
            // Checked now: the deadline itself is set once the probes are in place.
            if let Some(d) = duration {
                if Instant::now().checked_add(*d).is_none() {
                    return Err(Error::Invalid(format!(
                        "--duration {} s is too long",
                        d.as_secs_f64()
                    )));
                }
            }
            (
                follow::Start::Attach { pid: *pid },
                Some(*pid),
                comm,
                *duration,
            )
        }
    };
    let locs = resolve::locate(&options.probes, &user_probe, pid_hint, &mut report.notes)?;
    if locs.is_empty() {
        return Err(Error::Invalid(
            "none of the probes could be placed (see the notes above)".into(),
        ));
    }
    phase("probes located");
    raise_fd_limit();
    let cpus = online_cpus();
    let brake = match stopper::Brake::load(&cpus) {
        Ok(b) => Some(Arc::new(b)),
        Err(why) => {
            report.notes.push(format!(
                "no kernel-side brake ({why}): a reader that falls behind is caught by allocflame's tracer thread alone"
            ));
            None
        }
    };
    let params = follow::EventParams {
        uprobes: uprobes.clone(),
        open_paths: locs.iter().map(|l| l.path.clone()).collect(),
        probes: options.probes.clone(),
        user_probe: user_probe.clone(),
        start_disabled: false,
        gauges: Vec::new(),
        locs: locs.clone(),
        layout,
        max_callchain,
        buffer_bytes,
        cpus: cpus.clone(),
        brake: brake.clone(),
        follow_children: options.follow_children,
    };
    let shared = Arc::new(Shared::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let tracer_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("allocflame-ptrace".into())
            .spawn(move || follow::tracer_thread(start, params, shared, tx))
            .map_err(|e| Error::os("cannot start the tracer thread", e))?
    };
    let started = match rx.recv() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let fds = tracer_thread.join().unwrap_or_default();
            uprobes.release(fds, Vec::new());
            return Err(e);
        }
        Err(_) => {
            let fds = tracer_thread.join().unwrap_or_default();
            uprobes.release(fds, Vec::new());
            return Err(Error::Backend(
                "the tracer thread ended unexpectedly".into(),
            ));
        }
    };
    let main_pid = started.main_pid;
    let mut rings = started.rings;
    if let Some(ready) = &source.ready {
        ready.store(true, Ordering::Release);
    }
    // An attach's duration counts from when its probes are in place.
    let deadline = duration.and_then(|d| Instant::now().checked_add(d));
    phase("events open, program started");
    let setup = Setup {
        probes: options.probes.iter().map(|p| p.to_string()).collect(),
        locations: locs,
        layout,
        main_pid,
        comm,
        stacks: options.stacks,
        max_depth: options.max_depth,
        adaptive: options.stacks && source.stack_bytes.is_none(),
    };
    let capture = match &source.save_raw {
        Some(path) => match CaptureWriter::create(path, &setup) {
            Ok(c) => Some(c),
            Err(e) => {
                report.notes.push(format!("no raw capture is saved: {e}"));
                None
            }
        },
        None => None,
    };
    let mut live = Live {
        interp: Interpreter::new(setup, Box::new(LiveOpener(shared.clone())))?,
        capture,
        shared: shared.clone(),
        timed: Vec::new(),
        progress: source.progress.clone(),
        brake: brake.map(|b| (b, cpus)),
    };
    let attach = pid_hint.is_some();
    let mut gone = false;
    let mut told_children = false;
    let program = live.interp.setup().comm.clone();
    // The calling thread reads; it gets its own scheduling back when the reading is done.
    let before = (!source.keep_priority).then(run_ahead);
    let interrupted = run_loop(&mut live, &mut rings, options, || {
        if attach {
            gone = !alive(main_pid);
            gone || deadline.is_some_and(|d| Instant::now() >= d)
        } else {
            // The program and every process it started that we follow: a child that outlives
            // its parent is recorded to its end.
            let main_done = shared.main_exit.lock().map(|e| e.is_some()).unwrap_or(true);
            let live_tasks = shared.live.load(Ordering::Relaxed);
            if main_done && live_tasks > 0 && !told_children {
                told_children = true;
                // Not eprintln!, which panics when stderr is a closed pipe.
                let _ = writeln!(
                    std::io::stderr(),
                    "allocflame: {program} exited; recording the processes it started until they exit (Ctrl-C stops)"
                );
            }
            main_done && live_tasks == 0
        }
    });
    phase("target done");
    shared.quit.store(true, Ordering::Relaxed);
    let event_fds = tracer_thread.join().unwrap_or_default();
    phase("ptrace thread done, tracees detached");
    // No more hits from here on (an attached target keeps running): the counters read below
    // then match what the buffers hold.
    for fd in &event_fds {
        events::disable(fd);
    }
    // Records written while the tracer thread wound down (a stopped program's last words).
    live.drain(&mut rings, u64::MAX);
    if let Some(before) = before {
        before.restore();
    }
    live.counters(&event_fds);
    phase("buffers drained, counters read");
    // No breakpoint of ours is left in any process after this; what the kernel still has to
    // do (a few grace periods per probe) happens in the background (see `uprobes.rs`).
    uprobes.release(event_fds, rings);
    phase("probes released");
    report.notes.extend(uprobes.notes());
    if let Ok(mut n) = shared.notes.lock() {
        report.notes.append(&mut n);
    }
    report.interrupted = interrupted;
    if attach {
        if gone {
            report
                .notes
                .push(format!("process {main_pid} exited during the recording"));
        }
        report.attached_exit = shared.main_exit.lock().ok().and_then(|e| *e);
    } else {
        let exit = shared.main_exit.lock().ok().and_then(|e| *e);
        report.set_exit(exit);
        if let Some(killed @ ProgramExit::Signal(_)) = exit.filter(|_| !interrupted) {
            report.notes.push(format!(
                "the program {killed}; the results cover its run until then"
            ));
            report.interrupted = true;
        }
    }
    if let Some(c) = live.capture.take() {
        let end = End {
            exit_code: report.exit_code,
            signal: report.signal,
            interrupted: report.interrupted,
            notes: report.notes.clone(),
        };
        if let Some(e) = c.finish(&end) {
            report.notes.push(e);
        }
    }
    live.interp.finish(&mut report, sink);
    phase("stacks handed over");
    Ok(report)
}

/// The reader's side of a live recording: the interpreter, the capture, and what the tracer
/// thread tells it.
struct Live<'o> {
    interp: Interpreter<'o>,
    capture: Option<CaptureWriter>,
    shared: Arc<Shared>,
    /// Timed records taken from `shared`, oldest first.
    timed: Vec<(u64, Synthetic)>,
    progress: Option<Arc<AtomicU64>>,
    /// The brake, and the CPU of each buffer, for telling it what was read.
    brake: Option<(Arc<stopper::Brake>, Vec<i32>)>,
}

impl Live<'_> {
    /// Tells the brake what is left to read in each buffer.
    fn sync_brake(&self, rings: &[Ring]) {
        if let Some((brake, cpus)) = &self.brake {
            for (r, &cpu) in rings.iter().zip(cpus) {
                brake.sync(cpu, r.unread());
            }
        }
    }

    fn synthetic(&mut self, s: Synthetic) {
        self.interp.synthetic(&s);
        self.flush_outbox();
        if let Some(c) = &mut self.capture {
            c.synthetic(&s);
        }
    }

    /// Hands over what the tracer thread queued without a time (event ids, untraced tasks).
    fn take_untimed(&mut self) {
        let untimed = self
            .shared
            .untimed
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        for s in untimed {
            self.synthetic(s);
        }
    }

    /// What the interpreter produced goes into the capture before the record that caused it.
    fn flush_outbox(&mut self) {
        if self.interp.outbox.is_empty() {
            return;
        }
        let out = std::mem::take(&mut self.interp.outbox);
        if let Some(c) = &mut self.capture {
            for s in &out {
                c.synthetic(s);
            }
        }
    }

    /// Handles every record stamped before `until`, merging the per-CPU buffers and the
    /// tracer thread's timed records in time order.
    ///
    /// Everything stamped before `until` (taken before the heads are loaded) is already in the
    /// buffers: a thread's records are written in order, with preemption off, so a thread
    /// that moved to another CPU finished writing on the first before it stamped on the next.
    fn drain(&mut self, rings: &mut [Ring], until: u64) {
        for r in rings.iter_mut() {
            r.load_head();
        }
        // Ids of tasks whose records may be in this batch were queued before those tasks ran.
        self.take_untimed();
        if let Ok(mut q) = self.shared.timed.lock() {
            self.timed.append(&mut q);
        }
        self.timed.sort_by_key(|(t, _)| *t);
        let mut timed = std::mem::take(&mut self.timed).into_iter().peekable();
        let mut read = 0u32;
        loop {
            let mut best: Option<(usize, u64)> = None;
            for (i, r) in rings.iter_mut().enumerate() {
                if let Some(rec) = r.peek() {
                    let t = record::record_time(rec);
                    if t < until && best.map_or(true, |(_, bt)| t < bt) {
                        best = Some((i, t));
                    }
                }
            }
            if let Some(&(t, _)) = timed.peek() {
                if t < until && best.map_or(true, |(_, bt)| t <= bt) {
                    if let Some((_, s)) = timed.next() {
                        self.synthetic(s);
                    }
                    continue;
                }
            }
            let Some((i, _)) = best else { break };
            if let Some(rec) = rings[i].peek() {
                // The record is borrowed from the ring; handle it before releasing it.
                let rec: &[u8] = rec;
                self.interp.ring_record(rec);
                self.flush_outbox();
                if let Some(c) = &mut self.capture {
                    // Of a sample's stack copy, the capture keeps what the unwinder read.
                    let trimmed = self
                        .interp
                        .last_stack
                        .and_then(|(at, used, short)| record::trim_stack(rec, at, used, short));
                    c.ring(trimmed.as_deref().unwrap_or(rec));
                }
            }
            rings[i].consume();
            read += 1;
            if read % 256 == 0 {
                self.sync_brake(rings);
            }
        }
        self.sync_brake(rings);
        self.timed.extend(timed);
        if !self.interp.resize.is_empty() {
            if let Ok(mut q) = self.shared.resize.lock() {
                q.append(&mut self.interp.resize);
            }
        }
        if let Some(p) = &self.progress {
            p.store(self.interp.counted(), Ordering::Relaxed);
        }
    }

    /// Reads every event's counter: hits and lost samples per location, lost side records.
    fn counters(&mut self, fds: &[OwnedFd]) {
        self.take_untimed();
        let n = self.interp.setup().locations.len();
        let mut per_location = vec![(0u64, 0u64); n];
        let mut side_lost = 0;
        let mut unread = 0;
        for fd in fds {
            match events::read_counter(fd) {
                Some((hits, id, lost)) => {
                    if let Some(loc) = self.interp.location_of(id) {
                        per_location[loc].0 += hits;
                        per_location[loc].1 += lost;
                    } else if self.interp.is_side_event(id) {
                        side_lost += lost;
                    }
                }
                None => unread += 1,
            }
        }
        // Without per-event lost counts (Linux < 6.0) or with counters that could not be
        // read, the interpreter falls back on the buffers' PERF_RECORD_LOST records.
        if events::counts_lost() && unread == 0 {
            self.synthetic(Synthetic::Counters {
                per_location,
                side_lost,
            });
        }
    }
}

/// A thread's scheduling policy, priority and nice value, to put back.
struct Scheduling {
    tid: libc::pid_t,
    policy: libc::c_int,
    param: libc::sched_param,
    nice: libc::c_int,
}

impl Scheduling {
    fn restore(self) {
        // SAFETY: scheduling calls on the thread this was read from (the caller's own).
        unsafe {
            libc::sched_setscheduler(self.tid, self.policy, &self.param);
            libc::setpriority(libc::PRIO_PROCESS, self.tid as libc::id_t, self.nice);
        }
    }
}

/// The reader must keep up with the target to lose nothing, also on a loaded machine: as
/// root, the calling thread (only it: the target was forked before) runs at the lowest
/// real-time priority, ahead of every ordinary process but asleep whenever the buffers are
/// empty; else at nice -10. Failing is harmless (losses are counted either way). Returns the
/// thread's scheduling before, which the caller restores: what it does after the recording
/// (symbolizing, rendering) must not run at real-time priority.
fn run_ahead() -> Scheduling {
    // SAFETY: scheduling calls on our own thread id; the out-parameters are valid.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let mut before = Scheduling {
            tid,
            policy: libc::sched_getscheduler(tid).max(0),
            param: libc::sched_param { sched_priority: 0 },
            nice: 0,
        };
        libc::sched_getparam(tid, &mut before.param);
        *libc::__errno_location() = 0;
        before.nice = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        let param = libc::sched_param { sched_priority: 1 };
        if libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10);
        }
        before
    }
}

/// Reads the ring buffers until `done` says the target is finished or the user stops; returns
/// whether the user stopped it.
fn run_loop(
    live: &mut Live<'_>,
    rings: &mut [Ring],
    options: &RecordOptions,
    mut done: impl FnMut() -> bool,
) -> bool {
    let mut pollfds: Vec<libc::pollfd> = rings
        .iter()
        .map(|r| libc::pollfd {
            fd: r.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let finished = done();
        let stop = options.stop.load(Ordering::Relaxed);
        live.drain(rings, events::now_ns());
        if finished || stop {
            live.drain(rings, u64::MAX);
            break stop && !finished;
        }
        // SAFETY: polling fds we own.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 5) };
        if n > 0
            && pollfds
                .iter()
                .any(|p| p.revents & (libc::POLLHUP | libc::POLLERR) != 0)
        {
            // A buffer whose events all ended reports POLLHUP forever: stop polling it, or
            // this loop would spin and starve the ptrace thread that notices the exit.
            for p in pollfds.iter_mut() {
                if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    p.fd = -1;
                }
            }
        }
        if pollfds.iter().all(|p| p.fd < 0) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}
