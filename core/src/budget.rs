//! Allocation budgets: limits on how many allocations (and bytes) a profile may hold, in the
//! whole run or per call of a unit of work, checked by `allocflame check` and usable as a
//! library. A [`Budget`] is a list of [`Limit`]s (read from a budget file with
//! [`Budget::parse`], or made from options); [`Budget::evaluate`] measures each against a
//! [`Profile`] and gives a [`Verdict`]: every limit held, some limit is broken (with the stacks
//! that contribute most), or the counts cannot prove it (events were lost).
//!
//! Frame patterns ([`FramePattern`]) match one frame name, as the folded output writes it
//! (demangled, after prettify rules): the pattern is the whole name, and `*` stands for any run
//! of characters (none too). `handle_request` matches that frame only, `handle_*` every frame
//! that starts so, `*Parser*` every frame containing `Parser`. A limit with a pattern counts
//! the allocations whose stack has at least one matching frame (the root frame, the process
//! name, and the leaf, the allocation function, are frames too), each allocation once.
//!
//! ```
//! use allocflame_core::budget::{Budget, EvalOptions, Outcome};
//! use allocflame_core::{Profile, Weight};
//! let mut p = Profile::new();
//! p.add(["srv", "main", "setup", "malloc"], Weight::new(3, 300));
//! p.add(["srv", "main", "handle_request", "malloc"], Weight::new(40, 640));
//! let budget = Budget::parse("# pattern max-allocs [max-bytes]\nhandle_* 30\n", "budget").unwrap();
//! let verdict = budget.evaluate(&p, &EvalOptions::default());
//! assert_eq!(verdict.outcome, Outcome::Fail);
//! assert_eq!(verdict.checks[0].measured, 40);
//! assert_eq!(verdict.checks[0].excess, 10);
//! assert_eq!(verdict.checks[0].top_stacks[0].stack, "srv;main;handle_request;malloc");
//! ```

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::profile::{Profile, Weight, WeightKind};

/// A pattern matched against one frame name: the whole name, `*` standing for any run of
/// characters (also an empty one). Every other character stands for itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePattern {
    text: String,
}

impl FramePattern {
    /// The pattern `text`; an empty one is an error.
    pub fn new(text: &str) -> Result<FramePattern> {
        if text.is_empty() {
            return Err(Error::Invalid(
                "an empty frame pattern matches no frame (use `*` for every allocation)".into(),
            ));
        }
        Ok(FramePattern { text: text.into() })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `frame` matches the pattern as a whole.
    ///
    /// ```
    /// use allocflame_core::budget::FramePattern;
    /// let p = FramePattern::new("handle_*").unwrap();
    /// assert!(p.matches("handle_request") && !p.matches("do_handle_request"));
    /// assert!(FramePattern::new("*Parser*").unwrap().matches("JSONParser.parse()"));
    /// assert!(!FramePattern::new("main").unwrap().matches("domain"));
    /// ```
    pub fn matches(&self, frame: &str) -> bool {
        let mut parts = self.text.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = frame.strip_prefix(first) else {
            return false;
        };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else {
            // No `*`: the name itself.
            return rest.is_empty();
        };
        // The middle parts, leftmost first: taking each as early as it occurs leaves the most
        // room for those after it, so a match exists exactly when this finds one.
        for part in parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

impl fmt::Display for FramePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One limit of a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Where it comes from, for messages: `budget.txt:3`, `--max-allocs`.
    pub origin: String,
    /// Which allocations it counts: those with a frame matching it; `None`: all of them.
    pub pattern: Option<FramePattern>,
    /// The most allocation calls allowed.
    pub max_allocs: Option<u64>,
    /// The most bytes allowed.
    pub max_bytes: Option<u64>,
    /// Whether the limits are per call of the unit of work ([`PerCall`]): only the
    /// allocations made inside a call of it count, divided by its calls.
    pub per_call: bool,
}

/// Limits on allocations and bytes; see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// The limits, in the order given.
    pub limits: Vec<Limit>,
}

/// Parses an amount: a non-negative integer, optionally with a `K`, `M` or `G` suffix
/// (×1024, ×1024², ×1024³; `k`, `m`, `g` too) and `_` between digits.
///
/// ```
/// use allocflame_core::budget::parse_amount;
/// assert_eq!(parse_amount("12").unwrap(), 12);
/// assert_eq!(parse_amount("64K").unwrap(), 65536);
/// assert_eq!(parse_amount("1_000").unwrap(), 1000);
/// assert!(parse_amount("1.5M").is_err());
/// ```
pub fn parse_amount(text: &str) -> Result<u64> {
    let bad = || {
        Error::Invalid(format!(
            "`{text}`: expected a whole number, optionally with a K, M or G suffix (×1024), e.g. 12 or 64K"
        ))
    };
    let (digits, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty()
        || !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return Err(bad());
    }
    let n: u64 = digits.replace('_', "").parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .ok_or_else(|| Error::Invalid(format!("`{text}`: too large (at most {})", u64::MAX)))
}

/// The keyword that makes a budget file line per call.
pub const PER_CALL: &str = "per-call";

impl Budget {
    /// Parses a budget file's `text` (named `file` in errors). One limit per line:
    ///
    /// ```text
    /// # PATTERN          MAX-ALLOCS  [MAX-BYTES]  [per-call]
    /// *                  5000        1M          # the whole run
    /// "closure #1 in *"  200                     # a pattern with spaces is quoted
    /// handle_request     12          -           per-call
    /// ```
    ///
    /// `#` starts a comment; blank lines are skipped. `-` leaves a limit out (one of the two
    /// must be given). `per-call` makes the line count per call of `--per FUNCTION`. A line
    /// that does not have this shape is an error naming `file:line`.
    pub fn parse(text: &str, file: &str) -> Result<Budget> {
        let mut budget = Budget::default();
        for (i, line) in text.lines().enumerate() {
            let fail = |message: String| Error::Parse {
                file: file.into(),
                line: i + 1,
                message,
            };
            let limit = parse_line(line, format!("{file}:{}", i + 1)).map_err(fail)?;
            budget.limits.extend(limit);
        }
        Ok(budget)
    }

    /// Reads and parses the budget file at `path`.
    pub fn read(path: &Path) -> Result<Budget> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Budget::parse(&text, &path.display().to_string())
    }

    /// Whether any limit is per call.
    pub fn has_per_call(&self) -> bool {
        self.limits.iter().any(|l| l.per_call)
    }

    /// Measures every limit against `profile`; see [`Verdict`].
    pub fn evaluate(&self, profile: &Profile, options: &EvalOptions) -> Verdict {
        let stacks: Vec<(Vec<&str>, Weight)> = profile.stacks().collect();
        let in_call = |frames: &[&str]| match &options.per {
            Some(per) => frames.iter().any(|f| per.frames.iter().any(|n| n == f)),
            None => false,
        };
        let sound = options.lost == 0 && !options.partial;
        let mut reasons = Vec::new();
        if !sound {
            reasons.push(unsound_reason(options));
        }
        let per = options.per.as_ref().map(|p| {
            let inside = stacks
                .iter()
                .filter(|(f, _)| in_call(f))
                .fold(Weight::default(), |acc, (_, w)| acc + *w);
            PerCallReport {
                function: p.function.clone(),
                calls: p.calls,
                allocs: inside.allocs,
                bytes: inside.bytes,
                allocs_per_call: ratio(inside.allocs, p.calls),
                bytes_per_call: ratio(inside.bytes, p.calls),
            }
        });
        let mut checks = Vec::new();
        for limit in &self.limits {
            let calls = match (limit.per_call, &options.per) {
                (false, _) => None,
                (true, Some(p)) => Some(p.calls),
                (true, None) => {
                    reasons.push(format!(
                        "{}: a per-call limit needs --per FUNCTION (the unit of work to count calls of)",
                        limit.origin
                    ));
                    continue;
                }
            };
            let counted: Vec<&(Vec<&str>, Weight)> = stacks
                .iter()
                .filter(|(frames, _)| {
                    (!limit.per_call || in_call(frames))
                        && limit
                            .pattern
                            .as_ref()
                            .map_or(true, |p| frames.iter().any(|f| p.matches(f)))
                })
                .collect();
            let measured = counted
                .iter()
                .fold(Weight::default(), |acc, (_, w)| acc + *w);
            for (kind, max) in [
                (WeightKind::Allocations, limit.max_allocs),
                (WeightKind::Bytes, limit.max_bytes),
            ] {
                let Some(max) = max else { continue };
                let value = measured.get(kind);
                // Per call: at most `max` on average over the calls, in whole numbers.
                let allowed = max.saturating_mul(calls.unwrap_or(1));
                let over = value > allowed;
                let mut state = if over { State::Over } else { State::Within };
                if kind == WeightKind::Bytes && !profile.bytes_known && value == 0 {
                    state = State::Unproven;
                    reasons.push(format!(
                        "{}: the recording carries no sizes, so a byte limit cannot be checked",
                        limit.origin
                    ));
                } else if calls == Some(0) {
                    state = State::Unproven;
                    reasons.push(format!(
                        "{}: {} was never called, so there is no per-call figure to check",
                        limit.origin,
                        options.per.as_ref().map_or("", |p| p.function.as_str())
                    ));
                } else if !sound && (!over || calls.is_some()) {
                    // Lost events make every count a lower bound: more than the limit stays
                    // more, but "within" is not proven, and a per-call figure divides by calls
                    // that may be short too.
                    state = State::Unproven;
                }
                let mut top: Vec<StackWeight> = counted
                    .iter()
                    .map(|(frames, w)| StackWeight {
                        stack: frames.join(";"),
                        allocs: w.allocs,
                        bytes: w.bytes,
                    })
                    .collect();
                let other = match options.weight {
                    WeightKind::Allocations => WeightKind::Bytes,
                    WeightKind::Bytes => WeightKind::Allocations,
                };
                top.sort_by(|a, b| {
                    (b.get(options.weight), b.get(other))
                        .cmp(&(a.get(options.weight), a.get(other)))
                        .then_with(|| a.stack.cmp(&b.stack))
                });
                top.truncate(options.top);
                checks.push(Check {
                    origin: limit.origin.clone(),
                    pattern: limit.pattern.as_ref().map(|p| p.to_string()),
                    per_call: limit.per_call,
                    quantity: kind,
                    max,
                    measured: value,
                    calls,
                    measured_per_call: calls.map(|c| ratio(value, c)),
                    excess: value.saturating_sub(allowed),
                    excess_per_call: calls.filter(|_| over).map(|c| ratio(value, c) - max as f64),
                    state,
                    top_stacks: top,
                });
            }
        }
        let outcome = if checks.iter().any(|c| c.state == State::Over) {
            Outcome::Fail
        } else if !reasons.is_empty() || checks.iter().any(|c| c.state == State::Unproven) {
            Outcome::Unproven
        } else {
            Outcome::Pass
        };
        Verdict {
            outcome,
            checks,
            total: profile.total(),
            lost: options.lost,
            partial: options.partial,
            per,
            reasons,
        }
    }
}

fn unsound_reason(options: &EvalOptions) -> String {
    let mut why = Vec::new();
    if options.lost > 0 {
        why.push(format!("{} allocation events were lost", options.lost));
    }
    if options.partial {
        why.push("the recording ended early".to_owned());
    }
    format!(
        "{}: every count is a lower bound, so a limit that holds is not proven (a broken one stays broken; per-call figures are not proven either way)",
        why.join(" and ")
    )
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Splits one line into its fields: whitespace-separated words, a `"…"` field may hold spaces,
/// `#` outside quotes starts a comment.
fn fields(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(out),
            Some('"') => {
                chars.next();
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => return Err("a quoted pattern has no closing `\"`".into()),
                    }
                }
                if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                    return Err("expected a space after the closing `\"`".into());
                }
                out.push(field);
            }
            Some(_) => {
                let mut field = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    field.push(c);
                }
                out.push(field);
            }
        }
    }
}

fn parse_line(line: &str, origin: String) -> std::result::Result<Option<Limit>, String> {
    let mut fields = fields(line)?;
    if fields.is_empty() {
        return Ok(None);
    }
    let shape =
        "expected `PATTERN MAX-ALLOCS [MAX-BYTES] [per-call]` (a number or `-` for each limit)";
    let per_call = fields.last().is_some_and(|f| f == PER_CALL);
    if per_call {
        fields.pop();
    }
    let (pattern, allocs, bytes) = match fields.as_slice() {
        [p, a] => (p, a, None),
        [p, a, b] => (p, a, Some(b)),
        [_] => return Err(format!("no limit after the pattern: {shape}")),
        _ => {
            return Err(format!(
                "{} fields: {shape}; quote a pattern with spaces (\"closure #1 in *\")",
                fields.len()
            ))
        }
    };
    let amount = |what: &str, f: &str| -> std::result::Result<Option<u64>, String> {
        if f == "-" {
            return Ok(None);
        }
        parse_amount(f)
            .map(Some)
            .map_err(|e| format!("{what}: {e}; {shape}"))
    };
    let max_allocs = amount("MAX-ALLOCS", allocs)?;
    let max_bytes = match bytes {
        Some(b) => amount("MAX-BYTES", b)?,
        None => None,
    };
    if max_allocs.is_none() && max_bytes.is_none() {
        return Err(format!("no limit: both are `-`; {shape}"));
    }
    let pattern = FramePattern::new(pattern).map_err(|e| e.to_string())?;
    Ok(Some(Limit {
        origin,
        // `*` alone matches every stack: the same as no pattern, said as such.
        pattern: (pattern.as_str() != "*").then_some(pattern),
        max_allocs,
        max_bytes,
        per_call,
    }))
}

/// The unit of work per-call limits divide by: a function of the program whose calls were
/// counted (`--per FUNCTION`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerCall {
    /// The function as the user named it.
    pub function: String,
    /// The frame names it has in the profile's stacks (its symbol, and its demangled name).
    pub frames: Vec<String>,
    /// How many times it was called.
    pub calls: u64,
}

/// How [`Budget::evaluate`] measures. Construct with `Default` and set what differs.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The unit of work of per-call limits. Default is `None` (a per-call limit is then an
    /// error of the verdict).
    pub per: Option<PerCall>,
    /// Allocation events the recording lost. Default is 0.
    pub lost: u64,
    /// Whether the recording ended early. Default is `false`.
    pub partial: bool,
    /// What the top stacks are ordered by. Default is allocations.
    pub weight: WeightKind,
    /// How many of the stacks that contribute most each check lists. Default is 5.
    pub top: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            per: None,
            lost: 0,
            partial: false,
            weight: WeightKind::Allocations,
            top: 5,
        }
    }
}

/// Whether a check's limit holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// It holds.
    Within,
    /// It is broken.
    Over,
    /// The counts cannot tell (lost events, no sizes, no calls).
    Unproven,
}

/// The verdict on a whole budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every limit holds.
    Pass,
    /// At least one limit is broken (for sure: counts are lower bounds).
    Fail,
    /// No limit is broken, but not every one is proven to hold; [`Verdict::reasons`] says why.
    Unproven,
}

/// A stack (folded, root first) and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackWeight {
    /// The frames joined by `;`, as the folded output writes them.
    pub stack: String,
    /// Its allocation calls.
    pub allocs: u64,
    /// Its bytes.
    pub bytes: u64,
}

impl StackWeight {
    fn get(&self, kind: WeightKind) -> u64 {
        Weight::new(self.allocs, self.bytes).get(kind)
    }
}

/// One limit of one quantity, measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Where the limit comes from (`budget.txt:3`, `--max-allocs`).
    pub origin: String,
    /// Its frame pattern; `None`: every allocation.
    pub pattern: Option<String>,
    /// Whether it is per call of the unit of work.
    pub per_call: bool,
    /// What it limits.
    pub quantity: WeightKind,
    /// The limit (per call when `per_call`).
    pub max: u64,
    /// What was measured: the allocations (or bytes) it counts, in the whole run.
    pub measured: u64,
    /// Calls of the unit of work, for a per-call limit.
    pub calls: Option<u64>,
    /// `measured / calls`, for a per-call limit.
    pub measured_per_call: Option<f64>,
    /// How much over the limit, in the whole run (`measured - max × calls` per call); 0 when
    /// within.
    pub excess: u64,
    /// How much over the limit per call, for a broken per-call limit.
    pub excess_per_call: Option<f64>,
    /// Whether it holds.
    pub state: State,
    /// The stacks it counts that weigh most (in the chosen weight), heaviest first.
    pub top_stacks: Vec<StackWeight>,
}

impl Check {
    /// "allocations of stacks with a frame matching `handle_*`, per call of the unit of work".
    pub fn describe(&self) -> String {
        let what = match self.quantity {
            WeightKind::Allocations => "allocations",
            WeightKind::Bytes => "bytes",
        };
        let mut s = match &self.pattern {
            Some(p) => format!("{what} of stacks with a frame matching `{p}`"),
            None if self.per_call => format!("{what} inside the unit of work"),
            None => format!("{what} in all"),
        };
        if self.per_call {
            s.push_str(" per call");
        }
        s
    }
}

/// What the unit of work did: its calls and the allocations made inside them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerCallReport {
    /// The function, as the user named it.
    pub function: String,
    /// Its calls.
    pub calls: u64,
    /// Allocations made inside its calls (stacks with its frame).
    pub allocs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// `allocs / calls` (0 without calls).
    pub allocs_per_call: f64,
    /// `bytes / calls` (0 without calls).
    pub bytes_per_call: f64,
}

/// The result of [`Budget::evaluate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// Pass, fail or unproven.
    pub outcome: Outcome,
    /// Each limit of each quantity, measured, in the order of the budget.
    pub checks: Vec<Check>,
    /// All allocations of the profile.
    pub total: Weight,
    /// Allocation events the recording lost.
    pub lost: u64,
    /// Whether the recording ended early.
    pub partial: bool,
    /// The unit of work's calls and allocations, with `--per`.
    pub per: Option<PerCallReport>,
    /// Why a limit could not be proven.
    pub reasons: Vec<String>,
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn per_call_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let over = self
            .checks
            .iter()
            .filter(|c| c.state == State::Over)
            .count();
        match self.outcome {
            Outcome::Pass if self.checks.len() == 1 => {
                writeln!(f, "allocflame check: PASS: the limit holds")?
            }
            Outcome::Pass => writeln!(
                f,
                "allocflame check: PASS: all {} limits hold",
                self.checks.len()
            )?,
            Outcome::Fail => writeln!(
                f,
                "allocflame check: FAIL: {over} of {} {} broken",
                self.checks.len(),
                plural(self.checks.len() as u64, "limit", "limits")
            )?,
            Outcome::Unproven => writeln!(
                f,
                "allocflame check: UNPROVEN: no limit is broken, but not every one is proven to hold"
            )?,
        }
        writeln!(
            f,
            "  recorded: {} allocations, {} bytes{}",
            self.total.allocs,
            self.total.bytes,
            if self.lost > 0 {
                format!(", {} lost", self.lost)
            } else {
                String::new()
            }
        )?;
        if let Some(p) = &self.per {
            writeln!(
                f,
                "  per call of {}: {} {}; {} allocations and {} bytes inside them: {} allocations and {} bytes per call",
                p.function,
                p.calls,
                plural(p.calls, "call", "calls"),
                p.allocs,
                p.bytes,
                per_call_text(p.allocs_per_call),
                per_call_text(p.bytes_per_call)
            )?;
        }
        for c in &self.checks {
            let tag = match c.state {
                State::Within => "ok  ",
                State::Over => "OVER",
                State::Unproven => "??  ",
            };
            let rel = if c.state == State::Over { ">" } else { "≤" };
            match (c.measured_per_call, c.calls) {
                (Some(per), Some(calls)) => write!(
                    f,
                    "  {tag} {}: {}: {} {rel} {} per call ({} in {calls} {})",
                    c.origin,
                    c.describe(),
                    per_call_text(per),
                    c.max,
                    c.measured,
                    plural(calls, "call", "calls")
                )?,
                _ => write!(
                    f,
                    "  {tag} {}: {}: {} {rel} {}",
                    c.origin,
                    c.describe(),
                    c.measured,
                    c.max
                )?,
            }
            if c.state == State::Over {
                match c.excess_per_call {
                    Some(e) => writeln!(
                        f,
                        ", excess {} per call ({} in all)",
                        per_call_text(e),
                        c.excess
                    )?,
                    None => writeln!(f, ", excess {}", c.excess)?,
                }
                writeln!(
                    f,
                    "       stacks that contribute most (allocations, bytes):"
                )?;
                for s in &c.top_stacks {
                    writeln!(f, "       {:>10} {:>12}  {}", s.allocs, s.bytes, s.stack)?;
                }
            } else {
                writeln!(f)?;
            }
        }
        for r in &self.reasons {
            writeln!(f, "  note: {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        let mut p = Profile::new();
        p.bytes_known = true;
        p.add(["srv", "main", "setup", "malloc"], Weight::new(5, 5000));
        p.add(
            ["srv", "main", "handle_request", "parse", "malloc"],
            Weight::new(20, 200),
        );
        p.add(
            ["srv", "main", "handle_request", "reply", "calloc"],
            Weight::new(10, 4000),
        );
        p
    }

    #[test]
    fn patterns() {
        let m = |p: &str, f: &str| FramePattern::new(p).unwrap().matches(f);
        assert!(m("*", "") && m("*", "anything"));
        assert!(m("a*b*c", "abc") && m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "acb"));
        assert!(!m("ab*ba", "aba"), "prefix and suffix may not overlap");
        assert!(m("ab*ba", "abba"));
        assert!(m("*request*", "handle_request") && m("*request*", "request"));
        assert!(!m("handle", "handle_request"), "no `*`: the whole name");
        assert!(m("closure #1 in *", "closure #1 in Server.run()"));
        assert!(FramePattern::new("").is_err());
    }

    #[test]
    fn parses_lines_and_reports_bad_ones_by_line() {
        let text = "# budget\n\n* 100 1M\n\"closure #1 in *\" 7 # comment\nhandle_request - 64K per-call\n";
        let b = Budget::parse(text, "b.txt").unwrap();
        assert_eq!(b.limits.len(), 3);
        assert_eq!(b.limits[0].pattern, None);
        assert_eq!(b.limits[0].max_bytes, Some(1 << 20));
        assert_eq!(b.limits[0].origin, "b.txt:3");
        assert_eq!(
            b.limits[1].pattern.as_ref().unwrap().as_str(),
            "closure #1 in *"
        );
        assert_eq!(b.limits[1].max_bytes, None);
        assert!(b.limits[2].per_call && b.limits[2].max_allocs.is_none());
        assert!(b.has_per_call());
        for (bad, line) in [
            ("x 1\nfoo\n", 2),
            ("foo bar\n", 1),
            ("a 1 2 3\n", 1),
            ("\n\na - -\n", 3),
            ("\"open 3\n", 1),
            ("x 1.5\n", 1),
            ("x -3\n", 1),
            ("x 99999999999999999999\n", 1),
        ] {
            match Budget::parse(bad, "b.txt") {
                Err(Error::Parse { file, line: l, .. }) => {
                    assert_eq!((file.as_str(), l), ("b.txt", line), "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = Budget::parse("ok 1\nfoo bar\n", "b.txt").unwrap_err();
        assert!(e.to_string().starts_with("b.txt:2: "), "{e}");
    }

    #[test]
    fn within_over_and_top_stacks_by_weight() {
        let p = profile();
        let b = Budget::parse("* 35 10000\nhandle_request 29\n", "b").unwrap();
        let v = b.evaluate(&p, &EvalOptions::default());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.checks.len(), 3);
        assert_eq!(
            (v.checks[0].state, v.checks[0].measured),
            (State::Within, 35)
        );
        assert_eq!(
            (v.checks[1].state, v.checks[1].measured),
            (State::Within, 9200)
        );
        let c = &v.checks[2];
        assert_eq!((c.state, c.measured, c.excess), (State::Over, 30, 1));
        assert_eq!(c.top_stacks.len(), 2);
        assert_eq!(
            c.top_stacks[0].stack,
            "srv;main;handle_request;parse;malloc"
        );
        // By bytes, the calloc stack comes first.
        let v = b.evaluate(
            &p,
            &EvalOptions {
                weight: WeightKind::Bytes,
                ..EvalOptions::default()
            },
        );
        assert_eq!(
            v.checks[2].top_stacks[0].stack,
            "srv;main;handle_request;reply;calloc"
        );
        assert!(v.to_string().contains("OVER b:2"), "{v}");
        let v = Budget::parse("* 35\n", "b")
            .unwrap()
            .evaluate(&p, &EvalOptions::default());
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn per_call_counts_inside_the_unit_only() {
        let p = profile();
        let per = PerCall {
            function: "handle_request".into(),
            frames: vec!["handle_request".into()],
            calls: 10,
        };
        let opts = EvalOptions {
            per: Some(per),
            ..EvalOptions::default()
        };
        let b = Budget::parse("* 3 - per-call\nparse 2 - per-call\n", "b").unwrap();
        let v = b.evaluate(&p, &opts);
        let per = v.per.as_ref().unwrap();
        assert_eq!((per.allocs, per.calls), (30, 10));
        assert_eq!(per.allocs_per_call, 3.0);
        assert_eq!(v.checks[0].state, State::Within, "{v}");
        assert_eq!(v.checks[1].state, State::Within, "{v}");
        let v = Budget::parse("* 2 - per-call\n", "b")
            .unwrap()
            .evaluate(&p, &opts);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.checks[0].excess, 10);
        assert_eq!(v.checks[0].excess_per_call, Some(1.0));
        // No --per: a per-call limit cannot be checked.
        let v = Budget::parse("* 2 - per-call\n", "b")
            .unwrap()
            .evaluate(&p, &EvalOptions::default());
        assert_eq!(v.outcome, Outcome::Unproven);
        assert!(v.reasons[0].contains("--per"), "{v}");
    }

    #[test]
    fn lost_events_make_within_unproven_and_over_still_over() {
        let p = profile();
        let opts = EvalOptions {
            lost: 3,
            ..EvalOptions::default()
        };
        let v = Budget::parse("* 100\n", "b").unwrap().evaluate(&p, &opts);
        assert_eq!(v.outcome, Outcome::Unproven);
        assert!(v.reasons[0].contains("3 allocation events were lost"));
        let v = Budget::parse("* 100\nsetup 4\n", "b")
            .unwrap()
            .evaluate(&p, &opts);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.checks[0].state, State::Unproven);
        assert_eq!(v.checks[1].state, State::Over);
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("0").unwrap(), 0);
        assert_eq!(parse_amount("2G").unwrap(), 2 << 30);
        for bad in ["", "K", "_1", "1e3", "-1", " 1", "18446744073709551615K"] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
    }
}
