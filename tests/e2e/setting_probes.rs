//! Every setting ferrocorn accepts does what gunicorn does with it, or stops the start.
//!
//! Each probe sets one setting (with what it needs beside it) the way a user would and
//! looks for its effect from outside: an HTTPS answer, a datagram at a receiver, a line in
//! a file, new code after an edit, trace lines in the output. gunicorn 27 runs each probe
//! first and must show the effect, so a probe that cannot see it fails there. ferrocorn
//! must then show the same effect, or refuse to start with one `Error:` line naming the
//! setting and exit 1. A setting that is accepted and then ignored fails its probe.

use crate::support;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Client, Server, TempDir, apps, oracle_venv, venv};

/// What a probe has to work with.
struct Ctx {
    dir: TempDir,
    port: u16,
    udp: UdpSocket,
    /// Every datagram the receiver got so far.
    datagrams: std::cell::RefCell<Vec<String>>,
}

impl Ctx {
    fn path(&self, name: &str) -> String {
        self.dir.path(name).to_str().unwrap().to_owned()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn udp_addr(&self) -> String {
        self.udp.local_addr().unwrap().to_string()
    }

    /// Waits for a datagram that satisfies `pred`.
    fn datagram(&self, what: &str, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 65536];
        loop {
            if let Some(d) = self.datagrams.borrow().iter().find(|d| pred(d)) {
                return Ok(d.clone());
            }
            if Instant::now() > end {
                return Err(format!("no datagram {what}; got {:?}", self.datagrams.borrow()));
            }
            if let Ok(n) = self.udp.recv(&mut buf) {
                self.datagrams.borrow_mut().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    /// The TLS client (`apps/probe_client.py`), its one line of output.
    fn tls(&self, cmd: &str, args: &[&str]) -> String {
        let out = Command::new(venv().join("bin/python"))
            .arg(apps().join("probe_client.py"))
            .arg(cmd)
            .arg(self.port.to_string())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
            + &String::from_utf8_lossy(&out.stderr)
    }

    /// A plain `GET path`: the body, or `Err` when no whole answer came.
    fn get(&self, path: &str) -> Result<String, String> {
        let mut c = Client::try_connect(self.addr())?;
        c.read_timeout(Duration::from_secs(20));
        c.try_send(
            format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n").as_bytes(),
        )?;
        let (out, err) = c.read_to_end();
        if let Some(e) = err {
            return Err(e.to_string());
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Ok(body.to_owned()),
            _ => Err(format!("no answer: {text:?}")),
        }
    }

    /// Polls `GET /` until the body is `want`.
    fn until_body(&self, want: &str) -> Result<(), String> {
        self.edit_until(None, want)
    }

    /// Polls `GET /` until the body is `want`, saving `edit` (a file and its new text)
    /// again every 2 s meanwhile, as a developer would: a watcher that took its first
    /// look at the files after the first save (gunicorn's polling reloader starts with
    /// the worker) sees the next one.
    fn edit_until(&self, edit: Option<(&str, &str)>, want: &str) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(60);
        let mut saved = Instant::now() - Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < end {
            if let Some((name, text)) = edit.filter(|_| saved.elapsed() >= Duration::from_secs(2)) {
                self.edit(name, text);
                saved = Instant::now();
            }
            match self.get("/") {
                Ok(b) if b == want => return Ok(()),
                Ok(b) => last = b,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the answer never became {want:?}; last: {last:?}"))
    }

    /// Waits until the file `name` contains `needle`.
    fn file_has(&self, name: &str, needle: &str) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(self.dir.path(name)).unwrap_or_default();
            if text.contains(needle) {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!("{name} never held {needle:?}: {text:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Rewrites a file of the probe directory in place, as an editor that saves over the
    /// file does (gunicorn's inotify engine misses a replacement by rename).
    fn edit(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path(name), text).unwrap();
    }
}

/// One probe.
struct Probe {
    /// The setting it is about.
    setting: &'static str,
    /// Command-line arguments besides the app, the bind address and `--chdir`.
    args: fn(&Ctx) -> Vec<String>,
    /// The config file (`-c`), when the probe needs one.
    config: Option<fn(&Ctx) -> String>,
    /// Looks for the effect on the running server.
    check: fn(&Ctx, &Server) -> Result<(), String>,
}

enum Outcome {
    /// It exited before it listened: its exit code and output.
    Refused(Option<i32>, String),
    /// It served: what the check found, and the output.
    Served(Result<(), String>, String),
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn openssl(dir: &Path, name: &str, cn: &str) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-keyout", &format!("{name}_key.pem"), "-out", &format!("{name}_cert.pem")])
        .output()
        .unwrap();
    assert!(st.status.success(), "openssl: {}", String::from_utf8_lossy(&st.stderr));
}

fn run(program: &str, p: &Probe) -> Outcome {
    let dir = TempDir::new(&format!("probe-{}-{program}", p.setting));
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    std::fs::write(dir.path("extra.txt"), "a\n").unwrap();
    for (name, cn) in [("server", "probe"), ("ctx", "probe-ctx"), ("client", "probe-client")] {
        openssl(&dir.0, name, cn);
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let ctx = Ctx { dir, port: free_port(), udp, datagrams: Default::default() };
    let mut args: Vec<String> = vec![
        "probe_app:app".into(),
        "--chdir".into(),
        ctx.path(""),
        "-b".into(),
        format!("127.0.0.1:{}", ctx.port),
        "-w".into(),
        "1".into(),
    ];
    args.extend((p.args)(&ctx));
    if let Some(config) = p.config {
        std::fs::write(ctx.dir.path("probe.conf.py"), config(&ctx)).unwrap();
        args.extend(["-c".into(), ctx.path("probe.conf.py")]);
    }
    let mut cmd = Command::new(venv().join("bin").join(program));
    cmd.args(&args)
        .current_dir(&ctx.dir.0)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let mut s = Server::start_command_merged(cmd);
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if s.exited().is_some() {
            let code = s.wait_exit(20).code();
            return Outcome::Refused(code, s.log());
        }
        if TcpStream::connect(ctx.addr()).is_ok() {
            break;
        }
        assert!(Instant::now() < end, "{program} neither listened nor exited:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let found = (p.check)(&ctx, &s);
    s.signal(Signal::SIGTERM);
    s.wait_exit_only(60);
    Outcome::Served(found, s.log())
}

fn probe(p: Probe) {
    oracle_venv();
    match run("gunicorn", &p) {
        Outcome::Served(Ok(()), _) => {}
        Outcome::Served(Err(e), log) => {
            panic!("the probe of {} sees no effect under gunicorn 27: {e}\n{log}", p.setting)
        }
        Outcome::Refused(code, log) => panic!("gunicorn 27 refused ({code:?}):\n{log}"),
    }
    match run("ferrocorn", &p) {
        Outcome::Served(Ok(()), _) => {}
        Outcome::Served(Err(e), log) => {
            panic!("ferrocorn accepted {} and its effect is missing: {e}\n{log}", p.setting)
        }
        Outcome::Refused(code, log) => {
            assert_eq!(code, Some(1), "{log}");
            let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("Error:")).collect();
            assert_eq!(errors.len(), 1, "one Error: line: {log}");
            assert!(errors[0].contains(p.setting), "the error names {}: {log}", p.setting);
        }
    }
}

// ---- TLS ----

fn tls_args(c: &Ctx) -> Vec<String> {
    vec![
        "--certfile".into(),
        c.path("server_cert.pem"),
        "--keyfile".into(),
        c.path("server_key.pem"),
    ]
}

fn https_ok(c: &Ctx, _: &Server) -> Result<(), String> {
    let got = c.tls("get", &[]);
    if got.starts_with("200 v1 a") { Ok(()) } else { Err(format!("HTTPS request: {got}")) }
}

fn client_cert_args(c: &Ctx) -> Vec<String> {
    let mut a = tls_args(c);
    a.extend(["--ca-certs".into(), c.path("client_cert.pem"), "--cert-reqs".into(), "2".into()]);
    a
}

fn client_cert_required(c: &Ctx, _: &Server) -> Result<(), String> {
    let without = c.tls("get", &[]);
    if !without.starts_with("handshake-failed") {
        return Err(format!("served a client without a certificate: {without}"));
    }
    let (cert, key) = (c.path("client_cert.pem"), c.path("client_key.pem"));
    let with = c.tls("get", &["--cert", &cert, "--key", &key]);
    if with.starts_with("200 v1 a") { Ok(()) } else { Err(format!("with a certificate: {with}")) }
}

#[test]
fn certfile() {
    probe(Probe { setting: "certfile", args: tls_args, config: None, check: https_ok });
}

#[test]
fn keyfile() {
    probe(Probe { setting: "keyfile", args: tls_args, config: None, check: https_ok });
}

#[test]
fn ca_certs() {
    probe(Probe {
        setting: "ca_certs",
        args: client_cert_args,
        config: None,
        check: client_cert_required,
    });
}

#[test]
fn cert_reqs() {
    probe(Probe {
        setting: "cert_reqs",
        args: client_cert_args,
        config: None,
        check: client_cert_required,
    });
}

#[test]
fn ciphers() {
    probe(Probe {
        setting: "ciphers",
        args: |c| {
            let mut a = tls_args(c);
            a.extend(["--ciphers".into(), "ECDHE-ECDSA-AES256-GCM-SHA384".into()]);
            a
        },
        config: None,
        check: |c, _| {
            let other = c.tls("get", &["--tls12-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
            if !other.starts_with("handshake-failed") {
                return Err(format!("a cipher outside the list was taken: {other}"));
            }
            let listed = c.tls("get", &["--tls12-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"]);
            if listed.starts_with("200 ") { Ok(()) } else { Err(format!("listed: {listed}")) }
        },
    });
}

#[test]
fn suppress_ragged_eofs() {
    probe(Probe {
        setting: "suppress_ragged_eofs",
        args: tls_args,
        config: Some(|_| "suppress_ragged_eofs = False\n".into()),
        check: |c, _| {
            let sent = c.tls("ragged", &[]);
            if sent != "sent" {
                return Err(format!("client: {sent}"));
            }
            // With ragged EOFs not suppressed, the body read fails instead of ending short.
            c.file_has("body.txt", "error:")
        },
    });
}

#[test]
fn do_handshake_on_connect() {
    probe(Probe {
        setting: "do_handshake_on_connect",
        args: |c| {
            let mut a = tls_args(c);
            a.push("--do-handshake-on-connect".into());
            a
        },
        config: None,
        check: https_ok,
    });
}

#[test]
fn ssl_context() {
    probe(Probe {
        setting: "ssl_context",
        args: tls_args,
        config: Some(|c| {
            format!(
                "def ssl_context(conf, default_ssl_context_factory):\n    \
                 ctx = default_ssl_context_factory()\n    \
                 ctx.load_cert_chain({:?}, {:?})\n    \
                 return ctx\n",
                c.path("ctx_cert.pem"),
                c.path("ctx_key.pem")
            )
        }),
        // Verification passes only if the hook's certificate is the one served.
        check: |c, _| {
            let got = c.tls("get", &["--verify", &c.path("ctx_cert.pem")]);
            if got.starts_with("200 v1 a") { Ok(()) } else { Err(format!("HTTPS: {got}")) }
        },
    });
}

// ---- StatsD ----

fn statsd_args(c: &Ctx) -> Vec<String> {
    vec!["--statsd-host".into(), c.udp_addr()]
}

fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|s| (*s).to_owned()));
    a
}

fn statsd_datagram(c: &Ctx, needle: &str) -> Result<(), String> {
    c.get("/")?;
    c.datagram(&format!("holding {needle:?}"), |d| d.contains(needle)).map(|_| ())
}

#[test]
fn statsd_host() {
    probe(Probe {
        setting: "statsd_host",
        args: statsd_args,
        config: None,
        check: |c, _| statsd_datagram(c, "gunicorn.requests:1|c"),
    });
}

#[test]
fn statsd_prefix() {
    probe(Probe {
        setting: "statsd_prefix",
        args: |c| with(statsd_args(c), &["--statsd-prefix", "probe"]),
        config: None,
        check: |c, _| statsd_datagram(c, "probe.gunicorn.requests:1|c"),
    });
}

#[test]
fn dogstatsd_tags() {
    probe(Probe {
        setting: "dogstatsd_tags",
        args: |c| with(statsd_args(c), &["--dogstatsd-tags", "env:probe"]),
        config: None,
        check: |c, _| statsd_datagram(c, "|#env:probe"),
    });
}

// ---- syslog ----

fn syslog_args(c: &Ctx) -> Vec<String> {
    vec!["--log-syslog".into(), "--log-syslog-to".into(), format!("udp://{}", c.udp_addr())]
}

fn syslog_booting(c: &Ctx, _: &Server) -> Result<(), String> {
    c.datagram("saying Booting worker", |d| d.contains("Booting worker")).map(|_| ())
}

#[test]
fn syslog() {
    probe(Probe { setting: "syslog", args: syslog_args, config: None, check: syslog_booting });
}

#[test]
fn syslog_addr() {
    probe(Probe { setting: "syslog_addr", args: syslog_args, config: None, check: syslog_booting });
}

#[test]
fn syslog_prefix() {
    probe(Probe {
        setting: "syslog_prefix",
        args: |c| with(syslog_args(c), &["--log-syslog-prefix", "probepfx"]),
        config: None,
        check: |c, _| c.datagram("with the prefix", |d| d.contains("probepfx")).map(|_| ()),
    });
}

#[test]
fn syslog_facility() {
    probe(Probe {
        setting: "syslog_facility",
        args: |c| with(syslog_args(c), &["--log-syslog-facility", "local3"]),
        config: None,
        // The priority is facility * 8 + severity; local3 is facility 19.
        check: |c, _| {
            c.datagram("from facility local3", |d| {
                let pri = d.strip_prefix('<').and_then(|r| r.split_once('>')).map(|(p, _)| p);
                pri.and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| p / 8 == 19)
            })
            .map(|_| ())
        },
    });
}

#[test]
fn disable_redirect_access_to_syslog() {
    probe(Probe {
        setting: "disable_redirect_access_to_syslog",
        args: |c| {
            let log = c.path("access.log");
            with(syslog_args(c), &["--access-logfile", &log, "--disable-redirect-access-to-syslog"])
        },
        config: None,
        check: |c, s| {
            c.get("/probe-access")?;
            c.file_has("access.log", "/probe-access")?;
            // The worker's own last line comes after any access line it sent.
            s.signal(Signal::SIGTERM);
            c.datagram("saying Worker exiting", |d| d.contains("Worker exiting"))?;
            match c.datagrams.borrow().iter().find(|d| d.contains("/probe-access")) {
                Some(d) => Err(format!("the access line went to syslog: {d}")),
                None => Ok(()),
            }
        },
    });
}

// ---- logging ----

const LOG_DICT: &str = r#"{"version": 1,
 "formatters": {"probe": {"format": "probe %(message)s"}},
 "handlers": {"file": {"class": "logging.FileHandler", "formatter": "probe", "filename": FILE}},
 "root": {"level": "INFO", "handlers": []},
 "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["file"], "propagate": false}}}"#;

fn log_dict(file: &str) -> String {
    LOG_DICT.replace("FILE", &format!("{file:?}"))
}

#[test]
fn capture_output() {
    probe(Probe {
        setting: "capture_output",
        args: |c| vec!["--capture-output".into(), "--error-logfile".into(), c.path("error.log")],
        config: None,
        check: |c, _| {
            c.get("/print")?;
            c.file_has("error.log", "probe-printed-line")
        },
    });
}

#[test]
fn logger_class() {
    probe(Probe {
        setting: "logger_class",
        args: |_| vec!["--logger-class".into(), "probe_logger.ProbeLogger".into()],
        // The config file writes the logger module next to the app.
        config: Some(|c| {
            let module = format!(
                "from gunicorn.glogging import Logger\n\n\
                 class ProbeLogger(Logger):\n    \
                 def access(self, resp, req, environ, request_time):\n        \
                 with open({:?}, 'a') as f:\n            \
                 f.write(environ['PATH_INFO'] + '\\n')\n",
                c.path("custom-access.txt")
            );
            std::fs::write(c.dir.path("probe_logger.py"), module).unwrap();
            String::new()
        }),
        check: |c, _| {
            c.get("/probe-logger")?;
            c.file_has("custom-access.txt", "/probe-logger")
        },
    });
}

#[test]
fn logconfig() {
    probe(Probe {
        setting: "logconfig",
        args: |c| {
            let ini = format!(
                "[loggers]\nkeys=root,error\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=probe\n\n\
                 [logger_root]\nlevel=INFO\nhandlers=\n\n\
                 [logger_error]\nlevel=INFO\nhandlers=file\npropagate=0\nqualname=gunicorn.error\n\n\
                 [handler_file]\nclass=FileHandler\nformatter=probe\nargs=({:?},)\n\n\
                 [formatter_probe]\nformat=probe %(message)s\n",
                c.path("logconfig.log")
            );
            std::fs::write(c.dir.path("log.ini"), ini).unwrap();
            vec!["--log-config".into(), c.path("log.ini")]
        },
        config: None,
        check: |c, _| c.file_has("logconfig.log", "probe Listening at: "),
    });
}

#[test]
fn logconfig_dict() {
    probe(Probe {
        setting: "logconfig_dict",
        args: |_| vec![],
        config: Some(|c| {
            format!("logconfig_dict = {}\n", log_dict(&c.path("dict.log")))
                .replace("false", "False")
        }),
        check: |c, _| c.file_has("dict.log", "probe Listening at: "),
    });
}

#[test]
fn logconfig_json() {
    probe(Probe {
        setting: "logconfig_json",
        args: |c| {
            std::fs::write(c.dir.path("log.json"), log_dict(&c.path("json.log"))).unwrap();
            vec!["--log-config-json".into(), c.path("log.json")]
        },
        config: None,
        check: |c, _| c.file_has("json.log", "probe Listening at: "),
    });
}

// ---- development ----

fn edit_module(c: &Ctx, _: &Server) -> Result<(), String> {
    c.until_body("v1 a")?;
    let code = std::fs::read_to_string(c.dir.path("probe_app.py")).unwrap();
    let edited = code.replace("VERSION = \"v1\"", "VERSION = \"v2\"");
    c.edit_until(Some(("probe_app.py", &edited)), "v2 a")
}

#[test]
fn reload() {
    probe(Probe {
        setting: "reload",
        args: |_| vec!["--reload".into()],
        config: None,
        check: edit_module,
    });
}

#[test]
fn reload_engine() {
    probe(Probe {
        setting: "reload_engine",
        args: |_| vec!["--reload".into(), "--reload-engine".into(), "poll".into()],
        config: None,
        check: edit_module,
    });
}

#[test]
fn reload_extra_files() {
    probe(Probe {
        setting: "reload_extra_files",
        args: |c| vec!["--reload".into(), "--reload-extra-file".into(), c.path("extra.txt")],
        config: None,
        check: |c, _| {
            c.until_body("v1 a")?;
            c.edit_until(Some(("extra.txt", "b\n")), "v1 b")
        },
    });
}

#[test]
fn spew() {
    probe(Probe {
        setting: "spew",
        args: |_| vec!["--spew".into()],
        config: None,
        // gunicorn's trace lines: `MODULE:LINE: source`.
        check: |c, s| {
            c.get("/")?;
            let end = Instant::now() + Duration::from_secs(120);
            // The trace is megabytes a second under gunicorn: each look reads what is new.
            let mut seen = 0;
            loop {
                let log = s.log();
                let from = log[..seen.min(log.len())].rfind('\n').map_or(0, |i| i + 1);
                seen = log.len();
                let traced = log[from..].lines().any(|l| {
                    // The master's and the worker's trace share the output: a line of one
                    // can start inside a line of the other.
                    let traced = l.find("probe_app:").map(|i| &l[i + "probe_app:".len()..]);
                    traced.and_then(|r| r.split_once(": ")).is_some_and(|(n, src)| {
                        n.parse::<u32>().is_ok() && src.contains("path = environ")
                    })
                });
                if traced {
                    return Ok(());
                }
                if Instant::now() > end {
                    return Err("no trace line of the app's code".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        },
    });
}

// ---- refused from every layer, and on HUP ----

/// Each probed setting with a value for a config file and, when it has a flag, for
/// `GUNICORN_CMD_ARGS` (files that must exist are the test apps').
const LAYERS: &[(&str, &str, Option<&str>)] = &[
    ("certfile", "certfile = 'cert.pem'", Some("--certfile cert.pem")),
    ("keyfile", "keyfile = 'key.pem'", Some("--keyfile key.pem")),
    ("ca_certs", "ca_certs = 'ca.pem'", Some("--ca-certs ca.pem")),
    ("cert_reqs", "cert_reqs = 2", Some("--cert-reqs 2")),
    ("ciphers", "ciphers = 'ECDHE+AESGCM'", Some("--ciphers ECDHE+AESGCM")),
    ("suppress_ragged_eofs", "suppress_ragged_eofs = False", None),
    (
        "do_handshake_on_connect",
        "do_handshake_on_connect = True",
        Some("--do-handshake-on-connect"),
    ),
    ("ssl_context", "def ssl_context(conf, factory):\n    return factory()", None),
    ("statsd_host", "statsd_host = '127.0.0.1:9'", Some("--statsd-host 127.0.0.1:9")),
    ("statsd_prefix", "statsd_prefix = 'app'", Some("--statsd-prefix app")),
    ("dogstatsd_tags", "dogstatsd_tags = 'env:x'", Some("--dogstatsd-tags env:x")),
    ("syslog", "syslog = True", Some("--log-syslog")),
    ("syslog_addr", "syslog_addr = 'udp://127.0.0.1:9'", Some("--log-syslog-to udp://127.0.0.1:9")),
    ("syslog_prefix", "syslog_prefix = 'app'", Some("--log-syslog-prefix app")),
    ("syslog_facility", "syslog_facility = 'local3'", Some("--log-syslog-facility local3")),
    (
        "disable_redirect_access_to_syslog",
        "disable_redirect_access_to_syslog = True",
        Some("--disable-redirect-access-to-syslog"),
    ),
    ("capture_output", "capture_output = True", Some("--capture-output")),
    ("logger_class", "logger_class = 'probe_logger.Logger'", Some("--logger-class x.Logger")),
    ("logconfig", "logconfig = 'log.ini'", Some("--log-config log.ini")),
    ("logconfig_dict", "logconfig_dict = {'version': 1}", None),
    ("logconfig_json", "logconfig_json = 'log.json'", Some("--log-config-json log.json")),
    ("reload", "reload = True", Some("--reload")),
    ("reload_engine", "reload_engine = 'poll'", Some("--reload-engine poll")),
    (
        "reload_extra_files",
        "reload_extra_files = ['probe_app.py']",
        Some("--reload-extra-file probe_app.py"),
    ),
    ("spew", "spew = True", Some("--spew")),
];

/// Runs the installed ferrocorn to its end: (exit code, stderr).
fn ferrocorn_once(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(venv().join("bin/ferrocorn"))
        .args(args)
        .current_dir(apps())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_refused(name: &str, how: &str, (code, err): (Option<i32>, String)) {
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("Error:")).collect();
    assert!(
        code == Some(1) && errors.len() == 1 && errors[0].contains(name),
        "{name} set {how} must be refused with one Error: line naming it, exit 1: {code:?} {err}"
    );
}

#[test]
fn settings_not_supported_yet_are_refused_from_every_layer() {
    // Every probed setting is in the table, and the probes above cover exactly these.
    let probed: Vec<&str> = LAYERS.iter().map(|l| l.0).collect();
    assert_eq!(probed.len(), 25);
    let dir = TempDir::new("refused-layers");
    for &(name, config, flags) in LAYERS {
        let setting = ferrocorn::settings::lookup(name).expect(name);
        // Settings that serve (or are accepted as harmless) are their probe's business;
        // the rest must be refused.
        if setting.support != ferrocorn::settings::Support::Unsupported {
            continue;
        }
        let conf = dir.path(&format!("{name}.conf.py"));
        std::fs::write(&conf, format!("{config}\n")).unwrap();
        assert_refused(
            name,
            "in a config file",
            ferrocorn_once(&["probe_app:app", "-c", conf.to_str().unwrap()], &[]),
        );
        if let Some(flags) = flags {
            assert_refused(
                name,
                "in GUNICORN_CMD_ARGS",
                ferrocorn_once(&["probe_app:app"], &[("GUNICORN_CMD_ARGS", flags)]),
            );
            let mut args = vec!["probe_app:app"];
            args.extend(flags.split(' '));
            assert_refused(name, "on the command line", ferrocorn_once(&args, &[]));
        }
    }
}

/// A master with a config file the test rewrites before each HUP.
struct Reloading {
    server: Server,
    conf: std::path::PathBuf,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Reloading {
    fn start(program: &str, config: &str) -> Reloading {
        let dir = TempDir::new(&format!("reload-{program}"));
        let conf = dir.path("reload.conf.py");
        std::fs::write(&conf, config).unwrap();
        let server = support::start_installed(
            program,
            &["probe_app:app", "-c", conf.to_str().unwrap(), "-b", "127.0.0.1:0", "-w", "1"],
            &[],
        );
        let addr = server.addr();
        Reloading { server, conf, addr, _dir: dir }
    }

    fn multithread(&self) -> String {
        support::body_of(&support::get(self.addr, "/multithread"))
    }

    /// Rewrites the config, sends HUP, and waits until `pred` holds for the log.
    fn hup(&self, config: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        std::fs::write(&self.conf, config).unwrap();
        self.server.signal(Signal::SIGHUP);
        self.server.wait_log(30, what, pred)
    }
}

#[test]
fn a_hup_asking_for_what_ferrocorn_cannot_serve_is_refused_and_the_old_workers_keep_serving() {
    let r = Reloading::start("ferrocorn", "workers = 1\n");
    let worker = r.server.wait_booted(1)[0];
    assert_eq!(r.multithread(), "False");
    let failed = |l: &str| l.matches("Reload failed").count();
    let cases = [
        ("protocol = 'uwsgi'\n", "protocol"),
        ("certfile = 'cert.pem'\nkeyfile = 'key.pem'\n", "certfile"),
        ("worker_class = 'gevent'\n", "\"gevent\" is not supported by ferrocorn yet"),
        ("worker_class = 'myapp.workers.MySyncWorker'\n", "custom worker classes"),
    ];
    for (n, (config, named)) in cases.iter().enumerate() {
        let log = r.hup(config, &format!("reload {n} refused"), |l| failed(l) > n);
        let line = log.lines().filter(|l| l.contains("Reload failed")).nth(n).unwrap();
        assert!(
            line.contains("[ERROR] Reload failed, the running configuration is kept:")
                && line.contains(named),
            "{log}"
        );
        // The old worker still serves, with the old configuration.
        assert_eq!(r.multithread(), "False");
        assert_eq!(r.server.booted(), vec![worker], "{log}");
    }
    // A class ferrocorn has is taken: the new workers are threaded, as under gunicorn.
    let log = r.hup("worker_class = 'gthread'\nthreads = 2\n", "a new worker", |_| {
        r.server.booted().len() == 2
    });
    assert_eq!(failed(&log), cases.len(), "{log}");
    support::wait_until(30, "a threaded worker answering", || r.multithread() == "True");
}

/// `wsgi.multithread` as the app sees it under `program` with these arguments, or the
/// master's output when it did not serve.
fn multithread_under(program: &str, args: &[&str], config: Option<&str>) -> Result<String, String> {
    let dir = TempDir::new("worker-class");
    let mut all: Vec<String> =
        ["probe_app:app", "-b", "127.0.0.1:0", "-w", "1"].iter().map(|s| s.to_string()).collect();
    all.extend(args.iter().map(|s| s.to_string()));
    if let Some(config) = config {
        std::fs::write(dir.path("class.conf.py"), config).unwrap();
        all.extend(["-c".to_string(), dir.path("class.conf.py").to_str().unwrap().to_owned()]);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut s = support::start_installed(program, &all, &[]);
    let end = Instant::now() + Duration::from_secs(30);
    while !s.log().contains("Listening at: ") {
        if s.exited().is_some() {
            s.wait_exit(10);
            return Err(s.log());
        }
        assert!(Instant::now() < end, "{program} {args:?}: {}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(support::body_of(&support::get(s.addr(), "/multithread")))
}

#[test]
fn worker_classes_by_every_name_gunicorn_accepts() {
    oracle_venv();
    let sync = "from gunicorn.workers.sync import SyncWorker\nworker_class = SyncWorker\n";
    let threaded =
        "from gunicorn.workers.gthread import ThreadWorker\nworker_class = ThreadWorker\n";
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["-k", "sync"], None, "False"),
        (&["-k", "#sync"], None, "False"),
        (&["-k", "gunicorn.workers.sync.SyncWorker"], None, "False"),
        (&[], Some(sync), "False"),
        (&["-k", "gthread"], None, "True"),
        (&["-k", "gunicorn.workers.gthread.ThreadWorker"], None, "True"),
        (&[], Some(threaded), "True"),
        // gunicorn's rule for threads: the string `sync` or one ending in `SyncWorker`.
        (&["-k", "sync", "--threads", "2"], None, "True"),
        (&["-k", "gunicorn.workers.sync.SyncWorker", "--threads", "2"], None, "True"),
        (&["-k", "#sync", "--threads", "2"], None, "False"),
        (&[], Some(&format!("{sync}threads = 2\n")), "False"),
    ];
    // Each case under both servers, four at a time.
    for group in cases.chunks(2) {
        std::thread::scope(|scope| {
            for &(args, config, want) in group {
                for program in ["gunicorn", "ferrocorn"] {
                    scope.spawn(move || {
                        assert_eq!(
                            multithread_under(program, args, config).as_deref(),
                            Ok(want),
                            "{program} {args:?} {config:?}"
                        );
                    });
                }
            }
        });
    }
    // The entry points of earlier gunicorn releases: gunicorn 27.0.1's wheel registers no
    // `gunicorn.workers` entry points and refuses them; ferrocorn keeps them working.
    for (class, want) in [("egg:gunicorn#sync", "False"), ("egg:gunicorn#gthread", "True")] {
        let oracle = multithread_under("gunicorn", &["-k", class], None);
        assert!(oracle.as_ref().is_err_and(|e| e.contains("invalid or not found")), "{oracle:?}");
        assert_eq!(multithread_under("ferrocorn", &["-k", class], None).as_deref(), Ok(want));
    }
}

#[test]
fn other_worker_classes_are_refused_with_what_is_wrong() {
    let cases = [
        ("gevent", "worker class \"gevent\" is not supported by ferrocorn yet"),
        ("egg:gunicorn#tornado", "worker class \"tornado\" is not supported by ferrocorn yet"),
        // A user's own class is a Python subclass of a gunicorn worker: it cannot run
        // here, whatever its name ends with.
        ("myapp.workers.MySyncWorker", "custom worker classes cannot be loaded"),
        ("myapp.workers.ThreadWorker", "custom worker classes cannot be loaded"),
        ("egg:myapp#fast", "custom worker classes cannot be loaded"),
    ];
    for (class, want) in cases {
        let (code, err) = ferrocorn_once(&["probe_app:app", "-k", class], &[]);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("Error:")).collect();
        assert!(code == Some(1) && errors.len() == 1 && errors[0].contains(want), "{class}: {err}");
    }
    let config = "class MyWorker:\n    pass\n\nworker_class = MyWorker\n";
    let dir = TempDir::new("custom-class");
    std::fs::write(dir.path("c.py"), config).unwrap();
    let (code, err) =
        ferrocorn_once(&["probe_app:app", "-c", dir.path("c.py").to_str().unwrap()], &[]);
    assert!(code == Some(1) && err.contains("custom worker classes cannot be loaded"), "{err}");
}
