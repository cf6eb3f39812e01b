//! `allocflame record` and `allocflame count`.

use std::process::ExitCode;

use crate::output::OutputArgs;

/// Arguments of `allocflame record`.
#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The program to run and its arguments.
    #[arg(last = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Arguments of `allocflame count`.
#[derive(clap::Args, Debug)]
pub struct CountArgs {
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
    /// The program to run and its arguments.
    #[arg(last = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Runs `allocflame record`.
pub fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}

/// Runs `allocflame count`.
pub fn run_count(args: CountArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
