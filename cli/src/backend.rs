//! Which backend records, why, and running it with a live counter. The CLI always says which
//! backend ran and why (`allocflame: backend perf (--backend)`).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allocflame_backend_perf::PerfSource;
use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};

/// Which backend records.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendArg {
    /// The best one for this platform (Linux: perf uprobes; macOS: DTrace).
    #[default]
    Auto,
    /// Linux uprobes through perf_event_open.
    Perf,
    /// DTrace (macOS).
    Dtrace,
}

/// A backend that will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux uprobes through perf_event_open.
    Perf,
    /// DTrace.
    Dtrace,
}

impl Backend {
    /// The backend's name, as `--backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Perf => "perf",
            Backend::Dtrace => "dtrace",
        }
    }
}

/// The backend `arg` asks for and why it was chosen.
pub fn choose(arg: BackendArg) -> (Backend, &'static str) {
    match arg {
        BackendArg::Auto if cfg!(target_vendor = "apple") => (Backend::Dtrace, "auto: macOS"),
        BackendArg::Auto => (Backend::Perf, "auto: Linux uprobes through perf_event_open"),
        BackendArg::Perf => (Backend::Perf, "--backend"),
        BackendArg::Dtrace => (Backend::Dtrace, "--backend"),
    }
}

/// How the perf backend runs (its `record` options that have no place in [`RecordOptions`]).
#[derive(Clone, Debug, Default)]
pub struct PerfSettings {
    /// `--stack-bytes`.
    pub stack_bytes: Option<u32>,
    /// `--deep-stacks`.
    pub kernel_callchain: bool,
    /// `--buffer-kib`, in bytes.
    pub buffer_bytes: Option<usize>,
    /// `--save-raw`.
    pub save_raw: Option<std::path::PathBuf>,
    /// `--keep-priority`.
    pub keep_priority: bool,
}

/// Runs `backend` on `target`, handing stacks to `sink`, with a live allocation counter on
/// stderr when `live` (or stderr is a terminal). Prints the report's notes.
// `DtraceSource::default()`: it is a unit struct today, and may grow options.
#[allow(clippy::default_constructed_unit_structs)]
pub fn run(
    backend: Backend,
    perf: PerfSettings,
    live: bool,
    target: &Target,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
) -> anyhow::Result<RecordReport> {
    crate::signals::stop_on_signals(&options.stop);
    let progress = Arc::new(AtomicU64::new(0));
    let show = live || std::io::stderr().is_terminal();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = show.then(|| {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                use std::io::Write as _;
                let _ = write!(
                    std::io::stderr(),
                    "\rallocflame: {} allocations recorded",
                    progress.load(Ordering::Relaxed)
                );
            }
            say!();
        })
    });
    let result = match backend {
        Backend::Dtrace => {
            allocflame_backend_dtrace::DtraceSource::default().record(target, options, sink)
        }
        Backend::Perf => PerfSource {
            progress: Some(progress),
            stack_bytes: perf.stack_bytes,
            kernel_callchain: perf.kernel_callchain,
            buffer_bytes: perf.buffer_bytes,
            save_raw: perf.save_raw,
            keep_priority: perf.keep_priority,
        }
        .record(target, options, sink),
    };
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    let report = result?;
    for note in &report.notes {
        say!("allocflame: note: {note}");
    }
    if report.interrupted {
        say!("allocflame: the recording ended early; the results are partial");
    }
    Ok(report)
}
