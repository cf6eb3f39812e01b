//! Following the target's threads and children with ptrace, so each new task gets its events
//! before it runs a single instruction (see `events.rs` for why `inherit` cannot be used).
//!
//! All ptrace calls come from one thread, the tracer thread. It never stops a task itself:
//! tasks are seized (`PTRACE_SEIZE`, no SIGSTOP) and only new tasks pause, at their creation,
//! until their events are open. When the tracer thread ends (normally, or because allocflame is
//! killed, even by SIGKILL), the kernel detaches every tracee and lets it run on.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allocflame_core::{Error, Result};
use rustc_hash::{FxHashMap, FxHashSet};

use super::events::{self, EventSpec, Ring};
use super::resolve::Location;
use super::spawn;

/// How events are opened for a task.
#[derive(Clone)]
pub(crate) struct EventParams {
    pub pmu: u32,
    pub locs: Vec<Location>,
    pub stack_bytes: u32,
    pub max_callchain: u16,
    pub buffer_bytes: usize,
    pub cpus: Vec<i32>,
    /// Whether forked children are followed (threads always are).
    pub follow_children: bool,
}

/// State shared by the tracer thread and the reader.
#[derive(Default)]
pub(crate) struct Shared {
    /// Event id → location index, for every event opened so far.
    pub ids: Mutex<FxHashMap<u64, usize>>,
    /// Set by the reader to end the tracer thread.
    pub quit: AtomicBool,
    /// The exit of the spawned program (code, or 128 + signal), once it ended.
    pub main_exit: Mutex<Option<i32>>,
    /// Notes for the report.
    pub notes: Mutex<Vec<String>>,
}

/// Opened events of one task.
struct TaskEvents {
    _fds: Vec<OwnedFd>,
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
        _ => Error::Backend(format!("{what}: {e}")),
    }
}

/// Opens the events of every location on every CPU for task `tid`. With `leaders`, they write
/// into those per-CPU buffers; without, the first event of each CPU gets a new ring buffer.
fn open_task(
    p: &EventParams,
    tid: i32,
    leaders: Option<&[(i32, RawFd)]>,
    ids: &Mutex<FxHashMap<u64, usize>>,
    rings: &mut Vec<Ring>,
    notes: &mut Vec<String>,
) -> Result<TaskEvents> {
    let page = events::page_size();
    let mut fds = Vec::new();
    let mut new_ids = Vec::new();
    for &cpu in &p.cpus {
        let mut leader: Option<RawFd> =
            leaders.and_then(|l| l.iter().find(|(c, _)| *c == cpu).map(|&(_, fd)| fd));
        for (li, loc) in p.locs.iter().enumerate() {
            let mut pages = (p.buffer_bytes / page).next_power_of_two().max(8);
            let spec = EventSpec {
                pmu: p.pmu,
                path: &loc.path,
                offset: loc.offset,
                stack_bytes: p.stack_bytes,
                side_records: li == 0,
                wakeup_bytes: ((pages * page) / 4) as u32,
                max_callchain: p.max_callchain,
            };
            let fd = match events::open_uprobe(&spec, tid, cpu) {
                Ok(fd) => fd,
                // The task ended before we got to it: nothing to record.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) && leaders.is_some() => {
                    return Ok(TaskEvents { _fds: fds })
                }
                Err(e) => {
                    return Err(open_error(
                        e,
                        format!(
                            "perf_event_open of a uprobe on {}+{:#x} for pid {tid}",
                            loc.path.display(),
                            loc.offset
                        ),
                        tid,
                    ))
                }
            };
            let id = events::event_id(&fd)
                .map_err(|e| Error::Backend(format!("PERF_EVENT_IOC_ID: {e}")))?;
            new_ids.push((id, li));
            match leader {
                Some(l) => {
                    events::redirect_output_raw(&fd, l)
                        .map_err(|e| Error::Backend(format!("PERF_EVENT_IOC_SET_OUTPUT: {e}")))?;
                }
                None => {
                    let dup = fd.try_clone().map_err(|e| Error::Backend(e.to_string()))?;
                    let ring = loop {
                        match Ring::new(
                            dup.try_clone().map_err(|e| Error::Backend(e.to_string()))?,
                            pages,
                        ) {
                            Ok(r) => break r,
                            Err(e) if e.raw_os_error() == Some(libc::EPERM) && pages > 8 => {
                                pages /= 4;
                            }
                            Err(e) => {
                                return Err(open_error(e, "mmap of a perf ring buffer".into(), tid))
                            }
                        }
                    };
                    if pages * page < p.buffer_bytes {
                        notes.push(format!(
                            "ring buffers reduced to {} KiB per CPU by the locked-memory limit (raise kernel.perf_event_mlock_kb or run as root)",
                            pages * page / 1024
                        ));
                    }
                    leader = Some(ring.fd().as_raw_fd());
                    rings.push(ring);
                }
            }
            fds.push(fd);
        }
    }
    // The ids are known to the reader before the task runs.
    if let Ok(mut map) = ids.lock() {
        map.extend(new_ids);
    }
    Ok(TaskEvents { _fds: fds })
}

/// Threads are always followed; forked children only when `children`.
fn ptrace_options(children: bool) -> libc::c_int {
    libc::PTRACE_O_TRACECLONE
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

/// The TracerPid of a task (0: not traced).
fn tracer_of(tid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn tids_of(pid: u32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
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

/// Runs the tracer thread: starts or seizes the target, opens the first events and hands the
/// ring buffers over through `ready`, then follows new tasks until `shared.quit`.
pub(crate) fn tracer_thread(
    start: Start,
    params: EventParams,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(Vec<Ring>, u32)>>,
) -> Option<Vec<OwnedFd>> {
    let mut notes = Vec::new();
    let mut rings = Vec::new();
    let mut tasks: FxHashMap<i32, TaskEvents> = FxHashMap::default();
    let main_pid: i32;
    let mut spawned = None;
    match start {
        Start::Spawn { program, argv } => {
            let mut child = match spawn::spawn_held(&program, &argv) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return None;
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
                .and_then(|_| {
                    open_task(
                        &params,
                        child.pid,
                        None,
                        &shared.ids,
                        &mut rings,
                        &mut notes,
                    )
                });
            match opened {
                Ok(ev) => {
                    tasks.insert(child.pid, ev);
                }
                Err(e) => {
                    child.abandon();
                    let _ = ready.send(Err(e));
                    return None;
                }
            }
            if let Err(e) = child.release(&program) {
                spawn::try_wait(child.pid, true);
                let _ = ready.send(Err(e));
                return None;
            }
            spawned = Some(child.pid);
        }
        Start::Attach { pid } => {
            main_pid = pid as i32;
            let mut seen: FxHashSet<i32> = FxHashSet::default();
            // Threads started while we seize are caught by another look: a seized thread's
            // later clones stop for us.
            for _ in 0..10 {
                let new: Vec<i32> = tids_of(pid)
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
                        let tracer = tracer_of(tid);
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
                            return None;
                        }
                    }
                    let leaders: Vec<(i32, RawFd)> = leaders_of(&params, &rings);
                    let l = (!rings.is_empty()).then_some(&leaders[..]);
                    match open_task(&params, tid, l, &shared.ids, &mut rings, &mut notes) {
                        Ok(ev) => {
                            tasks.insert(tid, ev);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return None;
                        }
                    }
                }
            }
        }
    }
    let leaders = leaders_of(&params, &rings);
    // New tasks wait for this thread: as root, run it ahead of ordinary processes.
    // SAFETY: setpriority on our own thread id; failing is harmless.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -10);
    }
    if let Ok(mut n) = shared.notes.lock() {
        n.extend(notes.drain(..));
    }
    if ready.send(Ok((rings, main_pid as u32))).is_err() {
        return None;
    }
    let mut graveyard = Vec::new();
    follow(
        &params,
        &leaders,
        &shared,
        &mut tasks,
        spawned,
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
        graveyard.extend(ev._fds);
    }
    // Returning ends this thread: the kernel detaches every remaining tracee at once; the
    // caller releases the probes.
    Some(graveyard)
}

fn leaders_of(params: &EventParams, rings: &[Ring]) -> Vec<(i32, RawFd)> {
    params
        .cpus
        .iter()
        .zip(rings)
        .map(|(&c, r)| (c, r.fd().as_raw_fd()))
        .collect()
}

fn stop_child(pid: i32) -> i32 {
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
    wait_main(pid, true).unwrap_or(128 + libc::SIGKILL)
}

/// Waits for `pid` (a traced child) to end, resuming it from any ptrace stop on the way.
fn wait_main(pid: i32, block: bool) -> Option<i32> {
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
                Some(128 + libc::SIGKILL)
            } else {
                None
            };
        }
        if libc::WIFEXITED(status) {
            return Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Some(128 + libc::WTERMSIG(status));
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

/// Handles ptrace stops until `quit`: new tasks get their events and are resumed; signals are
/// delivered as they would be without us; group stops stay stops (`PTRACE_LISTEN`).
fn follow(
    params: &EventParams,
    leaders: &[(i32, RawFd)],
    shared: &Shared,
    tasks: &mut FxHashMap<i32, TaskEvents>,
    spawned: Option<i32>,
    graveyard: &mut Vec<OwnedFd>,
) {
    let mut notes = Vec::new();
    let mut rings = Vec::new();
    let mut failed_open = 0u64;
    // Only our own tracees are waited for, by pid: waitpid(-1) would also reap children that
    // the host process (a test harness, an application embedding us) started itself.
    let mut known: Vec<i32> = tasks.keys().copied().collect();
    let mut next = 0usize;
    while !shared.quit.load(Ordering::Relaxed) {
        if known.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        if next >= known.len() {
            next = 0;
            std::thread::sleep(Duration::from_micros(300));
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
            if let Some(ev) = tasks.remove(&tid) {
                graveyard.extend(ev._fds);
            }
            continue;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            known.swap_remove(next);
            // Closing a uprobe event waits for RCU grace periods (~70 ms here) under a kernel
            // mutex that opening one also takes: closing now would stall the target's next
            // thread creation, so the fds are closed after the recording.
            if let Some(ev) = tasks.remove(&tid) {
                graveyard.extend(ev._fds);
            }
            if Some(tid) == spawned {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                if let Ok(mut e) = shared.main_exit.lock() {
                    *e = Some(code);
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
            // A new task's first stop: give it events, then let it run.
            if let std::collections::hash_map::Entry::Vacant(v) = tasks.entry(tid) {
                match open_task(
                    params,
                    tid,
                    Some(leaders),
                    &shared.ids,
                    &mut rings,
                    &mut notes,
                ) {
                    Ok(ev) => {
                        v.insert(ev);
                    }
                    Err(_) => failed_open += 1,
                }
            }
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        } else if event != 0 {
            // PTRACE_EVENT_CLONE / FORK / VFORK at the parent: the new task reports its own
            // first stop; from now on we wait for it too.
            let mut new_pid: libc::c_ulong = 0;
            // SAFETY: GETEVENTMSG writes one unsigned long.
            let ok = unsafe {
                libc::ptrace(
                    libc::PTRACE_GETEVENTMSG,
                    tid,
                    std::ptr::null_mut::<libc::c_void>(),
                    &mut new_pid as *mut libc::c_ulong as *mut libc::c_void,
                )
            } == 0;
            if ok && new_pid > 0 && !known.contains(&(new_pid as i32)) {
                known.push(new_pid as i32);
            }
            ptrace_cont(libc::PTRACE_CONT, tid, 0);
        } else {
            // A signal on its way to the task: deliver it.
            ptrace_cont(libc::PTRACE_CONT, tid, sig);
        }
    }
    if failed_open > 0 {
        if let Ok(mut n) = shared.notes.lock() {
            n.push(format!(
                "{failed_open} new threads or processes could not be given probes; their allocations are missing"
            ));
        }
    }
}
