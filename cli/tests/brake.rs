//! The kernel-side brake of the perf backend: with every thread of allocflame stopped (its
//! reader and its tracer alike, as a loaded machine's scheduler may leave them for
//! milliseconds), a program that keeps allocating would fill its buffer and lose events. The
//! brake stops the program in the kernel instead, and the recording, once allocflame runs
//! again, is exact: the counts are the program's own loop counts.

mod record_util;

use std::process::{Command, Stdio};

use record_util::*;

/// The child of `parent` named `comm`, if it exists.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent && name == comm).then_some(pid)
    })
}

fn signal(pid: u32, sig: &str) {
    succeed(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

#[test]
fn a_program_recorded_while_allocflame_is_stopped_is_braked_and_loses_nothing() {
    if !uprobes_available() {
        return;
    }
    let _serial = exclusive();
    let dir = TempDir::new("brake");
    let prog = build_c(&dir, "alloc_counts.c");
    let n = 1_000_000u64;
    let folded = dir.path().join("out.folded");
    let rec = Command::new(bin())
        .args(["record", "--backend", "perf", "-o"])
        .arg(dir.path().join("out.svg"))
        .arg("--folded")
        .arg(&folded)
        .arg("--")
        .arg(&prog)
        .arg(n.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start allocflame");
    let me = rec.id();
    // The program runs, traced: its probes are in place.
    let mut target = 0;
    wait_until("the program runs under allocflame", WAIT, || {
        target = child_named(me, "alloc_counts").unwrap_or(0);
        target != 0 && tracer_pid(target).is_some_and(|t| t != 0) && proc_state(target) == Some('R')
    });
    // Every thread of allocflame stopped: no reader, no tracer.
    signal(me, "STOP");
    wait_until("allocflame is stopped", WAIT, || {
        proc_state(me) == Some('T')
    });
    // The program goes on allocating until the brake stops it in the kernel (a traced stop,
    // `t`, that waits for the stopped tracer). Had it no brake, it would run to its end.
    wait_until("the brake stops the program", WAIT, || {
        let s = proc_state(target);
        assert!(
            matches!(s, Some('R' | 'S' | 't')),
            "the program ran on while allocflame was stopped (state {s:?})"
        );
        s == Some('t')
    });
    signal(me, "CONT");
    let out = rec.wait_with_output().expect("allocflame's end");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    let text = std::fs::read_to_string(&folded).expect("the folded output");
    let count = |leaf: &str| -> u64 {
        text.lines()
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(stack, _)| stack.ends_with(leaf))
            .filter_map(|(_, c)| c.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count("level1;level2;malloc"), n, "{stderr}");
    assert_eq!(count("make_zeroed;calloc"), n / 4, "{stderr}");
    assert_eq!(count("make_aligned;posix_memalign"), n / 10, "{stderr}");
}
