//! Linux allocation recording with an eBPF program that aggregates stacks in the kernel.
//!
//! This backend is not available yet: [`EbpfSource::record`] returns [`Error::Unsupported`].
//! What exists is its unwinder's user-space half, [`unwind`]: the tables the BPF program will
//! walk, compiled from each object's `.eh_frame`, and the walk itself as the reference.

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
use allocflame_core::{Error, Result};

pub mod unwind;

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
