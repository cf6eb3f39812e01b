//! `allocflame diff`: what changed between two captures.

use std::path::PathBuf;
use std::process::ExitCode;

use allocflame_core::report::{diff_stacks, StackChange};
use allocflame_core::{pipeline, render};
use allocflame_core::{Profile, WeightKind};
use serde::Serialize;

use crate::cmd_render::{load, program_name, stem, FormatArg};
use crate::output::{report, write_atomically, OutputArgs, Stream};

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
    let svg = args
        .output
        .svg
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{after_stem}-diff.svg")));
    let mut options = args.output.render_options(&program);
    if args.output.title.is_none() {
        options.title = Some(format!(
            "Change in {} of {program}: {} → {}",
            weight.count_name(),
            bt,
            at
        ));
    }
    let mut buf = Vec::new();
    render::differential(&before, &after, &options, &mut buf)?;
    write_atomically(&svg, |w| {
        use std::io::Write as _;
        w.write_all(&buf)
    })?;
    say!(
        "allocflame: wrote differential flame graph to {}",
        svg.display()
    );
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
