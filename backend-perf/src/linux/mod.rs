//! The Linux recorder: places the probes, follows the target, reads the ring buffers in time
//! order, unwinds and aggregates each allocation by (process, probe, normalized stack).

mod events;
mod process;
mod resolve;
mod spawn;
mod tracer;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allocflame_core::probes::{catalog, Platform};
use allocflame_core::source::{RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};
use rustc_hash::FxHashMap;

use crate::PerfSource;
use events::{EventSpec, Ring};
use resolve::Location;
use tracer::Tracer;

/// The events of one recording: every fd (their closing removes the probes) and the per-CPU
/// ring buffers.
struct Events {
    rings: Vec<Ring>,
    _others: Vec<OwnedFd>,
    ids: FxHashMap<u64, usize>,
}

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

fn paranoid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn open_error(e: std::io::Error, what: String, pid: i32) -> Error {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            what,
            hint: format!(
                "uprobes need root or CAP_PERFMON (+ CAP_SYS_PTRACE to attach): run with sudo, or `sudo setcap cap_perfmon,cap_sys_ptrace,cap_ipc_lock+ep $(command -v allocflame)`; kernel.perf_event_paranoid is {} (`sudo sysctl kernel.perf_event_paranoid=-1` lets unprivileged users profile their own processes on some kernels)",
                paranoid()
            ),
        },
        Some(libc::ESRCH) => Error::Invalid(format!("{what}: no process {pid} (it exited?)")),
        _ => Error::Backend(format!("{what}: {e}")),
    }
}

/// Opens the events of every location on every CPU for the tasks `tids`.
fn open_events(
    pmu: u32,
    locs: &[Location],
    tids: &[i32],
    stack_bytes: u32,
    max_callchain: u16,
    buffer_bytes: usize,
    notes: &mut Vec<String>,
) -> Result<Events> {
    let page = events::page_size();
    let mut pages = (buffer_bytes / page).next_power_of_two().max(8);
    let mut rings: Vec<Ring> = Vec::new();
    let mut others = Vec::new();
    let mut ids = FxHashMap::default();
    for cpu in online_cpus() {
        let mut leader: Option<usize> = None;
        for &tid in tids {
            for (li, loc) in locs.iter().enumerate() {
                let spec = EventSpec {
                    pmu,
                    path: &loc.path,
                    offset: loc.offset,
                    stack_bytes,
                    side_records: li == 0,
                    wakeup_bytes: ((pages * page) / 4) as u32,
                    max_callchain,
                };
                let fd = events::open_uprobe(&spec, tid, cpu).map_err(|e| {
                    open_error(
                        e,
                        format!(
                            "perf_event_open of a uprobe on {}+{:#x} for pid {tid}",
                            loc.path.display(),
                            loc.offset
                        ),
                        tid,
                    )
                })?;
                let id = events::event_id(&fd)
                    .map_err(|e| Error::Backend(format!("PERF_EVENT_IOC_ID: {e}")))?;
                ids.insert(id, li);
                match leader {
                    None => {
                        let ring = loop {
                            match Ring::new(fd.try_clone().map_err(|e| Error::Backend(e.to_string()))?, pages) {
                                Ok(r) => break r,
                                Err(e) if e.raw_os_error() == Some(libc::EPERM) && pages > 8 => {
                                    pages /= 4;
                                }
                                Err(e) => {
                                    return Err(open_error(
                                        e,
                                        "mmap of a perf ring buffer".into(),
                                        tid,
                                    ))
                                }
                            }
                        };
                        if pages * page < buffer_bytes {
                            notes.push(format!(
                                "ring buffers reduced to {} KiB per CPU by the locked-memory limit (raise kernel.perf_event_mlock_kb or run as root)",
                                pages * page / 1024
                            ));
                        }
                        leader = Some(rings.len());
                        rings.push(ring);
                        others.push(fd);
                    }
                    Some(l) => {
                        events::redirect_output(&fd, rings[l].fd())
                            .map_err(|e| Error::Backend(format!("PERF_EVENT_IOC_SET_OUTPUT: {e}")))?;
                        others.push(fd);
                    }
                }
            }
        }
    }
    notes.dedup();
    Ok(Events {
        rings,
        _others: others,
        ids,
    })
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

/// Records `target`.
pub(crate) fn record(
    source: &PerfSource,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let mut report = RecordReport::new("perf", options.probes.len());
    let pmu = events::uprobe_pmu_type()?;
    let stack_bytes = source
        .stack_bytes
        .unwrap_or(if options.stacks { 2048 } else { 1024 })
        .clamp(64, 65528)
        & !7;
    let buffer_bytes = source.buffer_bytes.unwrap_or(64 << 20);
    // The kernel's frame-pointer callchain continues a stack past the copied bytes.
    let max_callchain = if options.stacks {
        let sysctl = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(127);
        options.max_depth.min(sysctl).clamp(1, u16::MAX as usize) as u16
    } else {
        0
    };
    let builtin = catalog(Platform::current());
    let user_from_flags: Vec<bool> = options.probes.iter().map(|p| !builtin.contains(p)).collect();

    match target {
        Target::Spawn { argv } => {
            let Some(program) = argv.first() else {
                return Err(Error::Invalid("no program given to record".into()));
            };
            let path = spawn::resolve_program(program)?;
            let locs = resolve::locate(&options.probes, &user_from_flags, None, &mut report.notes)?;
            if locs.is_empty() {
                return Err(Error::Invalid(
                    "none of the probes could be placed (see the notes above)".into(),
                ));
            }
            let mut child = spawn::spawn_held(&path, argv)?;
            let events = match open_events(pmu, &locs, &[child.pid], stack_bytes, max_callchain, buffer_bytes, &mut report.notes) {
                Ok(e) => e,
                Err(e) => {
                    child.abandon();
                    return Err(e);
                }
            };
            let comm = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut tracer = Tracer::new(options, locs, events.ids.clone(), child.pid as u32, comm, max_callchain > 0);
            tracer.progress = source.progress.clone();
            if let Err(e) = child.release(&path) {
                spawn::try_wait(child.pid, true);
                return Err(e);
            }
            let pid = child.pid;
            let mut exit = None;
            let interrupted = run_loop(&mut tracer, events, options, || {
                if exit.is_none() {
                    exit = spawn::try_wait(pid, false);
                }
                exit.is_some()
            });
            if exit.is_none() {
                // Stopped early: the program does not outlive its recording.
                // SAFETY: signalling and reaping our own child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(2);
                while exit.is_none() && Instant::now() < deadline {
                    exit = spawn::try_wait(pid, false);
                    std::thread::sleep(Duration::from_millis(20));
                }
                if exit.is_none() {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    exit = spawn::try_wait(pid, true);
                }
            }
            report.interrupted = interrupted;
            report.exit_code = exit.filter(|&c| c >= 0);
            if let Some(c) = report.exit_code.filter(|&c| c > 128 && !interrupted) {
                report.notes.push(format!(
                    "the program was killed by signal {}; the results cover its run until then",
                    c - 128
                ));
                report.interrupted = true;
            }
            tracer.finish(&mut report, sink);
        }
        Target::Attach { pid, duration } => {
            let pid = *pid;
            if !alive(pid) {
                return Err(Error::Invalid(format!(
                    "no process {pid} (check the pid with `pgrep`)"
                )));
            }
            let locs = resolve::locate(&options.probes, &user_from_flags, Some(pid), &mut report.notes)?;
            if locs.is_empty() {
                return Err(Error::Invalid(
                    "none of the probes could be placed (see the notes above)".into(),
                ));
            }
            // Threads started while we open the events are caught by a second look (events
            // on a thread are inherited by the threads it creates after the event exists).
            let mut tids = tids_of(pid);
            let mut events = open_events(pmu, &locs, &tids, stack_bytes, max_callchain, buffer_bytes, &mut report.notes)?;
            for _ in 0..5 {
                let now = tids_of(pid);
                let new: Vec<i32> = now.iter().copied().filter(|t| !tids.contains(t)).collect();
                if new.is_empty() {
                    break;
                }
                let more = open_events(pmu, &locs, &new, stack_bytes, max_callchain, buffer_bytes, &mut report.notes)?;
                events.rings.extend(more.rings);
                events._others.extend(more._others);
                events.ids.extend(more.ids);
                tids = now;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| format!("pid {pid}"));
            let mut tracer = Tracer::new(options, locs, events.ids.clone(), pid, comm, max_callchain > 0);
            tracer.progress = source.progress.clone();
            tracer.seed_maps(pid);
            let deadline = duration.map(|d| Instant::now() + d);
            let mut gone = false;
            let interrupted = run_loop(&mut tracer, events, options, || {
                gone = !alive(pid);
                gone || deadline.is_some_and(|d| Instant::now() >= d)
            });
            report.interrupted = interrupted;
            if gone {
                report
                    .notes
                    .push(format!("process {pid} exited during the recording"));
            }
            tracer.finish(&mut report, sink);
        }
    }
    Ok(report)
}

/// Reads the ring buffers until `done` says the target is finished or the user stops; returns
/// whether the user stopped it. The events are closed (probes removed) on return.
fn run_loop(
    tracer: &mut Tracer,
    mut events: Events,
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
    let mut pollfds: Vec<libc::pollfd> = events
        .rings
        .iter()
        .map(|r| libc::pollfd {
            fd: r.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let interrupted = loop {
        let finished = done();
        let stop = options.stop.load(Ordering::Relaxed);
        // Everything stamped before now is already in the buffers (a thread's next record
        // can only follow its previous one), so records are merged in time order up to now.
        tracer.drain(&mut events.rings, events::now_ns());
        if finished || stop {
            tracer.drain(&mut events.rings, u64::MAX);
            break stop && !finished;
        }
        // SAFETY: polling fds we own.
        unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 5) };
    };
    drop(events);
    interrupted
}
