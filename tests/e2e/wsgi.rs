//! End-to-end: the WSGI sync worker of the INSTALLED `ferrocorn` command (the Python
//! package in `.venv`, built by `scripts/install-ferrocorn.sh`; `FERROCORN_VENV` points
//! elsewhere), serving real applications (tests/apps/: a plain WSGI app wrapped in
//! `wsgiref.validate.validator`, Flask, a small Django project) to real clients (raw
//! sockets, curl, Python `requests`), with crashes, timeouts, TERM and boot failures.
//!
//! Servers bind 127.0.0.1:0 and are found through `Listening at:`; every wait polls with a
//! deadline; only the processes a test started are signalled.

use crate::support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ferrocorn_core::{Connection, Event, Peer, ProtoConfig, RecvError};
use nix::sys::signal::Signal;
use support::{
    Client, Server, TempDir, alive, apps, body_of, check_wsgi_app_responses, get_raw, header_names,
    raw, repo_root, start_installed, status, venv, wait_until,
};

/// Starts the installed `ferrocorn` in the apps directory with a clean environment.
fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
    start_installed("ferrocorn", args, env)
}

/// A server on an ephemeral port with `workers` workers, booted.
fn serve(app: &str, workers: usize, extra: &[&str], env: &[(&str, &str)]) -> (Server, SocketAddr) {
    let w = workers.to_string();
    let mut args = vec![app, "-b", "127.0.0.1:0", "-w", &w];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    if support::announces(app) {
        env.push(support::ANNOUNCE);
    }
    let s = start(&args, &env);
    let addr = s.addr();
    s.wait_booted(workers);
    if support::announces(app) {
        s.wait_app_loaded(workers);
    }
    (s, addr)
}

fn python(code: &str, args: &[&str]) -> (i32, String, String) {
    let o =
        Command::new(venv().join("bin/python")).arg("-c").arg(code).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

// ---- PEP 3333 through wsgiref.validate ----

#[test]
fn pep3333_validated_app_end_to_end() {
    let dir = TempDir::new("wsgi-pep");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path("data.bin");
    std::fs::write(&file, &data).unwrap();
    let (s, addr) =
        serve("wsgi_app:app", 2, &[], &[("FERROCORN_TEST_FILE", file.to_str().unwrap())]);

    let r = get_raw(addr, "/");
    assert_eq!(status(&r), "HTTP/1.1 200 OK", "{r}");
    assert_eq!(
        header_names(&r),
        ["Server", "Date", "Connection", "Content-Type", "Content-Length"]
    );
    assert!(
        r.contains("\r\nServer: ferrocorn\r\n") && r.contains("\r\nConnection: close\r\n"),
        "{r}"
    );
    assert!(r.ends_with("\r\n\r\nHello, World!"), "{r}");

    // The app's header order after ours, streaming, write(), bodies, the file wrapper.
    check_wsgi_app_responses(addr, &data);

    // The environ.
    let r = get_raw(addr, "/env?a=1&b=%20");
    let env = body_of(&r);
    for needle in [
        r#""REQUEST_METHOD": "GET""#,
        r#""QUERY_STRING": "a=1&b=%20""#,
        r#""RAW_URI": "/env?a=1&b=%20""#,
        r#""PATH_INFO": "/env""#,
        r#""SCRIPT_NAME": """#,
        r#""SERVER_NAME": "127.0.0.1""#,
        r#""REMOTE_ADDR": "127.0.0.1""#,
        r#""SERVER_PROTOCOL": "HTTP/1.1""#,
        r#""HTTP_HOST": "127.0.0.1""#,
        r#""HTTP_USER_AGENT": "raw""#,
        r#""SERVER_SOFTWARE": "ferrocorn/"#,
        r#""wsgi.url_scheme": "http""#,
        r#""wsgi.version": [1, 0]"#,
        r#""wsgi.multithread": false"#,
        r#""wsgi.multiprocess": true"#,
        r#""wsgi.run_once": false"#,
        r#""wsgi.input_terminated": true"#,
    ] {
        assert!(env.contains(needle), "{needle} not in {env}");
    }
    assert!(env.contains(&format!(r#""SERVER_PORT": "{}""#, addr.port())), "{env}");

    // Content-Length enforced: extra bytes dropped; too few closes the connection.
    let r = get_raw(addr, "/cl-long");
    assert!(r.ends_with("\r\n\r\nabcde"), "{r}");
    let r = get_raw(addr, "/cl-short");
    assert!(r.contains("Content-Length: 100\r\n") && r.ends_with("\r\n\r\nonly nine"), "{r}");

    // wsgi.errors goes to the error log; nothing in the log says the validator objected.
    assert_eq!(body_of(&get_raw(addr, "/errors")), "logged");
    let log = s.wait_for("a line for wsgi.errors");
    assert!(!log.contains("AssertionError") && !log.contains("Traceback"), "{log}");
}

#[test]
fn no_sendfile_iterates_the_file_wrapper() {
    let dir = TempDir::new("wsgi-nosendfile");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let file = dir.path("data.bin");
    std::fs::write(&file, &data).unwrap();
    for (flags, env) in [(vec!["--no-sendfile"], vec![]), (vec![], vec![("SENDFILE", "0")])] {
        let mut env = env;
        env.push(("FERROCORN_TEST_FILE", file.to_str().unwrap()));
        let (_s, addr) = serve("wsgi_app:app", 1, &flags, &env);
        let out = raw(addr, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.ends_with(&data), "{flags:?}: {} bytes", out.len());
    }
}

// ---- errors ----

#[test]
fn app_exception_is_a_500_with_the_traceback_in_the_log() {
    let (s, addr) = serve("wsgi_app:raw", 1, &[], &[]);
    let r = get_raw(addr, "/boom?x=1");
    assert_eq!(status(&r), "HTTP/1.1 500 Internal Server Error");
    assert!(r.contains("Connection: close\r\nContent-Type: text/html\r\n"), "{r}");
    assert!(
        !r.contains("boom in view") && !r.contains("Traceback"),
        "nothing internal in the body: {r}"
    );
    let log = s.wait_for("RuntimeError: boom in view");
    assert!(
        log.contains(
            "[ERROR] Error handling request GET /boom?x=1\nTraceback (most recent call last):\n"
        ),
        "{log}"
    );
    // The worker goes on serving.
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
}

#[test]
fn rejected_requests_get_the_core_error_page_and_a_close() {
    let (s, addr) = serve("wsgi_app:raw", 1, &[], &[]);
    let r = String::from_utf8(raw(addr, b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap();
    assert!(
        r.starts_with(
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\n"
        ),
        "{r}"
    );
    let r = String::from_utf8(raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ))
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 501 "), "{r}");
    s.wait_for("Invalid request from ip=127.0.0.1");
    // A bad chunk inside the body: the app sees OSError; the client gets a 400 and a close.
    let r = String::from_utf8(raw(addr, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")).unwrap();
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
}

/// A sample of the gunicorn request corpus replayed over TCP: each answer agrees with
/// what the core says in process (a rejection's status, then a close; an accepted
/// request reaches the application).
#[test]
fn corpus_sample_over_tcp() {
    let corpus = std::env::var_os("FERROCORN_SHARED")
        .map_or_else(|| repo_root().parent().unwrap().join("shared"), PathBuf::from)
        .join("corpus/gunicorn-requests");
    let (_s, addr) = serve("wsgi_app:raw", 2, &[], &[]);
    let mut checked = (0, 0);
    for kind in ["invalid", "valid"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join(kind))
            .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "http"))
            .collect();
        files.sort();
        for path in files.iter().step_by(3) {
            let expect = std::fs::read_to_string(path.with_extension("json")).unwrap_or_default();
            if !expect.contains("\"settings\": {}") {
                continue;
            }
            let bytes = std::fs::read(path).unwrap();
            let mut conn = Connection::new(
                Arc::new(ProtoConfig::default()),
                Peer::Tcp("127.0.0.1:1".parse().unwrap()),
            );
            conn.receive(&bytes);
            conn.receive_eof();
            let verdict = loop {
                match conn.next_event() {
                    Ok(Event::Request(h)) => break Ok(h.target().to_vec()),
                    Ok(Event::NeedData | Event::ConnectionClosed) | Err(RecvError::NoMoreData) => {
                        break Err(None);
                    }
                    Ok(_) => {}
                    Err(e) => break Err(Some(e.status())),
                }
            };
            let out = raw(addr, &bytes);
            let text = String::from_utf8_lossy(&out);
            let name = path.display();
            match verdict {
                Err(Some(code)) => {
                    assert!(
                        text.starts_with(&format!("HTTP/1.1 {code} ")),
                        "{name}: want {code}, got {text:?}"
                    );
                    assert!(text.contains("\r\nConnection: close\r\n"), "{name}");
                    checked.0 += 1;
                }
                Err(None) => assert!(out.is_empty(), "{name}: nothing expected, got {text:?}"),
                Ok(_) => {
                    assert!(text.starts_with("HTTP/1."), "{name}: no response: {text:?}");
                    assert!(
                        !text.starts_with("HTTP/1.1 4") && !text.starts_with("HTTP/1.1 5")
                            || text.contains("not found"),
                        "{name}: {text:?}"
                    );
                    checked.1 += 1;
                }
            }
        }
    }
    assert!(checked.0 >= 10 && checked.1 >= 10, "too few cases checked: {checked:?}");
}

#[test]
fn start_response_exc_info_and_close_always_called() {
    let dir = TempDir::new("wsgi-close");
    let marker = dir.path("closed");
    let (_s, addr) =
        serve("wsgi_app:raw", 1, &[], &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())]);
    // A second call without exc_info fails; with exc_info before anything was sent, the
    // new status and headers replace the old ones.
    let r = get_raw(addr, "/exc-info");
    assert_eq!(status(&r), "HTTP/1.1 503 Service Unavailable", "{r}");
    assert!(r.contains("X-Replaced: 1\r\n") && !r.contains("X-First"), "{r}");
    assert_eq!(body_of(&r), "Response headers already set!");
    // close() after a complete response...
    assert_eq!(body_of(&get_raw(addr, "/closing?2")).len(), 2 * 65536);
    wait_until(10, "close() called", || {
        std::fs::read_to_string(&marker).unwrap_or_default().lines().count() == 1
    });
    // ...and when the client goes away in the middle of a long one.
    let mut c = Client::connect(addr);
    c.send(b"GET /closing?100000 HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_at_least(1000).unwrap();
    drop(c);
    wait_until(10, "close() called after the client left", || {
        std::fs::read_to_string(&marker).unwrap_or_default().lines().count() == 2
    });
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
}

// ---- real frameworks and clients ----

#[test]
fn flask_app_with_curl_and_requests() {
    let (s, addr) = serve("flask_app:app", 2, &[], &[]);
    let base = format!("http://{addr}");
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args(["-s", "-S", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl");
        assert!(o.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    assert_eq!(curl(&[&format!("{base}/")]), b"Hello from Flask");
    let j = String::from_utf8(curl(&[&format!("{base}/json?q=z")])).unwrap();
    assert!(j.contains(r#""items":[0,1,2,3,4]"#) && j.contains(r#""q":"z""#), "{j}");
    let sent = curl(&[&format!("{base}/sendfile")]);
    let want: Vec<u8> = (0..1024).flat_map(|_| 0..=255u8).collect();
    assert!(sent == want, "send_file body differs ({} bytes)", sent.len());
    let streamed = String::from_utf8(curl(&[&format!("{base}/download")])).unwrap();
    assert_eq!(streamed.lines().count(), 1000);
    assert!(streamed.ends_with("line 999\n"));

    // Python requests: a multipart upload, and the 500 of a failing view.
    let code = r#"
import hashlib, sys, requests
base = sys.argv[1]
data = bytes(range(256)) * 400
r = requests.post(base + "/upload", files={"file": ("blob.bin", data)}, data={"field": "v"}, timeout=10)
r.raise_for_status()
j = r.json()
assert j == {"name": "blob.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "field": "v"}, j
r = requests.get(base + "/boom", timeout=10)
assert r.status_code == 500, r.status_code
assert r.headers["Connection"] == "close" and r.headers["Server"] == "ferrocorn", r.headers
print("ok")
"#;
    let (rc, out, err) = python(code, &[&base]);
    assert_eq!((rc, out.as_str()), (0, "ok\n"), "{err}");
    // Flask logs its own traceback to the error stream.
    s.wait_for("ValueError: flask view failed");
}

#[test]
fn django_project() {
    let (s, addr) = serve("djproj.wsgi", 2, &[], &[]);
    let r = get_raw(addr, "/hello/?q=1");
    assert_eq!(status(&r), "HTTP/1.1 200 OK", "{r}");
    assert!(body_of(&r).contains(r#""method": "GET", "path": "/hello/", "q": "1""#), "{r}");
    let r = String::from_utf8(raw(
        addr,
        b"POST /hello/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
    ))
    .unwrap();
    assert!(body_of(&r).contains(r#""body": "abc", "host": "localhost""#), "{r}");
    // ALLOWED_HOSTS: Django answers 400 to another host.
    let r = String::from_utf8(raw(addr, b"GET /hello/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"))
        .unwrap();
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request", "{r}");
    assert!(get_raw(addr, "/missing/").starts_with("HTTP/1.1 404 "));
    drop(s);
}

// ---- hooks and logs ----

#[test]
fn hooks_and_access_log() {
    support::hooks_and_access_scenario("wsgi-hooks", &[]);
}

#[test]
fn server_hooks_from_the_config_file() {
    let dir = TempDir::new("wsgi-server-hooks");
    let hooks = dir.path("hooks.txt");
    let (mut s, addr) = serve(
        "wsgi_app:raw",
        1,
        &["-c", "server_hooks.conf.py"],
        &[("FERROCORN_TEST_HOOKS", hooks.to_str().unwrap())],
    );
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    let read = || std::fs::read_to_string(&hooks).unwrap_or_default();
    wait_until(10, "post_worker_init", || read().contains("post_worker_init"));
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(20).code(), Some(0), "{}", s.log());
    let lines = read();
    for want in [
        "nworkers_changed 1 None",
        "on_starting pid=True master=Master",
        "when_ready listeners=1 workers=1",
        "pre_fork age=1",
        "post_fork pid=True ppid=True",
        "post_worker_init pid=True",
        "worker_exit pid=True",
        "on_exit workers=0",
    ] {
        assert!(lines.lines().any(|l| l == want), "{want:?} not in:\n{lines}");
    }
    let order: Vec<&str> = lines.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let at = |name: &str| order.iter().position(|n| *n == name).unwrap();
    assert!(
        at("on_starting") < at("when_ready")
            && at("when_ready") < at("pre_fork")
            && at("pre_fork") < at("post_fork"),
        "{order:?}"
    );
    assert!(
        at("post_fork") < at("post_worker_init") && at("worker_exit") < at("on_exit"),
        "{order:?}"
    );
    assert!(s.log().contains("[INFO] when_ready ran in "), "{}", s.log());
}

#[test]
fn default_access_log_format() {
    let dir = TempDir::new("wsgi-acc");
    let access = dir.path("a.log");
    let (_s, addr) = serve("wsgi_app:raw", 1, &["--access-logfile", access.to_str().unwrap()], &[]);
    let r = raw(
        addr,
        b"GET /x HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: ua \"q\"\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&r).starts_with("HTTP/1.1 404"));
    wait_until(10, "access line", || {
        std::fs::read_to_string(&access).unwrap_or_default().lines().count() >= 1
    });
    let line = std::fs::read_to_string(&access).unwrap();
    // gunicorn's default format, %(t)s in local time.
    let re_ok = line.starts_with("127.0.0.1 - - [")
        && line.ends_with("] \"GET /x HTTP/1.1\" 404 9 \"http://r/\" \"ua \\\"q\\\"\"\n");
    assert!(re_ok, "{line}");
}

// ---- the process side ----

#[test]
fn crash_respawn_and_timeout_kill() {
    let (s, addr) = serve("wsgi_app:raw", 1, &["--timeout", "2"], &[]);
    let first = s.booted()[0];
    // os._exit in a view: the client sees a close, the master replaces the worker.
    let r = raw(addr, b"GET /exit HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.is_empty(), "{r:?}");
    s.wait_for(&format!("Worker (pid:{first}) exited with code 1."));
    let second = s.wait_booted(2)[1];
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    // A view sleeping past --timeout: WORKER TIMEOUT, the client gets a 500 or a close.
    let r = String::from_utf8_lossy(&raw(addr, b"GET /sleep?6 HTTP/1.1\r\nHost: x\r\n\r\n"))
        .into_owned();
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 500 "), "{r}");
    s.wait_for(&format!("WORKER TIMEOUT (pid:{second})"));
    // The request line is logged right after; the log is collected line by line.
    let log = s.wait_for(&format!("Worker (pid:{second}) was serving"));
    // The request it was serving: method, path, client and elapsed time.
    let took = support::timeout_report(&log, second, "GET /sleep?6");
    assert!((1.5..6.0).contains(&took), "{log}");
    // faulthandler wrote the stuck worker's Python stack into the error log (every thread:
    // `Current thread`), with the application's sleeping frame, before the worker died.
    let src = std::fs::read_to_string(apps().join("wsgi_app.py")).unwrap();
    let line = 1 + src.lines().position(|l| l.contains("time.sleep(float(query")).unwrap();
    let frame = format!("wsgi_app.py\", line {line} in raw");
    let log = s.wait_log(10, "the stack", |l| {
        l.contains("Fatal Python error: Aborted") && l.contains(&frame)
    });
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle:?} not in:\n{log}"));
    assert!(at("Current thread 0x") > at("Fatal Python error: Aborted"), "{log}");
    assert!(at(&frame) > at("Current thread 0x"), "{log}");
    assert!(at("was serving GET /sleep?6") < at("Fatal Python error: Aborted"), "{log}");
    s.wait_booted(3);
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    assert!(!alive(second));
}

#[test]
fn slow_clients_are_cut_off_without_killing_the_worker() {
    let (s, addr) = serve("wsgi_app:raw", 1, &["--timeout", "2"], &[]);
    let worker = s.booted()[0];
    // A client that sends half a head and waits, and one that trickles a body: the server
    // closes both (EOF, where a client left waiting would hit its 30 s read deadline, far
    // past the 2 s timeout), the first without an answer.
    let mut idle = Client::connect(addr);
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n").read_timeout(Duration::from_secs(30));
    let (out, end) = idle.read_to_end();
    assert!(end.is_none() && out.is_empty(), "half a head: {end:?}, {out:?}");
    let mut trickle = Client::connect(addr);
    trickle
        .send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .read_timeout(Duration::from_secs(30));
    let (_, end) = trickle.read_to_end();
    assert!(
        end.as_ref().is_none_or(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "a trickled body is not cut off: {end:?}"
    );
    // The same worker serves the next request; the master never timed it out.
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    assert_eq!(s.booted(), vec![worker]);
    assert!(!s.log().contains("WORKER TIMEOUT"), "{}", s.log());
    // HEAD: the head only, Content-Length kept.
    let r = String::from_utf8(raw(addr, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n")
            && r.contains("Content-Length: 13\r\n")
            && r.ends_with("\r\n\r\n"),
        "{r}"
    );
}

#[test]
fn term_lets_the_request_in_flight_finish() {
    let dir = TempDir::new("wsgi-term");
    let marker = dir.path("started");
    let (mut s, addr) =
        serve("wsgi_app:raw", 1, &[], &[("FERROCORN_TEST_MARKER", marker.to_str().unwrap())]);
    let client = std::thread::spawn(move || get_raw(addr, "/sleep?1"));
    wait_until(10, "the request to start", || marker.exists());
    s.signal(Signal::SIGTERM);
    let r = client.join().unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK") && r.ends_with("slept"), "{r}");
    let st = s.wait_exit(20);
    assert_eq!(st.code(), Some(0), "{}", s.log());
}

#[test]
fn usr2_reexecutes_the_installed_command() {
    let (mut s, addr) = serve("wsgi_app:raw", 1, &[], &[]);
    let old = s.pid();
    s.signal(Signal::SIGUSR2);
    // The new master runs the same interpreter and arguments, on the inherited listener.
    let masters = |log: &str| -> Vec<i32> {
        log.lines()
            .filter_map(|l| l.split("Listening at: ").nth(1))
            .filter_map(|r| {
                r.rsplit_once('(').and_then(|(_, p)| p.trim_end_matches(')').parse().ok())
            })
            .collect()
    };
    let log = s.wait_log(20, "a second master", |l| masters(l).len() >= 2 && s.booted().len() >= 2);
    let new = *masters(&log).iter().find(|p| **p != old).expect("the new master's pid");
    assert_eq!(support::parent_of(new), Some(old));
    assert!(log.contains(&format!("Listening at: http://{addr} ({new})")), "{log}");
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    // The old master leaves; the new one serves on alone.
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit_only(20).code(), Some(0));
    for _ in 0..3 {
        assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(new), Signal::SIGTERM);
    wait_until(20, "the new master to exit", || !alive(new));
}

#[test]
fn boot_failures_stop_the_master_with_gunicorns_codes() {
    // AppImportError: the message once, exit 4.
    let mut s = start(&["wsgi_app:nothere", "-b", "127.0.0.1:0"], &[]);
    let st = s.wait_exit(20);
    let log = s.log();
    assert_eq!(st.code(), Some(4), "{log}");
    assert_eq!(
        log.matches("Failed to find attribute 'nothere' in 'wsgi_app'.").count(),
        1,
        "{log}"
    );
    assert!(log.contains("[ERROR] Reason: App failed to load."), "{log}");
    // Any other exception at import: the traceback once, exit 3.
    let dir = TempDir::new("wsgi-boot");
    std::fs::write(dir.path("broken.py"), "raise RuntimeError('broken at import')\n").unwrap();
    let mut s = start(&["broken", "--chdir", dir.0.to_str().unwrap(), "-b", "127.0.0.1:0"], &[]);
    let st = s.wait_exit(20);
    let log = s.log();
    assert_eq!(st.code(), Some(3), "{log}");
    assert_eq!(log.matches("Traceback (most recent call last)").count(), 1, "{log}");
    assert!(log.contains("[ERROR] Exception in worker process\nTraceback"), "{log}");
    assert!(log.contains("[ERROR] Reason: Worker failed to boot."), "{log}");
}

#[test]
fn preload_and_worker_classes() {
    let (s, addr) = serve("wsgi_app:raw", 2, &["--preload"], &[]);
    assert_eq!(body_of(&get_raw(addr, "/")), "Hello, World!");
    let log = s.log();
    assert!(log.contains("[INFO] Using worker: sync"), "{log}");
    drop(s);
    let mut s = start(&["wsgi_app:raw", "-k", "gevent", "-b", "127.0.0.1:0"], &[]);
    let st = s.wait_exit(20);
    assert_eq!(st.code(), Some(1));
    assert!(
        s.log().contains("worker class \"gevent\" is not supported by ferrocorn yet"),
        "{}",
        s.log()
    );
}
