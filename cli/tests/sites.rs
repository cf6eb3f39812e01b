//! Reports a developer acts on, the way a user gets them: the summary's allocation sites are
//! the code that called the allocator (checked against the call sites in the programs' source,
//! with their source lines), on a C++ program, Debian's perl and the shipped captures; the
//! graph says what it shows; the HTML report works in a real browser (headless Chromium).

mod record_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use allocflame_tests::{backend_tests, build_c, tool_available, Backend, TempDir};
use record_util::*;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Names no site may have: the allocator and what allocates for its caller.
const MACHINERY: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "__libc_malloc",
    "operator new",
    "swift_allocObject",
    "swift_slowAlloc",
    "CRYPTO_malloc",
    "CRYPTO_zalloc",
    "Perl_safesysmalloc",
    "Perl_safesysrealloc",
    "Perl_safesyscalloc",
    "__strdup",
];

fn sites(summary: &Value) -> &Vec<Value> {
    summary["top_sites"].as_array().expect("top_sites")
}

fn no_site_is_machinery(summary: &Value) {
    for s in sites(summary) {
        let f = s["function"].as_str().unwrap();
        assert!(
            !MACHINERY.iter().any(|m| f == *m || f.starts_with("std::")),
            "a site is allocation machinery: {s}"
        );
    }
}

backend_tests! {
    both: a_cpp_program_s_sites_are_its_allocating_lines, perl_s_sites_are_its_own_functions;
}

/// The example C++ key-value store, built `-O2 -g` as a release build with debug info is:
/// every allocation statement of its source is a site, at its line, inlined functions said to
/// be inlined, and the counts its loop makes; `--lines` writes the lines into the frames.
fn a_cpp_program_s_sites_are_its_allocating_lines(backend: Backend) {
    if !tool_available("g++", "apt-get install g++") {
        return;
    }
    let dir = TempDir::new("sites-cpp");
    let (exe, source) = build_kvstore(&dir);
    let _turn = backend.turn();
    let n = 500;
    let json = dir.path().join("s.json");
    let folded = dir.path().join("s.folded");
    let out = succeed(
        Command::new(bin())
            .args([
                "record",
                "--backend",
                backend.name(),
                "--top",
                "30",
                "--lines",
            ])
            .arg("--json")
            .arg(&json)
            .arg("--folded")
            .arg(&folded)
            .args(["-o", "/dev/null", "--"])
            .arg(&exe)
            .arg(n.to_string()),
    );
    let table = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["lost"], 0, "{table}");
    no_site_is_machinery(&summary);
    // (function, text of its allocating statement, exact count if the source says it,
    // whether it is inlined where the compiler's choice is plain: a small static function
    // called once is, main never is)
    let expected: &[(&str, &str, Option<u64>, Option<bool>)] = &[
        ("split_words", "words.emplace_back", None, None),
        ("parse_request", "std::make_unique<Request>", Some(n), None),
        ("parse_request", "\"key:\" + words[1]", None, None),
        ("parse_request", "req->values.push_back", None, None),
        ("Store::handle", "out += v", None, None),
        ("Store::handle", "data[r.key] = r.values", None, None),
        (
            "format_log_line",
            "malloc(64 + answer.size())",
            Some(n),
            Some(true),
        ),
        (
            "scratch_buffer",
            "posix_memalign(&p, 64, n)",
            Some(n / 10),
            Some(true),
        ),
        ("main", "calloc(32, sizeof(int))", Some(n / 10), Some(false)),
    ];
    for &(function, statement, count, inlined) in expected {
        let line = line_of(&source, statement);
        let at = format!("kvstore.cpp:{line}");
        let found: Vec<&Value> = sites(&summary)
            .iter()
            .filter(|s| {
                s["function"].as_str().unwrap().starts_with(function)
                    && s["location"]
                        .as_str()
                        .is_some_and(|l| l.split(", ").next().unwrap().ends_with(&at))
            })
            .collect();
        assert!(
            !found.is_empty(),
            "no site {function} at {at} (`{statement}`):\n{table}"
        );
        // An inlined function is said to be, wherever the compiler put it.
        let location = found[0]["location"].as_str().unwrap();
        if let Some(inlined) = inlined {
            assert_eq!(
                location.ends_with(", inlined"),
                inlined,
                "{function}: {location}"
            );
        }
        if let Some(count) = count {
            let allocs: u64 = found.iter().map(|s| s["allocs"].as_u64().unwrap()).sum();
            assert_eq!(allocs, count, "{function} at {at}:\n{table}");
        }
    }
    // Text too: the site table has its lines without --lines.
    assert!(
        table.contains(&format!(
            "kvstore.cpp:{}, inlined)  → malloc",
            line_of(&source, "malloc(64 + answer.size())")
        )),
        "{table}"
    );
    let program: Vec<&str> = summary["top_program"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    for f in ["parse_request", "split_words"] {
        assert!(program.contains(&f), "{f} in {program:?}");
    }
    for f in ["_start", "__libc_start_call_main", "malloc", "operator new"] {
        assert!(!program.contains(&f), "{f} in {program:?}");
    }
    // --lines: the frames carry their lines in the folded stacks.
    let folded = std::fs::read_to_string(&folded).unwrap();
    assert!(
        folded.lines().any(|l| l.contains(";format_log_line (")
            && l.contains(&format!(
                "kvstore.cpp:{}, inlined);malloc",
                line_of(&source, "malloc(64 + answer.size())")
            ))),
        "{folded}"
    );
}

/// Debian's perl (no debug info): the sites are perl's functions that call its allocator
/// wrappers (`Perl_safesysmalloc`), never the wrappers; `Perl_av_make` makes one array per
/// `[…]` of the script's loop.
fn perl_s_sites_are_its_own_functions(backend: Backend) {
    if !Path::new("/usr/bin/perl").exists() && !allocflame_tests::skip("/usr/bin/perl") {
        return;
    }
    let dir = TempDir::new("sites-perl");
    let _turn = backend.turn();
    let json = dir.path().join("s.json");
    let script = "my %h; for my $i (1..20000) { $h{\"k$i\"} = [$i, 'v' x ($i % 50)]; }";
    let out = succeed(
        Command::new(bin())
            .args(["record", "--backend", backend.name(), "--top", "20"])
            .arg("--json")
            .arg(&json)
            .args(["-o", "/dev/null", "--", "/usr/bin/perl", "-e", script]),
    );
    let table = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(summary["lost"], 0, "{table}");
    no_site_is_machinery(&summary);
    let av_make: u64 = sites(&summary)
        .iter()
        .filter(|s| s["function"] == "Perl_av_make")
        .map(|s| s["allocs"].as_u64().unwrap())
        .sum();
    assert_eq!(av_make, 20000, "{table}");
    assert!(
        sites(&summary)
            .iter()
            .any(|s| s["function"] == "Perl_sv_grow"),
        "{table}"
    );
    assert!(
        sites(&summary)[0]["calls"]
            .as_str()
            .unwrap()
            .starts_with("Perl_safesys"),
        "{table}"
    );
}

/// Renders `capture` with `args`; the JSON summary and the folded stacks as written.
fn render(capture: &Path, args: &[&str]) -> (Value, String) {
    let dir = TempDir::new("sites-render");
    let folded = dir.path().join("out.folded");
    let out = succeed(
        Command::new(bin())
            .arg("render")
            .arg(capture)
            .args(["--json", "-", "-o", "/dev/null", "--folded"])
            .arg(&folded)
            .args(args),
    );
    (
        serde_json::from_slice(&out.stdout).expect("JSON on stdout"),
        std::fs::read_to_string(&folded).unwrap(),
    )
}

/// The shipped C++ capture (the guide's perf recipe on kvstore.cpp): the sites are exactly
/// the functions of kvstore.cpp that hold an allocating statement.
#[test]
fn the_kvstore_capture_s_sites_are_its_allocating_functions() {
    let (summary, _) = render(
        &repo().join("examples/captures/kvstore.perf.txt.gz"),
        &["--top", "10"],
    );
    let found: std::collections::BTreeSet<&str> = sites(&summary)
        .iter()
        .map(|s| s["function"].as_str().unwrap())
        .collect();
    // format_log_line and scratch_buffer are inlined into main, with no debug info to say so.
    let expected: std::collections::BTreeSet<&str> = [
        "split_words",
        "parse_request",
        "Store::handle[abi:cxx11]",
        "main",
    ]
    .into();
    assert_eq!(found, expected, "{summary:#}");
    assert_eq!(summary["shared_frames"], serde_json::json!([]));
}

/// The shipped Swift capture: no site is machinery (the Swift runtime, OpenSSL's and glibc's
/// relays), and each site is, in some stack of the capture, the frame right above what it
/// calls; the program's functions leave out entry points and unnamed frames.
#[test]
fn the_swift_capture_s_sites_call_the_allocator() {
    let (summary, folded) = render(
        &repo().join("examples/captures/swift-http.folded.gz"),
        &["--top", "25"],
    );
    no_site_is_machinery(&summary);
    assert_eq!(sites(&summary).len(), 25);
    for s in sites(&summary) {
        let pair = format!(
            ";{};{}",
            s["function"].as_str().unwrap(),
            s["calls"].as_str().unwrap()
        );
        assert!(folded.contains(&pair), "{pair} in no stack");
    }
    for f in summary["top_program"].as_array().unwrap() {
        let f = f["function"].as_str().unwrap();
        assert!(
            !f.contains("+0x") && !f.starts_with("__libc_start") && f != "_start",
            "{f} is no program function"
        );
    }
}

/// Finds a headless Chromium, or says the test is skipped (a failure under CI=true).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        allocflame_tests::skip("chromium (apt-get install chromium)");
    }
    found
}

/// Loads `page` with `query` in headless Chromium and returns the DOM after its scripts ran.
fn browse(browser: &str, page: &Path, query: &str) -> String {
    let profile = TempDir::new("chromium-profile");
    let url = format!("file://{}?{query}", page.canonicalize().unwrap().display());
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // Timers (the page waits for the graph's script) run within this budget of
            // virtual time, however slow the machine.
            "--virtual-time-budget=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{browser}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the report's search wrote into `#result`.
fn result(dom: &str) -> &str {
    let start = dom.find("<output id=\"result\">").expect("#result") + 20;
    let end = start + dom[start..].find("</output>").unwrap();
    &dom[start..end]
}

/// `record -o report.html` of a program with known counts, opened in headless Chromium:
/// searching `level2` highlights its share of the graph (2,000 of the run's allocations, from
/// the program's loop) and finds its row in the site table; a column sorts.
#[test]
fn the_html_report_searches_and_sorts_in_a_browser() {
    let Some(browser) = chromium() else { return };
    if !Backend::Preload.available() {
        return;
    }
    let dir = TempDir::new("sites-html");
    let prog = build_c(&dir, "alloc_counts.c");
    let _turn = Backend::Preload.turn();
    let page = dir.path().join("report.html");
    let json = dir.path().join("s.json");
    succeed(
        Command::new(bin())
            .args(["record", "-o"])
            .arg(&page)
            .arg("--json")
            .arg(&json)
            .arg("--")
            .arg(&prog)
            .arg("2000"),
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let total = summary["allocations"].as_u64().unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    // Namespaces and comments name URLs; nothing is fetched from one.
    for fetch in [
        "src=\"http",
        "href=\"http",
        "src=&quot;http",
        "href=&quot;http",
        "<link",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(fetch), "self-contained: {fetch}");
    }
    let rows = |list: &str| summary[list].as_array().unwrap().len();
    let dom = browse(browser, &page, "s=level2");
    let share = 100.0 * 2000.0 / total as f64;
    assert_eq!(
        result(&dom),
        format!(
            "graph: Matched: {share:.1}% · sites: 1 of {} rows · program: 1 of {} rows",
            rows("top_sites"),
            rows("top_program")
        ),
        "{summary:#}"
    );
    // Sorted by site name, descending (a first click): make_zeroed before level2.
    let dom = browse(browser, &page, "sort=sites.site");
    let sites_table = &dom[dom.find("<table id=\"sites\"").unwrap()..];
    let (z, l) = (
        sites_table.find("make_zeroed").unwrap(),
        sites_table.find("level2").unwrap(),
    );
    assert!(z < l, "sorted by site: {sites_table}");
}

/// `diff -o d.html`: the differential graph and the changed stacks, searched in a browser.
#[test]
fn the_html_diff_report_searches_in_a_browser() {
    let Some(browser) = chromium() else { return };
    let dir = TempDir::new("sites-diff");
    std::fs::write(
        dir.path().join("a.folded"),
        "p;main;parse;malloc 6\np;main;load;malloc 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.folded"),
        "p;main;parse;malloc 2\np;main;load;malloc 6\n",
    )
    .unwrap();
    let page = dir.path().join("d.html");
    succeed(
        Command::new(bin())
            .current_dir(dir.path())
            .args(["diff", "a.folded", "b.folded", "-o"])
            .arg(&page),
    );
    let dom = browse(browser, &page, "s=load");
    assert_eq!(result(&dom), "graph: Matched: 75.0% · changes: 1 of 2 rows");
}

/// The graph says what it shows: the command line, the totals, "exact", the backend and the
/// date; --inverted turns it into the icicle of sites.
#[test]
fn the_graph_says_what_it_shows() {
    if !Backend::Preload.available() {
        return;
    }
    let dir = TempDir::new("sites-subtitle");
    let prog = build_c(&dir, "alloc_counts.c");
    let _turn = Backend::Preload.turn();
    let svg = dir.path().join("g.svg");
    let json = dir.path().join("s.json");
    succeed(
        Command::new(bin())
            .args(["record", "--inverted", "-o"])
            .arg(&svg)
            .arg("--json")
            .arg(&json)
            .arg("--")
            .arg(&prog)
            .args(["400", "with space"]),
    );
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let svg = std::fs::read_to_string(&svg)
        .unwrap()
        .replace("&apos;", "'");
    let year = allocflame_core::report::utc_minute(std::time::SystemTime::now());
    let want = format!(
        "{} 400 'with space' · backend preload · {} allocations, ",
        prog.display(),
        summary["allocations"]
    );
    assert!(svg.contains(&want), "{want} in the subtitle");
    assert!(svg.contains(" · exact · "), "exact");
    assert!(svg.contains(&year[..4]), "the date");
    // The icicle: each stack starts at its site, so `level2` is a root box and `level1` hangs
    // below it; `malloc` is left out.
    let y = |frame: &str| -> f64 {
        let at = svg.find(&format!("<title>{frame} (")).expect(frame);
        let rect = &svg[at + svg[at..].find("<rect").unwrap()..];
        let y = &rect[rect.find(" y=\"").unwrap() + 4..];
        y[..y.find('"').unwrap()].parse().unwrap()
    };
    assert!(y("level2") < y("level1"), "sites at the top, callers below");
    assert!(
        !svg.contains("<title>malloc ("),
        "the allocator is left out"
    );
}
