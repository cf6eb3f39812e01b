//! The Linux recorder: places the probes, follows the target, reads the ring buffers in time
//! order, unwinds and aggregates each allocation by (process, probe, normalized stack).

mod events;
mod follow;
mod process;
mod resolve;
mod spawn;
mod tracer;

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use allocflame_core::probes::{catalog, Platform};
use allocflame_core::source::{RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

use crate::PerfSource;
use events::Ring;
use tracer::Tracer;

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
    // A zombie still has /proc/PID; its state says so.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `path` is an ELF executable without a dynamic loader (a static binary).
fn is_static(path: &std::path::Path) -> bool {
    use object::Object;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: read-only mapping of a file we only parse.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return false;
    };
    match object::File::parse(&map[..]) {
        Ok(obj) => {
            obj.section_by_name(".interp").is_none() && obj.kind() == object::ObjectKind::Executable
        }
        Err(_) => false,
    }
}

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
    let stack_bytes = source
        .stack_bytes
        .unwrap_or(if options.stacks { 2048 } else { 1024 })
        .clamp(64, 65528)
        & !7;
    let buffer_bytes = source.buffer_bytes.unwrap_or(64 << 20);
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
    let builtin = catalog(Platform::current());
    let user_probe: Vec<bool> = options
        .probes
        .iter()
        .map(|p| !builtin.contains(p))
        .collect();

    let (start, pid_hint, comm, deadline) = match target {
        Target::Spawn { argv } => {
            let Some(program) = argv.first() else {
                return Err(Error::Invalid("no program given to record".into()));
            };
            let path = spawn::resolve_program(program)?;
            if is_static(&path) && options.probes.iter().any(|p| builtin.contains(p)) {
                report.notes.push(format!(
                    "{} is statically linked: the system allocator is not in it; probe its own with --only-probes --probe {}:malloc:0 (and calloc, realloc, …)",
                    path.display(),
                    path.display()
                ));
            }
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
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| format!("pid {pid}"));
            (
                follow::Start::Attach { pid: *pid },
                Some(*pid),
                comm,
                duration.map(|d| Instant::now() + d),
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
    let params = follow::EventParams {
        pmu,
        locs: locs.clone(),
        stack_bytes,
        max_callchain,
        buffer_bytes,
        cpus: online_cpus(),
        follow_children: options.follow_children,
    };
    let shared = Arc::new(follow::Shared::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let tracer_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("allocflame-ptrace".into())
            .spawn(move || follow::tracer_thread(start, params, shared, tx))
            .map_err(|e| Error::Backend(format!("cannot start the tracer thread: {e}")))?
    };
    let (mut rings, main_pid) = match rx.recv() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let _ = tracer_thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = tracer_thread.join();
            return Err(Error::Backend(
                "the tracer thread ended unexpectedly".into(),
            ));
        }
    };
    phase("events open, program started");
    let mut tracer = Tracer::new(
        options,
        locs,
        shared.clone(),
        main_pid,
        comm,
        max_callchain > 0,
    );
    tracer.progress = source.progress.clone();
    let attach = pid_hint.is_some();
    if attach {
        tracer.seed_maps(main_pid);
    }
    let mut gone = false;
    let interrupted = run_loop(&mut tracer, &mut rings, options, || {
        if attach {
            gone = !alive(main_pid);
            gone || deadline.is_some_and(|d| Instant::now() >= d)
        } else {
            shared.main_exit.lock().map(|e| e.is_some()).unwrap_or(true)
        }
    });
    phase("target done");
    shared.quit.store(true, Ordering::Relaxed);
    let event_fds = tracer_thread.join().ok().flatten().unwrap_or_default();
    phase("ptrace thread done, tracees detached");
    // Records written while the tracer thread wound down (a stopped program's last words).
    tracer.drain(&mut rings, u64::MAX);
    // The probes go away in the background (their release is slow; see `events.rs`).
    events::release_in_background(event_fds, rings);
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
    } else {
        report.exit_code = shared.main_exit.lock().ok().and_then(|e| *e);
        if let Some(c) = report.exit_code.filter(|&c| c > 128 && !interrupted) {
            report.notes.push(format!(
                "the program was killed by signal {}; the results cover its run until then",
                c - 128
            ));
            report.interrupted = true;
        }
    }
    tracer.finish(&mut report, sink);
    phase("probes released, stacks handed over");
    Ok(report)
}

/// Reads the ring buffers until `done` says the target is finished or the user stops; returns
/// whether the user stopped it.
fn run_loop(
    tracer: &mut Tracer,
    rings: &mut [Ring],
    options: &RecordOptions,
    mut done: impl FnMut() -> bool,
) -> bool {
    // The reader must keep up with the target to lose nothing: as root, run this thread (only
    // it: the target was forked before) ahead of ordinary processes. Failing is harmless.
    // SAFETY: setpriority on our own thread id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -10);
    }
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
        // Everything stamped before now is already in the buffers (a thread's next record
        // can only follow its previous one), so records are merged in time order up to now.
        tracer.drain(rings, events::now_ns());
        if finished || stop {
            tracer.drain(rings, u64::MAX);
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
