//! Offline interpretation of a committed raw capture (no root, any host): the capture, the
//! program it recorded and the expected folded stacks sit in `tests/data/` (see its README).
//! `ALLOCFLAME_BLESS=1 cargo test -p allocflame-backend-perf --test replay_golden` rewrites
//! the expectation.

use std::path::{Path, PathBuf};

use allocflame_backend_perf::{replay, replay_reader, ReplayOptions};
use allocflame_core::source::Collector;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Replays with only `tests/data` to find objects in: the machine's own libc never enters.
fn options() -> ReplayOptions {
    ReplayOptions {
        search_dirs: vec![data()],
        recorded_paths: false,
    }
}

fn folded(sink: Collector) -> String {
    let mut lines: Vec<String> = sink
        .finish()
        .folded_lines()
        .into_iter()
        .map(|(s, w)| format!("{s} {}", w.allocs))
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

#[test]
fn the_committed_capture_replays_to_its_expected_profile() {
    let mut sink = Collector::new(&[]);
    let report = replay(&data().join("golden.raw"), &options(), &mut sink).unwrap();
    let got = folded(sink);
    let expected_path = data().join("golden.folded");
    if std::env::var_os("ALLOCFLAME_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if got != expected {
        let out = std::env::temp_dir().join("golden.folded.got");
        let _ = std::fs::write(&out, &got);
        panic!(
            "replay of golden.raw differs from {} (got written to {}):\n{got}",
            expected_path.display(),
            out.display()
        );
    }
    // The program's frames are named from the committed binary, found by its build-id.
    assert!(got.contains("main;three_mallocs;malloc 3"), "{got}");
    assert!(got.contains("main;two_callocs;calloc 2"), "{got}");
    // realloc(NULL) → malloc: one allocation, at realloc.
    assert!(got.contains("main;one_realloc;realloc 1"), "{got}");
    assert_eq!(report.total().allocs, 6);
    assert_eq!(report.inner, 1);
    assert_eq!(report.lost, 0);
    assert_eq!(report.hits, Some(7));
    assert_eq!(report.exit_code, Some(0));
    // The recorded libc is not in tests/data: said so, not guessed.
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("libc") && n.contains("not on this machine")),
        "{:?}",
        report.notes
    );
}

#[test]
fn a_capture_cut_anywhere_replays_what_it_holds_and_says_so() {
    let bytes = std::fs::read(data().join("golden.raw")).unwrap();
    let header_end = allocflame_backend_perf::capture::MAGIC.len() + 8;
    for cut in (0..bytes.len()).step_by(97) {
        let mut sink = Collector::new(&[]);
        match replay_reader(&bytes[..cut], "cut.raw", &options(), &mut sink) {
            Ok(report) => {
                assert!(report.interrupted, "cut at {cut}: {report:?}");
                assert!(report.total().allocs <= 6);
            }
            // Only a cut inside the header makes it no capture at all.
            Err(e) => assert!(cut < header_end + 2000, "cut at {cut}: {e}"),
        }
    }
}

#[test]
fn garbage_is_an_error_or_a_partial_replay_never_a_panic() {
    let bytes = std::fs::read(data().join("golden.raw")).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let mut b = bytes.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % b.len();
            b[at] = (seed >> 32) as u8;
        }
        let mut sink = Collector::new(&[]);
        let _ = replay_reader(&b[..], "garbled.raw", &options(), &mut sink);
    }
    let mut sink = Collector::new(&[]);
    let e = replay_reader(
        &b"not a capture at all, much longer than the magic"[..],
        "x.raw",
        &options(),
        &mut sink,
    )
    .unwrap_err();
    assert!(e.to_string().contains("x.raw"), "{e}");
}
