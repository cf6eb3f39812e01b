//! Complete stacks through code without frame pointers (issue 4, point 2): libstdc++'s
//! `operator new`, libc's `strdup`, Rust code built without frame pointers.

use allocflame_tests::*;

#[test]
fn cpp_new_and_strdup_callers_appear() {
    if !uprobes_available() || !tool_available("g++", "apt-get install g++") {
        return;
    }
    let dir = TempDir::new("cpp");
    let prog = build_c(&dir, "cpp_new.cpp");
    let n = 20_000u64;
    let run = record_perf(&[prog.to_str().unwrap(), &n.to_string()]).unwrap();
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
    assert_eq!(run.report.lost, 0);
}

#[test]
fn rust_frames_without_frame_pointers_appear() {
    if !uprobes_available() || !tool_available("rustc", "https://rustup.rs") {
        return;
    }
    let dir = TempDir::new("rust");
    let prog = build_rust(&dir, "rust_alloc.rs");
    let n = 10_000u64;
    let run = record_perf(&[prog.to_str().unwrap(), &n.to_string()]).unwrap();
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

#[test]
fn deep_stacks_are_marked_truncated_or_continued_with_the_kernel_chain() {
    use allocflame_backend_perf::PerfSource;
    use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("deep");
    let prog = build_c(&dir, "deep_stack.c");
    let n = 2_000u64;
    let full = format!(";main;{}malloc", "descend;".repeat(64));
    let complete = |lines: &[(String, allocflame_core::Weight)]| -> u64 {
        lines
            .iter()
            .filter(|(l, _)| l.ends_with(&full) && !l.contains("truncated"))
            .map(|(_, w)| w.allocs)
            .sum()
    };
    // Default: ~20 KiB of stack is within the copy: complete down to main, 64 descend frames.
    let run = record_perf(&[prog.to_str().unwrap(), &n.to_string()]).unwrap();
    let dump = run.dump();
    assert_eq!(complete(&run.lines), n, "{dump}");
    assert!(
        !run.report.notes.iter().any(|m| m.contains("truncated")),
        "{:?}",
        run.report.notes
    );
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
    assert_eq!(complete(&lines), n, "{lines:?}");
}
