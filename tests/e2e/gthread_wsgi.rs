//! End-to-end: the WSGI gthread worker of the INSTALLED `ferrocorn` command (the Python
//! package in `.venv`, built by `scripts/install-ferrocorn.sh`; `FERROCORN_VENV` points
//! elsewhere), serving tests/apps (the PEP 3333 validator around a plain WSGI app,
//! Flask) over keep-alive connections, pipelined requests, concurrent slow requests,
//! hooks, the access log and TERM.
//!
//! Servers bind 127.0.0.1:0 and are found through `Listening at:`; every wait polls with a
//! deadline; only the processes a test started are signalled.

use crate::support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::Command;

use nix::sys::signal::Signal;
use support::{
    Client, Server, TempDir, apps, body_of, check_wsgi_app_responses, get_raw, raw,
    start_installed, status, venv, wait_until,
};

/// The installed `ferrocorn` with `-k gthread`, booted, on an ephemeral port.
fn serve(app: &str, extra: &[&str], env: &[(&str, &str)]) -> (Server, SocketAddr) {
    let mut args = vec![app, "-b", "127.0.0.1:0", "-w", "1", "-k", "gthread"];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    if support::announces(app) {
        env.push(support::ANNOUNCE);
    }
    let s = start_installed("ferrocorn", &args, &env);
    let addr = s.addr();
    s.wait_booted(1);
    if support::announces(app) {
        s.wait_app_loaded(1);
    }
    (s, addr)
}

#[test]
fn pep3333_validated_app_on_gthread() {
    let dir = TempDir::new("gthread-pep");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path("data.bin");
    std::fs::write(&file, &data).unwrap();
    let (s, addr) = serve(
        "wsgi_app:app",
        &["--threads", "4"],
        &[("FERROCORN_TEST_FILE", file.to_str().unwrap())],
    );
    assert!(s.log().contains("[INFO] Using worker: gthread"), "{}", s.log());

    let r = get_raw(addr, "/");
    assert_eq!(status(&r), "HTTP/1.1 200 OK", "{r}");
    assert!(
        r.contains("\r\nServer: ferrocorn\r\n") && r.contains("\r\nConnection: keep-alive\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\nHello, World!"), "{r}");
    check_wsgi_app_responses(addr, &data);

    let env = body_of(&get_raw(addr, "/env?a=1"));
    for needle in [
        r#""wsgi.multithread": true"#,
        r#""wsgi.multiprocess": false"#,
        r#""QUERY_STRING": "a=1""#,
        r#""wsgi.input_terminated": true"#,
    ] {
        assert!(env.contains(needle), "{needle} not in {env}");
    }
    let r = get_raw(addr, "/cl-long");
    assert!(r.ends_with("\r\n\r\nabcde"), "{r}");
    let r = get_raw(addr, "/cl-short");
    assert!(r.contains("Content-Length: 100\r\n") && r.ends_with("\r\n\r\nonly nine"), "{r}");
    assert_eq!(body_of(&get_raw(addr, "/errors")), "logged");
    let log = s.wait_for("a line for wsgi.errors");
    assert!(!log.contains("AssertionError") && !log.contains("Traceback"), "{log}");
}

#[test]
fn keep_alive_pipelining_and_concurrent_slow_requests() {
    let dir = TempDir::new("gthread-pipelining");
    let marker = dir.path("sleeping");
    let (_s, addr) = serve(
        "wsgi_app:raw",
        &["--threads", "3", "--keep-alive", "30"],
        &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())],
    );
    let mut c = Client::connect(addr);
    // The three answers come without more input: a pipelined request left waiting for the
    // keep-alive timeout (30 s) would fail the read's deadline (10 s).
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\npipeGET /headers HTTP/1.1\r\nHost: x\r\n\r\n");
    let rs: Vec<String> = (0..3).map(|_| c.read().expect("a response").text()).collect();
    assert!(
        rs[0].ends_with("Hello, World!")
            && rs[1].ends_with("\r\n\r\npipe")
            && rs[2].starts_with("HTTP/1.1 201"),
        "{rs:?}"
    );
    for _ in 0..20 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(c.read().expect("a response").text().ends_with("Hello, World!"));
    }

    // Two slow requests (held in the application until released; waiting releases the
    // GIL) are in the application at once, and the third thread answers beside them.
    let slow: Vec<_> = (0..2).map(|_| std::thread::spawn(move || get_raw(addr, "/hold"))).collect();
    wait_until(20, "both slow requests in the application", || {
        std::fs::read_to_string(&marker).unwrap_or_default().lines().count() == 2
    });
    for _ in 0..10 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(c.read().expect("a response").text().ends_with("Hello, World!"));
    }
    assert!(slow.iter().all(|h| !h.is_finished()), "a held request was answered before release");
    std::fs::write(marker.with_extension("release"), b"").unwrap();
    for h in slow {
        assert_eq!(body_of(&h.join().unwrap()), "released");
    }
}

#[test]
fn sync_with_threads_is_gthread_and_errors_are_500() {
    let mut cmd = Command::new(venv().join("bin/ferrocorn"));
    cmd.args(["wsgi_app:raw", "-b", "127.0.0.1:0", "-w", "1", "-k", "sync", "--threads", "2"])
        .current_dir(apps())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let s = Server::start_command(cmd);
    let addr = s.addr();
    s.wait_booted(1);
    assert!(s.log().contains("[INFO] Using worker: gthread"), "{}", s.log());
    let r = get_raw(addr, "/boom");
    assert_eq!(status(&r), "HTTP/1.1 500 Internal Server Error", "{r}");
    assert!(r.contains("Connection: close"), "{r}");
    let log = s.wait_for("RuntimeError: boom in view");
    assert!(log.contains("[ERROR] Error handling request GET /boom\nTraceback"), "{log}");
    assert!(get_raw(addr, "/").ends_with("Hello, World!"));
}

#[test]
fn hooks_and_access_log_on_gthread() {
    support::hooks_and_access_scenario("gthread-hooks", &["-k", "gthread", "--threads", "2"]);
}

#[test]
fn flask_on_gthread() {
    let (_s, addr) = serve("flask_app:app", &["--threads", "4"], &[]);
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello from Flask");
    let j = body_of(&get_raw(addr, "/json?q=z"));
    assert!(j.contains(r#""items":[0,1,2,3,4]"#) && j.contains(r#""q":"z""#), "{j}");
    let sent = raw(addr, b"GET /sendfile HTTP/1.1\r\nHost: x\r\n\r\n");
    let want: Vec<u8> = (0..1024).flat_map(|_| 0..=255u8).collect();
    assert!(sent.ends_with(&want), "send_file body differs ({} bytes)", sent.len());
    assert_eq!(body_of(&get_raw(addr, "/download")).lines().count(), 1000);
}

#[test]
fn term_finishes_the_request_in_flight_and_answers_idle_connections_once() {
    let dir = TempDir::new("gthread-term");
    let marker = dir.path("sleeping");
    let (mut s, addr) = serve(
        "wsgi_app:raw",
        &["--threads", "2", "--keep-alive", "30"],
        &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())],
    );
    let mut idle = Client::connect(addr);
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(idle.read().expect("a response").text().ends_with("Hello, World!"));
    let busy = std::thread::spawn(move || get_raw(addr, "/hold"));
    wait_until(20, "the request in flight", || marker.exists());
    s.signal(Signal::SIGTERM);
    // The master passes TERM on to the worker as it logs it; the request in flight is
    // still held in the application until released.
    s.wait_for("Handling signal: term");
    assert!(!busy.is_finished(), "the request in flight was answered before its release");
    std::fs::write(marker.with_extension("release"), b"").unwrap();
    let r = busy.join().unwrap();
    assert_eq!(body_of(&r), "released");
    assert!(r.contains("Connection: close"), "{r}");
    // The kept-alive connection was not closed under its client: its next request is
    // answered, with `Connection: close`, and then the connection closes.
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = idle.read().expect("a response").text();
    assert!(r.ends_with("Hello, World!") && r.contains("Connection: close"), "{r}");
    let mut tmp = [0u8; 16];
    assert_eq!(idle.s.read(&mut tmp).unwrap_or(0), 0, "closed after the answer");
    assert_eq!(s.wait_exit(10).code(), Some(0));
}

#[test]
fn usr1_reopens_the_access_log() {
    let dir = TempDir::new("gthread-usr1");
    let access = dir.path("access.log");
    let (s, addr) = serve(
        "wsgi_app:raw",
        &["--threads", "2", "--access-logfile", access.to_str().unwrap()],
        &[],
    );
    assert!(get_raw(addr, "/").ends_with("Hello, World!"));
    wait_until(10, "the first access line", || {
        std::fs::read_to_string(&access).unwrap_or_default().lines().count() == 1
    });
    let rotated = dir.path("access.log.1");
    std::fs::rename(&access, &rotated).unwrap();
    s.signal(Signal::SIGUSR1);
    // The worker reopens within its tick; requests until a line lands in the new file.
    wait_until(10, "a line in the reopened access log", || {
        assert!(get_raw(addr, "/").ends_with("Hello, World!"));
        std::fs::read_to_string(&access).is_ok_and(|t| !t.is_empty())
    });
    assert!(std::fs::read_to_string(&rotated).unwrap().lines().count() >= 1);
}

#[test]
fn a_timeout_kill_says_what_the_worker_was_serving() {
    let dir = TempDir::new("gthread-timeout");
    let marker = dir.path("sleeping");
    let (s, addr) = serve(
        "wsgi_app:raw",
        &["--threads", "2", "--timeout", "2"],
        &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())],
    );
    let worker = s.booted()[0];
    let older = std::thread::spawn(move || raw(addr, b"GET /sleep?30 HTTP/1.1\r\nHost: x\r\n\r\n"));
    wait_until(10, "the first request in flight", || marker.exists());
    std::fs::remove_file(&marker).unwrap();
    let newer = std::thread::spawn(move || raw(addr, b"GET /sleep?29 HTTP/1.1\r\nHost: x\r\n\r\n"));
    wait_until(10, "the second request in flight", || marker.exists());
    // The worker's main thread beats on its own: only a frozen process times out.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), Signal::SIGSTOP).unwrap();
    s.wait_for(&format!("WORKER TIMEOUT (pid:{worker})"));
    // The request line is logged right after; the log is collected line by line.
    let log = s.wait_for(&format!("Worker (pid:{worker}) was serving"));
    // The slot shows the older of the two requests in flight.
    let took = support::timeout_report(&log, worker, "GET /sleep?30");
    assert!((1.5..30.0).contains(&took), "{log}");
    s.wait_booted(2);
    assert!(older.join().unwrap().is_empty());
    assert!(newer.join().unwrap().is_empty());
    assert!(get_raw(addr, "/").ends_with("Hello, World!"));
}

/// A streamed body that breaks its framing while the application reads it: the
/// application sees an `OSError`, lets it through, and the client gets the core's error
/// page for the verdict (400) and a close, as with the sync worker (the two workers share
/// one request pipeline).
#[test]
fn a_body_that_breaks_its_framing_gets_the_core_error_page() {
    let (s, addr) = serve("wsgi_app:raw", &["--log-level", "debug"], &[]);
    let mut c = Client::connect(addr);
    // A first chunk larger than the 64 KiB read before the application is called: the
    // body streams, so the application is called while the rest is still to come.
    let first = vec![b'a'; 70_000];
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        first.len()
    )
    .into_bytes();
    req.extend_from_slice(&first);
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    // gunicorn's default pre_request line: the application is being called.
    s.wait_for("[DEBUG] POST /echo");
    c.send(b"zz\r\nhello\r\n0\r\n\r\n");
    let r = c.read().expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.closes(), "{}", r.text());
    let log = s.wait_for("Invalid request from ip=127.0.0.1");
    assert!(!log.contains("Traceback"), "a body error is not the application's: {log}");
    assert!(get_raw(addr, "/").ends_with("Hello, World!"));
}
