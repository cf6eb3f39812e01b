//! When events are lost, the report, the profile and the counts say exactly how many
//! (issue 4, point 1: "if anything is lost, output and --json say how much").

use allocflame_backend_perf::PerfSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
use allocflame_tests::*;

#[test]
fn a_tiny_ring_buffer_loses_events_and_says_exactly_how_many() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("lost");
    let prog = build_c(&dir, "alloc_counts.c");
    let n = 200_000u64;
    let options = RecordOptions::default();
    let mut sink = Collector::new(&options.probes);
    // 8 pages per CPU: a dozen samples fit; the reader cannot keep up.
    let report = PerfSource {
        buffer_bytes: Some(32 << 10),
        ..PerfSource::default()
    }
    .record(
        &Target::spawn([prog.to_str().unwrap(), &n.to_string()]),
        &options,
        &mut sink,
    )
    .unwrap();
    assert!(report.lost > 0, "{report:?}");
    assert!(
        report.notes.iter().any(|n| n.contains("were lost")),
        "{:?}",
        report.notes
    );
    let profile = sink.finish();
    assert_eq!(profile.lost, report.lost);
    // Every call is either counted or lost: nothing silently disappears.
    let counted = profile.total().allocs;
    assert_eq!(counted, report.total().allocs);
    assert_eq!(counted + report.lost, n + n / 4 + n / 10, "{report:?}");
}
