//! Replacing workers under load loses no request, with keep-alive clients (each reusing its
//! connection until the server answers `Connection: close`, as Python's `http.client`
//! users do) and `Connection: close` clients at once, on the INSTALLED `ferrocorn`
//! (`.venv`, see scripts/install-ferrocorn.sh) with both worker classes: HUP (twice in a
//! row, then once more), TTIN, TTOU, `max_requests` recycling all along, a USR2 upgrade
//! whose old master is stopped with TERM (its workers get TERM), and a HUP of the new
//! master.
//!
//! A worker that is retired must not close a kept-alive connection under its client: the
//! client may have sent its next request already, and it would be lost. Every operation
//! waits for its effect (workers counted in /proc, the pidfile), then for more answers;
//! the loads are bounded in time; only processes the test started are signalled.

use crate::support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{KillOnDrop, Load, TempDir, alive, children, start_installed, wait_until};

/// The live children of `master`, sorted.
fn workers(master: i32) -> Vec<i32> {
    let mut c = children(master);
    c.sort_unstable();
    c
}

fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap();
}

/// Waits until `master` has `n` workers, none of them in `old`.
fn wait_replaced(master: i32, old: &[i32], n: usize, what: &str) {
    wait_until(30, what, || {
        let now = workers(master);
        now.len() == n && now.iter().all(|p| !old.contains(p))
    });
}

fn replace_workers_under_load(worker: &str) {
    let dir = TempDir::new(&format!("ops-ka-{worker}"));
    let pidfile = dir.path("app.pid");
    let pid2 = dir.path("app.pid.2");
    let mut args = vec![
        "ops_app:app",
        "-k",
        worker,
        "-w",
        "2",
        "-b",
        "127.0.0.1:0",
        "--max-requests",
        "300",
        "--max-requests-jitter",
        "50",
        "--graceful-timeout",
        "10",
        "-p",
        pidfile.to_str().unwrap(),
    ];
    if worker == "gthread" {
        args.extend(["--threads", "4"]);
    }
    let mut s = start_installed("ferrocorn", &args, &[]);
    let addr = s.addr();
    s.wait_booted(2);
    let master = s.pid();
    let kept = Load::keep_alive(addr, 8, 150);
    let closing = Load::start(addr, 150);
    let more = |what: &str| {
        kept.wait_more(300);
        closing.wait_more(10);
        eprintln!("{worker}: {what}: {} + {} answers so far", kept.ok(), closing.ok());
    };
    more("started");

    // HUP twice in a row, then once more.
    let before = workers(master);
    s.signal(Signal::SIGHUP);
    s.signal(Signal::SIGHUP);
    wait_replaced(master, &before, 2, "two HUPs: the old workers to leave");
    more("HUP, HUP");
    let before = workers(master);
    s.signal(Signal::SIGHUP);
    wait_replaced(master, &before, 2, "HUP: the old workers to leave");
    more("HUP");

    // TTIN, TTOU.
    s.signal(Signal::SIGTTIN);
    wait_until(30, "3 workers", || workers(master).len() == 3);
    more("TTIN");
    s.signal(Signal::SIGTTOU);
    wait_until(30, "2 workers", || workers(master).len() == 2);
    more("TTOU");

    // USR2: a new master on the same socket; TERM stops the old one and its workers.
    s.signal(Signal::SIGUSR2);
    wait_until(30, "app.pid.2", || {
        std::fs::read_to_string(&pid2).is_ok_and(|p| p.trim().parse::<i32>().is_ok())
    });
    let new: i32 = std::fs::read_to_string(&pid2).unwrap().trim().parse().unwrap();
    let new_master = KillOnDrop::default();
    new_master.add(new);
    wait_until(30, "the new master's workers", || workers(new).len() == 2);
    more("USR2");
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit_only(30).code(), Some(0), "{}", s.log());
    wait_until(30, "the promotion", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim() == new.to_string())
    });
    more("TERM of the old master");

    // HUP of the new master.
    let before = workers(new);
    signal(new, Signal::SIGHUP);
    wait_replaced(new, &before, 2, "HUP of the new master: the old workers to leave");
    more("HUP of the new master");

    let conns = kept.connections();
    let (kept_ok, kept_failed) = kept.finish();
    let (closing_ok, closing_failed) = closing.finish();
    signal(new, Signal::SIGTERM);
    wait_until(30, "the new master to exit", || !alive(new));
    let recycled = s.log().matches("Autorestarting worker after current request.").count();
    eprintln!(
        "{worker}: keep-alive clients: {} failed of {} over {conns} connections; \
         Connection: close client: {} failed of {}; {recycled} max_requests recycles",
        kept_failed.len(),
        kept_ok + kept_failed.len() as u64,
        closing_failed.len(),
        closing_ok + closing_failed.len() as u64,
    );
    assert!(
        kept_failed.is_empty() && closing_failed.is_empty(),
        "keep-alive: {kept_failed:?}\nclose: {closing_failed:?}\n{}",
        s.log()
    );
    assert!(recycled >= 2, "max_requests recycled workers along the way:\n{}", s.log());
    if worker == "gthread" {
        assert!(conns * 4 < kept_ok, "the connections were kept alive: {conns} for {kept_ok}");
    }
}

#[test]
fn gthread_replaces_workers_without_losing_a_kept_alive_request() {
    replace_workers_under_load("gthread");
}

#[test]
fn sync_replaces_workers_without_losing_a_request() {
    replace_workers_under_load("sync");
}
