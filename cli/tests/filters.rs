//! `--only-pid`, `--only-probe` and `--min-weight` on `render` and `diff`, checked on the
//! folded output they write.

use std::path::{Path, PathBuf};

mod cli_util;

use cli_util::{allocflame, text};

fn tempdir(name: &str) -> PathBuf {
    cli_util::tempdir("filters", name)
}

const FOLDED: &str =
    "prog;main;parse;malloc 7\nprog;main;load;calloc 3\nprog;main;__libc_malloc 1\n";

/// A `perf script` capture of uprobes on glibc's malloc and calloc (pid 6903, with sizes).
fn perf_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/data/perf/malloc-calloc-size-pidtid-fp.txt")
}

/// Renders `input` (a file in `d`, or a path) with `filters`; returns the folded output and
/// stderr, asserting success.
fn render(d: &Path, input: &str, filters: &[&str]) -> (String, String) {
    let mut args = vec!["render", input, "-o", "g.svg", "--folded", "out.folded"];
    args.extend_from_slice(filters);
    let out = allocflame(&args, d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (
        std::fs::read_to_string(d.join("out.folded")).unwrap(),
        text(&out.stderr),
    )
}

#[test]
fn only_probe_matches_the_leaf_of_an_imported_capture() {
    let d = tempdir("probe");
    std::fs::write(d.join("cap.folded"), FOLDED).unwrap();
    let (folded, stderr) = render(&d, "cap.folded", &["--only-probe", "malloc"]);
    assert_eq!(
        folded,
        "prog;main;__libc_malloc 1\nprog;main;parse;malloc 7\n"
    );
    assert!(
        stderr.contains("the filters (probe malloc) left out 1 stacks (3 allocations)"),
        "never silent: {stderr}"
    );
    let (folded, _) = render(
        &d,
        "cap.folded",
        &["--only-probe", "calloc", "--only-probe", "malloc"],
    );
    assert_eq!(
        folded,
        "prog;main;__libc_malloc 1\nprog;main;load;calloc 3\nprog;main;parse;malloc 7\n"
    );
}

#[test]
fn only_probe_on_a_perf_script_capture() {
    let d = tempdir("perf-probe");
    let cap = perf_capture();
    let (folded, stderr) = render(&d, cap.to_str().unwrap(), &["--only-probe", "calloc"]);
    assert_eq!(
        folded,
        "allocs;__libc_start_call_main;main;level2;calloc 5\n"
    );
    assert!(
        stderr.contains("left out 2 stacks (5 allocations, 314 bytes)"),
        "{stderr}"
    );
}

#[test]
fn min_weight_in_allocations_and_bytes() {
    let d = tempdir("min");
    std::fs::write(d.join("cap.folded"), FOLDED).unwrap();
    let (folded, stderr) = render(&d, "cap.folded", &["--min-weight", "3"]);
    assert_eq!(
        folded,
        "prog;main;load;calloc 3\nprog;main;parse;malloc 7\n"
    );
    assert!(stderr.contains("min weight 3 allocations"), "{stderr}");
    let out = allocflame(
        &[
            "render",
            "cap.folded",
            "-o",
            "g.svg",
            "--min-weight",
            "3",
            "--json",
            "-",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["filtered"]["stacks"], 1, "{summary}");
    assert_eq!(summary["filtered"]["weight"]["allocs"], 1, "{summary}");

    let cap = perf_capture();
    let (folded, _) = render(
        &d,
        cap.to_str().unwrap(),
        &["--weight", "bytes", "--min-weight", "301"],
    );
    assert_eq!(
        folded,
        "allocs;__libc_start_call_main;main;level2;calloc 320\n"
    );
}

#[test]
fn a_filter_that_removes_everything_says_so() {
    let d = tempdir("empty");
    std::fs::write(d.join("cap.folded"), FOLDED).unwrap();
    for (filters, says) in [
        (
            &["--only-probe", "free"][..],
            "the filters (probe free) removed all 3 stacks (11 allocations)",
        ),
        (&["--min-weight", "100"][..], "removed all 3 stacks"),
        (&["--only-pid", "42"][..], "carries no process ids"),
    ] {
        let mut args = vec!["render", "cap.folded", "-o", "g.svg"];
        args.extend_from_slice(filters);
        let out = allocflame(&args, &d);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{filters:?}: {stderr}");
        assert!(
            stderr.contains("no allocations recorded") && stderr.contains(says),
            "{filters:?}: {stderr}"
        );
        assert!(
            !d.join("g.svg").exists(),
            "no SVG that looks as if all were well"
        );
    }
}

#[test]
fn diff_filters_both_sides() {
    let d = tempdir("diff");
    std::fs::write(
        d.join("a.folded"),
        "p;main;a;malloc 10\np;main;b;calloc 5\n",
    )
    .unwrap();
    std::fs::write(d.join("b.folded"), "p;main;a;malloc 2\np;main;b;calloc 9\n").unwrap();
    let out = allocflame(
        &[
            "diff",
            "a.folded",
            "b.folded",
            "-o",
            "d.svg",
            "--folded",
            "d.folded",
            "--only-probe",
            "calloc",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(d.join("d.folded")).unwrap(),
        "p;main;b;calloc 5 9\n"
    );
    assert!(
        text(&out.stdout).contains("5 before, 9 after"),
        "{}",
        text(&out.stdout)
    );
}

/// Two processes (`perf script -F comm,pid,tid,…`), the same stacks, malloc and calloc events.
const TWO_PIDS: &str = "\
app 100/100 [000] 1.000: probe_libc:malloc: (7f00) size=16
\t1000 malloc (/lib/libc.so.6)
\t2000 work (/app)
\t3000 main (/app)

app 200/201 [001] 1.001: probe_libc:malloc: (7f00) size=16
\t1000 malloc (/lib/libc.so.6)
\t2000 work (/app)
\t3000 main (/app)

app 200/200 [001] 1.002: probe_libc:malloc: (7f00) size=16
\t1000 malloc (/lib/libc.so.6)
\t2000 work (/app)
\t3000 main (/app)

app 100/100 [000] 1.003: probe_libc:calloc: (7f10) nmemb=2 size=8
\t1010 __libc_calloc (/lib/libc.so.6)
\t2000 work (/app)
\t3000 main (/app)
";

#[test]
fn only_pid_and_only_probe_on_a_perf_script_capture_with_pids() {
    let d = tempdir("pids");
    std::fs::write(d.join("two.txt"), TWO_PIDS).unwrap();
    let (folded, _) = render(&d, "two.txt", &[]);
    assert_eq!(folded, "app;main;work;calloc 1\napp;main;work;malloc 3\n");
    let (folded, stderr) = render(&d, "two.txt", &["--only-pid", "200"]);
    assert_eq!(folded, "app;main;work;malloc 2\n");
    assert!(
        stderr.contains("the filters (pid 200) left out 1 stacks (2 allocations, 32 bytes)"),
        "{stderr}"
    );
    let (folded, _) = render(
        &d,
        "two.txt",
        &["--only-pid", "100", "--only-probe", "malloc"],
    );
    assert_eq!(folded, "app;main;work;malloc 1\n");
    let (folded, _) = render(
        &d,
        "two.txt",
        &[
            "--only-pid",
            "100",
            "--only-pid",
            "200",
            "--min-weight",
            "2",
        ],
    );
    assert_eq!(
        folded, "app;main;work;malloc 3\n",
        "min weight judges the merged stack"
    );
    let out = allocflame(
        &["render", "two.txt", "-o", "g.svg", "--only-pid", "300"],
        &d,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the filters (pid 300) removed all 2 stacks (4 allocations)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn record_takes_the_filters_beside_its_probe_options() {
    // `--only-probe FUNC` (a filter) and `--only-probes` (probe only the --probe functions)
    // are different arguments of `record`; `--dry-run` parses everything and records nothing.
    let d = tempdir("record-args");
    let out = allocflame(
        &[
            "record",
            "--backend",
            "dtrace",
            "--dry-run",
            "--only-probe",
            "calloc",
            "--only-pid",
            "3",
            "--min-weight",
            "2",
            "--only-probes",
            "--probe",
            "libc:calloc:0",
            "--",
            "/bin/true",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&allocflame(&["record", "--help"], &d).stdout);
    for arg in [
        "--only-probe <FUNC>",
        "--only-probes",
        "--only-pid <PID>",
        "--min-weight <N>",
        "--probe <LIB:FUNC[:SIZE_ARG]>",
    ] {
        assert!(help.contains(arg), "{arg}: {help}");
    }
}
