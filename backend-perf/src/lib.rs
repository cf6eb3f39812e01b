//! Linux allocation recording with perf_event_open uprobes.
//!
//! This backend is not available yet: [`PerfSource::record`] returns [`Error::Unsupported`].

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

/// The perf event source.
#[derive(Debug, Default)]
pub struct PerfSource;

impl EventSource for PerfSource {
    fn name(&self) -> &'static str {
        "perf"
    }

    fn record(
        &mut self,
        _target: &Target,
        _options: &RecordOptions,
        _sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        Err(Error::Unsupported(
            "the perf backend is not available yet in this build".into(),
        ))
    }
}
