//! Linux allocation recording with an eBPF program that aggregates stacks in the kernel.
//!
//! This backend is not available yet: [`EbpfSource::record`] returns [`Error::Unsupported`].

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

/// The ebpf event source.
#[derive(Debug, Default)]
pub struct EbpfSource;

impl EventSource for EbpfSource {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn record(
        &mut self,
        _target: &Target,
        _options: &RecordOptions,
        _sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        Err(Error::Unsupported(
            "the ebpf backend is not available yet in this build".into(),
        ))
    }
}
