//! Ctrl-C and SIGTERM during a recording: they end it early instead of killing allocflame, so
//! the backend releases its probes and what was collected is still written (said to be
//! partial).
//!
//! The handler itself needs `unsafe` (`sigaction`) and lives in `allocflame-backend-perf`
//! (`stop_on_signals`); this module is the one place the command line asks for it, so that
//! moving it (e.g. into a crate of its own) touches nothing else here.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Sets `stop` on SIGINT or SIGTERM from now on (the recording's
/// [`RecordOptions::stop`](allocflame_core::source::RecordOptions::stop) flag). Does nothing
/// where there are no such signals.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) {
    #[cfg(unix)]
    allocflame_backend_perf::stop_on_signals(stop.clone());
    #[cfg(not(unix))]
    let _ = stop;
}
