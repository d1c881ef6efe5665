//! The arbiter end to end: a real master forking real workers (`ferrocorn-test-server`,
//! the Rust `Hello, World!` body), real sockets on 127.0.0.1, real signals.

use crate::support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Server, alive, get, is_hello, parent_of};

#[test]
fn two_workers_serve_and_term_stops_cleanly() {
    let mut srv = Server::start(&["-w", "2", "--timeout", "5", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    let pids = srv.wait_booted(2);
    for pid in &pids {
        assert_eq!(parent_of(*pid), Some(srv.pid()), "workers are children of the master");
    }
    for _ in 0..20 {
        let r = get(addr, "/");
        assert!(is_hello(&r), "{r}");
    }
    let log = srv.log();
    let master = srv.pid();
    assert!(log.contains(&format!("[{master}] [INFO] Starting ferrocorn 0.1.0\n")), "{log}");
    assert!(
        log.contains(&format!("[{master}] [INFO] Listening at: http://{addr} ({master})\n")),
        "{log}"
    );
    assert!(log.contains(&format!("[{master}] [INFO] Using worker: sync\n")), "{log}");
    for pid in &pids {
        assert!(log.contains(&format!("[{pid}] [INFO] Booting worker with pid: {pid}\n")), "{log}");
    }
    srv.signal(Signal::SIGTERM);
    let st = srv.wait_exit(10);
    assert_eq!(st.code(), Some(0));
    let log = srv.log();
    assert!(log.contains("[INFO] Handling signal: term\n"), "{log}");
    for pid in &pids {
        assert!(log.contains(&format!("[{pid}] [INFO] Worker exiting (pid: {pid})\n")), "{log}");
        assert!(!alive(*pid));
    }
    assert!(log.trim_end().ends_with("[INFO] Shutting down: Master"), "{log}");
}

#[test]
fn a_worker_killed_from_outside_is_replaced() {
    let srv = Server::start(&["-w", "2", "--timeout", "5", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    let pids = srv.wait_booted(2);
    kill(Pid::from_raw(pids[0]), Signal::SIGKILL).unwrap();
    let line = format!("[ERROR] Worker (pid:{}) was sent SIGKILL! Perhaps out of memory?", pids[0]);
    srv.wait_for(&line);
    let now = srv.wait_booted(3);
    assert!(!pids.contains(&now[2]));
    assert_eq!(parent_of(now[2]), Some(srv.pid()));
    assert!(is_hello(&get(addr, "/")));
}

#[test]
fn term_lets_an_in_flight_request_finish() {
    let mut srv = Server::start(&[
        "-w",
        "1",
        "--timeout",
        "5",
        "--graceful-timeout",
        "5",
        "--log-level",
        "debug",
        "-b",
        "127.0.0.1:0",
    ]);
    let addr = srv.addr();
    srv.wait_booted(1);
    let started = Instant::now();
    let client = std::thread::spawn(move || get(addr, "/sleep?ms=1500"));
    srv.wait_for("[DEBUG] GET /sleep?ms=1500");
    srv.signal(Signal::SIGTERM);
    let resp = client.join().unwrap();
    assert!(is_hello(&resp), "{resp}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    let log = srv.log();
    assert!(log.contains("Shutting down: Master"), "{log}");
    assert!(!log.contains("SIGKILL"), "{log}");
}

#[test]
fn int_and_quit_stop_at_once() {
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        let mut srv = Server::start(&[
            "-w",
            "1",
            "--timeout",
            "30",
            "--log-level",
            "debug",
            "-b",
            "127.0.0.1:0",
        ]);
        let addr = srv.addr();
        srv.wait_booted(1);
        // The request in flight would take 20 s: a quick stop does not wait for it (a
        // graceful one would, and the client would get its answer).
        let client = std::thread::spawn(move || get(addr, "/sleep?ms=20000"));
        srv.wait_for("[DEBUG] GET /sleep?ms=20000");
        srv.signal(sig);
        assert_eq!(srv.wait_exit(60).code(), Some(0));
        let name = if sig == Signal::SIGINT { "int" } else { "quit" };
        assert!(srv.log().contains(&format!("Handling signal: {name}")));
        assert_eq!(client.join().unwrap(), "", "the in-flight request is dropped");
    }
}

#[test]
fn a_hung_worker_is_timed_out_and_replaced() {
    let srv = Server::start(&["-w", "2", "--timeout", "2", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    srv.wait_booted(2);
    let hang = std::thread::spawn(move || get(addr, "/hang"));
    let log = srv.wait_log(10, "WORKER TIMEOUT", |l| l.contains("[CRITICAL] WORKER TIMEOUT (pid:"));
    let pid: i32 = log
        .split("WORKER TIMEOUT (pid:")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let log = srv.wait_for(&format!("Worker (pid:{pid}) was serving GET /hang from 127.0.0.1:"));
    assert!(
        log.contains(&format!("[{}] [CRITICAL] WORKER TIMEOUT (pid:{pid})", srv.pid())),
        "{log}"
    );
    // ABRT makes the Rust body exit 1 (gunicorn's handle_abort); SIGKILL would follow.
    srv.wait_for(&format!("Worker (pid:{pid}) exited with code 1."));
    srv.wait_booted(3);
    assert_eq!(hang.join().unwrap(), "");
    assert!(is_hello(&get(addr, "/")));
    assert_eq!(srv.log().matches("WORKER TIMEOUT").count(), 1, "healthy workers are left alone");
}

#[test]
fn a_slowloris_client_does_not_starve_others() {
    // One worker: the silent client holds it at most `timeout` seconds, without getting
    // it killed, then the next client is served.
    let srv = Server::start(&["-w", "1", "--timeout", "2", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    srv.wait_booted(1);
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Served once the silent client is cut off (a worker held for good would leave this
    // client to its 15 s read deadline, far past the 2 s timeout).
    let resp = get(addr, "/");
    assert!(is_hello(&resp), "{resp}");
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 16];
    let end = std::io::Read::read(&mut slow, &mut buf);
    assert!(
        matches!(end, Ok(0))
            || end.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the slow client was not dropped: {end:?}"
    );
    let log = srv.log();
    assert!(!log.contains("WORKER TIMEOUT"), "{log}");
    assert_eq!(srv.booted().len(), 1, "{log}");
}

#[test]
fn boot_and_load_errors_stop_the_master_with_their_code() {
    for (code, reason) in [(3, "Worker failed to boot."), (4, "App failed to load.")] {
        let mut srv = Server::start_env(
            &["-w", "2", "-b", "127.0.0.1:0"],
            &[("FERROCORN_TEST_WORKER_EXIT", &code.to_string())],
        );
        assert_eq!(srv.wait_exit(10).code(), Some(code));
        let log = srv.log();
        assert!(log.contains(&format!("exited with code {code}.")), "{log}");
        let master = srv.pid();
        assert!(log.contains(&format!("[{master}] [ERROR] Shutting down: Master\n")), "{log}");
        assert!(log.trim_end().ends_with(&format!("[{master}] [ERROR] Reason: {reason}")), "{log}");
    }
}

#[test]
fn a_worker_hanging_before_its_first_heartbeat_is_timed_out() {
    // gunicorn never times out such a worker (its heartbeat file's mtime is wall-clock
    // time compared with monotonic time); the master stamps the heartbeat at spawn.
    let srv = Server::start_env(
        &["-w", "1", "--timeout", "1", "-b", "127.0.0.1:0"],
        &[("FERROCORN_TEST_BOOT_HANG", "1")],
    );
    let pid = srv.wait_booted(1)[0];
    srv.wait_for(&format!("[CRITICAL] WORKER TIMEOUT (pid:{pid})"));
    srv.wait_for(&format!("Worker (pid:{pid}) was not serving a request"));
    srv.wait_booted(2);
}
