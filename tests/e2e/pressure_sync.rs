//! Clients that do not send what they announce, trickle, or go away (issue 12), through
//! the INSTALLED `ferrocorn` command with `apps/pressure_app.py`, beside gunicorn 27 where
//! the behaviour must match:
//!
//! - a declared body that never comes, to an application that answers without reading
//!   it: the answer goes out when the application returns it, and `Expect: 100-continue`
//!   gets no `100` (gunicorn sends it before calling the application; docs/compat.md);
//!   an application that reads gets its `100` first;
//! - a body that stops arriving while the application reads it: `408` and one info line,
//!   no traceback;
//! - a trickled head and a trickled body (one byte just under every beat interval, so no
//!   socket wait ever runs out), each with and without a connection opened and closed
//!   before it, and several tricklers at once against two workers: each client is closed
//!   at its deadline, no worker is timed out or replaced, the next client is served by
//!   the same worker;
//! - uploads abandoned halfway (the client closes, or resets the connection while the
//!   application waits for the body), with `-k sync` and `-k gthread`: one debug line
//!   each, gunicorn's text, never a traceback.
//!
//! Every wait is on an event (a log line, the server's close, the response); durations
//! are only checked from below (a client is not closed before its deadline), or against
//! the body deadline the answer must not wait for.

use crate::support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Client, Server, body_of, start_installed, wait_until};

/// The body an upload announces and never finishes.
const MIB: usize = 1 << 20;

fn start(program: &str, worker: &str, timeout: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "pressure_app:application",
        "-b",
        "127.0.0.1:0",
        "-k",
        worker,
        "-t",
        timeout,
        "--graceful-timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let server = start_installed(program, &args, &[]);
    let addr = server.addr();
    wait_until(30, &format!("{program} serving"), || {
        TcpStream::connect(addr).is_ok() && server.log().contains("Booting worker")
    });
    (server, addr)
}

/// Reads until the server closes (a reset after its answer counts as the end).
fn read_to_close(c: &mut Client) -> Vec<u8> {
    c.read_timeout(Duration::from_secs(300));
    match c.read_to_end() {
        (out, None) => out,
        (out, Some(e)) if e.kind() == ErrorKind::ConnectionReset => out,
        (out, Some(e)) => panic!("reading the answer: {e} (after {} bytes)", out.len()),
    }
}

/// `GET /` over a new connection: the pid of the worker that answered.
fn worker_pid(addr: SocketAddr) -> String {
    let mut s = Client::connect(addr);
    s.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let out = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    body_of(&out)
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A worker of ferrocorn timed out or replaced shows in the master's log.
fn assert_no_worker_lost(server: &Server, workers: usize) {
    let log = server.log();
    assert!(!log.contains("WORKER TIMEOUT"), "a worker was timed out:\n{log}");
    assert_eq!(server.booted().len(), workers, "a worker was replaced:\n{log}");
}

// ---------------------------------------------------------------------------------------
// Item 2: the answer does not wait for a body nobody reads
// ---------------------------------------------------------------------------------------

/// A POST whose declared body (1 MiB, or 1000 bytes) never comes, to an application that
/// answers 401 without reading it: the 401 arrives while the body's deadline (`-t 60`)
/// is still far, the server closes after it; with `Expect: 100-continue` no `100` goes
/// out. gunicorn answers the same 401 but sends its `100` first.
#[test]
fn unread_body_does_not_hold_the_answer() {
    let deadline = Duration::from_secs(60);
    for program in ["ferrocorn", "gunicorn"] {
        let (server, addr) = start(program, "sync", "60", &["-w", "1"]);
        for len in [MIB, 1000] {
            for expect in [false, true] {
                let mut s = Client::connect(addr);
                let head = format!(
                    "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n{}\r\n",
                    if expect { "Expect: 100-continue\r\n" } else { "" }
                );
                let start = Instant::now();
                s.send(head.as_bytes());
                let out = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
                let took = start.elapsed();
                let case = format!("{program}, Content-Length {len}, expect {expect}");
                assert!(took < deadline, "{case}: the answer waited for the body ({took:?})");
                let final_at = out.find("HTTP/1.1 401 Unauthorized\r\n");
                assert!(final_at.is_some() && out.ends_with("\r\n\r\nno"), "{case}: {out}");
                let interim = out.contains("100 Continue");
                match (program, expect) {
                    ("gunicorn", true) => {
                        assert!(out.starts_with("HTTP/1.1 100 Continue\r\n\r\n"), "{case}: {out}")
                    }
                    _ => assert!(!interim, "{case}: a 100 for a body nobody reads: {out}"),
                }
            }
        }
        // An application that reads gets its `100` when it waits for the body: the
        // client sends the body only after it.
        let mut s = Client::connect(addr);
        s.send(
            b"POST /echo-marked HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        );
        s.read_timeout(Duration::from_secs(300));
        let mut interim = [0u8; 25];
        s.s.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n", "{program}");
        server.wait_for("reading the body");
        s.send(b"abc");
        let out = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\n3"), "{out}");
    }
}

/// A body that stops arriving while the application reads it (1 MiB announced, so the
/// gthread worker streams it too): the application's `OSError`, let through, becomes a
/// `408` (not before the client's deadline), with one info line that names the request
/// and no traceback; the worker lives on. Both workers.
#[test]
fn stalled_body_gets_408_and_one_line() {
    for worker in ["sync", "gthread"] {
        stalled_body(worker);
    }
}

fn stalled_body(worker: &str) {
    let (server, addr) = start("ferrocorn", worker, "2", &["-w", "1"]);
    let pid = worker_pid(addr);
    let start = Instant::now();
    let mut s = Client::connect(addr);
    let head = format!("POST /echo-marked HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n\r\n");
    s.send(head.as_bytes());
    s.send(b"0123456789");
    server.wait_for("reading the body");
    let out = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(start.elapsed() >= Duration::from_secs(2), "{worker}: closed before the deadline");
    assert!(out.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{worker}: {out}");
    let log = server.wait_for("Request body timed out");
    assert_eq!(count(&log, "Request body timed out"), 1, "{log}");
    let line = log.lines().find(|l| l.contains("Request body timed out")).unwrap();
    assert!(
        line.contains("[INFO] Request body timed out: POST /echo-marked from ip=127.0.0.1"),
        "{line}"
    );
    assert!(!log.contains("Traceback") && !log.contains("[ERROR]"), "{log}");
    assert_eq!(worker_pid(addr), pid);
    assert_no_worker_lost(&server, 1);
}

// ---------------------------------------------------------------------------------------
// Item 3: a trickling client costs its deadline, never the worker
// ---------------------------------------------------------------------------------------

/// What a trickling client saw.
#[derive(Debug)]
struct Trickled {
    /// What the server sent before closing.
    answer: String,
    /// From connect to the server's close.
    took: Duration,
}

/// Sends `start`, then one byte of `more` every `every`, until the server closes (the
/// pacing is the client's read timeout: a wait for the server's answer or close).
/// Panics if every byte went out and the connection is still open.
fn trickle(addr: SocketAddr, start: &[u8], more: &[u8], every: Duration) -> Trickled {
    let begin = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(start).unwrap();
    s.set_read_timeout(Some(every)).unwrap();
    let mut buf = [0u8; 4096];
    let mut answer = Vec::new();
    let mut left = more.iter();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !answer.is_empty() {
                    continue;
                }
                let b = left.next().expect("every byte was sent and the client is still open");
                if s.write_all(&[*b]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("trickling: {e}"),
        }
    }
    Trickled { answer: String::from_utf8_lossy(&answer).into_owned(), took: begin.elapsed() }
}

const HEAD_START: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n";
const BODY_START: &[u8] = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";

/// A trickled head and a trickled body, each alone and just after a connection opened
/// and closed, against `-w 1 -t 2`: a byte every 0.9 s, just under the worker's beat
/// interval (1 s), so no socket wait of the worker ever runs out. Each client is closed
/// at its deadline (a head with nothing, a body with a 408 and its line), the worker is
/// never timed out, and it serves the next client.
#[test]
fn trickled_head_and_body_cost_their_deadline_not_the_worker() {
    let (server, addr) = start("ferrocorn", "sync", "2", &["-w", "1"]);
    let pid = worker_pid(addr);
    let every = Duration::from_millis(900);
    let filler = [b'a'; 100];
    for (what, start, more) in [
        ("head", HEAD_START, &b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..]),
        ("body", BODY_START, &filler[..]),
    ] {
        for opened_before in [false, true] {
            if opened_before {
                drop(TcpStream::connect(addr).unwrap());
            }
            let case = format!("trickled {what}, connection opened before: {opened_before}");
            let t = trickle(addr, start, more, every);
            assert!(t.took >= Duration::from_secs(2), "{case}: closed before its deadline: {t:?}");
            match what {
                "head" => assert_eq!(t.answer, "", "{case}"),
                _ => assert!(t.answer.starts_with("HTTP/1.1 408 "), "{case}: {t:?}"),
            }
            assert_no_worker_lost(&server, 1);
            assert_eq!(worker_pid(addr), pid, "{case}");
        }
    }
    // The lines are read from the server's stderr by another thread: wait for them.
    let log = server.wait_log(60, "two lines", |l| count(l, "Request body timed out") >= 2);
    assert_eq!(count(&log, "Request body timed out"), 2, "{log}");
    assert!(!log.contains("Traceback"), "{log}");
}

/// Slowloris against `-w 2 -t 2`: four clients trickle their heads at once (two wait in
/// the backlog); every one is closed, neither worker is timed out or replaced.
#[test]
fn slowloris_costs_no_worker() {
    let (server, addr) = start("ferrocorn", "sync", "2", &["-w", "2"]);
    server.wait_booted(2);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                trickle(addr, HEAD_START, &[b'a'; 100], Duration::from_millis(900))
            })
        })
        .collect();
    for c in clients {
        let t = c.join().unwrap();
        assert_eq!(t.answer, "", "{t:?}");
        assert!(t.took >= Duration::from_secs(2), "closed before its deadline: {t:?}");
    }
    worker_pid(addr);
    assert_no_worker_lost(&server, 2);
}

// ---------------------------------------------------------------------------------------
// Item 4: an abandoned upload is one debug line, not a traceback
// ---------------------------------------------------------------------------------------

/// Uploads of 1 MiB abandoned after 64 KiB (the client closes its side, then reads until
/// the server is done with it), and one reset while the application waits for the body,
/// with both workers at `--log-level debug`: each gives one debug line in gunicorn's
/// words (`Ignored premature client disconnection. ...`, `Ignoring connection reset`);
/// no traceback, no warning, no error. gunicorn logs the same reset line.
#[test]
fn abandoned_uploads_log_one_debug_line_each() {
    const N: usize = 10;
    for (program, worker) in [("ferrocorn", "sync"), ("ferrocorn", "gthread"), ("gunicorn", "sync")]
    {
        let case = format!("{program} -k {worker}");
        let (server, addr) = start(program, worker, "30", &["-w", "1", "--log-level", "debug"]);
        if program == "ferrocorn" {
            for _ in 0..N {
                let mut s = Client::connect(addr);
                let head =
                    format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n\r\n");
                s.send(head.as_bytes());
                s.send(&[b'x'; 64 * 1024]);
                s.half_close();
                read_to_close(&mut s);
            }
            let log = server.wait_log(60, "a line per abandoned upload", |l| {
                count(l, "Ignored premature client disconnection.") >= N
            });
            assert_eq!(count(&log, "Ignored premature client disconnection."), N, "{case}:\n{log}");
            for l in log.lines().filter(|l| l.contains("Ignored premature client disconnection.")) {
                assert!(
                    l.ends_with(
                        "[DEBUG] Ignored premature client disconnection. No more data after: ''"
                    ),
                    "{case}: {l}"
                );
            }
        }
        // A reset while the application waits for the rest of a body (larger than what
        // any worker reads before calling the application).
        let mut s = Client::connect(addr);
        let head =
            format!("POST /echo-marked HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n\r\n");
        s.send(head.as_bytes());
        s.send(b"0123456789");
        server.wait_for("reading the body");
        socket2::SockRef::from(&s.s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
        let log =
            server.wait_log(60, "the reset's line", |l| l.contains("Ignoring connection reset"));
        assert_eq!(count(&log, "Ignoring connection reset"), 1, "{case}:\n{log}");
        let line = log.lines().find(|l| l.contains("Ignoring connection reset")).unwrap();
        assert!(line.ends_with("[DEBUG] Ignoring connection reset"), "{case}: {line}");
        // The worker serves on; nothing but debug and info lines were logged.
        worker_pid(addr);
        let log = server.log();
        assert!(!log.contains("Traceback"), "{case}:\n{log}");
        assert!(!log.contains("[WARNING]") && !log.contains("[ERROR]"), "{case}:\n{log}");
    }
}
