//! `allocflame check` end to end on real programs whose allocations their own loops fix:
//! `alloc_counts N` makes N mallocs in `main;level1;level2`, N/4 callocs of 4 × 8 bytes in
//! `make_zeroed` and N/10 posix_memaligns of 100 bytes in `make_aligned`; `requests N K T fork`
//! calls `handle_request` N × (1 + T + 1) times, with exactly K allocations of 32 bytes in
//! each call and 7 outside any.

mod record_util;

use std::path::Path;
use std::process::{Command, Output};

use record_util::*;

fn check(dir: &Path, args: &[&str], program: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .arg("check")
        .args(args)
        .arg("--")
        .args(program)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The check of `json` that comes from `origin` and limits `quantity`.
fn find<'a>(json: &'a serde_json::Value, origin: &str, quantity: &str) -> &'a serde_json::Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["origin"] == origin && c["quantity"] == quantity)
        .unwrap_or_else(|| panic!("no check {origin} {quantity} in {json}"))
}

const N: u64 = 2000;

#[test]
fn within_budget_exits_0_and_patterns_match_frames() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("check-within");
    let prog = build_c(&dir, "alloc_counts.c");
    let budget = dir.join("budget");
    // Each limit exactly at what the program's loops make: "at most" holds.
    std::fs::write(
        &budget,
        format!(
            "# the program's own loops\nlevel2 {N} {}\n\nmake_* {} # both helpers\n\"main\" - {}\n",
            16 * N,
            N / 4 + N / 10,
            16 * N + 32 * (N / 4) + 100 * (N / 10)
        ),
    )
    .unwrap();
    let verdict = dir.join("verdict.json");
    let folded = dir.join("out.folded");
    let out = check(
        dir.path(),
        &[
            "--budget",
            budget.to_str().unwrap(),
            "--json",
            verdict.to_str().unwrap(),
            "--folded",
            folded.to_str().unwrap(),
        ],
        &[prog.to_str().unwrap(), &N.to_string()],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("PASS"), "{err}");
    let v = json(&verdict);
    assert_eq!(v["passed"], true, "{v}");
    assert_eq!(v["outcome"], "pass", "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    let level2 = find(&v, &format!("{}:2", budget.display()), "allocations");
    assert_eq!(level2["measured"], N, "{v}");
    assert_eq!(level2["state"], "within", "{v}");
    assert_eq!(
        find(&v, &format!("{}:2", budget.display()), "bytes")["measured"],
        16 * N
    );
    assert_eq!(
        find(&v, &format!("{}:4", budget.display()), "allocations")["measured"],
        N / 4 + N / 10,
        "`make_*` matches make_zeroed and make_aligned: {v}"
    );
    assert_eq!(
        find(&v, &format!("{}:5", budget.display()), "bytes")["measured"],
        16 * N + 32 * (N / 4) + 100 * (N / 10),
        "{v}"
    );
    // What was collected is written too.
    let f = std::fs::read_to_string(&folded).unwrap();
    assert!(
        f.lines()
            .any(|l| l.ends_with(&format!("main;level1;level2;malloc {N}"))),
        "{f}"
    );
}

#[test]
fn over_budget_exits_1_with_the_broken_limit_and_its_top_stacks() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("check-over");
    let prog = build_c(&dir, "alloc_counts.c");
    std::fs::write(
        dir.join("b"),
        format!("level1 {}\nmake_zeroed 100000\n", N - 1),
    )
    .unwrap();
    let out = check(
        dir.path(),
        &["--budget", "b", "--json", "v.json"],
        &[prog.to_str().unwrap(), &N.to_string()],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FAIL: 1 of 2 limits broken"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("OVER"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("b:1"), "the limit is named: {line}");
    assert!(
        line.contains(&format!("{N} > {}", N - 1)) && line.contains("excess 1"),
        "measured and excess: {line}"
    );
    assert!(
        err.lines()
            .any(|l| l.trim_start().starts_with(&N.to_string())
                && l.ends_with("main;level1;level2;malloc")),
        "the contributing stack with its count: {err}"
    );
    let v = json(&dir.join("v.json"));
    assert_eq!(v["outcome"], "fail");
    let c = find(&v, "b:1", "allocations");
    assert_eq!(
        (c["state"].as_str(), c["excess"].as_u64()),
        (Some("over"), Some(1))
    );
    assert!(c["top_stacks"][0]["stack"]
        .as_str()
        .unwrap()
        .ends_with("main;level1;level2;malloc"));
    assert_eq!(c["top_stacks"][0]["allocs"], N);
    assert_eq!(find(&v, "b:2", "allocations")["state"], "within");

    // The whole run's limits from the options.
    let total = N + N / 4 + N / 10;
    let out = check(
        dir.path(),
        &["--max-allocs", &(total - 1).to_string(), "--json", "-"],
        &[prog.to_str().unwrap(), &N.to_string()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = find(&v, "--max-allocs", "allocations");
    assert_eq!(
        (c["measured"].as_u64(), c["excess"].as_u64()),
        (Some(total), Some(1))
    );
}

#[test]
fn top_stacks_follow_the_weight() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("check-weight");
    let prog = build_c(&dir, "alloc_counts.c");
    let second = |weight: &str| -> String {
        let out = check(
            dir.path(),
            &["--max-allocs", "1", "--weight", weight, "--json", "-"],
            &[prog.to_str().unwrap(), &N.to_string()],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["weight"], weight);
        let stacks = &find(&v, "--max-allocs", "allocations")["top_stacks"];
        assert!(stacks[0]["stack"]
            .as_str()
            .unwrap()
            .ends_with("level2;malloc"));
        stacks[1]["stack"].as_str().unwrap().to_owned()
    };
    // By calls, N/4 callocs come before N/10 posix_memaligns; by bytes (8N and 10N) after.
    assert!(
        second("allocations").ends_with("make_zeroed;calloc"),
        "{}",
        second("allocations")
    );
    assert!(
        second("bytes").ends_with("make_aligned;posix_memalign"),
        "{}",
        second("bytes")
    );
}

#[test]
fn a_bad_budget_line_is_an_error_at_file_line_before_anything_runs() {
    let dir = TempDir::new("check-bad");
    std::fs::write(dir.join("b"), "# ok\n* 10\nhandle_request twelve\n").unwrap();
    let ran = dir.join("ran");
    let out = check(
        dir.path(),
        &["--budget", "b"],
        &["sh", "-c", &format!("touch {}", ran.display())],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("b:3: "), "{err}");
    assert!(err.contains("MAX-ALLOCS"), "says what was expected: {err}");
    assert!(!ran.exists(), "the program ran");
    // A per-call line without --per, and no limit at all: errors too, before running.
    std::fs::write(dir.join("p"), "* 3 - per-call\n").unwrap();
    let out = check(dir.path(), &["--budget", "p"], &["true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("p:1: a per-call limit needs --per"));
    let out = check(dir.path(), &[], &["true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no limit to check"));
    let out = check(dir.path(), &["--max-allocs-per", "3"], &["true"]);
    assert_eq!(out.status.code(), Some(2), "needs --per");
    let out = check(dir.path(), &["--max-bytes", "1.5M"], &["true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn a_missing_program_or_a_failed_run_is_status_2() {
    let dir = TempDir::new("check-missing");
    let out = check(
        dir.path(),
        &["--max-allocs", "10"],
        &["./no-such-program-here"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-program-here"), "{err}");
    if !allocflame_tests::preload_available() {
        return;
    }
    let out = check(
        dir.path(),
        &["--max-allocs", "1000000"],
        &["sh", "-c", "exit 3"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exited with status 3"), "{err}");
    // Killed halfway: the counts are a lower bound, so "within" is not proven.
    let out = check(
        dir.path(),
        &["--max-allocs", "1000000", "--json", "v.json"],
        &["sh", "-c", "kill -9 $$"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("UNPROVEN"), "{err}");
    let v = json(&dir.join("v.json"));
    assert_eq!(v["outcome"], "unproven", "{v}");
    assert_eq!(v["partial"], true, "{v}");
    assert_eq!(v["run"]["signal_name"], "SIGKILL", "{v}");
}

#[test]
fn per_call_is_exact_across_threads_and_a_forked_child() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("check-per");
    let prog = build_c(&dir, "requests.c");
    let (n, k, threads) = (300u64, 5u64, 2u64);
    let calls = n * (1 + threads + 1);
    let program = [
        prog.to_str().unwrap(),
        &n.to_string(),
        &k.to_string(),
        &threads.to_string(),
        "fork",
    ];
    std::fs::write(
        dir.join("b"),
        format!(
            "# per request\n* {k} {} per-call\nparse_request 1 32 per-call\nhandle_request {}\n",
            32 * k,
            k * calls
        ),
    )
    .unwrap();
    let out = check(
        dir.path(),
        &[
            "--per",
            "handle_request",
            "--budget",
            "b",
            "--json",
            "v.json",
        ],
        &program,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("backend perf (auto:") && err.contains("--per handle_request"),
        "the reason for the perf backend: {err}"
    );
    let v = json(&dir.join("v.json"));
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["per"]["calls"], calls, "{v}");
    assert_eq!(v["per"]["allocs"], k * calls, "{v}");
    assert_eq!(v["per"]["bytes"], 32 * k * calls, "{v}");
    assert_eq!(v["per"]["allocs_per_call"], k as f64, "{v}");
    let c = find(&v, "b:2", "allocations");
    assert_eq!(c["measured_per_call"], k as f64, "{v}");
    assert_eq!(c["calls"], calls, "{v}");
    assert_eq!(find(&v, "b:3", "allocations")["measured_per_call"], 1.0);
    assert_eq!(find(&v, "b:3", "bytes")["measured_per_call"], 32.0);
    // The marker is no allocation: the whole run has the requests' and the setup's only
    // (and what thread creation allocates, outside any request).
    assert_eq!(find(&v, "b:4", "allocations")["measured"], k * calls, "{v}");
    assert!(
        !std::fs::read_to_string(dir.join("v.json"))
            .unwrap()
            .contains(";handle_request\""),
        "a stack ends in the marker: {v}"
    );

    // One allocation fewer per call is over budget, by one per call.
    let out = check(
        dir.path(),
        &[
            "--per",
            "handle_request",
            "--max-allocs-per",
            &(k - 1).to_string(),
            "--json",
            "over.json",
        ],
        &program,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{k} > {} per call", k - 1)) && err.contains("excess 1 per call"),
        "{err}"
    );
    let v = json(&dir.join("over.json"));
    let c = find(&v, "--max-allocs-per", "allocations");
    assert_eq!(c["excess"], calls, "{v}");
    assert_eq!(c["excess_per_call"], 1.0, "{v}");

    // LIB:FUNC, with the executable's name as LIB.
    let out = check(
        dir.path(),
        &[
            "--per",
            "requests:handle_request",
            "--max-allocs-per",
            &k.to_string(),
            "--json",
            "-",
        ],
        &[prog.to_str().unwrap(), &n.to_string(), &k.to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["per"]["calls"], n, "{v}");
    assert_eq!(v["per"]["allocs"], n * k, "{v}");
}

#[test]
fn both_backends_measure_the_same_budget() {
    if !allocflame_tests::preload_available() || !uprobes_available() {
        return;
    }
    let dir = TempDir::new("check-backends");
    let prog = build_c(&dir, "alloc_counts.c");
    std::fs::write(
        dir.join("b"),
        format!("level2 {N} {}\nmake_* {}\n", 16 * N, N / 4 + N / 10),
    )
    .unwrap();
    let measured = |backend: &str| -> Vec<(String, u64)> {
        let out = check(
            dir.path(),
            &["--backend", backend, "--budget", "b", "--json", "-"],
            &[prog.to_str().unwrap(), &N.to_string()],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains(&format!("backend {backend} (--backend)")),
            "{err}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["backend"], backend, "{v}");
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    format!("{} {}", c["origin"], c["quantity"]),
                    c["measured"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let expected = vec![
        ("\"b:1\" \"allocations\"".to_owned(), N),
        ("\"b:1\" \"bytes\"".to_owned(), 16 * N),
        ("\"b:2\" \"allocations\"".to_owned(), N / 4 + N / 10),
    ];
    assert_eq!(measured("perf"), expected);
    assert_eq!(measured("preload"), expected);
}

#[test]
fn per_call_of_a_cpp_method_by_its_symbol_matches_its_demangled_frame() {
    if !uprobes_available() || !allocflame_tests::tool_available("g++", "apt-get install g++") {
        return;
    }
    let dir = TempDir::new("check-cpp");
    let prog = build_c(&dir, "handler.cpp");
    let (n, k) = (200u64, 4u64);
    let program = [prog.to_str().unwrap(), &n.to_string(), &k.to_string()];
    // The Itanium ABI's name of Server::handle(int), as `nm` shows it.
    let out = check(
        dir.path(),
        &[
            "--per",
            "_ZN6Server6handleEi",
            "--max-allocs-per",
            &k.to_string(),
        ],
        &program,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "per call of _ZN6Server6handleEi: {n} calls; {} allocations and {} bytes inside them",
            n * k,
            n * (8 * k + 24 * (k - 1))
        )),
        "{err}"
    );
    // A demangled name is no symbol: the error says what to give.
    let out = check(
        dir.path(),
        &["--per", "Server::handle", "--max-allocs-per", "1"],
        &program,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nm PROGRAM"),
        "{}",
        text(&out.stderr)
    );
}
