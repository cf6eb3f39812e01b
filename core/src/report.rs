//! The summary every command prints: totals and the top functions by self and total weight.

use std::fmt;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::profile::{FrameId, Profile, Weight, WeightKind};

/// A function with its weight and share of the total allocations.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FunctionWeight {
    /// The frame name.
    pub function: String,
    /// Allocation calls.
    pub allocs: u64,
    /// Bytes (0 when unknown).
    pub bytes: u64,
    /// Share of all allocation calls (of all bytes, when the summary is ranked by bytes), in
    /// percent.
    pub percent: f64,
}

/// Totals and the top functions of a profile.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// All allocation calls.
    pub allocations: u64,
    /// All bytes, when the capture carries sizes.
    pub bytes: Option<u64>,
    /// Number of distinct stacks.
    pub stacks: usize,
    /// Events lost while recording (0: the counts are exact).
    pub lost: u64,
    /// Input records an importer could not use.
    pub skipped: u64,
    /// What the lists are ranked by, and what `percent` is a share of. Default is
    /// allocations.
    pub ranked_by: WeightKind,
    /// Functions that allocated directly (leaf frames), heaviest first.
    pub top_self: Vec<FunctionWeight>,
    /// Functions on the stack of an allocation (each counted once per stack), heaviest first.
    pub top_total: Vec<FunctionWeight>,
    /// What filters left out of the profile, when any were set
    /// ([`crate::pipeline::Output::summary`] fills it). Default is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<crate::pipeline::Filtered>,
    /// How the recorded run ended (its fields sit at the top level of the JSON). Default is
    /// [`RunStatus::default`]: no program started, complete.
    #[serde(flatten)]
    pub run: RunStatus,
}

/// How a recorded run ended, in every JSON report (`record`, `count`, `render`, `diff`).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RunStatus {
    /// The started program's status as a shell reports it (`$?`), which allocflame exits
    /// with: its exit code, or 128 + the signal that killed it. `None` when allocflame started
    /// no program (attached to a process, read a capture of other tools).
    pub exit_status: Option<i32>,
    /// The exit code of a program that exited. Default is `None`.
    pub exit_code: Option<i32>,
    /// The signal that killed the program. Default is `None`.
    pub signal: Option<i32>,
    /// That signal's name (`SIGTERM`). Default is `None`.
    pub signal_name: Option<String>,
    /// Whether the results are partial: the recording ended early (Ctrl-C, a signal killed the
    /// program, a capture cut short). Default is `false`.
    pub partial: bool,
}

impl RunStatus {
    /// The status of the recording `report` describes.
    pub fn of(report: &crate::source::RecordReport) -> RunStatus {
        let exit = report.exit();
        RunStatus {
            exit_status: exit.map(crate::source::ProgramExit::shell_status),
            exit_code: report.exit_code,
            signal: report.signal,
            signal_name: report.signal.and_then(crate::source::signal_name),
            partial: report.interrupted,
        }
    }
}

impl Summary {
    /// The summary of `profile`, with `top` functions in each list, ranked by allocations.
    pub fn new(profile: &Profile, top: usize) -> Summary {
        Summary::ranked(profile, top, WeightKind::Allocations)
    }

    /// The summary of `profile`, with `top` functions in each list, ranked by `weight` (the
    /// other weight breaks ties).
    pub fn ranked(profile: &Profile, top: usize, weight: WeightKind) -> Summary {
        let total = profile.total();
        let mut selfw: FxHashMap<FrameId, Weight> = FxHashMap::default();
        let mut totalw: FxHashMap<FrameId, Weight> = FxHashMap::default();
        let mut seen: Vec<FrameId> = Vec::new();
        for (ids, w) in profile.stack_ids() {
            // The root frame names the process, not a function: leave it out of the tables.
            let ids = if ids.len() > 1 { &ids[1..] } else { ids };
            if let Some(&leaf) = ids.last() {
                *selfw.entry(leaf).or_default() += w;
            }
            seen.clear();
            for &id in ids {
                if !seen.contains(&id) {
                    seen.push(id);
                    *totalw.entry(id).or_default() += w;
                }
            }
        }
        let rank = |m: FxHashMap<FrameId, Weight>| -> Vec<FunctionWeight> {
            let mut v: Vec<(FrameId, Weight)> = m.into_iter().collect();
            let key = |w: &Weight| match weight {
                WeightKind::Allocations => (w.allocs, w.bytes),
                WeightKind::Bytes => (w.bytes, w.allocs),
            };
            v.sort_by(|a, b| {
                key(&b.1)
                    .cmp(&key(&a.1))
                    .then_with(|| profile.name(a.0).cmp(profile.name(b.0)))
            });
            v.truncate(top);
            v.into_iter()
                .map(|(id, w)| FunctionWeight {
                    function: profile.name(id).to_owned(),
                    allocs: w.allocs,
                    bytes: w.bytes,
                    percent: if total.get(weight) == 0 {
                        0.0
                    } else {
                        100.0 * w.get(weight) as f64 / total.get(weight) as f64
                    },
                })
                .collect()
        };
        Summary {
            allocations: total.allocs,
            bytes: profile.bytes_known.then_some(total.bytes),
            stacks: profile.len(),
            lost: profile.lost,
            skipped: profile.skipped,
            ranked_by: weight,
            top_self: rank(selfw),
            top_total: rank(totalw),
            filtered: None,
            run: RunStatus::default(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "allocations: {}", self.allocations)?;
        if let Some(b) = self.bytes {
            write!(f, "  bytes: {b} ({})", human_bytes(b))?;
        }
        writeln!(f, "  stacks: {}", self.stacks)?;
        if self.lost > 0 {
            writeln!(
                f,
                "LOST: {} events were lost; the counts above are incomplete",
                self.lost
            )?;
        }
        if self.run.partial {
            writeln!(
                f,
                "PARTIAL: the recording ended early; the counts cover only part of the run"
            )?;
        }
        if self.skipped > 0 {
            writeln!(
                f,
                "skipped: {} input records could not be used",
                self.skipped
            )?;
        }
        if let Some(filtered) = &self.filtered {
            writeln!(
                f,
                "filtered out ({}): {} stacks, {} allocations",
                filtered.by, filtered.stacks, filtered.weight.allocs
            )?;
        }
        for (title, list) in [
            ("by self (allocated directly)", &self.top_self),
            ("by total (on the stack)", &self.top_total),
        ] {
            match self.ranked_by {
                WeightKind::Allocations => writeln!(f, "\ntop functions {title}:")?,
                WeightKind::Bytes => {
                    writeln!(f, "\ntop functions {title}, by bytes (% of bytes):")?
                }
            }
            let with_bytes = self.bytes.is_some();
            if with_bytes {
                writeln!(
                    f,
                    "{:>12} {:>7} {:>12}  function",
                    "allocations", "%", "bytes"
                )?;
            } else {
                writeln!(f, "{:>12} {:>7}  function", "allocations", "%")?;
            }
            for fw in list {
                if with_bytes {
                    writeln!(
                        f,
                        "{:>12} {:>6.2}% {:>12}  {}",
                        fw.allocs, fw.percent, fw.bytes, fw.function
                    )?;
                } else {
                    writeln!(f, "{:>12} {:>6.2}%  {}", fw.allocs, fw.percent, fw.function)?;
                }
            }
        }
        Ok(())
    }
}

/// How one stack changed between two profiles.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StackChange {
    /// The stack as a folded line (`a;b;c`).
    pub stack: String,
    /// Its weight before.
    pub before: u64,
    /// Its weight after.
    pub after: u64,
    /// `after - before` (wide enough for any two `u64` counts: never clamped).
    pub delta: i128,
}

/// Every stack of `before` and `after` with its change in `kind`, the largest growth first and
/// the largest shrinkage last; unchanged stacks are left out.
pub fn diff_stacks(before: &Profile, after: &Profile, kind: crate::WeightKind) -> Vec<StackChange> {
    let mut map: FxHashMap<String, (u64, u64)> = FxHashMap::default();
    for (line, w) in before.folded_lines_in_order() {
        map.entry(line).or_default().0 += w.get(kind);
    }
    for (line, w) in after.folded_lines_in_order() {
        map.entry(line).or_default().1 += w.get(kind);
    }
    let mut v: Vec<StackChange> = map
        .into_iter()
        .filter(|(_, (b, a))| a != b)
        .map(|(stack, (before, after))| StackChange {
            delta: after as i128 - before as i128,
            stack,
            before,
            after,
        })
        .collect();
    v.sort_by(|a, b| b.delta.cmp(&a.delta).then_with(|| a.stack.cmp(&b.stack)));
    v
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_by_bytes() {
        let mut p = Profile::new();
        p.bytes_known = true;
        p.add(["p", "many_small", "malloc"], Weight::new(90, 900));
        p.add(["p", "few_big", "calloc"], Weight::new(10, 9100));
        let s = Summary::new(&p, 10);
        assert_eq!(s.top_self[0].function, "malloc");
        assert_eq!(s.top_self[0].percent, 90.0);
        let s = Summary::ranked(&p, 10, WeightKind::Bytes);
        assert_eq!(s.ranked_by, WeightKind::Bytes);
        assert_eq!(s.top_self[0].function, "calloc");
        assert_eq!(s.top_self[0].percent, 91.0);
        assert!(s.to_string().contains("by bytes (% of bytes)"), "{s}");
    }

    #[test]
    fn diff_orders_growth_first() {
        let mut a = Profile::new();
        a.add(["p", "x"], Weight::new(5, 0));
        a.add(["p", "y"], Weight::new(5, 0));
        let mut b = Profile::new();
        b.add(["p", "x"], Weight::new(9, 0));
        b.add(["p", "z"], Weight::new(1, 0));
        let d = diff_stacks(&a, &b, crate::WeightKind::Allocations);
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].stack.as_str(), d[0].delta), ("p;x", 4));
        assert_eq!((d[2].stack.as_str(), d[2].delta), ("p;y", -5));
    }

    #[test]
    fn self_and_total() {
        let mut p = Profile::new();
        p.add(["p", "main", "a", "malloc"], Weight::new(6, 0));
        p.add(["p", "main", "b", "calloc"], Weight::new(4, 0));
        p.add(["p", "main", "r", "r", "malloc"], Weight::new(1, 0));
        let s = Summary::new(&p, 10);
        assert_eq!(s.allocations, 11);
        assert_eq!(s.top_self[0].function, "malloc");
        assert_eq!(s.top_self[0].allocs, 7);
        let r = s.top_total.iter().find(|f| f.function == "r").unwrap();
        assert_eq!(r.allocs, 1, "recursion counted once per stack");
        assert_eq!(
            s.top_total[0].function, "main",
            "the root (process name) is no function"
        );
        assert_eq!(s.top_total[0].allocs, 11);
    }
}
