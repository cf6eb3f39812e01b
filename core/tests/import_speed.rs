//! Parse time of the 3 MB `example-perf-stacks.txt.gz` (unpacked), next to inferno's
//! collapser on the same text in the same run. Run with
//! `cargo test -p allocflame-core --release --test import_speed -- --ignored --nocapture`.

mod import_common;

use std::time::{Duration, Instant};

use allocflame_core::import::perf::{self, PerfOptions};
use inferno::collapse::Collapse;

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "timing; run on demand in release"]
fn perf_parse_speed() {
    let text = import_common::peer_text("inferno/flamegraph/example-perf-stacks.txt.gz");
    let ours = best_of(10, || {
        let p = perf::parse(&text, "example", &PerfOptions::default()).unwrap();
        assert!(p.total().allocs > 0);
    });
    let theirs = best_of(10, || {
        let mut opt = inferno::collapse::perf::Options::default();
        opt.nthreads = 1;
        let mut folder = inferno::collapse::perf::Folder::from(opt);
        let mut out = Vec::new();
        folder.collapse(text.as_bytes(), &mut out).unwrap();
        assert!(!out.is_empty());
    });
    let gz = import_common::data_bytes("peers/inferno/flamegraph/example-perf-stacks.txt.gz");
    let with_gunzip = best_of(10, || {
        let p = allocflame_core::import::read_bytes(&gz, "example", None).unwrap();
        assert!(p.total().allocs > 0);
    });
    println!(
        "read_bytes of the .gz (unpack + detect + parse): {:.1} ms",
        with_gunzip.as_secs_f64() * 1e3
    );
    println!(
        "{} MB: allocflame perf::parse {:.1} ms, inferno collapse-perf (1 thread) {:.1} ms, ratio {:.2}",
        text.len() as f64 / 1e6,
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
