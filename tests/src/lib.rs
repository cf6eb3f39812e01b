//! Helpers for the end-to-end tests: building test programs (C sources in `programs/`, compiled
//! at test time with gcc, g++ or rustc into a temporary directory), recording them with a
//! backend, and reading the results by the user frames the tests know (`main;level1;level2`).
//!
//! Tests of a kernel facility or a compiler never skip silently: a skipped test writes
//! `SKIPPED: <test>: needs …` to the real stderr (past libtest's capture), and with `CI=true` a
//! missing capability fails. Tests wait for conditions ([`wait_until`]), never for fixed times.
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
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// How long a test waits for a condition before it fails: generous, because the machine may be
/// loaded (two cores, other builds and tests running); a condition that holds returns at once.
pub const WAIT: Duration = Duration::from_secs(60);

/// Waits until `condition` holds, polling it; panics after `timeout` with a message naming
/// `what` was awaited ("the probe on malloc is in place"). Tests wait for the state they need,
/// never for a fixed time.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return;
        }
        let waited = start.elapsed();
        assert!(
            waited < timeout,
            "gave up after {waited:.1?} waiting until {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether `CI=true`: a missing facility is then a failure, never a skip.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The running test's name: libtest names each test's thread after it.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Writes `line` to the real stderr: libtest captures `eprintln!` (and shows it only when a
/// test fails), so a skipped test would otherwise look like a pass.
fn tell(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Says that the running test is skipped because it needs `what` (and how to get it), and
/// returns `false`; under `CI=true` it panics instead.
pub fn skip(what: &str) -> bool {
    let test = test_name();
    if under_ci() {
        panic!("CI=true and {test} cannot run: it needs {what}");
    }
    tell(&format!("SKIPPED: {test}: needs {what}"));
    false
}

/// Whether this machine can run the perf backend: uprobes through perf_event_open (the uprobe
/// PMU, root) and ptrace of the targets (Yama's ptrace_scope below 3). When it cannot, the test
/// says it is skipped and returns early, except under `CI=true`, where that is a failure.
pub fn uprobes_available() -> bool {
    if !cfg!(target_os = "linux") {
        // The perf backend is Linux-only: nothing to test elsewhere, even under CI.
        tell(&format!(
            "SKIPPED: {}: the perf backend is Linux-only",
            test_name()
        ));
        return false;
    }
    let mut missing = Vec::new();
    if !Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
        missing.push(
            "the uprobe PMU (/sys/bus/event_source/devices/uprobe: a kernel with CONFIG_UPROBE_EVENTS)",
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        missing.push("root (perf_event_open of uprobes and ptrace: run the tests as root)");
    }
    // Yama 3 forbids ptrace even for root; 1 and 2 allow it to root. The backend traces the
    // programs it starts and the processes it attaches to.
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if yama.is_some_and(|v| v >= 3) {
        missing.push(
            "ptrace, which Yama's ptrace_scope 3 forbids until reboot (boot with ptrace_scope ≤ 2)",
        );
    }
    if missing.is_empty() {
        return true;
    }
    skip(&missing.join(", "))
}

/// Whether `tool` (a compiler a test builds its program with) runs; when it does not, the test
/// says it is skipped (`how` tells how to get it) and returns early; under `CI=true` it fails.
pub fn tool_available(tool: &str, how: &str) -> bool {
    let runs = Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs || skip(&format!("{tool} ({how})"))
}

/// Serializes the tests that must not overlap with another recording in the same test binary:
/// those that seize a process with ptrace and then check that it is left untraced, that compare
/// tracefs' `uprobe_events` before and after, or that read malloc's first byte in a target. The
/// kernel keeps one uprobe (one int3) per (file, offset) for all recordings, and a recording
/// that probes system-wide (a tracefs probe, an unfiltered eBPF uprobe) puts it into every
/// process that maps libc: another test's recording would then change what these tests read.
/// Poison-tolerant: one failed test does not fail the others.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
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
    allocflame_backend_perf::procfs::parse_stat_state(&s)
}

/// The TracerPid of /proc/PID/status.
pub fn tracer_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    allocflame_backend_perf::procfs::parse_status_field(&s, "TracerPid")?
        .parse()
        .ok()
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
            if under_ci() {
                panic!("CI=true and {} is unreadable: {e}", path.display());
            }
            // The comparison this feeds cannot fail then: say it was not made.
            tell(&format!(
                "NOT CHECKED: {}: tracefs probes (needs {} readable: {e}; `mount -t tracefs nodev /sys/kernel/tracing` as root)",
                test_name(),
                path.display()
            ));
            String::from("<tracefs unavailable>")
        }
    }
}

/// Whether every probe in tracefs' `uprobe_events` now was already there in `before` (an
/// earlier [`uprobe_events`]): nothing was added and left behind. Probes that went since (a
/// previous recording's, deleted in the background) do not count.
pub fn no_probe_added_since(before: &str) -> bool {
    uprobe_events()
        .lines()
        .all(|l| before.lines().any(|b| b == l))
}

/// Whether allocflame can place its probes through tracefs (root, tracefs mounted at
/// `/sys/kernel/tracing`), which is what makes their release immediate; otherwise says the test
/// is skipped and returns `false`, except under `CI=true`, where that is a failure.
pub fn tracefs_writable() -> bool {
    let path = Path::new("/sys/kernel/tracing/uprobe_events");
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
        || skip(&format!(
            "{} writable (root; `mount -t tracefs nodev /sys/kernel/tracing`)",
            path.display()
        ))
}

/// The first byte of `malloc` in process `pid`'s memory, and in its libc file: a uprobe in
/// place shows as int3 (0xcc) in the process. Relies on glibc's text segment having equal file
/// offsets and addresses, as Debian's has.
pub fn malloc_first_bytes(pid: u32) -> Option<(u8, u8)> {
    use std::io::{Read, Seek, SeekFrom};
    let (start, pgoff, path) = allocflame_backend_perf::procfs::maps(pid)?
        .into_iter()
        .find(|m| m.executable() && m.path.contains("libc.so"))
        .map(|m| (m.start, m.offset, m.path))?;
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
