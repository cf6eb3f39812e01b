//! Counted once: an allocation is counted at the outermost probed call on its thread, for
//! every backend and importer alike, and decided from facts, never from a guess that could drop
//! a real call.
//!
//! A probed function can reach another one in two ways, and each leaves its own fact:
//! - **a call** (glibc's `posix_memalign` → `malloc`, a user's `my_alloc` → `malloc`): the outer
//!   function's frame is still on the stack, so one of the inner call's callers lies inside the
//!   outer function. [`called_from_probed`] checks names (importers), backends check addresses.
//! - **a tail call** (glibc's `realloc(NULL, n)` ends in `jmp malloc`): the outer frame is gone,
//!   and the inner hit looks like a call of its own. The [`RELAYS`] table says which function
//!   relays to which by a tail call, for which arguments and with which size; [`TailCalls`]
//!   recognizes the inner hit as the thread's very next probe hit at the same stack pointer and
//!   return address, from an outer call whose arguments take that path and whose size is passed
//!   on unchanged. A call through the same call site to another allocator (`fps[i % 2](64)` with
//!   `malloc` and `valloc`) has no relay in the table and always counts.
//!
//! Losses are part of the rule: [`Ledger`] keeps `counted + inner + lost = hits`, with every
//! way of losing named.
//!
//! ```
//! use allocflame_core::once::{EntryHit, TailCalls};
//! use allocflame_core::probes::{catalog, Platform};
//! let probes = catalog(Platform::LinuxGlibc);
//! let idx = |f: &str| probes.iter().position(|p| p.function == f).unwrap();
//! let mut tails = TailCalls::new(&probes);
//! // realloc(NULL, 64) and then, same stack pointer and return address, malloc(64): one call.
//! let outer = EntryHit { probe: idx("realloc"), args: [0, 64, 0, 0, 0, 0], sp: 0x7f00, ret: 0x401234 };
//! assert!(!tails.is_relayed(7, &outer));
//! let inner = EntryHit { probe: idx("malloc"), args: [64, 0, 0, 0, 0, 0], ..outer };
//! assert!(tails.is_relayed(7, &inner));
//! // malloc(64), then valloc(64) through the same call site: two calls.
//! let m = EntryHit { probe: idx("malloc"), args: [64, 0, 0, 0, 0, 0], ..outer };
//! let v = EntryHit { probe: idx("valloc"), ..m };
//! assert!(!tails.is_relayed(8, &m));
//! assert!(!tails.is_relayed(8, &v));
//! ```

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::probes::Probe;

/// The condition on the outer call's arguments under which it relays to the inner function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// When argument `n` is 0 (a NULL pointer: `realloc(NULL, n)`).
    ArgZero(u8),
    /// When argument `n` is at most `max` (an alignment the allocator's own alignment covers).
    ArgAtMost(u8, u64),
}

impl When {
    fn holds(self, args: &[u64; 6]) -> bool {
        match self {
            When::Always => true,
            When::ArgZero(i) => args.get(i as usize) == Some(&0),
            When::ArgAtMost(i, max) => args.get(i as usize).is_some_and(|&a| a <= max),
        }
    }
}

/// One way an allocation function hands its work to another probed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The function called by the user.
    pub outer: &'static str,
    /// The function it hands the allocation to.
    pub inner: &'static str,
    /// Whether it does so by a tail call (its own frame is gone when `inner` starts).
    pub tail: bool,
    /// For which arguments of `outer`.
    pub when: When,
}

const fn tail(outer: &'static str, inner: &'static str, when: When) -> Relay {
    Relay {
        outer,
        inner,
        tail: true,
        when,
    }
}

const fn call(outer: &'static str, inner: &'static str, when: When) -> Relay {
    Relay {
        outer,
        inner,
        tail: false,
        when,
    }
}

/// glibc's (2.31–2.41) and macOS libsystem_malloc's relays between catalog functions, by the
/// functions' base names ([`base_name`]). MALLOC_ALIGNMENT is 16 on both 64-bit platforms.
pub const RELAYS: &[Relay] = &[
    // glibc
    tail("realloc", "malloc", When::ArgZero(0)),
    tail("reallocarray", "realloc", When::Always),
    tail("memalign", "malloc", When::ArgAtMost(0, 16)),
    tail("aligned_alloc", "malloc", When::ArgAtMost(0, 16)),
    call("posix_memalign", "malloc", When::ArgAtMost(1, 16)),
    // macOS: the front ends hand over to the default zone.
    call("malloc", "malloc_zone_malloc", When::Always),
    call("calloc", "malloc_zone_calloc", When::Always),
    call("realloc", "malloc_zone_realloc", When::Always),
    call("realloc", "malloc_zone_malloc", When::ArgZero(0)),
    call("reallocf", "realloc", When::Always),
    call("valloc", "malloc_zone_valloc", When::Always),
    call("posix_memalign", "malloc_zone_memalign", When::Always),
    call("aligned_alloc", "malloc_zone_memalign", When::Always),
];

/// An allocation function's name without glibc's and Darwin's internal prefixes
/// (`__GI___libc_malloc`, `__libc_calloc`, `__posix_memalign`, `_malloc_zone_malloc` →
/// `malloc`, `calloc`, `posix_memalign`, `malloc_zone_malloc`) and without a symbol version
/// (`malloc@@GLIBC_2.2.5`).
pub fn base_name(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    let name = name.strip_prefix("__GI_").unwrap_or(name);
    name.strip_prefix("__libc_")
        .or_else(|| name.strip_prefix("__"))
        .or_else(|| name.strip_prefix('_').filter(|n| n.starts_with("malloc")))
        .unwrap_or(name)
}

/// The relays from `outer` to `inner` (base names), if any.
pub fn relays<'a>(outer: &'a str, inner: &'a str) -> impl Iterator<Item = &'static Relay> + 'a {
    let (outer, inner) = (base_name(outer), base_name(inner));
    RELAYS
        .iter()
        .filter(move |r| r.outer == outer && r.inner == inner)
}

/// Whether a call whose callers (between the root and the leaf, in any order) are `callers`
/// runs inside a call of one of the `probed` functions: then it is part of that call, which is
/// counted. `probed` holds base names.
pub fn called_from_probed<'a>(
    callers: impl IntoIterator<Item = &'a str>,
    probed: &FxHashSet<&str>,
) -> bool {
    callers.into_iter().any(|c| probed.contains(base_name(c)))
}

/// One hit of an entry probe, with what tells a tail call: the stack pointer and the return
/// address at the function's first instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHit {
    /// Index of the probe in the recording's probe list.
    pub probe: usize,
    /// The first six integer arguments.
    pub args: [u64; 6],
    /// The stack pointer at entry.
    pub sp: u64,
    /// The return address at entry (the word at `sp`).
    pub ret: u64,
}

/// Recognizes the inner hits of tail-call relays, per thread (see the module docs).
#[derive(Clone, Debug)]
pub struct TailCalls {
    probes: Vec<Probe>,
    /// (outer probe, inner probe) → conditions.
    rules: FxHashMap<(usize, usize), Vec<When>>,
    last: FxHashMap<u64, EntryHit>,
}

impl TailCalls {
    /// The rules that apply between `probes` (by their functions' base names).
    pub fn new(probes: &[Probe]) -> Self {
        let mut rules: FxHashMap<(usize, usize), Vec<When>> = FxHashMap::default();
        for (o, outer) in probes.iter().enumerate() {
            for (i, inner) in probes.iter().enumerate() {
                for r in relays(&outer.function, &inner.function).filter(|r| r.tail) {
                    rules.entry((o, i)).or_default().push(r.when);
                }
            }
        }
        TailCalls {
            probes: probes.to_vec(),
            rules,
            last: FxHashMap::default(),
        }
    }

    /// Whether `hit`, the next probe hit of `thread`, is the inner half of a tail-call relay
    /// from the thread's previous hit. Either way it becomes the thread's previous hit.
    pub fn is_relayed(&mut self, thread: u64, hit: &EntryHit) -> bool {
        let relayed = self.last.get(&thread).is_some_and(|last| {
            last.sp == hit.sp
                && last.ret == hit.ret
                && hit.sp != 0
                && self.rules.get(&(last.probe, hit.probe)).is_some_and(|w| {
                    w.iter().any(|w| w.holds(&last.args)) && self.size(last) == self.size(hit)
                })
        });
        self.last.insert(thread, *hit);
        relayed
    }

    /// Forgets what `thread` did (it exited, or its next hit cannot continue a relay).
    pub fn forget(&mut self, thread: u64) {
        self.last.remove(&thread);
    }

    fn size(&self, hit: &EntryHit) -> u64 {
        self.probes
            .get(hit.probe)
            .map_or(0, |p| p.size.size(&hit.args))
    }
}

/// Why probe hits or allocations were lost. Every way of losing is one of these, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// The kernel dropped the record (a full ring buffer or map).
    Dropped,
    /// The record reached us but could not be read (malformed, of an unknown event).
    Unreadable,
    /// A process or thread could not be given probes: its calls were not seen at all.
    Untraced,
}

impl Loss {
    /// What the loss means, for notes.
    pub fn describe(self) -> &'static str {
        match self {
            Loss::Dropped => "dropped by the kernel (ring buffer full)",
            Loss::Unreadable => "unreadable records",
            Loss::Untraced => "in processes or threads that could not be probed",
        }
    }
}

/// The accounting of one recording: every probe hit is counted, inner (part of a counted call)
/// or lost, and nothing else: `counted + inner + lost = hits`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Allocations counted.
    pub counted: u64,
    /// Probe hits inside (or relayed from) another probed call, which was counted instead.
    pub inner: u64,
    /// Probe hits lost, by why.
    pub lost: BTreeMap<Loss, u64>,
}

impl Ledger {
    /// All probe hits accounted for.
    pub fn hits(&self) -> u64 {
        self.counted + self.inner + self.lost_total()
    }

    /// All hits lost, whatever the reason.
    pub fn lost_total(&self) -> u64 {
        self.lost.values().sum()
    }

    /// Adds `n` hits lost for `why`.
    pub fn lose(&mut self, why: Loss, n: u64) {
        if n > 0 {
            *self.lost.entry(why).or_default() += n;
        }
    }

    /// Checks the ledger against `hits`, the probe hits an independent counter saw (the
    /// kernel's event counts). The difference, if any, is hits that reached no one.
    pub fn reconcile(&self, hits: u64) -> Result<(), String> {
        let accounted = self.hits();
        if accounted == hits {
            Ok(())
        } else {
            Err(format!(
                "the probes fired {hits} times but {accounted} hits were accounted for ({} counted, {} inner, {} lost)",
                self.counted,
                self.inner,
                self.lost_total()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{catalog, Platform};

    fn idx(probes: &[Probe], f: &str) -> usize {
        probes.iter().position(|p| p.function == f).unwrap()
    }

    fn hit(probes: &[Probe], f: &str, args: [u64; 6]) -> EntryHit {
        EntryHit {
            probe: idx(probes, f),
            args,
            sp: 0x7ffe_0000,
            ret: 0x40_1000,
        }
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("__GI___libc_malloc"), "malloc");
        assert_eq!(base_name("__libc_calloc"), "calloc");
        assert_eq!(base_name("__posix_memalign"), "posix_memalign");
        assert_eq!(base_name("_malloc_zone_malloc"), "malloc_zone_malloc");
        assert_eq!(base_name("malloc@@GLIBC_2.2.5"), "malloc");
        assert_eq!(base_name("_ZN3foo3barEv"), "_ZN3foo3barEv");
    }

    #[test]
    fn realloc_of_null_relays_to_malloc_once_per_call() {
        let p = catalog(Platform::LinuxGlibc);
        let mut t = TailCalls::new(&p);
        for _ in 0..3 {
            assert!(!t.is_relayed(1, &hit(&p, "realloc", [0, 64, 0, 0, 0, 0])));
            assert!(t.is_relayed(1, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
        }
        // A realloc of a real pointer does not relay, nor does one of another size.
        assert!(!t.is_relayed(1, &hit(&p, "realloc", [0x1000, 64, 0, 0, 0, 0])));
        assert!(!t.is_relayed(1, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
        assert!(!t.is_relayed(1, &hit(&p, "realloc", [0, 64, 0, 0, 0, 0])));
        assert!(!t.is_relayed(1, &hit(&p, "malloc", [32, 0, 0, 0, 0, 0])));
    }

    #[test]
    fn chains_and_threads() {
        let p = catalog(Platform::LinuxGlibc);
        let mut t = TailCalls::new(&p);
        assert!(!t.is_relayed(1, &hit(&p, "reallocarray", [0, 4, 16, 0, 0, 0])));
        // Another thread in between changes nothing for thread 1.
        assert!(!t.is_relayed(2, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
        assert!(t.is_relayed(1, &hit(&p, "realloc", [0, 64, 0, 0, 0, 0])));
        assert!(t.is_relayed(1, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
        // memalign with a small alignment relays, with a page alignment it does not.
        assert!(!t.is_relayed(1, &hit(&p, "memalign", [16, 64, 0, 0, 0, 0])));
        assert!(t.is_relayed(1, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
        assert!(!t.is_relayed(1, &hit(&p, "memalign", [4096, 64, 0, 0, 0, 0])));
        assert!(!t.is_relayed(1, &hit(&p, "malloc", [64, 0, 0, 0, 0, 0])));
    }

    #[test]
    fn alternating_allocators_through_one_call_site_all_count() {
        let p = catalog(Platform::LinuxGlibc);
        let mut t = TailCalls::new(&p);
        let mut counted = 0;
        for i in 0..1000 {
            let f = if i % 2 == 0 { "malloc" } else { "valloc" };
            if !t.is_relayed(1, &hit(&p, f, [64, 0, 0, 0, 0, 0])) {
                counted += 1;
            }
        }
        assert_eq!(counted, 1000);
    }

    #[test]
    fn callers_inside_probed_functions() {
        let probed: FxHashSet<&str> = ["malloc", "posix_memalign"].into_iter().collect();
        assert!(called_from_probed(["main", "__posix_memalign"], &probed));
        assert!(!called_from_probed(["main", "level1"], &probed));
    }

    #[test]
    fn ledger_reconciles() {
        let mut l = Ledger {
            counted: 10,
            inner: 2,
            ..Ledger::default()
        };
        l.lose(Loss::Dropped, 3);
        l.lose(Loss::Untraced, 0);
        assert_eq!(l.hits(), 15);
        assert!(l.reconcile(15).is_ok());
        assert!(l.reconcile(16).unwrap_err().contains("16 times"));
        assert_eq!(l.lost.len(), 1);
    }
}
