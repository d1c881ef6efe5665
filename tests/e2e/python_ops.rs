//! Operating the INSTALLED `ferrocorn` command (`.venv`, see `scripts/install-ferrocorn.sh`)
//! like gunicorn: every server hook with its arguments compared with gunicorn 27.0.1
//! (`.venv/bin/gunicorn`) over the same signals; prometheus_client's multiprocess mode;
//! HUP, a broken HUP, USR2, TTIN/TTOU and max_requests under a load loop that must see no
//! failure; process titles in `ps`.
//!
//! Servers bind 127.0.0.1:0; every wait polls with a deadline; only the processes a test
//! started are signalled.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;
use support::{Client, Load, Server, TempDir, alive, children, get, start_installed, wait_until};

/// Starts `program` (`ferrocorn` or `gunicorn` from the venv) in the apps directory with
/// a clean environment.
fn start(program: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    start_installed(program, args, env)
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn count(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

// ---- every server hook, against gunicorn ----

/// Runs the hook scenario under `program`; the recorded lines.
fn hook_scenario(program: &str) -> Vec<String> {
    let dir = TempDir::new(&format!("ops-hooks-{program}"));
    let file = dir.path("hooks.txt");
    let marker = dir.path("sleeping");
    let f = file.to_str().unwrap();
    let mut s = start(
        program,
        &["ops_app:app", "-c", "ops_hooks.conf.py", "-b", "127.0.0.1:0", "-w", "1"],
        &[("OPS_HOOKS", f), ("OPS_MARKER", marker.to_str().unwrap())],
    );
    let addr = s.addr();
    let inits = |n: usize| {
        wait_until(20, &format!("{n} post_worker_init"), || {
            count(&read(&file), "post_worker_init") >= n
        })
    };
    inits(1);
    assert_eq!(body(&get(addr, "/")), "Hello, World!");
    // TTIN: a second worker; TTOU: the oldest leaves.
    s.signal(Signal::SIGTTIN);
    inits(2);
    s.signal(Signal::SIGTTOU);
    wait_until(20, "TTOU's child_exit", || count(&read(&file), "child_exit") >= 1);
    // HUP: a new worker, the old one retired.
    s.signal(Signal::SIGHUP);
    inits(3);
    wait_until(20, "HUP's child_exit", || count(&read(&file), "child_exit") >= 2);
    // A request stuck past the timeout: worker_abort, then a replacement.
    let stuck = std::thread::spawn(move || support::try_get(addr, "/sleep?30"));
    wait_until(20, "the sleeping request", || marker.exists());
    wait_until(20, "the timeout's child_exit", || count(&read(&file), "child_exit") >= 3);
    inits(4);
    let _ = stuck.join();
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(30).code(), Some(0), "{program}: {}", s.log());
    read(&file).lines().map(str::to_owned).collect()
}

/// The lines of the master (in order), and of each worker by age (in order).
fn by_process(lines: &[String]) -> (Vec<String>, std::collections::BTreeMap<String, Vec<String>>) {
    let mut master = Vec::new();
    let mut workers: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for l in lines {
        let in_worker = l.contains("worker.pid=self");
        if in_worker {
            let age =
                l.split(" age=").nth(1).and_then(|a| a.split(' ').next()).unwrap_or("?").to_owned();
            workers.entry(age).or_default().push(l.clone());
        } else {
            master.push(l.clone());
        }
    }
    (master, workers)
}

#[test]
fn every_server_hook_as_under_gunicorn() {
    let ours = std::thread::spawn(|| hook_scenario("ferrocorn"));
    let theirs = hook_scenario("gunicorn");
    let ours = ours.join().unwrap();
    let (om, ow) = by_process(&ours);
    let (gm, gw) = by_process(&theirs);
    eprintln!("ferrocorn master:\n{}\n\ngunicorn master:\n{}", om.join("\n"), gm.join("\n"));
    eprintln!("ferrocorn workers:\n{ow:#?}\n\ngunicorn workers:\n{gw:#?}");
    assert_eq!(om, gm, "the master's hooks");
    assert_eq!(ow, gw, "the workers' hooks");
}

// ---- operations under load ----

/// A config file in `dir` that the test can edit, and the arguments to serve with it.
fn config(dir: &TempDir, text: &str) -> PathBuf {
    let p = dir.path("ops.conf.py");
    std::fs::write(&p, text).unwrap();
    p
}

/// The live children of the master, sorted.
fn workers(master: i32) -> Vec<i32> {
    let mut c = children(master);
    c.sort_unstable();
    c
}

#[test]
fn hup_broken_hup_ttin_ttou_under_load() {
    let dir = TempDir::new("ops-hup");
    let good = "workers = 2\ntimeout = 10\ngraceful_timeout = 5\n";
    let cfg = config(&dir, good);
    let s =
        start("ferrocorn", &["ops_app:app", "-c", cfg.to_str().unwrap(), "-b", "127.0.0.1:0"], &[]);
    let addr = s.addr();
    s.wait_booted(2);
    let first = workers(s.pid());
    let load = Load::start(addr, 40);
    load.wait_more(10);
    // HUP: two new workers, the old ones gone.
    s.signal(Signal::SIGHUP);
    wait_until(20, "the HUP's new workers", || s.booted().len() >= 4);
    wait_until(20, "the old workers to leave", || {
        let now = workers(s.pid());
        now.len() == 2 && now.iter().all(|p| !first.contains(p))
    });
    load.wait_more(10);
    // A config file that no longer loads: reported, the running workers keep serving.
    let second = workers(s.pid());
    std::fs::write(&cfg, "workers = (\n").unwrap();
    s.signal(Signal::SIGHUP);
    let log = s.wait_for("Reload failed, the running configuration is kept");
    assert!(log.contains("SyntaxError"), "{log}");
    load.wait_more(20);
    assert_eq!(workers(s.pid()), second, "the old workers still serve");
    std::fs::write(&cfg, good).unwrap();
    // TTIN / TTOU change the count.
    s.signal(Signal::SIGTTIN);
    wait_until(20, "3 workers", || workers(s.pid()).len() == 3);
    load.wait_more(10);
    s.signal(Signal::SIGTTOU);
    wait_until(20, "2 workers", || workers(s.pid()).len() == 2);
    load.wait_more(10);
    let ok = load.finish_ok(&s);
    eprintln!("HUP, broken HUP, TTIN, TTOU under load: {ok} requests, 0 failed");
}

#[test]
fn usr2_upgrade_under_load_with_the_pidfile() {
    let dir = TempDir::new("ops-usr2");
    let pidfile = dir.path("app.pid");
    let pid2 = dir.path("app.pid.2");
    let mut s = start(
        "ferrocorn",
        &["ops_app:app", "-w", "2", "-b", "127.0.0.1:0", "-p", pidfile.to_str().unwrap()],
        &[],
    );
    let addr = s.addr();
    s.wait_booted(2);
    let old = s.pid();
    assert_eq!(read(&pidfile).trim(), old.to_string());
    let load = Load::start(addr, 40);
    load.wait_more(10);
    s.signal(Signal::SIGUSR2);
    // The new master writes `<pidfile>.2` and boots its own workers on the inherited socket.
    wait_until(20, "app.pid.2", || !read(&pid2).trim().is_empty());
    let new: i32 = read(&pid2).trim().parse().unwrap();
    assert_ne!(new, old);
    wait_until(20, "the new master's workers", || s.booted().len() >= 4);
    load.wait_more(10);
    // Not daemonized (WINCH is ignored then, as gunicorn): TERM takes the old master down.
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit_only(30).code(), Some(0));
    // The new master is promoted: the pidfile is its again.
    wait_until(20, "the promotion", || read(&pidfile).trim() == new.to_string() && !pid2.exists());
    load.wait_more(10);
    let (ok, failures) = load.finish();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(new), Signal::SIGTERM).unwrap();
    wait_until(30, "the new master to exit", || !alive(new));
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}\n{}",
        failures.len(),
        ok + failures.len() as u64,
        s.log()
    );
    assert!(!pidfile.exists(), "the new master removed its pidfile");
    eprintln!("USR2 + TERM under load: {ok} requests, 0 failed");
}

#[test]
fn max_requests_recycles_under_load() {
    let s = start(
        "ferrocorn",
        &[
            "ops_app:app",
            "-w",
            "2",
            "-b",
            "127.0.0.1:0",
            "--max-requests",
            "5",
            "--max-requests-jitter",
            "2",
        ],
        &[],
    );
    let addr = s.addr();
    s.wait_booted(2);
    let load = Load::start(addr, 40);
    load.wait_more(40);
    let (ok, failures) = load.finish();
    let restarts = s.log().matches("Autorestarting worker after current request.").count();
    assert!(failures.is_empty(), "{failures:?}\n{}", s.log());
    assert!(restarts >= 4, "{}", s.log());
    eprintln!("max_requests under load: {ok} requests, {restarts} recycles, 0 failed");
}

// ---- integrations ----

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
}

#[test]
fn prometheus_multiprocess_and_post_fork_set_up() {
    let dir = TempDir::new("ops-prom");
    let d = dir.path("prom");
    std::fs::create_dir_all(&d).unwrap();
    let file = dir.path("hooks.txt");
    let s = start(
        "ferrocorn",
        &[
            "ops_app:app",
            "-c",
            "ops_hooks.conf.py",
            "-w",
            "2",
            "-b",
            "127.0.0.1:0",
            "--timeout",
            "10",
        ],
        &[("PROMETHEUS_MULTIPROC_DIR", d.to_str().unwrap()), ("OPS_HOOKS", file.to_str().unwrap())],
    );
    let addr = s.addr();
    s.wait_booted(2);
    // Requests on both workers: while one sleeps, the other serves.
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0;
    wait_until(20, "both workers to serve /pid", || {
        let sleeper = std::thread::spawn(move || get(addr, "/sleep?0.2"));
        for _ in 0..5 {
            let r = get(addr, "/pid");
            let (pid, tracer) = body(&r).split_once(' ').unwrap();
            assert_eq!(pid, tracer, "post_fork's module global is the worker's own pid");
            seen.insert(pid.to_owned());
            n += 1;
        }
        let _ = sleeper.join();
        seen.len() == 2
    });
    let m = body(&get(addr, "/metrics")).to_owned();
    assert_eq!(metric(&m, "ops_requests_total{path=\"/pid\"}"), f64::from(n), "{m}");
    assert_eq!(metric(&m, "ops_worker_up"), 2.0, "{m}");
    // TTOU: child_exit marks the worker dead; its live gauge goes, its counts stay.
    s.signal(Signal::SIGTTOU);
    // (the hook records its call before it marks the worker dead)
    let mut m = String::new();
    wait_until(20, "the dead worker's gauge to go", || {
        m = body(&get(addr, "/metrics")).to_owned();
        metric(&m, "ops_worker_up") == 1.0
    });
    assert_eq!(count(&read(&file), "child_exit"), 1);
    assert_eq!(metric(&m, "ops_requests_total{path=\"/pid\"}"), f64::from(n), "{m}");
    eprintln!("prometheus: {n} requests over {} workers counted once", seen.len());
}

#[test]
fn process_titles_in_ps() {
    let args = |pid: i32| -> String {
        let o = Command::new("ps").args(["-o", "args=", "-p", &pid.to_string()]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let s = start("ferrocorn", &["ops_app:app", "-w", "1", "-b", "127.0.0.1:0", "-n", "shop"], &[]);
    let w = s.wait_booted(1)[0];
    wait_until(10, "the titles", || {
        args(s.pid()) == "ferrocorn: master [shop]" && args(w) == "ferrocorn: worker [shop]"
    });
    drop(s);
    // default_proc_name: the application, as gunicorn.
    let s = start("ferrocorn", &["ops_app:app", "-w", "1", "-b", "127.0.0.1:0"], &[]);
    let w = s.wait_booted(1)[0];
    wait_until(10, "the default titles", || {
        args(s.pid()) == "ferrocorn: master [ops_app:app]"
            && args(w) == "ferrocorn: worker [ops_app:app]"
    });
    let g = start("gunicorn", &["ops_app:app", "-w", "1", "-b", "127.0.0.1:0"], &[]);
    let gw = g.wait_booted(1)[0];
    wait_until(10, "gunicorn's titles", || {
        args(g.pid()) == "gunicorn: master [ops_app:app]"
            && args(gw) == "gunicorn: worker [ops_app:app]"
    });
}

#[test]
fn gthread_workers_take_the_reloaded_settings_on_hup_under_load() {
    // Two workers, so that the old worker's stop races new connections that the kernel
    // queued for it (the listeners are EPOLLEXCLUSIVE): none may be left waiting.
    let dir = TempDir::new("ops-gthread-hup");
    let access = dir.path("access.log");
    let conf = |tag: &str| {
        format!(
            "worker_class = 'gthread'\nthreads = 2\nworkers = 2\ngraceful_timeout = 5\naccesslog = {:?}\naccess_log_format = '{tag} %(s)s %(U)s'\n",
            access.to_str().unwrap()
        )
    };
    let cfg = config(&dir, &conf("first"));
    let s =
        start("ferrocorn", &["ops_app:app", "-c", cfg.to_str().unwrap(), "-b", "127.0.0.1:0"], &[]);
    let addr = s.addr();
    s.wait_booted(2);
    assert_eq!(body(&get(addr, "/")), "Hello, World!");
    wait_until(20, "an access line in the first format", || {
        read(&access).lines().any(|l| l == "first 200 /")
    });
    let load = Load::start(addr, 60);
    load.wait_more(10);
    std::fs::write(&cfg, conf("second")).unwrap();
    for round in 0..3 {
        let before = workers(s.pid());
        s.signal(Signal::SIGHUP);
        wait_until(20, &format!("HUP {round}: the old workers to leave"), || {
            let now = workers(s.pid());
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        });
        load.wait_more(10);
    }
    let ok = load.finish_ok(&s);
    wait_until(20, "an access line in the reloaded format", || {
        read(&access).lines().any(|l| l == "second 200 /")
    });
    eprintln!("gthread: 3 HUPs under load: {ok} requests, 0 failed");
}

/// Reads one response with a `Content-Length` from a kept-alive connection; its body.
fn read_kept_alive(c: &mut Client) -> String {
    let r = c.read().expect("a response before the read timeout");
    let text = r.text();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ") && !head.contains("connection: close"), "{head}");
    assert!(r.header("Content-Length").is_some(), "{head}");
    r.body_text()
}

#[test]
fn gthread_spreads_a_burst_of_keep_alive_connections_over_the_workers() {
    // 200 keep-alive connections opened at once (as wrk does), each asking which worker
    // serves it: the kernel would hand nearly all of them to the worker that waits first
    // (a 55/201 split of 256 was seen before the workers balanced), and each connection
    // stays with its worker for its whole life.
    const N: usize = 200;
    // "Booting worker" is logged at fork, before the worker imports the app: the burst
    // waits until both workers ran post_worker_init (each touches a file named after its
    // pid), so that both are accepting before it starts.
    let dir = TempDir::new("ops-burst");
    let conf = dir.path("ready.conf.py");
    std::fs::write(
        &conf,
        "import os\n\ndef post_worker_init(worker):\n    open(os.path.join(os.environ['READY_DIR'], str(worker.pid)), 'w').close()\n",
    )
    .unwrap();
    let ready = dir.path("ready");
    std::fs::create_dir(&ready).unwrap();
    let s = start(
        "ferrocorn",
        &[
            "ops_app:app",
            "-c",
            conf.to_str().unwrap(),
            "-k",
            "gthread",
            "--threads",
            "2",
            "-w",
            "2",
            "-b",
            "127.0.0.1:0",
        ],
        &[("READY_DIR", ready.to_str().unwrap())],
    );
    let addr = s.addr();
    wait_until(20, "both workers ran post_worker_init", || {
        std::fs::read_dir(&ready).map_or(0, |d| d.count()) >= 2
    });
    let mut conns: Vec<Client> = (0..N)
        .map(|_| {
            let mut c = Client::connect(addr);
            c.read_timeout(std::time::Duration::from_secs(20));
            c
        })
        .collect();
    for c in &mut conns {
        c.send(b"GET /pid HTTP/1.1\r\nHost: test\r\n\r\n");
    }
    let mut per_worker = std::collections::BTreeMap::<String, usize>::new();
    for c in &mut conns {
        let pid = read_kept_alive(c).split_whitespace().next().unwrap().to_string();
        // The connection stays with its worker.
        c.send(b"GET /pid HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(read_kept_alive(c).split_whitespace().next().unwrap(), pid);
        *per_worker.entry(pid).or_default() += 1;
    }
    let mut workers = workers(s.pid());
    let mut seen: Vec<i32> = per_worker.keys().map(|p| p.parse().unwrap()).collect();
    workers.sort_unstable();
    seen.sort_unstable();
    assert_eq!(seen, workers, "{per_worker:?}");
    assert!(
        per_worker.values().all(|&n| n >= N * 2 / 5),
        "each worker takes at least 40%: {per_worker:?}"
    );
    eprintln!("a burst of {N} keep-alive connections over 2 workers: {per_worker:?}");
}
