//! Counted + lost = calls, always (issue 9): with a tiny ring buffer on a machine whose two
//! cores are kept busy, and with the reader starved (the target and the busy loops at a higher
//! priority than allocflame). The calls are known twice over: from the program (its loop
//! counts) and from the kernel's own counters of the probes. A starved reader loses events for
//! certain (a fast reader with a tiny buffer may lose none): those must be counted exactly,
//! in the report, the profile and a note.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use allocflame_backend_perf::PerfSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, RecordReport, Target};
use allocflame_tests::*;

/// The two tests load the machine each in their own way: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Shell busy loops, one per core, at `nice` (on the CPUs other than 0 when `off_cpu0`);
/// killed when dropped.
struct BusyLoops(Vec<Child>);

impl BusyLoops {
    fn start(nice: i32, off_cpu0: bool) -> BusyLoops {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        BusyLoops(
            (0..2)
                .map(|_| {
                    let mut c = Command::new("taskset");
                    c.arg("-c").arg(if off_cpu0 && cpus > 1 {
                        format!("1-{}", cpus - 1)
                    } else {
                        format!("0-{}", cpus - 1)
                    });
                    c.args([
                        "nice",
                        "-n",
                        &nice.to_string(),
                        "sh",
                        "-c",
                        "while :; do :; done",
                    ])
                    .spawn()
                    .expect("start a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starves the reader: this thread (which reads, keeping its priority) goes to CPU 0 at nice
/// 19, where the target runs at nice -10 (alloc_counts sets its own); busy loops at nice -10
/// hold the other CPUs. Returns the busy loops.
fn starve_this_thread() -> BusyLoops {
    let busy = BusyLoops::start(-10, true);
    std::env::set_var("ALLOC_COUNTS_NICE", "-10");
    let mut one_cpu = [0u64; 16];
    one_cpu[0] = 1;
    // SAFETY: affinity and priority of this thread only; the set is a valid cpu_set_t.
    unsafe {
        assert_eq!(
            sched_setaffinity(0, std::mem::size_of_val(&one_cpu), one_cpu.as_ptr()),
            0
        );
        setpriority(0, gettid(), 19);
    }
    busy
}

fn record(source: &PerfSource, argv: &[&str]) -> (u64, RecordReport) {
    let options = RecordOptions::default();
    let mut sink = Collector::new(&options.probes);
    let report = source
        .clone()
        .record(&Target::spawn(argv), &options, &mut sink)
        .expect("record");
    // The reader ran ahead of ordinary processes; what follows the recording does not.
    // SAFETY: reads this thread's policy.
    assert_eq!(
        unsafe { sched_getscheduler(0) },
        0,
        "the caller was left at real-time priority"
    );
    let profile = sink.finish();
    assert_eq!(profile.lost, report.lost);
    assert_eq!(profile.total().allocs, report.total().allocs);
    (profile.total().allocs, report)
}

fn check(counted: u64, report: &RecordReport, calls: u64, run: usize) {
    assert_eq!(
        counted + report.lost,
        calls,
        "run {run}: counted {counted} + lost {} ≠ {calls} calls: {report:?}",
        report.lost
    );
    // The kernel's counters saw every call, independently of the records.
    assert_eq!(report.hits, Some(calls), "run {run}: {report:?}");
    assert_eq!(report.inner, 0, "run {run}: {report:?}");
    if report.lost > 0 {
        assert!(
            report.notes.iter().any(|n| n.contains("were lost")),
            "run {run}: {:?}",
            report.notes
        );
    }
}

#[test]
fn counted_plus_lost_is_calls_with_a_tiny_buffer_and_both_cores_busy() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("acct-busy");
    let prog = build_c(&dir, "alloc_counts.c");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 100_000u64;
    let calls = n + n / 4 + n / 10;
    let _busy = BusyLoops::start(0, false);
    let source = PerfSource {
        buffer_bytes: Some(32 << 10),
        ..PerfSource::default()
    };
    for run in 0..8 {
        let (counted, report) = record(&source, &[prog.to_str().unwrap(), &n.to_string()]);
        check(counted, &report, calls, run);
    }
}

#[test]
fn counted_plus_lost_is_calls_with_the_reader_starved() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("acct-starved");
    let prog = build_c(&dir, "alloc_counts.c");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 40_000u64;
    let calls = n + n / 4 + n / 10;
    // A starved reader with a tiny buffer loses events: each must be counted as lost.
    let _busy = starve_this_thread();
    let source = PerfSource {
        buffer_bytes: Some(32 << 10),
        keep_priority: true,
        ..PerfSource::default()
    };
    let mut lost = 0;
    for run in 0..3 {
        let (counted, report) = record(&source, &[prog.to_str().unwrap(), &n.to_string()]);
        check(counted, &report, calls, run);
        lost += report.lost;
    }
    assert!(
        lost > 0,
        "a starved reader with a 32 KiB buffer lost nothing"
    );
}

#[test]
fn a_reader_that_falls_behind_pauses_the_program_and_loses_nothing() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("acct-paused");
    let prog = build_c(&dir, "alloc_counts.c");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 12_000u64;
    let calls = n + n / 4 + n / 10;
    // The reader starved, with the default buffer (64 MiB per CPU, 32 KiB of stack per
    // allocation: 2,000 allocations fill it, the program makes 16,200): it can hardly run
    // while the program does, and falls behind for certain. The tracer must pause the program
    // before a buffer is full.
    let _busy = starve_this_thread();
    let source = PerfSource {
        keep_priority: true,
        ..PerfSource::default()
    };
    let (counted, report) = record(&source, &[prog.to_str().unwrap(), &n.to_string()]);
    check(counted, &report, calls, 0);
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(counted, calls, "{report:?}");
    assert_eq!(report.exit_code, Some(0), "{report:?}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("the program was paused")),
        "a starved reader never paused the program: {:?}",
        report.notes
    );
}

extern "C" {
    fn sched_getscheduler(pid: i32) -> i32;
    fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
    fn setpriority(which: i32, who: u32, prio: i32) -> i32;
    fn gettid() -> u32;
}

#[test]
fn a_reader_that_falls_behind_while_the_kernel_makes_an_open_wait_loses_nothing() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("acct-slow-open");
    let other = build_c(&dir, "alloc_counts.c");
    let prog = build_c(&dir, "outliving_child.c");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 12_000u64;
    // The wait is the kernel's to make: on a loaded machine the release has now and then
    // ended before the fork (one loaded CI run in two); each attempt is a whole new run.
    for attempt in 0..5 {
        let go = dir.join(&format!("go-{attempt}"));
        std::env::set_var("OUTLIVING_GO", &go);
        let ready = Arc::new(AtomicBool::new(false));
        // Once the recording below is in place, another one through the uprobe PMU: the
        // kernel releases its events one by one, ~70 ms each (~2 s), after it returned, and
        // an open waits behind that (what happens beside another recording that just ended).
        // Then the program forks.
        let beside = {
            let (ready, other, go) = (ready.clone(), other.clone(), go.clone());
            std::thread::spawn(move || {
                wait_until("the recording is in place", WAIT, || {
                    ready.load(Ordering::Relaxed)
                });
                std::env::set_var("ALLOCFLAME_UPROBES", "pmu");
                let (_, report) = record(&PerfSource::default(), &[other.to_str().unwrap(), "10"]);
                std::env::remove_var("ALLOCFLAME_UPROBES");
                std::fs::write(&go, b"").expect("write the go file");
                report
            })
        };
        // The parent allocates as soon as it has forked, while the tracer opens its child's
        // events: that open waits, and a starved reader lets the buffer fill (2,000
        // allocations fill it): the tracer must watch it meanwhile, and pause the parent.
        let _busy = starve_this_thread();
        let source = PerfSource {
            keep_priority: true,
            ready: Some(ready),
            ..PerfSource::default()
        };
        let (counted, report) = record(&source, &[prog.to_str().unwrap(), &n.to_string()]);
        let before = beside.join().expect("the recording beside");
        assert!(
            before
                .notes
                .iter()
                .any(|n| n.contains("through the uprobe PMU")),
            "{before:?}"
        );
        check(counted, &report, 2 * n, attempt);
        assert_eq!(report.lost, 0, "{report:?}");
        assert_eq!(report.exit_code, Some(0), "{report:?}");
        if report.notes.iter().any(|n| n.contains("waited")) {
            return;
        }
    }
    panic!("no open waited behind the release of the uprobe PMU's events in 5 attempts");
}
