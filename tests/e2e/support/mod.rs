//! A real master (`ferrocorn-test-server`) for end-to-end tests: started with gunicorn
//! flags, its error log collected line by line, waited on with deadlines (never fixed
//! sleeps), and killed on drop (the master and the workers it booted: only our pids).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod client;
mod scratch;
pub use client::{Client, Response};
pub use scratch::TempDir;

pub struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    eof: Arc<AtomicBool>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocorn-test-server"));
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start_command(cmd)
    }

    /// Runs any master (e.g. gunicorn as the oracle) with its stderr collected.
    pub fn start_command(cmd: Command) -> Server {
        Server::collect(cmd, false)
    }

    /// [`Server::start_command`], with the lines of stdout collected into the same log.
    pub fn start_command_merged(cmd: Command) -> Server {
        Server::collect(cmd, true)
    }

    fn collect(mut cmd: Command, stdout: bool) -> Server {
        let out = if stdout { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the server");
        let log = Arc::new(Mutex::new(String::new()));
        let eof = Arc::new(AtomicBool::new(false));
        let pipe = |r: Box<dyn Read + Send>, done: Option<Arc<AtomicBool>>| {
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(done) = done {
                    done.store(true, Ordering::SeqCst);
                }
            });
        };
        pipe(Box::new(child.stderr.take().unwrap()), Some(Arc::clone(&eof)));
        if let Some(o) = child.stdout.take() {
            pipe(Box::new(o), None);
        }
        Server { child, log, eof }
    }

    /// The exit status, if the master has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log satisfies `pred`; panics with the log after `secs`.
    pub fn wait_log(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_log(10, needle, |l| l.contains(needle))
    }

    /// The TCP address from `Listening at: http://HOST:PORT (PID)` (or `https://`).
    pub fn addr(&self) -> SocketAddr {
        let log = self.wait_for("Listening at: ");
        let rest = log.split("Listening at: ").nth(1).unwrap();
        let rest = rest.strip_prefix("https://").or(rest.strip_prefix("http://"));
        rest.expect("a TCP listener").split(' ').next().unwrap().parse().unwrap()
    }

    /// Pids from `Booting worker with pid: N`, in order.
    pub fn booted(&self) -> Vec<i32> {
        self.log()
            .lines()
            .filter_map(|l| l.split("Booting worker with pid: ").nth(1))
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// Waits until `n` workers have imported a framework app (`flask_app`, `djproj`)
    /// started with [`ANNOUNCE`] in its environment. "Booting worker" is logged at the
    /// fork, before the import, which takes seconds on a loaded machine: waiting here
    /// keeps that out of the first request's read timeout.
    pub fn wait_app_loaded(&self, n: usize) {
        let what = format!("{n} workers to import the app");
        self.wait_log(120, &what, |l| l.matches("test app loaded: ").count() >= n);
    }

    pub fn wait_booted(&self, n: usize) -> Vec<i32> {
        self.wait_log(10, &format!("{n} booted workers"), |_| self.booted().len() >= n);
        self.booted()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the master to exit, without waiting for the end of its output (a
    /// process it started may still write to the same pipe).
    pub fn wait_exit_only(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "master did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the master to exit.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread catch the last lines (EOF once every writer is gone).
                let end = Instant::now() + Duration::from_secs(2);
                while !self.eof.load(Ordering::SeqCst) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return st;
            }
            assert!(Instant::now() < end, "master did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in self.booted() {
            // Only the workers this master booted; most are gone already.
            if parent_of(pid) == Some(self.pid()) || parent_of(pid) == Some(1) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The parent pid of `pid`, from /proc.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, a)| !a.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Sends one request and reads the whole answer (the server closes).
pub fn get(addr: SocketAddr, path: &str) -> String {
    let mut c = Client::connect(addr);
    c.read_timeout(Duration::from_secs(15));
    exchange(&mut c, path)
}

/// `GET path` on `c`, and everything the server sends until it closes, as text.
pub fn exchange<S: Read + Write>(c: &mut Client<S>, path: &str) -> String {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    String::from_utf8_lossy(&c.read_to_end().0).into_owned()
}

pub fn is_hello(resp: &str) -> bool {
    resp.starts_with("HTTP/1.1 200 OK\r\n")
        && resp.contains("\r\nConnection: close\r\n")
        && resp.ends_with("\r\n\r\nHello, World!")
}

/// Polls `pred` every 10 ms until it holds; panics with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut pred: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !pred() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The children of `pid`, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| alive(*p))
        .collect()
}

/// One request that may fail: `Err` says how.
pub fn try_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut c = Client::try_connect(addr)?;
    c.try_send(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let (out, err) = c.read_to_end();
    if let Some(e) = err {
        return Err(format!("read: {e}"));
    }
    let r = String::from_utf8_lossy(&out).into_owned();
    if is_hello(&r) { Ok(r) } else { Err(format!("bad answer: {r:?}")) }
}

/// A bounded load loop: one thread sending sequential requests until stopped or until
/// its deadline, counting answers and failures ([`Load::start`]: a new connection with
/// `Connection: close` per request; [`Load::keep_alive`]: several clients, each reusing
/// its connection).
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<std::sync::atomic::AtomicU64>,
    conns: Arc<std::sync::atomic::AtomicU64>,
    handle: Option<std::thread::JoinHandle<Vec<String>>>,
}

/// Reads one response to `GET /` of a hello-world app from a kept-alive connection:
/// whether the server said `Connection: close`, or how it failed.
fn read_hello(c: &mut Client) -> Result<bool, String> {
    let r = c.try_read()?.ok_or("closed by the server before a whole answer")?;
    if r.header("Content-Length").is_none() {
        return Err(format!("no Content-Length: {:?}", r.text()));
    }
    if !r.text().starts_with("HTTP/1.1 200 ") || r.body != b"Hello, World!" {
        return Err(format!("bad answer: {:?}", r.text()));
    }
    Ok(r.closes())
}

/// The pause of a keep-alive client between an answer and its next request.
const KEEP_ALIVE_THINK: Duration = Duration::from_millis(1);

/// One keep-alive client until `stop` or `end`: `GET /` on one connection, reused until
/// the server answers `Connection: close` (then a new one), as Python's `http.client`
/// users do. A request sent on a kept-alive connection that the server then closes
/// without answering is a failure (`http.client` raises `RemoteDisconnected`).
fn keep_alive_client(
    addr: SocketAddr,
    stop: &AtomicBool,
    end: Instant,
    ok: &std::sync::atomic::AtomicU64,
    conns: &std::sync::atomic::AtomicU64,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut conn: Option<(Client, u64)> = None;
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        if conn.is_none() {
            match Client::try_connect(addr) {
                Ok(mut c) => {
                    c.nodelay();
                    conns.fetch_add(1, Ordering::SeqCst);
                    conn = Some((c, 0));
                }
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            }
        }
        let Some((c, n)) = conn.as_mut() else { continue };
        let answer =
            c.try_send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").and_then(|()| read_hello(c));
        match answer {
            Ok(close) => {
                ok.fetch_add(1, Ordering::SeqCst);
                *n += 1;
                if close {
                    conn = None;
                } else {
                    // A client's think time: its connection sits idle between requests,
                    // as a real client's does (and as a server's close may find it).
                    std::thread::sleep(KEEP_ALIVE_THINK);
                }
            }
            Err(e) => {
                failures.push(format!("request {} of its connection: {e}", *n + 1));
                conn = None;
            }
        }
    }
    failures
}

impl Load {
    pub fn start(addr: SocketAddr, max_secs: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, o) = (Arc::clone(&stop), Arc::clone(&ok));
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(max_secs);
            let mut failures = Vec::new();
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                match try_get(addr, "/") {
                    Ok(_) => {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failures.push(e),
                }
            }
            failures
        });
        Load {
            stop,
            ok,
            conns: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            handle: Some(handle),
        }
    }

    /// `clients` keep-alive clients (see [`keep_alive_client`]), each on its own
    /// connection, for at most `max_secs`.
    pub fn keep_alive(addr: SocketAddr, clients: usize, max_secs: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let conns = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, o, c) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&conns));
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(max_secs);
            std::thread::scope(|scope| {
                let threads: Vec<_> = (0..clients)
                    .map(|_| scope.spawn(|| keep_alive_client(addr, &s, end, &o, &c)))
                    .collect();
                threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
            })
        });
        Load { stop, ok, conns, handle: Some(handle) }
    }

    /// Connections opened so far by [`Load::keep_alive`] clients.
    pub fn connections(&self) -> u64 {
        self.conns.load(Ordering::SeqCst)
    }

    /// Answers so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests were answered.
    pub fn wait_more(&self, n: u64) {
        let start = self.ok();
        wait_until(20, &format!("{n} more answers"), || self.ok() >= start + n);
    }

    /// Stops the loop: (answers, failures).
    pub fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.handle.take().unwrap().join().unwrap();
        (self.ok(), failures)
    }

    /// Stops the loop and asserts that no request failed (the failures and `s`'s log
    /// otherwise); the count of answers.
    pub fn finish_ok(self, s: &Server) -> u64 {
        let (ok, failures) = self.finish();
        assert!(
            failures.is_empty(),
            "{} failed of {}: {failures:?}\n{}",
            failures.len(),
            ok + failures.len() as u64,
            s.log()
        );
        ok
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Kills the listed pids (processes a test started indirectly, e.g. daemonized masters
/// and their workers) on drop, if they are still alive.
#[derive(Default)]
pub struct KillOnDrop(pub Mutex<Vec<i32>>);

impl KillOnDrop {
    pub fn add(&self, pid: i32) {
        self.0.lock().unwrap().push(pid);
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            if alive(*pid) {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
}

// ---- the installed Python package (`.venv`, made by scripts/install-ferrocorn.sh) ----

mod venv;
pub use venv::{debian_venv, oracle_venv, repo_root, venv};

/// The environment entry that makes the framework apps (`flask_app`, `djproj`) write
/// `test app loaded: ...` to stderr once a worker has imported them.
pub const ANNOUNCE: (&str, &str) = ("TEST_APP_ANNOUNCE", "1");

/// Whether `app` is one of the framework apps that honour [`ANNOUNCE`].
pub fn announces(app: &str) -> bool {
    app.starts_with("flask_app") || app.starts_with("djproj")
}

/// The test applications (`tests/apps`).
pub fn apps() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("apps")
}

/// Starts `program` (`ferrocorn`, or `gunicorn` as the oracle) from the venv in the apps
/// directory, with a clean environment plus `env`.
pub fn start_installed(program: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(venv().join("bin").join(program));
    cmd.args(args)
        .current_dir(apps())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start_command(cmd)
}

/// Sends raw bytes, half-closes, and reads the whole answer.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = Client::connect(addr);
    c.send(bytes).half_close();
    c.read_to_end().0
}

/// `GET path` over a half-closed connection, the answer as text.
pub fn get_raw(addr: SocketAddr, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: raw\r\n\r\n");
    String::from_utf8_lossy(&raw(addr, req.as_bytes())).into_owned()
}

/// The status line of a response.
pub fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

/// The body of a response (chunked bodies decoded).
pub fn body_of(resp: &str) -> String {
    let (head, rest) = resp.split_once("\r\n\r\n").unwrap_or((resp, ""));
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return rest.to_owned();
    }
    let mut out = String::new();
    let mut rest = rest;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// The response header names, in order.
pub fn header_names(resp: &str) -> Vec<String> {
    let head = resp.split("\r\n\r\n").next().unwrap();
    head.lines().skip(1).map(|l| l.split(':').next().unwrap().to_owned()).collect()
}

/// What both workers answer alike for tests/apps/wsgi_app.py's `app` (under
/// wsgiref.validate): the app's header order after ours, a generator streamed chunked
/// (raw for HTTP/1.0), write() before the returned iterable, request bodies, and
/// `wsgi.file_wrapper` sending `data` (the app's FERROCORN_TEST_FILE).
pub fn check_wsgi_app_responses(addr: SocketAddr, data: &[u8]) {
    let r = get_raw(addr, "/headers");
    assert_eq!(status(&r), "HTTP/1.1 201 Created");
    assert_eq!(
        header_names(&r),
        ["Server", "Date", "Connection", "Content-Type", "X-B", "X-A", "Content-Length"]
    );
    let r = get_raw(addr, "/stream");
    assert!(r.contains("\r\nTransfer-Encoding: chunked\r\n"), "{r}");
    assert_eq!(body_of(&r), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    let r = String::from_utf8(raw(addr, b"GET /stream HTTP/1.0\r\n\r\n")).unwrap();
    assert!(r.starts_with("HTTP/1.0 200 OK\r\n") && !r.contains("chunked"), "{r}");
    assert!(r.ends_with("\r\n\r\nchunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"), "{r}");
    assert_eq!(body_of(&get_raw(addr, "/write")), "written;returned");
    // Request bodies, a large streamed body, 100-continue.
    check_request_bodies(addr);
    // wsgi.file_wrapper: sendfile(2) with a Content-Length.
    let out = raw(addr, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        out.ends_with(data) && out.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "file body differs ({} bytes)",
        out.len()
    );
}

/// The request-body side of PEP 3333 against a running server of the test app
/// `wsgi_app.py` (both worker classes run it): Content-Length and chunked bodies,
/// `readline(size)`, iteration, `readlines`, a large body streamed through `wsgi.input`,
/// and `Expect: 100-continue` answered before the application reads.
pub fn check_request_bodies(addr: SocketAddr) {
    let r = String::from_utf8(raw(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    ))
    .unwrap();
    assert!(r.ends_with("\r\n\r\nhello world"), "{r}");
    let chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
    let r = String::from_utf8(raw(addr, chunked)).unwrap();
    assert!(r.ends_with("\r\n\r\nhello world"), "{r}");
    let lines =
        b"POST /lines HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\n\r\nfirst\nsecond\nthird\nlast";
    let r = String::from_utf8(raw(addr, lines)).unwrap();
    assert_eq!(
        body_of(&r),
        r#"{"first": "first\n", "limited": "sec", "rest": ["ond\n", "third\n", "last"]}"#
    );
    let r = String::from_utf8(raw(addr, b"POST /readlines HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na\nb\n\r\n2\r\nc\n\r\n0\r\n\r\n")).unwrap();
    assert_eq!(body_of(&r), r#"["a\n", "b\n", "c\n"]"#);

    // A large body (above any buffering limit), streamed through wsgi.input.
    let big: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req =
        format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", big.len())
            .into_bytes();
    req.extend_from_slice(&big);
    let out = raw(addr, &req);
    assert!(out.ends_with(&big), "large echo differs ({} bytes back)", out.len());

    // Expect: 100-continue gets the interim response before the application reads.
    let mut c = Client::connect(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
    c.read_at_least(25).unwrap();
    assert_eq!(&c.pending()[..25], b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"abc");
    let (rest, err) = c.read_to_end();
    assert!(err.is_none(), "{err:?}");
    let rest = String::from_utf8(rest[25..].to_vec()).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.ends_with("\r\n\r\nabc"), "{rest}");
}

/// The hooks and access-log scenario, the same under both worker classes: the installed
/// command on `wsgi_app:raw` with `apps/hooks.conf.py` and an access log, one worker of
/// the class `worker_args` choose, sent `/?a=b` (with `X-T: tag`), `/pre-fail` (its
/// pre_request raises: a 500) and `/post-fail` (its post_request raises: nothing changes,
/// the 404 goes out); then [`check_hook_and_access_lines`].
pub fn hooks_and_access_scenario(tag: &str, worker_args: &[&str]) {
    let dir = TempDir::new(tag);
    let hooks = dir.path("hooks.txt");
    let access = dir.path("access.log");
    let mut args = vec!["wsgi_app:raw", "-b", "127.0.0.1:0", "-w", "1"];
    args.extend_from_slice(worker_args);
    args.extend_from_slice(&[
        "-c",
        "hooks.conf.py",
        "--access-logfile",
        access.to_str().unwrap(),
        "--access-logformat",
        "%(h)s \"%(r)s\" %(s)s %(b)s %({x-t}i)s %(m)s %(U)s %(q)s",
    ]);
    let s =
        start_installed("ferrocorn", &args, &[("FERROCORN_TEST_HOOKS", hooks.to_str().unwrap())]);
    let addr = s.addr();
    s.wait_booted(1);
    let r = raw(addr, b"GET /?a=b HTTP/1.1\r\nHost: x\r\nX-T: tag\r\n\r\n");
    assert!(r.ends_with(b"Hello, World!"), "{}", String::from_utf8_lossy(&r));
    let r = get_raw(addr, "/pre-fail");
    assert_eq!(
        status(&r),
        "HTTP/1.1 500 Internal Server Error",
        "pre_request failing fails the request"
    );
    let r = get_raw(addr, "/post-fail");
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found", "post_request failing changes nothing");
    check_hook_and_access_lines(&s, &hooks, &access);
}

/// What `apps/hooks.conf.py` records (pre_request / post_request lines in `hooks`, the
/// access log in `access`, the error log of `s`) after the requests `/?a=b` (with
/// `X-T: tag`), `/pre-fail` and `/post-fail`: the same under both worker classes.
pub fn check_hook_and_access_lines(s: &Server, hooks: &std::path::Path, access: &std::path::Path) {
    wait_until(10, "hook lines", || {
        std::fs::read_to_string(hooks).unwrap_or_default().lines().count() >= 6
    });
    let lines = std::fs::read_to_string(hooks).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines[0], "pre GET /?a=b / a=b nr=0 pid=True tag=forked-1");
    assert_eq!(lines[1], "post GET / 200 / tag=forked-1");
    assert!(lines[2].starts_with("pre GET /pre-fail /pre-fail  nr=1"), "{lines:?}");
    assert_eq!(lines[3], "post GET /pre-fail None None tag=forked-1");
    assert_eq!(lines[5], "post GET /post-fail 404 /post-fail tag=forked-1");
    let log = s.wait_for("Exception in post_request hook");
    assert!(log.contains("Error handling request GET /pre-fail\nTraceback"), "{log}");
    assert!(log.contains("RuntimeError: post_request failed"), "{log}");
    assert!(log.contains("[INFO] post_request saw 200 OK"), "{log}");
    wait_until(10, "access lines", || {
        std::fs::read_to_string(access).unwrap_or_default().lines().count() >= 3
    });
    let text = std::fs::read_to_string(access).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "127.0.0.1 \"GET /?a=b HTTP/1.1\" 200 13 tag GET / a=b");
    assert_eq!(lines[1], "127.0.0.1 \"GET /pre-fail HTTP/1.1\" 500 0 - GET /pre-fail ");
    assert_eq!(lines[2], "127.0.0.1 \"GET /post-fail HTTP/1.1\" 404 9 - GET /post-fail ");
}

// ---- nginx as a reverse proxy (Debian's, installed by scripts/setup-peers.sh) ----

/// nginx in front of `app` on a port of its own, with upstream keep-alive (4
/// connections) and `location_extra` added to its `location /`; stopped on drop.
pub struct Nginx {
    child: Child,
    /// Where nginx listens.
    pub addr: SocketAddr,
    _dir: TempDir,
}

impl Nginx {
    pub fn start(app: SocketAddr, location_extra: &str) -> Nginx {
        assert!(
            std::path::Path::new("/usr/sbin/nginx").exists(),
            "nginx is missing: run scripts/setup-peers.sh"
        );
        let dir = TempDir::new("nginx");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tmp = dir.path("");
        let tmp = tmp.to_str().unwrap();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  \
             fastcgi_temp_path {tmp}/fcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n  \
             upstream app {{ server {app}; keepalive 4; }}\n  \
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n      \
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n{location_extra}    }}\n  }}\n}}\n"
        );
        let conf_path = dir.path("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .args(["-c", conf_path.to_str().unwrap(), "-p", tmp, "-e", &format!("{tmp}/error.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let nginx = Nginx { child, addr, _dir: dir };
        wait_until(20, "nginx to answer", || TcpStream::connect(addr).is_ok());
        nginx
    }
}

impl Nginx {
    /// What nginx wrote to its error log so far.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self._dir.path("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The elapsed seconds of the `Worker (pid:N) was serving REQUEST from 127.0.0.1:...
/// for S s` line a timeout kill logs (panics with the log when it is missing).
pub fn timeout_report(log: &str, pid: i32, request: &str) -> f64 {
    let serving = log
        .lines()
        .find(|l| l.contains(&format!("Worker (pid:{pid}) was serving {request} from 127.0.0.1:")))
        .unwrap_or_else(|| panic!("{log}"));
    serving
        .split(" for ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{serving}"))
}
