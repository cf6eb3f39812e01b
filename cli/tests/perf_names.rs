//! One name per function: `render` of a `perf script` capture of uprobe events names the leaf
//! after the probe (`probe_libc:calloc` → `calloc`), as `record` does, not after the glibc
//! alias perf picked (`__libc_calloc`, `__GI___libc_malloc`, `__posix_memalign`).

mod record_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use record_util::*;

/// Folded lines of `path` from `main` on (what is above it, `_start` and libc's start-up,
/// differs between the two ways of recording), summed.
fn from_main(path: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let (stack, n) = line.rsplit_once(' ').unwrap();
        if let Some(i) = stack.find(";main;") {
            *out.entry(stack[i + 1..].to_owned()).or_default() += n.parse::<u64>().unwrap();
        }
    }
    out
}

fn render_folded(capture: &Path, dir: &Path) -> PathBuf {
    let folded = dir.join("render.folded");
    succeed(
        Command::new(bin())
            .arg("render")
            .arg(capture)
            .arg("-o")
            .arg(dir.join("render.svg"))
            .arg("--folded")
            .arg(&folded),
    );
    folded
}

fn leaves(folded: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(folded)
        .unwrap()
        .lines()
        .map(|l| {
            let stack = l.rsplit_once(' ').unwrap().0;
            stack.rsplit(';').next().unwrap().to_owned()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn the_guides_capture_names_leaves_after_the_probes() {
    let dir = TempDir::new("names-kvstore");
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/captures/kvstore.perf.txt.gz");
    // perf printed `__GI___libc_malloc+0x0`, `__libc_calloc+0x0`, `__posix_memalign+0x0`.
    let folded = render_folded(&capture, dir.path());
    assert_eq!(leaves(&folded), ["calloc", "malloc", "posix_memalign"]);
}

#[test]
fn probe_groups_offsets_and_other_events() {
    let dir = TempDir::new("names-groups");
    let capture = dir.join("groups.perf.txt");
    std::fs::write(
        &capture,
        "\
app 1/1 [000] 1.0: uprobes:malloc: (7f00)
\t1000 __GI___libc_malloc+0x0 (/lib/libc.so.6)
\t2000 main+0x10 (/app)

app 1/1 [000] 1.1: probe_libc:calloc: (7f10)
\t1010 __libc_calloc (/lib/libc.so.6)
\t2000 main+0x10 (/app)

app 1/1 [000] 1.2: mygroup:posix_memalign: (7f20)
\t1020 __posix_memalign+0x0 (/lib/libc.so.6)
\t2000 main+0x10 (/app)

app 1/1 [000] 1.3: probe_app:helper_L5: (7f30)
\t3010 helper+0x10 (/app)
\t2000 main+0x10 (/app)

app 1/1 [000] 1.4: sdt_libc:memory_malloc_retry: (7f40)
\t1047 __libc_malloc+0x47 (/lib/libc.so.6)
\t2000 main+0x10 (/app)

app 1/1 [000] 1.5: cycles:u:
\t1050 __libc_malloc+0x12 (/lib/libc.so.6)
\t2000 main+0x10 (/app)
",
    )
    .unwrap();
    let folded = render_folded(&capture, dir.path());
    assert_eq!(
        std::fs::read_to_string(&folded).unwrap(),
        "app;main;__libc_malloc 2\n\
         app;main;calloc 1\n\
         app;main;helper 1\n\
         app;main;malloc 1\n\
         app;main;posix_memalign 1\n",
        "entry probes name their leaf (any group); a probe inside a function, a USDT probe \
         and other events keep perf's name"
    );
}

#[test]
fn render_of_a_perf_capture_names_frames_as_record_does() {
    if !uprobes_available() {
        return;
    }
    // `malloc-calloc-dwarf.txt` is the guide's DWARF recipe run on `allocs.c` (see the README
    // beside it); `record` the same program and compare the stacks from `main` on.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/perf");
    let dir = TempDir::new("names-record");
    let prog = dir.join("allocs");
    let status = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&prog)
        .arg(data.join("allocs.c"))
        .status()
        .expect("gcc is needed for the record tests (README-devel.md)");
    assert!(status.success());
    let recorded = dir.join("record.folded");
    succeed(
        Command::new(bin())
            .arg("record")
            .arg("-o")
            .arg(dir.join("record.svg"))
            .arg("--folded")
            .arg(&recorded)
            .arg("--")
            .arg(&prog),
    );
    let rendered = render_folded(&data.join("malloc-calloc-dwarf.txt"), dir.path());
    let expected: BTreeMap<String, u64> = [
        ("main;level1;alloc_a;malloc", 3),
        ("main;level2;alloc_b;calloc", 5),
        ("main;malloc", 2),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect();
    assert_eq!(from_main(&rendered), expected, "render");
    assert_eq!(from_main(&recorded), expected, "record");
}
