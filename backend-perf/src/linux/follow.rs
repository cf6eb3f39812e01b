//! Following the target's threads and children with ptrace, so each new task gets its events
//! before it runs a single instruction (see `events.rs` for why `inherit` cannot be used).
//!
//! All ptrace calls come from one thread, the tracer thread. It never stops a task itself:
//! tasks are seized (`PTRACE_SEIZE`, no SIGSTOP) and only new tasks pause, at their creation,
//! until their events are open. When the tracer thread ends (normally, or because allocflame is
//! killed, even by SIGKILL), the kernel detaches every tracee and lets it run on.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allocflame_core::source::ProgramExit;
use allocflame_core::{Error, Result};
use rustc_hash::{FxHashMap, FxHashSet};

use super::discover::{DebugState, Discovery, Scan};
use super::events::{self, EventSpec, Gauge, Ring};
use super::spawn;
use super::stopper::{Brake, Stopper};
use super::uprobes::Attach;
use crate::interpret::Location;
use crate::procfs;
use crate::record::{Layout, Synthetic};

/// How events are opened for a task.
#[derive(Clone)]
pub(crate) struct EventParams {
    pub uprobes: Arc<super::uprobes::Uprobes>,
    /// The probe locations: those found before the start, then those found in what the
    /// target maps.
    pub locs: Vec<Location>,
    /// Per location, the path its events are opened by (a held file for a found one).
    pub open_paths: Vec<std::path::PathBuf>,
    pub layout: Layout,
    pub max_callchain: u16,
    pub buffer_bytes: usize,
    pub cpus: Vec<i32>,
    /// Whether forked children are followed (threads always are).
    pub follow_children: bool,
    /// The probes, and which of them are the user's (placed only in a library of their name).
    pub probes: Vec<allocflame_core::probes::Probe>,
    pub user_probe: Vec<bool>,
    /// How full each CPU's buffer is (set once they are open), for pausing the program.
    pub gauges: Vec<Gauge>,
    /// The kernel-side brake on every allocation event, where BPF allows it.
    pub brake: Option<Arc<Brake>>,
    /// Whether uprobe events are opened disabled (while an attach opens those of every
    /// thread: they start together, and nothing fills the buffers before the reader runs).
    pub start_disabled: bool,
}

/// What the tracer learns of the allocators the target maps.
struct Allocators {
    discovery: Discovery,
    /// Per process (thread group): its dynamic linker's `_dl_debug_state`.
    traps: FxHashMap<i32, DebugState>,
    /// The process a new task was created by, until its first stop.
    parent: FxHashMap<i32, i32>,
    /// Processes whose tasks could not be given a stop at the dynamic linker (noted once).
    untrapped: FxHashSet<i32>,
    /// The BPF program that stops a task at its dynamic linker only while it is traced.
    stopper: Option<Stopper>,
    /// Whether, without it, tasks are stopped by a perf `sigtrap` event: only for a program we
    /// start. Were allocflame killed by SIGKILL, such events could outlive the ptrace link by
    /// the time their release takes, and a dlopen then would kill the task: a running process
    /// one attaches to must never risk that.
    sigtrap_stops: bool,
}

/// Whether the signal stop of `tid` is our own stop at its dynamic linker: TRAP_PERF with our
/// `sig_data`, or the BPF program's SIGTRAP (SI_KERNEL) with the task inside the dynamic
/// linker's code (`text`).
fn is_our_trap(tid: i32, text: Option<&[(u64, u64)]>) -> bool {
    let Some(info) = ptrace_get::<libc::siginfo_t>(libc::PTRACE_GETSIGINFO, tid) else {
        return false;
    };
    if info.si_signo != libc::SIGTRAP {
        return false;
    }
    if info.si_code == libc::SI_KERNEL {
        let Some(text) = text else { return false };
        let regs = ptrace_get::<libc::user_regs_struct>(libc::PTRACE_GETREGS, tid);
        return regs.is_some_and(|r| text.iter().any(|&(s, e)| r.rip >= s && r.rip < e));
    }
    if info.si_code != TRAP_PERF {
        return false;
    }
    // si_perf_data follows si_addr: the fourth word of the siginfo.
    // SAFETY: siginfo_t is 128 plain bytes.
    let words: [u64; 16] = unsafe { std::mem::transmute(info) };
    words[3] == events::TRAP_DATA
}

/// Whether the signal stop of `tid` is the brake's (SIGCHLD with `SI_KERNEL`, which the kernel
/// sends for nothing else).
fn is_brake(tid: i32) -> bool {
    ptrace_get::<libc::siginfo_t>(libc::PTRACE_GETSIGINFO, tid)
        .is_some_and(|i| i.si_signo == libc::SIGCHLD && i.si_code == libc::SI_KERNEL)
}

impl Allocators {
    /// Whether the signal stop of `tid` is our own stop at its dynamic linker.
    fn is_stop(&self, tid: i32) -> bool {
        let text = self.traps.get(&procfs::tgid_of(tid)).map(|d| &d.text[..]);
        is_our_trap(tid, text)
    }
}

/// What ptrace request `req` (GETSIGINFO, GETREGS, GETEVENTMSG) writes of stopped tracee
/// `tid`.
fn ptrace_get<T: Copy>(req: libc::c_uint, tid: i32) -> Option<T> {
    // SAFETY: T is a plain C struct or integer that the request writes whole; all-zero is a
    // valid value of it.
    let mut out: T = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut out as *mut T as *mut libc::c_void,
        )
    };
    (r == 0).then_some(out)
}

/// si_code of a perf event's SIGTRAP.
const TRAP_PERF: libc::c_int = 6;

/// Looks at what the process of task `tid` maps now: an allocator not probed yet gets events
/// in every task; the files are held for the reader; its `_dl_debug_state` is remembered.
fn rescan(
    params: &mut EventParams,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
    tasks: &mut FxHashMap<i32, TaskEvents>,
    alloc: &mut Allocators,
    tid: i32,
) {
    let tgid = procfs::tgid_of(tid);
    let Scan {
        opened,
        locations,
        debug_state,
        notes,
    } = alloc.discovery.scan(tgid as u32, tid as u32);
    if let Ok(mut f) = shared.files.lock() {
        f.extend(opened.into_iter().map(|o| (o.inode, o.file)));
    }
    if let Ok(mut n) = shared.notes.lock() {
        n.extend(notes);
    }
    for (loc, open_path) in locations {
        let li = params.locs.len();
        shared.untimed(Synthetic::Location {
            location: loc.clone(),
        });
        params.locs.push(loc);
        params.open_paths.push(open_path);
        for (&tid, ev) in tasks.iter_mut() {
            let bytes = ev.stack_bytes;
            if let Err((e, false)) =
                open_location(params, li, tid, leaders, shared, &mut ev.uprobes, bytes)
            {
                shared.untimed(Synthetic::Untraced {
                    tid: tid as u32,
                    why: e.to_string(),
                });
            }
        }
    }
    match debug_state {
        Some(ds) => alloc.traps.insert(tgid, ds),
        None => alloc.traps.remove(&tgid),
    };
}

/// Gives task `tid` of process `tgid` its stop at the dynamic linker, if the process has one.
fn arm(
    params: &EventParams,
    shared: &Shared,
    ev: &mut TaskEvents,
    alloc: &mut Allocators,
    tid: i32,
    tgid: i32,
    graveyard: &mut Vec<OwnedFd>,
) {
    graveyard.extend(ev.trap.take());
    let Some(ds) = alloc.traps.get(&tgid) else {
        return;
    };
    let opened = match &alloc.stopper {
        Some(stopper) => {
            events::open_bare_uprobe(&params.uprobes, &ds.open_path, ds.offset, tid, &|fd| {
                stopper.attach(fd)
            })
        }
        None if alloc.sigtrap_stops => {
            events::open_trap(&params.uprobes, &ds.open_path, ds.offset, tid)
        }
        None => return,
    };
    match opened {
        Ok(fd) => ev.trap = Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
        Err(e) => {
            if alloc.untrapped.insert(tgid) {
                if let Ok(mut n) = shared.notes.lock() {
                    n.push(format!(
                        "pid {tgid} cannot be stopped at its dynamic linker ({e}): allocators in libraries it loads with dlopen are not probed"
                    ));
                }
            }
        }
    }
}

/// State shared by the tracer thread and the reader.
#[derive(Default)]
pub(crate) struct Shared {
    /// Records for the interpreter whose place in time does not matter (event ids, which are
    /// known before their task runs; untraced tasks): taken at the start of each batch.
    pub untimed: Mutex<Vec<Synthetic>>,
    /// Records for the interpreter with the time they hold for (what /proc said after an
    /// exec the kernel sent no records of): merged with the ring records in time order.
    pub timed: Mutex<Vec<(u64, Synthetic)>>,
    /// Set by the reader to end the tracer thread.
    pub quit: AtomicBool,
    /// The exit of the spawned program (or of the attached process), once it ended.
    pub main_exit: Mutex<Option<ProgramExit>>,
    /// Tasks still traced (the spawned program's threads and the processes it started).
    pub live: AtomicUsize,
    /// Notes for the report.
    pub notes: Mutex<Vec<String>>,
    /// Files the target mapped, opened while it lived (by device and inode): what the reader
    /// unwinds and symbolizes with, even after the target is gone or when the path names
    /// another file here (another root).
    pub files: Mutex<FxHashMap<(u64, u64), Arc<std::fs::File>>>,
    /// New stack copy sizes for tasks (task, bytes), asked for by the reader.
    pub resize: Mutex<Vec<(u32, u32)>>,
}

impl Shared {
    fn untimed(&self, s: Synthetic) {
        if let Ok(mut q) = self.untimed.lock() {
            q.push(s);
        }
    }
}

/// Opened events of one task.
struct TaskEvents {
    /// Uprobe events, first of each CPU's set first.
    uprobes: Vec<OwnedFd>,
    side: Vec<OwnedFd>,
    /// The event that stops the task at its dynamic linker's `_dl_debug_state`.
    trap: Option<OwnedFd>,
    /// Bytes of stack its uprobe events copy.
    stack_bytes: u32,
}

impl TaskEvents {
    fn into_fds(self) -> impl Iterator<Item = OwnedFd> {
        self.uprobes.into_iter().chain(self.side).chain(self.trap)
    }
}

fn open_error(e: std::io::Error, what: String, pid: i32) -> Error {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            what,
            hint: format!(
                "uprobes need root or CAP_PERFMON, and following threads needs CAP_SYS_PTRACE: run with sudo, or `sudo setcap cap_perfmon,cap_sys_ptrace,cap_ipc_lock+ep $(command -v allocflame)`; kernel.perf_event_paranoid is {}",
                std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "?".into())
            ),
        },
        Some(libc::ESRCH) => Error::Invalid(format!("{what}: no process {pid} (it exited?)")),
        _ => Error::os(what, e),
    }
}

/// Opens the ring buffer of every CPU, each owned by a CPU-wide dummy event.
fn open_rings(p: &EventParams, notes: &mut Vec<String>) -> Result<Vec<Ring>> {
    let page = events::page_size();
    let mut rings = Vec::new();
    let mut reduced = None;
    for &cpu in &p.cpus {
        let mut pages = (p.buffer_bytes / page).next_power_of_two().max(8);
        let fd = events::open_ring_owner(&p.layout, cpu, ((pages * page) / 4) as u32)
            .map_err(|e| open_error(e, format!("perf_event_open of CPU {cpu}'s buffer"), -1))?;
        let ring = loop {
            let dup = fd
                .try_clone()
                .map_err(|e| Error::os("dup of a perf ring buffer fd", e))?;
            match Ring::new(dup, pages) {
                Ok(r) => break r,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) && pages > 8 => pages /= 4,
                Err(e) => return Err(open_error(e, "mmap of a perf ring buffer".into(), -1)),
            }
        };
        if pages * page < p.buffer_bytes {
            reduced = Some(pages * page / 1024);
        }
        rings.push(ring);
    }
    if let Some(kib) = reduced {
        notes.push(format!(
            "ring buffers reduced to {kib} KiB per CPU by the locked-memory limit (raise kernel.perf_event_mlock_kb or run as root)"
        ));
    }
    Ok(rings)
}

/// Opens the events of every location on every CPU for task `tid`, writing into the CPUs'
/// buffers, and tells the reader their ids before the task runs.
fn open_task(
    p: &EventParams,
    tid: i32,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
) -> std::result::Result<TaskEvents, (Error, bool)> {
    let mut ev = TaskEvents {
        uprobes: Vec::new(),
        side: Vec::new(),
        trap: None,
        stack_bytes: p.layout.stack_bytes,
    };
    let mut side_ids = Vec::new();
    for &(cpu, leader) in leaders {
        let side = events::open_side(&p.layout, tid, cpu).map_err(|e| {
            fail(
                e,
                format!("perf_event_open of task {tid}'s side records"),
                tid,
            )
        })?;
        events::redirect_output_raw(&side, leader)
            .map_err(|e| (Error::os("PERF_EVENT_IOC_SET_OUTPUT", e), false))?;
        side_ids
            .push(events::event_id(&side).map_err(|e| (Error::os("PERF_EVENT_IOC_ID", e), false))?);
        ev.side.push(side);
    }
    shared.untimed(Synthetic::SideIds { ids: side_ids });
    for li in 0..p.locs.len() {
        open_location(p, li, tid, leaders, shared, &mut ev.uprobes, ev.stack_bytes)?;
    }
    Ok(ev)
}

/// Gives stopped task `tid` uprobe events copying `bytes` of stack in place of its others,
/// which are disabled before it runs again (their counts stay readable).
fn resize_task(
    p: &EventParams,
    tid: i32,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
    ev: &mut TaskEvents,
    bytes: u32,
    graveyard: &mut Vec<OwnedFd>,
) {
    let mut fresh = Vec::new();
    for li in 0..p.locs.len() {
        if open_location(p, li, tid, leaders, shared, &mut fresh, bytes).is_err() {
            graveyard.extend(fresh);
            return;
        }
    }
    for fd in &ev.uprobes {
        events::disable(fd);
    }
    if let Some(brake) = &p.brake {
        let layout = Layout {
            stack_bytes: bytes,
            ..p.layout
        };
        brake.grow_record(sample_bytes(&layout, p.max_callchain));
    }
    graveyard.extend(std::mem::replace(&mut ev.uprobes, fresh));
    if std::env::var_os("ALLOCFLAME_TIMING").is_some() {
        eprintln!(
            "allocflame: timing: task {tid}: stack copy {} → {bytes} bytes",
            ev.stack_bytes
        );
    }
    ev.stack_bytes = bytes;
}

/// The most bytes a sample of `layout` takes in a buffer: header, identifier, tid, time, the
/// registers, the stack copy (size, bytes, copied size) and the deepest callchain.
fn sample_bytes(layout: &Layout, max_callchain: u16) -> u64 {
    let regs = 8 * (1 + u64::from(crate::record::regs::mask().count_ones()));
    let stack = 16 + u64::from(layout.stack_bytes);
    let callchain = if layout.callchain() {
        8 + 8 * u64::from(max_callchain)
    } else {
        0
    };
    32 + regs + stack + callchain
}

/// ESRCH: the task ended before we got to it (nothing to record).
fn fail(e: std::io::Error, what: String, tid: i32) -> (Error, bool) {
    let gone = e.raw_os_error() == Some(libc::ESRCH);
    (open_error(e, what, tid), gone)
}

/// Opens location `li`'s events on every CPU for task `tid` into `out`, and tells the reader
/// their ids before the task runs.
fn open_location(
    p: &EventParams,
    li: usize,
    tid: i32,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
    out: &mut Vec<OwnedFd>,
    stack_bytes: u32,
) -> std::result::Result<(), (Error, bool)> {
    let loc = &p.locs[li];
    let mut ids = Vec::new();
    let brake_attach = p.brake.as_ref().map(|b| move |fd: &OwnedFd| b.attach(fd));
    for &(cpu, leader) in leaders {
        let spec = EventSpec {
            uprobes: &p.uprobes,
            path: &p.open_paths[li],
            offset: loc.offset,
            layout: Layout {
                stack_bytes,
                ..p.layout
            },
            max_callchain: p.max_callchain,
            disabled: p.start_disabled,
            program: brake_attach.as_ref().map(|a| a as &Attach<'_>),
        };
        let fd = events::open_uprobe(&spec, tid, cpu).map_err(|e| {
            fail(
                e,
                format!(
                    "perf_event_open of a uprobe on {}+{:#x} for pid {tid}",
                    loc.path.display(),
                    loc.offset
                ),
                tid,
            )
        })?;
        ids.push(events::event_id(&fd).map_err(|e| (Error::os("PERF_EVENT_IOC_ID", e), false))?);
        events::redirect_output_raw(&fd, leader)
            .map_err(|e| (Error::os("PERF_EVENT_IOC_SET_OUTPUT", e), false))?;
        out.push(fd);
    }
    shared.untimed(Synthetic::Ids { location: li, ids });
    Ok(())
}

/// What /proc says of `pid` now, as records for the interpreter: its name and mappings.
fn describe_process(pid: u32, exec: bool) -> Vec<Synthetic> {
    let mut out = vec![Synthetic::Process {
        pid,
        comm: procfs::comm(pid).unwrap_or_else(|| format!("pid {pid}")),
        exec,
    }];
    for m in procfs::maps(pid).unwrap_or_default() {
        if m.executable() && m.is_file() {
            out.push(Synthetic::Mapping {
                pid,
                start: m.start,
                end: m.end,
                pgoff: m.offset,
                inode: Some(m.inode),
                path: m.path.into(),
            });
        }
    }
    out
}

/// Threads are always followed; forked children only when `children`.
fn ptrace_options(children: bool) -> libc::c_int {
    libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | if children {
            libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEVFORK
        } else {
            0
        }
}

fn seize(tid: i32, children: bool) -> std::io::Result<()> {
    // SAFETY: plain ptrace request on a task id.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            ptrace_options(children) as usize as *mut libc::c_void,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Asks tracee `tid` for a `PTRACE_EVENT_STOP` (no signal; a task already stopped stays in
/// its stop, and no new one is reported).
fn interrupt(tid: i32) {
    // SAFETY: a ptrace request on one of our tracees; errors (task gone) are harmless.
    unsafe {
        libc::ptrace(
            libc::PTRACE_INTERRUPT,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
}

fn ptrace_cont(req: libc::c_uint, tid: i32, sig: i32) {
    // SAFETY: resuming a tracee of this thread; errors (task gone) are harmless.
    unsafe {
        libc::ptrace(
            req,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            sig as usize as *mut libc::c_void,
        )
    };
}

/// What the tracer thread starts.
pub(crate) enum Start {
    /// A held child (forked, not yet exec'd) to release once its events are open.
    Spawn {
        program: std::path::PathBuf,
        argv: Vec<std::ffi::OsString>,
    },
    /// A running process.
    Attach { pid: u32 },
}

/// What the tracer thread hands the reader once the target runs.
pub(crate) struct Started {
    pub rings: Vec<Ring>,
    pub main_pid: u32,
}

/// Runs the tracer thread: opens the buffers, starts or seizes the target, opens the first
/// events and hands the buffers over through `ready`, then follows new tasks until
/// `shared.quit`. Returns every event fd it opened, for the reader to read their counters.
pub(crate) fn tracer_thread(
    start: Start,
    mut params: EventParams,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<Started>>,
) -> Vec<OwnedFd> {
    let mut notes = Vec::new();
    let rings = match open_rings(&params, &mut notes) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Vec::new();
        }
    };
    let leaders = leaders_of(&params, &rings);
    if let (Some(brake), Some(ring)) = (&params.brake, rings.first()) {
        brake.set_ring(
            ring.size(),
            sample_bytes(&params.layout, params.max_callchain),
        );
    }
    let mut tasks: FxHashMap<i32, TaskEvents> = FxHashMap::default();
    let mut alloc = Allocators {
        discovery: Discovery::new(&params.probes, &params.user_probe, &params.locs),
        traps: FxHashMap::default(),
        parent: FxHashMap::default(),
        untrapped: FxHashSet::default(),
        stopper: None,
        sigtrap_stops: matches!(start, Start::Spawn { .. }),
    };
    match Stopper::load() {
        Ok(s) => alloc.stopper = Some(s),
        Err(why) if !alloc.sigtrap_stops => notes.push(format!(
            "libraries the process loads with dlopen during the recording are not probed ({why})"
        )),
        Err(_) => {}
    }
    let main_pid: i32;
    let mut spawned = None;
    match start {
        Start::Spawn { program, argv } => {
            let mut child = match spawn::spawn_held(&program, &argv) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return Vec::new();
                }
            };
            main_pid = child.pid;
            let opened = seize(child.pid, params.follow_children)
                .map_err(|e| {
                    open_error(
                        e,
                        format!("ptrace(PTRACE_SEIZE) of pid {}", child.pid),
                        child.pid,
                    )
                })
                .and_then(|_| open_task(&params, child.pid, &leaders, &shared).map_err(|e| e.0));
            match opened {
                Ok(ev) => {
                    tasks.insert(child.pid, ev);
                }
                Err(e) => {
                    child.abandon();
                    let _ = ready.send(Err(e));
                    return Vec::new();
                }
            }
            if let Err(e) = child.release(&program) {
                spawn::try_wait(child.pid, true);
                let _ = ready.send(Err(e));
                return tasks.into_values().flat_map(TaskEvents::into_fds).collect();
            }
            spawned = Some(child.pid);
        }
        Start::Attach { pid } => {
            main_pid = pid as i32;
            // The allocators it maps, probed in each thread from the start.
            rescan(
                &mut params,
                &leaders,
                &shared,
                &mut tasks,
                &mut alloc,
                main_pid,
            );
            params.start_disabled = true;
            // What the process maps now, stamped before any of its events exists.
            let now = events::now_ns();
            if let Ok(mut q) = shared.timed.lock() {
                q.extend(describe_process(pid, false).into_iter().map(|s| (now, s)));
            }
            let mut seen: FxHashSet<i32> = FxHashSet::default();
            // Threads started while we seize are caught by another look: a seized thread's
            // later clones stop for us.
            for _ in 0..10 {
                let new: Vec<i32> = procfs::tids(pid)
                    .into_iter()
                    .filter(|t| !seen.contains(t))
                    .collect();
                if new.is_empty() {
                    break;
                }
                for tid in new {
                    seen.insert(tid);
                    if let Err(e) = seize(tid, params.follow_children) {
                        if e.raw_os_error() == Some(libc::ESRCH) {
                            continue;
                        }
                        let tracer = procfs::tracer_of(tid);
                        // SAFETY: gettid has no preconditions.
                        let me = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
                        if tracer == me {
                            // Born of a thread seized already: ours, and it stops for us at
                            // its start like any new thread.
                            continue;
                        }
                        if tracer != 0 {
                            // Already traced (a debugger): record the threads that exist,
                            // without following new ones.
                            notes.push(format!(
                                "thread {tid} of pid {pid} is traced by pid {tracer} (a debugger?): its new threads and children are not followed"
                            ));
                        } else {
                            let _ = ready.send(Err(open_error(
                                e,
                                format!(
                                    "ptrace(PTRACE_SEIZE) of pid {pid} (to follow its new threads)"
                                ),
                                tid,
                            )));
                            return tasks.into_values().flat_map(TaskEvents::into_fds).collect();
                        }
                    }
                    match open_task(&params, tid, &leaders, &shared) {
                        Ok(mut ev) => {
                            let mut dead = Vec::new();
                            arm(
                                &params, &shared, &mut ev, &mut alloc, tid, main_pid, &mut dead,
                            );
                            tasks.insert(tid, ev);
                        }
                        Err((_, true)) => {}
                        Err((e, false)) => {
                            let _ = ready.send(Err(e));
                            return tasks.into_values().flat_map(TaskEvents::into_fds).collect();
                        }
                    }
                }
            }
        }
    }
    if params.start_disabled {
        // The recording of an attached process starts now, in all its threads at once.
        params.start_disabled = false;
        for ev in tasks.values() {
            for fd in &ev.uprobes {
                events::enable(fd);
            }
        }
    }
    // New tasks wait for this thread, and it pauses the program when the reader falls
    // behind: as root it runs at the lowest real-time priority (asleep but for ~µs every 50 to
    // 300 µs), else at nice -10. Processes it forks from now on start with normal scheduling.
    // SAFETY: scheduling calls on our own thread id; failing is harmless.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let param = libc::sched_param { sched_priority: 1 };
        if libc::sched_setscheduler(tid, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) != 0
        {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10);
        }
    }
    if let Ok(mut n) = shared.notes.lock() {
        n.extend(notes.drain(..));
    }
    params.gauges = rings.iter().map(Ring::gauge).collect();
    if ready
        .send(Ok(Started {
            rings,
            main_pid: main_pid as u32,
        }))
        .is_err()
    {
        return tasks.into_values().flat_map(TaskEvents::into_fds).collect();
    }
    let mut graveyard = Vec::new();
    follow(
        &mut params,
        &leaders,
        &shared,
        &mut tasks,
        &mut alloc,
        main_pid,
        &mut graveyard,
    );
    if let Some(pid) = spawned {
        if shared
            .main_exit
            .lock()
            .map(|e| e.is_none())
            .unwrap_or(false)
        {
            // Stopped early: the program does not outlive its recording.
            let code = stop_child(pid);
            if let Ok(mut e) = shared.main_exit.lock() {
                *e = Some(code);
            }
        }
    }
    for (_, ev) in tasks.drain() {
        graveyard.extend(ev.into_fds());
    }
    // Returning ends this thread: the kernel detaches every remaining tracee at once; the
    // caller reads the counters and releases the probes.
    graveyard
}

fn leaders_of(params: &EventParams, rings: &[Ring]) -> Vec<(i32, RawFd)> {
    params
        .cpus
        .iter()
        .zip(rings)
        .map(|(&c, r)| (c, r.fd().as_raw_fd()))
        .collect()
}

fn stop_child(pid: i32) -> ProgramExit {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(c) = wait_main(pid, false) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_main(pid, true).unwrap_or(ProgramExit::Signal(libc::SIGKILL))
}

/// Waits for `pid` (a traced child) to end, resuming it from any ptrace stop on the way.
fn wait_main(pid: i32, block: bool) -> Option<ProgramExit> {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own (traced) child.
        let r = unsafe {
            libc::waitpid(
                pid,
                &mut status,
                libc::__WALL | if block { 0 } else { libc::WNOHANG },
            )
        };
        if r <= 0 {
            return if r < 0 {
                Some(ProgramExit::Signal(libc::SIGKILL))
            } else {
                None
            };
        }
        if let Some(exit) = spawn::exit_of(status) {
            return Some(exit);
        }
        if libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            let inject = if status >> 16 == 0 { sig } else { 0 };
            ptrace_cont(libc::PTRACE_CONT, pid, inject);
        }
        if !block {
            return None;
        }
    }
}

/// A wait in the kernel long enough to be worth a note.
const LONG_WAIT: Duration = Duration::from_millis(100);

/// Holding the program while the reader catches up. When a buffer is 3/8 full, the tracer
/// interrupts each running task (`PTRACE_INTERRUPT`: no signal, nothing the program can see but
/// the pause) and keeps it stopped until every buffer is below a quarter full: the kernel should
/// never find a buffer full (the tracer looks at least every 300 µs, every 50 µs once one is a
/// quarter full; a buffer of the default 64 MiB fills in ~10 ms at most). Sleeping tasks are left alone (an
/// interrupt would end an `epoll_wait` with EINTR); one that wakes is taken at the next round.
pub(crate) struct Pressure {
    gauges: Vec<Gauge>,
    on: Option<Instant>,
    /// Tasks interrupted in this episode, whose stop may not have come yet.
    asked: FxHashSet<i32>,
    /// Tasks kept stopped.
    held: Vec<i32>,
    episodes: u64,
    paused: Duration,
    /// Time spent in work that waited long in the kernel (see [`Pressure::meanwhile`]).
    waited: Duration,
    /// Stops by the brake.
    brakes: u64,
    /// The brake, told at each look what is left to read in each buffer (of `cpus`).
    brake: Option<Arc<Brake>>,
    cpus: Vec<i32>,
}

impl Pressure {
    fn new(gauges: Vec<Gauge>, brake: Option<Arc<Brake>>, cpus: Vec<i32>) -> Pressure {
        Pressure {
            brake,
            cpus,
            gauges,
            on: None,
            asked: FxHashSet::default(),
            held: Vec::new(),
            episodes: 0,
            paused: Duration::ZERO,
            waited: Duration::ZERO,
            brakes: 0,
        }
    }

    /// Looks at the buffers; while they are too full, interrupts the running tasks of `known`
    /// (all when the pressure starts, else only at a new `round`).
    fn update(&mut self, known: &[i32], round: bool) {
        if let Some(brake) = &self.brake {
            for (g, &cpu) in self.gauges.iter().zip(&self.cpus) {
                brake.sync(cpu, g.unread());
            }
        }
        let worst = self.gauges.iter().map(Gauge::eighths).max().unwrap_or(0);
        let started = match self.on {
            None if worst >= 3 => {
                self.on = Some(Instant::now());
                self.episodes += 1;
                true
            }
            Some(_) if worst < 2 => {
                self.release();
                false
            }
            _ => false,
        };
        if self.on.is_none() || !(started || round) {
            return;
        }
        for &tid in known {
            if !self.asked.contains(&tid) && procfs::running(tid) {
                interrupt(tid);
                self.asked.insert(tid);
            }
        }
    }

    /// Runs `work` on a thread of its own while this one keeps watching the buffers, and
    /// interrupts the running tasks of `known` if they fill. Opening perf events waits in the
    /// kernel behind every release of uprobe events (~70 ms each; seconds when another
    /// recording just ended through the uprobe PMU), and the program runs on meanwhile: with the
    /// reader slow too, it would fill a buffer unwatched.
    fn meanwhile<T: Send>(&mut self, known: &[i32], work: impl FnOnce() -> T + Send) -> T {
        let start = Instant::now();
        let done = std::thread::scope(|scope| {
            let job = scope.spawn(work);
            while !job.is_finished() {
                self.update(known, true);
                std::thread::sleep(Duration::from_micros(50));
            }
            job.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let took = start.elapsed();
        if took >= LONG_WAIT {
            self.waited += took;
        }
        done
    }

    /// Whether a buffer is filling up: the tracer then looks more often.
    fn rising(&self) -> bool {
        self.on.is_some() || self.gauges.iter().any(|g| g.eighths() >= 2)
    }

    /// At a `PTRACE_EVENT_STOP` of `tid`: whether it is ours to keep stopped.
    fn hold(&mut self, tid: i32) -> bool {
        if self.on.is_some() && self.asked.contains(&tid) {
            self.held.push(tid);
            return true;
        }
        false
    }

    /// At a stop of `tid` by the brake: whether it is kept stopped (while a buffer is a quarter
    /// full or more, as an interrupted task would be).
    fn braked(&mut self, tid: i32) -> bool {
        self.brakes += 1;
        if self.on.is_none() {
            if self.gauges.iter().map(Gauge::eighths).max().unwrap_or(0) < 2 {
                return false;
            }
            self.on = Some(Instant::now());
            self.episodes += 1;
        }
        self.asked.insert(tid);
        self.held.push(tid);
        true
    }

    /// Whether `tid` is kept stopped now.
    fn holds(&self, tid: i32) -> bool {
        self.held.contains(&tid)
    }

    fn forget(&mut self, tid: i32) {
        self.asked.remove(&tid);
        self.held.retain(|&t| t != tid);
    }

    /// Resumes every task held; ends the episode.
    fn release(&mut self) {
        for tid in self.held.drain(..) {
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        }
        self.asked.clear();
        if let Some(since) = self.on.take() {
            self.paused += since.elapsed();
        }
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.episodes > 0 {
            notes.push(format!(
                "the program was paused {} times ({:.0} ms in all) while allocflame caught up with its buffers",
                self.episodes,
                self.paused.as_secs_f64() * 1000.0
            ));
        }
        if self.brakes > 0 {
            notes.push(format!(
                "the kernel-side brake stopped a thread {} times, when a buffer was three quarters full before allocflame's threads could act",
                self.brakes
            ));
        }
        if self.waited >= LONG_WAIT {
            notes.push(format!(
                "opening perf events for new tasks, libraries or stack sizes waited {:.1} s in all in the kernel, behind the release of uprobe events that other recordings had opened; the buffers were watched meanwhile",
                self.waited.as_secs_f64()
            ));
        }
        notes
    }
}

/// How often the tracer looks in /proc for tasks of its processes that it traces but was not
/// told of.
const SWEEP: Duration = Duration::from_millis(200);

/// Adds to `known` the tasks of `known`'s processes that this thread traces but that are not
/// in it (a task is waited for by tid: one missing from `known` would never be resumed from its
/// first stop nor reaped, and a process whose thread stays a zombie never ends); returns how
/// many. The kernel attaches a new task before its creator's clone event, so a task is taken
/// only when the sweep before (`suspects`) found it missing too: a net for an event that did
/// not reach us, not a race with one on its way.
fn adopt_unreported(known: &mut Vec<i32>, suspects: &mut Vec<i32>) -> usize {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    let mut tgids: Vec<i32> = known.iter().map(|&t| procfs::tgid_of(t)).collect();
    tgids.sort_unstable();
    tgids.dedup();
    let mut missing = Vec::new();
    for tgid in tgids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/task")) else {
            continue;
        };
        for tid in dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        {
            if !known.contains(&tid) && procfs::tracer_of(tid) == me {
                missing.push(tid);
            }
        }
    }
    let before = known.len();
    known.extend(missing.iter().filter(|t| suspects.contains(t)));
    *suspects = missing;
    known.len() - before
}

/// At the end: resumes `tid` from the stops it is in, our own stops at the dynamic linker
/// without their signal, and keeps the program's exit status if it ended.
fn take_last_stops(tid: i32, main_pid: i32, shared: &Shared, alloc: &Allocators) {
    let mut status = 0;
    // SAFETY: waiting for one of our tracees.
    while unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) } == tid {
        if !libc::WIFSTOPPED(status) {
            if tid == main_pid {
                if let Ok(mut e) = shared.main_exit.lock() {
                    *e = spawn::exit_of(status);
                }
            }
            break;
        }
        let (sig, event) = (libc::WSTOPSIG(status), status >> 16);
        if event == libc::PTRACE_EVENT_STOP {
            break;
        }
        let ours = event == 0
            && ((sig == libc::SIGTRAP && alloc.is_stop(tid))
                || (sig == libc::SIGCHLD && is_brake(tid)));
        ptrace_cont(
            libc::PTRACE_CONT,
            tid,
            if event == 0 && !ours { sig } else { 0 },
        );
    }
}

/// Handles ptrace stops until `quit`: new tasks get their events and are resumed; an exec that
/// took the task's events away (a setuid program) gets new ones; signals are delivered as they
/// would be without us; group stops stay stops (`PTRACE_LISTEN`).
fn follow(
    params: &mut EventParams,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
    tasks: &mut FxHashMap<i32, TaskEvents>,
    alloc: &mut Allocators,
    main_pid: i32,
    graveyard: &mut Vec<OwnedFd>,
) {
    let mut pressure = Pressure::new(
        params.gauges.clone(),
        params.brake.clone(),
        params.cpus.clone(),
    );
    // Only our own tracees are waited for, by pid: waitpid(-1) would also reap children that
    // the host process (a test harness, an application embedding us) started itself.
    let mut known: Vec<i32> = tasks.keys().copied().collect();
    let mut next = 0usize;
    let untraced = |tid: i32, e: &Error| {
        shared.untimed(Synthetic::Untraced {
            tid: tid as u32,
            why: e.to_string(),
        })
    };
    // Tasks asked to stop for a new stack copy size.
    let mut resizing: FxHashMap<i32, u32> = FxHashMap::default();
    let (mut last_sweep, mut adopted) = (Instant::now(), 0usize);
    let mut suspects: Vec<i32> = Vec::new();
    while !shared.quit.load(Ordering::Relaxed) {
        shared.live.store(known.len(), Ordering::Relaxed);
        let asked = shared
            .resize
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        for (tid, bytes) in asked {
            let tid = tid as i32;
            if pressure.holds(tid) {
                // Stopped already (an interrupt now would be lost in that stop).
                if let Some(ev) = tasks.get_mut(&tid).filter(|ev| ev.stack_bytes != bytes) {
                    let p = &*params;
                    pressure.meanwhile(&known, || {
                        resize_task(p, tid, leaders, shared, ev, bytes, graveyard)
                    });
                }
            } else if tasks.get(&tid).is_some_and(|ev| ev.stack_bytes != bytes)
                && resizing.insert(tid, bytes).is_none()
            {
                interrupt(tid);
            }
        }
        if known.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        pressure.update(&known, next >= known.len());
        if next >= known.len() {
            next = 0;
            if last_sweep.elapsed() >= SWEEP {
                last_sweep = Instant::now();
                adopted += adopt_unreported(&mut known, &mut suspects);
            }
            let nap = if pressure.rising() { 50 } else { 300 };
            std::thread::sleep(Duration::from_micros(nap));
        }
        let tid = known[next];
        let mut status = 0;
        // SAFETY: waiting for one of our tracees.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == 0 {
            next += 1;
            continue;
        }
        if r < 0 {
            known.swap_remove(next);
            pressure.forget(tid);
            if let Some(ev) = tasks.remove(&tid) {
                graveyard.extend(ev.into_fds());
            }
            continue;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            known.swap_remove(next);
            pressure.forget(tid);
            // Closing a uprobe event waits for RCU grace periods (~70 ms here) under a kernel
            // mutex that opening one also takes: closing now would stall the target's next
            // thread creation, so the fds are closed after the recording.
            if let Some(ev) = tasks.remove(&tid) {
                graveyard.extend(ev.into_fds());
            }
            if tid == main_pid {
                if let Ok(mut e) = shared.main_exit.lock() {
                    *e = spawn::exit_of(status);
                }
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        if event == libc::PTRACE_EVENT_STOP {
            if matches!(
                sig,
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
            ) {
                // A group stop (the user stopped the program): keep it stopped, as without us.
                ptrace_cont(libc::PTRACE_LISTEN as libc::c_uint, tid, 0);
                continue;
            }
            // Stopped for a new stack copy size.
            if let Some(bytes) = resizing.remove(&tid) {
                if let Some(ev) = tasks.get_mut(&tid) {
                    let p = &*params;
                    pressure.meanwhile(&known, || {
                        resize_task(p, tid, leaders, shared, ev, bytes, graveyard)
                    });
                }
            }
            // A new task's first stop: give it events, then let it run.
            if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(tid) {
                let p = &*params;
                match pressure.meanwhile(&known, || open_task(p, tid, leaders, shared)) {
                    Ok(mut ev) => {
                        let tgid = procfs::tgid_of(tid);
                        // A forked child maps what its parent maps.
                        if let Some(parent) = alloc.parent.remove(&tid) {
                            if let Some(t) = alloc.traps.get(&parent).cloned() {
                                alloc.traps.entry(tgid).or_insert(t);
                            }
                        }
                        pressure.meanwhile(&known, || {
                            arm(p, shared, &mut ev, alloc, tid, tgid, graveyard)
                        });
                        slot.insert(ev);
                    }
                    Err((e, _)) => untraced(tid, &e),
                }
            }
            // Stopped for the reader to catch up: kept until it has.
            if !pressure.hold(tid) {
                ptrace_cont(libc::PTRACE_CONT, tid, 0);
            }
        } else if event == libc::PTRACE_EVENT_EXEC {
            // A non-leader thread that exec'd took over the leader's id; its old id is gone.
            let former =
                ptrace_get::<libc::c_ulong>(libc::PTRACE_GETEVENTMSG, tid).unwrap_or(tid as _);
            if former as i32 != tid {
                if let Some(ev) = tasks.remove(&(former as i32)) {
                    tasks.insert(tid, ev);
                }
            }
            // An exec of a setuid (non-dumpable) program detaches every event of the task
            // (the kernel's perf_event_exit_task) and sends no records of the new image: give
            // it new events, and tell the interpreter what it now maps.
            let dropped = tasks
                .get(&tid)
                .and_then(|ev| ev.uprobes.first())
                .is_some_and(events::hung_up);
            if dropped {
                if let Some(ev) = tasks.remove(&tid) {
                    graveyard.extend(ev.into_fds());
                }
                let now = events::now_ns();
                if let Ok(mut q) = shared.timed.lock() {
                    q.extend(
                        describe_process(tid as u32, true)
                            .into_iter()
                            .map(|s| (now, s)),
                    );
                }
                let p = &*params;
                match pressure.meanwhile(&known, || open_task(p, tid, leaders, shared)) {
                    Ok(ev) => {
                        tasks.insert(tid, ev);
                    }
                    Err((e, _)) => untraced(tid, &e),
                }
            }
            // The new image: an allocator in the executable or in the dynamic linker (static
            // binaries, musl), and the stop at the dynamic linker once it mapped the rest.
            pressure.meanwhile(&known, || {
                rescan(params, leaders, shared, tasks, alloc, tid)
            });
            if let Some(ev) = tasks.get_mut(&tid) {
                let p = &*params;
                pressure.meanwhile(&known, || arm(p, shared, ev, alloc, tid, tid, graveyard));
            }
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        } else if event != 0 {
            // PTRACE_EVENT_CLONE / FORK / VFORK at the parent: the new task reports its own
            // first stop; from now on we wait for it too.
            let new_pid = ptrace_get::<libc::c_ulong>(libc::PTRACE_GETEVENTMSG, tid).unwrap_or(0);
            if new_pid > 0 && !known.contains(&(new_pid as i32)) {
                known.push(new_pid as i32);
                alloc.parent.insert(new_pid as i32, procfs::tgid_of(tid));
            }
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        } else if sig == libc::SIGTRAP && alloc.is_stop(tid) {
            // Stopped at its dynamic linker, which just mapped libraries (none has run yet).
            pressure.meanwhile(&known, || {
                rescan(params, leaders, shared, tasks, alloc, tid)
            });
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        } else if sig == libc::SIGCHLD && is_brake(tid) {
            // The brake stopped it (the reader fell behind): held, or resumed, never told.
            if !pressure.braked(tid) {
                ptrace_cont(libc::PTRACE_CONT, tid, 0);
            }
        } else {
            // A signal on its way to the task: deliver it.
            ptrace_cont(libc::PTRACE_CONT, tid, sig);
        }
    }
    // The recording is over: no hit from here on. An attached process runs on, and the tasks
    // held for the reader would fill the buffers again, while the reader waits for this thread
    // instead of reading: what they do now would be lost, not recorded.
    for ev in tasks.values() {
        for fd in &ev.uprobes {
            events::disable(fd);
        }
    }
    pressure.release();
    if let Ok(mut n) = shared.notes.lock() {
        n.extend(pressure.notes());
    }
    if adopted > 0 {
        if let Ok(mut n) = shared.notes.lock() {
            n.push(format!(
                "{adopted} tasks traced from their birth were not reported to allocflame by their creator's clone event and were found later in /proc: allocations they made before that were not seen"
            ));
        }
    }
    // No stop at the dynamic linker after we detach: a SIGTRAP nobody takes would kill the
    // task. One whose trap fired already is resumed without it.
    // (Disabling an event does not stop a BPF program attached to it: the switch does.)
    if let Some(stopper) = &alloc.stopper {
        let _ = stopper.turn(false);
    }
    if let Some(brake) = &params.brake {
        brake.off();
    }
    for ev in tasks.values() {
        if let Some(t) = &ev.trap {
            events::disable(t);
        }
    }
    // A stop asked for just before the disabling may still be on its way (a SIGTRAP pending
    // for the task): wait for it, briefly, so that no task is detached with it.
    for _ in 0..400 {
        let mut pending = false;
        for &tid in &known {
            take_last_stops(tid, main_pid, shared, alloc);
            pending |= procfs::trap_pending(tid);
        }
        if !pending {
            break;
        }
        std::thread::sleep(Duration::from_micros(250));
    }
    shared.live.store(known.len(), Ordering::Relaxed);
}
