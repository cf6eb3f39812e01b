//! Reading back the sectioned output the generated script prints. The stack sections are
//! `printa` records of `ustack()` keys, read by the core's DTrace importer
//! ([`parse_records`]), the same code that reads captures made by hand.
//!
//! No cfg here: the parser is tested on every platform, on real macOS captures.

use std::collections::HashMap;

pub use allocflame_core::import::dtrace::{parse_records, DtraceRecord};
use allocflame_core::{Error, Result, Weight};

use crate::script::{FORMAT_VERSION, MARKER, PROBE_LINE, SECTIONS, TARGET_LINE};

/// What a run of the generated script printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    /// Stacks (leaf first, offsets dropped) with their allocations and bytes, in the order
    /// dtrace printed the counts.
    pub stacks: Vec<(Vec<String>, Weight)>,
    /// Totals per probed function: `(module, function, weight)`.
    pub calls: Vec<(String, String, Weight)>,
    /// Whether the END clause printed its last marker: `false` means the output was cut short.
    pub complete: bool,
}

impl Capture {
    /// The sum over all stacks.
    pub fn stack_total(&self) -> Weight {
        self.stacks
            .iter()
            .fold(Weight::default(), |acc, (_, w)| acc + *w)
    }

    /// The sum over the per-function totals.
    pub fn calls_total(&self) -> Weight {
        self.calls
            .iter()
            .fold(Weight::default(), |acc, (_, _, w)| acc + *w)
    }
}

/// The traced pid, from the line the script's BEGIN clause prints.
///
/// ```
/// use allocflame_backend_dtrace::output::target_pid;
/// assert_eq!(target_pid("allocflame-target 4242\n"), Some(4242));
/// ```
pub fn target_pid(text: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(TARGET_LINE)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Whether `text` holds any section of the generated script's output.
pub fn has_sections(text: &str) -> bool {
    text.lines().any(|l| section_of(l).is_some())
}

fn section_of(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    if words.next() != Some(MARKER) {
        return None;
    }
    let version = words.next()?;
    let name = words.next()?;
    (version == FORMAT_VERSION.to_string() && words.next().is_none()).then_some(name)
}

fn parse_probe_lines(
    text: &str,
    file: &str,
    first_line: usize,
) -> Result<Vec<(String, String, u64)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [tag, module, function, value] if *tag == PROBE_LINE => {
                let value = value.parse().map_err(|_| Error::Parse {
                    file: file.to_owned(),
                    line: first_line + i,
                    message: format!("`{value}` is not a count"),
                })?;
                out.push(((*module).to_owned(), (*function).to_owned(), value));
            }
            _ => {
                return Err(Error::Parse {
                    file: file.to_owned(),
                    line: first_line + i,
                    message: format!(
                        "expected `{PROBE_LINE} MODULE FUNCTION VALUE`, found `{line}`"
                    ),
                })
            }
        }
    }
    Ok(out)
}

/// `lines[from..to]`, with every other line blank.
fn masked(lines: &[&str], from: usize, to: usize) -> String {
    let mut out = "\n".repeat(from);
    for line in &lines[from..to] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Parses the output of the generated script (see [`crate::script::generate`]).
///
/// Counts and bytes come in separate sections and are joined by stack; records whose stacks
/// differ only in offsets are merged. Text before the first section (anything the target or
/// dtrace printed there) is ignored, and so is anything after the last.
pub fn parse_capture(text: &str, file: &str) -> Result<Capture> {
    let lines: Vec<&str> = text.lines().collect();
    // (section name, index of its first line, index past its last line)
    let mut sections: Vec<(&str, usize, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = section_of(line) {
            if let Some(last) = sections.last_mut() {
                last.2 = i;
            }
            sections.push((name, i + 1, lines.len()));
        }
    }
    if sections.is_empty() {
        return Err(Error::Format {
            file: file.to_owned(),
            message: format!(
                "no `{MARKER}` section: dtrace ended before its END clause printed the aggregations"
            ),
        });
    }
    let mut capture = Capture::default();
    let mut calls: Vec<(String, String, Weight)> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for &(name, from, to) in &sections {
        let body = lines[from..to].join("\n");
        match name {
            "calls" | "call-bytes" => {
                for (module, function, value) in parse_probe_lines(&body, file, from + 1)? {
                    let at = match calls
                        .iter()
                        .position(|(m, f, _)| *m == module && *f == function)
                    {
                        Some(at) => at,
                        None => {
                            calls.push((module, function, Weight::default()));
                            calls.len() - 1
                        }
                    };
                    if name == "calls" {
                        calls[at].2.allocs += value;
                    } else {
                        calls[at].2.bytes += value;
                    }
                }
            }
            "allocs" | "bytes" => {
                // The section alone, at its own line numbers, so errors point into `file`.
                let masked = masked(&lines, from, to);
                for record in parse_records(&masked, file)? {
                    let value = record.values[0];
                    let at = *index.entry(record.frames.clone()).or_insert_with(|| {
                        capture.stacks.push((record.frames, Weight::default()));
                        capture.stacks.len() - 1
                    });
                    if name == "allocs" {
                        capture.stacks[at].1.allocs += value;
                    } else {
                        capture.stacks[at].1.bytes += value;
                    }
                }
            }
            "end" => {
                capture.complete = true;
                break;
            }
            other => {
                return Err(Error::Parse {
                    file: file.to_owned(),
                    line: from,
                    message: format!(
                        "unknown section `{other}`; expected one of {}",
                        SECTIONS.join(", ")
                    ),
                })
            }
        }
    }
    capture.calls = calls;
    Ok(capture)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_markers() {
        assert_eq!(section_of("allocflame-dtrace 1 calls"), Some("calls"));
        assert_eq!(section_of("allocflame-dtrace 2 calls"), None);
        assert_eq!(section_of("allocflame-probe a b 1"), None);
    }
}
