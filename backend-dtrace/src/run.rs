//! Running dtrace on macOS: checks first (dtrace present, root, a target SIP lets DTrace
//! trace), then dtrace in its own process group so that exactly one SIGINT — ours, on
//! [`RecordOptions::stop`] — stops it and makes it print the aggregations (a second SIGINT
//! makes dtrace quit without printing them).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long dtrace may take to print the aggregations after SIGINT.
const STOP_GRACE: Duration = Duration::from_secs(120);

use allocflame_core::source::{RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

use crate::errors;
use crate::process;

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
    let mut run_target = target.clone();
    let (comm, pid, held) = match &mut run_target {
        Target::Spawn { argv } => {
            let argv0 = argv.first().map(PathBuf::from).unwrap_or_default();
            let path = resolve(&argv0)
                .ok_or_else(|| Error::Invalid(format!("{}: program not found", argv0.display())))?;
            if process::sip_restricts_dtrace() && errors::sip_protected_path(&path) {
                return Err(errors::sip_blocked(format!(
                    "{} is in a location protected by System Integrity Protection, where dtrace -c cannot start it",
                    path.display()
                )));
            }
            // A bare name is looked up in PATH here, as a shell would; dtrace gets the path.
            if argv0.components().count() == 1 {
                argv[0] = path.into_os_string();
            }
            (target.describe(), 0, None)
        }
        Target::Attach { pid, .. } => (
            process::check_pid(*pid)?,
            *pid,
            Some(process::Held::before(*pid)),
        ),
    };

    let script_path = temp_path("d");
    let output_path = temp_path("out");
    let _cleanup = TempFiles(vec![script_path.clone(), output_path.clone()]);
    let plan = crate::plan(
        &run_target,
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
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    if let Some(mut stderr) = child.stderr.take() {
        let kept = kept.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = std::io::stderr().write_all(&buf[..n]);
                if let Ok(mut k) = kept.lock() {
                    k.extend_from_slice(&buf[..n]);
                }
            }
            let _ = done_tx.send(());
        });
    }

    let mut interrupted = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        match interrupted {
            None if options.stop_requested() => {
                interrupted = Some(Instant::now());
                // SAFETY: the pid is our live child's.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            }
            // dtrace prints the aggregations and exits on SIGINT; one that does not, within a
            // generous time for printing, is hung.
            Some(at) if at.elapsed() > STOP_GRACE => {
                let _ = child.kill();
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(50));
    };
    let interrupted = interrupted.is_some();
    let released = held.as_ref().and_then(process::Held::release);
    let code = status.and_then(|s| s.code());

    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    let file = output_path.display().to_string();
    let mut report = RecordReport::new(backend, plan.probes.len());
    report.notes = plan.notes;
    report.interrupted = interrupted;
    report.notes.extend(released);
    let traced = crate::output::target_pid(&text);
    if let (Target::Spawn { argv }, Some(child_pid)) = (target, traced) {
        // dtrace ends the program it started when it exits; make sure, on every path.
        let name = argv.first().map(|a| {
            Path::new(a)
                .file_name()
                .unwrap_or(a)
                .to_string_lossy()
                .into_owned()
        });
        if let Some(note) = process::end_leftover(child_pid, name.as_deref()) {
            report.notes.push(note);
        }
    }
    // A program (or its children) may keep the stderr pipe open after dtrace ended: wait
    // for the end of dtrace's messages only briefly.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    let stderr_text = kept
        .lock()
        .map(|k| String::from_utf8_lossy(&k).into_owned())
        .unwrap_or_default();
    if !crate::output::has_sections(&text) {
        return Err(errors::classify(&stderr_text, code));
    }
    let capture = crate::output::parse_capture(&text, &file)?;
    let pid = traced.unwrap_or(pid);
    crate::hand_over(&capture, &plan.probes, &comm, pid, sink, &mut report);
    crate::account_drops(errors::drops(&stderr_text), sink, &mut report);
    if code != Some(0) {
        // What was printed is kept (hand_over marked it partial if it is); the reason goes
        // with it rather than replacing it.
        report.notes.push(format!(
            "dtrace did not end cleanly: {}",
            errors::classify(&stderr_text, code)
        ));
    }
    Ok(report)
}
