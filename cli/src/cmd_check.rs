//! `allocflame check`: record a program as `record` does, then hold its allocations against a
//! budget (`allocflame_core::budget`) and exit 0 (within), 1 (over) or 2 (error, or a verdict
//! the counts cannot prove).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use allocflame_core::budget::{Budget, EvalOptions, Limit, Outcome, PerCall, Verdict};
use allocflame_core::demangle::{demangle_symbol, DemangleOptions};
use allocflame_core::probes::Probe;
use allocflame_core::report::RunStatus;
use allocflame_core::source::Target;
use allocflame_core::WeightKind;
use serde::Serialize;

use crate::cmd_record::{self, Recording, TargetArgs};
use crate::output::{self, OutputArgs, Stream, WeightArg};

/// What `allocflame check --help` adds after the options.
const BUDGET_HELP: &str = "\
Budget file (--budget FILE): one limit per line, `#` starts a comment, blank lines are skipped:

    # FRAME-PATTERN     MAX-ALLOCS  [MAX-BYTES]  [per-call]
    *                   5000        1M           # the whole run
    parse_*             200                      # stacks with a frame matching parse_*
    \"closure #1 in *\"   50                       # quote a pattern that has spaces
    handle_request      12          4K           per-call

A limit counts the allocations whose stack has a frame matching FRAME-PATTERN. A pattern is
matched against a whole frame name, as the folded output writes it (demangled, after
--prettify/--rules): `*` stands for any run of characters, everything else for itself, so
`handle_request` matches that frame only and `*Parser*` every frame containing `Parser`; `*`
alone matches every allocation. Amounts are whole numbers, with an optional K, M or G suffix
(x1024); `-` leaves one of the two limits out. `per-call` lines count only the allocations made
inside calls of --per FUNCTION, divided by its calls.

Exit status: 0 every limit holds; 1 a limit is broken (each broken limit is printed with its
measured value, the excess and the stacks that contribute most); 2 an error (bad options or
budget file, the program not found, the recording failed, the program failed) or a verdict the
counts cannot prove: when events were lost the counts are lower bounds, so a broken limit
stays broken but one that holds is not proven.";

/// Arguments of `allocflame check`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = BUDGET_HELP)]
pub struct CheckArgs {
    /// Read limits from FILE (`FRAME-PATTERN MAX-ALLOCS [MAX-BYTES] [per-call]` per line; see
    /// the end of `check --help`). A line that is not of that shape is an error naming FILE:LINE, before anything runs.
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    /// The most allocation calls the whole run may make.
    #[arg(long, value_name = "N", value_parser = amount)]
    pub max_allocs: Option<u64>,
    /// The most bytes the whole run may ask for (K, M, G suffixes: x1024).
    #[arg(long, value_name = "B", value_parser = amount)]
    pub max_bytes: Option<u64>,
    /// The unit of work, FUNC (in the program's executable) or LIB:FUNC (a library, or the
    /// executable, by name or path): its calls are counted
    /// (not as allocations), and per-call figures are the allocations made inside its calls
    /// divided by them. Needs the perf backend (a uprobe on the function, which the in-process
    /// backend cannot hook): it is chosen for it.
    #[arg(long, value_name = "FUNCTION")]
    pub per: Option<String>,
    /// The most allocation calls per call of --per FUNCTION (made inside it).
    #[arg(long, value_name = "N", value_parser = amount, requires = "per")]
    pub max_allocs_per: Option<u64>,
    /// The most bytes per call of --per FUNCTION (asked for inside it).
    #[arg(long, value_name = "B", value_parser = amount, requires = "per")]
    pub max_bytes_per: Option<u64>,
    /// Write the verdict (limits, measured values, pass/fail, top stacks) as JSON to FILE; `-`
    /// prints it on stdout instead of the text.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// How many of the stacks that contribute most each broken limit lists.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top: usize,
    /// What orders the stacks that contribute most (and what -o and --folded weigh).
    #[arg(long, value_enum, default_value_t = WeightArg::Allocations)]
    pub weight: WeightArg,
    /// Also write the flame graph SVG to this file.
    #[arg(short = 'o', long = "output", value_name = "SVG")]
    pub svg: Option<PathBuf>,
    /// Also write the folded stacks (FlameGraph format) to this file.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Apply the built-in prettify rules before matching patterns.
    #[arg(long)]
    pub prettify: bool,
    /// Apply prettify rules from FILE before matching patterns; may be given more than once.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Match patterns against mangled names, as the binary has them.
    #[arg(long)]
    pub no_demangle: bool,
    /// Match patterns against full names: Swift as `swift demangle`, C++ with parameter lists.
    #[arg(long)]
    pub full_names: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn amount(text: &str) -> Result<u64, String> {
    allocflame_core::budget::parse_amount(text).map_err(|e| e.to_string())
}

/// The JSON verdict: the core's, with how the recording went.
#[derive(Serialize)]
struct CheckReport<'a> {
    /// Whether every limit holds.
    passed: bool,
    #[serde(flatten)]
    verdict: &'a Verdict,
    /// What orders the top stacks.
    weight: WeightKind,
    backend: &'static str,
    /// How the program ended.
    run: RunStatus,
    notes: &'a [String],
}

impl CheckArgs {
    /// The limits of the options and the budget file, in that order.
    fn budget(&self) -> anyhow::Result<Budget> {
        let mut budget = Budget::default();
        let whole = |origin: &str, allocs, bytes, per_call| Limit {
            origin: origin.into(),
            pattern: None,
            max_allocs: allocs,
            max_bytes: bytes,
            per_call,
        };
        if let Some(n) = self.max_allocs {
            budget
                .limits
                .push(whole("--max-allocs", Some(n), None, false));
        }
        if let Some(b) = self.max_bytes {
            budget
                .limits
                .push(whole("--max-bytes", None, Some(b), false));
        }
        if let Some(n) = self.max_allocs_per {
            budget
                .limits
                .push(whole("--max-allocs-per", Some(n), None, true));
        }
        if let Some(b) = self.max_bytes_per {
            budget
                .limits
                .push(whole("--max-bytes-per", None, Some(b), true));
        }
        if let Some(path) = &self.budget {
            let file = Budget::read(path)?;
            if self.per.is_none() {
                if let Some(l) = file.limits.iter().find(|l| l.per_call) {
                    anyhow::bail!(
                        "{}: a per-call limit needs --per FUNCTION (the function whose calls are the unit of work)",
                        l.origin
                    );
                }
            }
            budget.limits.extend(file.limits);
        }
        if budget.limits.is_empty() {
            anyhow::bail!(
                "no limit to check: give --max-allocs N, --max-bytes B, --max-allocs-per N, --max-bytes-per B (with --per FUNCTION) or --budget FILE"
            );
        }
        Ok(budget)
    }

    fn output_args(&self) -> OutputArgs {
        OutputArgs {
            svg: self.svg.clone(),
            folded: self.folded.clone(),
            prettify: self.prettify,
            rules: self.rules.clone(),
            weight: self.weight,
            no_demangle: self.no_demangle,
            full_names: self.full_names,
            ..OutputArgs::default()
        }
    }
}

/// The marker probe of `--per FUNCTION`: `LIB:FUNC`, or `FUNC` in the target's executable
/// (also when LIB is the executable's file name, which no library search would find).
fn marker(per: &str, target: &Target) -> anyhow::Result<Probe> {
    if let Some((lib, func)) = per.rsplit_once(':') {
        if lib.ends_with(':') {
            anyhow::bail!(
                "--per {per}: name the function by its symbol, as the binary has it (mangled: see `nm PROGRAM`, e.g. _ZN6Server6handleEi for Server::handle(int)); stacks show it demangled"
            );
        }
        if lib.is_empty() || func.is_empty() {
            anyhow::bail!("--per {per}: expected FUNC or LIB:FUNC");
        }
        if !lib.contains('/') {
            if let Ok(exe) = executable(target) {
                if std::path::Path::new(&exe).file_name() == Some(std::ffi::OsStr::new(lib)) {
                    return Ok(Probe::marker(&exe, func));
                }
            }
        }
        return Ok(Probe::marker(lib, func));
    }
    Ok(Probe::marker(&executable(target)?, per))
}

/// The path of the target's executable, where `--per FUNC` is placed.
#[cfg(target_os = "linux")]
fn executable(target: &Target) -> anyhow::Result<String> {
    let path = match target {
        Target::Spawn { argv } => {
            let program = argv.first().ok_or_else(|| anyhow::anyhow!("no program"))?;
            allocflame_backend_perf::spawn::resolve_program(program)?
        }
        Target::Attach { pid, .. } => std::fs::read_link(format!("/proc/{pid}/exe"))
            .map_err(|e| anyhow::anyhow!("cannot find the executable of process {pid}: {e}"))?,
    };
    let path = path.canonicalize().unwrap_or(path);
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", path.display()))
}

#[cfg(not(target_os = "linux"))]
fn executable(_target: &Target) -> anyhow::Result<String> {
    anyhow::bail!("--per needs the perf backend (uprobes), which is Linux-only")
}

/// Runs `allocflame check`; every error is status 2 (`main` sees to it).
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be wrong with the options is found before the program runs.
    let budget = args.budget()?;
    let target = args.target.target()?;
    let mut options = args.target.options(true)?;
    let marker_index = match &args.per {
        Some(per) => {
            options.probes.push(marker(per, &target)?);
            Some(options.probes.len() - 1)
        }
        None => None,
    };
    let output_args = args.output_args();
    let pipeline_options = output_args.pipeline_options()?;
    let Some(Recording { report, output }) =
        cmd_record::record_profile(&args.target, &target, &options, &pipeline_options)?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    for note in &output.notes {
        say!("allocflame: note: {note}");
    }
    // What was collected is written whatever the verdict.
    let weight: WeightKind = args.weight.into();
    if let Some(path) = &output_args.folded {
        output.check_weight(weight)?;
        output::write_atomically(path, |w| w.write_all(&output.folded(weight)))?;
        say!("allocflame: wrote folded stacks to {}", path.display());
    }
    if let Some(path) = &output_args.svg {
        if output.profile.is_empty() {
            say!("allocflame: no allocations recorded: no flame graph written");
        } else {
            let summary = output.summary_ranked(args.top, weight);
            let origin = output::Origin::recording(&target, report.backend);
            let svg = output.svg(&output_args.graph_options(
                &target.describe(),
                &origin,
                &summary,
                None,
            ))?;
            output::write_atomically(path, |w| w.write_all(&svg))?;
            say!("allocflame: wrote flame graph to {}", path.display());
        }
    }
    let per = match (&args.per, marker_index) {
        (Some(per), Some(i)) => {
            let function = options.probes[i].function.clone();
            let mut frames = vec![function.clone()];
            let demangle = (!args.no_demangle).then_some(DemangleOptions {
                simplified: !args.full_names,
                cpp_parameters: args.full_names,
            });
            if let Some(name) = demangle.and_then(|d| demangle_symbol(&function, &d)) {
                frames.push(name);
            }
            Some(PerCall {
                function: per.clone(),
                frames,
                calls: report.per_probe.get(i).map_or(0, |w| w.allocs),
            })
        }
        _ => None,
    };
    let verdict = budget.evaluate(
        &output.profile,
        &EvalOptions {
            per,
            lost: report.lost.max(output.profile.lost),
            partial: report.interrupted,
            weight,
            top: args.top,
        },
    );
    if let Some(p) = verdict
        .per
        .as_ref()
        .filter(|p| p.calls > 0 && p.allocs == 0)
    {
        say!(
            "allocflame: note: {} was called {} times and no allocation stack has its frame: it allocates nothing, or its frames are named otherwise (an alias; a name --rules changed)",
            p.function,
            p.calls
        );
    }
    let run = RunStatus::of(&report);
    let json = CheckReport {
        passed: verdict.outcome == Outcome::Pass,
        verdict: &verdict,
        weight,
        backend: report.backend,
        run: run.clone(),
        notes: &report.notes,
    };
    output::report(
        args.json.as_deref(),
        &json,
        Stream::for_target(&target),
        &verdict.to_string(),
    )?;
    let failed_program = report.exit().filter(|e| e.shell_status() != 0);
    Ok(match verdict.outcome {
        Outcome::Fail => ExitCode::from(1),
        Outcome::Unproven => ExitCode::from(2),
        Outcome::Pass => match failed_program {
            Some(exit) => {
                say!(
                    "allocflame: error: {} {exit}: a failed run proves no budget",
                    target.describe()
                );
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        },
    })
}
