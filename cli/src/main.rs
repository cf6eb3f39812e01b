//! The `allocflame` command: where does a program allocate heap memory?

#![forbid(unsafe_code)]

/// `eprintln!` that never panics: a message on stderr, lost when stderr is closed or a pipe
/// nobody reads any more (there is nowhere else to say it, and the run goes on).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod backend;
mod cmd_check;
mod cmd_demangle;
mod cmd_diff;
mod cmd_record;
mod cmd_render;
mod output;
mod push;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Where does my program allocate? Exact allocation counts and allocation flame graphs.
#[derive(Parser, Debug)]
#[command(name = "allocflame", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Record a program's (or a running process's) allocations and draw a flame graph.
    Record(cmd_record::RecordArgs),
    /// Count allocation calls and bytes per allocation function, without stacks.
    Count(cmd_record::CountArgs),
    /// Record a program and check its allocations against a budget (exit 0 within, 1 over, 2 error).
    Check(cmd_check::CheckArgs),
    /// Turn a capture (perf script, DTrace output, folded stacks) into a flame graph.
    Render(cmd_render::RenderArgs),
    /// Draw a differential flame graph of two captures and list what grew and shrank.
    ///
    /// With --format pprof, -o OUT.pb.gz gets AFTER's profile and OUT.base.pb.gz beside it
    /// BEFORE's (scaled with --normalize): pprof has no standard for negative values, and
    /// `go tool pprof -diff_base OUT.base.pb.gz OUT.pb.gz` shows what changed.
    Diff(cmd_diff::DiffArgs),
    /// Demangle Swift, C++ and Rust names in text read from stdin (like `swift demangle`, `c++filt`).
    Demangle(cmd_demangle::DemangleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `check` is a CI gate: 1 means over budget, so its errors are 2 (as clap's usage errors).
    let failure = match cli.command {
        Command::Check(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    let result = match cli.command {
        Command::Record(a) => cmd_record::run_record(a),
        Command::Count(a) => cmd_record::run_count(a),
        Command::Check(a) => cmd_check::run(a),
        Command::Render(a) => cmd_render::run(a),
        Command::Diff(a) => cmd_diff::run(a),
        Command::Demangle(a) => cmd_demangle::run(a),
    };
    match result {
        Ok(code) => code,
        // The reader of stdout went away (`allocflame … | head -1`): what it wanted was
        // written, files are complete; end quietly with the status of a process SIGPIPE ended,
        // as `cat` or `grep` would.
        Err(e) if e.is::<output::ClosedStdout>() => ExitCode::from(128 + 13),
        Err(e) => {
            say!("allocflame: error: {}", causes(&e));
            failure
        }
    }
}

/// The error and its causes joined by ": ", each said once: the core's errors keep their
/// source (an `io::Error`) and also show it in their message (`path: No such file…`), which
/// anyhow's `{:#}` would print twice.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
