//! `--weight bytes` end to end on a real program: `record`, then `render` and `diff` of its raw
//! captures, weigh each stack by the bytes it asked for and rank by them. `alloc_counts N`
//! asks for 16 N bytes in `level2` (N mallocs), 32 × N/4 = 8 N in `make_zeroed` (N/4 callocs)
//! and 100 × N/10 = 10 N in `make_aligned` (N/10 posix_memaligns): by calls `make_zeroed`
//! comes second, by bytes `make_aligned` does.

mod record_util;

use std::path::Path;
use std::process::Command;

use record_util::*;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn record_render_and_diff_weigh_and_rank_stacks_by_bytes() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("bytes");
    let prog = build_c(&dir, "alloc_counts.c");
    let record = |n: u64, name: &str| {
        succeed(
            Command::new(bin())
                .current_dir(dir.path())
                .args(["record", "--backend", "perf", "--weight", "bytes"])
                .args(["--save-raw", &format!("{name}.raw")])
                .args(["--folded", &format!("{name}.folded")])
                .args(["--json", &format!("{name}.json"), "-o"])
                .arg(format!("{name}.svg"))
                .arg("--")
                .arg(&prog)
                .arg(n.to_string()),
        );
    };
    let n = 1000u64;
    record(n, "a");
    record(3 * n, "b");

    // record: the folded stacks carry bytes, the summary ranks by them.
    let folded = std::fs::read_to_string(dir.join("a.folded")).unwrap();
    for (stack, bytes) in [
        ("main;level1;level2;malloc", 16 * n),
        ("main;make_zeroed;calloc", 8 * n),
        ("main;make_aligned;posix_memalign", 10 * n),
    ] {
        assert!(
            folded
                .lines()
                .any(|l| l.ends_with(&format!("{stack} {bytes}"))),
            "{stack} {bytes} in {folded}"
        );
    }
    let summary = json(&dir.join("a.json"));
    assert_eq!(summary["ranked_by"], "bytes", "{summary}");
    assert_eq!(summary["bytes"], 34 * n, "{summary}");
    let self_names: Vec<&str> = summary["top_self"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        &self_names[..3],
        ["malloc", "posix_memalign", "calloc"],
        "{summary}"
    );
    assert!(std::fs::read_to_string(dir.join("a.svg"))
        .unwrap()
        .contains("bytes"));

    // render of the raw capture: the same bytes per stack as record wrote.
    succeed(
        Command::new(bin())
            .current_dir(dir.path())
            .args([
                "render", "a.raw", "--weight", "bytes", "--folded", "r.folded",
            ])
            .args(["-o", "r.svg", "--json", "r.json"]),
    );
    assert_eq!(
        sorted_lines(&dir.join("r.folded")),
        sorted_lines(&dir.join("a.folded"))
    );
    assert_eq!(json(&dir.join("r.json"))["ranked_by"], "bytes");

    // diff: growth in bytes, ranked by bytes.
    succeed(
        Command::new(bin())
            .current_dir(dir.path())
            .args(["diff", "a.raw", "b.raw", "--weight", "bytes", "-o", "d.svg"])
            .args(["--json", "d.json"]),
    );
    let d = json(&dir.join("d.json"));
    assert_eq!(d["weight"], "bytes", "{d}");
    assert_eq!(
        (d["before_total"].as_u64(), d["after_total"].as_u64()),
        (Some(34 * n), Some(102 * n))
    );
    let grew = d["grew"].as_array().unwrap();
    assert!(
        grew[0]["stack"]
            .as_str()
            .unwrap()
            .ends_with("level1;level2;malloc"),
        "{d}"
    );
    assert_eq!(grew[0]["delta"], 32 * n, "{d}");
    assert!(
        grew[1]["stack"]
            .as_str()
            .unwrap()
            .ends_with("make_aligned;posix_memalign"),
        "{d}"
    );
    assert_eq!(grew[1]["delta"], 20 * n, "{d}");
    assert_eq!(grew[2]["delta"], 16 * n, "{d}");
}
