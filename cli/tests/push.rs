//! `--push` end to end: the profile goes to a local HTTP server (a thread here), which decodes
//! what arrived and checks it against the folded output; a server that is down costs no file
//! and ends with status 75; one that fails twice is tried again; Ctrl-C gives up a push that
//! hangs; https is refused before recording.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod pprof_util;
mod record_util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use allocflame_core::pprof;
use pprof_util::*;
use record_util::*;

/// One request as the test server received it.
#[derive(Clone, Debug)]
struct Request {
    line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

/// An HTTP server on loopback in a thread: answers the requests with `statuses` in turn (the
/// last one for any further request; 0: never answer, keeping the connection open), keeping
/// each request it read.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(statuses: &[u16]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (statuses, kept) = (statuses.to_vec(), requests.clone());
        std::thread::spawn(move || {
            let mut silent = Vec::new();
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { continue };
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                let mut length = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    headers.push(h.trim().to_owned());
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                kept.lock().unwrap().push(Request {
                    line: line.trim().to_owned(),
                    headers,
                    body,
                });
                let status = statuses[n.min(statuses.len() - 1)];
                if status == 0 {
                    silent.push(reader);
                    continue;
                }
                let answer = if status == 200 {
                    "ok"
                } else {
                    "ingester unavailable"
                };
                // Failures answer chunked, successes with a length: the client reads both.
                let response = if status == 200 {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 {status} Oops\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{answer}\r\n0\r\n\r\n",
                        answer.len()
                    )
                };
                let mut conn = reader.into_inner();
                let _ = conn.write_all(response.as_bytes());
            }
        });
        Server { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// The query parameters of a request line `POST /ingest?a=b&… HTTP/1.1`.
fn query(line: &str) -> BTreeMap<String, String> {
    let target = line.split_whitespace().nth(1).unwrap();
    let (path, q) = target.split_once('?').unwrap();
    assert_eq!(path, "/ingest", "{line}");
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `record --push`: the server gets one ingest request, named after the program, with the
/// recording's times, and a pprof body whose stacks and counts are the folded file's.
#[test]
fn record_pushes_the_profile_it_saved() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("pprof-push");
    let prog = build_c(&dir, "alloc_counts.c");
    let server = Server::start(&[200]);
    let before = unix_now();
    let out = run(
        &[
            "record",
            "--push",
            &server.url,
            "--folded",
            "x.folded",
            "-o",
            "x.svg",
            "--",
            prog.to_str().unwrap(),
            "1000",
        ],
        dir.path(),
    );
    let after = unix_now();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("pushed the profile to {}", server.url)),
        "{err}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert!(r.line.starts_with("POST /ingest?"), "{}", r.line);
    let q = query(&r.line);
    assert_eq!(q["name"], "allocflame.alloc%7Bprogram%3Dalloc_counts%7D");
    assert_eq!(q["format"], "pprof");
    let (from, until): (u64, u64) = (q["from"].parse().unwrap(), q["until"].parse().unwrap());
    assert!(before <= from && from <= until && until <= after, "{q:?}");
    assert!(
        r.headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: application/octet-stream")),
        "{:?}",
        r.headers
    );
    let folded = read_folded(&dir.join("x.folded"));
    assert_eq!(
        pushed_stacks(&r.body, allocflame_core::WeightKind::Allocations),
        folded
    );
    let leaf: u64 = folded
        .iter()
        .filter(|(s, _)| s.ends_with(";main;level1;level2;malloc"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(leaf, 1000);
    let decoded = pprof::decode(&r.body).unwrap();
    assert_eq!(decoded.sample_types.len(), 2, "allocations and bytes");
    assert!(
        decoded.comments[0].contains("allocations of alloc_counts"),
        "{:?}",
        decoded.comments
    );
    // What arrived is what go tool pprof reads too, where it is installed (a skip otherwise
    // would hide the push test; the go tests above need it).
    if Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        std::fs::write(dir.join("pushed.pb.gz"), &r.body).unwrap();
        assert_eq!(
            go_raw(&dir.join("pushed.pb.gz")).of("alloc_objects"),
            &folded
        );
    }
    assert!(decoded.time_nanos > 0 && decoded.duration_nanos > 0);
    assert!(std::fs::metadata(dir.join("x.svg")).is_ok_and(|m| m.len() > 0));
}

/// A server that is down: every file is kept (and the pprof saved too), the error names the
/// URL and the files, and allocflame exits with 75.
#[test]
fn a_server_that_is_down_costs_no_file() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("pprof-push-down");
    let prog = build_c(&dir, "alloc_counts.c");
    // A port nobody listens on: bound, read, closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = run(
        &[
            "record",
            "--push",
            &url,
            "--push-name",
            "myapp.alloc{env=ci}",
            "--folded",
            "x.folded",
            "--json",
            "x.json",
            "-o",
            "x.svg",
            "--",
            prog.to_str().unwrap(),
            "400",
        ],
        dir.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("cannot push the profile to {url}")),
        "{err}"
    );
    assert!(err.contains("3 attempts"), "{err}");
    for f in ["x.folded", "x.json", "x.svg", "x.pb.gz"] {
        assert!(err.contains(f), "{f} named: {err}");
        assert!(
            std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0),
            "{f} kept"
        );
    }
    assert!(
        err.contains("myapp.alloc%7Benv%3Dci%7D"),
        "the curl command: {err}"
    );
    let saved = std::fs::read(dir.join("x.pb.gz")).unwrap();
    assert_eq!(
        pushed_stacks(&saved, allocflame_core::WeightKind::Allocations),
        read_folded(&dir.join("x.folded"))
    );
}

/// A server that answers 500 twice and then 200: the third attempt succeeds (render --push,
/// with the pprof in -o: the same bytes are pushed).
#[test]
fn a_failing_server_is_tried_again() {
    let dir = TempDir::new("pprof-push-retry");
    std::fs::write(
        dir.join("in.folded"),
        "p;main;a;malloc 10\np;main;b;calloc 4\n",
    )
    .unwrap();
    let server = Server::start(&[500, 500, 200]);
    let out = run(
        &[
            "render",
            "in.folded",
            "--format",
            "pprof",
            "-o",
            "out.pb.gz",
            "--push",
            &format!("{}/prefix/", server.url),
        ],
        dir.path(),
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("attempt 3"), "{err}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let written = std::fs::read(dir.join("out.pb.gz")).unwrap();
    for r in &requests {
        assert!(
            r.line.starts_with(
                "POST /prefix/ingest?name=allocflame.alloc%7Bprogram%3Dp%7D&format=pprof&"
            ),
            "{}",
            r.line
        );
        assert_eq!(r.body, written, "the pushed bytes are the file's");
    }
    assert_eq!(
        pushed_stacks(&written, allocflame_core::WeightKind::Allocations),
        read_folded(&dir.join("in.folded"))
    );
    // A server that keeps failing: 75, and the file stays.
    let failing = Server::start(&[503]);
    let out = run(
        &[
            "render",
            "in.folded",
            "-o",
            "again.svg",
            "--push",
            &failing.url,
        ],
        dir.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("answered 503: ingester unavailable"), "{err}");
    assert_eq!(failing.requests().len(), 3);
    assert!(
        dir.join("again.svg").exists() && dir.join("again.pb.gz").exists(),
        "{err}"
    );
    // With the pprof in -o (and a JSON file after it), that file is the one to push again.
    let out = run(
        &[
            "render",
            "in.folded",
            "--format",
            "pprof",
            "-o",
            "p.pb.gz",
            "--json",
            "p.json",
            "--push",
            &failing.url,
        ],
        dir.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("saved in p.pb.gz, p.json\n"), "{err}");
    assert!(
        err.contains("curl -H 'Content-Type: application/octet-stream' --data-binary @p.pb.gz '"),
        "{err}"
    );
    assert!(!dir.join("p.1.pb.gz").exists() && !dir.join("p.json.pb.gz").exists());
}

/// An https URL is refused before anything is recorded, saying what to use instead.
#[test]
fn https_is_refused_before_recording() {
    let dir = TempDir::new("pprof-https");
    let out = run(
        &[
            "record",
            "--push",
            "https://profiles.example.com",
            "--",
            "/bin/true",
        ],
        dir.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("https is not supported yet"), "{err}");
    assert!(!err.contains("backend"), "nothing was recorded: {err}");
}

/// Ctrl-C while the push waits for a server that never answers: allocflame gives up at once
/// (not after the 10 s the server may take per attempt), keeps the files and exits with 75.
#[test]
fn ctrl_c_gives_up_a_hanging_push() {
    if !allocflame_tests::preload_available() {
        return;
    }
    let dir = TempDir::new("pprof-push-ctrl-c");
    let prog = build_c(&dir, "alloc_counts.c");
    let server = Server::start(&[0]);
    let mut child = Command::new(bin())
        .args(["record", "--push", &server.url, "-o", "x.svg", "--"])
        .arg(&prog)
        .arg("100")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the push has arrived at the server", WAIT, || {
        !server.requests().is_empty()
    });
    let started = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let waited = started.elapsed();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(75), "{err}");
    assert!(err.contains("interrupted (Ctrl-C or SIGTERM)"), "{err}");
    assert!(err.contains("saved in x.svg, x.pb.gz"), "{err}");
    // Without the stop it would have waited for the server's 10 s, three times.
    assert!(
        waited < std::time::Duration::from_secs(10),
        "ended {waited:?} after Ctrl-C"
    );
    assert_eq!(server.requests().len(), 1, "no attempt after Ctrl-C");
}
