//! macOS: starting the program with the library injected through `DYLD_INSERT_LIBRARIES`,
//! waiting for it and every process that loaded the library, and handing over what their
//! tables hold. Nobody answers exec intents here (the library gives its variables to every
//! child); the intents only tell which images should have loaded it, so that one that did not
//! (System Integrity Protection, the hardened runtime) is named in a note.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allocflame_backend_perf::inherited::{Inherited, MAX_SIGNAL};
use allocflame_core::source::{ProgramExit, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};
use rustc_hash::FxHashSet;

use crate::common::{self, SharedFile};
use crate::macos_catalog::{self, FUNCTIONS};
use crate::{shm, suitable_macos, PreloadSource};

const INSERT: &str = "DYLD_INSERT_LIBRARIES";
const USER_INSERT: &str = "ALLOCFLAME_USER_DYLD_INSERT_LIBRARIES";
const SHM: &str = "ALLOCFLAME_SHM";

/// The program's environment: allocflame's own, with the library first in
/// `DYLD_INSERT_LIBRARIES` (the library puts the user's own value back at its start).
fn environment(library: &Path, shared: &Path) -> Vec<(OsString, OsString)> {
    let mut env = Vec::new();
    let mut user = None;
    for (k, v) in std::env::vars_os() {
        if k == INSERT {
            user = Some(v);
        } else if k != SHM && k != USER_INSERT {
            env.push((k, v));
        }
    }
    let mut insert = library.as_os_str().to_owned();
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        insert.push(":");
        insert.push(&user);
        env.push((USER_INSERT.into(), user));
    }
    env.push((INSERT.into(), insert));
    env.push((SHM.into(), shared.as_os_str().to_owned()));
    env
}

/// Starts `argv` with the signal dispositions, signal mask and standard descriptors the user's
/// shell gave allocflame ([`Inherited`]): Rust's runtime ignores SIGPIPE, and `Command` empties
/// the mask and would leave a closed descriptor open on /dev/null.
fn spawn(
    program: &Path,
    argv: &[OsString],
    env: Vec<(OsString, OsString)>,
) -> Result<std::process::Child> {
    let inherited = Inherited::get();
    // Prepared here: between fork and exec only async-signal-safe calls on ready memory.
    // SAFETY: plain C structs, filled through libc's own functions.
    let (mask, ignore, default) = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        for sig in 1..=MAX_SIGNAL {
            if inherited.blocks(sig) {
                libc::sigaddset(&mut mask, sig);
            }
        }
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        (mask, ignore, default)
    };
    let mut command = std::process::Command::new(program);
    command
        .arg0(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env);
    // SAFETY: the closure only calls sigaction, sigprocmask and close on memory prepared above.
    unsafe {
        command.pre_exec(move || {
            for sig in 1..=MAX_SIGNAL {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                let action = if inherited.ignores(sig) {
                    &ignore
                } else {
                    &default
                };
                libc::sigaction(sig, action, std::ptr::null_mut());
            }
            libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
            for fd in 0..3 {
                if inherited.closed & (1 << fd) != 0 {
                    libc::close(fd);
                }
            }
            Ok(())
        });
    }
    command.spawn().map_err(|source| Error::Io {
        path: program.to_path_buf(),
        source,
    })
}

/// Whether `pid` runs (a zombie does not: it allocates no more).
fn alive(pid: u32) -> bool {
    const SZOMB: u32 = 5;
    // SAFETY: proc_pidinfo fills at most the size given.
    unsafe {
        let mut info: libc::proc_bsdinfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        let got = libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            &mut info as *mut _ as *mut libc::c_void,
            size,
        );
        if got == size {
            return info.pbi_status != SZOMB;
        }
        libc::kill(pid as libc::pid_t, 0) == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}

fn exit_of(status: std::process::ExitStatus) -> Option<ProgramExit> {
    status
        .code()
        .map(ProgramExit::Code)
        .or_else(|| status.signal().map(ProgramExit::Signal))
}

pub(crate) fn record(
    source: &PreloadSource,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let argv = common::program_to_start(target, options, "dtrace")?;
    let index = macos_catalog::probe_index(&options.probes);
    let program = suitable_macos::resolve(Path::new(&argv[0])).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: program not found",
            Path::new(&argv[0]).display()
        ))
    })?;
    let library = common::install_library(
        "dylib",
        "this allocflame was built without the in-process library for macOS (its build printed why); use --backend dtrace",
    )?;
    // No decider: the library answers its own exec intents.
    let shared = SharedFile::create(&std::env::temp_dir(), source.capacity, options, false)?;
    let image = shared.map()?;
    let mut child = spawn(&program, argv, environment(&library, &shared.path))?;
    let main = child.id();
    shared.set_main_pid(main);
    let mut report = RecordReport::new("preload", options.probes.len());
    let mut last_tick = Instant::now();
    let mut tick = || {
        if last_tick.elapsed() >= Duration::from_millis(250) {
            last_tick = Instant::now();
            if let Some(p) = &source.progress {
                p.store(shm::total(&image), Ordering::Relaxed);
            }
        }
    };
    let mut exit = None;
    loop {
        if options.stop_requested() {
            report.interrupted = true;
            break;
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                exit = exit_of(status);
                break;
            }
            Ok(None) => {}
            Err(e) => return Err(common::os("cannot wait for the program")(e)),
        }
        std::thread::sleep(Duration::from_millis(5));
        tick();
    }
    // Then every other process that loaded the library (forked children, spawned programs),
    // to its end.
    let mut ended: FxHashSet<u32> = FxHashSet::default();
    ended.insert(main);
    while !report.interrupted {
        let live: Vec<u32> = shm::processes(&image)
            .into_iter()
            .map(|p| p.pid)
            .filter(|&pid| !ended.contains(&pid))
            .collect::<FxHashSet<u32>>()
            .into_iter()
            .filter(|&pid| {
                let on = alive(pid);
                if !on {
                    ended.insert(pid);
                }
                on
            })
            .collect();
        if live.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        if options.stop_requested() {
            report.interrupted = true;
        }
        tick();
    }
    report.set_exit(exit);
    if let Some(killed @ ProgramExit::Signal(_)) = exit.filter(|_| !report.interrupted) {
        report.notes.push(format!(
            "the program {killed}; the results cover its run until then"
        ));
        report.interrupted = true;
    }
    let contents = shm::read(&image);
    report.notes.extend(common::not_loaded(
        &contents,
        &shm::intents(&image),
        main,
        &why_not_loaded,
    ));
    common::hand_over(
        contents,
        &common::Held::default(),
        &index,
        &FUNCTIONS,
        "where the frame-pointer chain left the thread's stack",
        options,
        sink,
        &mut report,
    );
    Ok(report)
}

/// Why an image (the program's when `path` is `None`) may not have loaded the library, and what
/// to do.
fn why_not_loaded(path: Option<&str>) -> String {
    let sip = path.is_some_and(|p| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
        suitable_macos::sip_protected(&p)
    });
    if sip {
        "it is protected by System Integrity Protection; use --backend dtrace".into()
    } else {
        "macOS keeps DYLD_INSERT_LIBRARIES from programs System Integrity Protection covers, restricted ones and those signed with the hardened runtime; use --backend dtrace".into()
    }
}
