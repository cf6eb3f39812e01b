//! `allocflame render` and `allocflame diff` the way a user runs them.

use std::path::{Path, PathBuf};

mod cli_util;

use cli_util::{allocflame, text};

fn tempdir(name: &str) -> PathBuf {
    cli_util::tempdir("cli", name)
}

const FOLDED: &str = "prog;main;parse;malloc 7\nprog;main;load;calloc 3\n";

#[test]
fn render_folded_writes_svg_folded_and_summary() {
    let d = tempdir("render");
    std::fs::write(d.join("cap.folded"), FOLDED).unwrap();
    let out = allocflame(
        &[
            "render",
            "cap.folded",
            "-o",
            "g.svg",
            "--folded",
            "back.folded",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(d.join("g.svg")).unwrap();
    assert!(
        svg.contains("Allocations of prog"),
        "title names the program"
    );
    assert!(svg.contains("allocations"), "count name");
    assert!(svg.contains("parse"));
    assert_eq!(
        std::fs::read_to_string(d.join("back.folded")).unwrap(),
        "prog;main;load;calloc 3\nprog;main;parse;malloc 7\n"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("allocations: 10"), "{stdout}");
    // The sites (the frame above the allocator) and the program's functions, `main` left out
    // for being on every stack.
    assert!(
        stdout.contains("top allocation sites (the code that called the allocator):\n allocations       %  site  (source line)  → what it called\n           7  70.00%  parse  → malloc\n           3  30.00%  load  → calloc\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("top program functions by total (on the stack); left out, on every stack: main:\n allocations       %  function\n           7  70.00%  parse\n           3  30.00%  load\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("allocators called (by self): malloc 7 (70.00%), calloc 3 (30.00%)"),
        "{stdout}"
    );
}

#[test]
fn render_json_summary_and_default_output_name() {
    let d = tempdir("json");
    std::fs::write(d.join("my capture.folded"), FOLDED).unwrap();
    let out = allocflame(&["render", "--json", "-", "my capture.folded"], &d);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["allocations"], 10);
    assert_eq!(v["top_self"][0]["function"], "malloc");
    assert_eq!(v["top_self"][0]["allocs"], 7);
    assert!(
        d.join("my_capture.svg").exists(),
        "default SVG name from the input's name"
    );
}

#[test]
fn render_options_flamechart_width_title_bytes() {
    let d = tempdir("opts");
    std::fs::write(d.join("b.folded"), "p;main;malloc 4096\n").unwrap();
    let out = allocflame(
        &[
            "render",
            "b.folded",
            "--weight",
            "bytes",
            "--flamechart",
            "--width",
            "800",
            "--title",
            "T1",
            "-o",
            "b.svg",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(d.join("b.svg")).unwrap();
    assert!(svg.contains("width=\"800\""), "width is honoured");
    assert!(svg.contains(">T1<"), "title is honoured");
    assert!(svg.contains("4,096 bytes"), "bytes count name");
    assert!(
        text(&out.stdout).contains("bytes: 4096"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn prettify_builtin_and_rule_file() {
    let d = tempdir("pretty");
    std::fs::write(
        d.join("s.folded"),
        "app;main;specialized Foo.run();swift_allocObject;swift_slowAlloc;malloc 5\n",
    )
    .unwrap();
    std::fs::write(d.join("rules.txt"), "# mine\nreplace: Foo. => F.\n").unwrap();
    let out = allocflame(
        &[
            "render",
            "s.folded",
            "--prettify",
            "--rules",
            "rules.txt",
            "--folded",
            "o.folded",
            "-o",
            "o.svg",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(d.join("o.folded")).unwrap(),
        "app;main;F.run();A 5\n"
    );

    std::fs::write(d.join("bad.txt"), "fold: nothing here\n").unwrap();
    let out = allocflame(&["render", "s.folded", "--rules", "bad.txt"], &d);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bad.txt:1:"),
        "{}",
        text(&out.stderr)
    );

    // A missing rules file: named, and the OS's reason said once (the core error carries it as
    // its source and in its message).
    let out = allocflame(&["render", "s.folded", "--rules", "missing.txt"], &d);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("missing.txt: No such file or directory"),
        "{err}"
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn diff_draws_and_lists_changes() {
    let d = tempdir("diff");
    std::fs::write(
        d.join("before.folded"),
        "p;main;a;malloc 10\np;main;b;malloc 5\n",
    )
    .unwrap();
    std::fs::write(
        d.join("after.folded"),
        "p;main;a;malloc 2\np;main;b;malloc 5\np;main;c;malloc 8\n",
    )
    .unwrap();
    let out = allocflame(
        &["diff", "before.folded", "after.folded", "-o", "d.svg"],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("15 before, 15 after"), "{stdout}");
    let grew = stdout.split("shrank most").next().unwrap();
    assert!(
        grew.contains("+8") && grew.contains("p;main;c;malloc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-8") && stdout.contains("p;main;a;malloc"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(d.join("d.svg")).unwrap();
    assert!(
        svg.contains("p;main;c") || svg.contains(">c<") || svg.contains("c (8"),
        "diff svg has the new frame"
    );
}

#[test]
fn bad_input_is_a_clear_error_and_writes_no_svg() {
    let d = tempdir("bad");
    std::fs::write(d.join("x.folded"), "a;b 1\nthis is not folded\n").unwrap();
    let out = allocflame(
        &["render", "--from", "folded", "x.folded", "-o", "x.svg"],
        &d,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("x.folded:2:"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !d.join("x.svg").exists(),
        "no SVG written as if all were well"
    );

    let out = allocflame(&["render", "missing.txt"], &d);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("missing.txt"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(d.join("empty.folded"), "").unwrap();
    let out = allocflame(
        &["render", "--from", "folded", "empty.folded", "-o", "e.svg"],
        &d,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no allocations"),
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("e.svg").exists());

    std::fs::write(d.join("ok.folded"), FOLDED).unwrap();
    let out = allocflame(&["render", "ok.folded", "-o", "/nonexistent-dir/x.svg"], &d);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot write /nonexistent-dir/x.svg"),
        "{}",
        text(&out.stderr)
    );
}

/// Arbitrary bytes in any format: never a panic (exit 101) or a signal, never an SVG.
#[test]
fn random_bytes_never_panic() {
    let d = tempdir("fuzz");
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"abc;: \n\t0123456789`+x[]()<>-_#.\xff\xfe";
    for i in 0..60 {
        let len = (next() % 400) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if i % 2 == 0 {
                    r as u8
                } else {
                    alphabet[(r % alphabet.len() as u64) as usize]
                }
            })
            .collect();
        std::fs::write(d.join("in.bin"), &bytes).unwrap();
        for from in [None, Some("perf-script"), Some("dtrace"), Some("folded")] {
            let mut args = vec!["render", "in.bin", "-o", "o.svg"];
            if let Some(f) = from {
                args.extend(["--from", f]);
            }
            let out = allocflame(&args, &d);
            let code = out.status.code();
            assert!(
                code == Some(0) || code == Some(1),
                "exit {code:?} for input {bytes:?}: {}",
                text(&out.stderr)
            );
            if code == Some(1) {
                assert!(
                    text(&out.stderr).starts_with("allocflame: error:"),
                    "{}",
                    text(&out.stderr)
                );
                assert!(!d.join("o.svg").exists());
            }
            let _ = std::fs::remove_file(d.join("o.svg"));
        }
    }
}

/// The README's first command, on the Swift capture shipped in the repository (recorded by
/// `allocflame record`, names as the binaries hold them): the count it holds, demangled.
#[test]
fn readme_swift_capture_renders_demangled() {
    let d = tempdir("readme-swift");
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/captures/swift-http.folded.gz");
    let out = allocflame(
        &[
            "render",
            capture.to_str().unwrap(),
            "-o",
            "swift-http.svg",
            "--json",
            "-",
            "--folded",
            "s.folded",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allocations"], 9539, "the capture's own total");
    let folded = std::fs::read_to_string(d.join("s.folded")).unwrap();
    assert!(folded.lines().all(|l| l.starts_with("http;")));
    for name in [
        "serve(_:);respond(_:_:)",
        "specialized static Main.main()",
        "URLSessionTask.resume()",
    ] {
        assert!(folded.contains(name), "{name} is not in the graph");
    }
    assert!(!folded.contains("$s"), "a Swift name was left mangled");
    let svg = std::fs::read_to_string(d.join("swift-http.svg")).unwrap();
    assert!(svg.contains("Allocations of http"));
}

/// The README's first command, on the capture shipped in the repository.
#[test]
fn readme_example_capture_renders_with_exact_counts() {
    let d = tempdir("readme");
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/captures/kvstore.perf.txt.gz");
    let out = allocflame(
        &[
            "render",
            capture.to_str().unwrap(),
            "-o",
            "kvstore.svg",
            "--json",
            "-",
            "--folded",
            "k.folded",
        ],
        &d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["allocations"], 2276,
        "perf stat counted 2236 + 20 + 20 for this run"
    );
    assert_eq!(v["lost"], 0);
    assert_eq!(v["skipped"], 0);
    let leaf = |name: &str| {
        v["top_self"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"].as_str().unwrap().contains(name))
            .cloned()
    };
    assert_eq!(leaf("malloc").unwrap()["allocs"], 2236);
    assert_eq!(leaf("calloc").unwrap()["allocs"], 20);
    let pm = leaf("posix_memalign").unwrap();
    assert_eq!(pm["allocs"], 20);
    assert_eq!(
        pm["bytes"],
        20 * 4096,
        "posix_memalign(…, 64, 4096) twenty times"
    );
    let svg = std::fs::read_to_string(d.join("kvstore.svg")).unwrap();
    assert!(svg.contains("Allocations of kvstore"));
    assert!(
        svg.contains("parse_request") && svg.contains("Store::handle"),
        "user frames are in the graph"
    );
    let folded = std::fs::read_to_string(d.join("k.folded")).unwrap();
    assert!(
        folded.lines().all(|l| l.starts_with("kvstore;")),
        "the process is the root frame"
    );
}
