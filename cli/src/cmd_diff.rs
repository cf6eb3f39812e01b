//! `allocflame diff`: what changed between two captures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use allocflame_core::report::{diff_stacks, StackChange};
use allocflame_core::{pipeline, pprof, render};
use allocflame_core::{Profile, WeightKind};
use serde::Serialize;

use crate::cmd_render::{load, program_name, stem, FormatArg};
use crate::output::{pprof_options, report, write_atomically, OutputArgs, OutputFormat, Stream};

/// Arguments of `allocflame diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The format of both captures [default: guessed from each one's content].
    #[arg(long, value_enum)]
    pub from: Option<FormatArg>,
    /// The capture before the change.
    #[arg(value_name = "BEFORE")]
    pub before: PathBuf,
    /// The capture after the change.
    #[arg(value_name = "AFTER")]
    pub after: PathBuf,
    /// Scale BEFORE to AFTER's total first, to compare shapes rather than amounts.
    #[arg(long)]
    pub normalize: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Serialize)]
struct DiffReport<'a> {
    before_total: u64,
    after_total: u64,
    /// Whether either capture holds partial results (a recording that ended early).
    partial: bool,
    weight: WeightKind,
    grew: &'a [StackChange],
    shrank: &'a [StackChange],
}

/// `diff --format pprof`: pprof has no standard for negative samples, so the comparison is
/// written as two profiles, AFTER in `-o` and BEFORE (scaled with `--normalize`) beside it as
/// `<name>.base.pb.gz`, for `go tool pprof -diff_base BASE OUT` (which subtracts one from the
/// other) or any viewer that compares two profiles. Both have the same sample types; an empty
/// side is a valid profile without samples.
fn write_pprof_pair(
    args: &DiffArgs,
    before: &Profile,
    after: &Profile,
    after_stem: &str,
) -> anyhow::Result<()> {
    let weight: WeightKind = args.output.weight.into();
    let out = args
        .output
        .svg
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{after_stem}-diff.pb.gz")));
    let base = base_path(&out);
    let mut options = pprof_options(after, weight, None);
    let only_bytes =
        weight == WeightKind::Bytes && before.total().allocs == 0 && after.total().allocs == 0;
    options.sample_types = if only_bytes {
        vec![WeightKind::Bytes]
    } else if before.bytes_known && after.bytes_known {
        vec![WeightKind::Allocations, WeightKind::Bytes]
    } else {
        vec![WeightKind::Allocations]
    };
    options.allow_empty = true;
    for (path, profile) in [(&base, before), (&out, after)] {
        let bytes = pprof::encode(profile, &options)?;
        write_atomically(path, |w| {
            use std::io::Write as _;
            w.write_all(&bytes)
        })?;
    }
    say!(
        "allocflame: wrote AFTER's profile to {} and BEFORE's to {}; compare them with: go tool pprof -diff_base {} {}",
        out.display(),
        base.display(),
        base.display(),
        out.display()
    );
    Ok(())
}

/// `x.pb.gz` → `x.base.pb.gz` (also for `x.pb`, `x.gz` and `x`), in the same directory.
fn base_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "allocflame".into());
    let stem = [".pb.gz", ".pb", ".gz"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .filter(|s| !s.is_empty())
        .unwrap_or(&name);
    out.with_file_name(format!("{stem}.base.pb.gz"))
}

/// Runs `allocflame diff`.
pub fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let weight: WeightKind = args.output.weight.into();
    let options = args.output.pipeline_options()?;
    // `apply`, not `process`: one side emptied by the filters is a change worth drawing.
    let side = |name: &str, path: &std::path::Path| -> anyhow::Result<(Profile, bool)> {
        let (profile, run) = load(path, args.from, weight)?;
        let out = pipeline::apply(profile, &options);
        for note in &out.notes {
            say!("allocflame: note: {name}: {note}");
        }
        Ok((out.profile, run.partial))
    };
    let (before, before_partial) = side("before", &args.before)?;
    let (after, after_partial) = side("after", &args.after)?;
    let after_stem = stem(&args.after);
    let program = program_name(&after, &after_stem);
    let (bt, at) = (before.total().get(weight), after.total().get(weight));
    if bt == 0 && at == 0 {
        let hint = if options.filters.is_empty() {
            "both captures are empty".into()
        } else {
            format!(
                "both captures are empty after the filters ({})",
                options.filters
            )
        };
        anyhow::bail!(allocflame_core::Error::Empty { hint });
    }
    let before = if args.normalize && bt > 0 {
        before.scaled(at as f64 / bt as f64)
    } else {
        before
    };
    let changes = diff_stacks(&before, &after, weight);
    let grew: Vec<StackChange> = changes
        .iter()
        .filter(|c| c.delta > 0)
        .take(args.output.top)
        .cloned()
        .collect();
    let shrank: Vec<StackChange> = changes
        .iter()
        .rev()
        .filter(|c| c.delta < 0)
        .take(args.output.top)
        .cloned()
        .collect();
    if let Some(path) = &args.output.folded {
        write_atomically(path, |w| {
            use std::io::Write as _;
            for c in &changes {
                writeln!(w, "{} {} {}", c.stack, c.before, c.after)?;
            }
            Ok(())
        })?;
    }
    let format = args.output.output_format();
    match format {
        OutputFormat::Svg | OutputFormat::Html => {
            let extension = if format == OutputFormat::Html {
                "html"
            } else {
                "svg"
            };
            let svg = args
                .output
                .svg
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{after_stem}-diff.{extension}")));
            let mut options = args.output.render_options(&program);
            if args.output.title.is_none() {
                options.title = Some(format!(
                    "Change in {} of {program}: {} → {}",
                    weight.count_name(),
                    bt,
                    at
                ));
            }
            options.subtitle = Some(format!(
                "{} → {} · {bt} → {at} {}{} · red grew, blue shrank",
                args.before.display(),
                args.after.display(),
                weight.count_name(),
                if args.normalize {
                    " (before scaled to the after total)"
                } else {
                    ""
                }
            ));
            let mut buf = Vec::new();
            render::differential(&before, &after, &options, &mut buf)?;
            if format == OutputFormat::Html {
                buf = allocflame_core::html::page(
                    options.title.as_deref().unwrap_or_default(),
                    options.subtitle.as_deref().unwrap_or_default(),
                    &buf,
                    &[allocflame_core::html::diff_table(
                        &changes,
                        weight.count_name(),
                    )],
                )
                .into_bytes();
            }
            write_atomically(&svg, |w| {
                use std::io::Write as _;
                w.write_all(&buf)
            })?;
            say!(
                "allocflame: wrote {} to {}",
                if format == OutputFormat::Html {
                    "the differential HTML report"
                } else {
                    "differential flame graph"
                },
                svg.display()
            );
        }
        OutputFormat::Pprof => write_pprof_pair(&args, &before, &after, &after_stem)?,
    }
    let mut table = format!(
        "{}: {bt} before, {at} after ({:+})\n",
        weight.count_name(),
        at as i128 - bt as i128
    );
    for (title, list) in [("grew most", &grew), ("shrank most", &shrank)] {
        table.push_str(&format!("\nstacks that {title}:\n"));
        if list.is_empty() {
            table.push_str("  (none)\n");
        }
        for c in list {
            table.push_str(&format!(
                "{:>+12} {:>10} → {:<10} {}\n",
                c.delta, c.before, c.after, c.stack
            ));
        }
    }
    let json = DiffReport {
        before_total: bt,
        after_total: at,
        partial: before_partial || after_partial,
        weight,
        grew: &grew,
        shrank: &shrank,
    };
    report(args.output.json.as_deref(), &json, Stream::Stdout, &table)?;
    Ok(ExitCode::SUCCESS)
}
