//! Threads, forked children, exec'd images and user probes (issue 4, points 3 and 4), on each
//! backend (issue 12); user probes are the perf backend's alone.

use allocflame_core::probes::Probe;
use allocflame_core::source::{RecordOptions, Target};
use allocflame_tests::*;

backend_tests! {
    both: threads_forks_and_execs_are_recorded_as_their_own_roots,
        every_glibc_entry_point_counts_once,
        without_follow_children_only_the_process_and_its_threads_are_recorded;
    perf: a_user_probe_calling_malloc_counts_once;
    preload: a_user_probe_is_declined_naming_it;
}

fn threads_forks_and_execs_are_recorded_as_their_own_roots(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("follow");
    let prog = build_c(&dir, "threads_fork_exec.c");
    let exec_target = build_c(&dir, "alloc_counts.c");
    let k = 5_000u64;
    let run = record(
        backend,
        &[
            prog.to_str().unwrap(),
            &k.to_string(),
            exec_target.to_str().unwrap(),
            "1000",
        ],
    )
    .unwrap();
    let dump = run.dump();
    assert_eq!(run.report.lost, 0, "{dump}");
    assert_eq!(run.report.exit_code, Some(0), "{dump}");
    // Both threads, under the program's own root.
    let threads: u64 = run
        .lines
        .iter()
        .filter(|(l, _)| l.starts_with("threads_fork_ex;") && l.ends_with(";thread_work;malloc"))
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(threads, 2 * k, "{dump}");
    // The forked child before its exec: a root of its own.
    let child: u64 = run
        .lines
        .iter()
        .filter(|(l, _)| {
            l.starts_with("threads_fork_ex [child];") && l.ends_with(";main;child_work;malloc")
        })
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(child, k, "{dump}");
    // The image it exec'd, with that image's symbols.
    let exec: u64 = run
        .lines
        .iter()
        .filter(|(l, _)| {
            l.starts_with("alloc_counts;") && l.ends_with(";main;level1;level2;malloc")
        })
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(exec, 1000, "{dump}");
}

fn a_user_probe_calling_malloc_counts_once(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("custom");
    let prog = build_c(&dir, "custom_alloc.c");
    let n = 3_000u64;
    let mut options = RecordOptions::default();
    let probe: Probe = format!("{}:my_alloc:0", prog.display()).parse().unwrap();
    options.probes.push(probe);
    let run = record_on(
        backend,
        &Target::spawn([prog.to_str().unwrap(), &n.to_string()]),
        options,
    )
    .unwrap();
    let dump = run.dump();
    let custom = run.weight_ending("main;use_custom;my_alloc");
    assert_eq!(custom.allocs, n, "{dump}");
    assert_eq!(custom.bytes, 100 * n, "{dump}");
    // The malloc inside my_alloc is the same allocation: not counted again.
    assert_eq!(run.count_containing("my_alloc;malloc"), 0, "{dump}");
    assert_eq!(run.count_ending("main;use_plain;malloc"), n, "{dump}");
}

/// The in-process library interposes the allocator catalog only.
fn a_user_probe_is_declined_naming_it(_: Backend) {
    let dir = TempDir::new("custom-preload");
    let prog = build_c(&dir, "custom_alloc.c");
    let mut options = RecordOptions::default();
    options
        .probes
        .push(format!("{}:my_alloc:0", prog.display()).parse().unwrap());
    let why = unsupported_in_process(&Target::spawn([prog.to_str().unwrap(), "10"]), options);
    assert!(why.contains("my_alloc"), "{why}");
}

fn every_glibc_entry_point_counts_once(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("nested");
    let prog = build_c(&dir, "nested_allocators.c");
    let options = RecordOptions {
        stacks: false,
        ..RecordOptions::default()
    };
    let run = record_on(backend, &Target::spawn([prog.to_str().unwrap()]), options).unwrap();
    let by_name = |f: &str| -> u64 {
        run.report
            .per_probe
            .iter()
            .zip(RecordOptions::default().probes)
            .filter(|(_, p)| p.function == f)
            .map(|(w, _)| w.allocs)
            .sum()
    };
    assert_eq!(run.report.lost, 0, "{}", run.dump());
    // memalign is glibc's alias of aligned_alloc: one probe, counted under aligned_alloc.
    assert_eq!(
        by_name("aligned_alloc") + by_name("memalign"),
        200,
        "{:?}",
        run.report
    );
    for f in [
        "posix_memalign",
        "valloc",
        "pvalloc",
        "reallocarray",
        "calloc",
    ] {
        assert_eq!(by_name(f), 100, "{f}: {:?}", run.report);
    }
    // Only strdup's malloc is a malloc of its own; none of the relayed ones.
    assert_eq!(by_name("malloc"), 100, "{:?}", run.report);
    assert_eq!(by_name("realloc"), 0, "{:?}", run.report);
    assert_eq!(run.report.total().allocs, 800, "{:?}", run.report);
}

fn without_follow_children_only_the_process_and_its_threads_are_recorded(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("nofollow");
    let prog = build_c(&dir, "threads_fork_exec.c");
    let exec_target = build_c(&dir, "alloc_counts.c");
    let options = RecordOptions {
        follow_children: false,
        ..RecordOptions::default()
    };
    let target = Target::spawn([
        prog.to_str().unwrap(),
        "1000",
        exec_target.to_str().unwrap(),
        "100",
    ]);
    let run = record_on(backend, &target, options).unwrap();
    let dump = run.dump();
    assert_eq!(
        run.count_ending("thread_main;thread_work;malloc"),
        2000,
        "{dump}"
    );
    assert_eq!(run.count_containing("child_work"), 0, "{dump}");
    assert!(
        run.lines
            .iter()
            .all(|(l, _)| l.starts_with("threads_fork_ex;")),
        "{dump}"
    );
}
