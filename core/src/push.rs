//! Sending a profile to a Pyroscope-compatible server: `POST {URL}/ingest?name=…&format=pprof&
//! from=…&until=…` with the pprof bytes (see [`crate::pprof`]) as the body, the ingest API
//! Pyroscope, Grafana Alloy's `pyroscope.receive_http` and their clones accept.
//!
//! Plain `http://` only, through a small HTTP/1.1 client on `std::net` (one request per
//! connection, `Connection: close`; responses with `Content-Length`, chunked or read to the
//! end); an `https://` URL is an [`Error::Unsupported`] that says what to do instead.
//! A failed attempt (no connection, a timeout, a 5xx, 408 or 429 answer) is tried again after
//! a pause that doubles ([`PushOptions`]); any other answer is final.
//!
//! ```
//! use allocflame_core::push::{ingest_target, IngestQuery};
//! let q = IngestQuery { name: "app.alloc{program=app}".into(), from: 10, until: 12 };
//! let t = ingest_target("http://localhost:4040/base/", &q).unwrap();
//! assert_eq!(t.host, "localhost");
//! assert_eq!(t.port, 4040);
//! assert_eq!(
//!     t.path_and_query,
//!     "/base/ingest?name=app.alloc%7Bprogram%3Dapp%7D&format=pprof&from=10&until=12"
//! );
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How a push is tried. Construct with `Default` and set what differs.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// How many times the request is sent before giving up. Default is 3.
    pub attempts: u32,
    /// The pause before the second attempt; it doubles before each further one. Default is
    /// 0.5 s (so 0.5 s, then 1 s).
    pub backoff: Duration,
    /// How long connecting may take, and sending or reading the answer may go without
    /// progress. Default is 10 s.
    pub timeout: Duration,
    /// Set (by a Ctrl-C handler) to give up at once: between attempts and while waiting for
    /// the server, checked every 50 ms. Default is `None`.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            attempts: 3,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            stop: None,
        }
    }
}

/// The query of an ingest request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestQuery {
    /// The application name, with optional labels: `app.alloc{program=app,env=ci}`.
    pub name: String,
    /// When the profiled interval began, Unix seconds.
    pub from: u64,
    /// When it ended, Unix seconds.
    pub until: u64,
}

/// Where an ingest request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestTarget {
    /// The host as written in the URL (brackets of an IPv6 address removed).
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// The `Host` header's value.
    pub host_header: String,
    /// `{path}/ingest?name=…&format=pprof&from=…&until=…`.
    pub path_and_query: String,
}

/// What a successful push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReceipt {
    /// The HTTP status of the answer (2xx).
    pub status: u16,
    /// How many attempts it took.
    pub attempts: u32,
}

/// `s` percent-encoded for a query string (everything but RFC 3986's unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An application name Pyroscope accepts from `text`: the characters its name and label syntax
/// uses (`{`, `}`, `,`, `=`) and any others outside `[A-Za-z0-9._-]` become `_`.
pub fn sanitize_name(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// The request target of an ingest of `query` to the server at `url` (`http://host[:port][/path]`).
pub fn ingest_target(url: &str, query: &IngestQuery) -> Result<IngestTarget> {
    let invalid = |why: &str| Error::Invalid(format!("--push {url}: {why}"));
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(Error::Unsupported(format!(
                "--push {url}: https is not supported yet; use an http:// endpoint (a server on the same network) or a local agent that forwards over TLS (Grafana Alloy's pyroscope.receive_http)"
            )))
        }
        Some((scheme, _)) => return Err(invalid(&format!("the scheme {scheme}:// is not http://"))),
        None => return Err(invalid("expected http://HOST[:PORT][/PATH]")),
    };
    if rest.contains(['?', '#']) {
        return Err(invalid(
            "a query or fragment in the URL; give the server's base URL (allocflame adds /ingest?…)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid(
            "user names and passwords in the URL are not supported",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 address without its closing `]`"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(invalid("unexpected text after the IPv6 address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port =
        match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                invalid(&format!("the port `{p}` is not a number from 1 to 65535"))
            })?,
            None => 80,
        };
    Ok(IngestTarget {
        host: host.to_owned(),
        port,
        host_header: authority.to_owned(),
        path_and_query: format!(
            "{}/ingest?name={}&format=pprof&from={}&until={}",
            path.trim_end_matches('/'),
            percent_encode(&query.name),
            query.from,
            query.until
        ),
    })
}

/// Sends `pprof` (the bytes of a pprof file) to the ingest endpoint of the server at `url`,
/// trying again as [`PushOptions`] says. An error says what the last attempt got (the server's
/// status and the start of its answer, or why no answer came) and how many attempts were made.
pub fn push(
    url: &str,
    query: &IngestQuery,
    pprof: &[u8],
    options: &PushOptions,
) -> Result<PushReceipt> {
    let target = ingest_target(url, query)?;
    let attempts = options.attempts.max(1);
    let mut pause = options.backoff;
    let mut last = String::new();
    let stop = options.stop.as_deref();
    let interrupted = || Error::Push {
        url: url.to_owned(),
        message: "interrupted (Ctrl-C or SIGTERM) before the server answered".into(),
    };
    for attempt in 1..=attempts {
        if attempt > 1 {
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if stopped(stop) {
                    return Err(interrupted());
                }
                std::thread::sleep(SLICE.min(until.saturating_duration_since(Instant::now())));
            }
            pause = pause.saturating_mul(2);
        }
        let sent = send(&target, pprof, options.timeout, stop);
        if sent.is_err() && stopped(stop) {
            return Err(interrupted());
        }
        match sent {
            Ok((status, _)) if (200..300).contains(&status) => {
                return Ok(PushReceipt {
                    status,
                    attempts: attempt,
                })
            }
            Ok((status, body)) => {
                last = format!("the server answered {status}{}", excerpt(&body));
                if !(status >= 500 || status == 408 || status == 429) {
                    return Err(Error::Push {
                        url: url.to_owned(),
                        message: format!(
                            "{last} (not tried again: the request itself was refused)"
                        ),
                    });
                }
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Push {
        url: url.to_owned(),
        message: format!(
            "{last} ({attempts} attempt{})",
            if attempts == 1 { "" } else { "s" }
        ),
    })
}

/// `: <the first line of the answer's body>` when it has one.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        Some(l) => format!(": {}", crate::profile::shorten(l, 200)),
        None => String::new(),
    }
}

/// How often a wait checks the stop flag.
const SLICE: Duration = Duration::from_millis(50);

fn stopped(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::SeqCst))
}

/// The first of `addrs` that accepts a connection within `timeout`, or why none did.
fn connect_any(addrs: &[SocketAddr], timeout: Duration, where_: &str) -> Result<TcpStream, String> {
    let mut why = format!("{where_} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => why = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(why)
}

/// A connection whose reads and writes wait in slices, so that a stop is seen within one
/// slice, and fail after `idle` without progress.
struct Watched<'a> {
    stream: TcpStream,
    idle: Duration,
    stop: Option<&'a AtomicBool>,
}

impl Watched<'_> {
    fn wait<T>(&self, mut op: impl FnMut(&TcpStream) -> std::io::Result<T>) -> std::io::Result<T> {
        use std::io::ErrorKind;
        let start = Instant::now();
        loop {
            match op(&self.stream) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stopped(self.stop) {
                        return Err(std::io::Error::other("stopped"));
                    }
                    if start.elapsed() >= self.idle {
                        return Err(std::io::Error::new(
                            ErrorKind::TimedOut,
                            format!("no progress for {:.0?}", self.idle),
                        ));
                    }
                }
                r => return r,
            }
        }
    }
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.wait(|mut s| s.read(buf))
    }
}

impl Write for Watched<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.wait(|mut s| s.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.wait(|mut s| s.flush())
    }
}

/// One request: the answer's status and body, or why there is none.
fn send(
    target: &IngestTarget,
    body: &[u8],
    timeout: Duration,
    stop: Option<&AtomicBool>,
) -> std::result::Result<(u16, Vec<u8>), String> {
    let where_ = format!("{}:{}", target.host, target.port);
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {where_}: {e}"))?
        .collect();
    // Connecting blocks: in a thread of its own, so that a stop is seen meanwhile (the thread
    // ends by itself at its timeout).
    let (tx, rx) = std::sync::mpsc::channel();
    let name = where_.clone();
    std::thread::Builder::new()
        .name("allocflame-push-connect".into())
        .spawn(move || {
            let _ = tx.send(connect_any(&addrs, timeout, &name));
        })
        .map_err(|e| format!("cannot start a thread to connect to {where_}: {e}"))?;
    let stream = loop {
        match rx.recv_timeout(SLICE) {
            Ok(r) => break r?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if stopped(stop) => {
                return Err("stopped".into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("connecting to {where_} failed"))
            }
        }
    };
    let io = |e: std::io::Error| format!("{where_}: {e}");
    stream.set_read_timeout(Some(SLICE)).map_err(io)?;
    stream.set_write_timeout(Some(SLICE)).map_err(io)?;
    let mut stream = Watched {
        stream,
        idle: timeout,
        stop,
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: allocflame/{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path_and_query,
        target.host_header,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .map_err(|e| format!("sending to {where_}: {e}"))?;
    read_response(&mut stream).map_err(|e| format!("reading the answer of {where_}: {e}"))
}

/// The most of an answer that is read (its status is all that matters; the body is for errors).
const MAX_RESPONSE: usize = 1 << 20;

/// Reads an HTTP/1.x response: its status and body (by `Content-Length`, chunked, or to the
/// end of the connection).
pub fn read_response(r: &mut impl Read) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(bad("response headers longer than 64 KiB"));
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(bad(if buf.is_empty() {
                "the server closed the connection without an answer"
            } else {
                "the answer ended inside its headers"
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(&format!("not an HTTP/1.x status line: `{status_line}`")))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let mut body = buf.split_off(header_end);
    let complete = |body: &[u8]| -> bool {
        if chunked {
            dechunk(body).is_some()
        } else {
            length.is_some_and(|n| body.len() >= n)
        }
    };
    // 1xx, 204 and 304 answers have no body.
    let bodiless = status < 200 || status == 204 || status == 304;
    while !bodiless && !complete(&body) && body.len() < MAX_RESPONSE {
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            // The status is what matters; a body cut by a reset is still worth showing.
            Err(_) if !body.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if bodiless {
        body.clear();
    } else if chunked {
        if let Some(b) = dechunk(&body) {
            body = b;
        }
    } else if let Some(n) = length {
        body.truncate(n);
    }
    Ok((status, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a complete chunked encoding, or `None` while it is incomplete.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> IngestQuery {
        IngestQuery {
            name: "a b".into(),
            from: 1,
            until: 2,
        }
    }

    #[test]
    fn targets_of_urls() {
        let t = ingest_target("http://127.0.0.1:9", &q()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9));
        assert_eq!(
            t.path_and_query,
            "/ingest?name=a%20b&format=pprof&from=1&until=2"
        );
        let t = ingest_target("HTTP://[::1]:4040/p/", &q()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 4040));
        assert_eq!(t.host_header, "[::1]:4040");
        assert!(t.path_and_query.starts_with("/p/ingest?"));
        assert_eq!(ingest_target("http://h", &q()).unwrap().port, 80);
        let https = ingest_target("https://h", &q()).unwrap_err();
        assert!(matches!(https, Error::Unsupported(_)), "{https}");
        assert!(
            https.to_string().contains("use an http:// endpoint"),
            "{https}"
        );
        for bad in [
            "h:4040",
            "ftp://h",
            "http://",
            "http://h:0",
            "http://h:x",
            "http://h/?a=1",
        ] {
            assert!(ingest_target(bad, &q()).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("my prog{1}"), "my_prog_1_");
        assert_eq!(sanitize_name(""), "unknown");
    }

    #[test]
    fn responses_by_length_chunked_and_to_the_end() {
        let (s, b) =
            read_response(&mut &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"[..])
                .unwrap();
        assert_eq!((s, &b[..]), (200, &b"ok"[..]));
        let chunked = b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n3;x=y\r\n!!!\r\n0\r\n\r\n";
        let (s, b) = read_response(&mut &chunked[..]).unwrap();
        assert_eq!((s, &b[..]), (500, &b"boom!!!"[..]));
        let (s, b) =
            read_response(&mut &b"HTTP/1.0 404 Not Found\r\n\r\nno such path"[..]).unwrap();
        assert_eq!((s, &b[..]), (404, &b"no such path"[..]));
        assert!(read_response(&mut &b""[..]).is_err());
        assert!(read_response(&mut &b"SSH-2.0\r\n\r\n"[..]).is_err());
        assert!(read_response(&mut &b"HTTP/1.1 200"[..]).is_err());
    }

    #[test]
    fn a_stop_ends_the_wait_for_a_server_that_never_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let options = PushOptions {
            // Far longer than the test waits for: only the stop can end it.
            timeout: Duration::from_secs(600),
            stop: Some(stop.clone()),
            ..PushOptions::default()
        };
        let pusher = std::thread::spawn(move || push(&url, &q(), b"body", &options));
        // The request has arrived; the server never answers. Then Ctrl-C.
        let (mut conn, _) = listener.accept().unwrap();
        let mut first = [0u8; 4];
        conn.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"POST");
        stop.store(true, Ordering::SeqCst);
        let err = pusher.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("interrupted"), "{err}");
    }

    #[test]
    fn a_closed_port_is_an_error_naming_the_url_after_every_attempt() {
        // A port that was just free: bind, read the number, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let options = PushOptions {
            attempts: 2,
            backoff: Duration::from_millis(1),
            ..PushOptions::default()
        };
        let err = push(&url, &q(), b"x", &options).unwrap_err().to_string();
        assert!(err.contains(&url) && err.contains("2 attempts"), "{err}");
        assert!(err.contains("cannot connect"), "{err}");
    }
}
