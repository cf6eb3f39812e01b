//! pprof output: a [`Profile`] as a gzipped `profile.proto` message, the format `go tool pprof`,
//! Pyroscope, Parca, Grafana and speedscope read; and a decoder of such files (for tests and
//! for checking what a server received).
//!
//! What is written:
//! - sample types `alloc_objects`/`count` and `alloc_space`/`bytes` (the names Go's allocation
//!   profiles use, so `go tool pprof -sample_index=alloc_space` and Pyroscope's memory views know
//!   them); bytes only where the capture carries sizes (see [`PprofOptions::sample_types`]); the
//!   default type last (see [`PprofOptions::types_for`]);
//! - one sample per stack and labels (process and probe): a numeric label `pid` and a string
//!   label `probe` where the [`Labels`](crate::Labels) know them;
//! - one `Function` per distinct frame name and one `Location` per function (folded stacks carry
//!   names only, no addresses), each location with one line pointing at its function;
//!   locations in a sample are leaf first, as pprof wants them;
//! - a string table holding each string once, `""` first.
//!
//! The protobuf is written by hand: the message is small (varints and length-delimited fields)
//! and the field numbers below are those of `profile.proto` in google/pprof.
//!
//! ```
//! use allocflame_core::{pprof, Profile, Weight};
//! let mut p = Profile::new();
//! p.bytes_known = true;
//! p.add(["prog", "main", "malloc"], Weight::new(3, 96));
//! let gz = pprof::encode(&p, &pprof::PprofOptions::default()).unwrap();
//! let back = pprof::decode(&gz).unwrap();
//! // The default type (allocations) last, where every viewer looks for it.
//! assert_eq!(back.sample_types[1], ("alloc_objects".to_owned(), "count".to_owned()));
//! assert_eq!(back.samples[0].stack, ["malloc", "main", "prog"], "leaf first");
//! assert_eq!(back.samples[0].values, [96, 3]);
//! ```

use std::io::Write;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::profile::{FrameId, Profile, WeightKind};

mod decode;

pub use decode::{decode, import, Decoded, DecodedSample, LabelValue};

/// Field numbers of `profile.proto` (google/pprof `proto/profile.proto`).
pub(crate) mod field {
    // message Profile
    pub const SAMPLE_TYPE: u32 = 1; // repeated ValueType
    pub const SAMPLE: u32 = 2; // repeated Sample
    pub const MAPPING: u32 = 3; // repeated Mapping
    pub const LOCATION: u32 = 4; // repeated Location
    pub const FUNCTION: u32 = 5; // repeated Function
    pub const STRING_TABLE: u32 = 6; // repeated string
    pub const TIME_NANOS: u32 = 9; // int64
    pub const DURATION_NANOS: u32 = 10; // int64
    pub const PERIOD_TYPE: u32 = 11; // ValueType
    pub const PERIOD: u32 = 12; // int64
    pub const COMMENT: u32 = 13; // repeated int64 (string index)
    pub const DEFAULT_SAMPLE_TYPE: u32 = 14; // int64 (string index)
                                             // message ValueType
    pub const VT_TYPE: u32 = 1; // int64 (string index)
    pub const VT_UNIT: u32 = 2; // int64 (string index)
                                // message Sample
    pub const S_LOCATION_ID: u32 = 1; // repeated uint64, packed
    pub const S_VALUE: u32 = 2; // repeated int64, packed
    pub const S_LABEL: u32 = 3; // repeated Label
                                // message Label
    pub const L_KEY: u32 = 1; // int64 (string index)
    pub const L_STR: u32 = 2; // int64 (string index)
    pub const L_NUM: u32 = 3; // int64
                              // message Mapping
    pub const M_ID: u32 = 1; // uint64
    pub const M_FILENAME: u32 = 5; // int64 (string index)
    pub const M_HAS_FUNCTIONS: u32 = 7; // bool
                                        // message Location
    pub const LOC_ID: u32 = 1; // uint64
    pub const LOC_ADDRESS: u32 = 3; // uint64
    pub const LOC_MAPPING_ID: u32 = 2; // uint64
    pub const LOC_LINE: u32 = 4; // repeated Line
                                 // message Line
    pub const LINE_FUNCTION_ID: u32 = 1; // uint64
    pub const LINE_LINE: u32 = 2; // int64
                                  // message Function
    pub const F_ID: u32 = 1; // uint64
    pub const F_NAME: u32 = 2; // int64 (string index)
    pub const F_SYSTEM_NAME: u32 = 3; // int64 (string index)
    pub const F_FILENAME: u32 = 4; // int64 (string index)
}

/// The pprof name and unit of a sample type of `kind`.
pub const fn sample_type(kind: WeightKind) -> (&'static str, &'static str) {
    match kind {
        WeightKind::Allocations => ("alloc_objects", "count"),
        WeightKind::Bytes => ("alloc_space", "bytes"),
    }
}

/// How a profile is written as pprof. Construct with `Default` and set what differs.
#[derive(Clone, Debug, Default)]
pub struct PprofOptions {
    /// The sample types (values of each sample). Default is empty: allocations, and bytes too
    /// when the profile carries sizes ([`Profile::bytes_known`]).
    pub sample_types: Vec<WeightKind>,
    /// The sample type viewers show first (`go tool pprof`'s default `-sample_index`); it is
    /// written last (see [`PprofOptions::types_for`]). Default is allocations (bytes when only
    /// bytes are written).
    pub default_type: Option<WeightKind>,
    /// When the recording started, in nanoseconds since the Unix epoch. Default is 0 (unknown).
    pub time_nanos: i64,
    /// How long it lasted, in nanoseconds. Default is 0 (unknown).
    pub duration_nanos: i64,
    /// Free-form comments stored in the profile (`go tool pprof -comments`). Default is none.
    pub comments: Vec<String>,
    /// The file name of the one mapping every location belongs to (viewers show it as the
    /// main binary). Default is `None`: the profile's root frame when all stacks share one
    /// (the program's name), else `allocflame`.
    pub main_binary: Option<String>,
    /// Write a profile without samples instead of failing with [`Error::Empty`] (one side of
    /// a comparison may be empty). Default is `false`.
    pub allow_empty: bool,
}

impl PprofOptions {
    /// The sample types written for `profile`, in order: the default type last. Viewers read
    /// profile.proto's `default_sample_type` differently (pprof as the string naming the type,
    /// speedscope as the type's position) but agree that without it the last type is the
    /// default; so the default goes last, and the field is written only where both readings
    /// name the same type.
    pub fn types_for(&self, profile: &Profile) -> Vec<WeightKind> {
        let mut kinds = Vec::new();
        if self.sample_types.is_empty() {
            kinds.push(WeightKind::Allocations);
            if profile.bytes_known {
                kinds.push(WeightKind::Bytes);
            }
        } else {
            for &k in &self.sample_types {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        let default = self
            .default_type
            .filter(|k| kinds.contains(k))
            .unwrap_or(kinds[0]);
        kinds.retain(|&k| k != default);
        kinds.push(default);
        kinds
    }
}

/// The string table: each string once, `""` at index 0 as profile.proto requires.
#[derive(Default)]
struct Strings<'a> {
    table: Vec<&'a str>,
    index: FxHashMap<&'a str, i64>,
}

impl<'a> Strings<'a> {
    fn new() -> Self {
        let mut s = Strings::default();
        s.get("");
        s
    }

    fn get(&mut self, text: &'a str) -> i64 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(text);
        self.index.insert(text, i);
        i
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// A varint field (wire type 0); proto3 leaves zeros out.
fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(out, field, 0);
        put_varint(out, v);
    }
}

fn put_int(out: &mut Vec<u8>, field: u32, v: i64) {
    // int64 is encoded as the two's complement bit pattern.
    put_uint(out, field, v as u64);
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_packed(out: &mut Vec<u8>, field: u32, values: impl Iterator<Item = u64>, buf: &mut Vec<u8>) {
    buf.clear();
    for v in values {
        put_varint(buf, v);
    }
    if !buf.is_empty() {
        put_bytes(out, field, buf);
    }
}

fn value_type(strings: &mut Strings<'_>, kind: WeightKind) -> Vec<u8> {
    let (name, unit) = sample_type(kind);
    let mut m = Vec::new();
    put_int(&mut m, field::VT_TYPE, strings.get(name));
    put_int(&mut m, field::VT_UNIT, strings.get(unit));
    m
}

/// A count as a pprof value (int64), or an error naming it.
fn to_value(n: u64, kind: WeightKind) -> Result<i64> {
    i64::try_from(n).map_err(|_| {
        Error::Invalid(format!(
            "pprof output: a stack's {} ({n}) is larger than {}, the most a pprof value holds",
            kind.count_name(),
            i64::MAX
        ))
    })
}

/// `profile` as an uncompressed `profile.proto` message. An empty profile (no stack with a
/// weight in any of the written sample types) is an [`Error::Empty`], as for the flame graph:
/// a file that looks like a profile of nothing would hide a recording that went wrong (unless
/// [`PprofOptions::allow_empty`] asks for a valid profile without samples).
pub fn encode_uncompressed(profile: &Profile, options: &PprofOptions) -> Result<Vec<u8>> {
    let kinds = options.types_for(profile);
    let total = profile.total();
    for &k in &kinds {
        to_value(total.get(k), k)?;
    }
    if !options.allow_empty && kinds.iter().all(|&k| total.get(k) == 0) {
        return Err(Error::Empty {
            hint: "the profile holds no allocation events, so no pprof file was written; check that the program ran, that the right process was chosen, and that the probes match its allocator".into(),
        });
    }
    // One mapping, marked as already symbolized, so that viewers neither look for the binary
    // nor try to symbolize the locations (which have names, not addresses).
    let main_binary = match &options.main_binary {
        Some(name) => name.clone(),
        None => {
            let mut roots = profile.stack_ids().filter_map(|(s, _)| s.first().copied());
            match roots.next() {
                Some(first) if roots.all(|r| r == first) => profile.name(first).to_owned(),
                _ => "allocflame".to_owned(),
            }
        }
    };
    let mut strings = Strings::new();
    // The default type's name first: string 1 (see `types_for`).
    let default = kinds[kinds.len() - 1];
    let default_name = strings.get(sample_type(default).0);
    let mut out = Vec::new();
    for &k in &kinds {
        let vt = value_type(&mut strings, k);
        put_bytes(&mut out, field::SAMPLE_TYPE, &vt);
    }
    // Locations (a frame: a function, at a source line where the profile knows it) numbered
    // from 1 in order of first use; functions (by name) below.
    let mut location_of: FxHashMap<FrameId, u64> = FxHashMap::default();
    let mut locations: Vec<FrameId> = Vec::new();
    let (pid_key, probe_key) = (strings.get("pid"), strings.get("probe"));
    let mut sample = Vec::new();
    let mut buf = Vec::new();
    let mut label = Vec::new();
    for (frames, labels, weight) in profile.labeled_stacks() {
        if kinds.iter().all(|&k| weight.get(k) == 0) {
            continue;
        }
        sample.clear();
        let ids: Vec<u64> = frames
            .iter()
            .rev()
            .map(|&f| {
                *location_of.entry(f).or_insert_with(|| {
                    locations.push(f);
                    locations.len() as u64
                })
            })
            .collect();
        put_packed(
            &mut sample,
            field::S_LOCATION_ID,
            ids.iter().copied(),
            &mut buf,
        );
        let values = kinds
            .iter()
            .map(|&k| to_value(weight.get(k), k))
            .collect::<Result<Vec<i64>>>()?;
        // Packed values must be written even when all are zero in one type: each sample has
        // one value per sample type.
        buf.clear();
        for v in &values {
            put_varint(&mut buf, *v as u64);
        }
        put_bytes(&mut sample, field::S_VALUE, &buf);
        if let Some(pid) = labels.pid {
            label.clear();
            put_int(&mut label, field::L_KEY, pid_key);
            put_key(&mut label, field::L_NUM, 0);
            put_varint(&mut label, u64::from(pid));
            put_bytes(&mut sample, field::S_LABEL, &label);
        }
        if let Some(probe) = &labels.probe {
            label.clear();
            put_int(&mut label, field::L_KEY, probe_key);
            put_int(&mut label, field::L_STR, strings.get(probe));
            put_bytes(&mut sample, field::S_LABEL, &label);
        }
        put_bytes(&mut out, field::SAMPLE, &sample);
    }
    let mut mapping = Vec::new();
    put_uint(&mut mapping, field::M_ID, 1);
    put_int(&mut mapping, field::M_FILENAME, strings.get(&main_binary));
    put_uint(&mut mapping, field::M_HAS_FUNCTIONS, 1);
    put_bytes(&mut out, field::MAPPING, &mapping);
    let mut function_of: FxHashMap<&str, u64> = FxHashMap::default();
    let mut functions: Vec<(&str, Option<&str>)> = Vec::new();
    for (i, &frame) in locations.iter().enumerate() {
        let name = profile.name(frame);
        let (file, line_number) = split_location(profile.location(frame).map(|l| &**l));
        let function = *function_of.entry(name).or_insert_with(|| {
            functions.push((name, file));
            functions.len() as u64
        });
        let mut line = Vec::new();
        put_uint(&mut line, field::LINE_FUNCTION_ID, function);
        if let Some(n) = line_number {
            put_int(&mut line, field::LINE_LINE, i64::from(n));
        }
        let mut loc = Vec::new();
        put_uint(&mut loc, field::LOC_ID, i as u64 + 1);
        put_uint(&mut loc, field::LOC_MAPPING_ID, 1);
        put_bytes(&mut loc, field::LOC_LINE, &line);
        put_bytes(&mut out, field::LOCATION, &loc);
    }
    for (i, (name, file)) in functions.iter().enumerate() {
        let name = strings.get(name);
        let mut f = Vec::new();
        put_uint(&mut f, field::F_ID, i as u64 + 1);
        put_int(&mut f, field::F_NAME, name);
        put_int(&mut f, field::F_SYSTEM_NAME, name);
        if let Some(file) = file {
            put_int(&mut f, field::F_FILENAME, strings.get(file));
        }
        put_bytes(&mut out, field::FUNCTION, &f);
    }
    put_int(&mut out, field::TIME_NANOS, options.time_nanos);
    put_int(&mut out, field::DURATION_NANOS, options.duration_nanos);
    // Every allocation is counted (no sampling): one event per unit, as Go's allocation
    // profiles name their period type.
    let period_type = {
        let mut m = Vec::new();
        put_int(&mut m, field::VT_TYPE, strings.get("space"));
        put_int(&mut m, field::VT_UNIT, strings.get("bytes"));
        m
    };
    put_bytes(&mut out, field::PERIOD_TYPE, &period_type);
    put_int(&mut out, field::PERIOD, 1);
    for c in &options.comments {
        let i = strings.get(c);
        put_key(&mut out, field::COMMENT, 0);
        put_varint(&mut out, i as u64);
    }
    // String 1 names the last type, at position 1 when there are two: pprof and speedscope
    // then read the field alike; with one type it is left out (the last is the default).
    if usize::try_from(default_name).is_ok_and(|i| i == kinds.len() - 1) {
        put_int(&mut out, field::DEFAULT_SAMPLE_TYPE, default_name);
    }
    // The string table goes last: only now is it complete. Field order does not matter.
    for s in &strings.table {
        put_bytes(&mut out, field::STRING_TABLE, s.as_bytes());
    }
    Ok(out)
}

/// The file and line of a frame's location as [`crate::profile::Frame::location`] writes it
/// (`src/app.c:12, inlined`).
fn split_location(location: Option<&str>) -> (Option<&str>, Option<u32>) {
    let Some(l) = location else {
        return (None, None);
    };
    let l = l.strip_suffix(", inlined").unwrap_or(l);
    match l.rsplit_once(':') {
        Some((file, n)) => match n.parse() {
            Ok(n) => (Some(file), Some(n)),
            Err(_) => (Some(l), None),
        },
        None => ((!l.is_empty() && l != "inlined").then_some(l), None),
    }
}

/// `profile` as a gzipped `profile.proto` message, what `go tool pprof` and profile servers
/// read (see [`encode_uncompressed`] for what is written, and for the empty profile's error).
pub fn encode(profile: &Profile, options: &PprofOptions) -> Result<Vec<u8>> {
    let raw = encode_uncompressed(profile, options)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    gz.write_all(&raw).map_err(Error::Render)?;
    gz.finish().map_err(Error::Render)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Labels, Weight};

    fn sample_profile() -> Profile {
        let mut p = Profile::new();
        p.bytes_known = true;
        let l = |pid, probe| Labels::new(Some(pid), Some(probe));
        p.add_labeled(
            ["app", "main", "work", "malloc"],
            &l(7, "malloc"),
            Weight::new(3, 96),
        );
        p.add_labeled(
            ["app", "main", "work", "malloc"],
            &l(8, "malloc"),
            Weight::new(2, 64),
        );
        p.add_labeled(
            ["app", "main", "calloc"],
            &l(7, "calloc"),
            Weight::new(1, 400),
        );
        p.add(["app", "main", "other", "malloc"], Weight::new(5, 5));
        p
    }

    #[test]
    fn decodes_back_to_the_same_profile() {
        let p = sample_profile();
        let d = decode(&encode(&p, &PprofOptions::default()).unwrap()).unwrap();
        assert_eq!(
            d.sample_types,
            [
                ("alloc_space".to_owned(), "bytes".to_owned()),
                ("alloc_objects".to_owned(), "count".to_owned())
            ],
            "the default type last"
        );
        assert_eq!(d.default_sample_type.as_deref(), Some("alloc_objects"));
        // The field's value (a string index for pprof) is also the type's position (for
        // speedscope): both read allocations.
        assert_eq!(d.strings[1], "alloc_objects");
        assert_eq!(d.samples.len(), 4, "one sample per stack and labels");
        assert_eq!(d.samples[0].stack, ["malloc", "work", "main", "app"]);
        assert_eq!(d.samples[0].values, [96, 3]);
        assert_eq!(
            d.samples[0].labels,
            [
                ("pid".to_owned(), LabelValue::Num(7)),
                ("probe".to_owned(), LabelValue::Str("malloc".into()))
            ]
        );
        assert!(d.samples[3].labels.is_empty(), "no labels where none known");
        let q = d.to_profile();
        assert_eq!(q.folded_lines(), p.folded_lines());
        assert_eq!(q.total(), p.total());
        let labeled = |p: &Profile| -> Vec<(String, Labels, Weight)> {
            let mut v: Vec<_> = p
                .labeled_stacks()
                .map(|(ids, l, w)| {
                    let names: Vec<&str> = ids.iter().map(|&i| p.name(i)).collect();
                    (names.join(";"), l.clone(), w)
                })
                .collect();
            v.sort_by(|a, b| (&a.0, a.1.pid).cmp(&(&b.0, b.1.pid)));
            v
        };
        assert_eq!(labeled(&q), labeled(&p));
    }

    #[test]
    fn functions_locations_and_strings_are_each_written_once() {
        let p = sample_profile();
        let d = decode(&encode(&p, &PprofOptions::default()).unwrap()).unwrap();
        // app, main, work, malloc, calloc, other
        assert_eq!(d.functions, 6);
        assert_eq!(d.locations, 6);
        assert_eq!(d.strings[0], "");
        let mut sorted = d.strings.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), d.strings.len(), "{:?}", d.strings);
        // "malloc" is a frame and a probe label: one string serves both.
        assert_eq!(d.strings.iter().filter(|s| *s == "malloc").count(), 1);
    }

    #[test]
    fn bytes_only_where_the_capture_has_sizes() {
        let mut p = Profile::new();
        p.add(["p", "main", "malloc"], Weight::new(4, 0));
        let d = decode(&encode(&p, &PprofOptions::default()).unwrap()).unwrap();
        assert_eq!(d.sample_types.len(), 1);
        assert_eq!(d.samples[0].values, [4]);
        // Bytes only (a folded file read as bytes): samples of 0 bytes are left out.
        let mut b = Profile::new();
        b.bytes_known = true;
        b.add(["p", "main", "malloc"], Weight::new(0, 64));
        b.add(["p", "main", "free"], Weight::new(0, 0));
        let options = PprofOptions {
            sample_types: vec![WeightKind::Bytes],
            ..PprofOptions::default()
        };
        let d = decode(&encode(&b, &options).unwrap()).unwrap();
        assert_eq!(d.sample_types, [("alloc_space".into(), "bytes".into())]);
        assert_eq!(
            d.default_sample_type, None,
            "one type: the last, the default for every reader"
        );
        assert_eq!(d.samples.len(), 1);
        assert_eq!(d.samples[0].values, [64]);
    }

    #[test]
    fn times_and_comments_are_kept() {
        let options = PprofOptions {
            time_nanos: 1_700_000_000_000_000_000,
            duration_nanos: 2_500_000_000,
            comments: vec!["allocflame record -- ./app".into()],
            default_type: Some(WeightKind::Bytes),
            ..PprofOptions::default()
        };
        let d = decode(&encode(&sample_profile(), &options).unwrap()).unwrap();
        assert_eq!(d.time_nanos, options.time_nanos);
        assert_eq!(d.duration_nanos, options.duration_nanos);
        assert_eq!(d.comments, options.comments);
        assert_eq!(d.default_sample_type.as_deref(), Some("alloc_space"));
        assert_eq!(d.sample_types[1].0, "alloc_space");
        assert_eq!(d.strings[1], "alloc_space");
        assert_eq!(d.samples[0].values, [3, 96]);
    }

    #[test]
    fn an_empty_profile_is_an_error_that_says_why() {
        let err = encode(&Profile::new(), &PprofOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err}");
        assert!(
            err.to_string().contains("no pprof file was written"),
            "{err}"
        );
    }

    #[test]
    fn counts_beyond_int64_are_an_error() {
        let mut p = Profile::new();
        p.add(["p", "malloc"], Weight::new(u64::MAX, 0));
        let err = encode(&p, &PprofOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 9223372036854775807"), "{err}");
    }

    #[test]
    fn import_reads_what_encode_wrote_and_refuses_other_profiles() {
        let p = sample_profile();
        let q = import(&encode(&p, &PprofOptions::default()).unwrap(), "x.pb.gz").unwrap();
        assert_eq!(q.folded_lines(), p.folded_lines());
        assert!(q.bytes_known && q.has_pids() && q.has_probes());
        // A CPU profile, hand-made: one sample type, samples/count.
        let mut cpu = Vec::new();
        let mut vt = Vec::new();
        put_int(&mut vt, field::VT_TYPE, 1);
        put_int(&mut vt, field::VT_UNIT, 2);
        put_bytes(&mut cpu, field::SAMPLE_TYPE, &vt);
        for s in ["", "samples", "count"] {
            put_bytes(&mut cpu, field::STRING_TABLE, s.as_bytes());
        }
        let err = import(&cpu, "cpu.pb").unwrap_err().to_string();
        assert!(
            err.starts_with("cpu.pb: a pprof profile of samples/count, not of allocations"),
            "{err}"
        );
        let err = import(b"\x0a\x05ab", "cut.pb").unwrap_err().to_string();
        assert!(
            err.starts_with("cut.pb: not a readable pprof profile"),
            "{err}"
        );
    }

    /// A profile as Go writes them: a location of an inlined call holds several lines
    /// (innermost first), an unsymbolized one none; values may be negative after -diff_base.
    #[test]
    fn inlined_lines_are_frames_and_addresses_name_unsymbolized_locations() {
        let message = |value: i64| {
            let strings = ["", "alloc_objects", "count", "inner", "outer", "main"];
            let mut m = Vec::new();
            let mut vt = Vec::new();
            put_int(&mut vt, field::VT_TYPE, 1);
            put_int(&mut vt, field::VT_UNIT, 2);
            put_bytes(&mut m, field::SAMPLE_TYPE, &vt);
            let mut sample = Vec::new();
            let mut buf = Vec::new();
            put_packed(
                &mut sample,
                field::S_LOCATION_ID,
                [1u64, 2].into_iter(),
                &mut buf,
            );
            put_packed(
                &mut sample,
                field::S_VALUE,
                [value as u64].into_iter(),
                &mut buf,
            );
            put_bytes(&mut m, field::SAMPLE, &sample);
            // Location 1: `inner` inlined into `outer`; location 2: an address only.
            let mut loc = Vec::new();
            put_uint(&mut loc, field::LOC_ID, 1);
            for f in [1u64, 2] {
                let mut line = Vec::new();
                put_uint(&mut line, field::LINE_FUNCTION_ID, f);
                put_bytes(&mut loc, field::LOC_LINE, &line);
            }
            put_bytes(&mut m, field::LOCATION, &loc);
            let mut loc = Vec::new();
            put_uint(&mut loc, field::LOC_ID, 2);
            put_uint(&mut loc, field::LOC_ADDRESS, 0x4a10);
            put_bytes(&mut m, field::LOCATION, &loc);
            for (id, name) in [(1u64, 3i64), (2, 4)] {
                let mut f = Vec::new();
                put_uint(&mut f, field::F_ID, id);
                put_int(&mut f, field::F_NAME, name);
                put_bytes(&mut m, field::FUNCTION, &f);
            }
            for s in strings {
                put_bytes(&mut m, field::STRING_TABLE, s.as_bytes());
            }
            m
        };
        let p = import(&message(7), "go.pb").unwrap();
        assert_eq!(
            p.folded_lines(),
            [("0x4a10;outer;inner".to_owned(), Weight::new(7, 0))]
        );
        assert!(!p.bytes_known);
        let err = import(&message(-3), "diff.pb").unwrap_err().to_string();
        assert!(err.contains("negative values"), "{err}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let good = encode_uncompressed(&sample_profile(), &PprofOptions::default()).unwrap();
        for cut in 0..good.len() {
            // Any prefix either decodes or is an error; none panics.
            let _ = decode(&good[..cut]);
        }
        assert!(decode(&[0x1f, 0x8b, 0, 1]).is_err());
        assert!(decode(&[0x0a, 0xff]).is_err());
    }
}
