//! Shared by the `record*` CLI tests: building the C test programs of `tests/programs/` and
//! checking that the kernel facility is there (failing loudly under `CI=true`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_allocflame")
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "allocflame-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn build_c(dir: &TempDir, source: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/programs")
        .join(source);
    let out = dir.join(Path::new(source).file_stem().unwrap().to_str().unwrap());
    let st = Command::new("gcc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "gcc {}", src.display());
    out
}

pub fn uprobes_available() -> bool {
    if !cfg!(target_os = "linux") {
        // The perf backend is Linux-only: nothing to test elsewhere, even under CI.
        return false;
    }
    let pmu = Path::new("/sys/bus/event_source/devices/uprobe/type").exists();
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !(pmu && root) {
        let why = format!("uprobe PMU: {pmu}, root: {root}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and uprobes are unavailable ({why})");
        }
        eprintln!("skipping: uprobes unavailable ({why})");
        return false;
    }
    true
}

/// The state letter of /proc/PID/stat (R, S, T, t, Z…).
pub fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// The TracerPid of /proc/PID/status.
pub fn tracer_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The content of tracefs' uprobe_events, mounting tracefs if needed.
pub fn uprobe_events() -> String {
    let path = Path::new("/sys/kernel/tracing/uprobe_events");
    if !path.exists() {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .status();
    }
    match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and {} is unreadable: {e}", path.display());
            }
            String::from("<tracefs unavailable>")
        }
    }
}

/// The first byte of `malloc` in process `pid`'s memory, and in its libc file: a uprobe in
/// place shows as int3 (0xcc) in the process. Relies on glibc's text segment having equal file
/// offsets and addresses, as Debian's has.
pub fn malloc_first_bytes(pid: u32) -> Option<(u8, u8)> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let (start, pgoff, path) = maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || !f[1].contains('x') || !f[5].contains("libc.so") {
            return None;
        }
        let start = u64::from_str_radix(f[0].split('-').next()?, 16).ok()?;
        let pgoff = u64::from_str_radix(f[2], 16).ok()?;
        Some((start, pgoff, f[5].to_owned()))
    })?;
    let nm = Command::new("nm")
        .args(["-D", "--defined-only", &path])
        .output()
        .ok()?;
    let off = String::from_utf8_lossy(&nm.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[2].starts_with("malloc@")).then(|| u64::from_str_radix(f[0], 16).ok())?
    })?;
    let mut file = std::fs::File::open(&path).ok()?;
    let mut fb = [0u8];
    file.seek(SeekFrom::Start(off)).ok()?;
    file.read_exact(&mut fb).ok()?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut mb = [0u8];
    mem.seek(SeekFrom::Start(start + off - pgoff)).ok()?;
    mem.read_exact(&mut mb).ok()?;
    Some((mb[0], fb[0]))
}
