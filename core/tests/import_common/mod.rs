//! Helpers shared by the importer tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the test data lives.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The bytes of `tests/data/<rel>`, or of `<rel>.gz` unpacked when only that is there (large
/// fixtures are stored gzipped).
pub fn data_bytes(rel: &str) -> Vec<u8> {
    let path = data_dir().join(rel);
    if let Ok(b) = std::fs::read(&path) {
        return b;
    }
    let gz = data_dir().join(format!("{rel}.gz"));
    let packed = std::fs::read(&gz)
        .unwrap_or_else(|e| panic!("{} (nor {}): {e}", path.display(), gz.display()));
    unpack(&packed)
}

fn unpack(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A peer fixture (`tests/data/peers/<rel>`) as text, unpacked if gzipped.
pub fn peer_text(rel: &str) -> String {
    let mut bytes = data_bytes(&format!("peers/{rel}"));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        bytes = unpack(&bytes);
    }
    String::from_utf8(bytes).unwrap()
}

/// Compares folded output with an expected file the way inferno's tests do: line by line,
/// the expected line `trim_end`ed, and `'`/`"` removed from ours when `strip_quotes`.
pub fn compare(produced: &str, expected: &str, strip_quotes: bool) -> Result<(), String> {
    let mut exp = expected.lines();
    for (i, line) in produced.lines().enumerate() {
        let line = if strip_quotes {
            line.replace(['"', '\''], "")
        } else {
            line.to_owned()
        };
        match exp.next() {
            None => return Err(format!("line {}: more lines than expected", i + 1)),
            Some(e) if e.trim_end() != line => {
                return Err(format!(
                    "line {}: got `{}`, expected `{}`",
                    i + 1,
                    short(&line),
                    short(e.trim_end())
                ))
            }
            Some(_) => {}
        }
    }
    match exp.next() {
        Some(e) => Err(format!("fewer lines than expected, missing `{}`", short(e))),
        None => Ok(()),
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s.to_owned()
    }
}
