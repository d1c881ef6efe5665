//! Python logging through the installed command, against gunicorn 27 on the same files:
//! `logconfig_dict` in a config file, `logconfig_json`, a `logconfig` ini and the logging
//! sections of a `--paste` ini send the error log and the access log to the handlers they
//! name (an access formatter that reads `record.args` as JSON, error lines in gunicorn's
//! format), with both worker classes; a config that drops gunicorn's root handler gets
//! gunicorn's error; a `logger_class` of the user's is called as gunicorn calls it, in the
//! master and in the worker; USR1 reopens the handler files after a rotation.

use crate::support;

use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use support::{Server, TempDir, apps, get, oracle_venv, start_installed, wait_until};

/// The access formatter: the fields gunicorn's access record carries in `record.args`
/// (the atoms) and its `msg` (the format), as one JSON object per line.
const JSON_FORMATTER: &str = r#"
import json
import logging

FIELDS = ["h", "l", "u", "r", "s", "m", "U", "q", "H", "b", "B", "f", "a",
          "{x-probe}i", "{content-type}o", "{path_info}e", "{missing}i"]

class AccessJson(logging.Formatter):
    def format(self, record):
        a = record.args
        out = {k: a[k] for k in FIELDS}
        out["logger"] = record.name
        out["level"] = record.levelname
        out["msg"] = record.msg
        out["D_is_int"] = isinstance(a["D"], int)
        out["t_shape"] = len(a["t"]) == 28
        # The worker's pid first, apart: it differs between the two servers.
        return "%d %s" % (record.process, json.dumps(out, sort_keys=True))
"#;

/// `logconfig_dict`: the error log to a file and to stderr (where the test reads
/// `Listening at`), the access log to a file as JSON.
fn log_dict(dir: &Path) -> String {
    format!(
        r#"{{
    "version": 1,
    "root": {{"level": "WARNING", "handlers": []}},
    "loggers": {{
        "gunicorn.error": {{"level": "INFO", "handlers": ["errfile", "errconsole"], "propagate": False}},
        "gunicorn.access": {{"level": "INFO", "handlers": ["accfile"], "propagate": False}},
    }},
    "handlers": {{
        "errfile": {{"class": "logging.FileHandler", "filename": "{d}/error.log", "formatter": "generic"}},
        "errconsole": {{"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "generic"}},
        "accfile": {{"class": "logging.FileHandler", "filename": "{d}/access.log", "formatter": "json"}},
    }},
    "formatters": {{
        "generic": {{"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                     "datefmt": "[%Y-%m-%d %H:%M:%S %z]"}},
        "json": {{"()": "jsonfmt.AccessJson"}},
    }},
}}"#,
        d = dir.display()
    )
}

/// The same configuration as a `fileConfig` ini (also the logging sections of a paste
/// ini).
fn log_ini(dir: &Path) -> String {
    format!(
        "[loggers]\nkeys=root,error,access\n\n\
         [handlers]\nkeys=errfile,errconsole,accfile\n\n\
         [formatters]\nkeys=generic,json\n\n\
         [logger_root]\nlevel=WARNING\nhandlers=\n\n\
         [logger_error]\nlevel=INFO\nhandlers=errfile,errconsole\npropagate=0\nqualname=gunicorn.error\n\n\
         [logger_access]\nlevel=INFO\nhandlers=accfile\npropagate=0\nqualname=gunicorn.access\n\n\
         [handler_errfile]\nclass=FileHandler\nformatter=generic\nargs=('{d}/error.log',)\n\n\
         [handler_errconsole]\nclass=StreamHandler\nformatter=generic\nargs=(sys.stderr,)\n\n\
         [handler_accfile]\nclass=FileHandler\nformatter=json\nargs=('{d}/access.log',)\n\n\
         [formatter_generic]\nformat=%(asctime)s [%(process)d] [%(levelname)s] %(message)s\n\
         datefmt=[%Y-%m-%d %H:%M:%S %z]\nclass=logging.Formatter\n\n\
         [formatter_json]\nclass=jsonfmt.AccessJson\n",
        d = dir.display()
    )
}

/// How the logging configuration is given.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Dict,
    Json,
    Ini,
    Paste,
}

/// A directory with the formatter module and the configuration of `kind`; the arguments
/// that start a server on it.
fn prepare(dir: &TempDir, kind: Kind) -> Vec<String> {
    std::fs::write(dir.path("jsonfmt.py"), JSON_FORMATTER).unwrap();
    let d = dir.0.to_str().unwrap().to_owned();
    let mut args = match kind {
        Kind::Dict => {
            let conf = dir.path("log.conf.py");
            std::fs::write(&conf, format!("logconfig_dict = {}\n", log_dict(&dir.0))).unwrap();
            vec!["wsgi_app:app".into(), "-c".into(), conf.to_str().unwrap().to_owned()]
        }
        Kind::Json => {
            // The same dictionary, as JSON.
            let json = python_json(&log_dict(&dir.0));
            std::fs::write(dir.path("log.json"), json).unwrap();
            vec!["wsgi_app:app".into(), "--log-config-json".into(), format!("{d}/log.json")]
        }
        Kind::Ini => {
            std::fs::write(dir.path("log.ini"), log_ini(&dir.0)).unwrap();
            vec!["wsgi_app:app".into(), "--log-config".into(), format!("{d}/log.ini")]
        }
        Kind::Paste => {
            let ini = format!(
                "[app:main]\nuse = call:pasteapp:factory\n\n[server:main]\nuse = egg:gunicorn#main\n\n{}",
                log_ini(&dir.0)
            );
            std::fs::write(dir.path("app.ini"), ini).unwrap();
            std::fs::write(
                dir.path("pasteapp.py"),
                "from wsgi_app import app\n\ndef factory(global_config, **local_conf):\n    return app\n",
            )
            .unwrap();
            vec!["--paste".into(), format!("{d}/app.ini")]
        }
    };
    args.extend(["--pythonpath".into(), d, "-b".into(), "127.0.0.1:0".into()]);
    args
}

/// A Python dict literal made into JSON by Python itself (`ast.literal_eval`).
fn python_json(literal: &str) -> String {
    let out = Command::new(oracle_venv().join("bin/python"))
        .args([
            "-c",
            "import ast, json, sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(literal.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `text` with each run of digits replaced by one `N`: pids, ports and times differ
/// between the two servers' runs, in value and in length.
fn blank_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !in_number {
            out.push('N');
        }
        in_number = c.is_ascii_digit();
    }
    out
}

/// An error-log file reduced to what must be the same under both servers: each record's
/// level and message with numbers blanked (times, pids, ports), the exception's last
/// line of a traceback; gunicorn's lines about itself (its name and version, its control
/// socket) left out. Every record line must have gunicorn's shape.
fn error_records(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            // [2026-11-23 23:43:19 +0000] [17564] [INFO] message
            let (stamp, rest) = rest.split_at(26);
            assert!(stamp.as_bytes()[4] == b'-' && stamp.ends_with(']'), "{line}");
            let rest = rest.strip_prefix(" [").unwrap_or_else(|| panic!("{line}"));
            let (pid, rest) = rest.split_once("] [").unwrap_or_else(|| panic!("{line}"));
            assert!(pid.bytes().all(|b| b.is_ascii_digit()), "{line}");
            let (level, msg) = rest.split_once("] ").unwrap_or_else(|| panic!("{line}"));
            if msg.starts_with("Starting ") || msg.starts_with("Control socket") {
                continue;
            }
            let msg = blank_numbers(msg);
            out.push(format!("{level} {msg}"));
        } else if !line.starts_with(' ') && !line.starts_with("Traceback") && !line.is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

/// What `program` writes to the handler files of `kind` for the same requests, from
/// start to a TERM: (error records, access lines).
fn handler_files(program: &str, kind: Kind, worker: &[&str]) -> (Vec<String>, Vec<String>) {
    let dir = TempDir::new(&format!("pylog-{program}"));
    let mut args = prepare(&dir, kind);
    args.extend(["-w".into(), "1".into()]);
    args.extend(worker.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = start_installed(program, &args, &[]);
    let addr = s.addr();
    s.wait_booted(1);
    let probe = raw_get(addr, "/?x=1&y=%22q", "X-Probe: a\"b\r\nUser-Agent: probe/1\r\n");
    assert!(probe.starts_with("HTTP/1.1 200"), "{program}: {probe}");
    assert!(get(addr, "/headers").starts_with("HTTP/1.1 201"));
    assert!(get(addr, "/boom").starts_with("HTTP/1.1 500"));
    wait_until(20, "three access lines", || read(&dir.path("access.log")).lines().count() >= 3);
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(20).success(), "{program}: {}", s.log());
    let errors = error_records(&read(&dir.path("error.log")));
    // The stderr handler got the same records.
    assert_eq!(error_records(&s.log()), errors, "{program}");
    let access = read(&dir.path("access.log"))
        .lines()
        .map(|l| {
            let (pid, rest) = l.split_once(' ').unwrap();
            assert!(pid.parse::<u32>().is_ok(), "{l}");
            rest.to_owned()
        })
        .collect();
    (errors, access)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn raw_get(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn compare(kind: Kind) {
    oracle_venv();
    for worker in [&["-k", "sync"][..], &["-k", "gthread", "--threads", "2"][..]] {
        let want = handler_files("gunicorn", kind, worker);
        let got = handler_files("ferrocorn", kind, worker);
        assert!(want.0.iter().any(|l| l == "ERROR Error handling request GET /boom"), "{want:?}");
        assert!(want.0.iter().any(|l| l == "RuntimeError: boom in view"), "{want:?}");
        assert_eq!(want.1.len(), 3, "{want:?}");
        assert!(want.1[0].contains(r#""{x-probe}i": "a\\\"b""#), "{}", want.1[0]);
        assert_eq!(got.0, want.0, "{kind:?} {worker:?}: error records");
        assert_eq!(got.1, want.1, "{kind:?} {worker:?}: access records");
    }
}

#[test]
fn logconfig_dict_in_a_config_file_is_gunicorns() {
    compare(Kind::Dict);
}

#[test]
fn logconfig_json_is_gunicorns() {
    compare(Kind::Json);
}

#[test]
fn logconfig_ini_is_gunicorns() {
    compare(Kind::Ini);
}

#[test]
fn paste_ini_logging_sections_are_gunicorns() {
    compare(Kind::Paste);
}

#[test]
fn a_config_that_drops_the_root_handler_gets_gunicorns_error() {
    oracle_venv();
    let dir = TempDir::new("pylog-root");
    // The user's `handlers` replace gunicorn's, which its loggers still name.
    let conf = dir.path("drop.conf.py");
    std::fs::write(
        &conf,
        format!(
            "logconfig_dict = {{'handlers': {{'f': {{'class': 'logging.FileHandler', 'filename': '{}'}}}}}}\n",
            dir.path("x.log").display()
        ),
    )
    .unwrap();
    let missing = dir.path("missing.ini");
    let cases = [
        vec!["wsgi_app:app", "-c", conf.to_str().unwrap(), "-b", "127.0.0.1:0"],
        vec!["wsgi_app:app", "--log-config", missing.to_str().unwrap(), "-b", "127.0.0.1:0"],
    ];
    for args in cases {
        let run = |program: &str| {
            let out = Command::new(oracle_venv().join("bin").join(program))
                .args(&args)
                .current_dir(apps())
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .output()
                .unwrap();
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let want = run("gunicorn");
        assert_eq!(want.0, Some(1), "{want:?}");
        assert!(want.1.contains("Error: "), "{want:?}");
        assert_eq!(run("ferrocorn"), want, "{args:?}");
    }
}

/// A logger class recording each call: `pid method text`.
const RECORDING: &str = r#"
import os
try:
    from gunicorn.glogging import Logger as Base
except ImportError:
    from ferrocorn.glogging import Logger as Base

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.log")

def _rec(what, text=""):
    with open(OUT, "a") as f:
        f.write("%d %s %s\n" % (os.getpid(), what, text))

class Recording(Base):
    def setup(self, cfg):
        _rec("setup", cfg.loglevel)
        super().setup(cfg)
    def info(self, msg, *a, **k):
        _rec("info", msg % a if a else msg); super().info(msg, *a, **k)
    def warning(self, msg, *a, **k):
        _rec("warning", msg % a if a else msg); super().warning(msg, *a, **k)
    def error(self, msg, *a, **k):
        _rec("error", (msg % a if a else msg).splitlines()[0]); super().error(msg, *a, **k)
    def exception(self, msg, *a, **k):
        _rec("exception", msg % a if a else msg); super().exception(msg, *a, **k)
    def access(self, resp, req, environ, request_time):
        _rec("access", "%s %s %s" % (resp.status, environ.get("RAW_URI"), type(request_time).__name__))
        super().access(resp, req, environ, request_time)
    def reopen_files(self):
        _rec("reopen_files"); super().reopen_files()
    def close_on_exec(self):
        _rec("close_on_exec"); super().close_on_exec()
"#;

/// The calls the recording logger saw under `program`, as `master|worker method text`
/// (numbers blanked; gunicorn's lines about its own name and control socket left out).
fn logger_calls(program: &str, worker: &[&str], ferrocorn_base: bool) -> Vec<String> {
    let dir = TempDir::new(&format!("pylog-class-{program}"));
    let module = match ferrocorn_base {
        // The same class on ferrocorn's base, for code that does not import gunicorn.
        true => RECORDING.replace("from gunicorn.glogging", "from ferrocorn.glogging"),
        false => RECORDING.to_owned(),
    };
    std::fs::write(dir.path("recording.py"), module).unwrap();
    let d = dir.0.to_str().unwrap();
    let mut args = vec!["wsgi_app:app", "--pythonpath", d, "--logger-class", "recording.Recording"];
    args.extend(["-b", "127.0.0.1:0", "-w", "1"]);
    args.extend_from_slice(worker);
    let mut s = start_installed(program, &args, &[]);
    let addr = s.addr();
    let worker_pid = s.wait_booted(1)[0];
    assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/headers").starts_with("HTTP/1.1 201"));
    assert!(get(addr, "/boom").starts_with("HTTP/1.1 500"));
    let calls = dir.path("calls.log");
    wait_until(20, "three access calls", || read(&calls).matches(" access ").count() >= 3);
    s.signal(Signal::SIGUSR1);
    let reopened = format!("{worker_pid} reopen_files");
    wait_until(20, "the worker's reopen_files", || read(&calls).contains(&reopened));
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(20).success(), "{program}: {}", s.log());
    let master = s.pid().to_string();
    read(&calls)
        .lines()
        .filter(|l| !l.contains(" info Starting ") && !l.contains("Control socket"))
        .map(|l| {
            let (pid, rest) = l.split_once(' ').unwrap();
            let role = if pid == master { "master" } else { "worker" };
            let rest = blank_numbers(rest);
            format!("{role} {rest}")
        })
        .collect()
}

#[test]
fn a_logger_class_is_called_as_gunicorn_calls_it() {
    oracle_venv();
    for worker in [&["-k", "sync"][..], &["-k", "gthread", "--threads", "2"][..]] {
        let want = logger_calls("gunicorn", worker, false);
        for call in ["master setup info", "worker access N OK / timedelta", "worker reopen_files "]
        {
            assert!(want.iter().any(|c| c.starts_with(call)), "{call}: {want:#?}");
        }
        // Each role's calls in order (the two processes write concurrently).
        let role = |calls: &[String], r: &str| {
            calls.iter().filter(|c| c.starts_with(r)).cloned().collect::<Vec<_>>()
        };
        for ferrocorn_base in [false, true] {
            let got = logger_calls("ferrocorn", worker, ferrocorn_base);
            for r in ["master", "worker"] {
                assert_eq!(role(&got, r), role(&want, r), "{worker:?} {r} {ferrocorn_base}");
            }
        }
    }
}

/// Rotation: the handler files are moved away, USR1 makes every process open them
/// again; returns whether the moved access file kept its lines (and only those a worker
/// wrote before it had the signal), and whether both workers write to the new one.
fn rotate(program: &str) -> (bool, bool) {
    let dir = TempDir::new(&format!("pylog-rotate-{program}"));
    let mut args = prepare(&dir, Kind::Dict);
    args.extend(["-w".into(), "2".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s: Server = start_installed(program, &args, &[]);
    let addr = s.addr();
    s.wait_booted(2);
    for _ in 0..4 {
        assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
    }
    let access = dir.path("access.log");
    wait_until(20, "four access lines", || read(&access).lines().count() >= 4);
    std::fs::rename(&access, dir.path("access.log.1")).unwrap();
    std::fs::rename(dir.path("error.log"), dir.path("error.log.1")).unwrap();
    s.signal(Signal::SIGUSR1);
    s.wait_for("Handling signal: usr1");
    // Both workers must write to the new file: ask until each has (their pids differ).
    let pids: Vec<String> = s.booted().iter().map(ToString::to_string).collect();
    let mut sent = 0;
    wait_until(30, "both workers in the new access file", || {
        assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
        sent += 1;
        let text = read(&access);
        pids.iter().all(|p| text.lines().any(|l| l.starts_with(&format!("{p} "))))
    });
    // The master's lines go to the new error file too.
    s.signal(Signal::SIGTTIN);
    wait_until(20, "the master's line in the new error file", || {
        read(&dir.path("error.log")).contains("Handling signal: ttin")
    });
    // The four lines before the rotation stay in the moved file (with, it may be, a
    // request a worker served before it had the USR1); the new file has lines of both.
    let old = read(&dir.path("access.log.1")).lines().count();
    assert!(sent >= 2);
    (old >= 4 && old < 4 + sent, read(&access).lines().count() >= 2)
}

#[test]
fn usr1_reopens_handler_files_after_a_rotation() {
    oracle_venv();
    let want = rotate("gunicorn");
    assert_eq!(want, (true, true));
    assert_eq!(rotate("ferrocorn"), want);
}

/// A HUP after the config file's logging changed: gunicorn's reload runs the logger's
/// `setup` again; returns (old file's records, new file's records) reduced to their
/// messages, without the lines that name the server.
fn hup(program: &str) -> (Vec<String>, Vec<String>) {
    let dir = TempDir::new(&format!("pylog-hup-{program}"));
    let conf = dir.path("hup.conf.py");
    let write = |file: &str| {
        let log = dir.path(file);
        std::fs::write(
            &conf,
            format!(
                "logconfig_dict = {{'root': {{'level': 'INFO', 'handlers': []}},\n\
                 'loggers': {{'gunicorn.error': {{'level': 'INFO', 'handlers': ['f', 'c'], 'propagate': False}},\n\
                 'gunicorn.access': {{'level': 'INFO', 'handlers': ['f'], 'propagate': False}}}},\n\
                 'handlers': {{'f': {{'class': 'logging.FileHandler', 'filename': '{}', 'formatter': 'generic'}},\n\
                 'c': {{'class': 'logging.StreamHandler', 'stream': 'ext://sys.stderr', 'formatter': 'generic'}}}}}}\n",
                log.display()
            ),
        )
        .unwrap();
    };
    write("one.log");
    let conf_s = conf.to_str().unwrap();
    let mut s = start_installed(program, &["wsgi_app:app", "-c", conf_s, "-b", "127.0.0.1:0"], &[]);
    let addr = s.addr();
    s.wait_booted(1);
    assert!(get(addr, "/").starts_with("HTTP/1.1 200"));
    wait_until(20, "the first access line", || read(&dir.path("one.log")).contains("GET / "));
    write("two.log");
    s.signal(Signal::SIGHUP);
    s.wait_booted(2);
    // The old worker may still take a request or two while it stops.
    wait_until(20, "an access line in the new file", || {
        assert!(get(addr, "/headers").starts_with("HTTP/1.1 201"));
        read(&dir.path("two.log")).contains("GET /headers ")
    });
    wait_until(20, "the old worker's exit", || {
        read(&dir.path("one.log")).contains("Worker exiting")
    });
    s.signal(Signal::SIGTERM);
    assert!(s.wait_exit(20).success(), "{program}: {}", s.log());
    let records = |f: &str| {
        error_records(&read(&dir.path(f)))
            .into_iter()
            .filter(|r| !r.contains("Reload complete"))
            .map(|r| match r.split_once(" - - [") {
                // An access line: the request and status, not its time.
                Some((a, b)) => format!("{a} {}", b.split_once("] ").unwrap().1),
                None => r,
            })
            .collect::<Vec<_>>()
    };
    // Only the first line of each kind: how many requests each worker took may differ.
    let dedup = |mut v: Vec<String>| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|r| seen.insert(r.clone()));
        v
    };
    let old = records("one.log").into_iter().filter(|r| !r.contains("GET /headers")).collect();
    (dedup(old), dedup(records("two.log")))
}

#[test]
fn hup_applies_a_changed_logging_config() {
    oracle_venv();
    let want = hup("gunicorn");
    assert!(want.1.iter().any(|l| l.contains("\"GET /headers HTTP/N.N\" N")), "{want:?}");
    assert_eq!(hup("ferrocorn"), want);
}
