//! # allocflame-backend-preload
//!
//! In-process allocation recording for the programs allocflame starts: a small library,
//! built from `lib/*.c` and embedded here, is injected with `LD_PRELOAD`. It interposes
//! the allocation functions of the probe catalog, unwinds each caller's stack with the CFI of
//! the objects it runs (frame rules cached per return address), and counts every (function,
//! stack) into a hash table of the allocating thread, in a file shared with allocflame. Counting
//! is an update of that table, not a write to anyone; what was counted survives the program's
//! end however it ends (`exit`, `_exit`, `abort`, `SIGKILL`), since the tables are shared memory.
//! Forked children and the images processes exec load it too and get their own roots. It hands
//! aggregated stacks with file-relative addresses to a
//! [`StackSink`](allocflame_core::source::StackSink); it never symbolizes, demangles or renders.
//!
//! Not for attaching to a running process, for user probes (`--probe`), or for programs the
//! dynamic loader will not inject into (static, musl, setuid run by another user): there
//! [`PreloadSource::record`] returns [`Error::Unsupported`] with the reason, and the perf
//! backend applies. [`suitable::unsuitable`] tells beforehand.
//!
//! On macOS the library is `lib/preload_macos.c`, injected with `DYLD_INSERT_LIBRARIES`: it
//! interposes the macOS catalog (numbered in `lib/functions_macos.h`, see [`macos_catalog`]),
//! walks frame pointers, and writes the same shared file. Programs System Integrity Protection
//! covers, restricted ones and those of the hardened runtime cannot load it
//! ([`suitable_macos::unsuitable`] says so, pointing to the DTrace backend).
//!
//! ```no_run
//! use allocflame_backend_preload::PreloadSource;
//! use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
//! let options = RecordOptions::default();
//! let mut sink = Collector::new(&options.probes);
//! let report = PreloadSource::default()
//!     .record(&Target::spawn(["ls", "/"]), &options, &mut sink)
//!     .unwrap();
//! println!("{} allocations, {} lost", report.total().allocs, report.lost);
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use allocflame_core::source::{EventSource, RecordOptions, RecordReport, StackSink, Target};
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
use allocflame_core::Error;
use allocflame_core::Result;

#[cfg(unix)]
mod common;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
pub mod macos_catalog;
pub mod shm;
pub mod suitable;
pub mod suitable_macos;

/// The in-process event source. Construct with `Default` and set what differs.
#[derive(Debug, Default, Clone)]
pub struct PreloadSource {
    /// Updated with the number of allocations recorded so far, for a live counter. Default is
    /// `None`.
    pub progress: Option<Arc<AtomicU64>>,
    /// The most the shared file may hold, in bytes (its stacks and tables; it is sparse, so
    /// only what is used takes memory). Default is 1 GiB, or half the free space of its file
    /// system if that is less.
    pub capacity: Option<u64>,
}

/// Whether the in-process backend can record `target` with `options`; `Err` says why not
/// (attaching, a user probe, a program the dynamic loader will not inject into, another
/// platform).
pub fn applies(target: &Target, options: &RecordOptions) -> std::result::Result<(), String> {
    if cfg!(target_os = "macos") {
        return suitable_macos::applies(target, options);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) || library().is_empty() {
        return Err("the in-process library is built for Linux x86-64 only so far".into());
    }
    let argv = match target {
        Target::Spawn { argv } => argv,
        Target::Attach { .. } => {
            return Err(
                "attaching to a running process: injection needs a program started here".into(),
            )
        }
    };
    let glibc = allocflame_core::probes::Platform::LinuxGlibc;
    if let Some(p) = shm::foreign_probe(&shm::FUNCTIONS, glibc, &options.probes) {
        return Err(format!(
            "the probe {p}: the in-process library interposes only the allocator catalog"
        ));
    }
    let Some(program) = argv.first() else {
        return Err("no program to run".into());
    };
    #[cfg(unix)]
    {
        // A program that cannot be found is the backend's error to report, not a reason.
        let Ok(path) = resolve(program) else {
            return Ok(());
        };
        // SAFETY: geteuid and getegid have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if let Some(why) = suitable::unsuitable(&path, euid, egid) {
            return Err(why);
        }
    }
    let _ = program;
    Ok(())
}

#[cfg(target_os = "linux")]
fn resolve(program: &std::ffi::OsString) -> Result<std::path::PathBuf> {
    allocflame_backend_perf::spawn::resolve_program(program)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn resolve(program: &std::ffi::OsString) -> Result<std::path::PathBuf> {
    Ok(program.into())
}

/// The injected library, as built for this platform (empty where it is not built).
pub fn library() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/liballocflame_preload.so"))
}

impl EventSource for PreloadSource {
    fn name(&self) -> &'static str {
        "preload"
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

    #[cfg(target_os = "macos")]
    fn record(
        &mut self,
        target: &Target,
        options: &RecordOptions,
        sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        macos::record(self, target, options, sink)
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    fn record(
        &mut self,
        _target: &Target,
        _options: &RecordOptions,
        _sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        Err(Error::Unsupported(
            "the in-process backend is built for Linux and macOS only".into(),
        ))
    }
}
