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
    /// The best one for the target (Linux: in process for a program started here where it
    /// can be injected, else perf uprobes; macOS: DTrace).
    #[default]
    Auto,
    /// In process: an injected library interposes the allocator (LD_PRELOAD).
    Preload,
    /// Linux uprobes through perf_event_open.
    Perf,
    /// DTrace (macOS).
    Dtrace,
}

/// A backend that will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// In process (LD_PRELOAD).
    Preload,
    /// Linux uprobes through perf_event_open.
    Perf,
    /// DTrace.
    Dtrace,
}

impl Backend {
    /// The backend's name, as `--backend` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Preload => "preload",
            Backend::Perf => "perf",
            Backend::Dtrace => "dtrace",
        }
    }
}

/// The backend `arg` asks for and why it was chosen. `perf_only` names a perf-only option the
/// user gave (`--save-raw`, …), which makes `auto` choose perf.
pub fn choose(
    arg: BackendArg,
    target: &Target,
    options: &RecordOptions,
    perf_only: Option<&str>,
) -> (Backend, String) {
    match arg {
        BackendArg::Auto if cfg!(target_vendor = "apple") => {
            (Backend::Dtrace, "auto: macOS".into())
        }
        BackendArg::Auto => {
            let marker = options.probes.iter().find(|p| p.marker);
            let preload = match (perf_only, marker) {
                (Some(option), _) => Err(format!("{option} is an option of the perf backend")),
                (None, Some(m)) => Err(format!(
                    "--per {} counts the calls of a function of the program with a uprobe, which the in-process library cannot hook",
                    m.function
                )),
                (None, None) => allocflame_backend_preload::applies(target, options),
            };
            match preload {
                Ok(()) => (
                    Backend::Preload,
                    "auto: a program started here, recorded in process through LD_PRELOAD".into(),
                ),
                Err(why) => (
                    Backend::Perf,
                    format!(
                        "auto: Linux uprobes through perf_event_open, as not in process: {why}"
                    ),
                ),
            }
        }
        BackendArg::Preload => (Backend::Preload, "--backend".into()),
        BackendArg::Perf => (Backend::Perf, "--backend".into()),
        BackendArg::Dtrace => (Backend::Dtrace, "--backend".into()),
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
        Backend::Preload => allocflame_backend_preload::PreloadSource {
            progress: Some(progress),
            ..Default::default()
        }
        .record(target, options, sink),
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
            ready: None,
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
