//! macOS allocation recording with DTrace: generates a D script from the probe catalog, runs
//! `dtrace` on a spawned program (`-c`) or a running process (`-p`), and reads the aggregated
//! `ustack()` counts back into [`RawStack`]s.
//!
//! It does not render, demangle or symbolize: DTrace already names frames ``module`symbol``,
//! and the core does the rest, as for every backend.
//!
//! Everything but running dtrace builds and is tested on every platform: the script
//! ([`script`]), the command line ([`command`]), the output parser ([`output`]) and the error
//! classification ([`errors`]). `allocflame record --backend dtrace --dry-run` prints
//! [`dry_run`] anywhere; [`DtraceSource::record`] runs only on macOS and returns
//! [`Error::Unsupported`] elsewhere.
//!
//! ```
//! use allocflame_backend_dtrace::dry_run;
//! use allocflame_core::source::{RecordOptions, Target};
//! let text = dry_run(&Target::spawn(["./prog"]), &RecordOptions::default());
//! assert!(text.contains("pid$target:libsystem_malloc.dylib:malloc_zone_malloc:entry"));
//! assert!(text.contains("dtrace -Z -q -s allocflame.d -o allocflame.out -c ./prog"));
//! ```

pub mod command;
pub mod errors;
pub mod output;
pub mod script;

#[cfg(target_os = "macos")]
mod process;
#[cfg(target_os = "macos")]
mod run;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use allocflame_core::probes::Probe;
use allocflame_core::source::{
    EventSource, RawFrame, RawStack, RecordOptions, RecordReport, StackSink, Target,
};
use allocflame_core::{Error, Result, Weight};

use crate::output::Capture;

/// The dtrace event source.
#[derive(Debug, Default)]
pub struct DtraceSource;

impl EventSource for DtraceSource {
    fn name(&self) -> &'static str {
        "dtrace"
    }

    fn record(
        &mut self,
        target: &Target,
        options: &RecordOptions,
        sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        #[cfg(target_os = "macos")]
        {
            run::record(self.name(), target, options, sink)
        }
        #[cfg(not(target_os = "macos"))]
        {
            let _ = (target, options, sink);
            Err(Error::Unsupported(
                "DTrace is a macOS backend; on Linux use --backend perf (or leave --backend out). `--backend dtrace --dry-run` still prints the D script and the dtrace command line".into(),
            ))
        }
    }
}

/// What a recording runs: the probes, the D script and the dtrace arguments.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The probes, in the order of [`RecordReport::per_probe`].
    pub probes: Vec<Probe>,
    /// The D script.
    pub script: String,
    /// The arguments of dtrace.
    pub args: Vec<OsString>,
    /// Things the user should know about this recording.
    pub notes: Vec<String>,
}

/// Plans a recording of `target` with `options`, the script written to `script_path` and the
/// trace data to `output_path`.
pub fn plan(
    target: &Target,
    options: &RecordOptions,
    script_path: &str,
    output_path: &str,
) -> Result<Plan> {
    let probes = script::macos_probes(&options.probes);
    if probes.is_empty() {
        return Err(Error::Invalid("no probes to record".into()));
    }
    for p in &probes {
        script::check_probe(p).map_err(Error::Invalid)?;
    }
    let duration = match target {
        Target::Attach {
            duration: Some(d), ..
        } => Some(duration_secs(*d)),
        _ => None,
    };
    let text = script::generate(
        &probes,
        options.max_depth,
        options.stacks,
        duration,
        &target.describe(),
    );
    let args = command::arguments(target, script_path, output_path)?;
    let mut notes = Vec::new();
    if options.follow_children {
        notes.push(
            "DTrace's pid provider traces the target process only: allocations of its children are not recorded"
                .to_owned(),
        );
    }
    if let Target::Spawn { .. } = target {
        notes.push(
            "dtrace -c starts the program as dtrace's user, root: files it creates belong to root"
                .to_owned(),
        );
    }
    if let Target::Attach {
        duration: Some(d), ..
    } = target
    {
        if d.subsec_nanos() != 0 {
            notes.push(format!(
                "DTrace's tick probe counts whole seconds: recording for {} s",
                duration_secs(*d)
            ));
        }
    }
    Ok(Plan {
        probes,
        script: text,
        args,
        notes,
    })
}

/// A duration in whole seconds for a `tick-Ns` probe, rounded up, at least 1.
fn duration_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The D script and the `dtrace` command line that a recording of `target` with `options`
/// would run, as text for `--dry-run`. Works on every platform.
///
/// The text is itself a valid D script: the command line sits in a comment at its top.
pub fn dry_run(target: &Target, options: &RecordOptions) -> String {
    let script_path = "allocflame.d";
    let output_path = "allocflame.out";
    match plan(target, options, script_path, output_path) {
        Ok(plan) => {
            let mut s = String::from("/*\n * dtrace command line (as root, with this text saved as allocflame.d):\n *   ");
            s.push_str(&command::display(command::DTRACE, &plan.args));
            s.push('\n');
            for note in &plan.notes {
                s.push_str(" * note: ");
                s.push_str(note);
                s.push('\n');
            }
            s.push_str(" */\n");
            s.push_str(&plan.script);
            s
        }
        Err(e) => format!("/*\n * allocflame: no DTrace recording is possible: {e}\n */\n"),
    }
}

fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// The index of the probe that fired for a function `function` in `module`.
fn probe_index(probes: &[Probe], module: &str, function: &str) -> Option<usize> {
    probes.iter().position(|p| {
        let m = script::module_name(&p.library);
        (m.is_empty() || glob_match(&m, module)) && glob_match(&p.function, function)
    })
}

/// Splits ``module`symbol`` into a frame. A `;` in a name becomes `:`, as inferno's DTrace
/// folder does: in folded text it would split the frame in two.
fn frame(text: &str) -> RawFrame {
    match text.split_once('`') {
        Some((module, name)) => RawFrame::Symbol {
            module: Some(Arc::from(module)),
            name: Arc::from(name.replace(';', ":").as_str()),
        },
        None => match text
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            Some(addr) => RawFrame::Address(addr),
            None => RawFrame::symbol(text),
        },
    }
}

/// Hands the stacks of `capture` to `sink` and fills the per-probe totals, losses and notes of
/// `report`. `comm` and `pid` name the process, the root frame of every stack.
///
/// Without stacks (`allocflame count`), each probed function becomes a one-frame stack.
pub fn hand_over(
    capture: &Capture,
    probes: &[Probe],
    comm: &str,
    pid: u32,
    sink: &mut dyn StackSink,
    report: &mut RecordReport,
) {
    if report.per_probe.len() < probes.len() {
        report.per_probe.resize(probes.len(), Weight::default());
    }
    let mut unmatched = Weight::default();
    for (module, function, w) in &capture.calls {
        match probe_index(probes, module, function) {
            Some(i) => report.per_probe[i] += *w,
            None => unmatched += *w,
        }
    }
    if !unmatched.is_zero() {
        report.notes.push(format!(
            "{} allocations came from functions that match no probe by name",
            unmatched.allocs
        ));
    }
    let stacks: Vec<(Vec<String>, Weight)> = if capture.stacks.is_empty() {
        capture
            .calls
            .iter()
            .map(|(m, f, w)| (vec![format!("{m}`{f}")], *w))
            .collect()
    } else {
        capture.stacks.clone()
    };
    for (frames, weight) in stacks {
        let frames: Vec<RawFrame> = if frames.is_empty() {
            vec![RawFrame::symbol("[no user stack]")]
        } else {
            frames.iter().map(|f| frame(f)).collect()
        };
        let probe = match frames.first() {
            Some(RawFrame::Symbol { module, name }) => {
                probe_index(probes, module.as_deref().unwrap_or(""), name).unwrap_or(0)
            }
            _ => 0,
        };
        sink.add(RawStack {
            pid,
            comm: comm.to_owned(),
            probe,
            frames,
            weight,
        });
    }
    // Both totals count the same events; a stack aggregation that ran out of space counts
    // fewer. That difference is what the graph misses.
    let missing = capture
        .calls_total()
        .allocs
        .saturating_sub(capture.stack_total().allocs);
    if !capture.stacks.is_empty() && missing > 0 {
        report.lost += missing;
        sink.lost(missing);
    }
    if !capture.complete {
        report.interrupted = true;
        report
            .notes
            .push("dtrace's output ends early: the results are partial".to_owned());
    }
}

/// Adds what dtrace said it dropped to `report` (and `sink`), beyond what [`hand_over`]
/// already counted.
pub fn account_drops(drops: errors::Drops, sink: &mut dyn StackSink, report: &mut RecordReport) {
    if drops.aggregation > report.lost {
        let more = drops.aggregation - report.lost;
        report.lost += more;
        sink.lost(more);
    }
    if drops.aggregation > 0 {
        report.notes.push(format!(
            "dtrace dropped {} aggregation updates (buffer full): counts are short by at most that many",
            drops.aggregation
        ));
    }
    if drops.dynamic > 0 {
        report.notes.push(format!(
            "dtrace dropped {} thread-local variables: the nesting guard of those calls failed, so some nested allocator calls may be counted twice",
            drops.dynamic
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("malloc", "malloc"));
        assert!(glob_match("malloc_type_*", "malloc_type_calloc"));
        assert!(glob_match("lib?oo*", "libfoo.dylib"));
        assert!(!glob_match("malloc", "malloc_zone_malloc"));
    }

    #[test]
    fn frames() {
        assert_eq!(
            frame("libsystem_malloc.dylib`malloc"),
            RawFrame::Symbol {
                module: Some("libsystem_malloc.dylib".into()),
                name: "malloc".into()
            }
        );
        assert_eq!(frame("0x10"), RawFrame::Address(16));
        assert_eq!(frame("m`a;b"), frame("m`a:b"));
        assert_eq!(duration_secs(Duration::from_millis(1500)), 2);
        assert_eq!(duration_secs(Duration::ZERO), 1);
    }
}
