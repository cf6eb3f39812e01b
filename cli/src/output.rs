//! What every command that produces a profile shares: its output arguments, mapped onto the
//! core's [`PipelineOptions`] and [`RenderOptions`], the files they name (written atomically),
//! and where reports go: the summary table to stdout, or to stderr when a program runs (its
//! stdout is its own), JSON to `--json FILE` (`-`: stdout). What the pipeline does lives in
//! `allocflame_core::pipeline`.

use std::path::{Path, PathBuf};

use allocflame_core::demangle::DemangleOptions;
use allocflame_core::pipeline::{Filters, Output, PipelineOptions};
use allocflame_core::prettify::Rules;
use allocflame_core::render::RenderOptions;
use allocflame_core::report::{RunStatus, Summary};
use allocflame_core::WeightKind;
use anyhow::Context;
use std::io::Write as _;

/// What a flame graph's widths stand for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightArg {
    /// Number of allocation calls.
    #[default]
    Allocations,
    /// Bytes requested.
    Bytes,
}

impl From<WeightArg> for WeightKind {
    fn from(w: WeightArg) -> Self {
        match w {
            WeightArg::Allocations => WeightKind::Allocations,
            WeightArg::Bytes => WeightKind::Bytes,
        }
    }
}

/// Output options shared by `record` and `render`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the flame graph SVG to this file [default: <name>.svg in the current directory].
    #[arg(short = 'o', long = "output", value_name = "SVG")]
    pub svg: Option<PathBuf>,
    /// Also write the folded stacks (FlameGraph format) to this file.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Write the summary as JSON to FILE; `-` prints it on stdout instead of the table.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Apply the built-in prettify rules (drop `specialized `, fold swift_allocObject→malloc into `A`).
    #[arg(long)]
    pub prettify: bool,
    /// Apply prettify rules from FILE (see README, "Prettify rules"); may be given more than once.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// What the widths stand for.
    #[arg(long, value_enum, default_value_t = WeightArg::Allocations)]
    pub weight: WeightArg,
    /// Draw a flame chart (stacks in order of first appearance) instead of a flame graph.
    #[arg(long)]
    pub flamechart: bool,
    /// Width of the SVG in pixels [default: fluid: laid out at 1200, stretched to the browser window].
    #[arg(long, value_name = "PIXELS")]
    pub width: Option<usize>,
    /// Title of the flame graph [default: names the program].
    #[arg(long)]
    pub title: Option<String>,
    /// Leave mangled names as they are.
    #[arg(long)]
    pub no_demangle: bool,
    /// Print names in full: Swift as `swift demangle` (not simplified), C++ with parameter lists.
    #[arg(long)]
    pub full_names: bool,
    /// How many functions the summary lists.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Keep only the stacks of this process id (recordings and `perf script` output with pids
    /// know it; folded and DTrace captures don't); may be repeated.
    #[arg(long = "only-pid", value_name = "PID")]
    pub filter_pids: Vec<u32>,
    /// Keep only the stacks of this allocation function (`malloc`, `swift_allocObject`; in a
    /// folded or DTrace capture, the stacks whose leaf frame it is); may be repeated.
    #[arg(long = "only-probe", value_name = "FUNC")]
    pub filter_probes: Vec<String>,
    /// Leave out the stacks whose weight (in --weight) is below N; the summary says how much
    /// was left out.
    #[arg(long, value_name = "N")]
    pub min_weight: Option<u64>,
}

impl OutputArgs {
    /// The core's rendering options for a graph about `program`.
    pub fn render_options(&self, program: &str) -> RenderOptions {
        RenderOptions {
            title: Some(
                self.title
                    .clone()
                    .unwrap_or_else(|| default_title(program, self.weight.into())),
            ),
            weight: self.weight.into(),
            flamechart: self.flamechart,
            width: self.width,
            ..RenderOptions::default()
        }
    }

    /// The core pipeline's options: demangling, prettify rules (read from their files) and
    /// filters.
    pub fn pipeline_options(&self) -> anyhow::Result<PipelineOptions> {
        let mut rules = Rules::default();
        if self.prettify {
            rules.extend(Rules::builtin());
        }
        for path in &self.rules {
            rules.extend(Rules::read(path).with_context(|| "reading prettify rules".to_string())?);
        }
        Ok(PipelineOptions {
            demangle: (!self.no_demangle).then_some(DemangleOptions {
                simplified: !self.full_names,
                cpp_parameters: self.full_names,
            }),
            rules,
            filters: Filters {
                pids: self.filter_pids.clone(),
                probes: self.filter_probes.clone(),
                min_weight: self.min_weight,
                weight: self.weight.into(),
            },
        })
    }
}

/// "Allocations of PROGRAM" or "Bytes allocated by PROGRAM".
pub fn default_title(program: &str, weight: WeightKind) -> String {
    match weight {
        WeightKind::Allocations => format!("Allocations of {program}"),
        WeightKind::Bytes => format!("Bytes allocated by {program}"),
    }
}

/// The SVG path used when `-o` is not given: `<name>.svg` in the current directory.
pub fn default_svg(name: &str) -> PathBuf {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!(
        "{}.svg",
        if stem.is_empty() { "allocflame" } else { &stem }
    ))
}

/// Where a summary table goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: reading a capture, attaching to a process.
    Stdout,
    /// Standard error: a program started by allocflame owns stdout.
    Stderr,
}

impl Stream {
    /// Where the reports of a recording of `target` go.
    pub fn for_target(target: &allocflame_core::source::Target) -> Stream {
        match target {
            allocflame_core::source::Target::Spawn { .. } => Stream::Stderr,
            _ => Stream::Stdout,
        }
    }
}

/// The error of a write to stdout that nobody reads any more (`allocflame … | head -1`):
/// `main` ends quietly on it.
#[derive(Debug)]
pub struct ClosedStdout;

impl std::fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for ClosedStdout {}

/// A failed write to stdout as an error: [`ClosedStdout`] for a closed pipe.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(ClosedStdout)
    } else {
        anyhow::Error::new(e).context("cannot write to stdout")
    }
}

/// Prints `text` on `stream`. A write to stdout that fails is an error ([`ClosedStdout`] when
/// nobody reads it); stderr that cannot be written to is ignored (there is nowhere to say so).
pub fn print(stream: Stream, text: &str) -> anyhow::Result<()> {
    match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(stdout_error)
        }
        Stream::Stderr => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// Writes a report: `value` as JSON to `json` (`-`: stdout) when asked, then the `table`
/// on `stream`, unless the JSON took stdout's place.
pub fn report(
    json: Option<&Path>,
    value: &impl serde::Serialize,
    stream: Stream,
    table: &str,
) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("JSON output")?;
    text.push('\n');
    match json {
        Some(path) if path.as_os_str() == "-" => print(Stream::Stdout, &text),
        Some(path) => {
            write_atomically(path, |w| w.write_all(text.as_bytes()))?;
            print(stream, table)?;
            say!("allocflame: wrote the JSON summary to {}", path.display());
            Ok(())
        }
        None => print(stream, table),
    }
}

/// Writes what the pipeline produced: the folded file, the SVG, and the summary (on `stream`,
/// and as JSON where `--json` says), with its notes on stderr; `run` says how the recorded run
/// ended. `program` names the profiled program (title); `default_name` gives the SVG name
/// when `-o` is not given. The folded file is written before an empty profile is reported,
/// so nothing collected is lost; an empty profile is an error that says why it may be empty.
pub fn emit(
    output: Output,
    args: &OutputArgs,
    program: &str,
    default_name: &str,
    run: &RunStatus,
    stream: Stream,
) -> anyhow::Result<Summary> {
    for note in &output.notes {
        say!("allocflame: note: {note}");
    }
    let weight: WeightKind = args.weight.into();
    output.check_weight(weight)?;
    if let Some(path) = &args.folded {
        write_atomically(path, |w| w.write_all(&output.folded(weight)))?;
        say!("allocflame: wrote folded stacks to {}", path.display());
    }
    let mut summary = output.summary(args.top);
    summary.run = run.clone();
    let svg_bytes = output.svg(&args.render_options(program))?;
    let svg = args
        .svg
        .clone()
        .unwrap_or_else(|| default_svg(default_name));
    write_atomically(&svg, |w| w.write_all(&svg_bytes))?;
    say!("allocflame: wrote flame graph to {}", svg.display());
    report(args.json.as_deref(), &summary, stream, &summary.to_string())?;
    Ok(summary)
}

/// Writes `path` the way a user expects of an output file: a new path, or a regular file with
/// one name, through a temporary file beside it renamed over it (a failure never leaves a
/// half-written output that looks complete; the old file's permissions are kept); any other
/// existing path — a symlink, a device such as `/dev/null` or `/dev/stdout`, a FIFO, a file
/// with several hard links — is opened and written in place, never replaced.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let existing = std::fs::symlink_metadata(path).ok();
    let replace = existing
        .as_ref()
        .map_or(true, |m| m.file_type().is_file() && m.nlink() == 1);
    if !replace {
        let result = (|| -> std::io::Result<()> {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            let mut w = std::io::BufWriter::new(file);
            write(&mut w)?;
            w.flush()
        })();
        return result.with_context(|| format!("cannot write {}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        if let Some(m) = &existing {
            file.set_permissions(m.permissions())?;
        }
        let mut w = std::io::BufWriter::new(file);
        write(&mut w)?;
        w.flush()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
