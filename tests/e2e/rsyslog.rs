//! Syslog into a real rsyslogd (Debian's package, installed by scripts/setup-peers.sh),
//! started by the test unprivileged-style in a temporary directory with its own config:
//! UDP, TCP (NUL-delimited frames, as gunicorn's handler sends them) and a unix datagram
//! socket. What rsyslog files (facility, severity, tag, message) must be the same for
//! gunicorn 27 and ferrocorn.

use crate::support;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::Signal;
use support::{TempDir, get, oracle_venv, start_installed, wait_until};

/// An rsyslogd of the test's own, stopped (by its pid) on drop.
struct Rsyslog {
    child: Child,
    dir: TempDir,
    udp: u16,
    tcp: u16,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let bin = Path::new("/usr/sbin/rsyslogd");
        assert!(bin.exists(), "rsyslogd is missing: run scripts/setup-peers.sh");
        let dir = TempDir::new("rsyslog");
        // Free ports, given back for rsyslogd to bind.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.0.display();
        let conf = format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imudp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\")\n\
             module(load=\"imtcp\" AddtlFrameDelimiter=\"0\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/log.sock\")\n\
             template(name=\"probe\" type=\"string\" \
             string=\"%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{d}/messages\" template=\"probe\")\n"
        );
        std::fs::write(dir.path("rsyslog.conf"), conf).unwrap();
        let child = Command::new(bin)
            .args(["-n", "-f"])
            .arg(dir.path("rsyslog.conf"))
            .arg("-i")
            .arg(dir.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        let r = Rsyslog { child, dir, udp, tcp };
        // Ready when a message of ours went all the way to the file, on every input.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        wait_until(30, "rsyslogd's inputs", || {
            let _ = probe.send_to(b"<14>ready: udp", ("127.0.0.1", udp));
            TcpStream::connect(("127.0.0.1", tcp)).is_ok()
                && r.dir.path("log.sock").exists()
                && r.messages().contains("ready: udp")
        });
        r
    }

    fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path("messages")).unwrap_or_default()
    }

    fn address(&self, transport: &str) -> String {
        match transport {
            "udp" => format!("udp://127.0.0.1:{}", self.udp),
            "tcp" => format!("tcp://127.0.0.1:{}", self.tcp),
            _ => format!("unix://{}#dgram", self.dir.path("log.sock").display()),
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What rsyslog filed for `program` over `transport`, from start to a TERM: the lines of
/// its tag, numbers blanked, the prefix written as PREFIX, gunicorn's lines about itself
/// (its name, its control socket) left out, sorted (master and worker send concurrently).
fn filed(rsyslog: &Rsyslog, program: &str, transport: &str, extra: &[&str]) -> Vec<String> {
    let prefix = format!("{program}-{transport}-{}", extra.len());
    let to = rsyslog.address(transport);
    let mut args = vec![
        "wsgi_app:app",
        "-b",
        "127.0.0.1:0",
        "-w",
        "1",
        "--log-syslog",
        "--log-syslog-to",
        &to,
        "--log-syslog-prefix",
        &prefix,
        "--log-syslog-facility",
        "local3",
    ];
    args.extend_from_slice(extra);
    let mut s = start_installed(program, &args, &[]);
    let addr = s.addr();
    s.wait_booted(1);
    assert!(get(addr, "/?from=rsyslog").starts_with("HTTP/1.1 200"));
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(20).success(), "{program}: {}", s.log());
    let tag = format!("gunicorn.{prefix}.");
    let done = format!("{tag}error: ");
    wait_until(20, "the last message filed", || {
        rsyslog
            .messages()
            .lines()
            .any(|l| l.contains(&done) && l.ends_with("Shutting down: Master"))
    });
    let mut lines: Vec<String> = rsyslog
        .messages()
        .lines()
        .filter(|l| l.contains(&tag))
        .filter(|l| !l.contains("] Starting ") && !l.contains("Control socket"))
        .map(|l| {
            l.replace(&prefix, "PREFIX")
                .chars()
                .map(|c| if c.is_ascii_digit() { 'N' } else { c })
                .collect()
        })
        .collect();
    lines.sort();
    // The facility asked for (local3; blanked to localN with the other digits).
    assert!(rsyslog.messages().lines().any(|l| l.starts_with("local3.info ") && l.contains(&tag)));
    lines
}

#[test]
fn rsyslog_files_ferrocorns_messages_as_gunicorns() {
    oracle_venv();
    let rsyslog = Rsyslog::start();
    // Also with Python logging (a logging config that leaves gunicorn's loggers alone: one
    // that names them replaces their handlers, the syslog one too): then Python's
    // SysLogHandler sends, as in gunicorn.
    let json = rsyslog.dir.path("log.json");
    std::fs::write(&json, "{\"version\": 1, \"loggers\": {}}\n").unwrap();
    let variants = [vec![], vec!["--log-config-json", json.to_str().unwrap()]];
    for (transport, extra) in
        ["udp", "tcp", "unix"].iter().flat_map(|t| variants.iter().map(move |v| (*t, v)))
    {
        let want = filed(&rsyslog, "gunicorn", transport, extra);
        assert!(
            want.iter().any(|l| l.starts_with("localN.info gunicorn.PREFIX.access: [N")
                && l.contains("\"GET /?from=rsyslog HTTP/N.N\" NNN")),
            "{transport}: {want:#?}"
        );
        assert!(
            want.iter().any(|l| l.starts_with("localN.info gunicorn.PREFIX.error: [N")
                && l.contains("] Booting worker with pid: N")),
            "{transport}: {want:#?}"
        );
        assert_eq!(filed(&rsyslog, "ferrocorn", transport, extra), want, "{transport} {extra:?}");
    }
}
