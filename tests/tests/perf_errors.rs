//! Clear errors, never a panic; partial results kept (issue 4, point 8).

use allocflame_core::probes::Probe;
use allocflame_core::source::{RecordOptions, Target};
use allocflame_core::Error;
use allocflame_tests::*;

#[test]
fn a_missing_program_says_so() {
    if !uprobes_available() {
        return;
    }
    let err = record_perf(&["/nonexistent/allocflame-no-such-program"])
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(msg.contains("not found"), "{msg}");
    let err = record_perf(&["allocflame-no-such-program-in-path"])
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("PATH"), "{err}");
}

#[test]
fn a_library_without_the_probed_function_is_named() {
    if !uprobes_available() {
        return;
    }
    let mut options = RecordOptions::default();
    options.probes.push(
        "libc:allocflame_no_such_function:0"
            .parse::<Probe>()
            .unwrap(),
    );
    let err = record_with(&Target::spawn(["/bin/true"]), options)
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("has no function `allocflame_no_such_function`"),
        "{msg}"
    );
    assert!(msg.contains("nm -D"), "{msg}");
}

#[test]
fn a_target_that_dies_keeps_what_was_recorded() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("dies");
    let prog = build_c(&dir, "custom_alloc.c");
    let run = record_perf(&[prog.to_str().unwrap(), "500", "die"]).unwrap();
    assert_eq!(run.report.signal, Some(6), "{:?}", run.report);
    assert!(run.report.interrupted);
    assert!(
        run.report
            .notes
            .iter()
            .any(|n| n.contains("killed by SIGABRT (signal 6)")),
        "{:?}",
        run.report.notes
    );
    assert_eq!(
        run.count_ending("main;use_plain;malloc"),
        500,
        "{}",
        run.dump()
    );
}

#[test]
fn attaching_to_a_missing_pid_says_so() {
    if !uprobes_available() {
        return;
    }
    let err = record_with(
        &Target::Attach {
            pid: 999_999_999,
            duration: None,
        },
        RecordOptions::default(),
    )
    .err()
    .expect("must fail");
    assert!(err.to_string().contains("no process 999999999"), "{err}");
}
