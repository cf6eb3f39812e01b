//! `allocflame record` and `count` end to end: outputs, JSON, bytes, backends, errors.

mod record_util;

use std::process::Command;

use record_util::*;

#[test]
fn record_writes_svg_folded_and_json_with_exact_counts() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("rec");
    let prog = build_c(&dir, "alloc_counts.c");
    let svg = dir.join("out.svg");
    let folded = dir.join("out.folded");
    let out = Command::new(bin())
        .args(["record", "--backend", "perf", "--json", "-", "-o"])
        .arg(&svg)
        .arg("--folded")
        .arg(&folded)
        .arg("--")
        .arg(&prog)
        .args(["20000", "realloc"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("backend perf (--backend)"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["lost"], 0, "{json}");
    assert_eq!(json["allocations"], 20000 + 5000 + 2000 + 2000, "{json}");
    let text = std::fs::read_to_string(&folded).unwrap();
    assert!(
        text.lines()
            .any(|l| l.ends_with("main;level1;level2;malloc 20000")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.ends_with("main;grow_from_null;realloc 2000")),
        "{text}"
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("level2"), "svg lacks frames");

    // --weight bytes: the same stacks, weighed by requested bytes.
    let bytes = dir.join("bytes.folded");
    let out = Command::new(bin())
        .args(["record", "--weight", "bytes", "-o"])
        .arg(dir.join("bytes.svg"))
        .arg("--folded")
        .arg(&bytes)
        .arg("--")
        .arg(&prog)
        .arg("1000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&bytes).unwrap();
    assert!(
        text.lines()
            .any(|l| l.ends_with("main;level1;level2;malloc 16000")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.ends_with("main;make_aligned;posix_memalign 10000")),
        "{text}"
    );
}

#[test]
fn count_prints_probes_json() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("count");
    let prog = build_c(&dir, "alloc_counts.c");
    let out = Command::new(bin())
        .args(["count", "--json", "-", "--"])
        .arg(&prog)
        .args(["4000", "realloc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["probes"]["malloc"]["count"], 4000, "{json}");
    assert_eq!(json["probes"]["malloc"]["bytes"], 16 * 4000, "{json}");
    assert_eq!(json["probes"]["calloc"]["count"], 1000, "{json}");
    assert_eq!(json["probes"]["posix_memalign"]["count"], 400, "{json}");
    assert_eq!(json["probes"]["realloc"]["count"], 400, "{json}");
    assert_eq!(json["lost"], 0, "{json}");
    assert_eq!(json["exit_code"], 0, "{json}");
}

#[test]
fn errors_are_clear() {
    if !uprobes_available() {
        return;
    }
    let out = Command::new(bin())
        .args(["record", "--", "/nonexistent/prog"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/prog: program not found"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = Command::new(bin())
        .args([
            "record",
            "--probe",
            "libc:no_such_alloc_fn:0",
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("has no function `no_such_alloc_fn`"), "{err}");

    let out = Command::new(bin()).args(["record"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nothing to record"), "{err}");
}

#[test]
fn without_permission_the_message_says_what_to_do() {
    if !uprobes_available() {
        return;
    }
    // Run as nobody: perf_event_open of a uprobe needs CAP_PERFMON.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .args(["count", "--backend", "perf", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains("sudo") && err.contains("perf_event_paranoid"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn dtrace_backend_dry_run_and_linux_message() {
    let out = Command::new(bin())
        .args([
            "record",
            "--backend",
            "dtrace",
            "--dry-run",
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backend dtrace (--backend)"), "{err}");
    if cfg!(target_os = "linux") {
        let out = Command::new(bin())
            .args(["record", "--backend", "dtrace", "--", "/bin/true"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.to_lowercase().contains("dtrace"), "{err}");
    }
}

#[test]
fn lost_events_are_reported_in_json_and_on_stderr() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("lost");
    let prog = build_c(&dir, "alloc_counts.c");
    // A starved reader: allocflame and the program share one CPU, the program at nice -10
    // (it sets its own), allocflame at nice 19 and keeping it, with a 32 KiB buffer.
    let out = Command::new("taskset")
        .args(["-c", "0", "nice", "-n", "19"])
        .arg(bin())
        .env("ALLOC_COUNTS_NICE", "-10")
        .args([
            "record",
            "--keep-priority",
            "--buffer-kib",
            "32",
            "--json",
            "-",
            "-o",
        ])
        .arg(dir.join("l.svg"))
        .arg("--")
        .arg(&prog)
        .arg("100000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost = json["lost"].as_u64().unwrap();
    assert!(lost > 0, "{json}");
    assert_eq!(
        json["allocations"].as_u64().unwrap() + lost,
        100_000 + 25_000 + 10_000,
        "{json}"
    );
    assert!(
        err.contains(&format!("{lost} allocation events were lost")),
        "{err}"
    );
}

#[test]
fn without_permission_a_started_program_is_recorded_in_process() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("nobody");
    let prog = build_c(&dir, "alloc_counts.c");
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    // nobody can neither open uprobes nor ptrace; the in-process backend needs neither.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .args(["count", "--json", "-", "--"])
        .arg(&prog)
        .arg("3000")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("backend preload (auto"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["probes"]["malloc"]["count"], 3000, "{json}");
    assert_eq!(json["probes"]["calloc"]["count"], 750, "{json}");
    assert_eq!(json["probes"]["posix_memalign"]["count"], 300, "{json}");
    assert_eq!(json["lost"], 0, "{json}");
}
