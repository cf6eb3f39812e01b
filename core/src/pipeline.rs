//! The one way from what a backend or an importer produced to what a user reads: raw stacks →
//! symbolize (names and, with debug info, source lines) → [`Profile`] (keeping pid and probe) →
//! demangle → prettify rules → source lines into names or dropped → filters (pid, probe,
//! minimum weight) → folded text, SVG and [`Summary`] (whose allocation sites keep their
//! source lines either way).
//!
//! The CLI maps its arguments onto [`PipelineOptions`] and writes the bytes this module
//! produces; a library user gets the same profile with one call.
//!
//! ```
//! use allocflame_core::pipeline::{self, Filters, PipelineOptions};
//! use allocflame_core::render::RenderOptions;
//! use allocflame_core::source::{Collector, RawFrame, RawStack, StackSink};
//! use allocflame_core::{probes::Probe, Weight, WeightKind};
//!
//! let probes: Vec<Probe> = vec!["libc:malloc:0".parse().unwrap(), "libc:calloc:0".parse().unwrap()];
//! let mut collector = Collector::new(&probes);
//! for (pid, probe, n) in [(7, 0, 3), (8, 0, 2), (7, 1, 1)] {
//!     collector.add(RawStack {
//!         pid, comm: "app".into(), probe,
//!         frames: vec![RawFrame::symbol(&probes[probe].function), RawFrame::symbol("_ZN3app4mainEv")],
//!         weight: Weight::new(n, 16 * n),
//!     });
//! }
//! let options = PipelineOptions {
//!     filters: Filters { pids: vec![7], ..Filters::default() },
//!     ..PipelineOptions::default()
//! };
//! let output = pipeline::from_collector(collector, &options).unwrap();
//! assert_eq!(
//!     String::from_utf8(output.folded(WeightKind::Allocations)).unwrap(),
//!     "app;app::main;calloc 1\napp;app::main;malloc 3\n"
//! );
//! assert_eq!(output.filtered.weight, Weight::new(2, 32), "pid 8's allocations, said so");
//! let svg = output.svg(&RenderOptions::default()).unwrap();
//! assert!(!svg.is_empty());
//! assert_eq!(output.summary(10).allocations, 4);
//! ```

use std::fmt;

use serde::Serialize;

use crate::demangle::{demangle_profile, DemangleOptions};
use crate::error::{Error, Result};
use crate::once::base_name;
use crate::prettify::Rules;
use crate::profile::{Labels, Profile, Weight, WeightKind};
use crate::render::{self, RenderOptions};
use crate::report::Summary;
use crate::source::Collector;

/// What the pipeline does between the profile and the outputs. Construct with `Default` and set
/// what differs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// How frame names are demangled; `None` leaves them as they are. Default is
    /// `Some(DemangleOptions::default())`: simplified Swift names, C++ without parameter lists.
    pub demangle: Option<DemangleOptions>,
    /// Prettify rules, applied in order after demangling. Default is none.
    pub rules: Rules,
    /// Which stacks to keep. Default keeps every stack.
    pub filters: Filters,
    /// Write each frame's source location into its name (`main (app.c:12)`), so that the
    /// graph and folded text tell a function's call sites apart. Default is `false`: one frame
    /// per function (the summary's sites keep their lines either way).
    pub lines: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            demangle: Some(DemangleOptions::default()),
            rules: Rules::default(),
            filters: Filters::default(),
            lines: false,
        }
    }
}

/// Which stacks the pipeline keeps. Each filter that is set must hold for a stack to be kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Keep only the stacks of these process ids. Stacks without a process id (folded files,
    /// DTrace output, `perf script` output without pids) never match. Default is empty: every
    /// process.
    pub pids: Vec<u32>,
    /// Keep only the stacks of these probed functions (`malloc`, `swift_allocObject`), compared
    /// by [`base_name`] (so `__libc_malloc` is `malloc`). A stack without a probe label (folded
    /// files, DTrace output) is judged by its leaf frame as the capture named it, before
    /// demangling and rules. Default is empty: every probe.
    pub probes: Vec<String>,
    /// Drop the stacks whose weight, counted in [`weight`](Self::weight), is below this; judged
    /// on the stacks as written (after rules, summed over processes and probes). Default is
    /// `None`: no minimum.
    pub min_weight: Option<u64>,
    /// What [`min_weight`](Self::min_weight) counts. Default is allocations.
    pub weight: WeightKind,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty() && self.probes.is_empty() && self.min_weight.is_none()
    }

    /// Whether a stack with `frames` (root first, as the capture named them) and `labels`
    /// passes the pid and probe filters.
    pub fn keeps(&self, frames: &[&str], labels: &Labels) -> bool {
        let pid_ok = self.pids.is_empty() || labels.pid.is_some_and(|pid| self.pids.contains(&pid));
        pid_ok && (self.probes.is_empty() || self.probe_matches(frames, labels))
    }

    fn probe_matches(&self, frames: &[&str], labels: &Labels) -> bool {
        let name = match &labels.probe {
            Some(p) => &**p,
            // DTrace names frames `module`function+0x12`.
            None => match frames.last() {
                Some(leaf) => {
                    let leaf = leaf.rsplit('`').next().unwrap_or(leaf);
                    leaf.split_once("+0x").map_or(leaf, |(f, _)| f)
                }
                None => return false,
            },
        };
        let base = base_name(name);
        self.probes
            .iter()
            .any(|p| p == name || base_name(p) == base)
    }
}

impl fmt::Display for Filters {
    /// The filters in words: `pid 7, 9; probe calloc; min weight 5 allocations`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.pids.is_empty() {
            let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
            parts.push(format!("pid {}", pids.join(", ")));
        }
        if !self.probes.is_empty() {
            parts.push(format!("probe {}", self.probes.join(", ")));
        }
        if let Some(n) = self.min_weight {
            parts.push(format!("min weight {n} {}", self.weight.count_name()));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// What the filters left out, so that it is never silent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Filtered {
    /// The filters, in words (see [`Filters`]'s `Display`).
    pub by: String,
    /// Distinct stacks (folded lines) that are gone.
    pub stacks: usize,
    /// The allocations and bytes of the stacks left out.
    pub weight: Weight,
}

impl fmt::Display for Filtered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the filters ({}) left out {} stacks ({} allocations",
            self.by, self.stacks, self.weight.allocs
        )?;
        if self.weight.bytes > 0 {
            write!(f, ", {} bytes", self.weight.bytes)?;
        }
        f.write_str(")")
    }
}

/// A profile through the pipeline, ready to be written.
#[derive(Clone, Debug)]
pub struct Output {
    /// The demangled, prettified, filtered profile.
    pub profile: Profile,
    /// What the filters left out (all zero when no filter is set).
    pub filtered: Filtered,
    /// What the user should know: frames symbolization could not name, what the filters left
    /// out.
    pub notes: Vec<String>,
    /// The same stacks as `profile` with the source locations symbolization found apart from
    /// the names, for the summary's sites; `None` when there were none.
    pub located: Option<Profile>,
    /// The allocation machinery the sites are found above: built-in and `alloc:` rules.
    pub machinery: crate::sites::Machinery,
    /// Whether `profile`'s names carry their locations ([`PipelineOptions::lines`]).
    pub lines: bool,
}

/// Runs the whole pipeline on a recording: symbolizes the collector's stacks, then
/// [`process`]es the profile. Symbolization notes come first in [`Output::notes`].
pub fn from_collector(collector: Collector, options: &PipelineOptions) -> Result<Output> {
    let (profile, notes) = collector.finish_with_notes();
    let mut output = process(profile, options)?;
    output.notes.splice(0..0, notes);
    Ok(output)
}

/// Demangles, applies the rules and filters `profile`. A profile that had stacks and has none
/// after filtering is an [`Error::Empty`] that says so; an empty input stays an empty output
/// (writing it, [`Output::svg`] says why it may be empty).
pub fn process(profile: Profile, options: &PipelineOptions) -> Result<Output> {
    let filters = &options.filters;
    if filters.min_weight.is_some()
        && filters.weight == WeightKind::Bytes
        && !profile.bytes_known
        && !profile.is_empty()
    {
        return Err(Error::Invalid(
            "a minimum weight in bytes: this capture carries no allocation sizes".into(),
        ));
    }
    let had_stacks = !profile.is_empty();
    let has_pids = profile.has_pids();
    let output = apply(profile, options);
    if had_stacks && output.profile.is_empty() {
        let mut hint = format!(
            "the filters ({}) removed all {} stacks ({} allocations)",
            output.filtered.by, output.filtered.stacks, output.filtered.weight.allocs
        );
        if !filters.pids.is_empty() && !has_pids {
            hint.push_str(
                "; this profile carries no process ids (folded files and DTrace output have none)",
            );
        }
        return Err(Error::Empty { hint });
    }
    Ok(output)
}

/// Like [`process`], but an output that the filters emptied is returned, not an error (a
/// differential graph may compare against an empty side).
pub fn apply(profile: Profile, options: &PipelineOptions) -> Output {
    let filters = &options.filters;
    let before = (profile.len(), profile.total());
    // The pid and probe filters judge labels and the leaf frame as the capture named it, so
    // they run first: rules may rename or fold the leaf (`swift_allocObject;…;malloc` → `A`).
    // Demangling and rules never add or remove weight, so where they run changes nothing else.
    let profile = if filters.pids.is_empty() && filters.probes.is_empty() {
        profile
    } else {
        profile.filter_labeled(|frames, labels, _| filters.keeps(frames, labels))
    };
    let profile = match &options.demangle {
        Some(d) => demangle_profile(&profile, d),
        None => profile,
    };
    let profile = if options.rules.is_empty() {
        profile
    } else {
        options.rules.apply(&profile)
    };
    let (profile, located) = match profile.has_locations() {
        false => (profile, None),
        true => (profile.written(options.lines), Some(profile)),
    };
    let (profile, located) = match filters.min_weight {
        Some(min) => {
            let kept = profile.filter(|_, w| w.get(filters.weight) >= min);
            // The located stacks go with their stacks as written.
            let located = located.map(|l| {
                let lines: rustc_hash::FxHashSet<String> = kept
                    .folded_lines_in_order()
                    .into_iter()
                    .map(|(line, _)| line)
                    .collect();
                l.retain_stacks(|ids| {
                    let written: Vec<_> = ids
                        .iter()
                        .map(|&id| l.written_name(id, options.lines))
                        .collect();
                    lines.contains(&written.join(";"))
                })
            });
            (kept, located)
        }
        None => (profile, located),
    };
    let total = profile.total();
    let filtered = Filtered {
        by: filters.to_string(),
        stacks: before.0.saturating_sub(profile.len()),
        weight: Weight::new(
            before.1.allocs.saturating_sub(total.allocs),
            before.1.bytes.saturating_sub(total.bytes),
        ),
    };
    let mut notes = Vec::new();
    if !filters.is_empty() {
        notes.push(filtered.to_string());
    }
    Output {
        profile,
        filtered,
        notes,
        located,
        machinery: options.rules.machinery(),
        lines: options.lines,
    }
}

impl Output {
    /// The profile as FlameGraph folded text with the counts of `kind` (see
    /// [`Profile::write_folded`]).
    pub fn folded(&self, kind: WeightKind) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.profile.write_folded(&mut out, kind);
        out
    }

    /// An error if a graph by `kind` cannot be drawn from this capture: bytes from a capture
    /// without allocation sizes.
    pub fn check_weight(&self, kind: WeightKind) -> Result<()> {
        if kind == WeightKind::Bytes && !self.profile.bytes_known && !self.profile.is_empty() {
            return Err(Error::Invalid(
                "--weight bytes: this capture carries no allocation sizes (record with allocflame, or add size arguments to the probes)".into(),
            ));
        }
        Ok(())
    }

    /// The flame graph (or flame chart) SVG. A profile without any weight of the chosen kind
    /// is an [`Error::Empty`] saying why that may be.
    pub fn svg(&self, options: &RenderOptions) -> Result<Vec<u8>> {
        self.check_weight(options.weight)?;
        if self.profile.total().get(options.weight) == 0 {
            return Err(Error::Empty {
                hint: "the capture holds no allocation events; check that the program ran, that the right process was chosen, and that the probes match its allocator".into(),
            });
        }
        let mut svg = Vec::new();
        if options.inverted {
            render::flamegraph(&self.sites_first(), options, &mut svg)?;
        } else {
            render::flamegraph(&self.profile, options, &mut svg)?;
        }
        Ok(svg)
    }

    /// The profile with each stack cut at its allocation site (the allocator and the machinery
    /// below the site left out) and turned over: the site first, then its callers, the process
    /// last. Stacks of machinery alone are only turned over. Sites are found on the names
    /// without their locations, which are written as `profile`'s are.
    pub fn sites_first(&self) -> Profile {
        let cut = self
            .located
            .as_ref()
            .unwrap_or(&self.profile)
            .map_stacks(|frames| {
                let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
                if let Some(site) = self.machinery.site(&names) {
                    frames.truncate(site + 1);
                }
                frames.reverse();
            });
        cut.written(self.lines)
    }

    /// The summary with `top` functions in each list, saying what the filters left out.
    pub fn summary(&self, top: usize) -> Summary {
        self.summary_ranked(top, WeightKind::Allocations)
    }

    /// The summary with `top` functions in each list ranked by `weight`, saying what the
    /// filters left out.
    pub fn summary_ranked(&self, top: usize, weight: WeightKind) -> Summary {
        let located = self.located.as_ref().unwrap_or(&self.profile);
        let mut summary = Summary::with_sites(&self.profile, located, &self.machinery, top, weight);
        if !self.filtered.by.is_empty() && self.filtered.by != "none" {
            summary.filtered = Some(self.filtered.clone());
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prettify::Rule;

    fn labeled() -> Profile {
        let mut p = Profile::new();
        let l = |pid, probe| Labels::new(Some(pid), Some(probe));
        p.add_labeled(
            ["app", "_ZN3app4mainEv", "__libc_malloc"],
            &l(7, "malloc"),
            Weight::new(10, 100),
        );
        p.add_labeled(
            ["app", "_ZN3app4mainEv", "__libc_malloc"],
            &l(8, "malloc"),
            Weight::new(1, 10),
        );
        p.add_labeled(
            ["app", "_ZN3app4loadEv", "calloc"],
            &l(7, "calloc"),
            Weight::new(2, 50),
        );
        p.bytes_known = true;
        p
    }

    fn folded(o: &Output) -> String {
        String::from_utf8(o.folded(WeightKind::Allocations)).unwrap()
    }

    fn with(filters: Filters) -> PipelineOptions {
        PipelineOptions {
            filters,
            ..PipelineOptions::default()
        }
    }

    #[test]
    fn no_filter_demangles_and_keeps_everything() {
        let o = process(labeled(), &PipelineOptions::default()).unwrap();
        assert_eq!(
            folded(&o),
            "app;app::load;calloc 2\napp;app::main;__libc_malloc 11\n"
        );
        assert_eq!(o.filtered.weight, Weight::default());
        assert!(o.notes.is_empty());
        assert!(o.summary(5).filtered.is_none());
    }

    #[test]
    fn pid_filter() {
        let o = process(
            labeled(),
            &with(Filters {
                pids: vec![8],
                ..Filters::default()
            }),
        )
        .unwrap();
        assert_eq!(folded(&o), "app;app::main;__libc_malloc 1\n");
        assert_eq!(o.filtered.weight, Weight::new(12, 150));
        assert_eq!(o.filtered.stacks, 1);
        assert_eq!(
            o.notes,
            ["the filters (pid 8) left out 1 stacks (12 allocations, 150 bytes)"]
        );
        let s = o.summary(5);
        assert_eq!(s.filtered.as_ref().unwrap().weight.allocs, 12);
        assert!(s.to_string().contains("filtered out"), "{s}");
    }

    #[test]
    fn probe_filter_by_label_and_by_leaf() {
        let only = |probes: &[&str]| {
            with(Filters {
                probes: probes.iter().map(|p| p.to_string()).collect(),
                ..Filters::default()
            })
        };
        let o = process(labeled(), &only(&["calloc"])).unwrap();
        assert_eq!(folded(&o), "app;app::load;calloc 2\n");
        // Imported stacks carry no probe: the leaf's base name decides.
        let mut imported = Profile::new();
        imported.add(["p", "main", "__GI___libc_malloc"], Weight::new(3, 0));
        imported.add(["p", "main", "libc.so.6`calloc+0x1c"], Weight::new(4, 0));
        imported.add(["p", "main", "operator new"], Weight::new(5, 0));
        let o = process(imported.clone(), &only(&["malloc"])).unwrap();
        assert_eq!(folded(&o), "p;main;__GI___libc_malloc 3\n");
        let o = process(imported, &only(&["calloc", "operator new"])).unwrap();
        assert_eq!(
            folded(&o),
            "p;main;libc.so.6`calloc+0x1c 4\np;main;operator new 5\n"
        );
    }

    #[test]
    fn min_weight_judges_the_written_stacks() {
        // Each pid's share of the malloc stack is below 5, together they are not.
        let mut p = labeled();
        p.add_labeled(
            ["app", "_ZN3app4mainEv", "__libc_malloc"],
            &Labels::new(Some(9), Some("malloc")),
            Weight::new(4, 0),
        );
        let o = process(
            p,
            &with(Filters {
                min_weight: Some(5),
                ..Filters::default()
            }),
        )
        .unwrap();
        assert_eq!(folded(&o), "app;app::main;__libc_malloc 15\n");
        assert_eq!(o.filtered.stacks, 1);
        assert_eq!(o.filtered.weight, Weight::new(2, 50));
        let o = process(
            labeled(),
            &with(Filters {
                min_weight: Some(60),
                weight: WeightKind::Bytes,
                ..Filters::default()
            }),
        )
        .unwrap();
        assert_eq!(folded(&o), "app;app::main;__libc_malloc 11\n");
    }

    #[test]
    fn rules_run_after_demangling_and_probe_filter_before_rules() {
        let options = PipelineOptions {
            rules: Rules(vec![
                // Written against the demangled name: it only matches after demangling.
                Rule::Replace {
                    from: "app::".into(),
                    to: "".into(),
                },
                Rule::Fold {
                    run: vec!["main".into(), "__libc_malloc".into()],
                    into: "M".into(),
                },
            ]),
            filters: Filters {
                probes: vec!["malloc".into()],
                ..Filters::default()
            },
            ..PipelineOptions::default()
        };
        let mut imported = Profile::new();
        imported.add(
            ["app", "_ZN3app4mainEv", "__libc_malloc"],
            Weight::new(3, 0),
        );
        imported.add(["app", "_ZN3app4loadEv", "calloc"], Weight::new(1, 0));
        let o = process(imported, &options).unwrap();
        assert_eq!(folded(&o), "app;M 3\n");
        let raw = PipelineOptions {
            demangle: None,
            ..options
        };
        let o = process(labeled(), &raw).unwrap();
        assert_eq!(folded(&o), "app;_ZN3app4mainEv;__libc_malloc 11\n");
    }

    #[test]
    fn empty_after_filter_is_an_error_that_says_so() {
        let err = process(
            labeled(),
            &with(Filters {
                pids: vec![99],
                ..Filters::default()
            }),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("the filters (pid 99) removed all 2 stacks (13 allocations)"),
            "{text}"
        );
        let mut imported = Profile::new();
        imported.add(["p", "main", "malloc"], Weight::new(3, 0));
        let text = process(
            imported.clone(),
            &with(Filters {
                pids: vec![1],
                ..Filters::default()
            }),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("carries no process ids"), "{text}");
        let err = process(
            imported,
            &with(Filters {
                min_weight: Some(1),
                weight: WeightKind::Bytes,
                ..Filters::default()
            }),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        // An empty input is no filter's doing: it stays an empty output.
        let o = process(
            Profile::new(),
            &with(Filters {
                pids: vec![1],
                ..Filters::default()
            }),
        )
        .unwrap();
        assert!(o.profile.is_empty());
        assert!(matches!(
            o.svg(&RenderOptions::default()),
            Err(Error::Empty { .. })
        ));
        assert!(apply(
            labeled(),
            &with(Filters {
                pids: vec![99],
                ..Filters::default()
            })
        )
        .profile
        .is_empty());
    }

    #[test]
    fn collector_keeps_pid_and_probe() {
        use crate::source::{RawFrame, RawStack, StackSink};
        let probes: Vec<crate::probes::Probe> = vec![
            "libc:malloc:0".parse().unwrap(),
            "libc:calloc:0".parse().unwrap(),
        ];
        let mut c = Collector::new(&probes);
        for (pid, probe) in [(1, 0), (2, 0), (1, 1), (1, 0)] {
            c.add(RawStack {
                pid,
                comm: "a".into(),
                probe,
                frames: vec![RawFrame::symbol("alloc"), RawFrame::symbol("main")],
                weight: Weight::new(1, 8),
            });
        }
        let o = from_collector(c, &PipelineOptions::default()).unwrap();
        let mut labels: Vec<(Option<u32>, Option<String>, u64)> = o
            .profile
            .labeled_stacks()
            .map(|(_, l, w)| (l.pid, l.probe.as_deref().map(str::to_owned), w.allocs))
            .collect();
        labels.sort();
        assert_eq!(
            labels,
            [
                (Some(1), Some("calloc".into()), 1),
                (Some(1), Some("malloc".into()), 2),
                (Some(2), Some("malloc".into()), 1)
            ]
        );
        assert_eq!(folded(&o), "a;main;alloc 4\n");
    }

    /// A profile as a symbolized recording of a program with debug info makes it: `parse`
    /// calls malloc at two lines, `main` calls `parse` at one.
    fn located() -> Profile {
        let mut p = Profile::new();
        let at = |l: &str| Some(std::sync::Arc::<str>::from(l));
        let stack = |p: &mut Profile, line: &str| -> Vec<crate::FrameId> {
            vec![
                p.intern("app"),
                p.intern_at("main", at("app.c:20").as_ref()),
                p.intern_at("parse", at(line).as_ref()),
                p.intern("malloc"),
            ]
        };
        let a = stack(&mut p, "app.c:7");
        let b = stack(&mut p, "app.c:9");
        p.add_ids(a, Weight::new(5, 0));
        p.add_ids(b, Weight::new(2, 0));
        p
    }

    #[test]
    fn sites_keep_their_lines_and_lines_go_into_names_on_demand() {
        let o = process(located(), &PipelineOptions::default()).unwrap();
        assert_eq!(
            folded(&o),
            "app;main;parse;malloc 7\n",
            "one frame per function"
        );
        let s = o.summary(10);
        let sites: Vec<(&str, Option<&str>, u64)> = s
            .top_sites
            .iter()
            .map(|x| (x.function.as_str(), x.location.as_deref(), x.allocs))
            .collect();
        assert_eq!(
            sites,
            vec![("parse", Some("app.c:7"), 5), ("parse", Some("app.c:9"), 2)]
        );
        assert_eq!(
            s.shared_frames,
            Vec::<String>::new(),
            "only two frames: kept"
        );
        let with_lines = PipelineOptions {
            lines: true,
            ..PipelineOptions::default()
        };
        let o = process(located(), &with_lines).unwrap();
        assert_eq!(
            folded(&o),
            "app;main (app.c:20);parse (app.c:7);malloc 5\napp;main (app.c:20);parse (app.c:9);malloc 2\n"
        );
        assert_eq!(o.summary(10).top_sites[0].function, "parse");
        assert_eq!(
            o.sites_first().folded_lines()[0].0,
            "parse (app.c:7);main (app.c:20);app",
            "--inverted --lines: sites found on the names, written with their lines"
        );
        // A minimum weight judges the stacks as written, and the sites follow them.
        let min = |lines| PipelineOptions {
            lines,
            filters: Filters {
                min_weight: Some(3),
                ..Filters::default()
            },
            ..PipelineOptions::default()
        };
        let o = process(located(), &min(true)).unwrap();
        assert_eq!(o.summary(10).top_sites.len(), 1);
        assert_eq!(o.summary(10).top_sites[0].allocs, 5);
        let o = process(located(), &min(false)).unwrap();
        assert_eq!(o.summary(10).top_sites.len(), 2, "7 allocations as written");
        // Rules keep the locations of the frames they leave.
        let rules = PipelineOptions {
            rules: Rules(vec![Rule::Drop("malloc".into())]),
            ..PipelineOptions::default()
        };
        let o = process(located(), &rules).unwrap();
        assert_eq!(o.located.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn sites_first_cuts_at_the_site_and_turns_stacks_over() {
        let mut p = Profile::new();
        p.add(
            ["app", "main", "parse", "strdup", "malloc"],
            Weight::new(3, 0),
        );
        p.add(["app", "main", "malloc"], Weight::new(1, 0));
        p.add(["app", "malloc"], Weight::new(1, 0));
        let o = process(p, &PipelineOptions::default()).unwrap();
        let mut lines: Vec<String> = o
            .sites_first()
            .folded_lines()
            .into_iter()
            .map(|(l, w)| format!("{l} {}", w.allocs))
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            vec!["main;app 1", "malloc;app 1", "parse;main;app 3"]
        );
        let svg = o
            .svg(&RenderOptions {
                inverted: true,
                ..RenderOptions::default()
            })
            .unwrap();
        assert!(String::from_utf8(svg).unwrap().contains("parse"));
    }
}
