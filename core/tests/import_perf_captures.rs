//! The perf-script importer on real captures of `tests/data/perf/allocs.c` made on Linux with
//! uprobes on glibc's malloc and calloc (see `tests/data/perf/README.md` for the commands).
//! The program makes 3 `malloc(100)` in `alloc_a` (from `level1`), 5 `calloc(4, 16)` in
//! `alloc_b` (from `level2`) and 2 `malloc(7)` in `main`: 10 allocations.

mod import_common;

use allocflame_core::import::perf::{self, PerfOptions};
use allocflame_core::import::{self, Format};
use allocflame_core::{Profile, Weight, WeightKind};

use import_common::data_bytes;

fn capture(name: &str) -> String {
    String::from_utf8(data_bytes(&format!("perf/{name}"))).unwrap()
}

fn folded(p: &Profile, kind: WeightKind) -> String {
    let mut out = Vec::new();
    p.write_folded(&mut out, kind).unwrap();
    String::from_utf8(out).unwrap()
}

fn parse(name: &str, options: &PerfOptions) -> Profile {
    perf::parse(&capture(name), name, options).unwrap()
}

#[test]
fn frame_pointer_capture_with_return_probes() {
    // `-g` walks frame pointers from inside malloc, so the immediate caller (`alloc_a`,
    // `alloc_b`, and `main` for the last two) is missing: that is what perf records. The
    // `probe_libc:malloc__return` events are exits, not allocations, and are not counted.
    let p = parse("malloc-calloc-return-fp.txt", &PerfOptions::default());
    assert_eq!(
        folded(&p, WeightKind::Allocations),
        "allocs;__libc_start_call_main;main;level1;malloc 3\n\
         allocs;__libc_start_call_main;main;level2;calloc 5\n\
         allocs;__libc_start_call_main;malloc 2\n"
    );
    assert_eq!(p.total(), Weight::new(10, 0));
    assert!(!p.bytes_known);
    assert_eq!(p.skipped, 0);
}

#[test]
fn dwarf_capture() {
    let p = parse("malloc-calloc-dwarf.txt", &PerfOptions::default());
    assert_eq!(
        folded(&p, WeightKind::Allocations),
        "allocs;_start;__libc_start_main_impl;__libc_start_call_main;main;level1;alloc_a;malloc 3\n\
         allocs;_start;__libc_start_main_impl;__libc_start_call_main;main;level2;alloc_b;calloc 5\n\
         allocs;_start;__libc_start_main_impl;__libc_start_call_main;main;malloc 2\n"
    );
    assert_eq!(p.skipped, 0);
}

#[test]
fn size_arguments_give_bytes() {
    let p = parse("malloc-calloc-size-pidtid-fp.txt", &PerfOptions::default());
    assert!(p.bytes_known);
    assert_eq!(p.total(), Weight::new(10, 3 * 100 + 5 * 4 * 16 + 2 * 7));
    assert_eq!(
        folded(&p, WeightKind::Bytes),
        "allocs;__libc_start_call_main;main;level1;malloc 300\n\
         allocs;__libc_start_call_main;main;level2;calloc 320\n\
         allocs;__libc_start_call_main;malloc 14\n"
    );
}

#[test]
fn pid_tid_roots_and_event_filters() {
    let name = "malloc-calloc-size-pidtid-fp.txt";
    let tid = parse(
        name,
        &PerfOptions {
            include_tid: true,
            ..PerfOptions::default()
        },
    );
    assert!(tid
        .stacks()
        .all(|(frames, _)| frames[0] == "allocs-6903/6903"));
    let pid = parse(
        name,
        &PerfOptions {
            include_pid: true,
            ..PerfOptions::default()
        },
    );
    assert!(pid.stacks().all(|(frames, _)| frames[0] == "allocs-6903"));
    let calloc = parse(
        name,
        &PerfOptions {
            event_filter: Some("probe_libc:calloc".into()),
            ..PerfOptions::default()
        },
    );
    assert_eq!(calloc.total(), Weight::new(5, 320));
    // What inferno does without a filter: keep the first event type only, losing calloc.
    let first = parse(
        name,
        &PerfOptions {
            first_event_only: true,
            ..PerfOptions::default()
        },
    );
    assert_eq!(first.total().allocs, 5);
}

#[test]
fn format_is_detected() {
    for name in [
        "malloc-calloc-return-fp.txt",
        "malloc-calloc-dwarf.txt",
        "malloc-calloc-size-pidtid-fp.txt",
    ] {
        let text = capture(name);
        assert_eq!(import::detect(&text), Some(Format::PerfScript), "{name}");
        let p = import::read_bytes(text.as_bytes(), name, None).unwrap();
        assert_eq!(p.total().allocs, 10);
    }
}

/// `nested.c`: 4 × `realloc(NULL, 50)` in `grow` (which gcc turns into `malloc(50)`) and
/// 2 × `reallocarray(NULL, 3, 8)` in `grow_array`, which glibc tail-calls into `realloc`,
/// which tail-calls into `malloc`: 6 allocations, 10 probe hits.
#[test]
fn nested_calls_counted_once_with_outermost_only() {
    let name = "nested-dwarf.txt";
    let all = parse(name, &PerfOptions::default());
    assert_eq!(all.total().allocs, 10);
    let outer = parse(
        name,
        &PerfOptions {
            outermost_only: true,
            ..PerfOptions::default()
        },
    );
    assert_eq!(
        folded(&outer, WeightKind::Allocations),
        "nested;_start;__libc_start_main_impl;__libc_start_call_main;main;grow;malloc 4\n\
         nested;_start;__libc_start_main_impl;__libc_start_call_main;main;grow_array;reallocarray 2\n"
    );
    assert_eq!(outer.skipped, 0);
}

#[test]
fn nested_calls_in_frame_pointer_capture() {
    // The frame-pointer walk misses the immediate caller, but the tail-call chain still shows
    // as consecutive events with the same stack below the leaf.
    let outer = parse(
        "nested-fp.txt",
        &PerfOptions {
            outermost_only: true,
            ..PerfOptions::default()
        },
    );
    assert_eq!(
        folded(&outer, WeightKind::Allocations),
        "nested;__libc_start_call_main;main;malloc 4\n\
         nested;__libc_start_call_main;main;reallocarray 2\n"
    );
}
