//! DTrace aggregation output → [`Profile`].

use crate::error::Result;
use crate::profile::Profile;

/// Options of the DTrace importer.
#[derive(Clone, Debug, Default)]
pub struct DtraceOptions {}

/// Whether `line` looks like part of DTrace output.
pub fn looks_like_dtrace(line: &str) -> bool {
    let _ = line;
    false
}

/// Parses DTrace `printa` output.
pub fn parse(text: &str, file: &str, options: &DtraceOptions) -> Result<Profile> {
    let _ = (text, file, options);
    Ok(Profile::new())
}
