//! `allocflame demangle`: a stdin → stdout filter.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use allocflame_core::demangle::{demangle_text, DemangleOptions};

/// Arguments of `allocflame demangle`.
#[derive(clap::Args, Debug)]
pub struct DemangleArgs {
    /// Print Swift names the way `swift demangle --simplified` does.
    #[arg(long)]
    pub simplified: bool,
}

/// Runs `allocflame demangle`: every mangled Swift, C++ or Rust name in each line of stdin is
/// replaced; everything else is copied unchanged.
pub fn run(args: DemangleArgs) -> anyhow::Result<ExitCode> {
    // Like c++filt, the filter prints C++ parameter lists.
    let options = DemangleOptions {
        simplified: args.simplified,
        cpp_parameters: true,
    };
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        // Non-UTF-8 bytes are passed through as they are.
        match std::str::from_utf8(&buf) {
            Ok(line) => out.write_all(demangle_text(line, &options).as_bytes()),
            Err(_) => out.write_all(&buf),
        }
        .map_err(crate::output::stdout_error)?;
        if interactive {
            out.flush().map_err(crate::output::stdout_error)?;
        }
    }
    out.flush().map_err(crate::output::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}
