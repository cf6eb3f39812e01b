//! What every command that produces a profile shares: its output arguments, mapped onto the
//! core's [`PipelineOptions`] and [`RenderOptions`], the files they name (written atomically),
//! and where reports go: the summary table to stdout, or to stderr when a program runs (its
//! stdout is its own), JSON to `--json FILE` (`-`: stdout). What the pipeline does lives in
//! `allocflame_core::pipeline`.

use std::path::{Path, PathBuf};

use allocflame_core::demangle::DemangleOptions;
use allocflame_core::pipeline::{Filters, Output, PipelineOptions};
use allocflame_core::pprof::{self, PprofOptions};
use allocflame_core::prettify::Rules;
use allocflame_core::render::RenderOptions;
use allocflame_core::report::{RunStatus, Summary};
use allocflame_core::{Profile, WeightKind};
use anyhow::Context;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// What `-o` holds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// The flame graph, an SVG.
    #[default]
    Svg,
    /// The profile as gzipped pprof (profile.proto), for `go tool pprof`, Pyroscope, Grafana,
    /// speedscope: sample types alloc_objects/count and alloc_space/bytes, labels pid and probe.
    Pprof,
    /// A self-contained HTML report: the flame graph, the allocation sites and the program's
    /// functions (the changed stacks, for `diff`), with search and sortable columns.
    Html,
}

/// Where a graph's profile came from, for its subtitle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The command line or pid and the backend, or the capture file.
    pub text: String,
    /// Whether allocflame recorded it (so that its losses are known and "exact" holds).
    pub recorded: bool,
}

impl Origin {
    /// A recording of `target` by `backend`.
    pub fn recording(target: &allocflame_core::source::Target, backend: &str) -> Origin {
        use allocflame_core::source::Target;
        let what = match target {
            Target::Spawn { argv } => argv
                .iter()
                .map(|a| {
                    let a = a.to_string_lossy();
                    if a.is_empty()
                        || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c))
                    {
                        format!("'{}'", a.replace('\'', "'\\''"))
                    } else {
                        a.into_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.describe(),
        };
        Origin {
            text: format!("{what} · backend {backend}"),
            recorded: true,
        }
    }
}

/// Output options shared by `record` and `render`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the flame graph SVG (or, with --format pprof, the pprof profile) to this file
    /// [default: <name>.svg (<name>.pb.gz) in the current directory].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// What -o holds: the flame graph (`svg`), the profile as gzipped pprof (`pprof`,
    /// readable by `go tool pprof`, Pyroscope and speedscope), or an HTML report (`html`)
    /// [default: `html` when -o ends in .html, else `svg`].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
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
    /// Draw the icicle of allocation sites: each stack cut at the code that called the
    /// allocator, sites at the top, their callers below.
    #[arg(long)]
    pub inverted: bool,
    /// Give each frame its source file:line (from debug info), so that the graph and folded
    /// text tell a function's call sites apart; the summary's sites show lines always.
    #[arg(long)]
    pub lines: bool,
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
            inverted: self.inverted,
            ..RenderOptions::default()
        }
    }

    /// The rendering options of a graph of `summary` about `program`, with the subtitle that
    /// says where it came from, how much it holds, and when it was recorded (`span`; now for a
    /// capture read from a file).
    pub fn graph_options(
        &self,
        program: &str,
        origin: &Origin,
        summary: &Summary,
        span: Option<&Span>,
    ) -> RenderOptions {
        let mut options = self.render_options(program);
        let when = span.map_or_else(SystemTime::now, |s| s.until);
        options.subtitle = Some(allocflame_core::report::subtitle(
            &origin.text,
            summary,
            origin.recorded,
            when,
        ));
        options
    }

    /// What -o holds: `--format`, else HTML for a `.html` path, else the SVG.
    pub fn output_format(&self) -> OutputFormat {
        if let Some(f) = self.format {
            return f;
        }
        match self.svg.as_deref().and_then(Path::extension) {
            Some(e) if e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm") => {
                OutputFormat::Html
            }
            _ => OutputFormat::Svg,
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
            lines: self.lines,
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

/// The path of `-o` when it is not given: `<name>.svg`, or `<name>.pb.gz` with `--format
/// pprof`, in the current directory.
pub fn default_path(name: &str, format: OutputFormat) -> PathBuf {
    match format {
        OutputFormat::Svg => default_output(name, "svg"),
        OutputFormat::Pprof => default_output(name, "pb.gz"),
        OutputFormat::Html => default_output(name, "html"),
    }
}

/// The pprof options for `profile` drawn by `weight` over `span`: both sample types where
/// the capture has them, only bytes for a capture read as bytes (a folded file with
/// `--weight bytes` has no allocation counts); `weight` is the type viewers show first.
pub fn pprof_options(profile: &Profile, weight: WeightKind, span: Option<&Span>) -> PprofOptions {
    let only_bytes = weight == WeightKind::Bytes && profile.total().allocs == 0;
    let (time_nanos, duration_nanos) = span.map_or((0, 0), Span::nanos);
    PprofOptions {
        sample_types: if only_bytes {
            vec![WeightKind::Bytes]
        } else {
            Vec::new()
        },
        default_type: Some(weight),
        time_nanos,
        duration_nanos,
        ..PprofOptions::default()
    }
}

/// What a pprof file says about itself (`go tool pprof -comments`): who made it, of what, and
/// whether its counts are short (a recording that ended early, lost events).
pub fn pprof_comments(program: &str, run: &RunStatus, lost: u64) -> Vec<String> {
    let mut comments = vec![format!(
        "allocflame {}: allocations of {program}",
        env!("CARGO_PKG_VERSION")
    )];
    if run.partial {
        comments.push(
            "PARTIAL: the recording ended early; the counts cover only part of the run".into(),
        );
    }
    if lost > 0 {
        comments.push(format!(
            "{lost} allocation events were lost; the counts are short by that much"
        ));
    }
    comments
}

/// When a recording ran (wall clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// When it started.
    pub from: SystemTime,
    /// When it ended.
    pub until: SystemTime,
}

impl Span {
    /// A span that is the moment of now (a capture read from a file carries no time).
    pub fn now() -> Span {
        let now = SystemTime::now();
        Span {
            from: now,
            until: now,
        }
    }

    /// Unix seconds of `from` and `until`.
    pub fn unix_seconds(&self) -> (u64, u64) {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        (secs(self.from), secs(self.until).max(secs(self.from)))
    }

    /// The start in nanoseconds since the epoch, and the duration in nanoseconds.
    fn nanos(&self) -> (i64, i64) {
        let start = self
            .from
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0));
        let length = self
            .until
            .duration_since(self.from)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0));
        (start, length)
    }
}

fn default_output(name: &str, extension: &str) -> PathBuf {
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
        "{}.{extension}",
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

/// What [`emit_files`] wrote.
pub struct Emitted {
    /// The summary it reported.
    pub summary: Summary,
    /// The files it wrote, in order.
    pub files: Vec<PathBuf>,
    /// The pprof file and its bytes, when `-o` holds the profile as pprof.
    pub pprof: Option<(PathBuf, Vec<u8>)>,
}

/// Writes what the pipeline produced: the folded file, the SVG (or the pprof profile with
/// `--format pprof`), and the summary (on `stream`, and as JSON where `--json` says), with its
/// notes on stderr; `run` says how the recorded run ended. `program` names the profiled
/// program (title); `default_name` gives the output's name when `-o` is not given. The folded
/// file is written before an empty profile is reported, so nothing collected is lost; an empty
/// profile is an error that says why it may be empty.
/// A recording made over `span` gives its time to a pprof output; `origin` says where the
/// profile came from in the graph's subtitle.
#[allow(clippy::too_many_arguments)]
pub fn emit_files(
    output: &Output,
    args: &OutputArgs,
    program: &str,
    default_name: &str,
    run: &RunStatus,
    stream: Stream,
    span: Option<&Span>,
    origin: &Origin,
) -> anyhow::Result<Emitted> {
    for note in &output.notes {
        say!("allocflame: note: {note}");
    }
    let weight: WeightKind = args.weight.into();
    output.check_weight(weight)?;
    let mut files = Vec::new();
    if let Some(path) = &args.folded {
        write_atomically(path, |w| w.write_all(&output.folded(weight)))?;
        say!("allocflame: wrote folded stacks to {}", path.display());
        files.push(path.clone());
    }
    let mut summary = output.summary_ranked(args.top, weight);
    summary.run = run.clone();
    let format = args.output_format();
    let path = args
        .svg
        .clone()
        .unwrap_or_else(|| default_path(default_name, format));
    let mut pprof_bytes = None;
    let graph = || {
        let options = args.graph_options(program, origin, &summary, span);
        output.svg(&options).map(|svg| (svg, options))
    };
    match format {
        OutputFormat::Svg => {
            let (svg_bytes, _) = graph()?;
            write_atomically(&path, |w| w.write_all(&svg_bytes))?;
            say!("allocflame: wrote flame graph to {}", path.display());
        }
        OutputFormat::Html => {
            let (svg_bytes, options) = graph()?;
            let page = allocflame_core::html::page(
                options.title.as_deref().unwrap_or_default(),
                options.subtitle.as_deref().unwrap_or_default(),
                &svg_bytes,
                &allocflame_core::html::summary_tables(&summary),
            );
            write_atomically(&path, |w| w.write_all(page.as_bytes()))?;
            say!("allocflame: wrote the HTML report to {}", path.display());
        }
        OutputFormat::Pprof => {
            if args.flamechart || args.width.is_some() || args.title.is_some() {
                say!("allocflame: note: --flamechart, --width and --title shape the SVG; with --format pprof they change nothing");
            }
            // pprof has fields of its own for source lines: the names stay names.
            let profile = output.located.as_ref().unwrap_or(&output.profile);
            let mut options = pprof_options(profile, weight, span);
            options.comments = pprof_comments(program, run, summary.lost);
            let bytes = pprof::encode(profile, &options)?;
            write_atomically(&path, |w| w.write_all(&bytes))?;
            say!(
                "allocflame: wrote the pprof profile to {} (go tool pprof -top {})",
                path.display(),
                path.display()
            );
            pprof_bytes = Some((path.clone(), bytes));
        }
    }
    files.push(path);
    report(args.json.as_deref(), &summary, stream, &summary.to_string())?;
    if let Some(json) = args.json.as_deref().filter(|p| p.as_os_str() != "-") {
        files.push(json.to_path_buf());
    }
    Ok(Emitted {
        summary,
        files,
        pprof: pprof_bytes,
    })
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
