//! Exact counts and complete stacks at a million allocations (issue 4, points 1, 2, 3, 5, 7), on
//! each backend (issue 12).

use allocflame_tests::*;

backend_tests! {
    both: a_million_mallocs_are_counted_exactly_on_their_stacks;
}

fn a_million_mallocs_are_counted_exactly_on_their_stacks(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("exact");
    let prog = build_c(&dir, "alloc_counts.c");
    let n: u64 = 1_000_000;
    let run = record(
        backend,
        &[prog.to_str().unwrap(), &n.to_string(), "with-realloc"],
    )
    .unwrap();
    let dump = run.dump();
    assert_eq!(run.report.lost, 0, "events lost:\n{dump}");
    assert_eq!(run.profile.lost, 0);
    // Immediate callers (level2, make_zeroed, …) present: a frame-pointer walk would skip them.
    let malloc = run.weight_ending("main;level1;level2;malloc");
    assert_eq!(malloc.allocs, n, "{dump}");
    assert_eq!(malloc.bytes, 16 * n, "{dump}");
    let calloc = run.weight_ending("main;make_zeroed;calloc");
    assert_eq!(calloc.allocs, n / 4, "{dump}");
    assert_eq!(calloc.bytes, 4 * 8 * (n / 4), "{dump}");
    let memalign = run.weight_ending("main;make_aligned;posix_memalign");
    assert_eq!(memalign.allocs, n / 10, "{dump}");
    assert_eq!(memalign.bytes, 100 * (n / 10), "{dump}");
    // realloc(NULL, n) tail-calls malloc in glibc: one allocation, counted at realloc.
    let realloc = run.weight_ending("main;grow_from_null;realloc");
    assert_eq!(realloc.allocs, n / 10, "{dump}");
    assert_eq!(realloc.bytes, 24 * (n / 10), "{dump}");
    assert_eq!(run.count_containing("grow_from_null"), n / 10, "{dump}");
    // Every stack in the program is rooted at its name and symbolized after it exited.
    for (line, _) in &run.lines {
        assert!(line.starts_with("alloc_counts;"), "{line}");
        assert!(!line.contains("[unknown"), "{line}");
        assert!(
            !line.contains("alloc_counts+0x"),
            "unsymbolized frame: {line}"
        );
    }
    let total: u64 = run.report.per_probe.iter().map(|w| w.allocs).sum();
    assert_eq!(total, n + n / 4 + n / 10 + n / 10, "{:?}", run.report);
}
