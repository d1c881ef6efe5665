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
//! Tests synchronise on marker files the application writes (shell/tests/apps/wsgi_app.py
//! `/hold`) and on what the client receives. The only waits on the clock are lower bounds
//! (past a configured deadline); client reads have generous deadlines that only a server
//! that never answers reaches. Servers bind 127.0.0.1:0; only our processes are signalled.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Server, TempDir, body_of, get_raw, start_installed, status, wait_until};

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

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_WAIT)).unwrap();
    s
}

/// Reads one whole response with a `Content-Length` (after any `100 Continue`, which is
/// kept in what is returned) from `s`, leaving what follows in `buf`.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        let text = String::from_utf8_lossy(buf).into_owned();
        let from = if text.starts_with("HTTP/1.1 100 ") {
            text.find("\r\n\r\n").map_or(usize::MAX, |i| i + 4)
        } else {
            0
        };
        if from != usize::MAX {
            if let Some(end) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[from..from + end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= from + end + 4 + len {
                    let resp: Vec<u8> = buf.drain(..from + end + 4 + len).collect();
                    return String::from_utf8_lossy(&resp).into_owned();
                }
            }
        }
        let mut tmp = [0u8; 65536];
        match s.read(&mut tmp) {
            Ok(0) => panic!("closed before a whole response: {text:?}"),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => panic!("no whole response ({e}): {text:?}"),
        }
    }
}

/// Whether the server closes `s` (reads to EOF, dropping anything else that comes).
fn closes(s: &mut TcpStream) -> bool {
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// `GET path` with `Connection: close` on a new connection; the whole answer.
fn get_closing(addr: SocketAddr, path: &str) -> String {
    let mut s = connect(addr);
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let r = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(r.is_ok(), "{path}: {r:?} after {text:?}");
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
    let mut kept_buf = Vec::new();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut kept, &mut kept_buf).ends_with("Hello, World!"));

    // Three requests at once to two threads: two are held in the application, the third
    // arrives whole and waits.
    let sent = Instant::now();
    let holds: Vec<_> =
        (0..3).map(|_| std::thread::spawn(move || get_closing(addr, "/hold"))).collect();
    wait_until(30, "two requests held in the application", || held(&marker) == 2);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();

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
    let r = read_response(&mut kept, &mut kept_buf);
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("Hello, World!"), "{r:?}");
    let log = s.log();
    assert!(!log.contains("[ERROR]"), "{log}");
}

/// A request declaring a 1 MiB body (over the 64 KiB read before the application is
/// called) to `/`, which answers without reading it: the answer comes while the client
/// still has not sent a byte of the body.
fn unread_big_body(program: &str, expect: bool) -> (String, TcpStream) {
    let (s, addr) = serve(program, &["--threads", "2", "--timeout", "120"], &[]);
    let mut c = connect(addr);
    let mut head = String::from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n");
    if expect {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut c, &mut buf);
    drop(s);
    (r, c)
}

#[test]
fn a_response_does_not_wait_for_a_large_body_the_application_does_not_read() {
    for expect in [false, true] {
        // gunicorn answers at once too (the oracle for the status and body).
        let (oracle, _c) = unread_big_body("gunicorn", expect);
        assert!(oracle.contains("HTTP/1.1 200 OK") && oracle.ends_with("Hello, World!"));

        let (s, addr) = serve("ferrocorn", &["--threads", "2", "--timeout", "120"], &[]);
        let mut c = connect(addr);
        let mut head = String::from("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n");
        if expect {
            head.push_str("Expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        c.write_all(head.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut c, &mut buf);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "expect={expect}: {r:?}");
        assert!(!r.contains("100 Continue"), "expect={expect}: {r:?}");
        assert!(r.contains("\r\nConnection: close\r\n"), "expect={expect}: {r:?}");
        assert!(r.ends_with("Hello, World!"), "expect={expect}: {r:?}");
        // The body was never sent: the connection closes rather than waits for it.
        assert!(buf.is_empty() && closes(&mut c), "expect={expect}: not closed");

        // The worker goes on serving, and a large body that is read still works.
        assert!(body_of(&get_raw(addr, "/")).ends_with("Hello, World!"));
        let body = vec![b'b'; 200 * 1024];
        let mut e = connect(addr);
        e.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 204800\r\n\r\n").unwrap();
        e.write_all(&body).unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut e, &mut buf);
        assert!(r.starts_with("HTTP/1.1 200") && body_of(&r).len() == body.len(), "{}", status(&r));
        let log = s.log();
        assert!(!log.contains("[ERROR]") && !log.contains("Traceback"), "{log}");
    }
}

#[test]
fn a_small_body_that_never_arrives_gets_408_and_one_log_line() {
    let timeout = Duration::from_secs(2);
    let (s, addr) = serve("ferrocorn", &["--threads", "2", "--timeout", "2"], &[]);
    for expect in [false, true] {
        let mut c = connect(addr);
        let mut head = String::from("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n");
        if expect {
            head.push_str("Expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        let sent = Instant::now();
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(b"only ten b").unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut c, &mut buf);
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
        let n = if expect { 2 } else { 1 };
        let log = s.wait_log(10, "the 408 log lines", |l| {
            l.matches("Request body timed out").count() == n
        });
        let line = log.lines().rfind(|l| l.contains("Request body timed out")).unwrap();
        assert!(line.contains("10 of 1000 bytes") && line.contains("/echo"), "{line}");
    }
    // The worker serves on; nothing else was logged for it (one line per request).
    assert!(body_of(&get_raw(addr, "/")).ends_with("Hello, World!"));
    let log = s.log();
    assert_eq!(log.matches("Request body timed out").count(), 2, "{log}");
    assert!(!log.contains("[ERROR]") && !log.contains("Traceback"), "{log}");
}
