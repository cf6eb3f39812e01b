//! The folded-stack profile model: root-first stacks of interned frames, each with a [`Weight`]
//! and, where the source knew them, the [`Labels`] of the process and probe it came from.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::ops::{Add, AddAssign};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How many allocations a stack made and how many bytes they asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Weight {
    /// Number of allocation calls.
    pub allocs: u64,
    /// Bytes requested by those calls (0 when the capture does not carry sizes).
    pub bytes: u64,
}

impl Weight {
    /// A weight of `allocs` calls and `bytes` bytes.
    pub const fn new(allocs: u64, bytes: u64) -> Self {
        Weight { allocs, bytes }
    }

    /// The value that stands for this weight when a graph is drawn by `kind`.
    pub const fn get(&self, kind: WeightKind) -> u64 {
        match kind {
            WeightKind::Allocations => self.allocs,
            WeightKind::Bytes => self.bytes,
        }
    }

    /// Whether both counts are zero.
    pub const fn is_zero(&self) -> bool {
        self.allocs == 0 && self.bytes == 0
    }

    /// `self + rhs`, or `None` if a count would overflow (`+` saturates).
    pub fn checked_add(self, rhs: Weight) -> Option<Weight> {
        Some(Weight {
            allocs: self.allocs.checked_add(rhs.allocs)?,
            bytes: self.bytes.checked_add(rhs.bytes)?,
        })
    }
}

impl Add for Weight {
    type Output = Weight;
    fn add(self, rhs: Weight) -> Weight {
        Weight {
            allocs: self.allocs.saturating_add(rhs.allocs),
            bytes: self.bytes.saturating_add(rhs.bytes),
        }
    }
}

impl AddAssign for Weight {
    fn add_assign(&mut self, rhs: Weight) {
        *self = *self + rhs;
    }
}

/// What the width of a flame graph box stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightKind {
    /// Number of allocation calls. This is the default.
    #[default]
    Allocations,
    /// Bytes requested.
    Bytes,
}

impl WeightKind {
    /// The name used for the count in a flame graph ("allocations" or "bytes").
    pub const fn count_name(self) -> &'static str {
        match self {
            WeightKind::Allocations => "allocations",
            WeightKind::Bytes => "bytes",
        }
    }
}

/// Index of an interned frame in a [`Profile`]: a name and, where symbolization found one, the
/// source location of the frame's instruction.
pub type FrameId = u32;

/// One frame of a stack as [`Profile::map_stacks`] hands it over: its name and source location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function name.
    pub name: String,
    /// `file:line` of the frame's instruction (the call, for callers), `, inlined` added for a
    /// function inlined into its caller; `None` when unknown.
    pub location: Option<Arc<str>>,
}

/// What a stack is about besides its frames: the process and the probe that recorded it.
///
/// Recordings know both; imported captures (folded files, `perf script`, DTrace output) leave
/// them `None`. Stacks with equal frames and different labels are kept apart (so that they can
/// be filtered by process or probe) and merge when written as folded text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// The process id. Default is `None` (unknown).
    pub pid: Option<u32>,
    /// The probed function that fired (`malloc`, `swift_allocObject`). Default is `None`
    /// (unknown).
    pub probe: Option<Arc<str>>,
}

impl Labels {
    /// Labels of process `pid` and probe `probe`.
    pub fn new(pid: Option<u32>, probe: Option<&str>) -> Self {
        Labels {
            pid,
            probe: probe.map(Into::into),
        }
    }

    /// Whether neither the process nor the probe is known.
    pub fn is_empty(&self) -> bool {
        self.pid.is_none() && self.probe.is_none()
    }
}

/// One stack as stored: its frames, labels and weight, and the next stored stack with the same
/// frames (other labels), so that lookups by frames need no allocation.
#[derive(Clone, Debug)]
struct Entry {
    frames: Box<[FrameId]>,
    labels: Labels,
    weight: Weight,
    /// The next entry with the same frames.
    next: Option<usize>,
    /// Whether this is the first entry with its frames (the one `stack_index` finds).
    head: bool,
}

/// An allocation profile: root-first stacks of frame names, each with a [`Weight`].
///
/// The first frame of a stack is the process name, as in perf and FlameGraph, so that programs
/// a recording followed (forked children, exec'd images) are roots of their own.
///
/// ```
/// use allocflame_core::{Profile, Weight, WeightKind};
/// let mut p = Profile::default();
/// p.add(["prog", "main", "malloc"], Weight::new(3, 96));
/// p.add(["prog", "main", "malloc"], Weight::new(1, 32));
/// let mut out = Vec::new();
/// p.write_folded(&mut out, WeightKind::Allocations).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "prog;main;malloc 4\n");
/// assert_eq!(p.total(), Weight::new(4, 128));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Profile {
    names: Vec<Box<str>>,
    /// The source location of each frame, beside `names`.
    locations: Vec<Option<Arc<str>>>,
    /// Frames without a location, by name.
    index: FxHashMap<Box<str>, FrameId>,
    /// Frames with a location: one frame per name and location.
    located: FxHashMap<(Box<str>, Arc<str>), FrameId>,
    /// Stacks in order of first appearance (flame charts need it), found through `stack_index`.
    stacks: Vec<Entry>,
    /// The first entry of each distinct frame sequence; the others hang off its `next` chain.
    stack_index: FxHashMap<Box<[FrameId]>, usize>,
    /// Whether the stacks carry byte totals (the capture recorded sizes). Default is `false`.
    pub bytes_known: bool,
    /// Allocation events the source reported as lost (never silently dropped). Default is 0.
    pub lost: u64,
    /// Input records an importer could not use, counted rather than hidden. Default is 0.
    pub skipped: u64,
}

impl Profile {
    /// An empty profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the frame `name` without a source location, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> FrameId {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.push_frame(name, None);
        self.index.insert(name.into(), id);
        id
    }

    /// The id of the frame `name` at `location` (see [`Frame::location`]), interning it if it
    /// is new: one function at two locations is two frames.
    pub fn intern_at(&mut self, name: &str, location: Option<&Arc<str>>) -> FrameId {
        let Some(location) = location else {
            return self.intern(name);
        };
        let key = (Box::<str>::from(name), location.clone());
        if let Some(&id) = self.located.get(&key) {
            return id;
        }
        let id = self.push_frame(name, Some(location.clone()));
        self.located.insert(key, id);
        id
    }

    fn push_frame(&mut self, name: &str, location: Option<Arc<str>>) -> FrameId {
        let id = FrameId::try_from(self.names.len()).expect("more than 4 billion distinct frames");
        self.names.push(name.into());
        self.locations.push(location);
        id
    }

    /// The name of an interned frame.
    pub fn name(&self, id: FrameId) -> &str {
        &self.names[id as usize]
    }

    /// The source location of an interned frame, when known.
    pub fn location(&self, id: FrameId) -> Option<&Arc<str>> {
        self.locations[id as usize].as_ref()
    }

    /// Whether any frame carries a source location.
    pub fn has_locations(&self) -> bool {
        !self.located.is_empty()
    }

    /// The ids in this profile of the frames `ids` of `other`, interned as needed.
    fn copy_ids(&mut self, other: &Profile, ids: &[FrameId]) -> Vec<FrameId> {
        ids.iter()
            .map(|&id| self.intern_at(other.name(id), other.location(id)))
            .collect()
    }

    /// Adds `weight` to the stack of `frames` (root first). An empty stack is ignored.
    pub fn add<I, S>(&mut self, frames: I, weight: Weight)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.add_labeled(frames, &Labels::default(), weight);
    }

    /// Adds `weight` to the stack of `frames` (root first) of the process and probe in
    /// `labels`. An empty stack is ignored.
    ///
    /// ```
    /// use allocflame_core::profile::{Labels, Profile, Weight};
    /// let mut p = Profile::new();
    /// p.add_labeled(["prog", "main", "malloc"], &Labels::new(Some(7), Some("malloc")), Weight::new(2, 64));
    /// p.add_labeled(["prog", "main", "malloc"], &Labels::new(Some(8), Some("malloc")), Weight::new(1, 32));
    /// assert_eq!(p.len(), 1, "one distinct stack of frames");
    /// assert_eq!(p.labeled_stacks().count(), 2, "kept apart by process");
    /// assert_eq!(p.folded_lines()[0].1, Weight::new(3, 96));
    /// ```
    pub fn add_labeled<I, S>(&mut self, frames: I, labels: &Labels, weight: Weight)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let ids: Vec<FrameId> = frames
            .into_iter()
            .map(|f| self.intern(f.as_ref()))
            .collect();
        self.add_ids_labeled(ids, labels, weight);
    }

    /// Adds `weight` to the stack of interned frame ids (root first).
    pub fn add_ids(&mut self, ids: impl Into<Box<[FrameId]>>, weight: Weight) {
        self.add_ids_labeled(ids, &Labels::default(), weight);
    }

    /// Adds `weight` to the stack of interned frame ids (root first) with `labels`.
    pub fn add_ids_labeled(
        &mut self,
        ids: impl Into<Box<[FrameId]>>,
        labels: &Labels,
        weight: Weight,
    ) {
        let ids = ids.into();
        if ids.is_empty() {
            return;
        }
        let new = self.stacks.len();
        let Some(&head) = self.stack_index.get(&ids) else {
            self.stack_index.insert(ids.clone(), new);
            self.stacks.push(Entry {
                frames: ids,
                labels: labels.clone(),
                weight,
                next: None,
                head: true,
            });
            return;
        };
        let mut i = head;
        loop {
            if self.stacks[i].labels == *labels {
                self.stacks[i].weight += weight;
                return;
            }
            match self.stacks[i].next {
                Some(n) => i = n,
                None => break,
            }
        }
        self.stacks[i].next = Some(new);
        self.stacks.push(Entry {
            frames: ids,
            labels: labels.clone(),
            weight,
            next: None,
            head: false,
        });
    }

    /// The summed weight of the chain of entries starting at `head`.
    fn chain_weight(&self, head: usize) -> Weight {
        let mut w = Weight::default();
        let mut i = Some(head);
        while let Some(n) = i {
            w += self.stacks[n].weight;
            i = self.stacks[n].next;
        }
        w
    }

    /// The first entry of each distinct frame sequence, with the weight of all its labels.
    fn merged(&self) -> impl Iterator<Item = (&[FrameId], Weight)> + '_ {
        self.stacks
            .iter()
            .enumerate()
            .filter(|(_, e)| e.head)
            .map(|(i, e)| {
                let w = if e.next.is_some() {
                    self.chain_weight(i)
                } else {
                    e.weight
                };
                (&e.frames[..], w)
            })
    }

    /// Number of distinct stacks of frames (as folded text has them; see
    /// [`labeled_stacks`](Self::labeled_stacks) for stacks told apart by process and probe).
    pub fn len(&self) -> usize {
        self.stack_index.len()
    }

    /// Whether the profile holds no stack.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The sum of all weights.
    pub fn total(&self) -> Weight {
        self.stacks
            .iter()
            .fold(Weight::default(), |acc, e| acc + e.weight)
    }

    /// Every distinct stack of frames as interned ids, root first, with its weight summed over
    /// processes and probes, in order of first appearance.
    pub fn stack_ids(&self) -> impl Iterator<Item = (&[FrameId], Weight)> + '_ {
        self.merged()
    }

    /// Every distinct stack of frames as names, root first, with its weight summed over
    /// processes and probes, in order of first appearance.
    pub fn stacks(&self) -> impl Iterator<Item = (Vec<&str>, Weight)> + '_ {
        self.merged()
            .map(|(k, w)| (k.iter().map(|&id| self.name(id)).collect(), w))
    }

    /// Every stack as interned ids with its labels and weight, stacks of equal frames and
    /// different labels apart, in order of first appearance.
    pub fn labeled_stacks(&self) -> impl Iterator<Item = (&[FrameId], &Labels, Weight)> + '_ {
        self.stacks
            .iter()
            .map(|e| (&e.frames[..], &e.labels, e.weight))
    }

    /// Whether any stack carries a process id.
    pub fn has_pids(&self) -> bool {
        self.stacks.iter().any(|e| e.labels.pid.is_some())
    }

    /// Whether any stack carries a probe name.
    pub fn has_probes(&self) -> bool {
        self.stacks.iter().any(|e| e.labels.probe.is_some())
    }

    /// Every stack as one folded line (`a;b;c`), with its weight, sorted by the line.
    pub fn folded_lines(&self) -> Vec<(String, Weight)> {
        let mut lines = self.folded_lines_in_order();
        lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        lines
    }

    /// Every stack as one folded line, in order of first appearance.
    pub fn folded_lines_in_order(&self) -> Vec<(String, Weight)> {
        self.merged().map(|(k, w)| (self.join(k), w)).collect()
    }

    fn join(&self, ids: &[FrameId]) -> String {
        let mut s = String::new();
        for (i, &id) in ids.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            s.push_str(self.name(id));
        }
        s
    }

    /// Adds every stack of `other` to this profile, with its loss and skip counts.
    pub fn merge(&mut self, other: &Profile) {
        for (ids, labels, w) in other.labeled_stacks() {
            let mine = self.copy_ids(other, ids);
            self.add_ids_labeled(mine, labels, w);
        }
        self.bytes_known |= other.bytes_known;
        self.lost += other.lost;
        self.skipped += other.skipped;
    }

    /// A profile whose every frame name is replaced by `f(name)`, locations kept; each distinct
    /// frame is passed to `f` once, which makes this the cheap place to demangle.
    pub fn map_frames<'a>(&'a self, mut f: impl FnMut(&'a str) -> Cow<'a, str>) -> Profile {
        let mut out = self.empty_like();
        let mapping: Vec<FrameId> = self
            .names
            .iter()
            .zip(&self.locations)
            .map(|(n, l)| out.intern_at(&f(n), l.as_ref()))
            .collect();
        for (ids, labels, w) in self.labeled_stacks() {
            let new: Vec<FrameId> = ids.iter().map(|&id| mapping[id as usize]).collect();
            out.add_ids_labeled(new, labels, w);
        }
        out
    }

    /// A profile whose every stack is rewritten by `f`, which gets the frames root first and
    /// may change, add or remove frames. Stacks that become equal are merged; stacks that
    /// become empty are dropped. Labels stay with their stacks.
    pub fn map_stacks(&self, mut f: impl FnMut(&mut Vec<Frame>)) -> Profile {
        let mut out = self.empty_like();
        let mut buf: Vec<Frame> = Vec::new();
        for (ids, labels, w) in self.labeled_stacks() {
            buf.clear();
            buf.extend(ids.iter().map(|&id| Frame {
                name: self.name(id).to_owned(),
                location: self.location(id).cloned(),
            }));
            f(&mut buf);
            let new: Vec<FrameId> = buf
                .iter()
                .map(|fr| out.intern_at(&fr.name, fr.location.as_ref()))
                .collect();
            out.add_ids_labeled(new, labels, w);
        }
        out
    }

    /// The profile as graphs and folded text write it: with `lines`, each location written
    /// into its frame's name, `name (file:line)`; without, every location dropped, so that a
    /// function's frames at several locations merge into one.
    pub fn written(&self, lines: bool) -> Profile {
        if !self.has_locations() {
            return self.clone();
        }
        let mut out = self.empty_like();
        let mapping: Vec<FrameId> = self
            .names
            .iter()
            .zip(&self.locations)
            .map(|(n, l)| out.intern(&written_name(n, l.as_ref(), lines)))
            .collect();
        for (ids, labels, w) in self.labeled_stacks() {
            let new: Vec<FrameId> = ids.iter().map(|&id| mapping[id as usize]).collect();
            out.add_ids_labeled(new, labels, w);
        }
        out
    }

    /// The name of frame `id` as [`written`](Self::written) writes it.
    pub fn written_name(&self, id: FrameId, lines: bool) -> Cow<'_, str> {
        written_name(self.name(id), self.location(id), lines)
    }

    /// A profile with only the stacks (all their labels) whose frames `keep` holds to.
    pub fn retain_stacks(&self, mut keep: impl FnMut(&[FrameId]) -> bool) -> Profile {
        let mut out = self.empty_like();
        for (ids, labels, w) in self.labeled_stacks() {
            if keep(ids) {
                let new = out.copy_ids(self, ids);
                out.add_ids_labeled(new, labels, w);
            }
        }
        out
    }

    /// A profile with only the distinct stacks of frames for which `keep(frames, weight)` is
    /// true (`weight` summed over processes and probes); kept stacks keep their labels.
    pub fn filter(&self, mut keep: impl FnMut(&[&str], Weight) -> bool) -> Profile {
        let mut out = self.empty_like();
        let mut names: Vec<&str> = Vec::new();
        for (head, e) in self.stacks.iter().enumerate().filter(|(_, e)| e.head) {
            names.clear();
            names.extend(e.frames.iter().map(|&id| self.name(id)));
            if keep(&names, self.chain_weight(head)) {
                let ids = out.copy_ids(self, &e.frames);
                let mut i = Some(head);
                while let Some(n) = i {
                    let e = &self.stacks[n];
                    out.add_ids_labeled(ids.as_slice(), &e.labels, e.weight);
                    i = e.next;
                }
            }
        }
        out
    }

    /// A profile with only the stacks for which `keep(frames, labels, weight)` is true, each
    /// stack of equal frames and different labels judged on its own.
    pub fn filter_labeled(
        &self,
        mut keep: impl FnMut(&[&str], &Labels, Weight) -> bool,
    ) -> Profile {
        let mut out = self.empty_like();
        let mut names: Vec<&str> = Vec::new();
        for e in &self.stacks {
            names.clear();
            names.extend(e.frames.iter().map(|&id| self.name(id)));
            if keep(&names, &e.labels, e.weight) {
                let ids = out.copy_ids(self, &e.frames);
                out.add_ids_labeled(ids, &e.labels, e.weight);
            }
        }
        out
    }

    /// A profile with every weight multiplied by `factor` and rounded (for normalized diffs).
    pub fn scaled(&self, factor: f64) -> Profile {
        let mut out = self.clone();
        for e in out.stacks.iter_mut() {
            let w = &mut e.weight;
            w.allocs = (w.allocs as f64 * factor).round() as u64;
            w.bytes = (w.bytes as f64 * factor).round() as u64;
        }
        out
    }

    fn empty_like(&self) -> Profile {
        Profile {
            bytes_known: self.bytes_known,
            lost: self.lost,
            skipped: self.skipped,
            ..Profile::default()
        }
    }

    /// Writes the profile as FlameGraph folded text, one `frame;…;leaf COUNT` line per stack,
    /// sorted, with the count of `kind`. Stacks whose count is 0 are left out.
    pub fn write_folded(&self, mut w: impl Write, kind: WeightKind) -> std::io::Result<()> {
        for (line, weight) in self.folded_lines() {
            let n = weight.get(kind);
            if n > 0 {
                writeln!(w, "{line} {n}")?;
            }
        }
        w.flush()
    }

    /// Reads FlameGraph folded text (`frame;…;leaf COUNT` per line). Counts go to `kind`; when
    /// that is bytes, the allocation counts are unknown and left at 0. `file` names the input in
    /// errors. Blank lines are ignored; any other line without a stack and a whole-number count
    /// is an error naming the file and line.
    pub fn read_folded(reader: impl BufRead, file: &str, kind: WeightKind) -> Result<Profile> {
        let mut p = Profile {
            bytes_known: kind == WeightKind::Bytes,
            ..Profile::default()
        };
        let mut ids: Vec<FrameId> = Vec::new();
        let mut total = Weight::default();
        for (i, line) in reader.split(b'\n').enumerate() {
            let lineno = i + 1;
            let line = line.map_err(|e| Error::io(file, e))?;
            let line = std::str::from_utf8(&line).map_err(|_| Error::Parse {
                file: file.to_owned(),
                line: lineno,
                message: "not valid UTF-8 text; expected `frame;frame;… COUNT`".into(),
            })?;
            let line = line.trim_end_matches(['\r', '\n', ' ', '\t']);
            if line.trim().is_empty() {
                continue;
            }
            let (stack, count) = parse_folded_line(line).ok_or_else(|| Error::Parse {
                file: file.to_owned(),
                line: lineno,
                message: match line.rsplit_once(' ') {
                    Some((_, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                        format!("the count {} is larger than {}, the most allocflame can count", shorten(n, 40), u64::MAX)
                    }
                    _ => format!(
                        "expected `frame;frame;… COUNT` (a stack, a space, a whole number), found `{}`",
                        shorten(line, 80)
                    ),
                },
            })?;
            ids.clear();
            for frame in stack.split(';') {
                ids.push(p.intern(frame));
            }
            let weight = match kind {
                WeightKind::Allocations => Weight::new(count, 0),
                WeightKind::Bytes => Weight::new(0, count),
            };
            crate::import::add_to_total(&mut total, weight, file, lineno)?;
            p.add_ids(ids.as_slice(), weight);
        }
        Ok(p)
    }
}

/// `name (location)` with `lines` and a known location, else `name`.
fn written_name<'a>(name: &'a str, location: Option<&Arc<str>>, lines: bool) -> Cow<'a, str> {
    match location {
        Some(l) if lines => Cow::Owned(format!("{name} ({l})")),
        _ => Cow::Borrowed(name),
    }
}

/// Splits a folded line into its stack and count, or `None` if it is not one.
pub(crate) fn parse_folded_line(line: &str) -> Option<(&str, u64)> {
    let (stack, count) = line.rsplit_once(' ')?;
    let stack = stack.trim_end();
    if stack.is_empty() || count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stack, count.parse().ok()?))
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub(crate) fn shorten(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_round_trip_and_merge() {
        let text = "p;main;malloc 3\np;main;calloc 2\n\np;main;malloc 1\n";
        let p = Profile::read_folded(text.as_bytes(), "t", WeightKind::Allocations).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.total().allocs, 6);
        let mut out = Vec::new();
        p.write_folded(&mut out, WeightKind::Allocations).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "p;main;calloc 2\np;main;malloc 4\n"
        );
        let mut q = p.clone();
        q.merge(&p);
        assert_eq!(q.total().allocs, 12);
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let err = Profile::read_folded(
            "a;b 1\nno count here\n".as_bytes(),
            "x.folded",
            WeightKind::Allocations,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("x.folded:2: expected"), "{err}");
    }

    #[test]
    fn map_frames_and_stacks() {
        let mut p = Profile::new();
        p.add(["p", "_ZN3foo3barEv", "malloc"], Weight::new(1, 8));
        p.add(["p", "x", "malloc"], Weight::new(2, 16));
        let q = p.map_frames(|f| {
            if f == "x" {
                "_ZN3foo3barEv".into()
            } else {
                f.into()
            }
        });
        assert_eq!(q.len(), 1);
        assert_eq!(q.total(), Weight::new(3, 24));
        let r = q.map_stacks(|s| s.retain(|f| f.name != "malloc"));
        assert_eq!(r.folded_lines()[0].0, "p;_ZN3foo3barEv");
    }

    #[test]
    fn labels_apart_inside_merged_in_folded() {
        let mut p = Profile::new();
        let a = Labels::new(Some(1), Some("malloc"));
        let b = Labels::new(Some(2), Some("malloc"));
        p.add_labeled(["p", "main", "malloc"], &a, Weight::new(1, 8));
        p.add_labeled(["p", "other", "malloc"], &a, Weight::new(5, 8));
        p.add_labeled(["p", "main", "malloc"], &b, Weight::new(2, 16));
        p.add(["p", "main", "malloc"], Weight::new(4, 0));
        p.add_labeled(["p", "main", "malloc"], &a, Weight::new(1, 8));
        assert_eq!(p.len(), 2);
        assert_eq!(p.labeled_stacks().count(), 4);
        assert_eq!(p.total(), Weight::new(13, 40));
        let mut out = Vec::new();
        p.write_folded(&mut out, WeightKind::Allocations).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "p;main;malloc 8\np;other;malloc 5\n"
        );
        assert_eq!(
            p.folded_lines_in_order(),
            vec![
                ("p;main;malloc".to_owned(), Weight::new(8, 32)),
                ("p;other;malloc".to_owned(), Weight::new(5, 8))
            ]
        );
        // Transformations keep the labels with their stacks.
        let q = p.map_frames(|f| {
            if f == "other" {
                "main".into()
            } else {
                f.into()
            }
        });
        assert_eq!(q.len(), 1);
        let a_weight: Weight = q
            .labeled_stacks()
            .filter(|(_, l, _)| **l == a)
            .map(|(_, _, w)| w)
            .fold(Weight::default(), |x, y| x + y);
        assert_eq!(a_weight, Weight::new(7, 24));
        let r = q.filter_labeled(|_, l, _| l.pid == Some(2));
        assert_eq!(r.total(), Weight::new(2, 16));
        assert!(r.has_pids() && r.has_probes());
        let mut m = Profile::new();
        m.merge(&p);
        assert_eq!(m.labeled_stacks().count(), 4);
        assert!(!Profile::new().has_pids());
    }
}
