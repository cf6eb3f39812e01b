//! Recognising the usual obstacles from what dtrace prints, and the Linux answer.

use allocflame_backend_dtrace::errors::{classify, drops, sip_protected_path, ROOT_HINT, SIP_HINT};
use allocflame_core::Error;

fn hint_of(e: &Error) -> &str {
    match e {
        Error::PermissionDenied { hint, .. } => hint,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn not_root() {
    let e = classify(
        "dtrace: failed to initialize dtrace: DTrace requires additional privileges\n",
        Some(1),
    );
    assert_eq!(hint_of(&e), ROOT_HINT);
    assert!(e.to_string().contains("sudo"));
}

#[test]
fn sip_blocks_a_protected_program() {
    let text = "dtrace: system integrity protection is on, some features will not be available\n\n\
                dtrace: failed to execute /bin/ls: (os/kern) failure\n";
    let e = classify(text, Some(1));
    assert_eq!(hint_of(&e), SIP_HINT);
    assert!(e.to_string().contains("(os/kern) failure"), "{e}");
    assert!(e.to_string().contains("codesign --remove-signature"), "{e}");
}

#[test]
fn sip_blocks_an_attach() {
    let e = classify(
        "dtrace: system integrity protection is on, some features will not be available\n\
         dtrace: failed to grab pid 123: (os/kern) failure\n",
        Some(1),
    );
    assert_eq!(hint_of(&e), SIP_HINT);
}

#[test]
fn other_failures() {
    let e = classify(
        "dtrace: failed to grab pid 99999: No such process\n",
        Some(1),
    );
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let e = classify(
        "dtrace: failed to execute ./nope: No such file or directory\n",
        Some(1),
    );
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let e = classify(
        "dtrace: failed to compile script /tmp/a.d: line 9: syntax error near \"}\"\n",
        Some(1),
    );
    assert!(e.to_string().contains("bug in allocflame"), "{e}");
    let e = classify("something new\n", None);
    assert!(e.to_string().contains("killed by a signal"), "{e}");
}

#[test]
fn the_sip_warning_alone_is_no_failure_to_explain_as_sip() {
    // dtrace prints this on every run while SIP is on; it must not hide the real cause.
    let e = classify(
        "dtrace: system integrity protection is on, some features will not be available\n\
         dtrace: failed to initialize dtrace: DTrace requires additional privileges\n",
        Some(1),
    );
    assert_eq!(hint_of(&e), ROOT_HINT);
}

#[test]
fn drop_messages() {
    let d = drops(
        "dtrace: system integrity protection is on, some features will not be available\n\
         dtrace: 17 aggregation drops on CPU 2\n\
         dtrace: 3 dynamic variable drops with non-empty dirty list\n\
         dtrace: 4 drops on CPU 0\n",
    );
    assert_eq!((d.aggregation, d.dynamic, d.principal), (17, 3, 4));
    assert!(drops("").is_empty());
}

#[test]
fn protected_locations() {
    for p in [
        "/usr/bin/true",
        "/System/Applications/Calculator.app",
        "/sbin/ping",
    ] {
        assert!(sip_protected_path(p.as_ref()), "{p}");
    }
    for p in [
        "/usr/local/bin/prog",
        "/Users/me/prog",
        "/opt/homebrew/bin/rg",
        "/usrx/prog",
    ] {
        assert!(!sip_protected_path(p.as_ref()), "{p}");
    }
}

#[cfg(not(target_os = "macos"))]
#[test]
fn elsewhere_dtrace_says_it_is_a_macos_backend() {
    use allocflame_backend_dtrace::DtraceSource;
    use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};
    let opts = RecordOptions::default();
    let mut sink = Collector::new(&opts.probes);
    let e = DtraceSource
        .record(&Target::spawn(["./prog"]), &opts, &mut sink)
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)));
    let msg = e.to_string();
    assert!(msg.contains("DTrace is a macOS backend"), "{msg}");
    assert!(msg.contains("--backend perf"), "{msg}");
}
