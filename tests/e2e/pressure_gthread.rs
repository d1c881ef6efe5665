//! The gthread worker under pressure, through the INSTALLED `ferrocorn` (`.venv`, see
//! scripts/install-ferrocorn.sh) with raw sockets (issue 12):
//!
//! - a request that arrived while every serving thread was busy waits for a thread, past
//!   the keep-alive and first-byte deadlines, and is answered (never reset);
//! - a response to a request whose declared body the application does not read goes out
//!   while the client still has not sent that body (with and without
//!   `Expect: 100-continue`, where no `100` is sent), and the connection then closes;
//! - a body small enough to be read before the application is called, which does not
//!   arrive within `timeout`, gets `408 Request Timeout` and one log line.
//!
//! Tests synchronise on marker files the application writes (tests/apps/wsgi_app.py
//! `/hold`) and on what the client receives. The only waits on the clock are lower bounds
//! (past a configured deadline); client reads have generous deadlines that only a server
//! that never answers reaches. Servers bind 127.0.0.1:0; only our processes are signalled.

use crate::support;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Client, Server, TempDir, body_of, get_raw, start_installed, status, wait_until};

/// How long a client waits for an answer the server owes it: only a server that never
/// answers (or answers after its 120 s body timeout) reaches it.
const READ_WAIT: Duration = Duration::from_secs(60);

/// `program` (`ferrocorn` or `gunicorn` from the venv) serving `wsgi_app:raw` with one
/// gthread worker and `extra` flags, booted, on an ephemeral port.
fn serve(program: &str, extra: &[&str], env: &[(&str, &str)]) -> (Server, SocketAddr) {
    let mut args = vec!["wsgi_app:raw", "-b", "127.0.0.1:0", "-w", "1", "-k", "gthread"];
    args.extend_from_slice(extra);
    let s = start_installed(program, &args, env);
    let addr = s.addr();
    s.wait_booted(1);
    (s, addr)
}

fn connect(addr: SocketAddr) -> Client {
    let mut c = Client::connect(addr);
    c.read_timeout(READ_WAIT);
    c
}

/// Reads one whole response (after any `100 Continue`, which is kept in what is
/// returned) from `c`.
fn read_response(c: &mut Client) -> String {
    c.try_read()
        .unwrap_or_else(|e| {
            panic!("no whole response ({e}): {:?}", String::from_utf8_lossy(c.pending()))
        })
        .unwrap_or_else(|| panic!("closed before a whole response"))
        .text()
}

/// Whether the server closes `c` (reads to EOF, dropping anything else that comes).
fn closes(c: &mut Client) -> bool {
    c.closed_within(READ_WAIT.as_secs_f64())
}

/// `GET path` with `Connection: close` on a new connection; the whole answer.
fn get_closing(addr: SocketAddr, path: &str) -> String {
    let mut c = connect(addr);
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let (out, err) = c.send(req.as_bytes()).read_to_end();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(err.is_none(), "{path}: {err:?} after {text:?}");
    text
}

fn held(marker: &std::path::Path) -> usize {
    std::fs::read_to_string(marker).unwrap_or_default().lines().count()
}

#[test]
fn queued_requests_wait_for_a_thread_past_every_idle_deadline() {
    let dir = TempDir::new("pressure-queued");
    let marker = dir.path("hold");
    // keep-alive 1 s: the first-byte wait of a new connection is max(keepalive, 5 s).
    let (s, addr) = serve(
        "ferrocorn",
        &["--threads", "2", "--keep-alive", "1"],
        &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())],
    );
    let deadline = Duration::from_secs(5);

    // A kept-alive connection: its next request comes while both threads are busy.
    let mut kept = connect(addr);
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(read_response(&mut kept).ends_with("Hello, World!"));

    // Three requests at once to two threads: two are held in the application, the third
    // arrives whole and waits.
    let sent = Instant::now();
    let holds: Vec<_> =
        (0..3).map(|_| std::thread::spawn(move || get_closing(addr, "/hold"))).collect();
    wait_until(30, "two requests held in the application", || held(&marker) == 2);
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");

    // Past the new connection's first-byte deadline and the kept connection's keep-alive
    // deadline (lower bounds; the deadlines are checked every 100 ms).
    let past = deadline + Duration::from_millis(1500);
    while sent.elapsed() < past {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(held(&marker), 2, "a third request reached the application with no free thread");
    assert!(holds.iter().all(|h| !h.is_finished()), "a held request ended before release");

    std::fs::write(marker.with_extension("release"), b"").unwrap();
    for h in holds {
        let r = h.join().unwrap();
        assert!(status(&r).starts_with("HTTP/1.1 200"), "{r:?}");
        assert_eq!(body_of(&r), "released");
    }
    assert_eq!(held(&marker), 3);
    let r = read_response(&mut kept);
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("Hello, World!"), "{r:?}");
    let log = s.log();
    assert!(!log.contains("[ERROR]"), "{log}");
}

/// `program` serving `app`: a request declaring a body of `len` bytes to `/`, which
/// answers without reading it, and whose body is never sent. Returns the answer (which
/// came while the client still had not sent a byte of the body) and the connection.
fn unread_body(
    program: &str,
    app: &str,
    len: u64,
    expect: bool,
    extra: &[&str],
) -> (Server, SocketAddr, String, Client) {
    let args = ["--threads", "2", "--timeout", "120"];
    let mut all = vec![app, "-b", "127.0.0.1:0", "-w", "1", "-k", "gthread"];
    all.extend_from_slice(&args);
    all.extend_from_slice(extra);
    let s = start_installed(program, &all, &[]);
    let addr = s.addr();
    s.wait_booted(1);
    let mut c = connect(addr);
    let mut head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n");
    if expect {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    c.send(head.as_bytes());
    let r = read_response(&mut c);
    (s, addr, r, c)
}

#[test]
fn a_response_does_not_wait_for_a_large_body_the_application_does_not_read() {
    // Bodies that stream (the application is called when the head is in): without
    // `tmp_upload_dir` (with and without `Expect: 100-continue`), and with it, for an
    // application that asks for streamed bodies and for a body over the spool limit.
    let dir = TempDir::new("pressure-unread");
    let conf = dir.path("conf.py");
    std::fs::write(&conf, format!("tmp_upload_dir = {:?}\n", dir.0.to_str().unwrap())).unwrap();
    let spooling = ["-c", conf.to_str().unwrap()];
    let cases: [(&str, u64, bool, &[&str]); 4] = [
        ("wsgi_app:raw", 1 << 20, false, &[]),
        ("wsgi_app:raw", 1 << 20, true, &[]),
        ("stream_bodies_app:app", 1 << 20, false, &spooling),
        ("wsgi_app:raw", 16 << 20, false, &spooling),
    ];
    for (app, len, expect, extra) in cases {
        let what = format!("{app} Content-Length {len} expect={expect} {extra:?}");
        // gunicorn answers at once too (the oracle for the status and body).
        let (_g, _, oracle, _c) = unread_body("gunicorn", app, len, expect, extra);
        assert!(oracle.contains("HTTP/1.1 200 OK") && oracle.ends_with("Hello, World!"), "{what}");

        let (s, addr, r, mut c) = unread_body("ferrocorn", app, len, expect, extra);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{what}: {r:?}");
        assert!(!r.contains("100 Continue"), "{what}: {r:?}");
        assert!(r.contains("\r\nConnection: close\r\n"), "{what}: {r:?}");
        assert!(r.ends_with("Hello, World!"), "{what}: {r:?}");
        // The body was never sent: the connection closes rather than waits for it.
        assert!(c.pending().is_empty() && closes(&mut c), "{what}: not closed");

        // The worker goes on serving, and a large body that is read still works.
        assert!(body_of(&get_raw(addr, "/")).ends_with("Hello, World!"));
        let body = vec![b'b'; 200 * 1024];
        let mut e = connect(addr);
        e.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 204800\r\n\r\n");
        e.send(&body);
        let r = read_response(&mut e);
        assert!(r.starts_with("HTTP/1.1 200") && body_of(&r).len() == body.len(), "{}", status(&r));
        let log = s.log();
        assert!(!log.contains("[ERROR]") && !log.contains("Traceback"), "{log}");
    }
}

/// How many files of process `pid` are open in `dir` (a spooled body is an unnamed file
/// there: `/proc/PID/fd` shows `DIR/#INODE (deleted)`).
fn open_in(pid: i32, dir: &std::path::Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn a_slow_upload_is_spooled_in_tmp_upload_dir_and_costs_no_thread() {
    let dir = TempDir::new("pressure-spool");
    let spool = dir.path("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let spool = spool.canonicalize().unwrap();
    let conf = dir.path("conf.py");
    std::fs::write(&conf, format!("tmp_upload_dir = {:?}\n", spool.to_str().unwrap())).unwrap();
    // One serving thread: a thread held by the upload would leave nobody to serve.
    let (s, addr) = serve(
        "ferrocorn",
        &["--threads", "1", "--timeout", "120", "-c", conf.to_str().unwrap()],
        &[],
    );
    let worker = s.booted()[0];
    let body: Vec<u8> = (0..1usize << 20).map(|i| b'a' + (i % 26) as u8).collect();

    let mut up = connect(addr);
    up.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n");
    up.send(&body[..512 * 1024]);
    wait_until(30, "the body spooled in tmp_upload_dir", || open_in(worker, &spool) == 1);
    // The only serving thread is free while the upload is half in.
    let mut other = connect(addr);
    other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(read_response(&mut other).ends_with("Hello, World!"));
    assert_eq!(open_in(worker, &spool), 1, "the spool file closed before the body was in");

    up.send(&body[512 * 1024..]);
    let r = read_response(&mut up);
    assert!(r.starts_with("HTTP/1.1 200"), "{}", status(&r));
    assert!(body_of(&r).as_bytes() == body.as_slice(), "the echo differs from the upload");
    wait_until(30, "the spool file closed", || open_in(worker, &spool) == 0);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "a file left in tmp_upload_dir");

    // `Expect: 100-continue` still streams: the `100` comes when the application reads.
    let mut e = connect(addr);
    e.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n",
    );
    let mut got = Vec::new();
    let mut tmp = [0u8; 256];
    while !got.ends_with(b"\r\n\r\n") {
        let n = e.s.read(&mut tmp).unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&tmp[..n]);
    }
    assert_eq!(got, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(open_in(worker, &spool), 0, "an Expect body was spooled");
    e.send(&body);
    let r = read_response(&mut e);
    assert!(body_of(&r).as_bytes() == body.as_slice(), "the echo differs from the upload");
    let log = s.log();
    assert!(!log.contains("[ERROR]") && !log.contains("[WARNING]"), "{log}");
}

#[test]
fn a_small_body_that_never_arrives_gets_408_and_one_log_line() {
    let timeout = Duration::from_secs(2);
    let dir = TempDir::new("pressure-408");
    let conf = dir.path("conf.py");
    std::fs::write(&conf, format!("tmp_upload_dir = {:?}\n", dir.0.to_str().unwrap())).unwrap();
    let (s, addr) = serve(
        "ferrocorn",
        &["--threads", "2", "--timeout", "2", "-c", conf.to_str().unwrap()],
        &[],
    );
    // A body of 1000 bytes is read into memory, one of 1 MiB is spooled to a file (as
    // `tmp_upload_dir` is set): both before the application is called.
    for (n, (len, expect)) in
        [(1000, false), (1000, true), (1 << 20, false)].into_iter().enumerate()
    {
        let mut c = connect(addr);
        let mut head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n");
        if expect {
            head.push_str("Expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        let sent = Instant::now();
        c.send(head.as_bytes());
        c.send(b"only ten b");
        let r = read_response(&mut c);
        let took = sent.elapsed();
        let r = if expect {
            // The body is wanted (it is read before the application is called).
            let rest = r.strip_prefix("HTTP/1.1 100 Continue\r\n\r\n");
            assert!(rest.is_some(), "{r:?}");
            rest.unwrap().to_owned()
        } else {
            r
        };
        assert!(r.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "expect={expect}: {r:?}");
        assert!(r.contains("\r\nConnection: close\r\n"), "{r:?}");
        assert!(took >= timeout - Duration::from_millis(200), "408 before the deadline: {took:?}");
        assert!(closes(&mut c), "not closed after the 408");
        let log = s.wait_log(10, "the 408 log lines", |l| {
            l.matches("Request body timed out").count() == n + 1
        });
        let line = log.lines().rfind(|l| l.contains("Request body timed out")).unwrap();
        assert!(line.contains(&format!("10 of {len} bytes")) && line.contains("/echo"), "{line}");
    }
    // The worker serves on; nothing else was logged for it (one line per request).
    assert!(body_of(&get_raw(addr, "/")).ends_with("Hello, World!"));
    let log = s.log();
    assert_eq!(log.matches("Request body timed out").count(), 3, "{log}");
    assert!(!log.contains("[ERROR]") && !log.contains("Traceback"), "{log}");
}

#[test]
fn an_unusable_tmp_upload_dir_is_said_once_and_bodies_stream() {
    let dir = TempDir::new("pressure-nospool");
    let conf = dir.path("conf.py");
    let missing = dir.path("missing");
    std::fs::write(&conf, format!("tmp_upload_dir = {:?}\n", missing.to_str().unwrap())).unwrap();
    let (s, addr) = serve("ferrocorn", &["--threads", "2", "-c", conf.to_str().unwrap()], &[]);
    let body: Vec<u8> = (0..300 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    for _ in 0..2 {
        let mut c = connect(addr);
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 307200\r\n\r\n");
        c.send(&body);
        let r = read_response(&mut c);
        assert!(body_of(&r).as_bytes() == body.as_slice(), "the echo differs from the upload");
    }
    let log = s.wait_log(10, "the warning", |l| l.contains("Cannot spool request bodies in"));
    assert_eq!(log.matches("Cannot spool request bodies in").count(), 1, "{log}");
    assert!(log.contains(missing.to_str().unwrap()), "{log}");
}
