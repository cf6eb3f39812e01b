//! Shared by the `record*` CLI tests: the binary under test; the rest (building the programs of
//! `tests/programs/`, checking the kernel facility, reading /proc) is the `allocflame-tests`
//! crate's.
// Each test binary uses a different part of these.
#![allow(unused_imports)]

pub use allocflame_tests::{
    build_c, exclusive, malloc_first_bytes, no_probe_added_since, proc_state, programs_dir,
    tracefs_writable, tracer_pid, uprobe_events, uprobes_available, wait_until, TempDir, WAIT,
};

/// The `allocflame` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_allocflame")
}
