//! `allocflame render`.

use std::process::ExitCode;

use crate::output::OutputArgs;

/// Arguments of `allocflame render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `allocflame render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
