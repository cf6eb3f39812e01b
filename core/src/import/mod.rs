//! Importers: captures made with other tools become a [`Profile`].
//!
//! - `perf script` text of uprobe (or any) events, frame-pointer or DWARF stacks ([`perf`]);
//! - DTrace `printa` output of `@[ustack()] = count()` aggregations ([`dtrace`]);
//! - FlameGraph folded files ([`Profile::read_folded`]);
//! - pprof profiles of allocations ([`crate::pprof::import`]).

pub mod dtrace;
pub mod perf;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::profile::{Profile, Weight, WeightKind};

/// The input formats allocflame reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `perf script` output.
    PerfScript,
    /// DTrace aggregation output.
    Dtrace,
    /// FlameGraph folded stacks.
    Folded,
    /// A pprof profile of allocations (gzipped profile.proto; see [`crate::pprof::import`]).
    Pprof,
}

impl Format {
    /// The name used on the command line (`perf-script`, `dtrace`, `folded`).
    pub const fn name(self) -> &'static str {
        match self {
            Format::PerfScript => "perf-script",
            Format::Dtrace => "dtrace",
            Format::Folded => "folded",
            Format::Pprof => "pprof",
        }
    }
}

/// Guesses the format of `text` from its first meaningful lines, or `None` if it looks like
/// none of them.
pub fn detect(text: &str) -> Option<Format> {
    // perf script's `# ========` header (one line per CPU with `--header`) and comments are
    // skipped without counting against the 64 lines looked at.
    let lines = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    for line in lines.take(64) {
        if crate::profile::parse_folded_line(line).is_some()
            && !line.starts_with(char::is_whitespace)
            && line.contains(';')
        {
            return Some(Format::Folded);
        }
        if perf::looks_like_event_header(line) {
            return Some(Format::PerfScript);
        }
        if dtrace::looks_like_dtrace(line) {
            return Some(Format::Dtrace);
        }
        if crate::profile::parse_folded_line(line).is_some()
            && !line.starts_with(char::is_whitespace)
        {
            return Some(Format::Folded);
        }
    }
    None
}

/// `bytes` unpacked when they are gzip-compressed (by their magic number), else as they are;
/// `file` names them in the error of a cut or corrupt stream.
pub(crate) fn gunzip<'a>(bytes: &'a [u8], file: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.into());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| Error::Unpack {
            file: file.to_owned(),
            source,
        })?;
    Ok(out.into())
}

/// Reads a capture held in memory. `file` names it in errors; `format` is guessed when `None`.
/// Gzip-compressed input is unpacked first.
pub fn read_bytes(bytes: &[u8], file: &str, format: Option<Format>) -> Result<Profile> {
    let unpacked = gunzip(bytes, file)?;
    let bytes = &unpacked[..];
    // pprof: asked for, or guessed from bytes that decode as a profile with sample types. A
    // small profile can be all ASCII, so whether the bytes are text decides nothing; a text
    // capture never decodes (each of its bytes would have to fall into well-formed fields,
    // with lengths that end exactly at the end of the input) and fails within a few bytes.
    if format == Some(Format::Pprof)
        || (format.is_none()
            && crate::pprof::decode(bytes).is_ok_and(|d| !d.sample_types.is_empty()))
    {
        return crate::pprof::import(bytes, file);
    }
    let lossy;
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            // A stray byte in a process or symbol name must not sink a whole capture (perf
            // prints names as the kernel and the binaries hold them); binary data must fail:
            // more than one invalid sequence per 1000 bytes is not text.
            let text = String::from_utf8_lossy(bytes);
            let bad = text.matches('\u{FFFD}').count();
            if bad.saturating_mul(1000) > bytes.len() {
                return Err(Error::Format {
                    file: file.to_owned(),
                    message: format!(
                        "not a text capture (invalid UTF-8 at byte {}) nor a pprof profile; expected perf script, DTrace or folded text, or pprof",
                        e.valid_up_to()
                    ),
                });
            }
            lossy = text.into_owned();
            &lossy[..]
        }
    };
    let format = match format {
        Some(f) => f,
        None => detect(text).ok_or_else(|| Error::Format {
            file: file.to_owned(),
            message: "not a recognised capture: expected `perf script` output, DTrace aggregation output or folded stacks (say which with --from)".into(),
        })?,
    };
    let profile = match format {
        Format::PerfScript => perf::parse(text, file, &perf::PerfOptions::default())?,
        Format::Dtrace => dtrace::parse(text, file, &dtrace::DtraceOptions::default())?,
        Format::Folded => Profile::read_folded(text.as_bytes(), file, WeightKind::Allocations)?,
        Format::Pprof => crate::pprof::import(bytes, file)?,
    };
    Ok(profile)
}

/// Fails when more than 1% of the `total` records of an input were skipped, or when it had
/// records and every one was skipped; `first_bad` is the line and reason of the first.
pub(crate) fn check_skipped(
    file: &str,
    total: u64,
    skipped: u64,
    first_bad: Option<(usize, String)>,
    what: &str,
) -> Result<()> {
    if skipped == 0 || (skipped.saturating_mul(100) <= total && skipped < total) {
        return Ok(());
    }
    let (line, message) = first_bad.unwrap_or((0, String::new()));
    Err(Error::Parse {
        file: file.to_owned(),
        line,
        message: format!(
            "{message} ({skipped} of {total} {what} could not be read; more than 1% is treated as a wrong or damaged input)"
        ),
    })
}

/// Adds the weight of the record on `line` of `file` to the input's running `total`: an
/// input whose counts add up to more than a `u64` holds is an error naming the line where
/// they do, never a silently saturated total (every sum the profile makes, per stack or per
/// function, is at most the total).
pub(crate) fn add_to_total(total: &mut Weight, w: Weight, file: &str, line: usize) -> Result<()> {
    match total.checked_add(w) {
        Some(t) => {
            *total = t;
            Ok(())
        }
        None => Err(Error::Parse {
            file: file.to_owned(),
            line,
            message: format!(
                "the {} add up to more than {}, the most allocflame can count (the counts up to here: {} allocations, {} bytes)",
                if total.allocs.checked_add(w.allocs).is_none() { "allocation counts" } else { "byte counts" },
                u64::MAX,
                total.allocs,
                total.bytes
            ),
        }),
    }
}

/// The length of the `h0123456789abcdef` hash rustc appends to legacy symbol names.
const RUST_HASH_LEN: usize = 17;

/// Finishes the demangling of a legacy Rust symbol that perf or DTrace left half done
/// (`std..fs..File$u20$as$u20$...::h0123456789abcdef` → `std::fs::File as ...`), as inferno
/// and FlameGraph do; other names are returned unchanged.
pub(crate) fn fix_rust_symbol(symbol: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let n = symbol.len();
    if n < RUST_HASH_LEN || !symbol.is_char_boundary(n - RUST_HASH_LEN) {
        return Cow::Borrowed(symbol);
    }
    let hash = &symbol[n - RUST_HASH_LEN..];
    if !hash.starts_with('h') || !hash[1..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return Cow::Borrowed(symbol);
    }
    let mut rest = &symbol[..n - RUST_HASH_LEN];
    rest = rest.strip_suffix("::").unwrap_or(rest);
    if rest.starts_with("_$") {
        rest = &rest[1..];
    }
    const ESCAPES: [(&str, &str); 20] = [
        ("$SP$", "@"),
        ("$BP$", "*"),
        ("$RF$", "&"),
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$LP$", "("),
        ("$RP$", ")"),
        ("$C$", ","),
        ("$u7e$", "~"),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u3d$", "="),
        ("$u5b$", "["),
        ("$u5d$", "]"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$u3b$", ";"),
        ("$u2b$", "+"),
        ("$u21$", "!"),
        ("$u22$", "\""),
    ];
    let mut out = String::with_capacity(rest.len());
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("..") {
            out.push_str("::");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('.') {
            out.push('.');
            rest = r;
        } else if rest.starts_with('$') {
            match ESCAPES.iter().find(|(from, _)| rest.starts_with(from)) {
                Some((from, to)) => {
                    out.push_str(to);
                    rest = &rest[from.len()..];
                }
                None => {
                    // Not an escape we know: keep the rest as it is.
                    out.push_str(rest);
                    break;
                }
            }
        } else {
            let end = rest.find(['$', '.']).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    Cow::Owned(out)
}

/// Reads a capture file; see [`read_bytes`].
pub fn read_path(path: &Path, format: Option<Format>) -> Result<Profile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_bytes(&bytes, &path.display().to_string(), format)
}
