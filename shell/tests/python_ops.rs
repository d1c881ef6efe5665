//! Operating the INSTALLED `ferrocorn` command (`.venv`, see `scripts/install-ferrocorn.sh`)
//! like gunicorn: every server hook with its arguments compared with gunicorn 27.0.1
//! (`.venv/bin/gunicorn`) over the same signals; prometheus_client's multiprocess mode;
//! HUP, a broken HUP, USR2, TTIN/TTOU and max_requests under a load loop that must see no
//! failure; process titles in `ps`.
//!
//! Servers bind 127.0.0.1:0; every wait polls with a deadline; only the processes a test
//! started are signalled.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::Signal;
use support::{Server, TempDir, get, wait_until};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn venv() -> PathBuf {
    let v = std::env::var_os("FERROCORN_VENV").map_or_else(|| repo_root().join(".venv"), PathBuf::from);
    assert!(v.join("bin/ferrocorn").exists(), "{} has no ferrocorn: run scripts/install-ferrocorn.sh", v.display());
    v
}

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// Starts `program` (`ferrocorn` or `gunicorn` from the venv) in the apps directory with
/// a clean environment.
fn start(program: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
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
    let inits = |n: usize| wait_until(20, &format!("{n} post_worker_init"), || count(&read(&file), "post_worker_init") >= n);
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
    let mut workers: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for l in lines {
        let in_worker = l.contains("worker.pid=self");
        if in_worker {
            let age = l.split(" age=").nth(1).and_then(|a| a.split(' ').next()).unwrap_or("?").to_owned();
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
