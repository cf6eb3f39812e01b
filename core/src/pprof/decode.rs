//! Reading pprof files: the [`decode`]r (sample types, samples with their stacks as names,
//! labels, table sizes) and the [`import`]er of allocation profiles into a [`Profile`].

use rustc_hash::FxHashMap;

use super::{field, sample_type};
use crate::error::{Error, Result};
use crate::profile::{Profile, Weight, WeightKind};

/// A label of a decoded sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelValue {
    /// A string label (`probe`).
    Str(String),
    /// A numeric label (`pid`).
    Num(i64),
}

/// A decoded sample: its stack as function names (leaf first, as stored), its values (one per
/// sample type) and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedSample {
    /// Function names, leaf first (the first line of each location).
    pub stack: Vec<String>,
    /// One value per sample type.
    pub values: Vec<i64>,
    /// The labels, in stored order.
    pub labels: Vec<(String, LabelValue)>,
}

/// What a pprof file holds, as far as allocflame writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// (type, unit) of each sample type.
    pub sample_types: Vec<(String, String)>,
    /// The samples.
    pub samples: Vec<DecodedSample>,
    /// The string table.
    pub strings: Vec<String>,
    /// Number of `Function` messages.
    pub functions: usize,
    /// Number of `Location` messages.
    pub locations: usize,
    /// The default sample type's name, if set.
    pub default_sample_type: Option<String>,
    /// Start time, nanoseconds since the epoch.
    pub time_nanos: i64,
    /// Duration in nanoseconds.
    pub duration_nanos: i64,
    /// The comments.
    pub comments: Vec<String>,
}

impl Decoded {
    /// The samples as a [`Profile`] (stacks root first, pid and probe labels kept), taking the
    /// values of the `alloc_objects` and `alloc_space` sample types (0 where a type is absent;
    /// negative values count as 0, sums saturate: [`import`] checks both).
    pub fn to_profile(&self) -> Profile {
        let idx = |kind: WeightKind| {
            let name = sample_type(kind).0;
            self.sample_types.iter().position(|(t, _)| t == name)
        };
        let (a, b) = (idx(WeightKind::Allocations), idx(WeightKind::Bytes));
        let mut p = Profile::new();
        p.bytes_known = b.is_some();
        for s in &self.samples {
            let get = |i: Option<usize>| {
                i.and_then(|i| s.values.get(i))
                    .map_or(0, |&v| u64::try_from(v).unwrap_or(0))
            };
            let mut labels = crate::Labels::default();
            for (k, v) in &s.labels {
                match (k.as_str(), v) {
                    ("pid", LabelValue::Num(n)) => labels.pid = u32::try_from(*n).ok(),
                    ("probe", LabelValue::Str(s)) => labels.probe = Some(s.as_str().into()),
                    _ => {}
                }
            }
            p.add_labeled(s.stack.iter().rev(), &labels, Weight::new(get(a), get(b)));
        }
        p
    }
}

/// Reads a pprof profile of allocations (allocflame's own, or Go's heap and allocation
/// profiles: the `alloc_objects` and `alloc_space` sample types) as a [`Profile`], keeping the
/// `pid` and `probe` labels. `file` names the input in errors. A profile of something else (CPU
/// time, in-use memory only) or with negative values (a difference of two profiles) is an
/// [`Error::Format`] that says so.
pub fn import(bytes: &[u8], file: &str) -> Result<Profile> {
    let named = |e: Error| match e {
        Error::Format { message, .. } => Error::Format {
            file: file.to_owned(),
            message: format!("not a readable pprof profile: {message}"),
        },
        Error::Unpack { source, .. } => Error::Unpack {
            file: file.to_owned(),
            source,
        },
        other => other,
    };
    let d = decode(bytes).map_err(named)?;
    let has = |name: &str| d.sample_types.iter().any(|(t, _)| t == name);
    if !has("alloc_objects") && !has("alloc_space") {
        let types: Vec<String> = d
            .sample_types
            .iter()
            .map(|(t, u)| format!("{t}/{u}"))
            .collect();
        return Err(Error::Format {
            file: file.to_owned(),
            message: format!(
                "a pprof profile of {}, not of allocations: allocflame reads the sample types alloc_objects and alloc_space",
                if types.is_empty() { "nothing".into() } else { types.join(", ") }
            ),
        });
    }
    if d.samples.iter().any(|s| s.values.iter().any(|&v| v < 0)) {
        return Err(Error::Format {
            file: file.to_owned(),
            message: "a pprof profile with negative values (a difference of two profiles?): give allocflame diff the two profiles instead".into(),
        });
    }
    // Counts that add up to more than a u64 are refused (to_profile would saturate).
    let mut sum = Weight::default();
    for (n, s) in d.samples.iter().enumerate() {
        let value = |name: &str| -> u64 {
            d.sample_types
                .iter()
                .position(|(t, _)| t == name)
                .and_then(|i| s.values.get(i))
                .map_or(0, |&v| v.unsigned_abs())
        };
        let w = Weight::new(value("alloc_objects"), value("alloc_space"));
        // The "line" of a binary input: the sample's number.
        crate::import::add_to_total(&mut sum, w, file, n + 1)?;
    }
    Ok(d.to_profile())
}

fn bad(message: impl Into<String>) -> Error {
    Error::Format {
        file: "pprof".into(),
        message: message.into(),
    }
}

/// A protobuf field as read: its number and value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("cut short inside a varint"))?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(bad("a varint longer than 10 bytes"))
    }

    fn next(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| bad("field number out of range"))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if self.buf.len() < n {
                    return Err(bad("cut short inside a fixed-size field"));
                }
                self.buf = &self.buf[n..];
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length too large"))?;
                if self.buf.len() < len {
                    return Err(bad("cut short inside a length-delimited field"));
                }
                let (b, rest) = self.buf.split_at(len);
                self.buf = rest;
                Value::Bytes(b)
            }
            w => return Err(bad(format!("unknown wire type {w}"))),
        };
        Ok(Some((field, value)))
    }
}

/// Every field of a message.
fn fields(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

/// Repeated varints, packed or not.
fn push_varints(value: &Value<'_>, out: &mut Vec<u64>) -> Result<()> {
    match value {
        Value::Varint(v) => out.push(*v),
        Value::Bytes(b) => {
            let mut r = Reader { buf: b };
            while !r.buf.is_empty() {
                out.push(r.varint()?);
            }
        }
        Value::Fixed => return Err(bad("a fixed-size value where a varint was expected")),
    }
    Ok(())
}

fn varint_of(value: &Value<'_>) -> Result<u64> {
    match value {
        Value::Varint(v) => Ok(*v),
        _ => Err(bad("a length-delimited value where a varint was expected")),
    }
}

fn bytes_of<'a>(value: &Value<'a>) -> Result<&'a [u8]> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad("a varint where a message was expected")),
    }
}

/// Decodes a pprof file (gzipped or not): sample types, samples with their stacks as function
/// names, labels, and the sizes of the tables. Input that is not a well-formed profile is an
/// [`Error::Format`]; indices out of range are errors too, never panics.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let unpacked = crate::import::gunzip(bytes, "pprof")?;
    let bytes = &unpacked[..];
    let top = fields(bytes)?;
    let mut strings = Vec::new();
    for (f, v) in &top {
        if *f == field::STRING_TABLE {
            let b = bytes_of(v)?;
            strings.push(
                std::str::from_utf8(b)
                    .map_err(|_| bad("a string that is not UTF-8"))?
                    .to_owned(),
            );
        }
    }
    let string = |i: u64| -> Result<String> {
        usize::try_from(i)
            .ok()
            .and_then(|i| strings.get(i))
            .cloned()
            .ok_or_else(|| bad(format!("string index {i} out of range")))
    };
    let mut d = Decoded::default();
    let mut function_names: FxHashMap<u64, String> = FxHashMap::default();
    // Each location's functions, innermost (inlined) first, or its address when it has none.
    let mut location_functions: FxHashMap<u64, (Vec<u64>, u64)> = FxHashMap::default();
    let mut raw_samples = Vec::new();
    for (f, v) in &top {
        match *f {
            field::SAMPLE_TYPE => {
                let (mut t, mut u) = (0, 0);
                for (g, w) in fields(bytes_of(v)?)? {
                    match g {
                        field::VT_TYPE => t = varint_of(&w)?,
                        field::VT_UNIT => u = varint_of(&w)?,
                        _ => {}
                    }
                }
                d.sample_types.push((string(t)?, string(u)?));
            }
            field::SAMPLE => raw_samples.push(bytes_of(v)?),
            field::LOCATION => {
                d.locations += 1;
                let (mut id, mut address, mut funcs) = (0, 0, Vec::new());
                for (g, w) in fields(bytes_of(v)?)? {
                    match g {
                        field::LOC_ID => id = varint_of(&w)?,
                        field::LOC_ADDRESS => address = varint_of(&w)?,
                        field::LOC_LINE => {
                            for (h, x) in fields(bytes_of(&w)?)? {
                                if h == field::LINE_FUNCTION_ID {
                                    funcs.push(varint_of(&x)?);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                location_functions.insert(id, (funcs, address));
            }
            field::FUNCTION => {
                d.functions += 1;
                let (mut id, mut name) = (0, 0);
                for (g, w) in fields(bytes_of(v)?)? {
                    match g {
                        field::F_ID => id = varint_of(&w)?,
                        field::F_NAME => name = varint_of(&w)?,
                        _ => {}
                    }
                }
                function_names.insert(id, string(name)?);
            }
            field::TIME_NANOS => d.time_nanos = varint_of(v)? as i64,
            field::DURATION_NANOS => d.duration_nanos = varint_of(v)? as i64,
            field::COMMENT => {
                let mut ids = Vec::new();
                push_varints(v, &mut ids)?;
                for i in ids {
                    d.comments.push(string(i)?);
                }
            }
            field::DEFAULT_SAMPLE_TYPE => {
                d.default_sample_type = Some(string(varint_of(v)?)?);
            }
            _ => {}
        }
    }
    for s in raw_samples {
        let mut locations = Vec::new();
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for (g, w) in fields(s)? {
            match g {
                field::S_LOCATION_ID => push_varints(&w, &mut locations)?,
                field::S_VALUE => push_varints(&w, &mut values)?,
                field::S_LABEL => {
                    let (mut key, mut s, mut n) = (0, 0, None);
                    for (h, x) in fields(bytes_of(&w)?)? {
                        match h {
                            field::L_KEY => key = varint_of(&x)?,
                            field::L_STR => s = varint_of(&x)?,
                            field::L_NUM => n = Some(varint_of(&x)? as i64),
                            _ => {}
                        }
                    }
                    let value = match n {
                        Some(n) if s == 0 => LabelValue::Num(n),
                        _ => LabelValue::Str(string(s)?),
                    };
                    labels.push((string(key)?, value));
                }
                _ => {}
            }
        }
        // A location of inlined calls is several frames, innermost first; one without
        // functions (not symbolized) is named by its address.
        let mut stack = Vec::with_capacity(locations.len());
        for l in &locations {
            let (funcs, address) = location_functions.get(l).ok_or_else(|| {
                bad(format!(
                    "a sample refers to location {l}, which is not in the profile"
                ))
            })?;
            if funcs.is_empty() {
                stack.push(format!("{address:#x}"));
            }
            for f in funcs {
                stack.push(function_names.get(f).cloned().ok_or_else(|| {
                    bad(format!(
                        "location {l} refers to function {f}, which is not in the profile"
                    ))
                })?);
            }
        }
        d.samples.push(DecodedSample {
            stack,
            values: values.into_iter().map(|v| v as i64).collect(),
            labels,
        });
    }
    d.strings = strings;
    Ok(d)
}
