//! The `--dry-run` text (dtrace command line + D script) against expectations in
//! `tests/data/script-*.d`. `ALLOCFLAME_BLESS=1` rewrites them; a failing case writes what it
//! produced under the target directory and prints the path.
//!
//! The scripts are also checked for the shape D requires, as far as that can be done without
//! dtrace: balanced braces, four-field probe descriptions, predicates, and printa naming only
//! aggregations the script assigns.

use std::path::PathBuf;
use std::time::Duration;

use allocflame_backend_dtrace::dry_run;
use allocflame_core::probes::{catalog, Platform};
use allocflame_core::source::{RecordOptions, Target};

fn golden(case: &str, produced: &str) {
    let expected_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("script-{case}.d"));
    if std::env::var_os("ALLOCFLAME_BLESS").is_some() {
        std::fs::write(&expected_path, produced).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with ALLOCFLAME_BLESS=1 to create it)",
            expected_path.display()
        )
    });
    if expected != produced {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("script-{case}.d"));
        std::fs::write(&out, produced).unwrap();
        panic!(
            "the script for `{case}` differs from {}; produced: {} (ALLOCFLAME_BLESS=1 accepts it)",
            expected_path.display(),
            out.display()
        );
    }
}

/// Checks what can be checked of D syntax without dtrace.
fn check_shape(script: &str) {
    let mut depth = 0i32;
    for c in script.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        assert!((0..=1).contains(&depth), "unbalanced braces in\n{script}");
    }
    assert_eq!(depth, 0);
    let mut assigned = Vec::new();
    let mut in_comment = false;
    for line in script.lines() {
        let t = line.trim();
        if t.starts_with("/*") {
            in_comment = !t.ends_with("*/");
            continue;
        }
        if in_comment {
            in_comment = !t.ends_with("*/");
            continue;
        }
        if t.starts_with("pid$target:") {
            let desc = t.trim_end_matches(',');
            assert_eq!(desc.split(':').count(), 4, "probe description `{desc}`");
            assert!(
                desc.ends_with(":entry") || desc.ends_with(":return"),
                "{desc}"
            );
        }
        if t.starts_with('/') && !t.starts_with("/*") {
            assert!(t.ends_with('/') && t.len() > 2, "predicate `{t}`");
        }
        if let Some(rest) = t.strip_prefix('@') {
            let name = &rest[..rest.find('[').unwrap()];
            assigned.push(name.to_owned());
            assert!(t.ends_with(");"), "aggregation statement `{t}`");
        }
        if t.starts_with("printa(") {
            let name = t[t.rfind('@').unwrap() + 1..].trim_end_matches(");");
            assert!(
                assigned.iter().any(|a| a == name),
                "printa of `{name}`, which the script never assigns"
            );
        }
    }
}

#[test]
fn spawn_with_the_default_catalog() {
    let text = dry_run(
        &Target::spawn(["./alloc-test", "1000"]),
        &RecordOptions::default(),
    );
    check_shape(&text);
    // Every function of the macOS catalog has an entry and a return probe.
    for p in catalog(Platform::MacOs) {
        let entry = format!("pid$target:libsystem_malloc.dylib:{}:entry", p.function);
        let counting = format!("{entry}\n/self->allocflame_depth == 0/");
        assert_eq!(text.matches(&counting).count(), 1, "{entry}");
        assert!(text.contains(&format!("{entry},\n")) || text.contains(&format!("{entry}\n{{")));
        assert!(text.contains(&format!(
            "pid$target:libsystem_malloc.dylib:{}:return",
            p.function
        )));
    }
    assert!(text.contains("@allocflame_bytes[ustack()] = sum(arg0 * arg1);"));
    golden("spawn", &text);
}

#[test]
fn attach_for_a_duration_with_a_user_probe() {
    let mut options = RecordOptions {
        max_depth: 64,
        ..RecordOptions::default()
    };
    options
        .probes
        .push("libswiftCore:swift_allocObject:1".parse().unwrap());
    let text = dry_run(
        &Target::Attach {
            pid: 4242,
            duration: Some(Duration::from_secs(10)),
        },
        &options,
    );
    check_shape(&text);
    assert!(text.contains("pid$target:libswiftCore.dylib:swift_allocObject:entry"));
    assert!(text.contains("tick-10s"));
    assert!(text.contains("-p 4242"));
    assert!(text.contains("ustackframes=64"));
    golden("attach", &text);
}

#[test]
fn count_only() {
    let options = RecordOptions {
        stacks: false,
        follow_children: false,
        ..RecordOptions::default()
    };
    let text = dry_run(&Target::spawn(["prog"]), &options);
    check_shape(&text);
    assert!(!text.contains("ustack()"));
    golden("count", &text);
}

#[test]
fn impossible_requests_say_why() {
    let text = dry_run(
        &Target::spawn(["./prog", "two words"]),
        &RecordOptions::default(),
    );
    assert!(text.contains("no DTrace recording is possible"), "{text}");
    assert!(text.contains("whitespace"), "{text}");
    let mut options = RecordOptions::default();
    options.probes.push("libfoo:$s3foo:0".parse().unwrap());
    let text = dry_run(&Target::spawn(["./prog"]), &options);
    assert!(text.contains("`$`"), "{text}");
}
