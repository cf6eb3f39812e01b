//! Starting the program with the library injected, waiting for every process that loaded it,
//! and handing over what their tables hold.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use allocflame_backend_perf::procfs;
use allocflame_backend_perf::spawn::{self, HeldChild};
use allocflame_core::source::{
    ObjectFile, ProgramExit, RawStack, RecordOptions, RecordReport, StackSink, Target,
};
use allocflame_core::Result;

use crate::common::{self, os, SharedFile};
use crate::shm::{self, FUNCTIONS};
use crate::{suitable, PreloadSource};

/// Removes the shared files of recordings whose allocflame is gone (killed before it could):
/// ours, named `allocflame-PID-N`, with no process PID.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("allocflame-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = e.metadata().is_ok_and(|m| m.is_file() && m.uid() == me);
        if ours && !procfs::alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The program's environment: allocflame's own, with the library first in `LD_PRELOAD`.
fn environment(library: &Path, shared: &Path) -> Vec<OsString> {
    let mut env: Vec<OsString> = Vec::new();
    let mut user_preload = None;
    for (k, v) in std::env::vars_os() {
        if k == "LD_PRELOAD" {
            user_preload = Some(v);
        } else if k != "ALLOCFLAME_SHM" && k != "ALLOCFLAME_USER_LD_PRELOAD" {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            env.push(kv);
        }
    }
    let mut preload = OsString::from("LD_PRELOAD=");
    preload.push(library);
    if let Some(user) = &user_preload {
        preload.push(":");
        preload.push(user);
        let mut kept = OsString::from("ALLOCFLAME_USER_LD_PRELOAD=");
        kept.push(user);
        env.push(kept);
    }
    env.push(preload);
    let mut shm = OsString::from("ALLOCFLAME_SHM=");
    shm.push(shared);
    env.push(shm);
    env
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    // SAFETY: a fresh fd we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until one of `fds` is readable (its process ended) or `ms` pass.
fn poll_any(fds: &[&OwnedFd], ms: i32) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: polling our own fds.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
}

/// Whether `pid` is a live process that has `shared` mapped (so it is one of ours, not a
/// process that got a recycled pid).
fn live_recorder(pid: u32, shared: &Path) -> bool {
    if !procfs::alive(pid) {
        return false;
    }
    let maps = std::fs::read(format!("/proc/{pid}/maps")).unwrap_or_default();
    let needle = shared.as_os_str().as_bytes();
    maps.windows(needle.len()).any(|w| w == needle)
}

/// What the perf backend recorded of a process that could not load the library.
#[derive(Default)]
struct Buffer {
    stacks: Vec<RawStack>,
    lost: u64,
}

impl StackSink for Buffer {
    fn add(&mut self, stack: RawStack) {
        self.stacks.push(stack);
    }
    fn lost(&mut self, n: u64) {
        self.lost += n;
    }
}

/// A process handed to the perf backend at its exec.
struct Takeover {
    pid: u32,
    program: String,
    why: String,
    recording: std::thread::JoinHandle<(Result<RecordReport>, Buffer)>,
}

/// The started program's pid, and whether the perf backend took it over: its tracer thread is
/// in this process, so the kernel would report the program's ptrace stops to our `waitpid`
/// too, which must then stop (the lock orders the two).
#[derive(Default)]
struct MainProcess {
    pid: std::sync::atomic::AtomicU32,
    taken_over: std::sync::Mutex<bool>,
}

/// The answers to exec intents, from a thread of their own while the programs run.
struct Decider {
    done: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Decided>,
}

/// What the decider did while the programs ran.
#[derive(Default)]
struct Decided {
    /// The processes the perf backend took over.
    takeovers: Vec<Takeover>,
    notes: Vec<String>,
    /// The object files the processes recorded, opened while they were the files mapped.
    held: common::Held,
}

/// `object`'s file, if the file at its path is still the one recorded (same build-id).
fn open_recorded(object: &ObjectFile) -> Option<std::fs::File> {
    use object::Object as _;
    let f = std::fs::File::open(&object.path).ok()?;
    if let Some(want) = &object.build_id {
        // SAFETY: read-only, and only to compare the build-id.
        let map = unsafe { memmap2::Mmap::map(&f) }.ok()?;
        let id = object::File::parse(&*map).ok()?.build_id().ok()??;
        if id != want.as_slice() {
            return None;
        }
    }
    Some(f)
}

fn futex_wait(word: *const u32, value: u32, ms: i64) {
    let t = libc::timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    // SAFETY: a futex wait on a word of the shared mapping, which outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAIT,
            value,
            &t as *const _,
            0,
            0,
        );
    }
}

fn futex_wake(word: *const u32) {
    // SAFETY: as above.
    unsafe {
        libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, i32::MAX, 0, 0, 0);
    }
}

/// The effective uid and gid of `pid`.
fn ids(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let second = |name: &str| -> Option<u32> {
        procfs::parse_status_field(&status, name)?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((second("Uid")?, second("Gid")?))
}

/// Why the image `intent` asks for cannot load the library, or `None` when it can. `owner`:
/// the shared file's owner, whom alone (and root) it lets in.
fn cannot_follow(intent: &shm::Intent, owner: u32) -> Option<String> {
    if intent.flags & shm::I_LIB_UNREADABLE != 0 {
        return Some("the in-process library's path does not resolve there (another root)".into());
    }
    if intent.flags & shm::I_SHM_UNWRITABLE != 0 {
        return Some("it runs as a user that cannot open allocflame's shared file".into());
    }
    let pid = intent.pid;
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let program = if intent.path.starts_with('/') {
        root.join(intent.path.trim_start_matches('/'))
    } else {
        PathBuf::from(format!("/proc/{pid}/cwd")).join(&intent.path)
    };
    // A program that is not there fails to exec: nothing to decide.
    if !program.exists() {
        return None;
    }
    let (euid, egid) = ids(pid)?;
    // What the process may open now can differ from what the new image may: capabilities kept
    // through a change of user are dropped at the exec.
    if euid != 0 && euid != owner {
        return Some(format!(
            "it runs as uid {euid}, which cannot open allocflame's shared file"
        ));
    }
    suitable::unsuitable_in(&root, &program, euid, egid)
}

impl Decider {
    fn start(
        map: Arc<memmap2::MmapRaw>,
        options: &RecordOptions,
        main: Arc<MainProcess>,
    ) -> Decider {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, options) = (done.clone(), options.clone());
        // SAFETY: geteuid has no preconditions.
        let owner = unsafe { libc::geteuid() };
        let thread = std::thread::spawn(move || {
            let base = map.as_mut_ptr();
            let seq = base.wrapping_add(shm::INTENT_SEQ_OFFSET as usize) as *const u32;
            let mut decided = Decided::default();
            let (takeovers, notes) = (&mut decided.takeovers, &mut decided.notes);
            let mut seen_objects: FxHashSet<Arc<ObjectFile>> = FxHashSet::default();
            let mut answered: FxHashSet<u64> = FxHashSet::default();
            let mut code = allocflame_backend_perf::objects::CodeWithoutCfi::new();
            loop {
                // SAFETY: the mapping lives as long as `map`; the word is only read.
                let seen = unsafe { std::ptr::read_volatile(seq) };
                // SAFETY: the file's bytes, read while the programs write: a racy snapshot the
                // reader treats as untrusted.
                let bytes = unsafe { std::slice::from_raw_parts(base, map.len()) };
                for intent in shm::intents(bytes) {
                    if intent.state != shm::I_PENDING || !answered.insert(intent.offset) {
                        continue;
                    }
                    let answer = match cannot_follow(&intent, owner) {
                        None => shm::I_FOLLOW,
                        Some(why) if intent.flags & shm::I_SPAWN != 0 => {
                            notes.push(format!(
                                "pid {} started {} with posix_spawn, which cannot load the in-process library ({why}): its allocations are not counted (record it with --backend perf)",
                                intent.pid, intent.path
                            ));
                            shm::I_LEAVE
                        }
                        Some(why) => {
                            if intent.pid == main.pid.load(Ordering::Relaxed) {
                                if let Ok(mut t) = main.taken_over.lock() {
                                    *t = true;
                                }
                            }
                            takeovers.push(take_over(&intent, why, &options));
                            shm::I_LEAVE
                        }
                    };
                    let state =
                        base.wrapping_add((intent.offset + shm::INTENT_STATE) as usize) as *mut u32;
                    // SAFETY: the state word of an intent record inside the mapping.
                    unsafe { std::ptr::write_volatile(state, answer) };
                    futex_wake(state);
                }
                for q in shm::rule_requests(bytes) {
                    if q.answered || !answered.insert(q.offset) {
                        continue;
                    }
                    let offset = q.ra.wrapping_sub(q.start).wrapping_add(q.file_offset);
                    // No rule from the code: walk the frame pointer, as the perf backend's
                    // unwinder does there.
                    let answer = match code.rule(&q.path, offset) {
                        Some(r) => shm::pack_rule(r.cfa_from_rbp, r.cfa_offset, r.saved_rbp, false),
                        None => shm::pack_rule(true, 16, Some(16), true),
                    };
                    let at = |o: u64| base.wrapping_add((q.offset + o) as usize);
                    // SAFETY: the answer and state words of a request inside the mapping.
                    unsafe {
                        std::ptr::write_volatile(at(shm::REQUEST_ANSWER) as *mut u64, answer);
                        std::ptr::write_volatile(at(shm::REQUEST_STATE) as *mut u32, 1);
                    }
                    futex_wake(at(shm::REQUEST_STATE) as *const u32);
                }
                for o in shm::objects(bytes) {
                    if seen_objects.insert(o.clone()) {
                        if let Some(f) = open_recorded(&o) {
                            decided.held.insert((o.path.clone(), o.build_id.clone()), f);
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                futex_wait(seq, seen, 100);
            }
            decided
        });
        Decider { done, thread }
    }

    fn finish(self) -> Decided {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Starts the perf backend on `intent`'s process, which waits in its exec hook until the perf
/// backend traces it (so that it follows the exec).
fn take_over(intent: &shm::Intent, why: String, options: &RecordOptions) -> Takeover {
    let pid = intent.pid;
    let opts = options.clone();
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let perf = allocflame_backend_perf::PerfSource {
        ready: Some(ready.clone()),
        ..Default::default()
    };
    let recording = std::thread::spawn(move || {
        let mut buffer = Buffer::default();
        let target = Target::Attach {
            pid,
            duration: None,
        };
        use allocflame_core::source::EventSource as _;
        let r = { perf }.record(&target, &opts, &mut buffer);
        (r, buffer)
    });
    // The exec may go on once the perf backend's events are open on the process (so that it
    // sees the exec and the new image's mappings), or once the attach failed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !recording.is_finished()
        && !ready.load(Ordering::Acquire)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Takeover {
        pid,
        program: intent.path.clone(),
        why,
        recording,
    }
}

pub(crate) fn record(
    source: &PreloadSource,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let argv = common::program_to_start(target, options, "perf")?;
    let index = shm::probe_index(&FUNCTIONS, &options.probes);
    let program = spawn::resolve_program(&argv[0])?;
    let library = common::install_library(
        "so",
        "this allocflame was built without a C compiler, so the in-process library is missing; use --backend perf",
    )?;
    let shm_dir = Path::new("/dev/shm");
    let dir = if shm_dir.is_dir() && common::free_bytes(shm_dir).is_some_and(|b| b > 64 << 20) {
        shm_dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_stale(&dir);
    let shared = SharedFile::create(&dir, source.capacity, options, true)?;
    let env = environment(&library, &shared.path);
    let raw = Arc::new(
        memmap2::MmapOptions::new()
            .len(shared.capacity as usize)
            .map_raw(&shared.file)
            .map_err(os("cannot map the shared file"))?,
    );
    let main_process = Arc::new(MainProcess::default());
    let decider = Decider::start(raw, options, main_process.clone());
    let mut child: HeldChild = spawn::spawn_held_with(&program, argv, Some(&env))?;
    shared.set_main_pid(child.pid as u32);
    if let Err(e) = child.release(&program) {
        spawn::try_wait(child.pid, true);
        decider.finish();
        return Err(e);
    }
    let main = child.pid as u32;
    main_process.pid.store(main, Ordering::Relaxed);
    let mut report = RecordReport::new("preload", options.probes.len());
    let tick = || {
        if let (Some(p), Ok(m)) = (&source.progress, shared.map()) {
            p.store(shm::total(&m), Ordering::Relaxed);
        }
    };
    let mut exit = match wait_program(child.pid, &main_process, options, &tick) {
        Waited::Ended(e) => e,
        Waited::Stopped(e) => {
            report.interrupted = true;
            e
        }
    };
    if !report.interrupted {
        report.interrupted = wait_others(&shared, main, options, &tick);
    }
    let decided = decider.finish();
    report.notes.extend(decided.notes);
    for t in decided.takeovers {
        let pid = t.pid;
        if let Some(e) = merge(t, sink, &mut report).filter(|_| pid == main && exit.is_none()) {
            exit = Some(e);
        }
    }
    if exit.is_none() && !report.interrupted {
        // The perf backend took the program over and ended before it reaped it: it is our
        // zombie to reap, now that no tracer holds it.
        exit = reap(child.pid);
    }
    report.set_exit(exit);
    if let Some(killed @ ProgramExit::Signal(_)) = exit.filter(|_| !report.interrupted) {
        report.notes.push(format!(
            "the program {killed}; the results cover its run until then"
        ));
        report.interrupted = true;
    }
    let image = shared.map()?;
    let contents = shm::read(&image);
    let why = |_: Option<&str>| "record it with --backend perf".to_string();
    report.notes.extend(common::not_loaded(
        &contents,
        &shm::intents(&image),
        main,
        &why,
    ));
    common::hand_over(
        contents,
        &decided.held,
        &index,
        &FUNCTIONS,
        "at a frame without unwind information (as the perf backend's stacks do there)",
        options,
        sink,
        &mut report,
    );
    Ok(report)
}

/// How waiting for a program ended.
enum Waited {
    /// It ended (how, when known).
    Ended(Option<ProgramExit>),
    /// The user asked to stop (and how the program then ended, when known).
    Stopped(Option<ProgramExit>),
}

/// Waits for the started program, `tick`ing the live counter.
fn wait_program(pid: i32, main: &MainProcess, options: &RecordOptions, tick: &dyn Fn()) -> Waited {
    let fd = pidfd(pid as u32);
    loop {
        if options.stop_requested() {
            // The program does not outlive its recording (as with the perf backend).
            let taken = main.taken_over.lock().map(|t| *t).unwrap_or(true);
            return Waited::Stopped(if taken { None } else { stop_child(pid) });
        }
        match &fd {
            Some(fd) => poll_any(&[fd], 250),
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
        let ended = match main.taken_over.lock() {
            Ok(t) if !*t => wait_own(pid),
            // The perf backend's tracer reaps it and says how it ended.
            _ => (!procfs::alive(pid as u32)).then_some(None),
        };
        if let Some(e) = ended {
            return Waited::Ended(e);
        }
        tick();
    }
}

/// Waits for every other process that loaded the library, to its end (a child that outlives
/// the program is recorded until it exits); `true` if the user asked to stop first.
fn wait_others(shared: &SharedFile, main: u32, options: &RecordOptions, tick: &dyn Fn()) -> bool {
    let mut ended: FxHashSet<u32> = FxHashSet::default();
    ended.insert(main);
    loop {
        if options.stop_requested() {
            return true;
        }
        let pids: FxHashSet<u32> = match shared.map() {
            Ok(image) => shm::processes(&image).into_iter().map(|p| p.pid).collect(),
            Err(_) => return false,
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for pid in pids {
            if ended.contains(&pid) {
                continue;
            }
            if !live_recorder(pid, &shared.path) {
                ended.insert(pid);
            } else if let Some(fd) = pidfd(pid) {
                fds.push(fd);
            }
        }
        if fds.is_empty() {
            return false;
        }
        poll_any(&fds.iter().collect::<Vec<_>>(), 250);
        tick();
    }
}

/// Waits for our child `pid` to end and says how it did (`None`: someone else reaped it).
fn reap(pid: i32) -> Option<ProgramExit> {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WNOTHREAD) };
    (r == pid).then(|| spawn::exit_of(status)).flatten()
}

/// Ends our child `pid` (SIGTERM, then SIGKILL after 2 s) and says how it ended.
fn stop_child(pid: i32) -> Option<ProgramExit> {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if let Some(e) = wait_own(pid) {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    loop {
        if let Some(e) = wait_own(pid) {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// How our child `pid` ended: `None` while it runs, `Some(None)` when the perf backend's tracer
/// thread reaped it (it took the process over), and `__WNOTHREAD` so that its ptrace stops stay
/// that thread's to see.
fn wait_own(pid: i32) -> Option<Option<ProgramExit>> {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WNOTHREAD) };
    if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
        return Some(None);
    }
    (r == pid)
        .then(|| spawn::exit_of(status))
        .flatten()
        .map(Some)
}

/// What the perf backend recorded of a process it took over; how the process ended, if it saw.
fn merge(t: Takeover, sink: &mut dyn StackSink, report: &mut RecordReport) -> Option<ProgramExit> {
    let (result, buffer) = match t.recording.join() {
        Ok(r) => r,
        Err(_) => {
            report.notes.push(format!(
                "the perf backend failed while recording pid {} ({}): its allocations are not counted",
                t.pid, t.program
            ));
            return None;
        }
    };
    let mut ended = None;
    match result {
        Ok(r) => {
            ended = r.attached_exit;
            report.notes.push(format!(
                "pid {} exec'd {}, which cannot load the in-process library ({}): the perf backend recorded it from there ({} allocations)",
                t.pid,
                t.program,
                t.why,
                r.total().allocs
            ));
            for (total, w) in report.per_probe.iter_mut().zip(&r.per_probe) {
                *total += *w;
            }
            report.lost += r.lost;
            report.interrupted |= r.interrupted;
            report
                .notes
                .extend(r.notes.into_iter().map(|n| format!("perf backend: {n}")));
        }
        Err(e) => report.notes.push(format!(
            "pid {} exec'd {}, which cannot load the in-process library ({}), and the perf backend could not take over: {e}; its allocations are not counted",
            t.pid, t.program, t.why
        )),
    }
    for stack in buffer.stacks {
        sink.add(stack);
    }
    if buffer.lost > 0 {
        sink.lost(buffer.lost);
    }
    ended
}
