//! Output files are written the way a user expects (DESIGN, "The program under the profiler is
//! left untouched"): a regular file is replaced atomically and keeps its permissions; a device,
//! a symlink or a file with other hard links is written in place, never replaced; a write that
//! fails (`/dev/full`) is an error, never a success.

mod cli_util;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use cli_util::{allocflame, tempdir, text};

/// A character device like `/dev/NAME` (major 1, `minor`): our own node in `d` where we may
/// make one (root), so that a regression replaces that node and not the machine's; else the
/// machine's own, which a user who cannot make nodes cannot replace either.
fn device(d: &Path, name: &str, minor: u32) -> std::path::PathBuf {
    let node = d.join(name);
    let made = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "1", &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        node
    } else {
        Path::new("/dev").join(name)
    }
}

const FOLDED: &str = "prog;main;parse;malloc 7\nprog;main;load;calloc 3\n";

fn render_folded_to(d: &Path, out: &Path) -> std::process::Output {
    std::fs::write(d.join("cap.folded"), FOLDED).unwrap();
    allocflame(
        &[
            "render",
            "cap.folded",
            "-o",
            d.join("g.svg").to_str().unwrap(),
            "--folded",
            out.to_str().unwrap(),
        ],
        d,
    )
}

#[test]
fn a_device_stays_a_device() {
    let d = tempdir("outputs", "dev-null");
    let null = device(&d, "null", 3);
    let out = render_folded_to(&d, &null);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = std::fs::symlink_metadata(&null).unwrap();
    assert!(
        m.file_type().is_char_device(),
        "{} was replaced",
        null.display()
    );
}

#[test]
fn a_full_device_is_an_error() {
    let d = tempdir("outputs", "dev-full");
    let full = device(&d, "full", 7);
    let out = render_folded_to(&d, &full);
    assert!(
        !out.status.success(),
        "writing {} reported success",
        full.display()
    );
    assert!(
        text(&out.stderr).contains(&format!("cannot write {}", full.display())),
        "{}",
        text(&out.stderr)
    );
    assert!(std::fs::symlink_metadata(&full)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_symlink_is_followed_and_kept() {
    let d = tempdir("outputs", "symlink");
    let target = d.join("target.folded");
    std::fs::write(&target, "old\n").unwrap();
    let link = d.join("link.folded");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = render_folded_to(&d, &link);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 2);
}

#[test]
fn a_regular_file_is_replaced_and_keeps_its_mode() {
    let d = tempdir("outputs", "regular");
    let f = d.join("out.folded");
    std::fs::write(&f, "old\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = render_folded_to(&d, &f);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&f)
        .unwrap()
        .contains("parse;malloc 7"));
}

#[test]
fn a_hard_linked_file_is_written_in_place() {
    let d = tempdir("outputs", "hardlink");
    let a = d.join("a.folded");
    let b = d.join("b.folded");
    std::fs::write(&a, "old\n").unwrap();
    std::fs::hard_link(&a, &b).unwrap();
    let out = render_folded_to(&d, &a);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&a).unwrap().nlink(), 2);
    assert_eq!(
        std::fs::read_to_string(&b).unwrap(),
        std::fs::read_to_string(&a).unwrap()
    );
    assert!(std::fs::read_to_string(&b)
        .unwrap()
        .contains("load;calloc 3"));
}
