//! End-to-end test of `allocflame demangle` as a stdin → stdout filter.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], input: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allocflame"))
        .arg("demangle")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn allocflame");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "allocflame demangle failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn filters_folded_perf_and_dtrace_lines() {
    let input = "\
main;$s4main5helloyySiF;_ZN3foo3barEv;malloc 12
  7f0012 _ZN4core3fmt5write17h0123456789abcdefE+0x1c (/usr/bin/x)
libswiftCore.dylib`$sSS6appendyySSF+0x20
plain words stay: _Toggle $sfoo _Zebra
";
    let full = run(&[], input);
    assert_eq!(
        full,
        "\
main;main.hello(Swift.Int) -> ();foo::bar();malloc 12
  7f0012 core::fmt::write+0x1c (/usr/bin/x)
libswiftCore.dylib`Swift.String.append(Swift.String) -> ()+0x20
plain words stay: _Toggle $sfoo _Zebra
"
    );
    let simplified = run(&["--simplified"], "main;$s4main5helloyySiF 3\n");
    assert_eq!(simplified, "main;hello(_:) 3\n");
}

#[test]
fn survives_hostile_input() {
    let input = "_T0s30ReversedRandomAccessCollectionVyxGTfq3nnp\n$sBf16_Rv4_\n\
@__swiftmacro_9MacroUser16MemberNotCoveredV33_4361AD9339943F52AE6h86DD51E04E91Ll0dE0fMf0\n\
\u{0}\u{1}binary\u{ff}\n";
    let out = run(&[], input);
    assert_eq!(out.lines().count(), 4);
}
