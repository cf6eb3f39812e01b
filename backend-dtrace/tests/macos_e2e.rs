//! End-to-end on macOS: real dtrace on a C program with known allocation counts
//! (`tests/macos/alloc-known.c`, built into the target directory at test time, out of SIP's
//! reach). Needs root: run with sudo, as the `macos-dtrace` workflow does. Without root the
//! tests say so and pass, unless `ALLOCFLAME_E2E_REQUIRE_ROOT` is set (the workflow sets it).
#![cfg(target_os = "macos")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use allocflame_backend_dtrace::DtraceSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, RecordReport, Target};
use allocflame_core::{Profile, Weight};

fn program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/macos/alloc-known.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alloc-known");
        let status = Command::new("cc")
            .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("run cc");
        assert!(status.success(), "cc failed on {}", src.display());
        out
    })
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Whether to run: root, or fail when the environment demands root.
fn can_run(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("ALLOCFLAME_E2E_REQUIRE_ROOT").is_none(),
        "{test}: DTrace needs root; run the test with sudo"
    );
    eprintln!("{test}: skipped, DTrace needs root (run with sudo)");
    false
}

fn record(target: &Target, options: &RecordOptions) -> (Profile, RecordReport) {
    let mut collector = Collector::new(&options.probes);
    let report = DtraceSource
        .record(target, options, &mut collector)
        .expect("dtrace recording");
    (collector.finish(), report)
}

/// The sum over the stacks that pass through `frame` (a `;`-separated run of frames).
fn through(profile: &Profile, frames: &str) -> Weight {
    profile
        .folded_lines()
        .iter()
        .filter(|(s, _)| s.contains(&format!(";{frames};")))
        .fold(Weight::default(), |acc, (_, w)| acc + *w)
}

fn dump(profile: &Profile) -> String {
    profile
        .folded_lines()
        .iter()
        .map(|(s, w)| format!("{s} {} {}\n", w.allocs, w.bytes))
        .collect()
}

#[test]
fn known_counts_along_known_stacks() {
    if !can_run("known_counts_along_known_stacks") {
        return;
    }
    let prog = program();
    let (profile, report) = record(
        &Target::spawn([prog.as_os_str()]),
        &RecordOptions::default(),
    );
    let folded = dump(&profile);
    eprintln!("{folded}\n{report:#?}");
    // N malloc along a known stack gives N: malloc calling into malloc_zone_malloc (or
    // malloc_type_malloc's inner calls) counts once.
    assert_eq!(
        through(&profile, "main;level1"),
        Weight::new(1000, 64_000),
        "{folded}"
    );
    assert_eq!(
        through(&profile, "main;level2"),
        Weight::new(10, 640),
        "{folded}"
    );
    assert_eq!(
        through(&profile, "main;level3"),
        Weight::new(7, 224),
        "{folded}"
    );
    assert!(profile
        .folded_lines()
        .iter()
        .all(|(s, _)| s.starts_with("alloc-known;")));
    assert_eq!(report.lost, 0, "{report:#?}");
    assert!(!report.interrupted);
    assert!(report.total().allocs >= 1017);
}

fn start_loop(pid_file: &Path) -> (std::process::Child, u32) {
    let mut child = Command::new(program())
        .arg("loop")
        .arg(pid_file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start alloc-known loop");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

fn alive(pid: u32) -> bool {
    Command::new("/bin/kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn attach_for_a_duration_leaves_the_target_running() {
    if !can_run("attach_for_a_duration_leaves_the_target_running") {
        return;
    }
    let pid_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("attach.pid");
    let (mut child, pid) = start_loop(&pid_file);
    let started = Instant::now();
    let (profile, report) = record(
        &Target::Attach {
            pid,
            duration: Some(Duration::from_secs(2)),
        },
        &RecordOptions::default(),
    );
    let folded = dump(&profile);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        through(&profile, "level1").allocs > 10,
        "{folded}\n{report:#?}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the target must keep running"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn stop_flag_ends_a_spawned_recording_with_its_counts() {
    if !can_run("stop_flag_ends_a_spawned_recording_with_its_counts") {
        return;
    }
    let pid_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stop.pid");
    let _ = std::fs::remove_file(&pid_file);
    let prog = program();
    let options = RecordOptions::default();
    let stop = options.stop.clone();
    let stopper = {
        let pid_file = pid_file.clone();
        std::thread::spawn(move || {
            // The loop writes its pid file after its first 20 mallocs: wait for that, not for a
            // time (generously: the machine may be loaded). Past the deadline, stop anyway; the
            // checks below then say what is missing.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !pid_file.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let (profile, report) = record(
        &Target::spawn([prog.as_os_str(), "loop".as_ref(), pid_file.as_os_str()]),
        &options,
    );
    stopper.join().unwrap();
    let folded = dump(&profile);
    assert!(report.interrupted, "{report:#?}");
    assert!(
        through(&profile, "level1").allocs > 10,
        "{folded}\n{report:#?}"
    );
    // dtrace kills the program it started when it exits.
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the loop wrote its pid")
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(pid),
        "the spawned program {pid} outlived the recording"
    );
}

#[test]
fn count_only_gives_per_function_totals() {
    if !can_run("count_only_gives_per_function_totals") {
        return;
    }
    let options = RecordOptions {
        stacks: false,
        ..RecordOptions::default()
    };
    let (profile, report) = record(&Target::spawn([program().as_os_str()]), &options);
    let folded = dump(&profile);
    // Without stacks each function is a one-frame stack under the program.
    assert!(
        profile
            .folded_lines()
            .iter()
            .all(|(s, _)| s.matches(';').count() == 1),
        "{folded}"
    );
    assert!(report.total().allocs >= 1017, "{report:#?}");
    assert_eq!(profile.total(), report.total(), "{folded}\n{report:#?}");
}

#[test]
fn a_sip_protected_program_is_refused_with_what_to_do() {
    if !can_run("a_sip_protected_program_is_refused_with_what_to_do") {
        return;
    }
    let status = Command::new("csrutil")
        .arg("status")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_lowercase())
        .unwrap_or_default();
    if !status.contains("status: enabled") || status.contains("dtrace restrictions: disabled") {
        eprintln!("SIP's DTrace restriction is off here: nothing to refuse ({status})");
        return;
    }
    let opts = RecordOptions::default();
    let mut sink = Collector::new(&opts.probes);
    let err = DtraceSource
        .record(&Target::spawn(["/bin/ls"]), &opts, &mut sink)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, allocflame_core::Error::PermissionDenied { .. }),
        "{text}"
    );
    assert!(text.contains("System Integrity Protection"), "{text}");
}
