//! `allocflame record -p PID --duration S` (issue 4, point 6): the target keeps running, is
//! never left stopped or traced, also when allocflame is killed with SIGKILL, and no probe is
//! left in the kernel.

mod record_util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use record_util::*;

struct Target {
    child: Child,
    pid: u32,
}

impl Target {
    fn start(dir: &TempDir) -> Target {
        let prog = build_c(dir, "wait_loop.c");
        let mut child = Command::new(&prog).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().unwrap();
        Target { child, pid }
    }

    fn assert_running_untraced(&self) {
        let state = proc_state(self.pid);
        assert!(
            matches!(state, Some('R') | Some('S') | Some('D')),
            "target state {state:?}: left stopped?"
        );
        assert_eq!(tracer_pid(self.pid), Some(0), "target still traced");
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn attach_records_for_the_duration_and_leaves_the_target_running() {
    if !uprobes_available() {
        return;
    }
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
    // ~10 per millisecond of sleep-bound loop: well over 100 in a second.
    assert!(n >= 100, "{text}");
    std::thread::sleep(Duration::from_millis(100));
    target.assert_running_untraced();
    // The probes are released in the background right after: malloc is restored shortly.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (live, file) = malloc_first_bytes(target.pid).expect("read malloc's first byte");
        if live == file {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "uprobe still installed after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_allocflame_leaves_no_probe_and_no_stopped_target() {
    if !uprobes_available() {
        return;
    }
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
    std::thread::sleep(Duration::from_millis(1500));
    // The tracer is allocflame's ptrace thread (it follows the target's new threads).
    let tracer = tracer_pid(target.pid).unwrap_or(0);
    let tgid = std::fs::read_to_string(format!("/proc/{tracer}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:").map(|v| v.trim().to_owned()))
        });
    assert_eq!(tgid, Some(rec.id().to_string()), "tracer {tracer}");
    let (live, file) = malloc_first_bytes(target.pid).expect("read malloc's first byte");
    assert_eq!(
        live, 0xcc,
        "the uprobe on malloc should be in place while recording"
    );
    assert_ne!(file, 0xcc);
    rec.kill().unwrap(); // SIGKILL
    rec.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    target.assert_running_untraced();
    assert_eq!(uprobe_events(), before, "tracefs uprobe_events changed");
    // The probe went with allocflame's fds: malloc's first instruction is the file's again.
    let (live, file) = malloc_first_bytes(target.pid).expect("read malloc's first byte");
    assert_eq!(live, file, "a uprobe is still installed in the target");
}

#[test]
fn ctrl_c_ends_an_attach_and_still_writes_the_results() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("sigint");
    let target = Target::start(&dir);
    let folded = dir.join("i.folded");
    let rec = Command::new(bin())
        .args(["record", "-p", &target.pid.to_string(), "-o"])
        .arg(dir.join("i.svg"))
        .arg("--folded")
        .arg(&folded)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: sending SIGINT to our child.
    unsafe { libc_kill(rec.id() as i32, 2) };
    let out = rec.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("partial"), "{err}");
    let text = std::fs::read_to_string(&folded).unwrap();
    assert!(text.contains("main;tick;malloc"), "{text}");
    target.assert_running_untraced();
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
