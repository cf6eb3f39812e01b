//! pprof output end to end: what `record --format pprof`, `render --format pprof` and `diff
//! --format pprof` write is read back by the real `go tool pprof` (Debian's golang-go) and must
//! hold the same stacks and counts as the folded output of the same run; `render` reads pprof
//! back, allocflame's own and a real Go heap profile.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod pprof_util;
mod record_util;

use std::process::Command;

use allocflame_core::pprof;
use pprof_util::*;
use record_util::*;

/// `allocflame record --format pprof` of a real program, read by `go tool pprof`: the same
/// stacks and counts as the folded file of the same run, for allocations and for bytes, with
/// the process and probe as labels.
#[test]
fn go_tool_pprof_reads_what_record_wrote() {
    if !allocflame_tests::preload_available() || !go_available() {
        return;
    }
    let dir = TempDir::new("pprof-record");
    let prog = build_c(&dir, "alloc_counts.c");
    let prog = prog.to_str().unwrap();
    for (weight, type_name) in [("allocations", "alloc_objects"), ("bytes", "alloc_space")] {
        let out = run(
            &[
                "record", "--format", "pprof", "-o", "x.pb.gz", "--folded", "x.folded", "--weight",
                weight, "--", prog, "2000",
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{weight}: {}", text(&out.stderr));
        let folded = read_folded(&dir.join("x.folded"));
        let leaf: u64 = folded
            .iter()
            .filter(|(s, _)| s.ends_with(";main;level1;level2;malloc"))
            .map(|(_, n)| n)
            .sum();
        let expected = if weight == "bytes" { 2000 * 16 } else { 2000 };
        assert_eq!(leaf, expected, "{weight}: {folded:?}");
        let raw = go_raw(&dir.join("x.pb.gz"));
        // The --weight's type last: the default of every reader (go tool pprof, speedscope).
        let other = if weight == "bytes" {
            "alloc_objects"
        } else {
            "alloc_space"
        };
        assert_eq!(raw.types, [other, type_name], "{}", raw.text);
        assert_eq!(
            raw.of(type_name),
            &folded,
            "{weight}: go tool pprof -raw against the folded file\n{}",
            raw.text
        );
        assert!(
            raw.text.contains(&format!("{type_name}/")) && raw.text.contains("[dflt]"),
            "the --weight is the default sample type: {}",
            raw.text
        );
        assert!(
            raw.labels.iter().any(|l| l.starts_with("pid:[")),
            "pid labels: {:?}",
            raw.labels
        );
        for probe in ["malloc", "calloc", "posix_memalign"] {
            assert!(
                raw.labels.iter().any(|l| l == &format!("probe:[{probe}]")),
                "probe label {probe}: {:?}",
                raw.labels
            );
        }
        // The README's round trip: `go tool pprof -top` totals the same.
        let top = Command::new("go")
            .args(["tool", "pprof", "-top"])
            .arg(dir.join("x.pb.gz"))
            .output()
            .unwrap();
        let total: u64 = folded.values().sum();
        let top_text = text(&top.stdout);
        assert!(top.status.success(), "{}", text(&top.stderr));
        // -top prints bytes with units (`43.75kB`): the allocation total is checked exactly.
        if weight == "allocations" {
            let shown = format!("of {total} total");
            assert!(top_text.contains(&shown), "{shown}: {top_text}");
        }
    }
}

/// A pprof file is a capture like the others: `render` reads what `record --format pprof`
/// wrote back to the same folded stacks, its pid and probe labels filter as a recording's do.
#[test]
fn render_reads_pprof_back() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("pprof-read-back");
    let prog = build_c(&dir, "alloc_counts.c");
    let out = run(
        &[
            "record",
            "--format",
            "pprof",
            "-o",
            "x.pb.gz",
            "--folded",
            "x.folded",
            "--",
            prog.to_str().unwrap(),
            "800",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for weight in ["allocations", "bytes"] {
        let out = run(
            &[
                "render",
                "x.pb.gz",
                "--weight",
                weight,
                "--folded",
                "back.folded",
                "-o",
                "back.svg",
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{weight}: {}", text(&out.stderr));
        let back = read_folded(&dir.join("back.folded"));
        if weight == "allocations" {
            assert_eq!(back, read_folded(&dir.join("x.folded")));
        } else {
            let leaf: u64 = back
                .iter()
                .filter(|(s, _)| s.ends_with(";main;level1;level2;malloc"))
                .map(|(_, n)| n)
                .sum();
            assert_eq!(leaf, 800 * 16, "{back:?}");
        }
    }
    let out = run(
        &[
            "render",
            "x.pb.gz",
            "--only-probe",
            "calloc",
            "--folded",
            "c.folded",
            "-o",
            "c.svg",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calloc = read_folded(&dir.join("c.folded"));
    assert_eq!(calloc.len(), 1, "{calloc:?}");
    assert!(
        calloc
            .keys()
            .all(|s| s.ends_with(";main;make_zeroed;calloc")),
        "{calloc:?}"
    );
    assert_eq!(calloc.values().sum::<u64>(), 200);
    // Rendered to pprof without -o, the output would be named after the input: refused, the
    // input untouched.
    let before = std::fs::read(dir.join("x.pb.gz")).unwrap();
    let out = run(&["render", "x.pb.gz", "--format", "pprof"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("x.pb.gz: the output would replace the capture being read"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join("x.pb.gz")).unwrap(), before);
    // A pprof profile of something else is refused, saying what it holds.
    std::fs::write(dir.join("in.folded"), "p;main;malloc 3\n").unwrap();
    let out = run(
        &["render", "in.folded", "--format", "pprof", "-o", "p.pb.gz"],
        dir.path(),
    );
    assert!(out.status.success());
    let out = run(&["render", "--from", "pprof", "in.folded"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("in.folded: not a readable pprof profile"),
        "{}",
        text(&out.stderr)
    );
}

/// `allocflame render --format pprof` of a folded file with names pprof must keep whole
/// (spaces, parentheses, Swift and C++ names): `go tool pprof` reads the same stacks.
#[test]
fn go_tool_pprof_reads_what_render_wrote() {
    if !go_available() {
        return;
    }
    let dir = TempDir::new("pprof-render");
    let folded = "app;main;closure #1 in Foo.bar() -> ();swift_allocObject;malloc 7\n\
                  app;main;operator new(unsigned long) 3\n\
                  app;main;std::vector<int, std::allocator<int> >::push_back(int const&);operator new(unsigned long) 5\n\
                  app;main;calloc 1\n";
    std::fs::write(dir.join("in.folded"), folded).unwrap();
    let out = run(
        &[
            "render",
            "in.folded",
            "--no-demangle",
            "--format",
            "pprof",
            "-o",
            "out.pb.gz",
            "--folded",
            "out.folded",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let raw = go_raw(&dir.join("out.pb.gz"));
    assert_eq!(raw.types, ["alloc_objects"], "a folded file has no sizes");
    assert_eq!(raw.by_type[0], read_folded(&dir.join("out.folded")));
    assert_eq!(raw.by_type[0], read_folded(&dir.join("in.folded")));
    assert!(raw.labels.is_empty(), "a folded file has no pid or probe");
    // Read as bytes, the one sample type is bytes.
    let out = run(
        &[
            "render",
            "in.folded",
            "--weight",
            "bytes",
            "--format",
            "pprof",
            "-o",
            "b.pb.gz",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let raw = go_raw(&dir.join("b.pb.gz"));
    assert_eq!(raw.types, ["alloc_space"]);
    assert_eq!(raw.by_type[0], read_folded(&dir.join("in.folded")));
}

/// `diff --format pprof`: AFTER in -o, BEFORE beside it, and `go tool pprof -diff_base`
/// shows the change.
#[test]
fn diff_writes_two_profiles_for_diff_base() {
    if !go_available() {
        return;
    }
    let dir = TempDir::new("pprof-diff");
    std::fs::write(
        dir.join("before.folded"),
        "p;main;a;malloc 10\np;main;b;malloc 4\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("after.folded"),
        "p;main;a;malloc 13\np;main;c;calloc 2\n",
    )
    .unwrap();
    let out = run(
        &[
            "diff",
            "before.folded",
            "after.folded",
            "--format",
            "pprof",
            "-o",
            "d.pb.gz",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("go tool pprof -diff_base d.base.pb.gz d.pb.gz"));
    assert_eq!(
        go_raw(&dir.join("d.pb.gz")).by_type[0],
        read_folded(&dir.join("after.folded"))
    );
    assert_eq!(
        go_raw(&dir.join("d.base.pb.gz")).by_type[0],
        read_folded(&dir.join("before.folded"))
    );
    let top = Command::new("go")
        .args([
            "tool",
            "pprof",
            "-top",
            "-diff_base",
            "d.base.pb.gz",
            "d.pb.gz",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let top_text = text(&top.stdout);
    assert!(top.status.success(), "{}", text(&top.stderr));
    // a: +3, b: -4, c: +2 → 1 in all.
    let flat = |name: &str| -> Option<i64> {
        top_text
            .lines()
            .find(|l| l.split_whitespace().last() == Some(name))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
    };
    assert_eq!(flat("malloc"), Some(-1), "{top_text}");
    assert_eq!(flat("calloc"), Some(2), "{top_text}");
}

/// A program killed by a signal: the pprof holds what was counted (the folded file's stacks),
/// and says that it is partial.
#[test]
fn a_killed_program_leaves_a_partial_pprof() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("pprof-killed");
    let prog = build_c(&dir, "endings.c");
    let out = run(
        &[
            "record",
            "--format",
            "pprof",
            "-o",
            "k.pb.gz",
            "--folded",
            "k.folded",
            "--",
            prog.to_str().unwrap(),
            "kill",
            "3000",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(128 + 9), "{}", text(&out.stderr));
    let folded = read_folded(&dir.join("k.folded"));
    let work: u64 = folded
        .iter()
        .filter(|(s, _)| s.ends_with(";main;work;malloc"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(work, 3000, "{folded:?}");
    let decoded = pprof::decode(&std::fs::read(dir.join("k.pb.gz")).unwrap()).unwrap();
    assert!(
        decoded.comments.iter().any(|c| c.starts_with("PARTIAL")),
        "{:?}",
        decoded.comments
    );
    assert_eq!(
        pushed_stacks(
            &std::fs::read(dir.join("k.pb.gz")).unwrap(),
            allocflame_core::WeightKind::Allocations
        ),
        folded
    );
}

/// A real Go heap profile (a program written here, run with `go run`, every allocation
/// sampled): `render` reads the same stacks and counts as `go tool pprof`, inlined calls as
/// frames of their own.
#[test]
fn render_reads_a_go_heap_profile() {
    if !go_available() {
        return;
    }
    let dir = TempDir::new("pprof-go-heap");
    std::fs::write(
        dir.join("main.go"),
        r#"package main

import (
	"os"
	"runtime"
	"runtime/pprof"
)

var sink []*[64]byte

//go:noinline
func leaf() *[64]byte { return new([64]byte) }

func inlined() *[64]byte { return leaf() }

//go:noinline
func work(n int) {
	for i := 0; i < n; i++ {
		sink = append(sink[:0], inlined())
	}
}

func main() {
	runtime.MemProfileRate = 1
	work(1000)
	runtime.GC()
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		panic(err)
	}
	f.Close()
}
"#,
    )
    .unwrap();
    let go = Command::new("go")
        .args(["run", "main.go", "heap.pb.gz"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(go.status.success(), "go run: {}", text(&go.stderr));
    let out = run(
        &[
            "render",
            "heap.pb.gz",
            "--no-demangle",
            "--folded",
            "h.folded",
            "-o",
            "h.svg",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let folded = read_folded(&dir.join("h.folded"));
    let raw = go_raw(&dir.join("heap.pb.gz"));
    assert_eq!(&folded, raw.of("alloc_objects"), "{}", raw.text);
    assert_eq!(
        folded
            .iter()
            .filter(|(s, _)| s.ends_with("main.work;main.inlined;main.leaf"))
            .map(|(_, n)| n)
            .sum::<u64>(),
        1000,
        "{folded:?}"
    );
    let bytes = run(
        &[
            "render",
            "heap.pb.gz",
            "--weight",
            "bytes",
            "--folded",
            "b.folded",
            "-o",
            "b.svg",
        ],
        dir.path(),
    );
    assert!(bytes.status.success(), "{}", text(&bytes.stderr));
    assert_eq!(&read_folded(&dir.join("b.folded")), raw.of("alloc_space"));
}

/// `--format pprof` of a `-g` build: pprof's own line fields carry the source lines, as
/// `go tool pprof -lines` shows them, and the function names stay names.
#[test]
fn pprof_output_carries_the_source_lines() {
    if !go_available()
        || !allocflame_tests::Backend::Preload.available()
        || !allocflame_tests::tool_available("g++", "apt-get install g++")
    {
        return;
    }
    let dir = TempDir::new("sites-pprof");
    let (exe, source) = build_kvstore(&dir);
    let _turn = allocflame_tests::Backend::Preload.turn();
    let pb = dir.path().join("k.pb.gz");
    succeed(
        Command::new(bin())
            .args(["record", "--format", "pprof", "-o"])
            .arg(&pb)
            .arg("--")
            .arg(&exe)
            .arg("500"),
    );
    let out = succeed(
        Command::new("go")
            .args([
                "tool",
                "pprof",
                "-lines",
                "-top",
                "-nodecount=100",
                "-sample_index=alloc_objects",
            ])
            .arg(&pb),
    );
    let top = String::from_utf8_lossy(&out.stdout);
    let line = line_of(&source, "malloc(64 + answer.size())");
    assert!(
        top.lines()
            .any(|l| l.contains("format_log_line") && l.contains(&format!("kvstore.cpp:{line}"))),
        "{top}"
    );
    assert!(
        !top.contains("format_log_line ("),
        "no line in a name: {top}"
    );
}
