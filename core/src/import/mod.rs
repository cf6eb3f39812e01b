//! Importers: captures made with other tools become a [`Profile`].
//!
//! - `perf script` text of uprobe (or any) events, frame-pointer or DWARF stacks ([`perf`]);
//! - DTrace `printa` output of `@[ustack()] = count()` aggregations ([`dtrace`]);
//! - FlameGraph folded files ([`Profile::read_folded`]).

pub mod dtrace;
pub mod perf;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::profile::{Profile, WeightKind};

/// The input formats allocflame reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `perf script` output.
    PerfScript,
    /// DTrace aggregation output.
    Dtrace,
    /// FlameGraph folded stacks.
    Folded,
}

impl Format {
    /// The name used on the command line (`perf-script`, `dtrace`, `folded`).
    pub const fn name(self) -> &'static str {
        match self {
            Format::PerfScript => "perf-script",
            Format::Dtrace => "dtrace",
            Format::Folded => "folded",
        }
    }
}

/// Guesses the format of `text` from its first meaningful lines, or `None` if it looks like
/// none of them.
pub fn detect(text: &str) -> Option<Format> {
    let mut lines = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    for line in lines.by_ref().take(64) {
        if line.starts_with('#') {
            // perf script headers (`# ========`) and comments.
            continue;
        }
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

/// Reads a capture held in memory. `file` names it in errors; `format` is guessed when `None`.
/// Gzip-compressed input is unpacked first.
pub fn read_bytes(bytes: &[u8], file: &str, format: Option<Format>) -> Result<Profile> {
    let unpacked;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::Format {
                file: file.to_owned(),
                message: format!("looks gzip-compressed but cannot be unpacked: {e}"),
            })?;
        unpacked = out;
        &unpacked[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Format {
        file: file.to_owned(),
        message: format!(
            "not a text capture (invalid UTF-8 at byte {}); expected perf script, DTrace or folded text",
            e.valid_up_to()
        ),
    })?;
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
    };
    Ok(profile)
}

/// Reads a capture file; see [`read_bytes`].
pub fn read_path(path: &Path, format: Option<Format>) -> Result<Profile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_bytes(&bytes, &path.display().to_string(), format)
}
