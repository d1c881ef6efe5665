//! Syslog through the installed command, message for message against gunicorn 27 over UDP,
//! TCP and a unix datagram socket: the same priority (facility and severity), identifier,
//! pid field, text and trailing NUL, for an error-log line and an access-log line.

use crate::support;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{TempDir, apps, oracle_venv, start_installed};

/// Where the test receives the messages.
enum Receiver {
    Udp(UdpSocket),
    Tcp(TcpListener),
    Unix(UnixDatagram, TempDir),
}

impl Receiver {
    fn new(kind: &str) -> Receiver {
        match kind {
            "udp" => Receiver::Udp(UdpSocket::bind("127.0.0.1:0").unwrap()),
            "tcp" => Receiver::Tcp(TcpListener::bind("127.0.0.1:0").unwrap()),
            _ => {
                let dir = TempDir::new("syslog-unix");
                let s = UnixDatagram::bind(dir.path("log.sock")).unwrap();
                Receiver::Unix(s, dir)
            }
        }
    }

    fn address(&self) -> String {
        match self {
            Receiver::Udp(s) => format!("udp://{}", s.local_addr().unwrap()),
            Receiver::Tcp(s) => format!("tcp://{}", s.local_addr().unwrap()),
            Receiver::Unix(_, dir) => format!("unix://{}#dgram", dir.path("log.sock").display()),
        }
    }

    /// Collects messages (each ends in its NUL) into `out` until `done` holds.
    fn collect(
        &self,
        out: &Arc<Mutex<Vec<String>>>,
        done: impl Fn(&[String]) -> bool,
        log: impl Fn() -> String,
    ) {
        let end = Instant::now() + Duration::from_secs(30);
        let mut buf = vec![0u8; 65536];
        let mut stream = None;
        let mut pending = Vec::new();
        while !done(&out.lock().unwrap()) {
            assert!(Instant::now() < end, "so far: {:?}\n{}", out.lock().unwrap(), log());
            let n = match self {
                Receiver::Udp(s) => {
                    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    s.recv(&mut buf).unwrap_or(0)
                }
                Receiver::Unix(s, _) => {
                    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    s.recv(&mut buf).unwrap_or(0)
                }
                Receiver::Tcp(l) => {
                    if stream.is_none() {
                        let (c, _) = l.accept().unwrap();
                        c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                        stream = Some(c);
                    }
                    stream.as_mut().unwrap().read(&mut buf).unwrap_or(0)
                }
            };
            pending.extend_from_slice(&buf[..n]);
            // Datagrams are whole messages; the stream is cut at each NUL.
            while let Some(i) = pending.iter().position(|&b| b == 0) {
                let msg: Vec<u8> = pending.drain(..=i).collect();
                out.lock().unwrap().push(String::from_utf8_lossy(&msg).into_owned());
            }
        }
    }
}

/// What changes between runs: pids, the access line's time.
fn normalize(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit() || c == '[') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(t) = rest.strip_prefix('[') {
            // `[07/Dec/2026:10:00:00 +0000]` (the access time) or `[1234]` (a pid).
            let close = t.find(']').unwrap_or(0);
            let inner = &t[..close];
            if inner.bytes().all(|b| b.is_ascii_digit()) && !inner.is_empty() {
                out.push_str("[PID]");
            } else if inner.contains('/') && inner.contains(':') {
                out.push_str("[TIME]");
            } else {
                out.push('[');
                rest = t;
                continue;
            }
            rest = &t[close + 1..];
        } else {
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            // Worker pids in the text; the priority and status stay.
            let n = &rest[..end];
            if out.ends_with("pid: ") {
                out.push('N')
            } else {
                out.push_str(n)
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// The messages `program` sends to a `kind` syslog: the access line of one request and
/// the `Booting worker` line, normalised.
fn messages(program: &str, kind: &str, extra: &[&str]) -> Vec<String> {
    let rx = Receiver::new(kind);
    let dir = TempDir::new(&format!("syslog-{program}"));
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    let to = rx.address();
    let mut args = vec!["probe_app:app", "--chdir", dir.0.to_str().unwrap(), "-b", "127.0.0.1:0"];
    args.extend(["-w", "1", "--log-syslog", "--log-syslog-to", &to]);
    args.extend_from_slice(extra);
    let got = Arc::new(Mutex::new(Vec::new()));
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    // gunicorn 27 sometimes sends no access line for a request that reached its worker
    // while the worker was booting: the request is sent again (another path) until one
    // access line arrives.
    let booting = |m: &String| m.contains("Booting worker with pid");
    let mut tries = 0;
    let access = |m: &String| m.contains("GET /probe?try=");
    while !got.lock().unwrap().iter().any(access) {
        tries += 1;
        assert!(tries <= 20, "no access line from {program}: {:?}", got.lock().unwrap());
        let req = format!(
            "GET /probe?try={tries} HTTP/1.1\r\nHost: t\r\nUser-Agent: syslog-e2e\r\nReferer: r\r\n\r\n"
        );
        let r = support::raw(addr, req.as_bytes());
        assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.1 200"));
        let started = Instant::now();
        rx.collect(
            &got,
            |ms| ms.iter().any(access) || started.elapsed() > Duration::from_secs(2),
            || s.log(),
        );
    }
    rx.collect(&got, |ms| ms.iter().any(booting), || s.log());
    let all = got.lock().unwrap();
    let mut out: Vec<String> = all
        .iter()
        .filter(|m| access(m) || booting(m))
        .map(|m| normalize(m))
        .map(|m| match m.split_once("?try=") {
            Some((a, b)) => {
                format!("{a}?try=N{}", b.trim_start_matches(|c: char| c.is_ascii_digit()))
            }
            None => m,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn syslog_messages_are_gunicorns_over_udp_tcp_and_unix() {
    oracle_venv();
    let extra = ["--log-syslog-prefix", "probe", "--log-syslog-facility", "local3"];
    for kind in ["udp", "tcp", "unix"] {
        let want = messages("gunicorn", kind, &extra);
        assert_eq!(want.len(), 2, "{kind}: {want:?}");
        assert!(want.iter().all(|m| m.starts_with("<15") && m.ends_with('\0')), "{want:?}");
        assert_eq!(messages("ferrocorn", kind, &extra), want, "{kind}");
    }
    // Without a prefix, the process name (`probe_app:app`, `:` made `.`).
    assert_eq!(messages("ferrocorn", "udp", &[]), messages("gunicorn", "udp", &[]));
}
