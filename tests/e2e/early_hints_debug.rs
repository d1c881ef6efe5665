//! Two gaps against gunicorn 27, closed and compared byte for byte with
//! `.venv/bin/gunicorn` on the same app (`apps/quick_app.py`), in both workers, through
//! the INSTALLED `ferrocorn` command:
//!
//! - `environ['wsgi.early_hints']`: `103 Early Hints` heads written at once, before the
//!   final response (a client that sends its body only after reading the 103 is
//!   answered), nothing for HTTP/1.0 or after the final head, bad names and values refused;
//! - `--log-level debug`: the `Current configuration:` dump at start, the per-request
//!   `METHOD path` line, the `N workers` line, and the body-on-HEAD warning as gunicorn's bare stderr line
//!   (no timestamp, also with `--error-logfile`).

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Client, Server, TempDir, start_installed};

const PROGRAMS: [&str; 2] = ["ferrocorn", "gunicorn"];
const WORKERS: [&str; 2] = ["sync", "gthread"];

fn start(program: &str, worker: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["quick_app:app", "-b", "127.0.0.1:0", "-w", "1", "-k", worker];
    args.extend_from_slice(extra);
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    (s, addr)
}

/// Sends `req` and reads until the server closes; `Server` and `Date` values blanked
/// (they differ by program and by second), `Connection` too (gunicorn's gthread worker
/// keeps a connection alive where ferrocorn's closes the last one: not this test's
/// subject).
fn exchange(addr: SocketAddr, req: &[u8]) -> String {
    let mut c = Client::connect(addr);
    c.read_timeout(Duration::from_secs(20)).send(req);
    // Stops at the end of the final response (gthread keeps the connection open).
    while !final_complete(c.pending()) {
        if c.read_at_least(c.pending().len() + 1).is_err() {
            break;
        }
    }
    normalise(c.pending())
}

/// Whether `out` holds a whole non-1xx response with a `Content-Length` body.
fn final_complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let mut rest: &str = &text;
    loop {
        let Some(end) = rest.find("\r\n\r\n") else { return false };
        let head = &rest[..end];
        let body = &rest[end + 4..];
        if head.starts_with("HTTP/1.1 1") {
            rest = body;
            continue;
        }
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned)
            })
            .and_then(|v| v.trim().parse::<usize>().ok());
        return len.is_some_and(|n| body.len() >= n);
    }
}

fn normalise(out: &[u8]) -> String {
    let text: String = out.iter().map(|&b| char::from(b)).collect();
    text.split("\r\n")
        .map(|l| {
            for name in ["Server: ", "Date: ", "Connection: "] {
                if l.starts_with(name) {
                    return format!("{name}-");
                }
            }
            l.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// What the early-hints requests got from one program and worker.
fn hints_answers(program: &str, worker: &str) -> Vec<(String, String)> {
    let (mut s, addr) = start(program, worker, &[]);
    let mut answers = Vec::new();
    for (name, req) in [
        ("1.1", &b"GET /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..]),
        ("1.0", b"GET /hints HTTP/1.0\r\nHost: t\r\n\r\n"),
        ("late", b"GET /hints-late HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("bad value", b"GET /hints-bad-value HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("bad name", b"GET /hints-bad-name HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("head", b"HEAD /hints HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    ] {
        answers.push((name.to_owned(), exchange(addr, req)));
    }
    answers.push(("before the body".to_owned(), hints_before_body(addr)));
    s.signal(Signal::SIGTERM);
    s.wait_exit(30);
    answers
}

/// The 103 must arrive while the application waits for the body, which the client sends
/// only after reading the 103 (a 100 000-byte body, streamed by both workers).
fn hints_before_body(addr: SocketAddr) -> String {
    const LEN: usize = 100_000;
    let mut c = Client::connect(addr);
    c.read_timeout(Duration::from_secs(20)).send(
        format!(
            "POST /hints-then-body HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {LEN}\r\n\r\n"
        )
        .as_bytes(),
    );
    c.read_until("\r\n\r\n").unwrap_or_else(|e| panic!("the 103 before the body was sent: {e}"));
    let interim = normalise(c.pending());
    assert!(interim.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{interim}");
    c.send(&vec![b'b'; LEN]);
    while !final_complete(c.pending()) {
        if let Err(e) = c.read_at_least(c.pending().len() + 1) {
            assert!(e.starts_with("closed after"), "{e}");
            break;
        }
    }
    let all = normalise(c.pending());
    assert!(all.ends_with(&"b".repeat(LEN)), "the body came back: {}", &all[..all.len().min(400)]);
    all[..all.len() - LEN].to_owned()
}

#[test]
fn early_hints_are_gunicorns_in_both_workers() {
    for worker in WORKERS {
        let ours = hints_answers("ferrocorn", worker);
        let theirs = hints_answers("gunicorn", worker);
        for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
            eprintln!("{worker} {name}: {a:?}");
            assert_eq!(a, b, "{worker} {name}: ferrocorn vs gunicorn");
        }
        let get = |n: &str| &ours.iter().find(|(k, _)| k == n).unwrap().1;
        // What the comparison covers, spelled out.
        assert_eq!(
            get("1.1"),
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\
             Link: </app.js>; rel=preload; as=script\r\n\r\n\
             HTTP/1.1 103 Early Hints\r\nX-Bytes: caf\u{e9}\r\nX-List: pair\r\n\r\n\
             HTTP/1.1 103 Early Hints\r\n\r\n\
             HTTP/1.1 200 OK\r\nServer: -\r\nDate: -\r\nConnection: -\r\n\
             Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhints",
            "{worker}"
        );
        assert!(get("1.0").starts_with("HTTP/1.0 200 OK\r\n"), "{worker}: no 103 for HTTP/1.0");
        assert!(get("late").starts_with("HTTP/1.1 200 OK\r\n"), "{worker}: no 103 after the head");
        assert!(get("bad value").ends_with("\r\n\r\nrefused"), "{worker}");
        assert!(get("bad value").starts_with("HTTP/1.1 200 OK\r\n"), "{worker}: nothing sent");
        assert!(get("bad name").ends_with("\r\n\r\nrefused"), "{worker}");
        assert!(get("head").starts_with("HTTP/1.1 103 Early Hints\r\n"), "{worker}");
    }
}

/// The error-log lines of `--log-level debug` worth comparing: the configuration dump
/// (function addresses dropped), the per-request lines and the bare warning lines, each
/// without its `[time] [pid]` prefix.
fn debug_lines(program: &str, worker: &str, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut args = vec!["--log-level", "debug"];
    args.extend_from_slice(extra);
    let (mut s, addr) = start(program, worker, &args);
    exchange(addr, b"GET /plain/p%20ath?q=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    exchange(addr, b"HEAD /head-body HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    exchange(addr, b"GET http://t/absolute?x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.wait_log(20, "the warning", |l| l.contains("dropping per RFC 9110"));
    // A reload logs the dump again (gunicorn's reload runs `Arbiter.setup` again).
    s.signal(Signal::SIGHUP);
    s.wait_log(30, "the dump after HUP", |l| {
        l.matches("[DEBUG] Current configuration:").count() == 2
    });
    s.signal(Signal::SIGTERM);
    s.wait_exit(30);
    let log = s.log();
    let config: Vec<String> = log
        .split("[DEBUG] Current configuration:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{program}: no configuration dump:\n{log}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| match l.find(" at 0x") {
            Some(i) => format!("{}>", &l[..i]),
            None => l.to_owned(),
        })
        .collect();
    let mut other: Vec<String> = log
        .lines()
        .filter_map(|l| {
            if let Some(rest) = l.split_once("] [DEBUG] ").map(|(_, r)| r) {
                let is_request = ["GET ", "HEAD "].iter().any(|m| rest.starts_with(m));
                let is_count = rest.ends_with(" workers");
                return (is_request || is_count).then(|| format!("[DEBUG] {rest}"));
            }
            l.starts_with("WSGI app sent").then(|| l.to_owned())
        })
        .collect();
    other.sort();
    (config, other)
}

#[test]
fn debug_log_lines_are_gunicorns() {
    for worker in WORKERS {
        let (our_config, ours) = debug_lines("ferrocorn", worker, &[]);
        let (their_config, theirs) = debug_lines("gunicorn", worker, &[]);
        eprintln!("{worker}: {ours:#?}");
        assert_eq!(ours, theirs, "{worker}");
        assert_eq!(
            ours,
            [
                "WSGI app sent body bytes on a no-body response (method=HEAD status=200); dropping per RFC 9110.",
                "[DEBUG] 1 workers",
                "[DEBUG] GET /absolute",
                "[DEBUG] GET /plain/p%20ath",
                "[DEBUG] HEAD /head-body",
            ],
            "{worker}"
        );
        assert!(our_config.len() > 100, "{worker}: {our_config:?}");
        assert!(our_config.contains(&"  loglevel: debug".to_owned()), "{our_config:?}");
        assert!(our_config.contains(&format!("  worker_class: {worker}")), "{our_config:?}");
        assert_eq!(our_config, their_config, "{worker}: the configuration dump");
    }
}

#[test]
fn the_head_body_warning_goes_to_stderr_even_with_an_error_log_file() {
    for program in PROGRAMS {
        let dir = TempDir::new(&format!("head-warning-{program}"));
        let file = dir.path("error.log");
        let f = file.to_str().unwrap();
        let mut s = start_installed(
            program,
            &["quick_app:app", "-b", "127.0.0.1:0", "-w", "1", "--error-logfile", f],
            &[],
        );
        let mut logged = String::new();
        support::wait_until(20, "Listening at in the error log file", || {
            logged = std::fs::read_to_string(&file).unwrap_or_default();
            logged.contains("Listening at: http://")
        });
        let addr: SocketAddr = logged
            .split("Listening at: http://")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        exchange(addr, b"HEAD /head-body HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.wait_log(20, "the warning on stderr", |l| l.contains("dropping per RFC 9110"));
        s.signal(Signal::SIGTERM);
        s.wait_exit(30);
        let stderr = s.log();
        assert_eq!(
            stderr,
            "WSGI app sent body bytes on a no-body response (method=HEAD status=200); dropping per RFC 9110.\n",
            "{program}: the bare line, and nothing else (the log goes to the file)"
        );
        let logged = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!logged.contains("WSGI app sent"), "{program}: {logged}");
    }
}
