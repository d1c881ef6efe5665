//! INT and QUIT are quick stops with the sync worker, as in gunicorn 27 (`handle_quit`:
//! `worker_int`, `sys.exit(0)` wherever the worker is), through the INSTALLED `ferrocorn`
//! command beside `.venv/bin/gunicorn` on the same app (`apps/quick_app.py`) and hooks
//! (`apps/quick_hooks.conf.py`):
//!
//! - a client reading a 32 MiB download slowly: after INT or QUIT to the master, the
//!   master exits 0 while the client has read a small part of the body, and the response
//!   is cut; TERM in the same test lets the same download finish whole;
//! - a stream of 2000 lines, one every 50 ms: after INT or QUIT the master exits 0, the
//!   generator was closed and never reached its end (the app records its progress in a
//!   marker file), the client got fewer lines than the stream has;
//! - a request head still arriving: the 500 page and `Error handling request (no URI
//!   read)` with the `SystemExit`, as gunicorn;
//! - `worker_int` then `worker_exit` run once in both programs.
//!
//! No duration is asserted: `graceful_timeout` and `timeout` are 120 s, so a worker that
//! waited for its client or its generator could not have let the master exit while the
//! client still had most of the body to read, or before the generator's end.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Client, Server, TempDir, start_installed, wait_until};

const BIG: u64 = 32 * 1024 * 1024;
const STREAM_LINES: usize = 2000;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// One server under test, with its marker and hooks files.
struct Run {
    server: Server,
    addr: SocketAddr,
    marker: std::path::PathBuf,
    hooks: std::path::PathBuf,
    _dir: TempDir,
}

fn start(program: &str, tag: &str) -> Run {
    let dir = TempDir::new(&format!("quick-{program}-{tag}"));
    let marker = dir.path("marker");
    let hooks = dir.path("hooks");
    let server = start_installed(
        program,
        &[
            "quick_app:app",
            "-c",
            "quick_hooks.conf.py",
            "-b",
            "127.0.0.1:0",
            "-w",
            "1",
            "-k",
            "sync",
            "--timeout",
            "120",
            "--graceful-timeout",
            "120",
        ],
        &[("QUICK_MARKER", marker.to_str().unwrap()), ("QUICK_HOOKS", hooks.to_str().unwrap())],
    );
    let addr = server.addr();
    wait_until(30, &format!("{program}: post_worker_init"), || {
        read(&hooks).contains("post_worker_init")
    });
    Run { server, addr, marker, hooks, _dir: dir }
}

/// The hook calls after `post_worker_init`.
fn stop_hooks(run: &Run) -> Vec<String> {
    read(&run.hooks).lines().filter(|l| *l != "post_worker_init").map(str::to_owned).collect()
}

/// Sends `GET path` and reads until the end of the response head; the head and the body
/// bytes read with it.
fn request_head(addr: SocketAddr, path: &str) -> (TcpStream, String, usize) {
    let mut c = Client::connect(addr);
    c.read_timeout(Duration::from_secs(60));
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    c.read_until("\r\n\r\n").unwrap_or_else(|e| panic!("connection closed before the head: {e}"));
    let got = c.pending();
    let i = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..i + 4]).into_owned();
    let body = got.len() - i - 4;
    (c.s, head, body)
}

/// Reads slowly (16 KiB, then a 20 ms pause) until `fast` is set, then as fast as it can,
/// until the end of the connection; the bytes read.
fn slow_reader(mut s: TcpStream, fast: Arc<AtomicBool>, count: Arc<AtomicU64>) -> u64 {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let want = if fast.load(Ordering::SeqCst) { buf.len() } else { 16 * 1024 };
        match s.read(&mut buf[..want]) {
            Ok(0) => return count.load(Ordering::SeqCst),
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) => panic!("reading the download: {e}"),
        }
        if !fast.load(Ordering::SeqCst) {
            // The pace of a slow client (about 800 KB/s), not a synchronisation.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What one download scenario showed.
#[derive(Debug, PartialEq)]
struct Download {
    exit: Option<i32>,
    /// Body bytes the client had read when the master was seen gone.
    read_at_exit: Option<u64>,
    /// The whole body arrived.
    whole: bool,
    hooks: Vec<String>,
}

/// A slow reader downloads /big; `sig` goes to the master once the application returned
/// the body (the worker is writing it); the master must exit.
fn download(program: &str, sig: Signal) -> Download {
    let mut run = start(program, &format!("download-{sig}"));
    let (s, head, first) = request_head(run.addr, "/big");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{program}: {head}");
    let fast = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(first as u64));
    let reader = {
        let (fast, count) = (Arc::clone(&fast), Arc::clone(&count));
        std::thread::spawn(move || slow_reader(s, fast, count))
    };
    wait_until(30, &format!("{program}: the app returned /big"), || {
        read(&run.marker).contains("big")
    });
    let mut read_at_exit = None;
    if sig == Signal::SIGTERM {
        // Graceful: the worker finishes the response; read it at full speed.
        run.server.signal(sig);
        fast.store(true, Ordering::SeqCst);
    } else {
        run.server.signal(sig);
    }
    let status = run.server.wait_exit_only(90);
    if sig != Signal::SIGTERM {
        read_at_exit = Some(count.load(Ordering::SeqCst));
    }
    fast.store(true, Ordering::SeqCst);
    let total = reader.join().unwrap();
    let hooks = stop_hooks(&run);
    eprintln!(
        "{program} {sig}: exit {:?}, body read at exit {read_at_exit:?}, in all {total} of {BIG}; hooks {hooks:?}",
        status.code()
    );
    Download { exit: status.code(), read_at_exit, whole: total == BIG, hooks }
}

#[test]
fn int_and_quit_cut_a_slow_download_as_gunicorn_and_term_finishes_it() {
    let term = download("ferrocorn", Signal::SIGTERM);
    assert_eq!(term.exit, Some(0), "{term:?}");
    assert!(term.whole, "TERM is graceful: the download finishes whole: {term:?}");
    assert_eq!(term.hooks, ["worker_exit"], "no worker_int on TERM");

    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        let ours = download("ferrocorn", sig);
        let theirs = download("gunicorn", sig);
        for d in [&ours, &theirs] {
            assert_eq!(d.exit, Some(0), "{sig}: {d:?}");
            assert!(!d.whole, "{sig}: the response is cut: {d:?}");
            // At the slow reader's pace the whole body takes about 40 s; the master was
            // gone long before the client could have read it.
            assert!(d.read_at_exit.unwrap() < BIG / 2, "{sig}: {d:?}");
        }
        assert_eq!(ours.hooks, ["worker_int alive=False", "worker_exit"], "{sig}");
        assert_eq!(ours.hooks, theirs.hooks, "{sig}: hooks as gunicorn's");
    }
}

/// What one stream scenario showed.
#[derive(Debug)]
struct Stream {
    exit: Option<i32>,
    /// Lines the client received.
    lines: usize,
    /// The last chunk (`0\r\n\r\n`) arrived.
    complete: bool,
    /// The marker when the master was seen gone, and after the client saw the end.
    marker_at_exit: String,
    marker_after: String,
    hooks: Vec<String>,
}

/// A client reads /stream; `sig` goes to the master once three lines went out (the
/// fourth was asked for).
fn stream(program: &str, sig: Signal) -> Stream {
    let mut run = start(program, &format!("stream-{sig}"));
    let (mut s, head, _) = request_head(run.addr, "/stream");
    assert!(head.contains("Transfer-Encoding: chunked"), "{program}: {head}");
    let reader = std::thread::spawn(move || {
        let mut body = Vec::new();
        let _ = s.read_to_end(&mut body);
        body
    });
    wait_until(30, &format!("{program}: three lines written"), || {
        read(&run.marker).contains("yield 3\n")
    });
    run.server.signal(sig);
    let status = run.server.wait_exit_only(90);
    let marker_at_exit = read(&run.marker);
    let body = reader.join().unwrap();
    let text = String::from_utf8_lossy(&body);
    Stream {
        exit: status.code(),
        lines: text.matches("line ").count(),
        complete: text.ends_with("0\r\n\r\n"),
        marker_at_exit,
        marker_after: read(&run.marker),
        hooks: stop_hooks(&run),
    }
}

#[test]
fn int_and_quit_stop_a_long_stream_as_gunicorn() {
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        for program in ["ferrocorn", "gunicorn"] {
            let st = stream(program, sig);
            let yielded = st.marker_at_exit.matches("yield ").count();
            eprintln!(
                "{program} {sig}: exit {:?}, {} lines received, {yielded} yielded; hooks {:?}",
                st.exit, st.lines, st.hooks
            );
            assert_eq!(st.exit, Some(0), "{program} {sig}: {st:?}");
            // The generator was closed, before its end, and the master was gone before the
            // stream's end was produced: the worker did not wait for the generator.
            assert!(st.marker_at_exit.ends_with("closed\n"), "{program} {sig}: {st:?}");
            assert!(!st.marker_at_exit.contains("end\n"), "{program} {sig}: {st:?}");
            assert_eq!(st.marker_after, st.marker_at_exit, "{program} {sig}: nothing after exit");
            assert!(yielded < STREAM_LINES / 2, "{program} {sig}: {yielded} yielded");
            // The response is cut: no last chunk, fewer lines than the stream has.
            assert!(!st.complete, "{program} {sig}: {st:?}");
            assert!(st.lines >= 3 && st.lines < STREAM_LINES, "{program} {sig}: {st:?}");
            assert_eq!(
                st.hooks,
                ["worker_int alive=False", "worker_exit"],
                "{program} {sig}: hooks as gunicorn's"
            );
        }
    }
}

/// The accept queue of the listener on 127.0.0.1:`port` (`rx_queue` of its LISTEN row in
/// /proc/net/tcp).
fn accept_queue(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| u32::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok())
            .flatten()
    })
}

#[test]
fn int_while_a_head_arrives_answers_500_as_gunicorn() {
    for program in ["ferrocorn", "gunicorn"] {
        let mut run = start(program, "head");
        let mut s = TcpStream::connect(run.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        // connect() returned, so the connection was queued; an empty queue means the
        // worker took it and waits for the rest of the head.
        wait_until(30, &format!("{program}: the worker accepted"), || {
            accept_queue(run.addr.port()) == Some(0)
        });
        run.server.signal(Signal::SIGINT);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let status = run.server.wait_exit(90);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status.code(), Some(0), "{program}");
        assert!(
            answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{program}: {answer}"
        );
        let log = run.server.log();
        assert!(log.contains("[ERROR] Error handling request (no URI read)\n"), "{program}: {log}");
        assert!(log.contains("\nSystemExit: 0\n"), "{program}: {log}");
        assert_eq!(stop_hooks(&run), ["worker_int alive=False", "worker_exit"], "{program}");
    }
}
