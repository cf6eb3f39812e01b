//! The allocator a program really uses, found without `--probe` (issue 10): a program in another
//! distribution's root (spawned through `chroot`, in its own mount namespace, and attached), a
//! dlopen'd allocator, a static glibc binary, musl-linked binaries (dynamic and static), and an
//! `LD_PRELOAD`ed jemalloc. Counts are those the programs make by construction, on their own
//! frames.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use allocflame_core::source::Target;
use allocflame_tests::*;

const N: u64 = 2000;

/// The Debian trixie root `.ci/other-root` makes (`ALLOCFLAME_OTHER_ROOT` names another).
fn other_root() -> Option<PathBuf> {
    let root = std::env::var_os("ALLOCFLAME_OTHER_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/allocflame/trixie".into());
    if root.join(".complete").exists() || root.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists() {
        return Some(root);
    }
    skip(&format!(
        "another distribution's root at {} (make it with `sudo .ci/other-root`)",
        root.display()
    ));
    None
}

/// A directory inside `root` for this test's programs, removed afterwards.
struct RootDir {
    inside: PathBuf,
    outside: PathBuf,
}

impl RootDir {
    fn new(root: &Path, tag: &str) -> RootDir {
        let inside = PathBuf::from(format!("/tmp/allocflame-{tag}-{}", std::process::id()));
        let outside = root.join(inside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&outside).unwrap();
        RootDir { inside, outside }
    }

    /// Copies `prog` in; returns its path inside the root.
    fn put(&self, prog: &Path) -> PathBuf {
        let name = prog.file_name().unwrap();
        std::fs::copy(prog, self.outside.join(name)).unwrap();
        self.inside.join(name)
    }
}

impl Drop for RootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outside);
    }
}

fn compile(cmd: &mut Command) {
    let status = cmd.status().expect("run the compiler");
    assert!(status.success(), "{cmd:?} failed");
}

/// The stacks of `alloc_counts N` on its own frames.
fn assert_alloc_counts(run: &Run, n: u64) {
    let dump = run.dump();
    assert_eq!(run.report.lost, 0, "{dump}");
    assert_eq!(run.count_ending("main;level1;level2;malloc"), n, "{dump}");
    assert_eq!(run.count_ending("main;make_zeroed;calloc"), n / 4, "{dump}");
    assert_eq!(
        run.count_ending("main;make_aligned;posix_memalign"),
        n / 10,
        "{dump}"
    );
    assert_eq!(
        run.count_ending("main;grow_from_null;realloc"),
        n / 10,
        "{dump}"
    );
}

fn noted(run: &Run, part: &str) -> bool {
    run.report.notes.iter().any(|n| n.contains(part))
}

#[test]
fn a_program_in_another_root_is_recorded_when_spawned_through_chroot() {
    if !uprobes_available() {
        return;
    }
    let Some(root) = other_root() else { return };
    let dir = TempDir::new("chroot");
    let prog = build_c(&dir, "alloc_counts.c");
    let inside = RootDir::new(&root, "chroot");
    let prog = inside.put(&prog);
    let root_s = root.to_str().unwrap();
    let n = N.to_string();
    for argv in [
        vec!["chroot", root_s, prog.to_str().unwrap(), &n, "realloc"],
        // Its own mount namespace too: the root's files are reached through the process.
        vec![
            "unshare",
            "--mount",
            "chroot",
            root_s,
            prog.to_str().unwrap(),
            &n,
            "realloc",
        ],
    ] {
        let run = record_perf(&argv).unwrap();
        assert_eq!(run.report.exit_code, Some(0), "{argv:?}: {:?}", run.report);
        assert_alloc_counts(&run, N);
        // The root's libc, named as the recorder sees it, and symbols read from the root's files.
        assert!(
            noted(
                &run,
                &format!("{root_s}/usr/lib/x86_64-linux-gnu/libc.so.6")
            ),
            "{:?}",
            run.report.notes
        );
        assert!(
            !run.lines.iter().any(|(l, _)| l.contains("alloc_counts+0x")),
            "{}",
            run.dump()
        );
    }
}

#[test]
fn a_program_in_its_own_mount_namespace_and_root_is_recorded_when_attached() {
    if !uprobes_available() {
        return;
    }
    let Some(root) = other_root() else { return };
    let _one = exclusive();
    let dir = TempDir::new("ns-attach");
    let prog = build_c(&dir, "wait_loop.c");
    let inside = RootDir::new(&root, "ns-attach");
    let prog = inside.put(&prog);
    let mut child = Command::new("unshare")
        .args(["--mount", "chroot"])
        .arg(&root)
        .arg(&prog)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid: u32 = line.trim().parse().unwrap();
    let target = Target::Attach {
        pid,
        duration: Some(std::time::Duration::from_millis(500)),
    };
    let run = record_with(&target, Default::default());
    let _ = child.kill();
    let _ = child.wait();
    let run = run.unwrap();
    let dump = run.dump();
    // tick() makes 10 mallocs per round: whole rounds, named from the root's files.
    let ticks = run.count_ending("main;tick;malloc");
    assert!(ticks >= 10, "{dump}");
    assert_eq!(run.report.lost, 0, "{dump}");
    assert!(!dump.contains("wait_loop+0x"), "{dump}");
}

#[test]
fn an_allocator_loaded_with_dlopen_is_probed_before_it_runs() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("dlopen");
    let prog = build_c(&dir, "dlopen_alloc.c");
    let lib = dir.join("libplugin_alloc.so");
    compile(
        Command::new("gcc")
            .args(["-O1", "-g", "-shared", "-fPIC", "-o"])
            .arg(&lib)
            .arg(programs_dir().join("plugin_alloc.c")),
    );
    let run = record_perf(&[
        prog.to_str().unwrap(),
        lib.to_str().unwrap(),
        &N.to_string(),
    ])
    .unwrap();
    let dump = run.dump();
    assert_eq!(run.report.exit_code, Some(0), "{:?}", run.report);
    assert_eq!(run.report.lost, 0, "{dump}");
    assert_eq!(run.count_ending("main;plugin_small;malloc"), N, "{dump}");
    assert_eq!(
        run.count_ending("main;plugin_zeroed;calloc"),
        N / 4,
        "{dump}"
    );
    assert!(noted(&run, "libplugin_alloc.so"), "{:?}", run.report.notes);
}

#[test]
fn a_static_glibc_binary_is_recorded_without_probe_options() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("static");
    let prog = dir.join("alloc_counts_static");
    compile(
        Command::new("gcc")
            .args(["-O1", "-g", "-fno-omit-frame-pointer", "-static", "-o"])
            .arg(&prog)
            .arg(programs_dir().join("alloc_counts.c")),
    );
    let run = record_perf(&[prog.to_str().unwrap(), &N.to_string(), "realloc"]).unwrap();
    assert_alloc_counts(&run, N);
    assert!(noted(&run, "alloc_counts_static"), "{:?}", run.report.notes);
}

#[test]
fn musl_binaries_dynamic_and_static_are_recorded_without_probe_options() {
    if !uprobes_available() || !tool_available("musl-gcc", "Debian's musl-tools") {
        return;
    }
    let dir = TempDir::new("musl");
    for (name, extra) in [("ac_musl", None), ("ac_musl_static", Some("-static"))] {
        let prog = dir.join(name);
        compile(
            Command::new("musl-gcc")
                .args(["-O1", "-g", "-fno-omit-frame-pointer"])
                .args(extra)
                .arg("-o")
                .arg(&prog)
                .arg(programs_dir().join("alloc_counts.c")),
        );
        let run = record_perf(&[prog.to_str().unwrap(), &N.to_string()]).unwrap();
        let dump = run.dump();
        assert_eq!(run.report.exit_code, Some(0), "{name}: {:?}", run.report);
        assert_eq!(run.report.lost, 0, "{name}: {dump}");
        assert_eq!(
            run.count_ending("main;level1;level2;malloc"),
            N,
            "{name}: {dump}"
        );
        assert_eq!(
            run.count_ending("main;make_zeroed;calloc"),
            N / 4,
            "{name}: {dump}"
        );
        assert_eq!(
            run.count_ending("main;make_aligned;posix_memalign"),
            N / 10,
            "{name}: {dump}"
        );
    }
}

#[test]
fn a_preloaded_jemalloc_is_recorded_without_probe_options() {
    if !uprobes_available() {
        return;
    }
    let jemalloc = Path::new("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
    if !jemalloc.exists() {
        skip("jemalloc (Debian's libjemalloc2)");
        return;
    }
    let dir = TempDir::new("jemalloc");
    let prog = build_c(&dir, "alloc_counts.c");
    let preload = format!("LD_PRELOAD={}", jemalloc.display());
    let run = record_perf(&[
        "env",
        &preload,
        prog.to_str().unwrap(),
        &N.to_string(),
        "realloc",
    ])
    .unwrap();
    assert_alloc_counts(&run, N);
    assert!(noted(&run, "libjemalloc.so.2"), "{:?}", run.report.notes);
}

/// The test programs' own sources, as input for real programs.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn debian_git_perl_python3_and_cc1_record_with_complete_stacks() {
    if !uprobes_available() {
        return;
    }
    let cc1 = Command::new("gcc")
        .arg("-print-prog-name=cc1")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let root = repo_root();
    let json = "import json\nd = {'k%d' % i: [i, str(i), {'x': i * 1.5}] for i in range(2000)}\nprint(len(json.loads(json.dumps(d))))";
    let perl = "my %h; for my $i (1..20000) { $h{\"k$i\"} = [$i, 'v' x ($i % 50)]; } print scalar(keys %h), \"\\n\";";
    let source = programs_dir().join("threads_fork_exec.c");
    let programs: Vec<Vec<String>> = vec![
        vec![
            "/usr/bin/git".into(),
            "-C".into(),
            root.display().to_string(),
            "log".into(),
            "--stat".into(),
            "-n".into(),
            "100".into(),
        ],
        vec!["/usr/bin/perl".into(), "-e".into(), perl.into()],
        vec!["/usr/bin/python3".into(), "-c".into(), json.into()],
        vec![
            cc1,
            "-quiet".into(),
            // What the gcc driver passes on Debian.
            "-imultiarch".into(),
            "x86_64-linux-gnu".into(),
            "-O2".into(),
            source.display().to_string(),
            "-o".into(),
            "/dev/null".into(),
        ],
    ];
    for argv in programs {
        if !Path::new(&argv[0]).exists() {
            skip(&format!("{} (Debian's package)", argv[0]));
            continue;
        }
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let run = record_perf(&args).unwrap();
        let dump = run.dump();
        assert_eq!(
            run.report.exit_code,
            Some(0),
            "{}: {:?}",
            argv[0],
            run.report
        );
        let total: u64 = run.lines.iter().map(|(_, w)| w.allocs).sum();
        assert!(total > 1000, "{}: {dump}", argv[0]);
        let cut = run.count_containing("[stack truncated]");
        assert_eq!(cut, 0, "{}: {cut} of {total} stacks cut", argv[0]);
        assert!(
            !run.report.notes.iter().any(|n| n.contains("truncated")),
            "{}: {:?}",
            argv[0],
            run.report.notes
        );
    }
}

#[test]
fn a_rust_program_with_mimalloc_as_global_allocator_is_recorded_without_probe_options() {
    if !uprobes_available() || !tool_available("cargo", "the Rust toolchain") {
        return;
    }
    let dir = TempDir::new("mimalloc");
    // Built the way `cargo build --release` builds it; the mimalloc crate comes from crates.io.
    let manifest = programs_dir().join("rust_mimalloc/Cargo.toml");
    compile(
        Command::new("cargo")
            .args(["build", "-q", "--release", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(dir.path()),
    );
    let prog = dir.join("release/rust_mimalloc");
    let run = record_perf(&[prog.to_str().unwrap(), &N.to_string()]).unwrap();
    let dump = run.dump();
    assert_eq!(run.report.exit_code, Some(0), "{:?}", run.report);
    assert_eq!(run.report.lost, 0, "{dump}");
    // Box::new goes to mi_malloc_aligned, vec![0; n] to mi_zalloc_aligned: both count as malloc.
    // (The library's frames are not demangled: `_ZN13rust_mimalloc8make_box17h…E`.)
    let from = |function: &str| -> u64 {
        run.lines
            .iter()
            .filter(|(l, _)| l.ends_with(";malloc"))
            .filter(|(l, _)| l.rsplit(';').nth(1).is_some_and(|f| f.contains(function)))
            .map(|(_, w)| w.allocs)
            .sum()
    };
    assert_eq!(from("13rust_mimalloc8make_box"), N, "{dump}");
    assert_eq!(from("13rust_mimalloc11make_zeroed"), N / 4, "{dump}");
    assert!(
        noted(&run, "mi_malloc_aligned (as malloc)"),
        "{:?}",
        run.report.notes
    );
}
