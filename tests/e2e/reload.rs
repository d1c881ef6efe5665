//! `--reload` through the installed command: the master watches the files of the modules
//! the workers imported (and `reload_extra_files`), and a change rolls new workers in
//! before the old ones retire, so a load loop running across the edit sees no failed
//! request, and the first answer after the reload comes from the new code. And `--spew`:
//! the app's traced lines are gunicorn's, in both workers.

use crate::support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Client, Server, TempDir, apps, start_installed, wait_until};

/// `GET /` with `Connection: close`: the body of a 200, or what went wrong.
fn body(addr: SocketAddr) -> Result<String, String> {
    let mut c = Client::try_connect(addr)?;
    c.read_timeout(Duration::from_secs(20));
    c.try_send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let (out, err) = c.read_to_end();
    if let Some(e) = err {
        return Err(format!("read: {e}"));
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, b)) if head.starts_with("HTTP/1.1 200 ") => Ok(b.to_owned()),
        _ => Err(format!("bad answer: {text:?}")),
    }
}

/// A load loop that records every answer in order (bounded by `max_secs`).
struct Loop {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Result<String, String>>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Loop {
    fn start(addr: SocketAddr, max_secs: u64) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (Arc::clone(&stop), Arc::clone(&seen));
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(max_secs);
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                let r = body(addr);
                out.lock().unwrap().push(r);
            }
        });
        Loop { stop, seen, handle: Some(handle) }
    }

    fn last(&self) -> Option<Result<String, String>> {
        self.seen.lock().unwrap().last().cloned()
    }

    fn finish(mut self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn assert_no_failure(seen: &[Result<String, String>], s: &Server) {
    let failed: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).take(5).collect();
    assert!(failed.is_empty(), "failed of {}: {failed:?}\n{}", seen.len(), s.log());
}

/// The app's directory and a master serving it with `--reload` and `args`.
fn serve(tag: &str, args: &[&str]) -> (TempDir, Server, SocketAddr) {
    let dir = TempDir::new(&format!("reload-{tag}"));
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    std::fs::write(dir.path("extra.txt"), "a\n").unwrap();
    let mut all = vec![
        "probe_app:app",
        "--chdir",
        dir.0.to_str().unwrap(),
        "-b",
        "127.0.0.1:0",
        "-w",
        "2",
        "--reload",
    ];
    all.extend_from_slice(args);
    let s = start_installed("ferrocorn", &all, &[]);
    let addr = s.addr();
    // Both workers imported the app: each published its module list for the watcher.
    let lists = std::env::temp_dir().join(format!("ferrocorn-reload-{}", s.pid()));
    wait_until(30, "both workers' module lists", || {
        let names = std::fs::read_dir(&lists).into_iter().flatten().flatten();
        names.filter(|e| e.file_name().to_string_lossy().ends_with(".files")).count() >= 2
    });
    wait_until(30, "the app answering", || body(addr).is_ok());
    (dir, s, addr)
}

/// Rewrites `name` in `dir` in place with `f` applied to its text.
/// Saves a new version of `name` as editors do: written whole beside it, then renamed
/// over it, so the watcher never sees a half-written file (a truncate-then-write save can
/// be seen empty, and that import fails).
fn edit(dir: &TempDir, name: &str, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(dir.path(name)).unwrap();
    let tmp = dir.path(&format!(".{name}.saving"));
    std::fs::write(&tmp, f(&text)).unwrap();
    std::fs::rename(&tmp, dir.path(name)).unwrap();
}

fn version(v: &str) -> impl Fn(&str) -> String + '_ {
    move |t: &str| {
        let line = t.lines().find(|l| l.starts_with("VERSION = ")).unwrap().to_owned();
        t.replace(&line, &format!("VERSION = \"{v}\""))
    }
}

/// Edits the module under a load loop, waits for the new code to answer, and checks that
/// no request failed and the answers changed over once, from old to new.
fn edit_under_load(engine: &str) {
    let (dir, s, addr) = serve(engine, &["--reload-engine", engine]);
    let load = Loop::start(addr, 120);
    wait_until(30, "answers before the edit", || load.last().is_some());
    edit(&dir, "probe_app.py", version("v2"));
    s.wait_for("Worker reloading: ");
    s.wait_for("Reload complete: 2 new workers booted.");
    wait_until(60, "an answer of the new code", || load.last() == Some(Ok("v2 a".into())));
    let n = load.seen.lock().unwrap().len();
    wait_until(30, "more answers", || load.seen.lock().unwrap().len() > n + 20);
    let seen = load.finish();
    assert_no_failure(&seen, &s);
    // Old and new workers both answer while the new ones roll in; then only the new code.
    let tail = &seen[seen.len() - 10..];
    assert!(tail.iter().all(|r| r.as_deref() == Ok("v2 a")), "{tail:?}");
    assert!(seen.iter().all(|r| matches!(r.as_deref(), Ok("v1 a" | "v2 a"))));
    let log = s.log();
    assert_eq!(log.matches("Worker reloading: ").count(), 1, "one reload for one save: {log}");
    assert!(log.contains(&format!("Worker reloading: {}", dir.path("probe_app.py").display())));
}

#[test]
fn an_edited_module_is_served_after_a_reload_without_a_failed_request_inotify() {
    edit_under_load("inotify");
}

#[test]
fn an_edited_module_is_served_after_a_reload_without_a_failed_request_poll() {
    edit_under_load("poll");
}

#[test]
fn a_glob_in_reload_extra_files_is_watched() {
    let (dir, s, addr) = serve("glob", &["--reload-extra-file", "*.txt"]);
    assert_eq!(body(addr).unwrap(), "v1 a");
    std::fs::write(dir.path("extra.txt"), "b\n").unwrap();
    wait_until(60, "the new extra file's text", || body(addr).as_deref() == Ok("v1 b"));
    assert!(s.log().contains("extra.txt modified"), "{}", s.log());
}

#[test]
fn a_burst_of_saves_reloads_once() {
    let (dir, s, addr) = serve("burst", &[]);
    // Fifty saves in a row, as a checkout writes files.
    let mut times = Vec::new();
    for i in 0..50 {
        edit(&dir, "probe_app.py", version(&format!("b{i}")));
        times.push(Instant::now());
    }
    wait_until(60, "the last save served", || body(addr).as_deref() == Ok("b49 a"));
    s.wait_for("Reload complete: ");
    let log = s.log();
    // A burst ends after 300 ms without a change, or 2 s after its first: one reload,
    // unless this process was descheduled that long between two saves (a loaded machine),
    // and then one more per such pause.
    let pauses = times.windows(2).filter(|w| w[1] - w[0] >= Duration::from_millis(300)).count();
    let spans = ((times[49] - times[0]).as_millis() / 2000) as usize;
    let reloads = log.matches("Worker reloading: ").count();
    assert!(
        reloads >= 1 && reloads <= 1 + pauses + spans,
        "{reloads} reloads, {pauses} pauses: {log}"
    );
}

#[test]
fn code_that_fails_to_import_leaves_the_old_workers_serving_until_it_is_fixed() {
    let (dir, s, addr) = serve("broken", &[]);
    let load = Loop::start(addr, 120);
    wait_until(30, "answers before the edit", || load.last().is_some());
    edit(&dir, "probe_app.py", |t| format!("{t}\ndef broken(:\n"));
    s.wait_for("Reload aborted: ");
    let n = load.seen.lock().unwrap().len();
    wait_until(30, "answers after the failed reload", || load.seen.lock().unwrap().len() > n + 20);
    // The traceback once: a code reload boots one new worker first, and it failed.
    let log = s.log();
    assert!(log.contains("SyntaxError"), "{log}");
    assert_eq!(log.matches("Exception in worker process").count(), 1, "{log}");
    // Fixed: the next save reloads.
    edit(&dir, "probe_app.py", |t| version("v3")(&t.replace("\ndef broken(:\n", "\n")));
    wait_until(60, "the fixed code answering", || load.last() == Some(Ok("v3 a".into())));
    let seen = load.finish();
    assert_no_failure(&seen, &s);
    assert_eq!(s.log().matches("Reload aborted: ").count(), 1, "{}", s.log());
}

// ---- spew ----

/// The trace lines of the app's own module (`probe_app:LINE: source`, the source taken
/// from the file) that `program` prints with `--spew` while it imports the app and answers
/// `GET /` once. The trace of
/// everything else (gunicorn traces its whole worker loop: megabytes a second) is read
/// and dropped as it comes, not kept.
fn app_trace(program: &str, args: &[&str]) -> Vec<String> {
    use std::io::BufRead;
    let dir = TempDir::new(&format!("spew-{program}"));
    std::fs::copy(apps().join("probe_app.py"), dir.path("probe_app.py")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(support::venv().join("bin").join(program))
        .args(["probe_app:app", "--chdir", dir.0.to_str().unwrap(), "-b", &bind])
        .args(["-w", "1", "--spew"])
        .args(args)
        .current_dir(&dir.0)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Ended on a panic too.
    let guard = support::KillOnDrop::default();
    guard.add(child.id() as i32);
    let kept = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = child.stdout.take().unwrap();
    let sink = Arc::clone(&kept);
    std::thread::spawn(move || {
        // The master and the worker write to the same pipe, a trace line and its newline
        // in two writes: lines of one process can end up inside a line of the other. Each
        // `probe_app:N: ` that starts a write is kept, as the line number it names.
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            for (at, _) in line.match_indices("probe_app:") {
                let rest = &line[at + "probe_app:".len()..];
                let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if !n.is_empty() && rest[n.len()..].starts_with(": ") {
                    sink.lock().unwrap().push(format!("probe_app:{n}"));
                }
            }
        }
    });
    let addr: SocketAddr = bind.parse().unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let mut answered = None;
    // The first answer, then the request's last traced line: the app's `return`.
    let src = std::fs::read_to_string(dir.path("probe_app.py")).unwrap();
    let ret = 1 + src.lines().position(|l| l.trim() == "return [body]").unwrap();
    let ret = format!("probe_app:{ret}");
    while !kept.lock().unwrap().contains(&ret) {
        assert!(
            Instant::now() < end,
            "{program} {args:?}: answer {answered:?}, traced {:?}",
            kept.lock().unwrap()
        );
        if answered.is_none() {
            answered = body(addr).ok().filter(|b| b == "v1 -");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let lines = kept.lock().unwrap().clone();
    // Polling until the app answered may have made more than one request: the import and
    // the first request's lines.
    let end = lines.iter().position(|l| *l == ret).unwrap();
    // Each traced line with its source, as gunicorn prints it.
    let source: Vec<&str> = src.lines().collect();
    lines[..=end]
        .iter()
        .map(|l| {
            let n: usize = l["probe_app:".len()..].parse().unwrap();
            format!("{l}: {}", source[n - 1].trim_end())
        })
        .collect()
}

#[test]
fn spew_traces_the_app_as_gunicorn_does() {
    support::oracle_venv();
    let want = app_trace("gunicorn", &[]);
    assert!(want.iter().any(|l| l.contains("VERSION = \"v1\"")), "the import is traced: {want:?}");
    assert_eq!(app_trace("ferrocorn", &[]), want);
    // gunicorn's gthread worker traces only its main thread; ferrocorn's serving threads
    // run the app traced too.
    let threaded = app_trace("ferrocorn", &["-k", "gthread", "--threads", "2"]);
    assert_eq!(threaded, want);
}
