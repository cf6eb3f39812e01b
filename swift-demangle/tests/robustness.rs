//! No input makes the demangler panic, hang or allocate without bound.
//!
//! The three names are the ones that crash Swift's own C++ demangler (5 GB
//! allocation, abort, segfault). The property test feeds ≥ 1M mutated and
//! random symbols (release builds; debug builds run a smaller share) and
//! checks the output stays under a ceiling proportional to the cap.

use swift_demangle::{demangle, Options};

const HOSTILE: &[&str] = &[
    "_T0s30ReversedRandomAccessCollectionVyxGTfq3nnp",
    "$sBf16_Rv4_",
    "@__swiftmacro_9MacroUser16MemberNotCoveredV33_4361AD9339943F52AE6h86DD51E04E91Ll0dE0fMf0",
    "_T0s30ReversedRandomAccessCollectionVyxGTfq3nnpf_nTfq1cn_nTfq4x_n",
    "$SSSTf4pd44444_pf",
];

#[test]
fn names_that_crash_the_cpp_demangler() {
    for opts in [
        Options::default(),
        Options {
            simplified: true,
            ..Options::default()
        },
    ] {
        for name in HOSTILE {
            let out = demangle(name, &opts);
            assert!(out.map(|s| s.len() <= opts.max_output).unwrap_or(true));
        }
    }
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<String> {
    let mut v = Vec::new();
    for f in ["manglings.txt", "simplified-manglings.txt"] {
        let text =
            std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        for line in text.lines() {
            if let Some(p) = line.find(" --->") {
                v.push(line[..p].trim().to_string());
            }
        }
    }
    v.extend(HOSTILE.iter().map(|s| s.to_string()));
    v
}

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$.";

fn mutate(rng: &mut Rng, seed: &str, corpus: &[String]) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    // Mostly one or two edits, so many inputs stay close to valid and reach
    // deep into the parser and printer.
    let n = if rng.below(2) == 0 {
        1
    } else {
        1 + rng.below(4)
    };
    for _ in 0..n {
        let pos = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() && pos < b.len() => {
                b[pos] = ALPHABET[rng.below(ALPHABET.len())];
            }
            1 => b.insert(pos, ALPHABET[rng.below(ALPHABET.len())]),
            2 if pos < b.len() => {
                b.remove(pos);
            }
            3 => {
                // Splice a piece of another symbol in.
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let s = rng.below(other.len());
                let e = (s + 1 + rng.below(12)).min(other.len());
                b.splice(pos..pos, other[s..e].iter().copied());
            }
            4 => {
                // Repeat a piece (deep nesting, long substitution chains).
                if !b.is_empty() {
                    let s = rng.below(b.len());
                    let e = (s + 1 + rng.below(6)).min(b.len());
                    let piece: Vec<u8> = b[s..e].to_vec();
                    for _ in 0..rng.below(40) {
                        b.splice(pos.min(b.len())..pos.min(b.len()), piece.iter().copied());
                    }
                }
            }
            5 => {
                // Big numbers where lengths and indices go.
                let num = ["4294967295", "99999999999", "0", "1000", "65536"][rng.below(5)];
                b.splice(pos..pos, num.bytes());
            }
            _ => b.truncate(pos),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn random_symbol(rng: &mut Rng) -> String {
    let prefix = [
        "$s",
        "$S",
        "_T0",
        "_T",
        "_Tt",
        "_$s",
        "$e",
        "@__swiftmacro_",
        "",
    ][rng.below(9)];
    let len = rng.below(64);
    let mut s = String::from(prefix);
    for _ in 0..len {
        s.push(ALPHABET[rng.below(ALPHABET.len())] as char);
    }
    s
}

#[test]
fn property_mutated_and_random_symbols() {
    // `SWIFT_DEMANGLE_FUZZ_N` runs a longer campaign (and `SWIFT_DEMANGLE_FUZZ_SEED` another one).
    let total: usize = std::env::var("SWIFT_DEMANGLE_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            100_000
        } else {
            2_000_000
        });
    let seed: u64 = std::env::var("SWIFT_DEMANGLE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001);
    let corpus = corpus();
    let mut rng = Rng(seed | 1);
    let opts = [
        Options::default(),
        Options {
            simplified: true,
            ..Options::default()
        },
    ];
    let mut demangled = 0usize;
    const BOUND: std::time::Duration = std::time::Duration::from_millis(250);
    let mut slowest = std::time::Duration::ZERO;
    let start = std::time::Instant::now();
    for i in 0..total {
        let input = if i % 4 == 3 {
            random_symbol(&mut rng)
        } else {
            let seed = rng.below(corpus.len());
            mutate(&mut rng, &corpus[seed], &corpus)
        };
        let o = &opts[i % 2];
        let t = std::time::Instant::now();
        let result = demangle(&input, o);
        let mut took = t.elapsed();
        if took >= BOUND {
            // A hang is reproducible, a descheduled thread on a loaded machine is not: time
            // the input again and keep its best run.
            took = (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let _ = demangle(&input, o);
                    t.elapsed()
                })
                .min()
                .unwrap_or(took);
        }
        slowest = slowest.max(took);
        if let Some(out) = result {
            demangled += 1;
            assert!(
                out.len() <= o.max_output,
                "output over the cap for {input:?}"
            );
        }
    }
    eprintln!(
        "fuzz: {total} inputs, {demangled} demangled, no panic, {:.1} s, slowest input {:?}",
        start.elapsed().as_secs_f64(),
        slowest
    );
    // No input may hang: even the worst one is far below this (the machine
    // may be loaded, hence the generous bound and the retiming above).
    assert!(slowest < BOUND, "slowest input took {slowest:?}");
}

#[test]
fn deep_nesting_and_long_inputs_are_bounded() {
    let opts = Options::default();
    let deep = format!("$s{}", "Sa".repeat(20_000));
    assert!(demangle(&deep, &opts)
        .map(|s| s.len() <= opts.max_output)
        .unwrap_or(true));
    let nested = format!("$s{}SiD", "SaySi".repeat(5000));
    assert!(demangle(&nested, &opts)
        .map(|s| s.len() <= opts.max_output)
        .unwrap_or(true));
    // Substitutions referring back to the growing type: exponential if unbounded.
    let mut expo = String::from("$sSi");
    for _ in 0..200 {
        expo.push_str("AA_t");
    }
    expo.push('D');
    assert!(demangle(&expo, &opts)
        .map(|s| s.len() <= opts.max_output)
        .unwrap_or(true));
    // Word substitutions repeating a long word: quadratic if uncapped.
    let word = "abcdefgh".repeat(1000);
    let bomb = format!("$s{}{}0{}A3FooVD", word.len(), word, "a".repeat(30_000));
    assert!(demangle(&bomb, &opts)
        .map(|s| s.len() <= opts.max_output)
        .unwrap_or(true));
    let huge = "x".repeat(1 << 20);
    assert_eq!(demangle(&huge, &opts), None);
}

#[test]
fn deep_trees_fit_a_small_thread_stack() {
    // Profilers demangle on worker threads; the depth limits must keep even a
    // debug build within a modest stack.
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let opts = Options::default();
            for n in [50usize, 100, 150, 190, 250, 1000] {
                let optional = format!("$sSi{}D", "Sg".repeat(n));
                let _ = demangle(&optional, &opts);
                let tuple = format!("$sSi{}D", "_t".repeat(n));
                let _ = demangle(&tuple, &opts);
                let func = format!("$sSi{}D", "yc".repeat(n));
                let _ = demangle(&func, &opts);
                let old = format!("_Tt{}Si{}", "GSq".repeat(n), "_".repeat(n));
                let _ = demangle(&old, &opts);
                let old_fn = format!("_Tt{}Si{}", "FT_".repeat(n), "".repeat(n));
                let _ = demangle(&old_fn, &opts);
            }
        })
        .unwrap();
    handle.join().expect("no stack overflow");
}
