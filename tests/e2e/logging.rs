//! Logging settings through the installed command: StatsD metric lines against gunicorn 27
//! (the same `statsd_host`, `statsd_prefix`, `dogstatsd_tags`, requests and metric lines;
//! durations differ only in their value; ferrocorn batches a worker's request metrics,
//! several lines to a datagram), and `capture_output` across a log rotation.

use crate::support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::{TempDir, apps, get, oracle_venv, start_installed};

/// The datagrams `program` sends for three requests: the request metrics (durations
/// blanked) and the worker-count gauge, each sorted.
fn datagrams(program: &str, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let host = rx.local_addr().unwrap().to_string();
    let dir = TempDir::new(&format!("statsd-{program}"));
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    let mut args = vec!["probe_app:app", "--chdir", dir.0.to_str().unwrap(), "-b", "127.0.0.1:0"];
    args.extend(["-w", "2", "--statsd-host", &host]);
    args.extend_from_slice(extra);
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    for _ in 0..3 {
        assert!(get(addr, "/").ends_with("v1 -"));
    }
    let (mut requests, mut gauges) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 2048];
    while requests.len() < 9 || gauges.is_empty() {
        assert!(Instant::now() < end, "{program}: {requests:?} {gauges:?}\n{}", s.log());
        let Ok(n) = rx.recv(&mut buf) else { continue };
        // gunicorn sends a datagram per metric; ferrocorn batches a worker's request
        // metrics, one per line: the lines must be the same.
        for line in String::from_utf8_lossy(&buf[..n]).split('\n') {
            let line = line.to_owned();
            if line.contains("gunicorn.workers:") {
                gauges.push(line);
            } else if line.contains("gunicorn.request") {
                // The duration's value is the only thing allowed to differ.
                let blank = match line.split_once("request.duration:") {
                    Some((a, b)) => {
                        format!("{a}request.duration:X|{}", b.split_once('|').unwrap().1)
                    }
                    None => line,
                };
                requests.push(blank);
            }
        }
    }
    requests.sort();
    gauges.sort();
    (requests, gauges)
}

#[test]
fn statsd_datagrams_are_gunicorns() {
    oracle_venv();
    for extra in [&[][..], &["--statsd-prefix", "app", "--dogstatsd-tags", "env:test,team:web"][..]]
    {
        let want = datagrams("gunicorn", extra);
        assert_eq!(want.0.len(), 9, "{want:?}");
        assert_eq!(datagrams("ferrocorn", extra), want, "{extra:?}");
    }
}

#[test]
fn error_log_calls_are_counted() {
    // A request whose application raises: gunicorn counts it as `gunicorn.log.exception`.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let host = rx.local_addr().unwrap().to_string();
    for program in ["gunicorn", "ferrocorn"] {
        let s = start_installed(
            program,
            &["wsgi_app:app", "-b", "127.0.0.1:0", "-w", "1", "--statsd-host", &host],
            &[],
        );
        let r = get(s.addr(), "/boom");
        assert!(r.starts_with("HTTP/1.1 500"), "{program}: {r}");
        let end = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 2048];
        let mut seen = Vec::new();
        loop {
            assert!(Instant::now() < end, "{program}: {seen:?}");
            let Ok(n) = rx.recv(&mut buf) else { continue };
            let lines = String::from_utf8_lossy(&buf[..n]).into_owned();
            if lines.split('\n').any(|l| l == "gunicorn.log.exception:1|c|@1.0") {
                break;
            }
            seen.extend(lines.split('\n').map(str::to_owned));
        }
        assert!(!seen.iter().any(|l| l.starts_with("gunicorn.log.error")), "{program}: {seen:?}");
    }
}

#[test]
fn captured_output_follows_the_log_file_after_usr1() {
    // capture_output: what the app prints lands in the error log file; after logrotate
    // moves the file and USR1, in the new file (gunicorn's reopen_files dups it again).
    let dir = TempDir::new("capture-usr1");
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let log = dir.path("error.log");
    let s = start_installed(
        "ferrocorn",
        &[
            "probe_app:app",
            "--chdir",
            dir.0.to_str().unwrap(),
            "-b",
            &bind,
            "-w",
            "1",
            "--capture-output",
            "--error-logfile",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let addr: std::net::SocketAddr = bind.parse().unwrap();
    let has = |path: &std::path::Path, needle: &str| {
        std::fs::read_to_string(path).unwrap_or_default().contains(needle)
    };
    support::wait_until(30, "the worker booted", || has(&log, "Booting worker"));
    assert!(get(addr, "/print").ends_with("v1 -"));
    support::wait_until(30, "the print in the log file", || has(&log, "probe-printed-line"));
    let rotated = dir.path("error.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.signal(nix::sys::signal::Signal::SIGUSR1);
    // The worker reopens once the master passed USR1 on: prints go to the new file then.
    support::wait_until(30, "a print in the new file", || {
        let _ = get(addr, "/print");
        has(&log, "probe-printed-line")
    });
}
