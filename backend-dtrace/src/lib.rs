//! macOS allocation recording with DTrace.
//!
//! This backend is not available yet: [`DtraceSource::record`] returns [`Error::Unsupported`].

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

/// The dtrace event source.
#[derive(Debug, Default)]
pub struct DtraceSource;

impl EventSource for DtraceSource {
    fn name(&self) -> &'static str {
        "dtrace"
    }

    fn record(
        &mut self,
        _target: &Target,
        _options: &RecordOptions,
        _sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        Err(Error::Unsupported(
            "the dtrace backend is not available yet in this build".into(),
        ))
    }
}

/// The D script and the `dtrace` command line that a recording of `target` with `options`
/// would run, as text for `--dry-run`. Works on every platform.
pub fn dry_run(target: &Target, options: &RecordOptions) -> String {
    let _ = (target, options);
    String::from("(the DTrace backend is not available yet)\n")
}
