//! The summary every command prints: totals, the allocation sites (the code that asked for the
//! memory, see [`crate::sites`]), the program's functions by total weight, and the raw lists by
//! self and total weight.

use std::fmt;
use std::time::SystemTime;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::profile::{FrameId, Profile, Weight, WeightKind};
use crate::sites::Machinery;

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

/// An allocation site: the first frame above the allocation machinery, at one source location.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SiteWeight {
    /// The function that asked for the memory.
    pub function: String,
    /// `file:line` of its call, when the binary has debug info (`, inlined` for a function
    /// inlined into its caller). Default is `None`.
    pub location: Option<String>,
    /// The frame it called: the allocator, or the standard-library function that allocated
    /// for it (`std::vector<int>::push_back`).
    pub calls: String,
    /// Allocation calls.
    pub allocs: u64,
    /// Bytes (0 when unknown).
    pub bytes: u64,
    /// Share of all allocation calls (of all bytes, when ranked by bytes), in percent.
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
    /// Allocation sites, heaviest first: each stack's first frame above the allocation
    /// machinery, per source location where known.
    pub top_sites: Vec<SiteWeight>,
    /// The program's functions on the stack of an allocation (each counted once per stack),
    /// heaviest first: without the allocation machinery, the entry points (`_start`,
    /// `__libc_start_main`, `start_thread`) and the frames in [`shared_frames`](Self::shared_frames).
    pub top_program: Vec<FunctionWeight>,
    /// Program functions on every stack (`main` of a single-threaded program), left out of
    /// `top_program` since they say nothing about where; empty when that would leave nothing.
    pub shared_frames: Vec<String>,
    /// Functions that allocated directly (leaf frames: the probed allocators), heaviest first.
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
    /// other weight breaks ties), with the built-in allocation machinery.
    pub fn ranked(profile: &Profile, top: usize, weight: WeightKind) -> Summary {
        Summary::with_sites(profile, profile, &Machinery::default(), top, weight)
    }

    /// The summary of `profile` with the sites of `located` (the same stacks, with source
    /// locations; pass `profile` again when there are none), found above `machinery`.
    pub fn with_sites(
        profile: &Profile,
        located: &Profile,
        machinery: &Machinery,
        top: usize,
        weight: WeightKind,
    ) -> Summary {
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
        let percent = |w: Weight| {
            if total.get(weight) == 0 {
                0.0
            } else {
                100.0 * w.get(weight) as f64 / total.get(weight) as f64
            }
        };
        let function = |name: &str, w: Weight| FunctionWeight {
            function: name.to_owned(),
            allocs: w.allocs,
            bytes: w.bytes,
            percent: percent(w),
        };
        let rank = |m: FxHashMap<FrameId, Weight>| -> Vec<FunctionWeight> {
            ranked(m, profile, top, weight)
                .into_iter()
                .map(|(id, w)| function(profile.name(id), w))
                .collect()
        };
        let (sites, program, shared) = sites_and_program(located, machinery);
        let top_program = ranked(program, located, top, weight)
            .into_iter()
            .map(|(name, w)| function(name, w))
            .collect();
        let top_sites = ranked(sites, located, top, weight)
            .into_iter()
            .map(|((id, calls), w)| SiteWeight {
                function: located.name(id).to_owned(),
                location: located.location(id).map(|l| l.to_string()),
                calls: located.name(calls).to_owned(),
                allocs: w.allocs,
                bytes: w.bytes,
                percent: percent(w),
            })
            .collect();
        Summary {
            allocations: total.allocs,
            bytes: profile.bytes_known.then_some(total.bytes),
            stacks: profile.len(),
            lost: profile.lost,
            skipped: profile.skipped,
            ranked_by: weight,
            top_sites,
            top_program,
            shared_frames: shared,
            top_self: rank(selfw),
            top_total: rank(totalw),
            filtered: None,
            run: RunStatus::default(),
        }
    }
}

/// A key of the rankings: it sorts by name (and location) when weights tie.
trait RankKey: Copy + Eq + std::hash::Hash {
    fn order<'a>(&'a self, profile: &'a Profile) -> (&'a str, Option<&'a str>);
}

impl RankKey for FrameId {
    fn order<'a>(&'a self, profile: &'a Profile) -> (&'a str, Option<&'a str>) {
        (profile.name(*self), profile.location(*self).map(|l| &**l))
    }
}

impl RankKey for &str {
    fn order<'a>(&'a self, _: &'a Profile) -> (&'a str, Option<&'a str>) {
        (self, None)
    }
}

impl RankKey for (FrameId, FrameId) {
    fn order<'a>(&'a self, profile: &'a Profile) -> (&'a str, Option<&'a str>) {
        self.0.order(profile)
    }
}

/// The `top` heaviest of `m` by `weight` (the other weight breaks ties, then the name).
fn ranked<K: RankKey>(
    m: FxHashMap<K, Weight>,
    profile: &Profile,
    top: usize,
    weight: WeightKind,
) -> Vec<(K, Weight)> {
    let mut v: Vec<(K, Weight)> = m.into_iter().collect();
    let key = |w: &Weight| match weight {
        WeightKind::Allocations => (w.allocs, w.bytes),
        WeightKind::Bytes => (w.bytes, w.allocs),
    };
    v.sort_by(|a, b| {
        key(&b.1)
            .cmp(&key(&a.1))
            .then_with(|| a.0.order(profile).cmp(&b.0.order(profile)))
    });
    v.truncate(top);
    v
}

/// The weight of each site of `located` (keyed by the site frame and the frame below it that
/// it called), the weight of each program function by total (by name: a function at several
/// lines is one), and the program functions left out for being on every stack.
#[allow(clippy::type_complexity)]
fn sites_and_program<'p>(
    located: &'p Profile,
    machinery: &Machinery,
) -> (
    FxHashMap<(FrameId, FrameId), Weight>,
    FxHashMap<&'p str, Weight>,
    Vec<String>,
) {
    let mut sites: FxHashMap<(FrameId, FrameId), Weight> = FxHashMap::default();
    let mut program: FxHashMap<&str, Weight> = FxHashMap::default();
    let mut on_stacks: FxHashMap<&str, usize> = FxHashMap::default();
    let mut names: Vec<&str> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut stacks = 0;
    for (ids, w) in located.stack_ids() {
        stacks += 1;
        names.clear();
        names.extend(ids.iter().map(|&id| located.name(id)));
        let site = machinery.site(&names);
        if let Some(i) = site {
            *sites.entry((ids[i], ids[i + 1])).or_default() += w;
        }
        // The program's functions: the frames from the root down to the stack's site.
        seen.clear();
        for &name in names.iter().take(site.map_or(0, |i| i + 1)).skip(1) {
            if !seen.contains(&name) && machinery.is_program(name) {
                seen.push(name);
                *program.entry(name).or_default() += w;
                *on_stacks.entry(name).or_default() += 1;
            }
        }
    }
    let mut shared: Vec<&str> = on_stacks
        .iter()
        .filter(|&(_, &n)| n == stacks)
        .map(|(&name, _)| name)
        .collect();
    if shared.len() == program.len() {
        shared.clear();
    }
    shared.sort_unstable();
    for name in &shared {
        program.remove(name);
    }
    let shared = shared.into_iter().map(str::to_owned).collect();
    (sites, program, shared)
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
        let by = match self.ranked_by {
            WeightKind::Allocations => "",
            WeightKind::Bytes => ", by bytes (% of bytes)",
        };
        let with_bytes = self.bytes.is_some();
        let header = |f: &mut fmt::Formatter<'_>, what: &str| {
            if with_bytes {
                writeln!(
                    f,
                    "{:>12} {:>7} {:>12}  {what}",
                    "allocations", "%", "bytes"
                )
            } else {
                writeln!(f, "{:>12} {:>7}  {what}", "allocations", "%")
            }
        };
        let row = |f: &mut fmt::Formatter<'_>, allocs: u64, percent: f64, bytes: u64| {
            if with_bytes {
                write!(f, "{allocs:>12} {percent:>6.2}% {bytes:>12}  ")
            } else {
                write!(f, "{allocs:>12} {percent:>6.2}%  ")
            }
        };
        writeln!(
            f,
            "\ntop allocation sites (the code that called the allocator){by}:"
        )?;
        header(f, "site  (source line)  → what it called")?;
        for s in &self.top_sites {
            row(f, s.allocs, s.percent, s.bytes)?;
            // The JSON has the callee in full; a C++ template's is long.
            let calls = crate::profile::shorten(&s.calls, 60);
            match &s.location {
                Some(l) => writeln!(f, "{}  ({l})  → {calls}", s.function)?,
                None => writeln!(f, "{}  → {calls}", s.function)?,
            }
        }
        write!(f, "\ntop program functions by total (on the stack){by}")?;
        if !self.shared_frames.is_empty() {
            write!(
                f,
                "; left out, on every stack: {}",
                self.shared_frames.join(", ")
            )?;
        }
        writeln!(f, ":")?;
        header(f, "function")?;
        for fw in &self.top_program {
            row(f, fw.allocs, fw.percent, fw.bytes)?;
            writeln!(f, "{}", fw.function)?;
        }
        let allocators: Vec<String> = self
            .top_self
            .iter()
            .map(|fw| {
                let n = match self.ranked_by {
                    WeightKind::Allocations => fw.allocs,
                    WeightKind::Bytes => fw.bytes,
                };
                format!("{} {n} ({:.2}%)", fw.function, fw.percent)
            })
            .collect();
        writeln!(
            f,
            "\nallocators called (by self): {}",
            allocators.join(", ")
        )
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

/// The line under a graph's title: where the profile came from (`origin`: the command line or
/// pid and the backend, or the capture), the totals, whether the counts are exact (`recorded`:
/// allocflame recorded them, so losses are known), and when.
///
/// ```
/// use allocflame_core::report::{subtitle, Summary};
/// use allocflame_core::{Profile, Weight};
/// let mut p = Profile::new();
/// p.bytes_known = true;
/// p.add(["app", "main", "malloc"], Weight::new(3, 1536));
/// let s = Summary::new(&p, 10);
/// let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_227_200);
/// assert_eq!(
///     subtitle("app --port 80 · backend perf", &s, true, when),
///     "app --port 80 · backend perf · 3 allocations, 1.5 KiB · exact · 2026-12-02 16:00 UTC"
/// );
/// ```
pub fn subtitle(origin: &str, summary: &Summary, recorded: bool, when: SystemTime) -> String {
    let mut s = format!("{origin} · {} allocations", summary.allocations);
    if let Some(b) = summary.bytes {
        s.push_str(&format!(", {}", human_bytes(b)));
    }
    if summary.lost > 0 {
        s.push_str(&format!(" · {} events LOST", summary.lost));
    } else if recorded && !summary.run.partial {
        s.push_str(" · exact");
    }
    if summary.run.partial {
        s.push_str(" · PARTIAL (ended early)");
    }
    if summary.skipped > 0 {
        s.push_str(&format!(" · {} input records skipped", summary.skipped));
    }
    s.push_str(" · ");
    s.push_str(&utc_minute(when));
    s
}

/// `when` as `2026-12-02 17:40 UTC`.
pub fn utc_minute(when: SystemTime) -> String {
    let secs = when
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date, in 400-year eras of 146,097 days
    // that start on March 1st (so that the leap day ends a year).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
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
    fn dates() {
        let at = |s| utc_minute(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(at(1_709_164_799), "2024-02-28 23:59 UTC");
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00 UTC");
    }

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
