//! Helpers for the end-to-end tests: building test programs (C sources in `programs/`, compiled
//! at test time with gcc, g++ or rustc into a temporary directory), recording them with a
//! backend, and reading the results by the user frames the tests know (`main;level1;level2`).
//!
//! Tests of a kernel facility never skip silently: with `CI=true` a missing capability fails.
//!
//! ```no_run
//! let dir = allocflame_tests::TempDir::new("doc");
//! let prog = allocflame_tests::build_c(&dir, "alloc_counts.c");
//! let run = allocflame_tests::record_perf(&[prog.to_str().unwrap(), "1000"]).unwrap();
//! assert_eq!(run.count_ending("main;level1;level2;malloc"), 1000);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use allocflame_backend_perf::PerfSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, RecordReport, Target};
use allocflame_core::{Profile, Result, Weight};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory named after `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "allocflame-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directory of the test programs' sources.
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

fn compile(cmd: &mut Command, out: &Path) -> PathBuf {
    let status = cmd.status().expect("run the compiler");
    assert!(
        status.success(),
        "compiling {} failed: {cmd:?}",
        out.display()
    );
    out.to_path_buf()
}

/// Builds `programs/<source>` with gcc (C) or g++ (C++): `-O1 -g -fno-omit-frame-pointer`, so
/// our own frames have frame pointers while libc and libstdc++ (Debian's) have none.
pub fn build_c(dir: &TempDir, source: &str) -> PathBuf {
    let src = programs_dir().join(source);
    let stem = Path::new(source).file_stem().unwrap_or_default();
    let out = dir.path().join(stem);
    let cxx = source.ends_with(".cpp");
    let mut cmd = Command::new(if cxx { "g++" } else { "gcc" });
    cmd.args(["-O1", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&out)
        .arg(&src);
    compile(&mut cmd, &out)
}

/// Builds `programs/<source>` with rustc (`-O`, debug info, no frame pointers: the default).
pub fn build_rust(dir: &TempDir, source: &str) -> PathBuf {
    let src = programs_dir().join(source);
    let stem = Path::new(source).file_stem().unwrap_or_default();
    let out = dir.path().join(stem);
    let mut cmd = Command::new("rustc");
    cmd.args(["-O", "-g", "-o"]).arg(&out).arg(&src);
    compile(&mut cmd, &out)
}

/// Whether this machine can place uprobes through perf_event_open. When it cannot, a test
/// returns early, except under `CI=true`, where that is a failure.
pub fn uprobes_available() -> bool {
    if !cfg!(target_os = "linux") {
        // The perf backend is Linux-only: nothing to test elsewhere, even under CI.
        return false;
    }
    let pmu = Path::new("/sys/bus/event_source/devices/uprobe/type").exists();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    let ok = pmu && root;
    if !ok {
        let why = format!("uprobe PMU present: {pmu}, root: {root}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and the perf backend cannot run here ({why}): run the tests as root on a kernel with CONFIG_UPROBE_EVENTS");
        }
        eprintln!("skipping: the perf backend cannot run here ({why})");
    }
    ok
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The result of a recording.
pub struct Run {
    /// The profile (mangled names: as the backend and symbolizer give them).
    pub profile: Profile,
    /// The backend's report.
    pub report: RecordReport,
    /// The folded lines.
    pub lines: Vec<(String, Weight)>,
}

impl Run {
    fn new(profile: Profile, report: RecordReport) -> Run {
        let lines = profile.folded_lines();
        Run {
            profile,
            report,
            lines,
        }
    }

    /// The total weight of the stacks whose folded text ends with `suffix` (`main;f;malloc`).
    pub fn weight_ending(&self, suffix: &str) -> Weight {
        self.lines
            .iter()
            .filter(|(l, _)| {
                l.ends_with(suffix)
                    && (l.len() == suffix.len() || l[..l.len() - suffix.len()].ends_with(';'))
            })
            .fold(Weight::default(), |a, (_, w)| a + *w)
    }

    /// The allocation count of the stacks ending with `suffix`.
    pub fn count_ending(&self, suffix: &str) -> u64 {
        self.weight_ending(suffix).allocs
    }

    /// The allocation count of stacks containing `part` anywhere.
    pub fn count_containing(&self, part: &str) -> u64 {
        self.lines
            .iter()
            .filter(|(l, _)| l.contains(part))
            .map(|(_, w)| w.allocs)
            .sum()
    }

    /// The folded text, for failure messages.
    pub fn dump(&self) -> String {
        self.lines
            .iter()
            .map(|(l, w)| format!("{l} {}\n", w.allocs))
            .collect()
    }
}

/// Records `argv` with the perf backend and default options.
pub fn record_perf(argv: &[&str]) -> Result<Run> {
    record_with(
        &Target::spawn(argv.iter().copied()),
        RecordOptions::default(),
    )
}

/// Records `target` with the perf backend and `options`.
pub fn record_with(target: &Target, options: RecordOptions) -> Result<Run> {
    let mut sink = Collector::new(&options.probes);
    let report = PerfSource::default().record(target, &options, &mut sink)?;
    Ok(Run::new(sink.finish(), report))
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
