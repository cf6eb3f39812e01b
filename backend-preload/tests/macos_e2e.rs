//! End to end on macOS (the GitHub macOS job runs it with `cargo test --workspace --release`):
//! a C program built here with `cc`, with known counts along known stacks, recorded through
//! `DYLD_INSERT_LIBRARIES`; and a program System Integrity Protection covers, refused with the
//! reason. Needs Xcode's command line tools (cc); nothing else, no root.
#![cfg(target_os = "macos")]

use std::path::PathBuf;

use allocflame_backend_preload::PreloadSource;
use allocflame_core::source::{Collector, EventSource, RecordOptions, Target};

const PROGRAM: &str = r#"
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
__attribute__((noinline)) void level3(int n) {
    for (int i = 0; i < n; i++) free(calloc(4, 8));
}
__attribute__((noinline)) void level2(int n) {
    for (int i = 0; i < n; i++) free(malloc(24));
    level3(n / 10);
}
__attribute__((noinline)) void level1(int n) { level2(n); }
__attribute__((noinline)) void in_child(void) {
    for (int i = 0; i < 70; i++) free(malloc(8));
}
int main(void) {
    level1(1000);
    void *p = NULL;
    posix_memalign(&p, 64, 128);
    free(p);
    pid_t pid = fork();
    if (pid == 0) { in_child(); _exit(0); }
    int status;
    waitpid(pid, &status, 0);
    return 3;
}
"#;

fn build() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("allocflame-macos-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("levels.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = dir.join("levels");
    let out = std::process::Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-fno-inline", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("cc (Xcode's command line tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Allocations whose folded stack ends in `suffix` (any of the typed or plain leaves).
fn count(folded: &[(String, u64)], suffix: &[&str]) -> u64 {
    folded
        .iter()
        .filter(|(s, _)| suffix.iter().any(|x| s.ends_with(x)))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn counts_and_stacks_of_a_c_program_are_exact() {
    if allocflame_backend_preload::library().is_empty() {
        panic!("the macOS library was not built: see the build's warnings");
    }
    let exe = build();
    let options = RecordOptions::default();
    let mut sink = Collector::new(&options.probes);
    let report = PreloadSource::default()
        .record(&Target::spawn([&exe]), &options, &mut sink)
        .expect("recorded");
    assert_eq!(report.exit_code, Some(3), "{:?}", report.notes);
    let profile = sink.finish();
    let folded: Vec<(String, u64)> = profile
        .folded_lines()
        .into_iter()
        .map(|(stack, w)| (stack, w.allocs))
        .collect();
    let shown = folded
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        count(
            &folded,
            &[
                "main;level1;level2;malloc",
                "main;level1;level2;malloc_type_malloc"
            ]
        ),
        1000,
        "{shown}\nnotes: {:?}",
        report.notes
    );
    assert_eq!(
        count(
            &folded,
            &[
                "main;level1;level2;level3;calloc",
                "main;level1;level2;level3;malloc_type_calloc"
            ]
        ),
        100,
        "{shown}"
    );
    assert_eq!(
        count(
            &folded,
            &["main;posix_memalign", "main;malloc_type_posix_memalign"]
        ),
        1,
        "{shown}"
    );
    let child: u64 = folded
        .iter()
        .filter(|(s, _)| s.starts_with("levels [child];") && s.contains(";main;in_child;"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(child, 70, "{shown}");
}

#[test]
fn a_program_sip_covers_gets_the_reason_and_dtrace() {
    let options = RecordOptions::default();
    let why = allocflame_backend_preload::applies(&Target::spawn(["/usr/bin/true"]), &options)
        .unwrap_err();
    assert!(why.contains("System Integrity Protection"), "{why}");
    assert!(why.contains("--backend dtrace"), "{why}");
    let mut sink = Collector::new(&options.probes);
    let err = PreloadSource::default()
        .record(&Target::spawn(["/usr/bin/true"]), &options, &mut sink)
        .unwrap_err();
    assert!(err.to_string().contains("--backend dtrace"), "{err}");
}
