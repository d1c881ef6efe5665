//! Operating the master like gunicorn, end to end (`ferrocorn-test-server`, real forks,
//! real signals, 127.0.0.1): HUP, USR2 + WINCH + QUIT, TTIN/TTOU, max_requests, a broken
//! configuration or deploy on HUP, systemd socket activation and notifications, the
//! server hooks, PID 1. The reloads run under a load loop that must see no failure.

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{KillOnDrop, Load, Server, TempDir, alive, children, get, is_hello, wait_until};

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn hup_replaces_every_worker_without_a_failed_request() {
    let srv = Server::start(&["-w", "2", "--timeout", "10", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    let old = srv.wait_booted(2);
    let load = Load::start(addr, 30);
    load.wait_more(20);
    srv.signal(Signal::SIGHUP);
    srv.wait_for("Reload complete: 2 new workers booted.");
    let all = srv.wait_booted(4);
    let new: Vec<i32> = all[2..].to_vec();
    wait_until(10, "old workers gone", || old.iter().all(|p| !alive(*p)));
    load.wait_more(20);
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}",
        failures.len(),
        ok + failures.len() as u64
    );
    let mut kids = children(srv.pid());
    kids.sort_unstable();
    let mut want = new.clone();
    want.sort_unstable();
    assert_eq!(kids, want, "the master's children are the new workers");
    let log = srv.log();
    assert!(
        log.contains("[INFO] Handling signal: hup\n") && log.contains("[INFO] Hang up: Master\n"),
        "{log}"
    );
    eprintln!("HUP under load: {ok} requests, 0 failed");
}

#[test]
fn a_broken_config_or_deploy_on_hup_keeps_the_old_workers_serving() {
    let dir = TempDir::new("broken");
    let args = dir.path("args");
    let fail = dir.path("app-broken");
    std::fs::write(&args, "").unwrap();
    let srv = Server::start_env(
        &["-w", "2", "--timeout", "10", "-b", "127.0.0.1:0"],
        &[
            ("FERROCORN_TEST_ARGS_FILE", args.to_str().unwrap()),
            ("FERROCORN_TEST_BOOT_FAIL_FILE", fail.to_str().unwrap()),
        ],
    );
    let addr = srv.addr();
    let old = srv.wait_booted(2);
    let load = Load::start(addr, 30);
    load.wait_more(10);
    // 1. The configuration no longer loads: reported, nothing else changes.
    std::fs::write(&args, "--workers\nlots\n").unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_for("[ERROR] Reload failed, the running configuration is kept: ");
    load.wait_more(10);
    assert_eq!(srv.booted().len(), 2);
    // 2. The configuration loads but the application does not (a broken deploy): the new
    // workers fail to boot, the reload is aborted, the old workers serve on.
    std::fs::write(&args, "--workers\n3\n").unwrap();
    std::fs::write(&fail, "").unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_for("Reload aborted: new worker (pid:");
    load.wait_more(10);
    assert!(old.iter().all(|p| alive(*p)), "{}", srv.log());
    // 3. Fixed: the next HUP goes through, with the new worker count.
    std::fs::remove_file(&fail).unwrap();
    srv.signal(Signal::SIGHUP);
    srv.wait_for("Reload complete: 3 new workers booted.");
    wait_until(10, "old workers gone", || old.iter().all(|p| !alive(*p)));
    load.wait_more(10);
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(children(srv.pid()).len(), 3);
    let log = srv.log();
    assert!(!log.contains("Shutting down"), "{log}");
    eprintln!("broken config + broken deploy under load: {ok} requests, 0 failed");
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let srv = Server::start(&["-w", "1", "--timeout", "10", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    srv.wait_booted(1);
    srv.signal(Signal::SIGTTIN);
    srv.wait_booted(2);
    srv.signal(Signal::SIGTTIN);
    srv.wait_booted(3);
    wait_until(10, "3 workers", || children(srv.pid()).len() == 3);
    let before = children(srv.pid());
    srv.signal(Signal::SIGTTOU);
    wait_until(10, "2 workers", || children(srv.pid()).len() == 2);
    let oldest = *before.iter().min().unwrap();
    assert!(!children(srv.pid()).contains(&oldest), "the oldest goes");
    srv.signal(Signal::SIGTTOU);
    srv.signal(Signal::SIGTTOU);
    wait_until(10, "1 worker", || children(srv.pid()).len() == 1);
    assert!(is_hello(&get(addr, "/")));
    assert_eq!(srv.booted().len(), 3, "no respawn after TTOU");
}

#[test]
fn max_requests_recycles_workers_without_a_failed_request() {
    let srv = Server::start(&[
        "-w",
        "2",
        "--timeout",
        "10",
        "--max-requests",
        "5",
        "--max-requests-jitter",
        "3",
        "-b",
        "127.0.0.1:0",
    ]);
    let addr = srv.addr();
    srv.wait_booted(2);
    let load = Load::start(addr, 30);
    load.wait_more(40);
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    let log = srv.log();
    let restarts = count(&log, "[INFO] Autorestarting worker after current request.");
    assert!(restarts >= 4, "{log}");
    srv.wait_log(10, "every replacement", |_| srv.booted().len() >= 2 + restarts);
    // No worker served more than max_requests + jitter.
    assert!(ok / (restarts as u64) <= 8 * 2, "{ok} requests, {restarts} restarts");
    eprintln!("max_requests under load: {ok} requests, {restarts} recycles, 0 failed");
}

#[test]
fn term_lets_in_flight_requests_complete_on_every_worker() {
    let mut srv =
        Server::start(&["-w", "2", "--timeout", "10", "--log-level", "debug", "-b", "127.0.0.1:0"]);
    let addr = srv.addr();
    srv.wait_booted(2);
    let a = std::thread::spawn(move || get(addr, "/sleep?ms=800"));
    let b = std::thread::spawn(move || get(addr, "/sleep?ms=900"));
    wait_until(10, "two requests in flight", || {
        srv.log().matches("[DEBUG] GET /sleep?ms=").count() == 2
    });
    srv.signal(Signal::SIGTERM);
    assert!(is_hello(&a.join().unwrap()));
    assert!(is_hello(&b.join().unwrap()));
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

/// Runs a daemonized test server; returns the master pid from the pidfile.
fn start_daemon(dir: &TempDir, extra: &[&str]) -> (i32, std::path::PathBuf, std::path::PathBuf) {
    let pidfile = dir.path("app.pid");
    let log = dir.path("error.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocorn-test-server"));
    cmd.args([
        "-D",
        "-p",
        pidfile.to_str().unwrap(),
        "--error-logfile",
        log.to_str().unwrap(),
        "-b",
        "127.0.0.1:0",
    ]);
    cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let st = cmd.status().unwrap();
    assert!(st.success(), "the launcher returns at once: {st}");
    wait_until(10, "the pidfile", || read_pid(&pidfile).is_some());
    (read_pid(&pidfile).unwrap(), pidfile, log)
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn log_addr(log: &Path) -> SocketAddr {
    wait_until(10, "Listening at", || read(log).contains("Listening at: http://"));
    let text = read(log);
    text.split("Listening at: http://").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn usr2_winch_quit_is_a_zero_downtime_upgrade() {
    let dir = TempDir::new("upgrade");
    let guard = KillOnDrop::default();
    let (old, pidfile, log) = start_daemon(&dir, &["-w", "2", "--timeout", "10"]);
    guard.add(old);
    let addr = log_addr(&log);
    wait_until(10, "2 workers", || children(old).len() == 2);
    let old_workers = children(old);
    let load = Load::start(addr, 40);
    load.wait_more(10);

    kill(Pid::from_raw(old), Signal::SIGUSR2).unwrap();
    let pid2 = dir.path("app.pid.2");
    wait_until(10, "app.pid.2", || read_pid(&pid2).is_some());
    let new = read_pid(&pid2).unwrap();
    guard.add(new);
    assert_ne!(new, old);
    assert_eq!(support::parent_of(new), Some(old), "the new master is the old one's child");
    assert_eq!(read_pid(&pidfile), Some(old), "the old master keeps the pidfile");
    wait_until(10, "the new master's workers", || children(new).len() == 2);
    for w in children(new) {
        guard.add(w);
    }
    load.wait_more(10);

    kill(Pid::from_raw(old), Signal::SIGWINCH).unwrap();
    wait_until(10, "old workers gone", || old_workers.iter().all(|p| !alive(*p)));
    load.wait_more(10);
    kill(Pid::from_raw(old), Signal::SIGQUIT).unwrap();
    wait_until(10, "the old master exits", || !alive(old));
    wait_until(10, "promotion", || {
        read(&log).contains(&format!("[{new}] [INFO] Master has been promoted."))
    });
    wait_until(10, "the pidfile back", || read_pid(&pidfile) == Some(new) && !pid2.exists());
    load.wait_more(10);
    let (ok, failures) = load.finish();
    let text = read(&log);
    assert!(failures.is_empty(), "{} failed: {failures:?}\n{text}", failures.len());
    assert!(text.contains(&format!("[{old}] [INFO] graceful stop of workers")), "{text}");
    assert!(
        text.contains(&format!("[{new}] [INFO] Listening at: http://{addr} ({new})")),
        "the same socket: {text}"
    );
    assert!(text.contains(&format!("[{old}] [INFO] Shutting down: Master")), "{text}");
    // The promoted master works as any master: TERM stops it and removes the pidfile.
    kill(Pid::from_raw(new), Signal::SIGTERM).unwrap();
    wait_until(10, "the new master exits", || !alive(new));
    assert!(!pidfile.exists());
    eprintln!("USR2+WINCH+QUIT under load: {ok} requests, 0 failed");
}

#[test]
fn usr2_then_term_of_the_old_master_without_daemon() {
    // Not daemonized, WINCH is ignored (gunicorn 27's rule); TERM to the old master
    // drains its workers gracefully while the new master serves.
    let dir = TempDir::new("upgrade-nd");
    let guard = KillOnDrop::default();
    let pidfile = dir.path("p.pid");
    let mut srv = Server::start(&[
        "-w",
        "1",
        "--timeout",
        "10",
        "--log-level",
        "debug",
        "-p",
        pidfile.to_str().unwrap(),
        "-b",
        "127.0.0.1:0",
    ]);
    let addr = srv.addr();
    srv.wait_booted(1);
    let load = Load::start(addr, 30);
    load.wait_more(10);
    srv.signal(Signal::SIGUSR2);
    let pid2 = dir.path("p.pid.2");
    wait_until(10, "p.pid.2", || read_pid(&pid2).is_some());
    let new = read_pid(&pid2).unwrap();
    guard.add(new);
    wait_until(10, "the new master's worker", || children(new).len() == 1);
    guard.add(children(new)[0]);
    srv.signal(Signal::SIGWINCH);
    srv.wait_for("[DEBUG] SIGWINCH ignored. Not daemonized");
    srv.signal(Signal::SIGUSR2);
    srv.wait_for("USR2 signal ignored. Child exists.");
    srv.signal(Signal::SIGTERM);
    // The new master is our grandchild now reparented; its output still reaches our pipe.
    assert_eq!(srv.wait_exit_only(10).code(), Some(0));
    wait_until(10, "promotion", || {
        srv.log().contains(&format!("[{new}] [INFO] Master has been promoted."))
    });
    load.wait_more(10);
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    wait_until(10, "the pidfile back", || read_pid(&pidfile) == Some(new));
    kill(Pid::from_raw(new), Signal::SIGTERM).unwrap();
    wait_until(10, "the new master exits", || !alive(new));
    eprintln!("USR2+TERM under load: {ok} requests, 0 failed");
}

#[test]
fn systemd_socket_activation_adopts_the_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // bash puts the socket at fd 3 and sets LISTEN_PID to its own pid, which `exec` keeps.
    let script = format!(r#"export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@" 3<&{fd}"#);
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_ferrocorn-test-server"));
    cmd.args(["-w", "1", "-b", "127.0.0.1:1"]);
    clear_cloexec(&listener);
    let srv = Server::start_command(cmd);
    set_cloexec(&listener);
    let log = srv.wait_for("Listening at: ");
    assert!(
        log.contains(&format!("Listening at: http://{addr} (")),
        "adopted, the bind setting ignored: {log}"
    );
    srv.wait_booted(1);
    drop(listener);
    assert!(is_hello(&get(addr, "/")));
}

fn clear_cloexec(l: &TcpListener) {
    nix::fcntl::fcntl(l, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
}

fn set_cloexec(l: &TcpListener) {
    nix::fcntl::fcntl(l, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = TempDir::new("notify");
    let sock = dir.path("notify");
    let rx = UnixDatagram::bind(&sock).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let recv = || {
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut srv = Server::start_env(
        &["-w", "1", "-b", "127.0.0.1:0"],
        &[("NOTIFY_SOCKET", sock.to_str().unwrap())],
    );
    assert!(recv().starts_with("READY=1\nSTATUS="));
    srv.wait_booted(1);
    srv.signal(Signal::SIGHUP);
    let r = recv();
    assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
    assert_eq!(recv(), "READY=1");
    srv.signal(Signal::SIGTERM);
    assert_eq!(recv(), "STOPPING=1");
    assert_eq!(srv.wait_exit(10).code(), Some(0));
}

#[test]
fn server_hooks_are_called_in_order_with_their_arguments() {
    let dir = TempDir::new("hooks");
    let hooks = dir.path("hooks.log");
    let mut srv = Server::start_env(
        &["-w", "2", "--timeout", "1", "-b", "127.0.0.1:0"],
        &[("FERROCORN_TEST_HOOKS_LOG", hooks.to_str().unwrap())],
    );
    let addr = srv.addr();
    let first = srv.wait_booted(2);
    let m = srv.pid();
    assert!(is_hello(&get(addr, "/")));
    wait_until(10, "post_worker_init", || read(&hooks).matches("post_worker_init").count() == 2);
    srv.signal(Signal::SIGTTIN);
    srv.wait_booted(3);
    srv.signal(Signal::SIGHUP);
    // HUP resets the count to `workers` (gunicorn's `setup()`): TTIN does not survive it.
    srv.wait_for("Reload complete: 2 new workers booted.");
    wait_until(10, "old workers gone", || first.iter().all(|p| !alive(*p)));
    // A stuck worker: ABRT from the master, worker_abort in the worker.
    let hang = std::thread::spawn(move || get(addr, "/hang"));
    wait_until(15, "worker_abort", || read(&hooks).contains("worker_abort "));
    assert_eq!(hang.join().unwrap(), "");
    // Its replacement booted (2 first, 1 TTIN, 2 HUP, 1 now) before QUIT, which then
    // reaches two workers.
    wait_until(15, "the stuck worker's replacement", || {
        read(&hooks).matches("post_worker_init").count() == 6
    });
    srv.signal(Signal::SIGQUIT);
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    let text = read(&hooks);
    let lines: Vec<&str> = text.lines().collect();
    let name = |l: &&str| l.split(' ').next().unwrap().to_owned();
    let names: Vec<String> = lines.iter().map(name).collect();
    // Start-up, in gunicorn's order.
    assert_eq!(lines[0], format!("nworkers_changed server={m} new=2 old=None"), "{text}");
    assert_eq!(lines[1], format!("on_starting server={m} workers=2 name=Master"), "{text}");
    assert!(
        lines[2].starts_with(&format!("when_ready server={m} workers=2 listeners=http://{addr}")),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("pre_fork server={m} workers=2 worker=0 age=1 ppid={m}")),
        "{text}"
    );
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle}\n{text}"))
    };
    let w1 = first[0];
    let post_fork = pos(&format!("post_fork server={m} workers=2 worker={w1} age="));
    let init = pos(&format!("post_worker_init worker={w1} age="));
    assert!(post_fork < init);
    // TTIN, then HUP: nworkers_changed(3, 2); then as gunicorn's reload():
    // nworkers_changed(2, 3) (setup), on_reload, the new pre_forks.
    let ttin = lines
        .iter()
        .position(|l| *l == format!("nworkers_changed server={m} new=3 old=2"))
        .expect(&text);
    let reload = pos("on_reload ");
    assert!(ttin < reload, "{text}");
    assert_eq!(lines[reload - 1], format!("nworkers_changed server={m} new=2 old=3"), "{text}");
    assert!(lines[reload + 1].starts_with("pre_fork "), "{text}");
    // Old workers: worker_exit in the worker, child_exit in the master.
    for w in &first {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("worker_exit ") && l.contains(&format!("worker={w} "))),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("child_exit ") && l.contains(&format!("worker={w} "))),
            "{text}"
        );
    }
    // The stuck worker: worker_abort, no worker_int; QUIT: worker_int in the others.
    assert_eq!(names.iter().filter(|n| *n == "worker_abort").count(), 1, "{text}");
    assert!(names.iter().filter(|n| *n == "worker_int").count() >= 2, "{text}");
    assert_eq!(names.last().unwrap(), "on_exit", "{text}");
    assert_eq!(names.iter().filter(|n| *n == "pre_exec").count(), 0);
}

#[test]
fn usr1_reopens_the_log_files() {
    let dir = TempDir::new("usr1");
    let log = dir.path("error.log");
    let rotated = dir.path("error.log.1");
    let mut srv =
        Server::start(&["-w", "1", "--error-logfile", log.to_str().unwrap(), "-b", "127.0.0.1:0"]);
    wait_until(10, "a worker", || read(&log).contains("Booting worker with pid: "));
    std::fs::rename(&log, &rotated).unwrap();
    srv.signal(Signal::SIGUSR1);
    wait_until(10, "USR1 handled", || read(&rotated).contains("Handling signal: usr1"));
    wait_until(10, "the new file", || log.exists());
    srv.signal(Signal::SIGTERM);
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    // The master's and the worker's later lines go to the new file.
    let new = read(&log);
    assert!(
        new.contains("Handling signal: term") && new.contains("Worker exiting (pid: "),
        "{new}"
    );
    assert!(!read(&rotated).contains("Handling signal: term"));
}

#[test]
fn as_pid_1_orphans_are_reaped_silently() {
    let probe = Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: unshare --pid does not work here");
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", env!("CARGO_BIN_EXE_ferrocorn-test-server")]);
    cmd.args(["-w", "1", "--log-level", "debug", "-b", "127.0.0.1:0"]);
    let mut srv = Server::start_command(cmd);
    let addr = srv.addr();
    let log = srv.wait_for("Listening at: ");
    assert!(log.contains("[1] [INFO] Listening at: "), "the master is PID 1: {log}");
    srv.wait_booted(1);
    let master = *children(srv.pid()).first().expect("unshare's child");
    let guard = KillOnDrop::default();
    guard.add(master);
    // An orphan in the namespace: bash starts `sleep` and exits; `sleep` is reparented to
    // PID 1, the master, which must reap it quietly and keep serving.
    let st = Command::new("nsenter")
        .args(["-t", &master.to_string(), "-p", "bash", "-c", "sleep 0.3 & exit 0"])
        .status()
        .unwrap();
    assert!(st.success());
    srv.wait_for("[DEBUG] Reaped unknown child process (pid:");
    assert!(is_hello(&get(addr, "/")));
    let log = srv.log();
    assert!(!log.contains("Shutting down"), "{log}");
    kill(Pid::from_raw(master), Signal::SIGTERM).unwrap();
    assert_eq!(srv.wait_exit(10).code(), Some(0));
    assert!(srv.log().contains("[1] [INFO] Shutting down: Master"));
}

#[test]
fn workers_drop_privileges_and_the_socket_is_chowned() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("owner");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sock = dir.path("s.sock");
    let bind = format!("unix:{}", sock.display());
    let srv = Server::start(&["-w", "1", "-u", "65534", "-g", "65534", "-b", &bind]);
    let pid = srv.wait_booted(1)[0];
    let ids = |field: &str| -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    wait_until(10, "the switch", || ids("Uid:") == "65534");
    assert_eq!(ids("Gid:"), "65534");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&sock).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    let master = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    assert!(master.lines().any(|l| l.starts_with("Uid:\t0")), "the master keeps its ids");
    let mut c = support::Client::over(std::os::unix::net::UnixStream::connect(&sock).unwrap());
    assert!(is_hello(&support::exchange(&mut c, "/")));
}
