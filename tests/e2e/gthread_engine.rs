//! The gthread engine end to end: a real master (`ferrocorn-test-server -k gthread`)
//! forking workers that run the engine with the Rust hello handler, raw sockets on
//! 127.0.0.1. Every wait has a deadline; nothing sleeps to wait for the server.

use crate::support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Client, Response, Server, TempDir, wait_until};

/// The request number of a hello response (`X-Request`, see tests/hello_handler.rs).
fn nth(r: &Response) -> Option<u64> {
    r.header("X-Request")?.parse().ok()
}

fn gthread(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["-k", "gthread", "-w", "1", "-b", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let addr = srv.addr();
    srv.wait_booted(1);
    assert!(srv.log().contains("Using worker: gthread"), "{}", srv.log());
    (srv, addr)
}

fn is_hello(r: &Response) -> bool {
    r.status == 200 && r.body == b"Hello, World!"
}

/// A fresh connection, one request, the time it took.
fn timed_get(addr: SocketAddr, path: &str) -> (Response, Duration) {
    let t = Instant::now();
    let mut c = Client::connect(addr);
    let r = c.get(path);
    (r, t.elapsed())
}

/// `n` requests on fresh connections, each answered `Hello, World!`; the time they took.
fn timed_gets(addr: SocketAddr, n: usize) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let (r, _) = timed_get(addr, "/");
        assert!(is_hello(&r), "{r:?}");
    }
    let took = t.elapsed();
    eprintln!("{n} requests: {took:?}");
    took
}

/// How much slower requests beside other clients may be than the same requests alone
/// (a baseline of the same run): generous, for a loaded machine (20 requests take some
/// 6 ms alone, so a stall of a few hundred ms still passes); what it catches, a thread held
/// by a slow, idle or non-reading client, costs seconds (the `timeout` of each test, or a
/// read's 10 s deadline).
const SLOWDOWN: u32 = 100;

/// A request held in the handler (`X-Hold`, see tests/hello_handler.rs) on its own
/// connection and thread: [`Held::started`] once the handler runs, answered once released.
struct Held {
    path: std::path::PathBuf,
    answer: std::thread::JoinHandle<Response>,
}

impl Held {
    fn start(addr: SocketAddr, dir: &TempDir, name: &str) -> Held {
        let path = dir.path(name);
        let req = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Hold: {}\r\n\r\n", path.display());
        let answer = std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            c.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c.send(req.as_bytes());
            c.read().expect("the held request's answer")
        });
        Held { path, answer }
    }

    fn wait_started(&self) {
        let started = self.path.with_extension("started");
        wait_until(20, "the held request in the handler", || started.exists());
    }

    fn release(self) -> Response {
        std::fs::write(self.path.with_extension("release"), b"").unwrap();
        self.answer.join().unwrap()
    }
}

/// The server's end of the connection from `client` to `server` in /proc/net/tcp (IPv4
/// loopback): whether it is established, and how many bytes it has queued unsent. The
/// server closing it is seen here at once, even when the client has not read what is
/// queued before the FIN.
fn server_end(server: SocketAddr, client: SocketAddr) -> Option<(bool, u64)> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => {
            format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port())
        }
        SocketAddr::V6(_) => panic!("IPv4 only"),
    };
    let (local, remote) = (hex(server), hex(client));
    std::fs::read_to_string("/proc/net/tcp").unwrap().lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 4 && f[1] == local && f[2] == remote {
            let tx = f[4].split(':').next().and_then(|q| u64::from_str_radix(q, 16).ok());
            Some((f[3] == "01", tx.unwrap_or(0)))
        } else {
            None
        }
    })
}

// ---------------------------------------------------------------------------------------
// Keep-alive and pipelining
// ---------------------------------------------------------------------------------------

#[test]
fn keep_alive_and_pipelined_requests_in_order_at_once() {
    let (_srv, addr) = gthread(&["--threads", "2", "--keep-alive", "30"]);
    let mut c = Client::connect(addr);
    // The three answers come without more input: a pipelined request left waiting for
    // the keep-alive timeout (30 s) would fail the read's deadline (10 s).
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\nGET /chunks?n=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs: Vec<Response> = (0..3).map(|_| c.read().unwrap()).collect();
    assert_eq!(rs.iter().map(nth).collect::<Vec<_>>(), [Some(0), Some(1), Some(2)]);
    assert!(is_hello(&rs[0]) && is_hello(&rs[1]), "{rs:?}");
    assert_eq!(rs[2].body, b"chunk 0\nchunk 1\n");
    assert!(rs.iter().all(|r| r.header("Connection") == Some("keep-alive")), "{rs:?}");
    // The connection goes on, with bodies split across writes.
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b" body");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.body.as_slice(), nth(&r)), (200, &b"hello body"[..], Some(3)));
    // A chunked body and Expect: 100-continue.
    c.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let mut interim = [0u8; 25];
    c.s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!(c.read().unwrap().body, b"abcde");
}

#[test]
fn large_bodies_stream_both_ways() {
    let (_srv, addr) = gthread(&["--threads", "2"]);
    let mut c = Client::connect(addr);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut req =
        format!("PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    req.extend_from_slice(&body);
    let writer = {
        let mut s = c.s.try_clone().unwrap();
        std::thread::spawn(move || s.write_all(&req).unwrap())
    };
    let r = c.read().unwrap();
    writer.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == body, "echoed {} bytes", r.body.len());
    // A buffered body (read straight into the body buffer) in pieces, with the next
    // request pipelined right behind its last byte.
    let body: Vec<u8> = (0..60_000u32).map(|i| (i % 239) as u8).collect();
    c.send(
        format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
    );
    c.send(&body[..1000]);
    std::thread::sleep(Duration::from_millis(30));
    c.send(&body[1000..40_000]);
    std::thread::sleep(Duration::from_millis(30));
    let mut last = body[40_000..].to_vec();
    last.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&last);
    let r = c.read().unwrap();
    assert!(r.body == body, "echoed {} bytes", r.body.len());
    assert!(is_hello(&c.read().unwrap()));
    let r = c.get("/big?kb=3000");
    assert_eq!(r.body.len(), 3000 * 1024);
    assert!(is_hello(&c.get("/")));
}

#[test]
fn proxy_information_stays_with_the_connection() {
    let (_srv, addr) = gthread(&["--threads", "2", "--proxy-protocol", "v1"]);
    let mut c = Client::connect(addr);
    c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    for i in 0..3 {
        if i == 2 {
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        let r = c.read().unwrap();
        assert_eq!(
            (nth(&r), r.header("X-Proxy-Source")),
            (Some(i), Some("192.0.2.7:40000")),
            "{r:?}"
        );
    }
}

#[test]
fn connection_close_and_http10() {
    let (_srv, addr) = gthread(&["--threads", "2"]);
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read().unwrap();
    assert!(is_hello(&r) && r.closes(), "{r:?}");
    assert!(c.closed_within(10.0));

    // HTTP/1.0 with keep-alive: the connection stays.
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.header("Connection"), Some("keep-alive"), "{r:?}");
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!((nth(&r), r.header("Connection")), (Some(1), Some("keep-alive")));
    // HTTP/1.0 without it: closed after the answer.
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.read().unwrap();
    assert!(is_hello(&r) && r.closes(), "{r:?}");
    assert!(c.closed_within(10.0));
}

#[test]
fn keepalive_timeout_closes_idle_connections() {
    let (_srv, addr) = gthread(&["--threads", "1", "--keep-alive", "1"]);
    let mut c = Client::connect(addr);
    // Timed from before the request, so the server's keep-alive wait (from its answer)
    // lies within it whatever the scheduling.
    let t = Instant::now();
    assert!(is_hello(&c.get("/")));
    // Closed by the keep-alive timeout (1 s), not before it, and long before any other
    // timer could (the request timeout is 30 s).
    assert!(c.closed_within(20.0), "an idle connection stays open");
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(990), "closed before keep-alive: {waited:?}");

    // keepalive 0: every answer closes.
    let (_srv, addr) = gthread(&["--threads", "2", "--keep-alive", "0"]);
    let mut c = Client::connect(addr);
    let r = c.get("/");
    assert!(is_hello(&r) && r.closes(), "{r:?}");
    assert!(c.closed_within(10.0));
}

// ---------------------------------------------------------------------------------------
// Slow and idle clients cost no thread
// ---------------------------------------------------------------------------------------

#[test]
fn many_idle_connections_while_others_are_served() {
    let (_srv, addr) = gthread(&["--threads", "2", "--keep-alive", "30"]);
    let baseline = timed_gets(addr, 50);
    let mut idle: Vec<Client> = (0..500).map(|_| Client::connect(addr)).collect();
    for c in idle.iter_mut().step_by(2) {
        assert!(is_hello(&c.get("/")));
    }
    // Half of them idle after a request, half never sent anything.
    let beside = timed_gets(addr, 50);
    assert!(
        beside < baseline * SLOWDOWN,
        "50 requests took {beside:?} beside 500 idle connections, {baseline:?} without"
    );
    for c in idle.iter_mut().step_by(2) {
        assert!(is_hello(&c.get("/")), "idle keep-alive connections still work");
    }
}

#[test]
fn slow_clients_hold_no_thread_and_time_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // One thread: if a slow client held it, nobody else would be served until the
    // request deadline (timeout = 5 s from the first byte) cut the slow client off.
    let (_srv, addr) = gthread(&["--threads", "1", "--timeout", "5", "--keep-alive", "30"]);
    let baseline = timed_gets(addr, 20);
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = |first: &'static [u8], bytes: &'static [u8]| {
        let stop = Arc::clone(&stop);
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&sent);
        let thread = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let t = Instant::now();
            s.write_all(first).unwrap();
            for b in bytes.iter().cycle() {
                if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                    break;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
            t.elapsed()
        });
        (thread, sent)
    };
    // A head that never ends, and a body (one the engine buffers before the handler runs:
    // at most 64 KiB) that trickles in after its head.
    let (head, head_sent) = trickle(b"", b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let (body, body_sent) =
        trickle(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", b"x");
    // Both are sending before the others are measured.
    wait_until(10, "both slow clients trickling", || {
        head_sent.load(Ordering::SeqCst) >= 5 && body_sent.load(Ordering::SeqCst) >= 5
    });
    let beside = timed_gets(addr, 20);
    assert!(
        beside < baseline * SLOWDOWN,
        "20 requests took {beside:?} beside two slow clients, {baseline:?} without"
    );
    // The request deadline closes both: their writes fail and the threads end by themselves.
    wait_until(30, "the slow clients cut off", || head.is_finished() && body.is_finished());
    stop.store(true, Ordering::SeqCst);
    let (h, b) = (head.join().unwrap(), body.join().unwrap());
    assert!(
        h >= Duration::from_millis(4900) && b >= Duration::from_millis(4900),
        "cut off before the 5 s deadline: {h:?} and {b:?}"
    );
}

#[test]
fn a_slow_request_does_not_hold_up_the_other_threads() {
    let (_srv, addr) = gthread(&["--threads", "2", "--keep-alive", "30"]);
    let dir = TempDir::new("gthread-slow");
    let slow = Held::start(addr, &dir, "slow");
    slow.wait_started();
    // One thread is held in the handler: the other serves 20 requests meanwhile.
    let mut c = Client::connect(addr);
    for _ in 0..20 {
        assert!(is_hello(&c.get("/")));
    }
    assert!(!slow.answer.is_finished(), "the held request was answered before its release");
    let r = slow.release();
    assert!(is_hello(&r), "{r:?}");
}

#[test]
fn a_client_that_does_not_read_is_parked_then_closed() {
    let (_srv, addr) = gthread(&["--threads", "1", "--timeout", "3", "--keep-alive", "30"]);
    let baseline = timed_gets(addr, 20);
    let mut lazy = Client::connect(addr);
    let lazy_addr = lazy.s.local_addr().unwrap();
    // 400 pipelined requests for 16 KiB each (6.4 MB): far more than the socket buffers.
    let reqs: Vec<u8> = (0..400)
        .flat_map(|_| b"GET /big?kb=16 HTTP/1.1\r\nHost: t\r\n\r\n".iter().copied())
        .collect();
    lazy.send(&reqs);
    // The server has answers queued that the client does not take: the only thread is
    // free for others all the same.
    wait_until(20, "answers queued for the non-reader", || {
        server_end(addr, lazy_addr).is_some_and(|(established, tx)| established && tx > 0)
    });
    let beside = timed_gets(addr, 20);
    assert!(
        beside < baseline * SLOWDOWN,
        "20 requests took {beside:?} beside a non-reader, {baseline:?} without"
    );
    // The write deadline closes the lazy connection (seen on the server's end of it); then
    // reading ends before all 6.4 MB.
    wait_until(30, "the server to close the non-reader", || {
        !server_end(addr, lazy_addr).is_some_and(|(established, _)| established)
    });
    let mut got = 0usize;
    let mut tmp = vec![0u8; 1 << 16];
    lazy.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        match lazy.s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was not closed: {e} after {got} bytes"),
        }
    }
    assert!(got < 400 * 16 * 1024, "all {got} bytes came");
}

#[test]
fn worker_connections_is_backpressure() {
    let (_srv, addr) =
        gthread(&["--threads", "1", "--worker-connections", "3", "--keep-alive", "30"]);
    // Three connections that send nothing yet: the worker holds them in its poller.
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    // A fourth connection is not accepted while three are open.
    let mut extra = Client::connect(addr);
    extra.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    extra.s.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut tmp = [0u8; 16];
    let e = extra.s.read(&mut tmp).expect_err("served above worker_connections");
    assert!(matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{e}");
    // Closing one lets it in.
    drop(held.pop());
    extra.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = extra.read().unwrap();
    assert!(is_hello(&r), "{r:?}");
    for c in &mut held {
        assert!(is_hello(&c.get("/")));
    }
}

// ---------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------

#[test]
fn term_answers_kept_alive_connections_once_and_finishes_busy_ones() {
    // A kept-alive connection is not closed under its client at TERM (its next request
    // may be on the way): it carries one more request, answered with `Connection: close`;
    // one whose client sends nothing is closed 2 s after TERM (gunicorn 27's linger), and
    // the worker exits by itself.
    let (mut srv, addr) =
        gthread(&["--threads", "2", "--keep-alive", "30", "--graceful-timeout", "4"]);
    let mut idle = Client::connect(addr);
    assert!(is_hello(&idle.get("/")));
    let mut silent = Client::connect(addr);
    assert!(is_hello(&silent.get("/")));
    let dir = TempDir::new("gthread-term");
    let busy = Held::start(addr, &dir, "busy");
    busy.wait_started();
    srv.signal(Signal::SIGTERM);
    // The master passes TERM on to the worker as it logs it; the busy request is still in
    // the handler until released.
    srv.wait_for("Handling signal: term");
    assert!(!busy.answer.is_finished(), "the busy request was answered before its release");
    let r = busy.release();
    assert!(is_hello(&r) && r.closes(), "{r:?}");
    // The busy response said close: the worker is stopping.
    let r = idle.get("/");
    assert!(is_hello(&r) && r.closes(), "{r:?}");
    assert!(idle.closed_within(5.0), "closed after its answer");
    assert!(silent.closed_within(10.0), "the silent connection stays open after TERM");
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    assert!(!srv.log().contains("SIGKILL"), "{}", srv.log());
}

#[test]
fn max_requests_restarts_the_worker_without_dropping_requests() {
    let (srv, addr) = gthread(&["--threads", "2", "--max-requests", "25", "--keep-alive", "30"]);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..40 {
                    let r = c.get("/");
                    assert!(is_hello(&r), "{r:?}");
                    if r.closes() {
                        assert!(c.closed_within(10.0));
                        c = Client::connect(addr);
                    }
                }
            })
        })
        .collect();
    let failed = clients.into_iter().map(|c| c.join()).filter(Result::is_err).count();
    assert_eq!(failed, 0, "clients failed; the server's log:\n{}", srv.log());
    let log = srv
        .wait_log(10, "a restart", |l| l.contains("Autorestarting worker after current request."));
    assert!(srv.booted().len() >= 2, "{log}");
}

// ---------------------------------------------------------------------------------------
// The conformance corpora over persistent connections
// ---------------------------------------------------------------------------------------

#[test]
fn conformance_corpus_over_persistent_connections() {
    use ferrocorn_conformance::replay::{End, replay};
    let (_srv, addr) = gthread(&["--threads", "2", "--keep-alive", "30"]);
    let mut cases = Vec::new();
    for (label, dir) in [
        ("gunicorn", ferrocorn_conformance::gunicorn_corpus_dir()),
        ("ferrocorn", ferrocorn_conformance::own_corpus_dir()),
    ] {
        cases.extend(
            ferrocorn_conformance::case::load_dir(label, &dir.join("valid"))
                .expect("the corpus loads"),
        );
    }
    let proto = Arc::new(ferrocorn_core::ProtoConfig::default());
    let peer = ferrocorn_core::Peer::Tcp("127.0.0.1:1".parse().unwrap());
    let mut checked = 0;
    let mut answered = 0;
    for case in cases.iter().filter(|c| c.settings.is_empty()) {
        let expect = replay(&proto, peer, &[&case.bytes]);
        let mut c = Client::connect(addr);
        c.send(&case.bytes);
        let _ = c.s.shutdown(Shutdown::Write);
        for (i, req) in expect.requests.iter().enumerate() {
            if !req.complete {
                break;
            }
            let r = c.read().unwrap_or_else(|| panic!("{}: no answer to request {i}", case.name));
            assert_eq!(r.status, 200, "{}: request {i}", case.name);
            assert_eq!(nth(&r), Some(i as u64), "{}", case.name);
            let want: &[u8] = if req.framing == "Empty" { b"Hello, World!" } else { &req.body };
            assert!(
                r.body == want,
                "{}: request {i}: body {:?}",
                case.name,
                String::from_utf8_lossy(&r.body)
            );
            answered += 1;
        }
        match &expect.end {
            End::Error { status, .. } => {
                let r = c.read().unwrap_or_else(|| panic!("{}: no error page", case.name));
                assert_eq!(r.status, *status, "{}", case.name);
            }
            _ => assert!(c.read().is_none(), "{}: an extra answer", case.name),
        }
        checked += 1;
    }
    assert!(checked >= 30 && answered >= 50, "{checked} cases, {answered} answers");
}
