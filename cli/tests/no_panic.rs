//! No panic on any argument or closed pipe: a reader that goes away (`allocflame … | head -c1`)
//! ends allocflame quietly with everything already written to files complete; arguments out of
//! range are clear errors; counts that would overflow are an error naming the file and line.

mod cli_util;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use cli_util::{allocflame, tempdir, text};

/// 3,000 distinct functions: a summary far larger than a pipe holds (64 KiB), so writing it
/// meets the closed pipe whenever the reader went away.
fn big_folded() -> String {
    (1..=3000)
        .map(|i| format!("app;main;function_{i} {i}\n"))
        .collect()
}

fn no_panic(out: &Output) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.code().is_some(),
        "allocflame died of a signal: {out:?}"
    );
}

/// Runs `allocflame ARGS` in `dir` with stdout a pipe whose read end is closed at once.
fn with_closed_stdout(args: &[&str], dir: &std::path::Path, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allocflame"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_render_quietly_with_its_files_written() {
    let d = tempdir("nopanic", "pipe");
    std::fs::write(d.join("big.folded"), big_folded()).unwrap();
    let out = with_closed_stdout(
        &[
            "render",
            "big.folded",
            "-o",
            "big.svg",
            "--folded",
            "out.folded",
            "--top",
            "3000",
        ],
        &d,
        None,
    );
    no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(141),
        "the status of a process SIGPIPE ended, as `cat` has: {}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("error"),
        "quietly: {}",
        text(&out.stderr)
    );
    let svg = std::fs::read_to_string(d.join("big.svg")).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"), "the SVG is complete");
    let folded = std::fs::read_to_string(d.join("out.folded")).unwrap();
    assert_eq!(folded.lines().count(), 3000, "the folded file is complete");

    // `--json -` to a closed stdout, and `diff`, and `demangle`: the same.
    let out = with_closed_stdout(
        &[
            "render",
            "big.folded",
            "-o",
            "big.svg",
            "--top",
            "3000",
            "--json",
            "-",
        ],
        &d,
        None,
    );
    no_panic(&out);
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    let out = with_closed_stdout(
        &[
            "diff",
            "big.folded",
            "out.folded",
            "-o",
            "d.svg",
            "--top",
            "3000",
        ],
        &d,
        None,
    );
    no_panic(&out);
    let names: String = (0..20_000).map(|i| format!("_ZN3foo3barE{i}\n")).collect();
    let out = with_closed_stdout(&["demangle"], &d, Some(names.as_bytes()));
    no_panic(&out);
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
}

#[test]
fn a_closed_stderr_is_no_panic_either() {
    let d = tempdir("nopanic", "stderr");
    std::fs::write(d.join("big.folded"), big_folded()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_allocflame"))
        .args([
            "render",
            "big.folded",
            "-o",
            "big.svg",
            "--folded",
            "f.folded",
        ])
        .current_dir(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(std::fs::read_to_string(d.join("big.svg"))
        .unwrap()
        .trim_end()
        .ends_with("</svg>"));
}

#[test]
fn arguments_out_of_range_are_clear_errors() {
    let d = tempdir("nopanic", "args");
    let me = std::process::id().to_string();
    for (args, says) in [
        (
            vec!["record", "-p", &me, "--duration", "1e19"],
            "--duration 10000000000000000000: too long",
        ),
        (
            vec!["count", "-p", &me, "--duration", "1e300"],
            ": too long",
        ),
        (
            vec!["record", "-p", &me, "--duration", "NaN"],
            "--duration NaN: expected a positive number of seconds",
        ),
        (
            vec!["record", "-p", &me, "--duration", "inf"],
            "expected a positive number of seconds",
        ),
        (
            vec!["record", "-p", &me, "--duration=-1"],
            "--duration -1: expected a positive number of seconds",
        ),
        (
            vec!["record", "-p", &me, "--duration", "0"],
            "expected a positive number of seconds",
        ),
        (
            vec![
                "count",
                "--buffer-kib",
                "18446744073709551615",
                "--",
                "true",
            ],
            "--buffer-kib 18446744073709551615: too large",
        ),
    ] {
        let out = allocflame(&args, &d);
        no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Extreme values that are fine.
    std::fs::write(d.join("c.folded"), "app;main;f 3\napp;main;g 1\n").unwrap();
    for extra in [
        &["--width", "0"][..],
        &["--width", "18446744073709551615"],
        &["--top", "18446744073709551615"],
        &["--top", "0"],
        &["--min-weight", "0"],
    ] {
        let mut args = vec!["render", "c.folded", "-o", "c.svg"];
        args.extend(extra);
        let out = allocflame(&args, &d);
        no_panic(&out);
        assert!(out.status.success(), "{extra:?}: {}", text(&out.stderr));
    }
}

#[test]
fn counts_that_would_overflow_are_an_error_naming_the_line() {
    let d = tempdir("nopanic", "overflow");
    let max = u64::MAX;
    let cases = [
        (
            "sum.folded",
            format!("app;main;a {max}\napp;main;b 1\n"),
            "sum.folded:2: the allocation counts add up to more than 18446744073709551615",
        ),
        (
            "big.folded",
            "app;main;a 1\napp;main;b 99999999999999999999999\n".to_owned(),
            "big.folded:2: the count 99999999999999999999999 is larger than 18446744073709551615",
        ),
        (
            "periods.perf.txt",
            format!(
                "app 1/1 [000] 1.0: {max} probe_libc:malloc: (7f00)\n\t1000 malloc+0x0 (/lib/libc.so.6)\n\n\
                 app 1/1 [000] 2.0: 1 probe_libc:malloc: (7f00)\n\t1000 malloc+0x0 (/lib/libc.so.6)\n"
            ),
            "periods.perf.txt:4: the allocation counts add up to more than",
        ),
        (
            "bytes.perf.txt",
            "app 1/1 [000] 1.0: probe_libc:calloc: (7f00) nmemb=0x100000000 size=0x100000000\n\t1000 calloc+0x0 (/lib/libc.so.6)\n".to_owned(),
            "bytes.perf.txt:1: the event's bytes (4294967296 × 4294967296 × period 1) are more than",
        ),
        (
            "sum.dtrace.txt",
            format!("\n  libc.so.1`malloc\n  a.out`main+0x10\n   {max}\n\n  libc.so.1`malloc\n  a.out`f+0x10\n   1\n"),
            "sum.dtrace.txt:8: the allocation counts add up to more than",
        ),
    ];
    for (name, content, says) in &cases {
        std::fs::write(d.join(name), content).unwrap();
        let svg = format!("{name}.svg");
        let out = allocflame(&["render", name, "-o", &svg], &d);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(says),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(!d.join(&svg).exists(), "{name}: no graph of wrong counts");
    }
    // diff: the error names the capture; a change larger than i64 is given exactly.
    let out = allocflame(&["diff", "sum.folded", "sum.folded", "-o", "d.svg"], &d);
    no_panic(&out);
    assert!(
        text(&out.stderr).contains("sum.folded:2:"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(d.join("max.folded"), format!("app;main;a {max}\n")).unwrap();
    std::fs::write(d.join("one.folded"), "app;main;a 1\n").unwrap();
    let out = allocflame(
        &[
            "diff",
            "max.folded",
            "one.folded",
            "-o",
            "d.svg",
            "--json",
            "-",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // (serde_json::Value would read the number back as a float: look at the text.)
    let json = text(&out.stdout);
    assert!(json.contains(&format!("\"delta\": -{}", max - 1)), "{json}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partial"], false, "{v}");
}
