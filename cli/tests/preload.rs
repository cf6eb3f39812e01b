//! The in-process backend, end to end through the CLI: what it counted survives every way a
//! program ends; the program sees the environment the user gave, its children are followed;
//! an exec into an image that cannot load the library (another root, another user) is handed
//! to the perf backend, and a program that cannot load it at all is recorded by perf, saying why.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod record_util;

use std::path::PathBuf;
use std::process::{Command, Output};

use record_util::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `allocflame record --folded FILE -o /dev/null ARGS…`: its output and the folded lines.
fn record(dir: &TempDir, args: &[&str]) -> (Output, Vec<(String, u64)>) {
    let folded = dir.path().join("out.folded");
    let _ = std::fs::remove_file(&folded);
    let out = Command::new(bin())
        .arg("record")
        .arg("--folded")
        .arg(&folded)
        .args(["-o", "/dev/null"])
        .args(args)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&folded).unwrap_or_default();
    let lines = text
        .lines()
        .filter_map(|l| {
            let (stack, n) = l.rsplit_once(' ')?;
            Some((stack.to_owned(), n.parse().ok()?))
        })
        .collect();
    (out, lines)
}

fn count(lines: &[(String, u64)], f: impl Fn(&str) -> bool) -> u64 {
    lines.iter().filter(|(l, _)| f(l)).map(|(_, n)| n).sum()
}

#[test]
fn what_was_counted_survives_every_ending() {
    let dir = TempDir::new("preload-endings");
    let prog = build_c(&dir, "endings.c");
    let p = prog.to_str().unwrap();
    for (how, status) in [
        ("return", 0),
        ("_exit", 3),
        ("abort", 128 + 6),
        ("kill", 128 + 9),
        ("exec", 0),
    ] {
        let mut args = vec!["--", p, how, "4000"];
        if how == "exec" {
            args.extend([p, "return", "1500"]);
        }
        let (out, lines) = record(&dir, &args);
        let err = stderr(&out);
        assert!(err.contains("backend preload (auto"), "{how}: {err}");
        assert_eq!(out.status.code(), Some(status), "{how}: {err}");
        let work = |l: &str| l.starts_with("endings;") && l.ends_with(";main;work;malloc");
        // The exec'd image is its own process image, rooted at the same name.
        let expected = if how == "exec" { 5500 } else { 4000 };
        assert_eq!(count(&lines, work), expected, "{how}: {lines:?}\n{err}");
    }
}

/// `env`'s output under allocflame and without it.
fn environments(dir: &TempDir, command: &[&str]) -> (String, String) {
    let bare = Command::new(command[0])
        .args(&command[1..])
        .env("LD_PRELOAD", "")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    let mut args = vec!["--"];
    args.extend_from_slice(command);
    let (out, _) = record(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("backend preload"), "{}", stderr(&out));
    (
        String::from_utf8_lossy(&bare.stdout).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_program_and_its_children_see_the_environment_the_user_gave() {
    let dir = TempDir::new("preload-env");
    // The program itself, and a child of a shell (followed: it loads the library too).
    for command in [&["env"][..], &["sh", "-c", "env; exec env"][..]] {
        let (bare, recorded) = environments(&dir, command);
        assert_eq!(recorded, bare, "{command:?}");
        // allocflame's own variables are not there (the user's ALLOCFLAME_* are theirs).
        for var in [
            "ALLOCFLAME_SHM=",
            "ALLOCFLAME_USER_LD_PRELOAD=",
            "LD_PRELOAD=",
        ] {
            assert!(!recorded.lines().any(|l| l.starts_with(var)), "{recorded}");
        }
    }
}

#[test]
fn a_shell_running_programs_is_followed_into_each() {
    let dir = TempDir::new("preload-shell");
    let prog = build_c(&dir, "endings.c");
    let script = format!(
        "{p} return 1000; {p} return 2000 & wait; ( {p} return 300 ); x=$({p} return 40)",
        p = prog.display()
    );
    let (out, lines) = record(&dir, &["--", "sh", "-c", &script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let work = count(&lines, |l| {
        l.starts_with("endings;") && l.ends_with(";main;work;malloc")
    });
    assert_eq!(work, 3340, "{lines:?}");
}

/// The Debian trixie root `.ci/other-root` makes (`ALLOCFLAME_OTHER_ROOT` names another).
fn other_root() -> Option<PathBuf> {
    let root = std::env::var_os("ALLOCFLAME_OTHER_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/allocflame/trixie".into());
    if root.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists() {
        return Some(root);
    }
    allocflame_tests::skip(&format!(
        "another distribution's root at {} (make it with `sudo .ci/other-root`)",
        root.display()
    ));
    None
}

#[test]
fn an_exec_into_another_root_is_handed_to_the_perf_backend() {
    if !uprobes_available() {
        return;
    }
    let Some(root) = other_root() else {
        return;
    };
    let _one = exclusive();
    let dir = TempDir::new("preload-chroot");
    let prog = build_c(&dir, "endings.c");
    let inside = PathBuf::from(format!("/tmp/allocflame-preload-{}", std::process::id()));
    let outside = root.join(inside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(&prog, outside.join("endings")).unwrap();
    let in_root = inside.join("endings");
    let (out, lines) = record(
        &dir,
        &[
            "--",
            "chroot",
            root.to_str().unwrap(),
            in_root.to_str().unwrap(),
            "_exit",
            "2500",
        ],
    );
    let _ = std::fs::remove_dir_all(&outside);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("backend preload (auto"), "{err}");
    assert!(err.contains("the perf backend recorded it"), "{err}");
    // The loader in the root was never asked to load a library it cannot find.
    assert!(!err.contains("cannot be preloaded"), "{err}");
    let work = count(&lines, |l| {
        l.starts_with("endings;") && l.ends_with(";main;work;malloc")
    });
    assert_eq!(work, 2500, "{lines:?}\n{err}");
    // chroot itself was recorded in process.
    assert!(
        lines.iter().any(|(l, _)| l.starts_with("chroot;")),
        "{lines:?}"
    );
}

#[test]
fn a_change_of_user_is_handed_to_the_perf_backend() {
    if !uprobes_available() {
        return;
    }
    let _one = exclusive();
    let dir = TempDir::new("preload-setpriv");
    let prog = build_c(&dir, "endings.c");
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    let (out, lines) = record(
        &dir,
        &[
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            prog.to_str().unwrap(),
            "return",
            "1800",
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("runs as uid 65534"), "{err}");
    let work = count(&lines, |l| {
        l.starts_with("endings;") && l.ends_with(";main;work;malloc")
    });
    assert_eq!(work, 1800, "{lines:?}\n{err}");
}

fn build_static(dir: &TempDir) -> Option<PathBuf> {
    let out = dir.path().join("endings-static");
    let ok = Command::new("gcc")
        .args([
            "-O1",
            "-g",
            "-fno-omit-frame-pointer",
            "-fno-inline",
            "-static",
            "-o",
        ])
        .arg(&out)
        .arg(programs_dir().join("endings.c"))
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(out)
}

#[test]
fn a_static_program_is_recorded_by_perf_and_auto_says_why() {
    if !uprobes_available() {
        return;
    }
    let dir = TempDir::new("preload-static");
    let Some(prog) = build_static(&dir) else {
        allocflame_tests::skip("gcc -static (glibc's libc.a, Debian's libc6-dev)");
        return;
    };
    let (out, lines) = record(&dir, &["--", prog.to_str().unwrap(), "return", "1200"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("backend perf (auto"), "{err}");
    assert!(err.contains("statically linked"), "{err}");
    let work = count(&lines, |l| l.ends_with(";main;work;malloc"));
    assert_eq!(work, 1200, "{lines:?}\n{err}");
    // Asked for explicitly, the in-process backend says why it cannot.
    let (out, _) = record(
        &dir,
        &[
            "--backend",
            "preload",
            "--",
            prog.to_str().unwrap(),
            "return",
            "1",
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("statically linked"), "{err}");
}
