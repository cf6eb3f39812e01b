//! Symbols per second of `swift-demangle` (Rust) and of Swift's C++ demangler
//! (`swift-demangler` crate) on the modern names of Swift's test corpus, repeated,
//! in the same run, one thread each.

use std::hint::black_box;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../swift-demangle/tests/data/manglings.txt"
        )
        .to_string()
    });
    let total: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000_000);
    let text = std::fs::read_to_string(&path).expect("read corpus");
    let corpus: Vec<String> = text
        .lines()
        .filter_map(|l| l.find(" --->").map(|p| l[..p].trim().to_string()))
        // Modern names only: the C++ build in swift-demangler has no old-mangling demangler.
        .filter(|m| !(m.starts_with("_T") && !m.starts_with("_T0")))
        .collect();
    let rounds = total.div_ceil(corpus.len());
    let opts = swift_demangle::Options::default();

    // Warm up both.
    for s in &corpus {
        black_box(swift_demangle::demangle(s, &opts));
        black_box(swift_demangler::demangle(s));
    }

    // The machine may be shared: run both in alternation several times and
    // keep each one's best round, so both get the same, least-loaded view.
    const REPS: usize = 5;
    let per_rep = rounds.div_ceil(REPS);
    let n = per_rep * corpus.len();
    let (mut rust, mut cpp) = (f64::MAX, f64::MAX);
    let mut ok_rust = 0usize;
    for _ in 0..REPS {
        let t = Instant::now();
        ok_rust = 0;
        for _ in 0..per_rep {
            for s in &corpus {
                if black_box(swift_demangle::demangle(black_box(s), &opts)).is_some() {
                    ok_rust += 1;
                }
            }
        }
        rust = rust.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for _ in 0..per_rep {
            for s in &corpus {
                black_box(swift_demangler::demangle(black_box(s)));
            }
        }
        cpp = cpp.min(t.elapsed().as_secs_f64());
    }

    let rust_rate = n as f64 / rust;
    let cpp_rate = n as f64 / cpp;
    println!(
        "corpus: {} modern names x {} rounds = {} symbols per timed run, best of {} runs each",
        corpus.len(),
        per_rep,
        n,
        REPS
    );
    println!(
        "swift-demangle (Rust):        {:>12.0} symbols/s ({:.3} s, {} demangled)",
        rust_rate, rust, ok_rust
    );
    println!(
        "swift-demangler (Swift C++):  {:>12.0} symbols/s ({:.3} s)",
        cpp_rate, cpp
    );
    println!(
        "ratio Rust / C++:             {:>12.2}x",
        rust_rate / cpp_rate
    );
}
