//! A program run under `allocflame record|count -- PROGRAM` is left untouched: the signal
//! dispositions, signal mask and standard descriptors the shell gave, its stdin and stdout
//! its own, allocflame exiting with its status (128 + N when signal N killed it, said so), and
//! that status in every JSON report.

mod record_util;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use record_util::*;

/// Runs `allocflame ARGS` with `stdin` as its stdin, to its end (or fails after [`WAIT`]).
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = input.write_all(&stdin);
    });
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    wait_until(&format!("allocflame {args:?} ends"), WAIT, || {
        waiter.is_finished()
    });
    writer.join().unwrap();
    waiter.join().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A program that starts the rest of its arguments the way a shell may: SIGUSR1 and SIGWINCH
/// blocked, SIGINT and SIGHUP ignored (`nohup`, a background job), stdin closed.
fn launcher(dir: &TempDir) -> PathBuf {
    let src = dir.join("launch.c");
    std::fs::write(
        &src,
        r#"#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGWINCH);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    close(0);
    execvp(argv[1], argv + 1);
    perror("execvp");
    return 127;
}
"#,
    )
    .unwrap();
    let exe = dir.join("launch");
    let status = Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("gcc is needed for the record tests (README-devel.md)");
    assert!(status.success());
    exe
}

/// A program that prints its own signal state (`grep` changes none of it; a shell may).
const SHOW_SIGNALS: [&str; 3] = ["grep", "-E", "^Sig(Blk|Ign)"];

#[test]
fn signal_dispositions_mask_and_closed_stdin_are_the_shells() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("untouched-signals");
    let launch = launcher(&dir);
    let launch = launch.to_str().unwrap();
    let show = |prefix: &[&str]| -> Output {
        Command::new(launch)
            .args(prefix)
            .args(SHOW_SIGNALS)
            .arg("/proc/self/status")
            .output()
            .unwrap()
    };
    let bare = show(&[]);
    assert!(bare.status.success(), "{bare:?}");
    let bare = String::from_utf8_lossy(&bare.stdout).into_owned();
    // SIGHUP (1) and SIGINT (2) ignored; SIGUSR1 (10) and SIGWINCH (28) blocked (and what
    // else the test's own parents set).
    let (blocked, ignored) = signal_sets(&bare);
    assert_eq!(ignored & 0b11, 0b11, "{bare}");
    assert_eq!(blocked & (1 << 9 | 1 << 27), 1 << 9 | 1 << 27, "{bare}");
    let svg = dir.join("g.svg");
    for prefix in [
        &[bin(), "count", "--"][..],
        &[bin(), "record", "-o", svg.to_str().unwrap(), "--"],
    ] {
        let under = show(prefix);
        assert!(under.status.success(), "{}", stderr(&under));
        assert_eq!(
            String::from_utf8_lossy(&under.stdout),
            bare,
            "{prefix:?}: the program's signals as the shell gave them"
        );
        // stdin closed, as the launcher left it (Rust's runtime puts /dev/null there).
        let test = Command::new(launch)
            .args(prefix)
            .args(["test", "-e", "/proc/self/fd/0"])
            .output()
            .unwrap();
        assert_eq!(test.status.code(), Some(1), "{prefix:?}: {}", stderr(&test));
    }
    // Started from a test (SIGPIPE at its default, nothing blocked), the program gets exactly
    // that: not the SIGPIPE "ignore" of Rust's runtime, not allocflame's SIGINT handler.
    let out = run(
        &[
            "count",
            "--",
            "grep",
            "-E",
            "^Sig(Blk|Ign)",
            "/proc/self/status",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (blocked, ignored) = signal_sets(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(blocked, 0, "nothing blocked");
    assert_eq!(ignored & (1 << 12), 0, "SIGPIPE not ignored");
    assert_eq!(ignored & (1 << 1), 0, "SIGINT not ignored");
}

/// The `SigBlk` and `SigIgn` masks of a /proc status text.
fn signal_sets(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

#[test]
fn a_pipeline_ended_by_sigpipe_finishes() {
    if !uprobes_available() {
        return;
    }
    // `yes | head -1`: the writer must die of SIGPIPE once head is gone. With SIGPIPE ignored
    // it loops for ever (`run` gives up after WAIT).
    let script = "while :; do echo y; done | head -1";
    let start = std::time::Instant::now();
    let out = run(&["count", "--", "sh", "-c", script], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "y\n");
    eprintln!(
        "the pipeline under allocflame count took {:.0?}",
        start.elapsed()
    );
}

#[test]
fn the_exit_status_is_the_programs() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("untouched-exit");
    let out = run(&["count", "--", "false"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let json = dir.join("exit.json");
    let out = run(
        &[
            "count",
            "--json",
            json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 200",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(200), "{err}");
    assert!(!err.contains("killed"), "an exit code is no signal: {err}");
    assert!(!err.contains("partial"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["exit_status"], 200, "{v}");
    assert_eq!(v["exit_code"], 200, "{v}");
    assert_eq!(v["signal"], serde_json::Value::Null, "{v}");
    assert_eq!(v["partial"], false, "{v}");

    // Killed by a signal: 128 + N, said so, and partial; in `count` and `record` JSON alike.
    for command in ["count", "record"] {
        let svg = dir.join("k.svg");
        let mut args = vec![command, "--json", json.to_str().unwrap()];
        if command == "record" {
            args.extend(["-o", svg.to_str().unwrap()]);
        }
        args.extend(["--", "sh", "-c", "kill -TERM $$"]);
        let out = run(&args, b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(143), "{command}: {err}");
        assert!(
            err.contains("the program was killed by SIGTERM (signal 15)"),
            "{command}: {err}"
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["exit_status"], 143, "{command}: {v}");
        assert_eq!(v["exit_code"], serde_json::Value::Null, "{command}: {v}");
        assert_eq!(v["signal"], 15, "{command}: {v}");
        assert_eq!(v["signal_name"], "SIGTERM", "{command}: {v}");
        assert_eq!(v["partial"], true, "{command}: {v}");
    }

    let out = run(
        &[
            "record",
            "--json",
            json.to_str().unwrap(),
            "-o",
            dir.join("e.svg").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["exit_status"], 3, "{v}");
    assert_eq!(v["partial"], false, "{v}");
    assert!(v["allocations"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn the_programs_stdin_and_stdout_are_its_own() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("untouched-stdout");
    let json = dir.join("s.json");
    let svg = dir.join("s.svg");
    // The program reads stdin and prints; the reports go to stderr and to --json FILE.
    let script = "cat; echo printed by the program";
    let out = run(
        &[
            "record",
            "--json",
            json.to_str().unwrap(),
            "-o",
            svg.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
        b"fed on stdin\n",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "fed on stdin\nprinted by the program\n",
        "stdout holds only what the program printed"
    );
    assert!(
        err.contains("top allocation sites"),
        "summary on stderr: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v["allocations"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["exit_status"], 0, "{v}");

    let out = run(
        &[
            "count",
            "--json",
            json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
        b"again\n",
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "again\nprinted by the program\n"
    );
    assert!(
        err.contains("lost: 0 (exact)"),
        "count's table on stderr: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v["total"]["count"].as_u64().unwrap() > 0, "{v}");

    // `--json -` asks for the JSON on stdout: after everything the program printed.
    let out = run(&["count", "--json", "-", "--", "true"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_status"], 0, "{v}");
}
