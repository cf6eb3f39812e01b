//! Conformance of the perf and DTrace importers against other projects' fixtures: inferno's
//! and FlameGraph's collapse tests (copied into `tests/data/peers/`, see its README), compared
//! the way inferno's own tests compare: line by line, expected lines `trim_end`ed, and `'`/`"`
//! removed from our lines when the expectation comes from upstream FlameGraph.
//!
//! Known deviations (each is a deliberate difference, asserted below so that a change shows):
//! - `perf-cycles-instructions-01` mixes `instructions` and `cycles` events. inferno (and
//!   FlameGraph) keep only the first event type; allocflame counts every event (a malloc +
//!   calloc recording must not lose its calloc events). With
//!   `PerfOptions::first_event_only` it matches, which the second count shows.

mod import_common;

use allocflame_core::import::dtrace::{self, DtraceOptions};
use allocflame_core::import::perf::{self, PerfOptions};
use allocflame_core::WeightKind;

use import_common::{compare, peer_text};

const OPTS: [&str; 6] = ["pid", "tid", "kernel", "jit", "all", "addrs"];

const UPSTREAM: [&str; 12] = [
    "perf-cycles-instructions-01",
    "perf-dd-stacks-01",
    "perf-funcab-cmd-01",
    "perf-funcab-pid-01",
    "perf-iperf-stacks-pidtid-01",
    "perf-java-faults-01",
    "perf-java-stacks-01",
    "perf-java-stacks-02",
    "perf-js-stacks-01",
    "perf-mirageos-stacks-01",
    "perf-numa-stacks-01",
    "perf-vertx-stacks-01",
];

/// Inputs that mix event types (see the deviations above).
const MIXED_EVENTS: [&str; 1] = ["perf-cycles-instructions-01"];

fn perf_options(opt: &str) -> PerfOptions {
    let mut o = PerfOptions::default();
    match opt {
        "" => {}
        "pid" => o.include_pid = true,
        "tid" => o.include_tid = true,
        "addrs" => o.include_addrs = true,
        "jit" => o.annotate_jit = true,
        "kernel" => o.annotate_kernel = true,
        "all" => {
            o.annotate_jit = true;
            o.annotate_kernel = true;
        }
        other => panic!("unknown option {other}"),
    }
    o
}

struct Case {
    name: String,
    input: String,
    expected: String,
    opt: &'static str,
    strip_quotes: bool,
}

fn perf_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for stem in UPSTREAM {
        for opt in OPTS {
            cases.push(Case {
                name: format!("{stem} --{opt}"),
                input: format!("inferno/flamegraph/test/{stem}.txt"),
                expected: format!("inferno/flamegraph/test/results/{stem}-collapsed-{opt}.txt"),
                opt,
                strip_quotes: true,
            });
        }
    }
    // inferno keeps its own expectations for this one: it fixes half-demangled Rust names.
    for opt in OPTS {
        cases.push(Case {
            name: format!("perf-rust-Yamakaky-dcpu --{opt}"),
            input: "inferno/flamegraph/test/perf-rust-Yamakaky-dcpu.txt".into(),
            expected: format!(
                "inferno/tests/data/collapse-perf/results/perf-rust-Yamakaky-dcpu-collapsed-{opt}.txt"
            ),
            opt,
            strip_quotes: false,
        });
    }
    cases.push(Case {
        name: "example-perf-stacks (default)".into(),
        input: "inferno/flamegraph/example-perf-stacks.txt.gz".into(),
        expected: "inferno/tests/data/collapse-perf/results/example-perf-stacks-collapsed.txt"
            .into(),
        opt: "",
        strip_quotes: false,
    });
    for (stem, opt) in [
        ("no-events", ""),
        ("single-line-stacks", ""),
        ("single-event", ""),
        ("go-stacks", ""),
        ("java-inline", ""),
        ("cpp-stacks-std-function", ""),
        ("versioned-vmlinux", "kernel"),
        ("sourcepawn-jitdump", "jit"),
    ] {
        let suffix = if opt.is_empty() {
            String::new()
        } else {
            format!("-{opt}")
        };
        cases.push(Case {
            name: format!("{stem} {}", if opt.is_empty() { "(default)" } else { opt }),
            input: format!("inferno/tests/data/collapse-perf/{stem}.txt"),
            expected: format!(
                "inferno/tests/data/collapse-perf/results/{stem}-collapsed{suffix}.txt"
            ),
            opt,
            strip_quotes: false,
        });
    }
    cases
}

fn run_perf(case: &Case, first_event_only: bool) -> Result<(), String> {
    let input = peer_text(&case.input);
    let mut options = perf_options(case.opt);
    options.first_event_only = first_event_only;
    let profile = perf::parse(&input, &case.input, &options).map_err(|e| e.to_string())?;
    assert_eq!(profile.skipped, 0, "{}", case.name);
    let mut out = Vec::new();
    profile
        .write_folded(&mut out, WeightKind::Allocations)
        .unwrap();
    compare(
        &String::from_utf8(out).unwrap(),
        &peer_text(&case.expected),
        case.strip_quotes,
    )
}

#[test]
fn perf_conformance() {
    let cases = perf_cases();
    let mut passes = 0;
    let mut compat_passes = 0;
    let mut failed = Vec::new();
    println!("{:<45} {:<8} note", "case", "result");
    for case in &cases {
        let (result, note) = match run_perf(case, false) {
            Ok(()) => {
                passes += 1;
                compat_passes += 1;
                ("pass", String::new())
            }
            Err(e) => {
                let compat = run_perf(case, true);
                if compat.is_ok() {
                    compat_passes += 1;
                }
                failed.push(case.name.clone());
                (
                    "DEVIATES",
                    format!(
                        "{e}{}",
                        if compat.is_ok() {
                            " — passes with first_event_only"
                        } else {
                            ""
                        }
                    ),
                )
            }
        };
        println!("{:<45} {:<8} {}", case.name, result, note);
    }
    println!(
        "perf: {passes} of {} pass at allocflame's defaults; {compat_passes} with first_event_only on the deviating ones",
        cases.len()
    );
    // Every deviation must be one of the known ones.
    for name in &failed {
        assert!(
            MIXED_EVENTS.iter().any(|m| name.starts_with(m)),
            "unexpected deviation: {name}"
        );
    }
    assert_eq!(cases.len(), 87);
    assert_eq!(passes, 81, "{failed:?}");
    assert_eq!(compat_passes, 87);
}

struct DtraceCase {
    input: &'static str,
    expected: &'static str,
    include_offset: bool,
}

const DTRACE_CASES: [DtraceCase; 8] = [
    DtraceCase {
        input: "inferno/flamegraph/example-dtrace-stacks.txt",
        expected: "dtrace-example.txt",
        include_offset: false,
    },
    DtraceCase {
        input: "inferno/flamegraph/example-dtrace-stacks.txt",
        expected: "dtrace-example-offsets.txt",
        include_offset: true,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/java.txt",
        expected: "java.txt",
        include_offset: false,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/hex-addresses.txt",
        expected: "hex-addresses.txt",
        include_offset: false,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/flamegraph-bug.txt",
        expected: "flamegraph-bug.txt",
        include_offset: true,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/stack-ustack.txt",
        expected: "stack-ustack.txt",
        include_offset: false,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/scope_with_no_argument_list.txt",
        expected: "scope_with_no_argument_list.txt",
        include_offset: false,
    },
    DtraceCase {
        input: "inferno/tests/data/collapse-dtrace/rust-names.txt",
        expected: "rust-names.txt",
        include_offset: false,
    },
];

#[test]
fn dtrace_conformance() {
    let mut passes = 0;
    for case in &DTRACE_CASES {
        let options = DtraceOptions {
            include_offset: case.include_offset,
            ..DtraceOptions::default()
        };
        let result = dtrace::parse(&peer_text(case.input), case.input, &options)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                assert_eq!(p.skipped, 0, "{}", case.input);
                let mut out = Vec::new();
                p.write_folded(&mut out, WeightKind::Allocations).unwrap();
                compare(
                    &String::from_utf8(out).unwrap(),
                    &peer_text(&format!(
                        "inferno/tests/data/collapse-dtrace/results/{}",
                        case.expected
                    )),
                    false,
                )
            });
        let label = format!(
            "{} → {}{}",
            case.input.rsplit('/').next().unwrap(),
            case.expected,
            if case.include_offset {
                " (include_offset)"
            } else {
                ""
            }
        );
        match result {
            Ok(()) => {
                passes += 1;
                println!("{label:<70} pass");
            }
            Err(e) => println!("{label:<70} DEVIATES {e}"),
        }
    }
    println!("dtrace: {passes} of {} pass", DTRACE_CASES.len());
    assert_eq!(passes, DTRACE_CASES.len());
}

#[test]
fn dtrace_only_header_lines_is_an_error() {
    // inferno logs "File ended while skipping headers" and writes nothing; an input with no
    // record at all is an error here, so that a wrong file never becomes an empty graph.
    let input = "inferno/tests/data/collapse-dtrace/only-header-lines.txt";
    let err = dtrace::parse(&peer_text(input), input, &DtraceOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("no DTrace aggregation record"),
        "{err}"
    );
}

#[test]
fn swift_nio_malloc_type_fixture() {
    let input = "misc/swift-nio-dtrace-malloc-type-ustack.txt";
    let records = dtrace::parse_records(&peer_text(input), input).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].values, [13]);
    assert_eq!(
        records[0].frames,
        [
            "libsystem_malloc.dylib`malloc_type_calloc",
            "libobjc.A.dylib`class_createInstance",
            "libdispatch.dylib`_os_object_alloc_realized",
            "libdispatch.dylib`_dispatch_client_callout",
            "libdispatch.dylib`_dispatch_once_callout",
            "libswiftCore.dylib`swift_dynamicCast",
            "libswiftCore.dylib`_print_unlocked<A, B>(_:_:)",
        ]
    );
    assert_eq!(records[1].values, [10000]);
    assert_eq!(
        records[1].frames.first().map(String::as_str),
        Some("libsystem_malloc.dylib`malloc_type_malloc")
    );
    assert_eq!(
        records[1].frames.last().map(String::as_str),
        Some("dyld`start")
    );
    assert_eq!(records[1].frames.len(), 6);
    let profile = dtrace::parse(&peer_text(input), input, &DtraceOptions::default()).unwrap();
    assert_eq!(profile.total().allocs, 10013);
    assert_eq!(profile.len(), 2);
}

#[test]
fn speedscope_rust_perf_capture() {
    // A `task-clock:ppp` capture on aarch64 with v0-mangled Rust names (left for the
    // demangler): every event is read, each weighs its period.
    let input = "misc/speedscope-rust-mangled.linux-perf.txt";
    let text = peer_text(input);
    let events = text
        .lines()
        .filter(|l| perf::looks_like_event_header(l))
        .count() as u64;
    let profile = perf::parse(&text, input, &PerfOptions::default()).unwrap();
    assert_eq!(profile.skipped, 0);
    assert_eq!(profile.total().allocs, events * 16_949_152);
    assert!(profile
        .stacks()
        .all(|(frames, _)| frames[0] == "trace" && frames.len() > 1));
}
