//! Running dtrace on macOS: checks first (dtrace present, root, a target SIP lets DTrace
//! trace), then dtrace in its own process group so that exactly one SIGINT — ours, on
//! [`RecordOptions::stop`] — stops it and makes it print the aggregations (a second SIGINT
//! makes dtrace quit without printing them).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use allocflame_core::source::{RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

use crate::errors;

// Code-signing status of a process (<sys/codesign.h>); exported by libSystem.
extern "C" {
    fn csops(
        pid: libc::pid_t,
        ops: u32,
        useraddr: *mut libc::c_void,
        usersize: libc::size_t,
    ) -> libc::c_int;
    fn csr_check(mask: u32) -> libc::c_int;
}
const CS_OPS_STATUS: u32 = 0;
const CS_RESTRICT: u32 = 0x800;
const CS_PLATFORM_BINARY: u32 = 0x0400_0000;
const CS_GET_TASK_ALLOW: u32 = 0x4;
const CS_RUNTIME: u32 = 0x0001_0000;
/// `csr_check(CSR_ALLOW_UNRESTRICTED_DTRACE) == 0` when SIP's DTrace restriction is off.
const CSR_ALLOW_UNRESTRICTED_DTRACE: u32 = 1 << 5;

fn find_dtrace() -> Option<PathBuf> {
    let default = PathBuf::from(crate::command::DTRACE);
    if default.exists() {
        return Some(default);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("dtrace"))
            .find(|p| p.is_file())
    })
}

fn sip_restricts_dtrace() -> bool {
    // SAFETY: csr_check only reads the boot configuration.
    unsafe { csr_check(CSR_ALLOW_UNRESTRICTED_DTRACE) != 0 }
}

/// The path `argv0` runs, looked up in PATH as dtrace -c does.
fn resolve(argv0: &Path) -> Option<PathBuf> {
    if argv0.components().count() > 1 {
        return std::fs::canonicalize(argv0).ok();
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(argv0))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

fn process_name(pid: u32) -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: proc_name writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::proc_name(
            pid as libc::c_int,
            buf.as_mut_ptr().cast(),
            buf.len() as u32,
        )
    };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

fn check_pid(pid: u32) -> Result<String> {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return Err(Error::Invalid(format!("no process with pid {pid}")));
    }
    let name = process_name(pid).unwrap_or_else(|| format!("pid {pid}"));
    if sip_restricts_dtrace() {
        let mut flags: u32 = 0;
        // SAFETY: CS_OPS_STATUS writes one u32 into `flags`.
        let ok = unsafe {
            csops(
                pid as libc::pid_t,
                CS_OPS_STATUS,
                (&mut flags as *mut u32).cast(),
                4,
            )
        } == 0;
        if ok
            && (flags & (CS_PLATFORM_BINARY | CS_RESTRICT) != 0
                || (flags & CS_RUNTIME != 0 && flags & CS_GET_TASK_ALLOW == 0))
        {
            return Err(errors::sip_blocked(format!(
                "{name} (pid {pid}) is an Apple platform binary, restricted or hardened-runtime process, which DTrace cannot trace while System Integrity Protection is on"
            )));
        }
    }
    Ok(name)
}

fn temp_path(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("allocflame-{}-{nanos}.{what}", std::process::id()))
}

/// Removes the files it names when dropped, so every exit path cleans up.
struct TempFiles(Vec<PathBuf>);
impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn record(
    backend: &'static str,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let dtrace = find_dtrace().ok_or_else(errors::dtrace_missing)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(errors::not_root());
    }
    let (comm, pid) = match target {
        Target::Spawn { argv } => {
            let argv0 = argv.first().map(PathBuf::from).unwrap_or_default();
            let path = resolve(&argv0)
                .ok_or_else(|| Error::Invalid(format!("{}: program not found", argv0.display())))?;
            if sip_restricts_dtrace() && errors::sip_protected_path(&path) {
                return Err(errors::sip_blocked(format!(
                    "{} is in a location protected by System Integrity Protection, where dtrace -c cannot start it",
                    path.display()
                )));
            }
            (target.describe(), 0)
        }
        Target::Attach { pid, .. } => (check_pid(*pid)?, *pid),
    };

    let script_path = temp_path("d");
    let output_path = temp_path("out");
    let _cleanup = TempFiles(vec![script_path.clone(), output_path.clone()]);
    let plan = crate::plan(
        target,
        options,
        &script_path.to_string_lossy(),
        &output_path.to_string_lossy(),
    )?;
    std::fs::write(&script_path, &plan.script).map_err(|e| Error::io(&script_path, e))?;

    let mut child = Command::new(&dtrace)
        .args(&plan.args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        // Ctrl-C at the terminal reaches allocflame only; it stops dtrace with one SIGINT.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(&dtrace, e))?;
    // dtrace's stderr also carries the -c program's: pass it through and keep a copy.
    let mut stderr = child.stderr.take();
    let reader = thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Some(Ok(n)) = stderr.as_mut().map(|s| s.read(&mut buf)) {
            if n == 0 {
                break;
            }
            let _ = std::io::stderr().write_all(&buf[..n]);
            kept.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    });

    let mut interrupted = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if options.stop_requested() && !interrupted {
            interrupted = true;
            // SAFETY: the pid is our live child's.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stderr_text = reader.join().unwrap_or_default();
    let code = status.and_then(|s| s.code());

    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    let file = output_path.display().to_string();
    let mut report = RecordReport::new(backend, plan.probes.len());
    report.notes = plan.notes;
    report.interrupted = interrupted;
    if !crate::output::has_sections(&text) {
        return Err(errors::classify(&stderr_text, code));
    }
    let capture = crate::output::parse_capture(&text, &file)?;
    crate::hand_over(&capture, &plan.probes, &comm, pid, sink, &mut report);
    crate::account_drops(errors::drops(&stderr_text), sink, &mut report);
    if code != Some(0) && !capture.complete {
        return Err(Error::Backend(format!(
            "dtrace ended early; the partial results were kept:\n{}",
            errors::classify(&stderr_text, code)
        )));
    }
    Ok(report)
}
