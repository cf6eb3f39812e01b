//! Reading dtrace's output back: `printa` records of `ustack()` keys (leaf first, one frame a
//! line, then a line of values), and the sectioned capture the generated script prints.
//!
//! No cfg here: the parsers are tested on every platform, on real macOS captures.

use std::collections::HashMap;

use allocflame_core::{Error, Result, Weight};

use crate::script::{FORMAT_VERSION, MARKER, PROBE_LINE, SECTIONS};

/// One `printa` record of a `ustack()`-keyed aggregation.
///
/// The same shape as the core importer's record (`allocflame_core::import::dtrace`), so the
/// backend can switch to it without other changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtraceRecord {
    /// The frames, leaf first, as ``module`symbol`` with the `+0x…` offset dropped.
    pub frames: Vec<String>,
    /// The values printed after the stack (a count, a sum, …).
    pub values: Vec<u64>,
}

/// Drops a trailing `+0x…` offset from a frame.
pub fn strip_offset(frame: &str) -> &str {
    match frame.rfind("+0x") {
        Some(i) if i > 0 && frame[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => &frame[..i],
        _ => frame,
    }
}

fn values_of(line: &str) -> Option<Vec<u64>> {
    let values: Option<Vec<u64>> = line.split_whitespace().map(|t| t.parse().ok()).collect();
    values.filter(|v| !v.is_empty())
}

fn looks_like_frame(line: &str) -> bool {
    let t = line.trim();
    line.starts_with(char::is_whitespace) && (t.contains('`') || t.starts_with("0x"))
}

/// Parses the records of `printa` output of `ustack()`-keyed aggregations.
///
/// Lines before the first stack (banners, the `CPU ID FUNCTION:NAME` header, a stray number)
/// are skipped; after it, every non-blank line is a frame or a line of values. `file` names
/// the input in errors and `first_line` is the 1-based number of `text`'s first line in it.
///
/// ```
/// use allocflame_backend_dtrace::output::parse_records;
/// let text = "\n              libsystem_malloc.dylib`malloc\n              prog`main+0x1c\n               7\n";
/// let records = parse_records(text, "capture.txt", 1).unwrap();
/// assert_eq!(records[0].frames, ["libsystem_malloc.dylib`malloc", "prog`main"]);
/// assert_eq!(records[0].values, [7]);
/// ```
pub fn parse_records(text: &str, file: &str, first_line: usize) -> Result<Vec<DtraceRecord>> {
    parse_records_from(text, file, first_line, true)
}

/// [`parse_records`] with or without skipping header lines. Inside a section of the generated
/// script's output there is no header, and a value line before any frame is a record of an
/// empty stack, whose count must not be lost.
fn parse_records_from(
    text: &str,
    file: &str,
    first_line: usize,
    skip_header: bool,
) -> Result<Vec<DtraceRecord>> {
    let mut records = Vec::new();
    let mut frames: Vec<String> = Vec::new();
    let mut in_header = skip_header;
    let mut open_at = 0;
    for (i, line) in text.lines().enumerate() {
        let lineno = first_line + i;
        if line.trim().is_empty() {
            continue;
        }
        if in_header {
            if !looks_like_frame(line) {
                continue;
            }
            in_header = false;
        }
        match values_of(line) {
            Some(values) => records.push(DtraceRecord {
                frames: std::mem::take(&mut frames),
                values,
            }),
            None => {
                if frames.is_empty() {
                    open_at = lineno;
                }
                frames.push(strip_offset(line.trim()).to_owned());
            }
        }
    }
    if !frames.is_empty() {
        return Err(Error::Parse {
            file: file.to_owned(),
            line: open_at,
            message: format!(
                "a stack of {} frames without a value line after it: the output ends in the middle of a record (was dtrace stopped twice?)",
                frames.len()
            ),
        });
    }
    Ok(records)
}

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
                    message: format!("expected `{PROBE_LINE} MODULE FUNCTION VALUE`, found `{line}`"),
                })
            }
        }
    }
    Ok(out)
}

/// Parses the output of the generated script (see [`crate::script::generate`]).
///
/// Counts and bytes come in separate sections and are joined by stack; records whose stacks
/// differ only in offsets are merged. Text before the first section (anything the target or
/// dtrace printed there) is ignored, and so is anything after the last.
pub fn parse_capture(text: &str, file: &str) -> Result<Capture> {
    // (section name, first line number, text)
    let mut sections: Vec<(&str, usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = section_of(line) {
            sections.push((name, i + 2, String::new()));
        } else if let Some((_, _, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
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
    for (name, first_line, body) in &sections {
        match *name {
            "calls" | "call-bytes" => {
                for (module, function, value) in parse_probe_lines(body, file, *first_line)? {
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
                    if *name == "calls" {
                        calls[at].2.allocs += value;
                    } else {
                        calls[at].2.bytes += value;
                    }
                }
            }
            "allocs" | "bytes" => {
                for record in parse_records_from(body, file, *first_line, false)? {
                    let value = record.values[0];
                    let at = *index.entry(record.frames.clone()).or_insert_with(|| {
                        capture.stacks.push((record.frames, Weight::default()));
                        capture.stacks.len() - 1
                    });
                    if *name == "allocs" {
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
                    line: first_line - 1,
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
    fn offsets() {
        assert_eq!(strip_offset("a`b+0x1f"), "a`b");
        assert_eq!(strip_offset("a`b"), "a`b");
        assert_eq!(strip_offset("0x7fff0000"), "0x7fff0000");
        assert_eq!(strip_offset("a`f(x+0xy)"), "a`f(x+0xy)");
        assert_eq!(
            strip_offset("rg`std::panicking::try::do_call::h08 (.llvm.155)+0x25"),
            "rg`std::panicking::try::do_call::h08 (.llvm.155)"
        );
    }

    #[test]
    fn truncated_record_is_an_error_with_its_line() {
        let err = parse_records("\n  a`f\n  a`g+0x1\n", "x.txt", 1).unwrap_err();
        assert!(err.to_string().starts_with("x.txt:2:"), "{err}");
    }

    #[test]
    fn section_markers() {
        assert_eq!(section_of("allocflame-dtrace 1 calls"), Some("calls"));
        assert_eq!(section_of("allocflame-dtrace 2 calls"), None);
        assert_eq!(section_of("allocflame-probe a b 1"), None);
    }
}
