//! DTrace aggregation output → [`Profile`].
//!
//! Reads what `printa` prints for aggregations keyed by stacks, such as
//! `@[ustack()] = count();`, `@[stack(), ustack()] = count();` or
//! `printa("%k %@d %@d\n", @count, @bytes);`: each record is the frames of its key, one per
//! line and leaf first (a kernel `stack()` and a user `ustack()` in one key are separated by a
//! blank line), then a line with one or more whole numbers, the aggregation values.
//!
//! ```text
//! CPU     ID                    FUNCTION:NAME
//!   0  64091                        :tick-60s
//!
//!               libsystem_malloc.dylib`malloc_type_malloc
//!               libswiftCore.dylib`swift_allocObject+0x30
//!               do_some_allocs`main+0x1c
//!             10000
//! ```
//!
//! Banner lines (`CPU ID FUNCTION:NAME`, `dtrace: description … matched N probes`, whatever a
//! D script prints with `printf`) are text, not frames: a frame line holds ``module`symbol``
//! or is a raw `0x…` address. A paragraph with text in it is ignored; when it also holds
//! frames and a count after the first record it is counted in [`Profile::skipped`], and more
//! than 1% of skipped records is an error. An input with no record at all is an error.
//!
//! [`parse`] folds the records the way inferno's `collapse-dtrace` does (offsets dropped,
//! C++ argument lists removed, half-demangled Rust names fixed, `->` inline chains split);
//! [`parse_records`] gives the records with only the `+0x…` offsets dropped, for backends.

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::profile::{shorten, FrameId, Profile, Weight};

/// Options of the DTrace importer.
#[derive(Clone, Debug, Default)]
pub struct DtraceOptions {
    /// Keep the `+0x…` offsets of every frame but the leaf, as inferno's `includeoffset`.
    /// Default is `false`.
    pub include_offset: bool,
    /// A frame put at the root of every stack, such as the process name (a `ustack()` key does
    /// not carry it; perf captures and allocflame's own recordings start with it). Default is
    /// `None`: stacks start at their outermost frame, as inferno folds them.
    pub root: Option<String>,
    /// Count an allocation once, at its outermost probed call: a record with a probed
    /// function (one that is the leaf of some record) among its callers is left out, as when
    /// macOS `malloc` calls `malloc_zone_malloc` and both are probed. Only for captures of
    /// entry probes, whose leaf is the probed function. Default is `false`.
    pub outermost_only: bool,
}

/// One aggregation record: the frames of its stack key and its values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtraceRecord {
    /// The frames, leaf first, as DTrace printed them (``module`symbol`` or a raw `0x…`
    /// address) with any `+0x…` offset dropped. A kernel `stack()` and a user `ustack()` in
    /// one key follow each other (kernel first, as DTrace prints them). Empty when the key's
    /// stacks were empty.
    pub frames: Vec<String>,
    /// The aggregation values printed after the stack, in order (for example the count, or
    /// the count and a byte sum for `printa("%k %@d %@d\n", @count, @bytes)`). Never empty.
    pub values: Vec<u64>,
}

/// Whether `line` looks like part of DTrace output: a ``module`symbol`` frame, the
/// `CPU ID FUNCTION:NAME` banner or a `dtrace:` message.
pub fn looks_like_dtrace(line: &str) -> bool {
    let t = line.trim();
    if t.starts_with("dtrace:") {
        return true;
    }
    if t.starts_with("CPU") && t.contains("FUNCTION:NAME") {
        return true;
    }
    matches!(classify(t), Line::Frame(_, None))
        && t.contains('`')
        && !t.contains(';')
        && line.starts_with(char::is_whitespace)
}

/// Parses DTrace `printa` output into records; see the [module docs](self). `file` names the
/// input in errors.
///
/// Text lines between records (banners, `printf` output) are not returned. A D script that
/// prints several aggregations one after the other (`printa(@count); printa(@bytes);`) gives
/// their records in that order; print them with one `printa("%k %@d %@d\n", @count, @bytes)`
/// to get both values in one record, or split the text at a marker line of your own and parse
/// each part. See [`drops`] for the loss DTrace reports.
///
/// ```
/// use allocflame_core::import::dtrace::parse_records;
/// let text = "CPU     ID                    FUNCTION:NAME\n\n\
///             \x20 libc.so.1`malloc\n  a.out`main+0x10\n   12   4096\n";
/// let records = parse_records(text, "x.out").unwrap();
/// assert_eq!(records[0].frames, ["libc.so.1`malloc", "a.out`main"]);
/// assert_eq!(records[0].values, [12, 4096]);
/// ```
pub fn parse_records(text: &str, file: &str) -> Result<Vec<DtraceRecord>> {
    let mut out = Vec::new();
    scan(text, file, |frames, values, _| {
        out.push(DtraceRecord {
            frames: frames.iter().map(|f| drop_offset(f).to_owned()).collect(),
            values: values.to_vec(),
        });
    })?;
    Ok(out)
}

/// The events DTrace says it dropped: the sum of its `dtrace: N drops on CPU c`,
/// `dtrace: N dynamic variable drops`, `dtrace: N aggregation drops …` messages (they are on
/// dtrace's stderr; captures made with `2>&1` hold them). [`parse`] puts this in
/// [`Profile::lost`].
///
/// ```
/// use allocflame_core::import::dtrace::drops;
/// assert_eq!(drops("dtrace: 12 drops on CPU 0\ndtrace: 3 aggregation drops on CPU 1\n"), 15);
/// ```
pub fn drops(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("dtrace:"))
        .filter(|rest| rest.contains("drop"))
        .filter_map(|rest| rest.split_ascii_whitespace().next()?.parse::<u64>().ok())
        .fold(0u64, u64::saturating_add)
}

/// Parses DTrace `printa` output into a profile. The first value of each record is its
/// number of allocations; a second value, when every record has one, is its bytes
/// ([`Profile::bytes_known`]). A record with an empty stack counts under `[unknown]`.
pub fn parse(text: &str, file: &str, options: &DtraceOptions) -> Result<Profile> {
    let mut profile = Profile::new();
    let mut cache: FxHashMap<(&str, bool), (u32, u32)> = FxHashMap::default();
    let mut cached: Vec<FrameId> = Vec::new();
    let mut ids: Vec<FrameId> = Vec::new();
    let mut pieces: Vec<String> = Vec::new();
    let mut records = 0u64;
    let mut with_bytes = 0u64;
    let root = options.root.as_deref().map(|r| profile.intern(r));
    let mut all: Vec<(Vec<&str>, Vec<u64>, usize)> = Vec::new();
    profile.skipped = scan(text, file, |frames, values, lineno| {
        all.push((frames.to_vec(), values.to_vec(), lineno));
    })?;
    let mut total = Weight::default();
    let probed: rustc_hash::FxHashSet<&str> = if options.outermost_only {
        all.iter()
            .filter_map(|(frames, _, _)| frames.first().and_then(|f| symbol(f)))
            .map(crate::once::base_name)
            .collect()
    } else {
        Default::default()
    };
    for (frames, values, lineno) in &all {
        // `scan` hands over records with at least one value; a record without any carries no
        // count and is skipped rather than trusted.
        let Some(&allocs) = values.first() else {
            profile.skipped += 1;
            continue;
        };
        if !probed.is_empty()
            && crate::once::called_from_probed(
                frames.iter().skip(1).filter_map(|f| symbol(f)),
                &probed,
            )
        {
            continue;
        }
        records += 1;
        ids.clear();
        for (i, frame) in frames.iter().enumerate() {
            let leaf = options.include_offset && i == 0;
            let (start, len) = *cache.entry((frame, leaf)).or_insert_with(|| {
                pieces.clear();
                tidy(frame, options.include_offset, &mut pieces);
                if leaf {
                    if let Some(last) = pieces.last_mut() {
                        let cut = last.rfind('+').unwrap_or(last.len());
                        last.truncate(cut);
                    }
                }
                let start = cached.len() as u32;
                for p in &pieces {
                    cached.push(profile.intern(p));
                }
                (start, pieces.len() as u32)
            });
            ids.extend(cached[start as usize..(start + len) as usize].iter().rev());
        }
        if ids.is_empty() {
            ids.push(profile.intern("[unknown]"));
        }
        ids.extend(root);
        ids.reverse();
        let bytes = values.get(1).copied();
        if bytes.is_some() {
            with_bytes += 1;
        }
        let weight = Weight::new(allocs, bytes.unwrap_or(0));
        super::add_to_total(&mut total, weight, file, *lineno)?;
        profile.add_ids(ids.as_slice(), weight);
    }
    profile.bytes_known = records > 0 && with_bytes == records;
    profile.lost = drops(text);
    Ok(profile)
}

/// What one trimmed line is.
enum Line<'a> {
    Blank,
    /// Aggregation values.
    Values,
    /// A frame, maybe followed by values on the same line (byte offset where they start).
    Frame(&'a str, Option<usize>),
    Text,
}

fn is_hex_address(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_frame(s: &str) -> bool {
    s.contains('`') || is_hex_address(s)
}

fn all_numbers(s: &str) -> bool {
    let mut any = false;
    for tok in s.split_ascii_whitespace() {
        if tok.len() > 20 || !tok.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        any = true;
    }
    any
}

fn classify(t: &str) -> Line<'_> {
    if t.is_empty() {
        return Line::Blank;
    }
    let first = t.as_bytes()[0];
    if first.is_ascii_digit() && all_numbers(t) {
        return Line::Values;
    }
    if is_frame(t) {
        // `printa("%k %@d\n")` may leave the values on the stack's last line.
        let mut cut = t.len();
        let mut rest = t;
        while let Some((head, tail)) = rest.rsplit_once(|c: char| c.is_ascii_whitespace()) {
            if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) || tail.len() > 20 {
                break;
            }
            cut = head.len();
            rest = head.trim_end();
        }
        if cut < t.len() && is_frame(rest) && all_numbers(&t[cut..]) {
            return Line::Frame(rest, Some(cut));
        }
        return Line::Frame(t, None);
    }
    Line::Text
}

fn parse_values(s: &str, out: &mut Vec<u64>) -> bool {
    out.clear();
    for tok in s.split_ascii_whitespace() {
        match tok.parse() {
            Ok(v) => out.push(v),
            Err(_) => return false,
        }
    }
    !out.is_empty()
}

/// Walks the records of `text`, calling `record(frames leaf first, values)` for each; returns
/// how many were skipped, or an error if too many were or if there was none.
/// Hands each record (its frames, values and the line of its values) to `record`.
fn scan<'t>(
    text: &'t str,
    file: &str,
    mut record: impl FnMut(&[&'t str], &[u64], usize),
) -> Result<u64> {
    let mut frames: Vec<&'t str> = Vec::new();
    let mut values: Vec<u64> = Vec::new();
    let mut text_in_group = false;
    let mut group_start = 0usize;
    let mut records = 0u64;
    let mut skipped = 0u64;
    let mut first_bad: Option<(usize, String)> = None;
    let mut any_content = false;
    let mut bad = |lineno: usize, what: String, skipped: &mut u64| {
        *skipped += 1;
        if first_bad.is_none() {
            first_bad = Some((lineno, what));
        }
    };
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let t = raw.trim();
        match classify(t) {
            Line::Blank => {
                if text_in_group {
                    if !frames.is_empty() && records > 0 {
                        bad(
                            group_start,
                            "a stack mixed with text lines".into(),
                            &mut skipped,
                        );
                    }
                    frames.clear();
                    text_in_group = false;
                }
            }
            Line::Text => {
                any_content = true;
                if !text_in_group && frames.is_empty() {
                    group_start = lineno;
                }
                text_in_group = true;
            }
            Line::Frame(f, vals) => {
                any_content = true;
                if frames.is_empty() && !text_in_group {
                    group_start = lineno;
                }
                frames.push(f);
                if vals.is_some_and(|cut| parse_values(&t[cut..], &mut values)) {
                    end_record(
                        &mut frames,
                        &values,
                        &mut text_in_group,
                        &mut records,
                        &mut record,
                        lineno,
                        &mut |what| bad(lineno, what, &mut skipped),
                    );
                }
            }
            Line::Values => {
                any_content = true;
                if !parse_values(t, &mut values) {
                    continue;
                }
                if text_in_group && frames.is_empty() {
                    // A number a D script printed among its banner lines.
                    text_in_group = false;
                    continue;
                }
                end_record(
                    &mut frames,
                    &values,
                    &mut text_in_group,
                    &mut records,
                    &mut record,
                    lineno,
                    &mut |what| bad(lineno, what, &mut skipped),
                );
            }
        }
    }
    if !frames.is_empty() && !text_in_group {
        bad(
            group_start,
            "the input ends in the middle of a stack (no count after it)".into(),
            &mut skipped,
        );
    }
    if records == 0 && skipped == 0 {
        if !any_content {
            return Ok(0);
        }
        return Err(Error::Format {
            file: file.to_owned(),
            message: "no DTrace aggregation record found: expected stack frames (``module`symbol+0x…``), one per line, each stack followed by a line with its count".into(),
        });
    }
    super::check_skipped(file, records + skipped, skipped, first_bad, "records")?;
    Ok(skipped)
}

fn end_record<'t>(
    frames: &mut Vec<&'t str>,
    values: &[u64],
    text_in_group: &mut bool,
    records: &mut u64,
    record: &mut impl FnMut(&[&'t str], &[u64], usize),
    lineno: usize,
    bad: &mut impl FnMut(String),
) {
    if *text_in_group {
        bad(format!(
            "a stack mixed with text lines before its count {}",
            shorten(&format!("{values:?}"), 40)
        ));
    } else {
        record(frames, values, lineno);
        *records += 1;
    }
    frames.clear();
    *text_in_group = false;
}

/// The symbol of a ``module`symbol+0x…`` frame, without module and offset; `None` for raw
/// addresses.
fn symbol(frame: &str) -> Option<&str> {
    let sym = drop_offset(frame.split_once('`')?.1);
    (!is_hex_address(sym)).then_some(sym)
}

/// `frame` without a trailing `+0x…` offset.
fn drop_offset(frame: &str) -> &str {
    match frame.rfind('+') {
        Some(i) if is_hex_address(&frame[i + 1..]) => &frame[..i],
        _ => frame,
    }
}

/// `s/(::.*)[(<].*/$1/`: C++ argument lists and template arguments after the first scope.
fn uncpp(frame: &str) -> &str {
    match frame.find("::") {
        Some(scope) => match frame[scope + 2..].rfind(['(', '<']) {
            Some(open) => &frame[..scope + 2 + open],
            None => frame,
        },
        None => frame,
    }
}

/// One frame line, tidied as inferno's `collapse-dtrace` does, into `out` (root first: more
/// than one piece when the line is a `->` inline chain).
fn tidy(line: &str, include_offset: bool, out: &mut Vec<String>) {
    let (inlines, cpp, semicolon, mut frame) = if include_offset {
        (true, true, true, line)
    } else {
        let b = line.as_bytes();
        let mut inl = false;
        let mut cpp = false;
        let mut semi = false;
        let mut last_plus = b.len();
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'>' if i > 0 && b[i - 1] == b'-' => inl = true,
                b':' if i > 0 && b[i - 1] == b':' => cpp = true,
                b';' => semi = true,
                b'+' => last_plus = i,
                _ => {}
            }
        }
        (inl, cpp, semi, &line[..last_plus])
    };
    if cpp {
        frame = uncpp(frame);
    }
    let fixed: std::borrow::Cow<'_, str> = if frame.is_empty() {
        "-".into()
    } else {
        fix_rust(frame, include_offset)
    };
    if inlines {
        for (i, func) in fixed.split("->").enumerate() {
            let func = func.trim_start_matches('L');
            let mut s = if semicolon {
                func.replace(';', ":")
            } else {
                func.to_owned()
            };
            if i > 0 {
                s.push_str("_[i]");
            }
            out.push(s);
        }
    } else if semicolon {
        out.push(fixed.replace(';', ":"));
    } else {
        out.push(fixed.into_owned());
    }
}

/// Fixes a half-demangled Rust name after the module's backquote.
fn fix_rust(frame: &str, include_offset: bool) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some((module, func)) = frame.split_once('`') else {
        return Cow::Borrowed(frame);
    };
    if include_offset {
        if let Some((func, offset)) = func.rsplit_once('+') {
            return match super::fix_rust_symbol(func.trim_end()) {
                Cow::Owned(f) => Cow::Owned(format!("{module}`{f}+{offset}")),
                Cow::Borrowed(_) => Cow::Borrowed(frame),
            };
        }
    }
    match super::fix_rust_symbol(func.trim_end()) {
        Cow::Owned(f) => Cow::Owned(format!("{module}`{f}")),
        Cow::Borrowed(_) => Cow::Borrowed(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_banner_and_two_values() {
        let text = "dtrace: description 'pid$target::malloc:entry ' matched 1 probe\n\
                    CPU     ID                    FUNCTION:NAME\n  0  64091   :tick-60s\n\n\
                    \x20  libc`malloc+0x1\n   a.out`main+0x10\n   3 96\n\n\
                    \x20  0x1234\n   7\n";
        let r = parse_records(text, "t").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].frames, ["libc`malloc", "a.out`main"]);
        assert_eq!(r[0].values, [3, 96]);
        assert_eq!(r[1].frames, ["0x1234"]);
        let p = parse(text, "t", &DtraceOptions::default()).unwrap();
        assert_eq!(p.total(), Weight::new(10, 96));
        assert!(!p.bytes_known);
        let options = DtraceOptions {
            root: Some("a.out".into()),
            ..DtraceOptions::default()
        };
        let p = parse(text, "t", &options).unwrap();
        assert_eq!(
            p.folded_lines()[1].0,
            "a.out;a.out`main;libc`malloc",
            "{:?}",
            p.folded_lines()
        );
    }

    #[test]
    fn outermost_only() {
        let text = "\n  libsystem_malloc.dylib`malloc_zone_malloc\n  libsystem_malloc.dylib`malloc+0x10\n  a`main+0x4\n  5\n\
                    \n  libsystem_malloc.dylib`malloc\n  a`main+0x4\n  5\n\
                    \n  libsystem_malloc.dylib`malloc_zone_malloc\n  a`f+0x8\n  a`main+0x8\n  2\n";
        let all = parse(text, "t", &DtraceOptions::default()).unwrap();
        assert_eq!(all.total().allocs, 12);
        let options = DtraceOptions {
            outermost_only: true,
            ..DtraceOptions::default()
        };
        let outer = parse(text, "t", &options).unwrap();
        assert_eq!(outer.total().allocs, 7);
        assert_eq!(outer.len(), 2);
    }

    #[test]
    fn values_on_the_last_frame_line() {
        let r = parse_records("\n  libc`malloc\n  a.out`main+0x4 5 80\n", "t").unwrap();
        assert_eq!(r[0].frames, ["libc`malloc", "a.out`main"]);
        assert_eq!(r[0].values, [5, 80]);
    }

    #[test]
    fn no_records_is_an_error() {
        assert!(parse_records("hello\nworld\n", "t").is_err());
        assert!(parse_records("", "t").unwrap().is_empty());
    }
}
