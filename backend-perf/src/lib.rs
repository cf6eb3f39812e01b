//! # allocflame-backend-perf
//!
//! Linux allocation recording with uprobes opened through `perf_event_open` (the uprobe PMU):
//! exact counts, complete stacks (DWARF CFI unwinding with framehop of a copy of the top of the
//! user stack), threads, forked children and the images they exec, and attaching to a running
//! process. It hands aggregated stacks with file-relative addresses to a
//! [`StackSink`](allocflame_core::source::StackSink); it never symbolizes, demangles or renders.
//!
//! Not for macOS (the DTrace backend) or for programs that the in-process backend can run
//! faster. On other OSes [`PerfSource::record`] returns [`Error::Unsupported`].
//!
//! ```no_run
//! use allocflame_backend_perf::PerfSource;
//! use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
//! let options = RecordOptions::default();
//! let mut sink = Collector::new(&options.probes);
//! let report = PerfSource::default()
//!     .record(&Target::spawn(["ls", "/"]), &options, &mut sink)
//!     .unwrap();
//! println!("{} allocations, {} lost", report.total().allocs, report.lost);
//! let profile = sink.finish();
//! # let _ = profile;
//! ```

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use replay::{capture_probes, replay, replay_reader, ReplayOptions};

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
#[cfg(not(target_os = "linux"))]
use allocflame_core::Error;
use allocflame_core::Result;

pub mod capture;
#[cfg(unix)]
pub mod inherited;
pub mod interpret;
#[cfg(target_os = "linux")]
mod linux;
/// Starting a program the way allocflame's backends do: held before `exec`, with the signal
/// state and standard descriptors the user's shell gave allocflame.
#[cfg(target_os = "linux")]
pub use linux::spawn;
pub mod objects;
pub mod procfs;
mod prologue;
pub mod record;
pub mod replay;
#[cfg(unix)]
mod signals;
#[cfg(unix)]
pub use signals::stop_on_signals;

/// The perf event source. Construct with `Default` and set what differs.
#[derive(Debug, Default, Clone)]
pub struct PerfSource {
    /// Bytes of user stack copied at each probe hit for DWARF unwinding. Default is 32 KiB when
    /// recording stacks and 1 KiB when only counting (enough to see nesting in the allocator).
    pub stack_bytes: Option<u32>,
    /// Whether to continue stacks deeper than `stack_bytes` with the kernel's frame-pointer
    /// callchain (`PERF_SAMPLE_CALLCHAIN`); needs frame pointers in those deep callers and costs
    /// about 0.8 µs per allocation here. Without it such stacks end in a `[stack truncated]`
    /// frame. Default is `false`.
    pub kernel_callchain: bool,
    /// Size of each per-CPU ring buffer in bytes (rounded to a power of two). Default is 64 MiB.
    pub buffer_bytes: Option<usize>,
    /// Updated with the number of allocations recorded so far, for a live counter. Default is
    /// `None`.
    pub progress: Option<Arc<AtomicU64>>,
    /// Also save everything the recording's interpreter was fed as a raw capture in this
    /// file, which [`replay::replay`] (`allocflame render FILE`) interprets again later, here
    /// or on another machine with the same binaries. Default is `None`.
    pub save_raw: Option<PathBuf>,
    /// Set once the probes and events are in place on the target (a caller holding the target
    /// waits for it before letting it go on). Default is `None`.
    pub ready: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Whether the reader keeps the scheduling priority it was started with, instead of
    /// running ahead of ordinary processes (lowest real-time priority as root, else nice
    /// -10); for tests of a starved reader. Default is `false`.
    pub keep_priority: bool,
}

impl EventSource for PerfSource {
    fn name(&self) -> &'static str {
        "perf"
    }

    #[cfg(target_os = "linux")]
    fn record(
        &mut self,
        target: &Target,
        options: &RecordOptions,
        sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        linux::record(self, target, options, sink)
    }

    #[cfg(not(target_os = "linux"))]
    fn record(
        &mut self,
        _target: &Target,
        _options: &RecordOptions,
        _sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        Err(Error::Unsupported(
            "the perf backend uses Linux uprobes; on macOS use --backend dtrace".into(),
        ))
    }
}
