//! Shared by the CLI tests that need no kernel facility: running the binary under test in a
//! directory, a fresh directory per test, and output as text.
// Each test binary uses a different part of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `allocflame ARGS` in `dir`.
pub fn allocflame(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allocflame"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run allocflame")
}

/// A fresh, empty directory for the test `name` of group `group`.
pub fn tempdir(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allocflame-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
