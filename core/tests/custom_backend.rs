//! Runs the custom backend example of the library documentation.

#[path = "../examples/custom_backend.rs"]
mod example;

#[test]
fn custom_backend_example_records_and_renders() {
    let log = r#"{"pid": 7, "comm": "app", "fn": "malloc", "size": 64, "stack": ["malloc", "parse", "main"]}
{"pid": 7, "comm": "app", "fn": "malloc", "size": 32, "stack": ["malloc", "parse", "main"]}
{"pid": 7, "comm": "app", "fn": "calloc", "size": 800, "stack": ["calloc", "load", "main"]}
{"pid": 7, "comm": "app", "fn": "my_pool_get", "size": 8, "stack": ["my_pool_get", "main"]}
"#;
    let (report, profile, svg) = example::replay(log).unwrap();
    assert_eq!(report.total(), allocflame_core::Weight::new(3, 896));
    assert_eq!(
        report.notes.len(),
        1,
        "the unprobed function is reported, not hidden"
    );
    let lines = profile.folded_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].0, "app;main;load;calloc");
    assert_eq!(lines[1].0, "app;main;parse;malloc");
    assert_eq!(lines[1].1, allocflame_core::Weight::new(2, 96));
    // The pipeline keeps each stack's process and probe, for the pid and probe filters.
    let mut labels: Vec<(Option<u32>, Option<&str>)> = profile
        .labeled_stacks()
        .map(|(_, l, _)| (l.pid, l.probe.as_deref()))
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        [(Some(7), Some("calloc")), (Some(7), Some("malloc"))]
    );
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("parse") && svg.contains("allocations"));

    let bad = example::replay("{not json}\n").unwrap_err().to_string();
    assert!(bad.starts_with("log:1:"), "{bad}");
}
