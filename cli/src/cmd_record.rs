//! `allocflame record` and `allocflame count`: run a backend on a program (or a running
//! process), then hand the profile to the shared output pipeline.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use allocflame_core::pipeline;
use allocflame_core::probes::Probe;
use allocflame_core::report::RunStatus;
use allocflame_core::source::{Collector, RecordOptions, RecordReport, Target};
use serde::Serialize;

use crate::backend::{self, Backend, BackendArg, PerfSettings};
use crate::output::{self, OutputArgs, Span, Stream};
use crate::push::{self, PushArgs};

/// What to record: shared by `record` and `count`.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Which backend records.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Attach to this running process (all its threads) instead of starting a program.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pid: Option<u32>,
    /// With -p: record for this many seconds (default: until the process exits or Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Add a probe LIB:FUNC[:SIZE_ARG] (e.g. `libswiftCore:swift_allocObject:1`); may be repeated.
    #[arg(long = "probe", value_name = "LIB:FUNC[:SIZE_ARG]")]
    pub probes: Vec<String>,
    /// Probe only the --probe functions, not the built-in allocator catalog.
    #[arg(long)]
    pub only_probes: bool,
    /// Do not follow forked children.
    #[arg(long)]
    pub no_follow: bool,
    /// Show a live allocation counter on stderr even when it is not a terminal.
    #[arg(long)]
    pub live: bool,
    /// Bytes of user stack copied per allocation for unwinding (perf backend) [default: 32768, what Debian's python3, perl and git need; 1024 for `count`].
    #[arg(long, value_name = "BYTES")]
    pub stack_bytes: Option<u32>,
    /// Continue stacks deeper than the copied stack bytes with the kernel's frame-pointer chain
    /// (perf backend; slower, needs frame pointers in those callers).
    #[arg(long)]
    pub deep_stacks: bool,
    /// Size of each per-CPU ring buffer in KiB (perf backend) [default: 65536].
    #[arg(long, value_name = "KIB", hide = true)]
    pub buffer_kib: Option<usize>,
    /// Keep allocflame's reader at the priority it was started with (tests of a starved reader).
    #[arg(long, hide = true)]
    pub keep_priority: bool,
    /// Also save the raw capture (every record the recording interpreted) to FILE;
    /// `allocflame render FILE` interprets it again later (perf backend).
    #[arg(long, value_name = "FILE")]
    pub save_raw: Option<PathBuf>,
    /// Print what the DTrace backend would run (`--backend dtrace` only) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// The program to run and its arguments.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

/// Arguments of `allocflame record`.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub push: PushArgs,
}

/// Arguments of `allocflame count`.
#[derive(clap::Args, Debug)]
pub struct CountArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Write the counts as JSON to FILE; `-` prints them on stdout instead of the table.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl TargetArgs {
    /// The target: a program to start, or a process to attach to.
    pub fn target(&self) -> anyhow::Result<Target> {
        match (self.pid, self.command.is_empty()) {
            (Some(_), false) => anyhow::bail!("give either -p PID or a program after `--`, not both"),
            (Some(pid), true) => Ok(Target::Attach {
                pid,
                duration: match self.duration {
                    Some(s) if s.is_finite() && s > 0.0 => Some(
                        Duration::try_from_secs_f64(s)
                            .ok()
                            .filter(|&d| std::time::Instant::now().checked_add(d).is_some())
                            .ok_or_else(|| {
                                anyhow::anyhow!(
                                    "--duration {s}: too long for this system's clock (leave --duration out to record until the process exits or Ctrl-C)"
                                )
                            })?,
                    ),
                    Some(s) => anyhow::bail!("--duration {s}: expected a positive number of seconds"),
                    None => None,
                },
            }),
            (None, true) => anyhow::bail!(
                "nothing to record: give a program after `--` (allocflame record -- ./prog args) or -p PID"
            ),
            (None, false) => {
                if self.duration.is_some() {
                    anyhow::bail!("--duration needs -p PID (a started program is recorded until it exits)");
                }
                Ok(Target::Spawn {
                    argv: self.command.clone(),
                })
            }
        }
    }

    /// The recording options; `stacks: false` only counts.
    pub fn options(&self, stacks: bool) -> anyhow::Result<RecordOptions> {
        let mut options = RecordOptions {
            stacks,
            follow_children: !self.no_follow,
            ..RecordOptions::default()
        };
        if self.only_probes {
            options.probes.clear();
        }
        for p in &self.probes {
            let probe: Probe = p.parse()?;
            if probe.marker {
                anyhow::bail!(
                    "--probe {p}: a marker counts calls of a unit of work; that is `allocflame check --per FUNCTION`"
                );
            }
            if !options.probes.contains(&probe) {
                options.probes.push(probe);
            }
        }
        if options.probes.is_empty() {
            anyhow::bail!("--only-probes without any --probe: nothing to probe");
        }
        Ok(options)
    }
}

/// Runs the chosen backend; `None` when `--dry-run` printed what it would do.
fn run_backend(
    args: &TargetArgs,
    target: &Target,
    options: &RecordOptions,
    sink: &mut Collector,
) -> anyhow::Result<Option<RecordReport>> {
    let perf_only = [
        (args.save_raw.is_some(), "--save-raw"),
        (args.stack_bytes.is_some(), "--stack-bytes"),
        (args.deep_stacks, "--deep-stacks"),
        (args.buffer_kib.is_some(), "--buffer-kib"),
        (args.keep_priority, "--keep-priority"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name));
    let (backend, why) = backend::choose(args.backend, target, options, perf_only);
    if let Some(m) = options.probes.iter().find(|p| p.marker) {
        if backend != Backend::Perf {
            anyhow::bail!(
                "--per {}: only the perf backend counts calls of a program's own function (a uprobe); leave --backend out or give --backend perf",
                m.function
            );
        }
    }
    say!("allocflame: backend {} ({why})", backend.name());
    if args.dry_run {
        if backend != Backend::Dtrace {
            anyhow::bail!("--dry-run shows the DTrace script; use it with --backend dtrace");
        }
        output::print(
            Stream::Stdout,
            &allocflame_backend_dtrace::dry_run(target, options),
        )?;
        return Ok(None);
    }
    let buffer_bytes = match args.buffer_kib {
        Some(k) => Some(
            k.checked_mul(1024)
                .ok_or_else(|| anyhow::anyhow!("--buffer-kib {k}: too large"))?,
        ),
        None => None,
    };
    let perf = PerfSettings {
        stack_bytes: args.stack_bytes,
        kernel_callchain: args.deep_stacks,
        buffer_bytes,
        save_raw: args.save_raw.clone(),
        keep_priority: args.keep_priority,
    };
    backend::run(backend, perf, args.live, target, options, sink).map(Some)
}

/// What allocflame exits with after recording `target`: the started program's status (128 + N
/// when signal N killed it); success for an attached process.
fn exit_code(report: &RecordReport) -> ExitCode {
    ExitCode::from(exit_status(report))
}

/// [`exit_code`] as a number.
fn exit_status(report: &RecordReport) -> u8 {
    match report.exit() {
        Some(exit) => exit.shell_status().clamp(0, 255) as u8,
        None => 0,
    }
}

/// A finished recording: its report and its profile taken through the pipeline.
pub struct Recording {
    /// What the backend reported: per-probe totals, losses, how the program ended.
    pub report: RecordReport,
    /// The profile, demangled, with the rules and filters applied.
    pub output: pipeline::Output,
}

/// Records `target` as `args` and `options` say and takes its stacks through the pipeline:
/// the recording path `record` and `check` share. `None` when `--dry-run` printed what it
/// would do. Options files (rules) are read by the caller before, so a bad one costs no run.
pub fn record_profile(
    args: &TargetArgs,
    target: &Target,
    options: &RecordOptions,
    pipeline_options: &pipeline::PipelineOptions,
) -> anyhow::Result<Option<Recording>> {
    let mut sink = Collector::new(&options.probes);
    let Some(report) = run_backend(args, target, options, &mut sink)? else {
        return Ok(None);
    };
    let output = pipeline::from_collector(sink, pipeline_options)?;
    Ok(Some(Recording { report, output }))
}

/// Runs `allocflame record`.
pub fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.target()?;
    let options = args.target.options(true)?;
    // Rules files and the push URL are checked before the program runs, so a bad one costs
    // no recording.
    let pipeline_options = args.output.pipeline_options()?;
    args.push.check()?;
    let started = SystemTime::now();
    let Some(Recording { report, output }) =
        record_profile(&args.target, &target, &options, &pipeline_options)?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let span = Span {
        from: started,
        until: SystemTime::now(),
    };
    let program = target.describe();
    let emitted = output::emit_files(
        &output,
        &args.output,
        &program,
        &program,
        &RunStatus::of(&report),
        Stream::for_target(&target),
        Some(&span),
        &output::Origin::recording(&target, report.backend),
    )?;
    let summary = &emitted.summary;
    if summary.lost > 0 || report.lost > 0 {
        say!(
            "allocflame: warning: {} allocation events were lost; the counts are short by that much",
            report.lost.max(summary.lost)
        );
    }
    // An attached process is named by its stacks' root (its command name), not `pid N`.
    let push_program = crate::cmd_render::program_name(&output.profile, &program);
    // The Ctrl-C that ended the recording is spent; a new one gives up the push.
    options
        .stop
        .store(false, std::sync::atomic::Ordering::SeqCst);
    if let Some(code) = push::after_saving(
        &args.push,
        &output,
        args.output.weight.into(),
        &push_program,
        &span,
        &emitted,
        exit_status(&report),
        Some(options.stop.clone()),
    ) {
        return Ok(code);
    }
    Ok(exit_code(&report))
}

#[derive(Serialize)]
struct ProbeCount {
    count: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct CountReport {
    backend: &'static str,
    probes: serde_json::Map<String, serde_json::Value>,
    total: ProbeCount,
    lost: u64,
    /// Probe hits the kernel counted, when the backend reads its counters: counted + inner +
    /// lost = hits.
    hits: Option<u64>,
    /// Hits inside another probed call, counted once at that call.
    inner: u64,
    /// How the program ended and whether the counts are partial.
    #[serde(flatten)]
    run: RunStatus,
    notes: Vec<String>,
}

/// Runs `allocflame count`.
pub fn run_count(args: CountArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.target()?;
    let options = args.target.options(false)?;
    let mut sink = Collector::new(&options.probes);
    let Some(report) = run_backend(&args.target, &target, &options, &mut sink)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut probes = serde_json::Map::new();
    for (probe, w) in options.probes.iter().zip(&report.per_probe) {
        let entry = probes
            .entry(probe.function.clone())
            .or_insert_with(|| serde_json::json!({"count": 0, "bytes": 0}));
        let count = entry["count"].as_u64().unwrap_or(0) + w.allocs;
        let bytes = entry["bytes"].as_u64().unwrap_or(0) + w.bytes;
        *entry = serde_json::json!({"count": count, "bytes": bytes});
    }
    let total = report.total();
    let out = CountReport {
        backend: report.backend,
        probes,
        total: ProbeCount {
            count: total.allocs,
            bytes: total.bytes,
        },
        lost: report.lost,
        hits: report.hits,
        inner: report.inner,
        run: RunStatus::of(&report),
        notes: report.notes.clone(),
    };
    let mut table = format!("{:<28} {:>14} {:>16}\n", "function", "calls", "bytes");
    for (name, v) in &out.probes {
        let (c, b) = (
            v["count"].as_u64().unwrap_or(0),
            v["bytes"].as_u64().unwrap_or(0),
        );
        if c > 0 {
            table.push_str(&format!("{name:<28} {c:>14} {b:>16}\n"));
        }
    }
    table.push_str(&format!(
        "{:<28} {:>14} {:>16}\n",
        "total", total.allocs, total.bytes
    ));
    table.push_str(&format!(
        "lost: {}{}\n",
        report.lost,
        if report.lost == 0 {
            " (exact)"
        } else {
            " (counts are short by that much)"
        }
    ));
    if report.interrupted {
        table.push_str(
            "PARTIAL: the recording ended early; the counts cover only part of the run\n",
        );
    }
    output::report(
        args.json.as_deref(),
        &out,
        Stream::for_target(&target),
        &table,
    )?;
    Ok(exit_code(&report))
}
