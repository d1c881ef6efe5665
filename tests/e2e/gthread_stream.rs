//! Streaming through the INSTALLED `ferrocorn` (`.venv`, see scripts/install-ferrocorn.sh),
//! mostly its gthread worker, with Flask and Django apps (tests/apps) and raw
//! sockets: each chunk a generator yields reaches the client before the next one is
//! produced (plain chunks, server-sent events, Django's `StreamingHttpResponse`, and the
//! same behind nginx with `proxy_buffering off`); a client that disconnects in the middle
//! of a stream ends it and the application's iterable is closed; `Expect: 100-continue`
//! on a large upload is answered when the body is wanted, and not at all when the
//! application answers without reading it.
//!
//! No test depends on timing: the app produces chunk N only after the test read chunk
//! N-1 and created a file saying so (tests/apps/stream_sync.py), so a server that
//! holds a chunk back until more come never gets the next one. Servers bind 127.0.0.1:0;
//! waits poll with deadlines; only processes a test started are signalled.

use crate::support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Client, Nginx, Server, TempDir, body_of, start_installed, wait_until};

/// How long a read may wait for a chunk the app is about to produce. Only a server that
/// holds chunks back reaches it (the app then gives up after its own 30 s).
const READ_WAIT: Duration = Duration::from_secs(20);

/// `program` (`ferrocorn` or `gunicorn` from the venv) serving `app` with one worker of
/// class `worker` (2 threads for gthread), booted, on an ephemeral port.
fn serve(program: &str, app: &str, worker: &str) -> (Server, SocketAddr) {
    let mut args = vec![app, "-b", "127.0.0.1:0", "-w", "1", "-k", worker];
    if worker == "gthread" {
        args.extend(["--threads", "2"]);
    }
    let env: &[(&str, &str)] = if support::announces(app) { &[support::ANNOUNCE] } else { &[] };
    let s = start_installed(program, &args, env);
    let addr = s.addr();
    s.wait_booted(1);
    if support::announces(app) {
        s.wait_app_loaded(1);
    }
    (s, addr)
}

/// A request on a new connection, whose response the test reads as it comes.
fn stream_request(addr: SocketAddr, head: &str) -> Client {
    let mut c = Client::connect(addr);
    c.read_timeout(READ_WAIT).send(head.as_bytes());
    c
}

fn stream_get(addr: SocketAddr, path: &str) -> Client {
    stream_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// Reads until what arrived contains `needle`; panics with what came when the server
/// sends nothing more for [`READ_WAIT`] or closes first.
fn until(c: &mut Client, needle: &str, what: &str) -> String {
    c.read_until(needle).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Reads to the end of the connection: all that came.
fn rest(c: &mut Client) -> String {
    String::from_utf8_lossy(&c.read_to_end().0).into_owned()
}

/// Lets the app produce chunk `n`.
fn go(dir: &Path, n: usize) {
    std::fs::write(dir.join(format!("go-{n}")), b"").unwrap();
}

/// The lines of the app's record `name` in `dir`.
fn record(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Reads `/stepped`-style chunks `chunk 0\n` ... one at a time: chunk N is produced only
/// after the test read chunk N-1. Returns the whole response.
fn stepped(addr: SocketAddr, path: &str, dir: &Path, n: usize, who: &str) -> String {
    let mut r = stream_get(addr, &format!("{path}?dir={}&n={n}", dir.display()));
    for i in 0..n {
        go(dir, i);
        let got = until(&mut r, &format!("chunk {i}\n"), &format!("{who}: chunk {i}"));
        assert!(!got.contains(&format!("chunk {}\n", i + 1)), "{who}: chunk {} early", i + 1);
        assert!(!got.contains("gave up"), "{who}: {got}");
    }
    rest(&mut r)
}

#[test]
fn each_yielded_chunk_reaches_the_client_before_the_next_is_produced() {
    // gunicorn's gthread worker is the oracle; ferrocorn's sync worker does the same.
    for (program, worker) in
        [("ferrocorn", "gthread"), ("ferrocorn", "sync"), ("gunicorn", "gthread")]
    {
        let who = format!("{program} -k {worker}");
        let dir = TempDir::new("stream-stepped");
        let (_s, addr) = serve(program, "flask_app:app", worker);
        let resp = stepped(addr, "/stepped", &dir.0, 5, &who);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{who}: {resp}");
        assert!(resp.contains("\r\nTransfer-Encoding: chunked\r\n"), "{who}: {resp}");
        assert_eq!(body_of(&resp), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", "{who}");
    }
}

#[test]
fn server_sent_events_arrive_one_by_one() {
    for (program, worker) in [("ferrocorn", "gthread"), ("gunicorn", "gthread")] {
        let who = format!("{program} -k {worker}");
        let dir = TempDir::new("stream-sse");
        let (_s, addr) = serve(program, "flask_app:app", worker);
        let mut r = stream_request(
            addr,
            &format!(
                "GET /events?dir={}&n=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
                dir.0.display()
            ),
        );
        // The head and the opening comment come before any event is allowed.
        let head = until(&mut r, ": stream opened\n\n", &who);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{who}: {head}");
        assert!(head.contains("\r\nContent-Type: text/event-stream"), "{who}: {head}");
        for i in 0..4 {
            go(&dir.0, i);
            let got = until(&mut r, &format!("data: tick {i}\n\n"), &format!("{who}: event {i}"));
            assert!(!got.contains("gave-up"), "{who}: {got}");
        }
        let all = body_of(&rest(&mut r));
        assert_eq!(all.matches("event: tick\n").count(), 4, "{who}: {all}");
    }
}

#[test]
fn django_streaming_http_response_streams() {
    let dir = TempDir::new("stream-django");
    let (_s, addr) = serve("ferrocorn", "djproj.wsgi", "gthread");
    let resp = stepped(addr, "/stepped/", &dir.0, 4, "django");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert_eq!(body_of(&resp), "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
}

#[test]
fn streams_through_nginx_without_proxy_buffering() {
    let (_s, app) = serve("ferrocorn", "flask_app:app", "gthread");
    let nginx = Nginx::start(app, "      proxy_buffering off;\n");
    let proxy = nginx.addr;
    let dir = TempDir::new("stream-nginx");
    let steps = dir.path("steps");
    std::fs::create_dir_all(&steps).unwrap();
    let resp = stepped(proxy, "/stepped", &steps, 4, "nginx");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert_eq!(body_of(&resp), "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
}

#[test]
fn a_client_gone_mid_stream_ends_it_and_closes_the_iterable() {
    for worker in ["gthread", "sync"] {
        let dir = TempDir::new("stream-gone");
        let (s, addr) = serve("ferrocorn", "flask_app:app", worker);
        let mut r = stream_get(addr, &format!("/endless?dir={}", dir.0.display()));
        // The head and three chunks of 1,001 bytes (with their chunk framing).
        let head = until(&mut r, "\r\n\r\n", worker);
        r.read_at_least(head.find("\r\n\r\n").unwrap() + 4 + 3 * 1010)
            .unwrap_or_else(|e| panic!("{worker}: {e}"));
        drop(r);
        // Counted after the close: every chunk produced from here on is written to a
        // connection the client closed. The first write may still be taken by the kernel;
        // the next ones fail, which must end the response.
        let at_close = record(&dir.0, "iterations").len();
        wait_until(30, &format!("{worker}: close() of the iterable"), || {
            !record(&dir.0, "closed").is_empty()
        });
        let closed: usize = record(&dir.0, "closed")[0].parse().unwrap();
        assert!(
            closed <= at_close + 10,
            "{worker}: {} chunks produced after the client left (close() at {closed}, client gone at {at_close})\n{}",
            closed - at_close,
            s.log()
        );
        assert_eq!(record(&dir.0, "iterations").len(), closed, "{worker}: no chunk after close()");
        eprintln!("{worker}: client gone at chunk {at_close}, close() at chunk {closed}");
        // The worker goes on serving.
        let ok = support::get_raw(addr, "/");
        assert_eq!(body_of(&ok), "Hello from Flask", "{worker}: {ok}");
    }
}

/// Sends a POST head announcing `len` body bytes with `Expect: 100-continue`.
fn expect_head(addr: SocketAddr, path: &str, len: usize) -> Client {
    stream_request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
        ),
    )
}

fn sha256_hex(data: &[u8]) -> String {
    // The app's hashlib is the reference: ask Python from the venv.
    let mut child = Command::new(support::venv().join("bin/python"))
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    // 1 MB: well above what the gthread worker reads ahead (64 KiB).
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256_hex(&body);
    for (program, worker) in
        [("ferrocorn", "gthread"), ("ferrocorn", "sync"), ("gunicorn", "gthread")]
    {
        let who = format!("{program} -k {worker}");
        let (_s, addr) = serve(program, "flask_app:app", worker);
        let mut r = expect_head(addr, "/upload-size", body.len());
        // Nothing of the body is sent before the interim answer.
        let interim = until(&mut r, "\r\n\r\n", &format!("{who}: 100 Continue"));
        assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n", "{who}");
        r.clear_pending();
        r.send(&body);
        let resp = until(&mut r, "}", &format!("{who}: the answer"));
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{who}: {resp}");
        assert!(
            resp.contains(&format!("\"sha256\":\"{digest}\""))
                && resp.contains(&format!("\"size\":{}", body.len())),
            "{who}: {resp}"
        );
        if program == "ferrocorn" && worker == "gthread" {
            // The connection carries the next request.
            r.clear_pending();
            r.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let next = rest(&mut r);
            assert!(next.ends_with("\r\n\r\nHello from Flask"), "{who}: {next}");
        }
    }
}

#[test]
fn expect_100_continue_is_not_answered_when_the_app_refuses_unread() {
    // The application answers 413 without reading: no 100 Continue before or after the
    // final answer, and the connection closes (the client may never send the body).
    let (_s, addr) = serve("ferrocorn", "flask_app:app", "gthread");
    let mut r = expect_head(addr, "/upload-refused", 1_000_000);
    let resp = rest(&mut r);
    assert!(resp.starts_with("HTTP/1.1 413 "), "{resp}");
    assert!(!resp.contains("100 Continue"), "{resp}");
    assert!(resp.ends_with("too large\n"), "{resp}");
}
