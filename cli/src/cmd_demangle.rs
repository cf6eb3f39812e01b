//! `allocflame demangle`: a stdin → stdout filter.

use std::process::ExitCode;

/// Arguments of `allocflame demangle`.
#[derive(clap::Args, Debug)]
pub struct DemangleArgs {
    /// Print Swift names the way `swift demangle --simplified` does.
    #[arg(long)]
    pub simplified: bool,
}

/// Runs `allocflame demangle`.
pub fn run(args: DemangleArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
