//! Helpers for the end-to-end tests: building test programs (C sources in `programs/`, compiled
//! at test time with gcc, g++ or rustc into a temporary directory), recording them with a
//! backend, and reading the results by the user frames the tests know (`main;level1;level2`).
//!
//! What does not depend on the backend is tested on each of them with the same program and the
//! same assertions: a test written as `fn name(backend: Backend)` and listed under `both` in
//! [`backend_tests!`] runs as `perf::name` and `preload::name`.
//!
//! Tests of a kernel facility or a compiler never skip silently: a skipped test writes
//! `SKIPPED: <test>: needs …` to the real stderr (past libtest's capture), and with `CI=true` a
//! missing capability fails. Tests wait for conditions ([`wait_until`]), never for fixed times.
//!
//! ```no_run
//! let dir = allocflame_tests::TempDir::new("doc");
//! let prog = allocflame_tests::build_c(&dir, "alloc_counts.c");
//! for backend in allocflame_tests::Backend::ALL {
//!     let run = allocflame_tests::record(backend, &[prog.to_str().unwrap(), "1000"]).unwrap();
//!     assert_eq!(run.count_ending("main;level1;level2;malloc"), 1000);
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use allocflame_backend_perf::PerfSource;
use allocflame_backend_preload::PreloadSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, RecordReport, Target};
use allocflame_core::{Error, Profile, Result, Weight};

pub mod heaptrack;
pub mod swift;

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
/// It also keeps every other recording away ([`Backend::turn`] of either backend waits for it).
/// Poison-tolerant: one failed test does not fail the others.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    RECORDINGS.write().unwrap_or_else(|e| e.into_inner())
}

/// The turns of the recordings in this test binary: a perf recording (and whatever needs the
/// machine to itself) holds it for writing, in-process recordings hold it for reading.
static RECORDINGS: RwLock<()> = RwLock::new(());

/// A backend the end-to-end tests record with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// [`PerfSource`]: uprobes through perf_event_open, ptrace follows forks and execs.
    Perf,
    /// [`PreloadSource`]: the injected library counts in process (programs started here only).
    Preload,
}

/// A test's turn to record, held until dropped (see [`Backend::turn`]).
pub enum Turn {
    /// The machine to itself: no other recording of this test binary runs.
    Alone(RwLockWriteGuard<'static, ()>),
    /// Beside other in-process recordings, never beside a perf recording.
    Shared(RwLockReadGuard<'static, ()>),
}

impl Backend {
    /// Both, perf first.
    pub const ALL: [Backend; 2] = [Backend::Perf, Backend::Preload];

    /// Its name, as its `RecordReport::backend` says it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Perf => "perf",
            Backend::Preload => "preload",
        }
    }

    /// Whether this machine can run it; when it cannot, the test says it is skipped and returns
    /// early, except under `CI=true`, where that is a failure.
    pub fn available(self) -> bool {
        match self {
            Backend::Perf => uprobes_available(),
            Backend::Preload => preload_available(),
        }
    }

    /// Waits for the running test's turn to record with this backend, building its programs
    /// included. A perf recording runs alone: another recording, or a compiler, beside it made
    /// its reader fall behind its target and the kernel drop events (2,962 in one CI run). An
    /// in-process recording loses nothing to a busy machine (it counts in its target's own
    /// threads), so such recordings share their turn, but never with a perf recording, whose
    /// reader they would slow down.
    pub fn turn(self) -> Turn {
        match self {
            Backend::Perf => Turn::Alone(exclusive()),
            Backend::Preload => Turn::Shared(RECORDINGS.read().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// Defines the tests of a file, each a function `fn name(backend: Backend)`, as tests named
/// for their backend: those listed under `both` (behaviour that does not depend on the backend)
/// once per backend, as `perf::name` and `preload::name`; those under `perf` or `preload` (what
/// only that backend does, or says it cannot do) once, in that backend's module. Each runs only
/// where its backend is available (else it says it is skipped; a failure under `CI=true`).
///
/// ```ignore
/// allocflame_tests::backend_tests! {
///     both: counts_are_exact, forks_are_followed;
///     perf: a_user_probe_counts_once;
///     preload: a_user_probe_is_declined;
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    (
        both: $($both:ident),* $(,)? ;
        $(perf: $($perf:ident),* $(,)? ;)?
        $(preload: $($preload:ident),* $(,)? ;)?
    ) => {
        mod perf {
            $($crate::backend_tests!(@test Perf $both);)*
            $($($crate::backend_tests!(@test Perf $perf);)*)?
        }
        mod preload {
            $($crate::backend_tests!(@test Preload $both);)*
            $($($crate::backend_tests!(@test Preload $preload);)*)?
        }
    };
    (@test $backend:ident $name:ident) => {
        #[test]
        fn $name() {
            if $crate::Backend::$backend.available() {
                super::$name($crate::Backend::$backend);
            }
        }
    };
}

/// Whether this machine can run the in-process backend: Linux x86-64 and the library built
/// (backend-preload's build script needs a C compiler). When it cannot, the test says it is
/// skipped and returns early; a missing library fails under `CI=true`.
pub fn preload_available() -> bool {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        // Built for Linux x86-64 only so far: nothing to test elsewhere, even under CI.
        tell(&format!(
            "SKIPPED: {}: the in-process backend is built for Linux x86-64 only",
            test_name()
        ));
        return false;
    }
    !allocflame_backend_preload::library().is_empty()
        || skip("the in-process library, which this build lacks (backend-preload's build script needs a C compiler: apt-get install gcc)")
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

    /// The allocation count of the stacks whose root frame (the process name) is `root`.
    pub fn count_rooted(&self, root: &str) -> u64 {
        self.lines
            .iter()
            .filter(|(l, _)| l.split(';').next() == Some(root))
            .map(|(_, w)| w.allocs)
            .sum()
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
        let lines = self
            .lines
            .iter()
            .map(|(l, w)| format!("{l} {}\n", w.allocs));
        let notes = self.report.notes.iter().map(|n| format!("note: {n}\n"));
        lines.chain(notes).collect()
    }
}

/// Records `argv` with the perf backend and default options.
pub fn record_perf(argv: &[&str]) -> Result<Run> {
    record(Backend::Perf, argv)
}

/// Records `target` with the perf backend and `options`.
pub fn record_with(target: &Target, options: RecordOptions) -> Result<Run> {
    record_on(Backend::Perf, target, options)
}

/// Records `argv` with `backend` and default options.
pub fn record(backend: Backend, argv: &[&str]) -> Result<Run> {
    record_on(
        backend,
        &Target::spawn(argv.iter().copied()),
        RecordOptions::default(),
    )
}

/// How long a recording may take before [`record_on`] stops it and fails the test: generous
/// (the test programs run for seconds, on a loaded machine for tens of seconds), so that a
/// recording that hangs fails its test, with what it had, instead of holding up the suite.
pub const RECORDING_DEADLINE: Duration = Duration::from_secs(300);

/// Records `target` with `backend` and `options`; a recording still running after
/// [`RECORDING_DEADLINE`] is stopped (`options.stop`) and fails the test.
pub fn record_on(backend: Backend, target: &Target, options: RecordOptions) -> Result<Run> {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let stop = options.stop.clone();
    let test = test_name();
    let watchdog = std::thread::spawn(move || {
        let hung = finished.recv_timeout(RECORDING_DEADLINE)
            == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
        if hung {
            tell(&format!(
                "{test}: the recording still runs after {RECORDING_DEADLINE:?}: stopping it"
            ));
            stop.store(true, Ordering::SeqCst);
        }
        hung
    });
    let mut sink = Collector::new(&options.probes);
    let report = match backend {
        Backend::Perf => PerfSource::default().record(target, &options, &mut sink),
        Backend::Preload => PreloadSource::default().record(target, &options, &mut sink),
    };
    drop(done);
    let hung = watchdog.join().unwrap_or(true);
    let report = report?;
    assert_eq!(report.backend, backend.name(), "another backend ran");
    let run = Run::new(sink.finish(), report);
    assert!(
        !hung,
        "{backend:?}: recording {target:?} did not end within {RECORDING_DEADLINE:?}; stopped, it had:\n{}",
        run.dump()
    );
    Ok(run)
}

/// The reason the in-process backend gives for not recording `target` with `options` (its
/// [`Error::Unsupported`]); panics with what it did instead. Such a program is one the perf
/// backend records (its own test says so): the in-process backend must say that it cannot,
/// never record it partly.
pub fn unsupported_in_process(target: &Target, options: RecordOptions) -> String {
    match record_on(Backend::Preload, target, options) {
        Err(Error::Unsupported(why)) => why,
        Err(e) => panic!("{target:?}: expected Error::Unsupported, got {e:?}"),
        Ok(run) => panic!(
            "{target:?}: expected Error::Unsupported, but it recorded:\n{}",
            run.dump()
        ),
    }
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
