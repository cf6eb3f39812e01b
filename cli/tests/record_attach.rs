//! `allocflame record -p PID --duration S` (issue 4, point 6): the target keeps running, is
//! never left stopped or traced, also when allocflame is killed with SIGKILL, and no probe is
//! left in the kernel.

mod record_util;

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use record_util::*;

struct Target(PidPrinter);

impl std::ops::Deref for Target {
    type Target = PidPrinter;
    fn deref(&self) -> &PidPrinter {
        &self.0
    }
}

impl Target {
    fn start(dir: &TempDir) -> Target {
        Target(PidPrinter::start(&build_c(dir, "wait_loop.c"), &[]))
    }

    fn running_untraced(&self) -> bool {
        matches!(proc_state(self.pid), Some('R') | Some('S') | Some('D'))
            && tracer_pid(self.pid) == Some(0)
    }

    /// The detach happens as allocflame ends (or, killed, as the kernel reaps its ptrace
    /// thread): wait for it, and fail when the target stays stopped or traced.
    fn wait_running_untraced(&self) {
        wait_until(
            "the target runs untraced again (not stopped, TracerPid 0)",
            WAIT,
            || self.running_untraced(),
        );
    }

    /// Whether malloc's first byte in the target is int3: the uprobe is in place.
    fn probe_in_place(&self) -> bool {
        malloc_first_bytes(self.pid).is_some_and(|(live, _)| live == 0xcc)
    }

    /// Waits until malloc's first byte in the target is the file's again: no uprobe left.
    fn wait_malloc_restored(&self) {
        wait_until(
            "malloc's first byte in the target is its file's again (no uprobe left)",
            WAIT,
            || malloc_first_bytes(self.pid).is_some_and(|(live, file)| live == file),
        );
    }
}

#[test]
fn attach_records_for_the_duration_and_leaves_the_target_running() {
    if !uprobes_available() {
        return;
    }
    let _serial = exclusive();
    let dir = TempDir::new("attach");
    let target = Target::start(&dir);
    let folded = dir.join("a.folded");
    let out = Command::new(bin())
        .args([
            "record",
            "-p",
            &target.pid.to_string(),
            "--duration",
            "1",
            "-o",
        ])
        .arg(dir.join("a.svg"))
        .arg("--folded")
        .arg(&folded)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&folded).unwrap();
    let n: u64 = text
        .lines()
        .filter(|l| l.contains("main;tick;malloc "))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    // ~10 per millisecond of sleep-bound loop: thousands in a second, so 100 holds even when
    // the target gets a small share of a loaded machine.
    assert!(n >= 100, "{text}");
    target.wait_running_untraced();
    // No breakpoint is left once allocflame has returned (`record_release.rs` checks it at the
    // very return); with the uprobe PMU (no tracefs) it goes shortly after, in the background.
    target.wait_malloc_restored();
}

#[test]
fn a_killed_allocflame_leaves_no_probe_and_no_stopped_target() {
    if !uprobes_available() {
        return;
    }
    let _serial = exclusive();
    let before = uprobe_events();
    let dir = TempDir::new("kill");
    let target = Target::start(&dir);
    let mut rec = Command::new(bin())
        .args([
            "record",
            "-p",
            &target.pid.to_string(),
            "--duration",
            "60",
            "-o",
        ])
        .arg(dir.join("k.svg"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The tracer is allocflame's ptrace thread (it follows the target's new threads).
    let tracer_tgid = || {
        let tracer = tracer_pid(target.pid).filter(|&t| t != 0)?;
        let status = std::fs::read_to_string(format!("/proc/{tracer}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:").map(|v| v.trim().to_owned()))
    };
    let rec_pid = rec.id().to_string();
    wait_until(
        "allocflame traces the target and its uprobe on malloc is in place",
        WAIT,
        || {
            if let Some(status) = rec.try_wait().unwrap() {
                panic!("allocflame ended before the probes were in place: {status}");
            }
            tracer_tgid().as_deref() == Some(&rec_pid) && target.probe_in_place()
        },
    );
    let (_, file) = malloc_first_bytes(target.pid).expect("read malloc's first byte");
    assert_ne!(
        file, 0xcc,
        "libc's malloc itself starts with int3: the byte cannot show a probe"
    );
    rec.kill().unwrap(); // SIGKILL
    rec.wait().unwrap();
    target.wait_running_untraced();
    // The probes' definitions are deleted by allocflame's guardian process once the kernel has
    // released the killed process's events.
    wait_until(
        "no probe added to tracefs' uprobe_events is left",
        WAIT,
        || no_probe_added_since(&before),
    );
    // The probe went with allocflame's fds: malloc's first instruction is the file's again.
    target.wait_malloc_restored();
}

#[test]
fn ctrl_c_ends_an_attach_and_still_writes_the_results() {
    if !uprobes_available() {
        return;
    }
    let _serial = exclusive();
    let dir = TempDir::new("sigint");
    let target = Target::start(&dir);
    let folded = dir.join("i.folded");
    // --live: the counter on stderr tells when allocflame has recorded the target's mallocs.
    let mut rec = Command::new(bin())
        .args(["record", "--live", "-p", &target.pid.to_string(), "-o"])
        .arg(dir.join("i.svg"))
        .arg("--folded")
        .arg(&folded)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (mut pipe, stderr) = (rec.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                stderr.lock().unwrap().push_str(&text);
            }
        })
    };
    wait_until(
        "allocflame's live counter shows the target's allocations",
        WAIT,
        || {
            if let Some(status) = rec.try_wait().unwrap() {
                panic!(
                    "allocflame ended before SIGINT: {status}\n{}",
                    stderr.lock().unwrap()
                );
            }
            recorded_so_far(&stderr.lock().unwrap()) > 0
        },
    );
    // SAFETY: sending SIGINT to our child.
    unsafe { libc_kill(rec.id() as i32, 2) };
    let status = rec.wait().unwrap();
    reader.join().unwrap();
    let err = stderr.lock().unwrap().clone();
    assert!(status.success(), "{err}");
    assert!(err.contains("partial"), "{err}");
    let text = std::fs::read_to_string(&folded).unwrap();
    assert!(text.contains("main;tick;malloc"), "{text}");
    target.wait_running_untraced();
}

/// The last value of the `--live` counter ("\rallocflame: N allocations recorded") in `stderr`.
fn recorded_so_far(stderr: &str) -> u64 {
    stderr
        .split('\r')
        .filter_map(|l| {
            l.strip_prefix("allocflame: ")?
                .strip_suffix(" allocations recorded")?
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or(0)
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A SIGKILLed allocflame must not leave anything that kills a target: here one that keeps
/// loading libraries with dlopen (a stop at its dynamic linker would be a SIGTRAP nobody takes).
#[test]
fn a_target_that_keeps_loading_libraries_survives_a_sigkilled_allocflame() {
    if !uprobes_available() {
        return;
    }
    let _serial = exclusive();
    let dir = TempDir::new("kill-dlopen");
    let prog = build_c(&dir, "dlopen_loop.c");
    let lib = dir.join("libplugin_alloc.so");
    let built = Command::new("gcc")
        .args(["-O1", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(programs_dir().join("plugin_alloc.c"))
        .status()
        .unwrap();
    assert!(built.success());
    let mut target = PidPrinter::start(&prog, &[lib.as_os_str()]);
    let pid = target.pid;
    let mut line = String::new();
    let mut rec = Command::new(bin())
        .args(["record", "-p", &pid.to_string(), "-o"])
        .arg(dir.join("k.svg"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("allocflame traces the target", WAIT, || {
        if let Some(status) = rec.try_wait().unwrap() {
            panic!("allocflame ended before it traced the target: {status}");
        }
        tracer_pid(pid).is_some_and(|t| t != 0)
    });
    // A few hundred more loads while traced, then SIGKILL.
    for _ in 0..3 {
        line.clear();
        target.stdout.read_line(&mut line).unwrap();
    }
    rec.kill().unwrap();
    rec.wait().unwrap();
    wait_until("the target runs untraced again", WAIT, || {
        tracer_pid(pid) == Some(0)
    });
    // It goes on loading: five more progress lines (500 loads), and it is still running.
    for _ in 0..5 {
        line.clear();
        let n = target.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the target ended: {:?}", target.child.try_wait());
    }
    assert!(
        target.child.try_wait().unwrap().is_none(),
        "the target ended"
    );
}
