//! `cargo run --release --example throughput [-- FILE [N]]`: symbols per second of
//! this crate alone on the modern names of a `MANGLED ---> DEMANGLED` file.
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/manglings.txt").to_string()
    });
    let total: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    let text = std::fs::read_to_string(&path).expect("read corpus");
    let corpus: Vec<&str> = text
        .lines()
        .filter_map(|l| l.find(" --->").map(|p| l[..p].trim()))
        .filter(|m| !m.starts_with("_T") || m.starts_with("_T0"))
        .collect();
    let opts = swift_demangle::Options::default();
    let rounds = total.div_ceil(corpus.len());
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..rounds {
            for s in &corpus {
                black_box(swift_demangle::demangle(black_box(s), &opts));
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let n = rounds * corpus.len();
    println!("{n} symbols, best of 3: {:.0} symbols/s", n as f64 / best);
}
