//! Shared by the `record*` CLI tests: the binary under test; the rest (building the programs of
//! `tests/programs/`, checking the kernel facility, reading /proc) is the `allocflame-tests`
//! crate's.
// Each test binary uses a different part of these.
#![allow(unused_imports, dead_code)]

pub use allocflame_tests::{
    build_c, exclusive, malloc_first_bytes, no_probe_added_since, proc_state, programs_dir,
    tracefs_writable, tracer_pid, uprobe_events, uprobes_available, wait_until, TempDir, WAIT,
};

/// The `allocflame` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_allocflame")
}

/// Runs `cmd` to its end and asserts that it succeeded (its stderr is the failure message).
pub fn succeed(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running program that printed its pid on its first line of stdout (the rest of its
/// stdout stays readable); killed when dropped.
pub struct PidPrinter {
    pub child: std::process::Child,
    pub pid: u32,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PidPrinter {
    /// Starts `prog` with `args` and reads its pid.
    pub fn start(prog: &std::path::Path, args: &[&std::ffi::OsStr]) -> PidPrinter {
        use std::io::BufRead;
        let mut child = std::process::Command::new(prog)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let pid = line.trim().parse().unwrap();
        PidPrinter { child, pid, stdout }
    }
}

impl Drop for PidPrinter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example C++ program (`examples/captures/kvstore.cpp`) built `-O2 -g` in `dir`, as a
/// release build with debug info is, and its source text.
pub fn build_kvstore(dir: &TempDir) -> (std::path::PathBuf, String) {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/captures/kvstore.cpp");
    let exe = dir.path().join("kvstore");
    succeed(
        std::process::Command::new("g++")
            .args(["-O2", "-g", "-o"])
            .arg(&exe)
            .arg(&src),
    );
    (exe, std::fs::read_to_string(&src).unwrap())
}

/// The 1-based number of the one line of `source` that holds `text`.
pub fn line_of(source: &str, text: &str) -> usize {
    let hits: Vec<usize> = source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(text))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "`{text}` is on one line of the source");
    hits[0]
}
