//! `record --save-raw FILE` keeps what the recording interpreted; `render FILE` interprets it
//! again, offline, to exactly the profile `record` printed (issue 9).

mod record_util;

use std::process::Command;

use record_util::*;

fn sorted_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn a_saved_raw_capture_renders_to_the_profile_record_printed() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("raw");
    let prog = build_c(&dir, "alloc_counts.c");
    let raw = dir.join("capture.raw");
    let live = dir.join("live.folded");
    let out = Command::new(bin())
        .args(["record", "--json", "-", "--save-raw"])
        .arg(&raw)
        .arg("--folded")
        .arg(&live)
        .arg("-o")
        .arg(dir.join("live.svg"))
        .arg("--")
        .arg(&prog)
        .args(["20000", "realloc"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let live_json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // stderr says which way an event was lost.
    assert_eq!(live_json["lost"], 0, "{live_json}\n{err}");

    let offline = dir.join("offline.folded");
    let out = Command::new(bin())
        .arg("render")
        .arg(&raw)
        .args(["--json", "-"])
        .arg("--folded")
        .arg(&offline)
        .arg("-o")
        .arg(dir.join("offline.svg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let offline_json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sorted_lines(&live), sorted_lines(&offline));
    assert_eq!(live_json, offline_json);
    let lines = sorted_lines(&offline);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("main;level1;level2;malloc 20000")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("main;grow_from_null;realloc 2000")),
        "{lines:?}"
    );

    // A capture cut short (a killed recorder) still renders what it holds, and says so.
    let bytes = std::fs::read(&raw).unwrap();
    let cut = dir.join("cut.raw");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = Command::new(bin())
        .arg("render")
        .arg(&cut)
        .arg("--folded")
        .arg(dir.join("cut.folded"))
        .arg("-o")
        .arg(dir.join("cut.svg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cut short"), "{err}");
    assert!(err.contains("partial"), "{err}");
}
