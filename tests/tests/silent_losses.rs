//! Each way a recording used to lose allocations silently (issue 9), recorded for real on each
//! backend (issue 12): a forked child that outlives the main process, a setuid program exec'd
//! by a non-root one, two allocators called through one call site, a binary rebuilt during the
//! recording.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use allocflame_tests::*;

backend_tests! {
    both: a_child_that_outlives_its_parent_is_recorded_to_its_end,
        a_setuid_program_execd_by_a_non_root_program_is_counted,
        two_allocators_through_one_call_site_all_count,
        a_binary_rebuilt_during_the_recording_keeps_its_own_names;
}

fn a_child_that_outlives_its_parent_is_recorded_to_its_end(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("outlive");
    let prog = build_c(&dir, "outliving_child.c");
    let run = record(backend, &[prog.to_str().unwrap(), "3000"]).unwrap();
    let dump = run.dump();
    assert_eq!(run.report.lost, 0, "{dump}");
    assert_eq!(run.count_ending("main;parent_work;malloc"), 3000, "{dump}");
    // After its parent exited: every call counted, under the child's root.
    assert_eq!(run.count_ending("main;child_work;malloc"), 3000, "{dump}");
    assert!(
        run.lines
            .iter()
            .any(|(l, _)| l.starts_with("outliving_child [child];") && l.contains("child_work")),
        "{dump}"
    );
}

fn a_setuid_program_execd_by_a_non_root_program_is_counted(backend: Backend) {
    // Alone on either backend: the in-process backend hands this exec over to the perf backend,
    // whose recording another one beside it would slow down.
    let _alone = exclusive();
    let dir = TempDir::new("setuid");
    let prog = build_c(&dir, "alloc_counts.c");
    // Owned by root, setuid, and reachable by nobody (uid 65534).
    let ok = Command::new("chmod")
        .args(["4755"])
        .arg(&prog)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chmod u+s {}", prog.display());
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    let n = 2000u64;
    let run = record(
        backend,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            prog.to_str().unwrap(),
            &n.to_string(),
        ],
    )
    .unwrap();
    let dump = run.dump();
    assert_eq!(run.report.exit_code, Some(0), "{:?}", run.report);
    assert_eq!(run.report.lost, 0, "{dump}");
    // The kernel dropped the program's events at the setuid exec; they were opened again.
    assert_eq!(
        run.count_ending("main;level1;level2;malloc"),
        n,
        "{dump}\n{:?}",
        run.report
    );
    assert_eq!(run.count_ending("main;make_zeroed;calloc"), n / 4, "{dump}");
    assert!(
        run.lines
            .iter()
            .any(|(l, _)| l.starts_with("alloc_counts;")),
        "{dump}"
    );
}

fn two_allocators_through_one_call_site_all_count(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("alternate");
    let prog = build_c(&dir, "alternating.c");
    let run = record(backend, &[prog.to_str().unwrap(), "1000"]).unwrap();
    let dump = run.dump();
    assert_eq!(run.report.lost, 0, "{dump}");
    assert_eq!(run.report.inner, 0, "{:?}", run.report);
    assert_eq!(run.count_ending("main;malloc"), 500, "{dump}");
    assert_eq!(run.count_ending("main;valloc"), 500, "{dump}");
    assert_eq!(run.profile.total().allocs, 1000, "{dump}");
}

fn wait_for_file(path: &Path, deadline: Duration) {
    let end = Instant::now() + deadline;
    while !path.exists() {
        assert!(Instant::now() < end, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn a_binary_rebuilt_during_the_recording_keeps_its_own_names(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("rebuilt");
    let prog = build_c(&dir, "rebuilt.c");
    let (ready, go) = (dir.join("ready"), dir.join("go"));
    let argv: Vec<String> = [
        prog.to_str().unwrap(),
        ready.to_str().unwrap(),
        go.to_str().unwrap(),
        "1500",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let recording = std::thread::spawn(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        record(backend, &argv)
    });
    wait_for_file(&ready, Duration::from_secs(120));
    // The same path, a new binary with other names and another layout.
    let status = Command::new("gcc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-DV2", "-o"])
        .arg(&prog)
        .arg(programs_dir().join("rebuilt.c"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(&go, b"").unwrap();
    let run = recording.join().unwrap().unwrap();
    let dump = run.dump();
    assert_eq!(
        run.count_ending("main;v1_work;malloc"),
        1500,
        "{dump}\n{:?}",
        run.report
    );
    assert_eq!(run.count_containing("v2_work"), 0, "{dump}");
    assert_eq!(run.count_containing("rebuilt+0x"), 0, "{dump}");
}
