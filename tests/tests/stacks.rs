//! Complete stacks through code without frame pointers (issue 4, point 2): libstdc++'s
//! `operator new`, libc's `strdup`, Rust code built without frame pointers, on each backend
//! (issue 12); and the perf backend's stack copy and kernel chain for stacks deeper than it.
//!
//! The perf recordings run one at a time, builds included ([`Backend::turn`]): they check
//! stacks and exact counts, and another test's compiler (rustc, g++) running beside a recording
//! made its reader fall behind its target, the kernel then dropping events (counted and
//! reported: `perf_accounting.rs` tests that accounting under load).

use allocflame_tests::*;

backend_tests! {
    both: cpp_new_and_strdup_callers_appear,
        rust_frames_without_frame_pointers_appear,
        deep_stacks_are_complete_by_default;
    perf: deep_stacks_beyond_the_copy_are_marked_truncated_or_continued_with_the_kernel_chain;
}

fn cpp_new_and_strdup_callers_appear(backend: Backend) {
    if !tool_available("g++", "apt-get install g++") {
        return;
    }
    let _turn = backend.turn();
    let dir = TempDir::new("cpp");
    let prog = build_c(&dir, "cpp_new.cpp");
    let n = 20_000u64;
    let run = record(backend, &[prog.to_str().unwrap(), &n.to_string()]).unwrap();
    let dump = run.dump();
    // make_widget → operator new (libstdc++, no frame pointers) → malloc.
    let new = run.count_ending("main;_Z11make_widgetl;_Znwm;malloc");
    assert_eq!(new, n, "{dump}");
    let weight = run.weight_ending("main;_Z11make_widgetl;_Znwm;malloc");
    assert_eq!(weight.bytes, 24 * n, "{dump}");
    // dup_name → strdup (libc) → malloc.
    let dup: u64 = run
        .lines
        .iter()
        .filter(|(l, _)| l.contains(";main;_Z8dup_namePKc;") && l.ends_with("strdup;malloc"))
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(dup, n / 2, "{dump}");
    assert_eq!(run.report.lost, 0, "{dump}");
}

fn rust_frames_without_frame_pointers_appear(backend: Backend) {
    if !tool_available("rustc", "https://rustup.rs") {
        return;
    }
    let _turn = backend.turn();
    let dir = TempDir::new("rust");
    let prog = build_rust(&dir, "rust_alloc.rs");
    let n = 10_000u64;
    let run = record(backend, &[prog.to_str().unwrap(), &n.to_string()]).unwrap();
    let dump = run.dump();
    let fill: u64 = run
        .lines
        .iter()
        .filter(|(l, _)| l.contains("fill_vectors") && l.ends_with(";malloc"))
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(fill, n, "{dump}");
    assert!(
        run.lines
            .iter()
            .any(|(l, _)| l.contains("rust_alloc4main") && l.contains("fill_vectors")),
        "main → fill_vectors expected:\n{dump}"
    );
}

/// The full stack of `deep_stack`'s allocations (64 recursive calls deep), and the count of those
/// in `lines` that end with it, unmarked.
fn complete_deep_stacks(lines: &[(String, allocflame_core::Weight)]) -> u64 {
    let full = format!(";main;{}malloc", "descend;".repeat(64));
    lines
        .iter()
        .filter(|(l, _)| l.ends_with(&full) && !l.contains("truncated"))
        .map(|(_, w)| w.allocs)
        .sum()
}

fn deep_stacks_are_complete_by_default(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("deep");
    let prog = build_c(&dir, "deep_stack.c");
    let n = 2_000u64;
    // ~20 KiB of stack (within the perf backend's default copy): complete down to main, 64
    // descend frames.
    let run = record(backend, &[prog.to_str().unwrap(), &n.to_string()]).unwrap();
    let dump = run.dump();
    assert_eq!(complete_deep_stacks(&run.lines), n, "{dump}");
    assert!(
        !run.report.notes.iter().any(|m| m.contains("truncated")),
        "{:?}",
        run.report.notes
    );
}

fn deep_stacks_beyond_the_copy_are_marked_truncated_or_continued_with_the_kernel_chain(
    backend: Backend,
) {
    use allocflame_backend_perf::PerfSource;
    use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
    let _turn = backend.turn();
    let dir = TempDir::new("deep-copy");
    let prog = build_c(&dir, "deep_stack.c");
    let n = 2_000u64;
    let target = Target::spawn([prog.to_str().unwrap(), &n.to_string()]);
    let record = |mut source: PerfSource| {
        let options = RecordOptions::default();
        let mut sink = Collector::new(&options.probes);
        source.record(&target, &options, &mut sink).unwrap();
        sink.finish().folded_lines()
    };
    // A 2 KiB copy, CFI only: the stack is cut, and says so; counts stay exact.
    let lines = record(PerfSource {
        stack_bytes: Some(2048),
        ..PerfSource::default()
    });
    let cut: u64 = lines
        .iter()
        .filter(|(l, _)| l.contains("[stack truncated]") && l.ends_with("descend;descend;malloc"))
        .map(|(_, w)| w.allocs)
        .sum();
    assert_eq!(cut, n, "{lines:?}");
    // With the kernel's frame-pointer chain: continued down to main (the program has frame
    // pointers).
    let lines = record(PerfSource {
        stack_bytes: Some(2048),
        kernel_callchain: true,
        ..PerfSource::default()
    });
    assert_eq!(complete_deep_stacks(&lines), n, "{lines:?}");
}
