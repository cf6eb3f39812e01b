//! Any profile written as pprof decodes back to the same stacks, labels and weights, with each
//! frame name one function and one location, and each string once.

use allocflame_core::pprof::{decode, encode, encode_uncompressed, PprofOptions};
use allocflame_core::{Labels, Profile, Weight};
use proptest::prelude::*;

/// Stacks of 1–6 frames from a small alphabet of names (so that names repeat), with optional
/// pid and probe, and weights that may be zero in one kind.
fn profiles() -> impl Strategy<Value = Profile> {
    let name = prop::sample::select(vec![
        "main",
        "malloc",
        "calloc",
        "a b",
        "Foo.bar() -> ()",
        "ünïcode",
        "x;y",
        "",
    ]);
    let stack = prop::collection::vec(name, 1..6);
    let labels = (
        prop::option::of(0u32..4),
        prop::option::of(prop::sample::select(vec!["malloc", "calloc"])),
    );
    let entry = (stack, labels, 0u64..1000, 0u64..100_000);
    prop::collection::vec(entry, 1..30).prop_map(|entries| {
        let mut p = Profile::new();
        p.bytes_known = true;
        for (stack, (pid, probe), allocs, bytes) in entries {
            p.add_labeled(
                stack.iter().map(|s| if s.is_empty() { "?" } else { s }),
                &Labels::new(pid, probe),
                Weight::new(allocs, bytes),
            );
        }
        p
    })
}

/// A stack (frames joined), its pid and probe, and its (allocations, bytes).
type LabeledStack = (String, Option<u32>, Option<String>, (u64, u64));

fn labeled(p: &Profile) -> Vec<LabeledStack> {
    let mut v: Vec<_> = p
        .labeled_stacks()
        .filter(|(_, _, w)| !w.is_zero())
        .map(|(ids, l, w)| {
            let names: Vec<&str> = ids.iter().map(|&i| p.name(i)).collect();
            (
                names.join("\u{1}"),
                l.pid,
                l.probe.as_deref().map(str::to_owned),
                (w.allocs, w.bytes),
            )
        })
        .collect();
    v.sort();
    v
}

proptest! {
    #[test]
    fn decodes_to_the_same_profile(p in profiles()) {
        match encode(&p, &PprofOptions::default()) {
            Ok(gz) => {
                let d = decode(&gz).unwrap();
                prop_assert_eq!(labeled(&d.to_profile()), labeled(&p));
                let mut names: Vec<&str> = p
                    .labeled_stacks()
                    .filter(|(_, _, w)| !w.is_zero())
                    .flat_map(|(ids, _, _)| ids.iter().map(|&i| p.name(i)))
                    .collect();
                names.sort_unstable();
                names.dedup();
                prop_assert_eq!(d.functions, names.len());
                prop_assert_eq!(d.locations, names.len());
                let mut strings = d.strings.clone();
                strings.sort();
                strings.dedup();
                prop_assert_eq!(strings.len(), d.strings.len());
                prop_assert_eq!(d.strings[0].as_str(), "");
            }
            Err(e) => {
                // Only a profile whose every weight is zero is refused.
                prop_assert!(p.total().is_zero(), "{}", e);
            }
        }
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(
        p in profiles(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        if let Ok(mut raw) = encode_uncompressed(&p, &PprofOptions::default()) {
            for (i, b) in flips {
                let i = i.index(raw.len());
                raw[i] = b;
            }
            let _ = decode(&raw);
        }
    }
}
