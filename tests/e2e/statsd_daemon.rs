//! StatsD into a real daemon: Etsy's reference `statsd` (the npm package, installed by
//! scripts/setup-peers.sh into target/peers), started by the test with its own config.
//! After the same requests to gunicorn 27 and to ferrocorn, the daemon's counters, timer
//! sample counts and gauges under each server's prefix must be the same, and it must have
//! seen no bad line.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::Signal;
use support::{TempDir, get, oracle_venv, repo_root, start_installed, wait_until};

/// A statsd daemon of the test's own, stopped (by its pid) on drop.
struct Daemon {
    child: Child,
    _dir: TempDir,
    port: u16,
    mgmt: u16,
}

impl Daemon {
    fn start() -> Daemon {
        let stats = repo_root().join("target/peers/node_modules/statsd/stats.js");
        assert!(stats.exists(), "the statsd daemon is missing: run scripts/setup-peers.sh");
        let dir = TempDir::new("statsd-daemon");
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mgmt = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // No backend and no flush during the test: the management interface shows what
        // the daemon has aggregated.
        let conf = format!(
            "{{ port: {port}, address: \"127.0.0.1\", mgmt_port: {mgmt}, \
             mgmt_address: \"127.0.0.1\", flushInterval: 3600000, backends: [] }}\n"
        );
        std::fs::write(dir.path("config.js"), conf).unwrap();
        let child = Command::new("node")
            .arg(&stats)
            .arg(dir.path("config.js"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let d = Daemon { child, _dir: dir, port, mgmt };
        wait_until(30, "the statsd daemon", || d.ask("counters").is_some());
        d
    }

    /// A management command's answer (up to its `END` line).
    fn ask(&self, command: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.mgmt)).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
        writeln!(s, "{command}").ok()?;
        let mut out = String::new();
        for line in BufReader::new(s).lines() {
            let line = line.ok()?;
            if line == "END" {
                return Some(out);
            }
            out.push_str(&line);
            out.push('\n');
        }
        (!out.is_empty()).then_some(out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The values of a dump: the text after each quoted name up to the next name.
fn parse(dump: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dump;
    while let Some(start) = rest.find('\'') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('\'') else { break };
        let name = &after[..end];
        let tail = &after[end + 1..];
        let next = tail.find('\'').unwrap_or(tail.len());
        let value = tail[..next].trim_start_matches(':').trim().trim_end_matches([',', '}']).trim();
        if let Some(n) = name.strip_prefix(prefix) {
            // A timer's samples: only how many (durations differ).
            let value = match value.strip_prefix('[') {
                Some(list) => format!("{} samples", list.split(',').count()),
                None => value.to_owned(),
            };
            out.push(format!("PREFIX{n} {value}"));
        }
        rest = &tail[next..];
    }
    out.sort();
    out
}

/// What the daemon aggregated for `program` (prefix = the program's name).
fn aggregated(daemon: &Daemon, program: &str) -> Vec<String> {
    let host = format!("127.0.0.1:{}", daemon.port);
    let args = ["wsgi_app:app", "-b", "127.0.0.1:0", "-w", "2"];
    let mut args = args.to_vec();
    args.extend(["--statsd-host", &host, "--statsd-prefix", program]);
    let mut s = start_installed(program, &args, &[]);
    let addr = s.addr();
    s.wait_booted(2);
    for _ in 0..3 {
        assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
    }
    assert!(get(addr, "/boom").starts_with("HTTP/1.1 500"));
    let requests = format!("'{program}.gunicorn.requests': 4");
    wait_until(20, "the four requests counted", || {
        daemon.ask("counters").is_some_and(|c| c.contains(&requests))
    });
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(20).success(), "{program}: {}", s.log());
    let mut all = Vec::new();
    for command in ["counters", "timers", "gauges"] {
        let dump = daemon.ask(command).unwrap_or_default();
        all.extend(
            parse(&dump, &format!("{program}.")).into_iter().map(|e| format!("{command} {e}")),
        );
    }
    all
}

#[test]
fn a_statsd_daemon_aggregates_the_same_metrics() {
    oracle_venv();
    let daemon = Daemon::start();
    let want = aggregated(&daemon, "gunicorn");
    for e in [
        "counters PREFIXgunicorn.requests 4",
        "counters PREFIXgunicorn.request.status.200 3",
        "counters PREFIXgunicorn.request.status.500 1",
        "counters PREFIXgunicorn.log.exception 1",
        "timers PREFIXgunicorn.request.duration 4 samples",
        "gauges PREFIXgunicorn.workers 2",
    ] {
        assert!(want.iter().any(|w| w == e), "{e}: {want:#?}");
    }
    assert_eq!(aggregated(&daemon, "ferrocorn"), want);
    let counters = daemon.ask("counters").unwrap();
    assert!(counters.contains("'statsd.bad_lines_seen': 0"), "{counters}");
}
