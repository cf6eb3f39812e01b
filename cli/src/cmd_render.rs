//! `allocflame render`: a capture made with other tools → flame graph, folded stacks, summary.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use allocflame_core::import::{self, Format};
use allocflame_core::pipeline;
use allocflame_core::{Profile, WeightKind};
use anyhow::Context;

use allocflame_core::report::RunStatus;

use crate::output::{emit_files, Origin, OutputArgs, Span, Stream};
use crate::push::{self, PushArgs};

/// The capture formats `render` reads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    /// `perf script` output (uprobe or any events; `-g` or `--call-graph dwarf` stacks).
    PerfScript,
    /// DTrace aggregation output (`@[ustack()] = count()`).
    Dtrace,
    /// FlameGraph folded stacks (`frame;frame;leaf COUNT`).
    Folded,
    /// A pprof profile of allocations (`record --format pprof`, Go's heap profiles).
    Pprof,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::PerfScript => Format::PerfScript,
            FormatArg::Dtrace => Format::Dtrace,
            FormatArg::Folded => Format::Folded,
            FormatArg::Pprof => Format::Pprof,
        }
    }
}

/// Arguments of `allocflame render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The format of FILE [default: guessed from its content].
    #[arg(long, value_enum)]
    pub from: Option<FormatArg>,
    /// The capture to read (`-` for stdin); gzip-compressed files are unpacked.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to look first for the programs and libraries a raw capture (`record --save-raw`)
    /// refers to: by file name in DIR, and at their recorded path under DIR (a container's or
    /// chroot's root, a copy of the recorded machine's `/`); checked by build-id; may be repeated.
    #[arg(long = "binaries", value_name = "DIR")]
    pub binaries: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub push: PushArgs,
}

/// Interprets a raw capture of `allocflame record --save-raw` again: the profile and how the
/// recorded run ended.
fn replay(path: &Path, binaries: &[PathBuf]) -> anyhow::Result<(Profile, RunStatus)> {
    use allocflame_backend_perf::{capture_probes, replay, ReplayOptions};
    use allocflame_core::source::Collector;
    let options = ReplayOptions {
        search_dirs: binaries.to_vec(),
        ..ReplayOptions::default()
    };
    let mut sink = Collector::new(&capture_probes(path)?);
    let report = replay(path, &options, &mut sink)?;
    let (profile, notes) = sink.finish_with_notes();
    for note in report.notes.iter().chain(&notes) {
        say!("allocflame: note: {note}");
    }
    if report.interrupted {
        say!("allocflame: the recording ended early; the results are partial");
    }
    Ok((profile, RunStatus::of(&report)))
}

/// Whether the file at `path` is a raw capture.
fn is_raw_capture(path: &Path) -> bool {
    let mut head = vec![0u8; allocflame_backend_perf::capture::MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| allocflame_backend_perf::capture::is_capture(&head))
}

/// Reads a capture from `path` (`-` is stdin): the profile, and how the recorded run ended
/// where the capture says (a raw capture; the default for others). Folded input read with
/// `weight` bytes takes its counts as bytes.
pub fn load(
    path: &Path,
    from: Option<FormatArg>,
    weight: WeightKind,
) -> anyhow::Result<(Profile, RunStatus)> {
    load_with(path, from, weight, &[])
}

/// [`load`], looking for a raw capture's binaries in `binaries` first.
pub fn load_with(
    path: &Path,
    from: Option<FormatArg>,
    weight: WeightKind,
    binaries: &[PathBuf],
) -> anyhow::Result<(Profile, RunStatus)> {
    if from.is_none() && path.as_os_str() != "-" && is_raw_capture(path) {
        return replay(path, binaries);
    }
    let (bytes, name) = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        (buf, "<stdin>".to_owned())
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        (bytes, path.display().to_string())
    };
    let format = from.map(Format::from);
    let is_folded = match format {
        Some(f) => f == Format::Folded,
        None => std::str::from_utf8(&bytes)
            .ok()
            .and_then(import::detect)
            .is_some_and(|f| f == Format::Folded),
    };
    let profile = if is_folded && weight == WeightKind::Bytes {
        Profile::read_folded(&bytes[..], &name, WeightKind::Bytes)?
    } else {
        import::read_bytes(&bytes, &name, format)?
    };
    if profile.skipped > 0 {
        say!(
            "allocflame: {name}: {} records could not be used and were skipped",
            profile.skipped
        );
    }
    Ok((profile, RunStatus::default()))
}

/// The program a profile is about: its one root frame, or `fallback` when there are several.
pub fn program_name(profile: &Profile, fallback: &str) -> String {
    let mut roots = profile.stacks().filter_map(|(s, _)| s.first().copied());
    match roots.next() {
        Some(first) if roots.all(|r| r == first) => first.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// The file name without directories and extension, for titles and default output names.
pub fn stem(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "stdin".into();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s.to_owned(),
        _ => name.to_owned(),
    }
}

/// Whether `a` and `b` are one existing file (same device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.is_file() && x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Runs `allocflame render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let options = args.output.pipeline_options()?;
    args.push.check()?;
    let stem = stem(&args.file);
    // `render app.pb.gz --format pprof` would name its output after its input: never replace
    // the capture that is being read.
    let out = args
        .output
        .svg
        .clone()
        .unwrap_or_else(|| crate::output::default_path(&stem, args.output.output_format()));
    if same_file(&out, &args.file) {
        anyhow::bail!(
            "{}: the output would replace the capture being read; give another -o",
            out.display()
        );
    }
    let (profile, run) = load_with(
        &args.file,
        args.from,
        args.output.weight.into(),
        &args.binaries,
    )?;
    let program = program_name(&profile, &stem);
    let output = pipeline::process(profile, &options)?;
    // A capture read from a file carries no time: the push says "now".
    let span = Span::now();
    let emitted = emit_files(
        &output,
        &args.output,
        &program,
        &stem,
        &run,
        Stream::Stdout,
        None,
        &Origin {
            text: format!("capture {}", args.file.display()),
            recorded: false,
        },
    )?;
    let weight = args.output.weight.into();
    if let Some(code) = push::after_saving(
        &args.push, &output, weight, &program, &span, &emitted, 0, None,
    ) {
        return Ok(code);
    }
    Ok(ExitCode::SUCCESS)
}
