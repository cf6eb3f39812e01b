//! The library API for backends: an [`EventSource`] is told the [`Target`], the probes and the
//! [`RecordOptions`], runs, and hands aggregated [`RawStack`]s to a [`StackSink`]. It reports
//! what it lost. It never renders or demangles: the core does that for every backend alike.
//!
//! A custom backend in a few lines (the `custom_backend` example runs a fuller one):
//!
//! ```
//! use allocflame_core::source::*;
//! use allocflame_core::{Result, Weight};
//!
//! struct Fixed;
//! impl EventSource for Fixed {
//!     fn name(&self) -> &'static str { "fixed" }
//!     fn record(&mut self, _t: &Target, o: &RecordOptions, sink: &mut dyn StackSink) -> Result<RecordReport> {
//!         sink.add(RawStack {
//!             pid: 1, comm: "demo".into(), probe: 0,
//!             frames: vec![RawFrame::symbol("malloc"), RawFrame::symbol("main")],
//!             weight: Weight::new(5, 80),
//!         });
//!         Ok(RecordReport::new(self.name(), o.probes.len()))
//!     }
//! }
//! let opts = RecordOptions::default();
//! let mut collector = Collector::new(&opts.probes);
//! let report = Fixed.record(&Target::spawn(["demo"]), &opts, &mut collector).unwrap();
//! let profile = collector.finish();
//! assert_eq!(report.backend, "fixed");
//! assert_eq!(profile.folded_lines()[0].0, "demo;main;malloc");
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::probes::{catalog, Platform, Probe};
use crate::profile::{FrameId, Labels, Profile, Weight};
use crate::Result;

/// What to profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Start this program (argv[0] is looked up in `PATH`) and record until it exits.
    Spawn {
        /// The program and its arguments.
        argv: Vec<OsString>,
    },
    /// Record a running process, which keeps running afterwards.
    Attach {
        /// Its process id.
        pid: u32,
        /// How long to record; `None` records until the process exits or the user stops.
        duration: Option<Duration>,
    },
}

impl Target {
    /// A target that spawns `argv`.
    pub fn spawn<I, S>(argv: I) -> Target
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Target::Spawn {
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    /// A short description for titles and messages: the program name or `pid N`.
    pub fn describe(&self) -> String {
        match self {
            Target::Spawn { argv } => argv
                .first()
                .map(|a| {
                    Path::new(a)
                        .file_name()
                        .unwrap_or(a)
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default(),
            Target::Attach { pid, .. } => format!("pid {pid}"),
        }
    }
}

/// How to record. Construct with `Default` and set what differs.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// The probed functions. Default is the platform's [`catalog`].
    pub probes: Vec<Probe>,
    /// Whether to collect call stacks; `false` only counts (`allocflame count`). Default is `true`.
    pub stacks: bool,
    /// Whether to follow forked children and the images they exec. Default is `true`.
    pub follow_children: bool,
    /// The deepest stack kept, in frames. Default is 256.
    pub max_depth: usize,
    /// Set by the caller (a Ctrl-C handler) to end the recording early; the backend then stops,
    /// releases everything and still hands over what it collected. Default is a fresh flag.
    pub stop: Arc<AtomicBool>,
}

/// The frame at the root side of a stack cut at `max_depth` frames ([`RecordOptions::max_depth`],
/// the allocator's own frame among them), the same in every backend.
pub fn deeper_than_frame(max_depth: usize) -> String {
    format!("[deeper than {max_depth} frames]")
}

/// The report's note on `stacks` allocations whose stacks were cut at `max_depth` frames.
pub fn deeper_than_note(stacks: u64, max_depth: usize) -> String {
    format!(
        "{stacks} stacks were deeper than {max_depth} frames and end in `{}` at the root side",
        deeper_than_frame(max_depth)
    )
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            probes: catalog(Platform::current()),
            stacks: true,
            follow_children: true,
            max_depth: 256,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl RecordOptions {
    /// Whether the caller asked the recording to end.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// One frame as a backend saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RawFrame {
    /// Already symbolized (DTrace gives `module` and `symbol`).
    Symbol {
        /// The module (`libsystem_malloc.dylib`), if known.
        module: Option<Arc<str>>,
        /// The symbol, possibly mangled.
        name: Arc<str>,
    },
    /// An address normalized to an object file and an offset in it, captured while the process
    /// lived, so that symbolization works after it exits.
    File {
        /// The ELF (or Mach-O) file mapped at the address.
        object: Arc<ObjectFile>,
        /// The offset of the address in that file.
        offset: u64,
    },
    /// An address in no file (JIT code, an unmapped page).
    Address(u64),
}

/// An object file (executable or shared library) as a backend saw it mapped: its path, its
/// identity, and, where the backend could keep it, the very file that was mapped.
#[derive(Debug)]
pub struct ObjectFile {
    /// Its path as the process mapped it.
    pub path: PathBuf,
    /// Its GNU build-id, when it has one (or the backend knew it).
    pub build_id: Option<Vec<u8>>,
    /// The mapped file itself, held open by the backend: symbolization reads it even when the
    /// path was replaced during the recording (a rebuilt binary). `None`: symbolization opens
    /// `path` and checks the build-id.
    pub file: Option<std::fs::File>,
}

impl ObjectFile {
    /// An object known by its path alone.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        ObjectFile {
            path: path.into(),
            build_id: None,
            file: None,
        }
    }
}

impl PartialEq for ObjectFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.build_id == other.build_id
    }
}

impl Eq for ObjectFile {}

impl std::hash::Hash for ObjectFile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
        self.build_id.hash(state);
    }
}

impl RawFrame {
    /// A frame at `offset` in the file at `path` (no build-id, not held open).
    pub fn file(path: impl Into<PathBuf>, offset: u64) -> RawFrame {
        RawFrame::File {
            object: Arc::new(ObjectFile::at(path)),
            offset,
        }
    }

    /// A symbolized frame without a module.
    pub fn symbol(name: &str) -> RawFrame {
        RawFrame::Symbol {
            module: None,
            name: name.into(),
        }
    }
}

/// Aggregated allocations of one (process, probe, stack).
#[derive(Clone, Debug)]
pub struct RawStack {
    /// The process id.
    pub pid: u32,
    /// The process name, the root frame of the stack.
    pub comm: String,
    /// Index of the probe in [`RecordOptions::probes`].
    pub probe: usize,
    /// The frames, **leaf first** (the allocator, then its caller, …), as unwinders yield them.
    pub frames: Vec<RawFrame>,
    /// Allocations and bytes.
    pub weight: Weight,
}

/// Where a backend hands what it recorded.
pub trait StackSink {
    /// Adds one aggregated stack. The same stack may be added more than once; weights add up.
    fn add(&mut self, stack: RawStack);
    /// Reports `n` allocation events that were lost (ring buffer overrun, map full, …).
    fn lost(&mut self, n: u64);
}

/// Per-probe totals and what a recording lost, returned by [`EventSource::record`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct RecordReport {
    /// The backend that ran.
    pub backend: &'static str,
    /// Totals per probe, in the order of [`RecordOptions::probes`].
    pub per_probe: Vec<Weight>,
    /// Events lost, counted by the backend. 0 means the counts are exact.
    pub lost: u64,
    /// Probe hits an independent counter saw (the kernel's event counts), when the backend has
    /// one: `counted + inner + lost = hits`. Default is `None`.
    pub hits: Option<u64>,
    /// Probe hits inside (or relayed from) another probed call, counted once at that call.
    /// Default is 0.
    pub inner: u64,
    /// The exit code of a spawned target that exited (`None` when a signal killed it, or when
    /// the target was attached to). Default is `None`.
    pub exit_code: Option<i32>,
    /// The signal that killed a spawned target. Default is `None`.
    pub signal: Option<i32>,
    /// How an attached process ended, when it ended during the recording and the backend saw
    /// its status (its tracer reaped it). Default is `None`.
    #[serde(skip)]
    pub attached_exit: Option<ProgramExit>,
    /// Whether the recording ended early (Ctrl-C, the target vanished or was killed) and the
    /// results are partial.
    pub interrupted: bool,
    /// Things the user should know (a probe whose library was not loaded, …).
    pub notes: Vec<String>,
}

impl RecordReport {
    /// An empty report for `probes` probes.
    pub fn new(backend: &'static str, probes: usize) -> Self {
        RecordReport {
            backend,
            per_probe: vec![Weight::default(); probes],
            ..Default::default()
        }
    }

    /// How the spawned target ended, if it did.
    pub fn exit(&self) -> Option<ProgramExit> {
        match (self.signal, self.exit_code) {
            (Some(sig), _) => Some(ProgramExit::Signal(sig)),
            (None, Some(code)) => Some(ProgramExit::Code(code)),
            (None, None) => None,
        }
    }

    /// Sets [`exit_code`](Self::exit_code) and [`signal`](Self::signal) from `exit`.
    pub fn set_exit(&mut self, exit: Option<ProgramExit>) {
        (self.exit_code, self.signal) = match exit {
            Some(ProgramExit::Code(c)) => (Some(c), None),
            Some(ProgramExit::Signal(s)) => (None, Some(s)),
            None => (None, None),
        };
    }

    /// The sum over all probes.
    pub fn total(&self) -> Weight {
        self.per_probe
            .iter()
            .fold(Weight::default(), |acc, w| acc + *w)
    }
}

/// How a started program ended: it exited with a code, or a signal killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgramExit {
    /// It exited (returned from `main`, called `exit`) with this code.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

impl ProgramExit {
    /// The status a shell reports for it (`$?`): the exit code, or 128 + the signal number.
    pub fn shell_status(self) -> i32 {
        match self {
            ProgramExit::Code(c) => c,
            ProgramExit::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ProgramExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ProgramExit::Code(c) => write!(f, "exited with status {c}"),
            ProgramExit::Signal(s) => match signal_name(s) {
                Some(name) => write!(f, "was killed by {name} (signal {s})"),
                None => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// The name of signal `sig` on this platform (`SIGTERM`), or `None` for one without a name
/// here (`SIGRTMIN+3` is named on Linux).
pub fn signal_name(sig: i32) -> Option<String> {
    // The same numbers on Linux and macOS.
    const COMMON: [(i32, &str); 12] = [
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (5, "SIGTRAP"),
        (6, "SIGABRT"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (11, "SIGSEGV"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
    ];
    #[cfg(target_os = "linux")]
    const OWN: &[(i32, &str)] = &[
        (7, "SIGBUS"),
        (10, "SIGUSR1"),
        (12, "SIGUSR2"),
        (16, "SIGSTKFLT"),
        (17, "SIGCHLD"),
        (18, "SIGCONT"),
        (19, "SIGSTOP"),
        (20, "SIGTSTP"),
        (21, "SIGTTIN"),
        (22, "SIGTTOU"),
        (23, "SIGURG"),
        (24, "SIGXCPU"),
        (25, "SIGXFSZ"),
        (26, "SIGVTALRM"),
        (27, "SIGPROF"),
        (28, "SIGWINCH"),
        (29, "SIGIO"),
        (30, "SIGPWR"),
        (31, "SIGSYS"),
    ];
    #[cfg(target_vendor = "apple")]
    const OWN: &[(i32, &str)] = &[
        (7, "SIGEMT"),
        (10, "SIGBUS"),
        (12, "SIGSYS"),
        (16, "SIGURG"),
        (17, "SIGSTOP"),
        (18, "SIGTSTP"),
        (19, "SIGCONT"),
        (20, "SIGCHLD"),
        (21, "SIGTTIN"),
        (22, "SIGTTOU"),
        (23, "SIGIO"),
        (24, "SIGXCPU"),
        (25, "SIGXFSZ"),
        (26, "SIGVTALRM"),
        (27, "SIGPROF"),
        (28, "SIGWINCH"),
        (29, "SIGINFO"),
        (30, "SIGUSR1"),
        (31, "SIGUSR2"),
    ];
    #[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
    const OWN: &[(i32, &str)] = &[];
    if let Some((_, name)) = COMMON.iter().chain(OWN).find(|(n, _)| *n == sig) {
        return Some((*name).to_owned());
    }
    // Linux's real-time signals, as the kernel numbers them (glibc keeps 32 and 33).
    if cfg!(target_os = "linux") && (34..=64).contains(&sig) {
        return Some(match sig - 34 {
            0 => "SIGRTMIN".to_owned(),
            30 => "SIGRTMAX".to_owned(),
            n => format!("SIGRTMIN+{n}"),
        });
    }
    None
}

/// A source of allocation events: the one entry shape of every backend.
pub trait EventSource {
    /// A short name (`perf`, `ebpf`, `dtrace`, …).
    fn name(&self) -> &'static str;

    /// Records `target` with `options`, handing stacks to `sink`. On an error after events were
    /// collected, the backend must first hand over what it has, so nothing is lost.
    fn record(
        &mut self,
        target: &Target,
        options: &RecordOptions,
        sink: &mut dyn StackSink,
    ) -> Result<RecordReport>;
}

/// A [`StackSink`] that aggregates raw stacks per (process, probe, stack) and turns them into
/// a [`Profile`] whose stacks keep their process id and probe ([`Labels`]), symbolizing
/// file-relative addresses on the way. [`crate::pipeline::from_collector`] takes it on through
/// demangling, rules and filters.
pub struct Collector {
    stacks: FxHashMap<StackKey, Weight>,
    /// The probed functions' names, by index in [`RecordOptions::probes`].
    probes: Vec<Arc<str>>,
    lost: u64,
    bytes_known: bool,
}

/// What the [`Collector`] aggregates by: the process id, the root frame, the probe index and
/// the frames (leaf first).
type StackKey = (u32, String, usize, Vec<RawFrame>);

impl Collector {
    /// A collector for a recording with `probes` (the [`RecordOptions::probes`] whose indices
    /// [`RawStack::probe`] holds).
    pub fn new(probes: &[Probe]) -> Self {
        Collector {
            stacks: FxHashMap::default(),
            probes: probes
                .iter()
                .map(|p| Arc::from(p.function.as_str()))
                .collect(),
            lost: 0,
            bytes_known: false,
        }
    }

    /// Events lost so far.
    pub fn lost_so_far(&self) -> u64 {
        self.lost
    }

    /// The total weight collected so far.
    pub fn total(&self) -> Weight {
        self.stacks
            .values()
            .fold(Weight::default(), |acc, w| acc + *w)
    }

    /// Symbolizes every stack and builds the profile.
    pub fn finish(self) -> Profile {
        self.finish_with_notes().0
    }

    /// Symbolizes every stack and builds the profile; also returns what the user should know
    /// about frames that could not be named (a file replaced during the recording, …).
    pub fn finish_with_notes(self) -> (Profile, Vec<String>) {
        let mut objects: FxHashMap<Arc<ObjectFile>, Vec<u64>> = FxHashMap::default();
        for (_, _, _, frames) in self.stacks.keys() {
            for f in frames {
                if let RawFrame::File { object, offset } = f {
                    objects.entry(object.clone()).or_default().push(*offset);
                }
            }
        }
        let symbols = crate::symbolize::symbolize_objects(objects);
        let mut profile = Profile::new();
        profile.lost = self.lost;
        profile.bytes_known = self.bytes_known;
        let mut out: Vec<FrameId> = Vec::new();
        for ((pid, root, probe, frames), w) in self.stacks {
            out.clear();
            out.push(profile.intern(&root));
            for f in frames.iter().rev() {
                let id = match f {
                    RawFrame::Symbol { name, .. } => profile.intern(name),
                    RawFrame::File { object, offset } => {
                        match symbols.names.get(&(object.clone(), *offset)) {
                            Some(syms) => {
                                for s in syms {
                                    out.push(profile.intern_at(&s.name, s.location.as_ref()));
                                }
                                continue;
                            }
                            None => profile
                                .intern(&crate::symbolize::unknown_frame(&object.path, *offset)),
                        }
                    }
                    RawFrame::Address(a) => profile.intern(&format!("[unknown {a:#x}]")),
                };
                out.push(id);
            }
            let labels = Labels {
                pid: Some(pid),
                // An index past the probe list is the backend's bug; the stack still counts.
                probe: self.probes.get(probe).cloned(),
            };
            profile.add_ids_labeled(out.as_slice(), &labels, w);
        }
        (profile, symbols.notes)
    }
}

impl StackSink for Collector {
    fn add(&mut self, stack: RawStack) {
        if stack.weight.bytes > 0 {
            self.bytes_known = true;
        }
        *self
            .stacks
            .entry((stack.pid, stack.comm, stack.probe, stack.frames))
            .or_default() += stack.weight;
    }

    fn lost(&mut self, n: u64) {
        self.lost += n;
    }
}
