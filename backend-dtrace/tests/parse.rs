//! Reading dtrace output: real macOS captures through the parser the backend uses, and a
//! synthesized capture in the exact format the generated script prints, handed over to a
//! collector as a recording would.

use std::path::PathBuf;

use allocflame_backend_dtrace::output::{parse_capture, parse_records, target_pid};
use allocflame_backend_dtrace::{hand_over, script};
use allocflame_core::probes::{catalog, Platform};
use allocflame_core::source::{Collector, RecordReport};
use allocflame_core::{Error, Weight};

fn data(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, path.display().to_string())
}

/// The frame-by-frame check of this capture is the core importer's
/// (`core/tests/import_conformance.rs`); here: the backend's parser gives its two stacks.
#[test]
fn swift_nio_malloc_type_capture() {
    let (text, file) = data("swift-nio/swift-nio-dtrace-malloc-type-ustack.txt");
    let records = parse_records(&text, &file).unwrap();
    let leaves_and_counts: Vec<(&str, &[u64])> = records
        .iter()
        .map(|r| (r.frames[0].as_str(), r.values.as_slice()))
        .collect();
    assert_eq!(
        leaves_and_counts,
        [
            ("libsystem_malloc.dylib`malloc_type_calloc", &[13u64][..]),
            ("libsystem_malloc.dylib`malloc_type_malloc", &[10000u64][..]),
        ]
    );
}

#[test]
fn inferno_rust_names_capture() {
    let (text, file) = data("inferno/rust-names.txt");
    let records = parse_records(&text, &file).unwrap();
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|r| r.values == [1]));
    // The one stack in the allocator: malloc calling malloc_zone_malloc, leaf first.
    let alloc: Vec<_> = records
        .iter()
        .filter(|r| r.frames[0].starts_with("libsystem_malloc.dylib`"))
        .collect();
    assert_eq!(alloc.len(), 1);
    assert_eq!(
        alloc[0].frames[..2],
        [
            "libsystem_malloc.dylib`malloc_zone_malloc",
            "libsystem_malloc.dylib`malloc"
        ]
    );
    // Frames with spaces keep them; only the offset goes.
    assert!(records.iter().any(|r| r
        .frames
        .iter()
        .any(|f| f
            == "rg`std::panicking::try::do_call::h08ca64c12e8a9bb0 (.llvm.15516475458848885060)")));
    assert!(records
        .iter()
        .all(|r| r.frames.iter().all(|f| !f.contains("+0x"))));
}

fn collect(text: &str) -> (allocflame_core::Profile, RecordReport) {
    let capture = parse_capture(text, "synthesized-capture.txt").unwrap();
    let probes = script::macos_probes(&catalog(Platform::MacOs));
    let mut collector = Collector::new(&probes);
    let mut report = RecordReport::new("dtrace", probes.len());
    hand_over(&capture, &probes, "prog", 0, &mut collector, &mut report);
    (collector.finish(), report)
}

#[test]
fn synthesized_capture_in_the_scripts_format() {
    let (text, file) = data("synthesized-capture.txt");
    assert_eq!(target_pid(&text), Some(51234));
    let capture = parse_capture(&text, &file).unwrap();
    assert!(capture.complete);
    // Two records of malloc differ only in offsets: one stack.
    assert_eq!(capture.stacks.len(), 3);
    assert_eq!(capture.stack_total(), Weight::new(1015, 64880));
    assert_eq!(capture.calls_total(), capture.stack_total());

    let (profile, report) = collect(&text);
    let lines = profile.folded_lines();
    let find = |stack: &str| {
        lines
            .iter()
            .find(|(s, _)| s == stack)
            .map(|(_, w)| *w)
            .unwrap_or_else(|| panic!("no `{stack}` in {lines:#?}"))
    };
    assert_eq!(
        find("prog;start;main;level1;malloc"),
        Weight::new(1000, 64000)
    );
    assert_eq!(find("prog;start;main;level2;calloc"), Weight::new(10, 640));
    assert_eq!(
        find("prog;start;prog_main;specialized static Demo.main();swift_allocObject;malloc_type_malloc"),
        Weight::new(5, 240)
    );
    let probes = catalog(Platform::MacOs);
    let at = |f: &str| probes.iter().position(|p| p.function == f).unwrap();
    assert_eq!(report.per_probe[at("malloc")], Weight::new(1000, 64000));
    assert_eq!(report.per_probe[at("calloc")], Weight::new(10, 640));
    assert_eq!(
        report.per_probe[at("malloc_type_malloc")],
        Weight::new(5, 240)
    );
    assert_eq!(report.total(), Weight::new(1015, 64880));
    assert_eq!(report.lost, 0);
    assert!(!report.interrupted);
}

#[test]
fn a_stack_aggregation_that_counts_less_than_the_calls_is_a_loss() {
    let (text, _) = data("synthesized-capture.txt");
    let text = text.replace(
        "allocflame-probe libsystem_malloc.dylib calloc 10\n",
        "allocflame-probe libsystem_malloc.dylib calloc 13\n",
    );
    let (profile, report) = collect(&text);
    assert_eq!(report.lost, 3);
    assert_eq!(profile.lost, 3);
}

#[test]
fn output_cut_short_keeps_what_is_there_and_says_partial() {
    let (text, _) = data("synthesized-capture.txt");
    let cut = &text[..text.find("allocflame-dtrace 1 bytes").unwrap()];
    let (profile, report) = collect(cut);
    assert!(report.interrupted);
    assert!(report.notes.iter().any(|n| n.contains("partial")));
    assert_eq!(profile.total().allocs, 1015);
}

#[test]
fn output_without_sections_and_broken_records_are_errors() {
    let err = parse_capture("dtrace: error on enabled probe\n", "out.txt").unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    let bad = "allocflame-dtrace 1 calls\nallocflame-probe libsystem_malloc.dylib malloc many\n";
    let err = parse_capture(bad, "out.txt").unwrap_err();
    assert!(err.to_string().starts_with("out.txt:2:"), "{err}");
    let bad = "allocflame-dtrace 1 calls\nallocflame-dtrace 1 stacks\n";
    assert!(parse_capture(bad, "out.txt").is_err());
}

#[test]
fn count_mode_gives_one_frame_stacks_from_the_totals() {
    let (text, _) = data("synthesized-capture.txt");
    let only_calls = &text[..text.find("allocflame-dtrace 1 allocs").unwrap()];
    let only_calls = format!("{only_calls}allocflame-dtrace 1 allocs\nallocflame-dtrace 1 bytes\nallocflame-dtrace 1 end\n");
    let (profile, report) = collect(&only_calls);
    assert_eq!(report.lost, 0);
    assert!(!report.interrupted);
    let lines = profile.folded_lines();
    assert!(lines
        .iter()
        .any(|(s, w)| s == "prog;malloc" && *w == Weight::new(1000, 64000)));
}
