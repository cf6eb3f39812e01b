//! `allocflame diff`.

use std::process::ExitCode;

use crate::output::OutputArgs;

/// Arguments of `allocflame diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `allocflame diff`.
pub fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
