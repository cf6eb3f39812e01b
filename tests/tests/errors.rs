//! Clear errors, never a panic; partial results kept (issue 4, point 8), on each backend
//! (issue 12); probes of the user's and attaching are the perf backend's alone, and the
//! in-process backend says it cannot do them.

use allocflame_core::probes::Probe;
use allocflame_core::source::{RecordOptions, Target};
use allocflame_core::Error;
use allocflame_tests::*;

backend_tests! {
    both: a_missing_program_says_so,
        a_target_that_dies_keeps_what_was_recorded;
    perf: a_library_without_the_probed_function_is_named,
        attaching_to_a_missing_pid_says_so;
    preload: attaching_is_declined_naming_it;
}

fn a_missing_program_says_so(backend: Backend) {
    let err = record(backend, &["/nonexistent/allocflame-no-such-program"])
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(msg.contains("not found"), "{msg}");
    let err = record(backend, &["allocflame-no-such-program-in-path"])
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("PATH"), "{err}");
}

fn a_library_without_the_probed_function_is_named(backend: Backend) {
    let mut options = RecordOptions::default();
    options.probes.push(
        "libc:allocflame_no_such_function:0"
            .parse::<Probe>()
            .unwrap(),
    );
    let err = record_on(backend, &Target::spawn(["/bin/true"]), options)
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("has no function `allocflame_no_such_function`"),
        "{msg}"
    );
    assert!(msg.contains("nm -D"), "{msg}");
}

fn a_target_that_dies_keeps_what_was_recorded(backend: Backend) {
    let _turn = backend.turn();
    let dir = TempDir::new("dies");
    let prog = build_c(&dir, "custom_alloc.c");
    let run = record(backend, &[prog.to_str().unwrap(), "500", "die"]).unwrap();
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

fn attaching_to_a_missing_pid_says_so(backend: Backend) {
    let err = record_on(
        backend,
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

/// The in-process library is injected into programs started here only.
fn attaching_is_declined_naming_it(_: Backend) {
    let target = Target::Attach {
        pid: std::process::id(),
        duration: None,
    };
    let why = unsupported_in_process(&target, RecordOptions::default());
    assert!(why.contains("attach"), "{why}");
}
