//! Table tests of the arbiter's decisions (`arbiter::decide`): events in, commands out,
//! no fork, no signal, no clock.

use ferrocorn::arbiter::decide::{Arbiter, Command, Config, Event, KillSig, Sig, Status};
use ferrocorn::log::Level;

const CFG: Config = Config { workers: 2, timeout_ms: 2000, graceful_timeout_ms: 5000 };

fn spawns(cmds: &[Command]) -> Vec<usize> {
    cmds.iter().filter_map(|c| if let Command::Spawn { slot } = c { Some(*slot) } else { None }).collect()
}

fn kills(cmds: &[Command]) -> Vec<(i32, KillSig)> {
    cmds.iter().filter_map(|c| if let Command::Kill(p, s) = c { Some((*p, *s)) } else { None }).collect()
}

fn logs(cmds: &[Command]) -> Vec<(Level, String)> {
    cmds.iter().filter_map(|c| if let Command::Log(l, s) = c { Some((*l, s.clone())) } else { None }).collect()
}

fn exit(cmds: &[Command]) -> Option<u8> {
    cmds.iter().find_map(|c| if let Command::Exit(n) = c { Some(*n) } else { None })
}

/// A master with workers 100 (slot 0) and 101 (slot 1), spawned at t=0.
fn running() -> Arbiter {
    let mut a = Arbiter::new(CFG);
    assert_eq!(spawns(&a.handle(Event::Start { now: 0 })), vec![0, 1]);
    a.handle(Event::Spawned { pid: 100, slot: 0, now: 0 });
    a.handle(Event::Spawned { pid: 101, slot: 1, now: 0 });
    a
}

#[test]
fn start_spawns_the_configured_count() {
    for n in [1, 2, 5] {
        let mut a = Arbiter::new(Config { workers: n, ..CFG });
        assert_eq!(spawns(&a.handle(Event::Start { now: 0 })), (0..n).collect::<Vec<_>>());
        // Pending spawns count: a tick before the forks are reported spawns nothing more.
        assert!(spawns(&a.handle(Event::Tick { now: 10 })).is_empty());
    }
}

#[test]
fn a_dead_worker_is_replaced_in_its_slot() {
    let mut a = running();
    let out = a.handle(Event::Exited { pid: 100, status: Status::Exited(0), now: 5 });
    assert_eq!(spawns(&out), vec![0]);
    assert!(logs(&out).is_empty());
    let out = a.handle(Event::Exited { pid: 101, status: Status::Exited(1), now: 5 });
    assert_eq!(spawns(&out), vec![1]);
    assert_eq!(logs(&out), vec![(Level::Error, "Worker (pid:101) exited with code 1.".into())]);
}

#[test]
fn a_failed_fork_is_retried_on_the_next_tick() {
    let mut a = Arbiter::new(Config { workers: 1, ..CFG });
    a.handle(Event::Start { now: 0 });
    a.handle(Event::SpawnFailed { slot: 0 });
    assert_eq!(spawns(&a.handle(Event::Tick { now: 1000 })), vec![0]);
}

#[test]
fn an_outside_sigkill_is_reported_as_gunicorn_does() {
    let mut a = running();
    let out = a.handle(Event::Exited { pid: 101, status: Status::Signaled(9, "SIGKILL"), now: 5 });
    assert_eq!(logs(&out), vec![(Level::Error, "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?".into())]);
    assert_eq!(spawns(&out), vec![1]);
    let out = a.handle(Event::Exited { pid: 100, status: Status::Signaled(15, "SIGTERM"), now: 5 });
    assert_eq!(logs(&out), vec![(Level::Info, "Worker (pid:100) was sent SIGTERM!".into())]);
    let mut a = running();
    let out = a.handle(Event::Exited { pid: 100, status: Status::Signaled(11, "SIGSEGV"), now: 5 });
    assert_eq!(logs(&out), vec![(Level::Warning, "Worker (pid:100) was sent SIGSEGV!".into())]);
}

#[test]
fn a_stalled_heartbeat_gets_abrt_then_kill() {
    let mut a = running();
    a.handle(Event::Beat { pid: 100, at: 1500 });
    a.handle(Event::Beat { pid: 101, at: 1500 });
    // Exactly `timeout` old is not yet too old.
    assert!(kills(&a.handle(Event::Tick { now: 3500 })).is_empty());
    a.handle(Event::Beat { pid: 101, at: 3400 });
    let out = a.handle(Event::Tick { now: 3501 });
    assert_eq!(kills(&out), vec![(100, KillSig::Abrt)]);
    assert_eq!(logs(&out), vec![(Level::Critical, "WORKER TIMEOUT (pid:100)".into())]);
    assert!(out.contains(&Command::ReportTimeout { pid: 100, slot: 0 }));
    // ABRT once; KILL no sooner than ABORT_GRACE_MS later.
    assert!(kills(&a.handle(Event::Tick { now: 4000 })).is_empty());
    assert_eq!(kills(&a.handle(Event::Tick { now: 4501 })), vec![(100, KillSig::Kill)]);
    assert!(kills(&a.handle(Event::Tick { now: 6000 })).iter().all(|(p, _)| *p != 100));
    let out = a.handle(Event::Exited { pid: 100, status: Status::Signaled(9, "SIGKILL"), now: 6001 });
    assert_eq!(
        logs(&out),
        vec![(Level::Error, "Worker (pid:100) was sent SIGKILL by the arbiter after WORKER TIMEOUT.".into())]
    );
    assert_eq!(spawns(&out), vec![0]);
}

#[test]
fn a_worker_that_never_beats_is_timed_out_too() {
    // gunicorn compares monotonic time with a file's wall-clock mtime and never times out
    // a worker that hangs before its first notify. Here the spawn time is the first beat.
    let mut a = Arbiter::new(Config { workers: 1, ..CFG });
    a.handle(Event::Start { now: 1_000_000 });
    a.handle(Event::Spawned { pid: 7, slot: 0, now: 1_000_000 });
    a.handle(Event::Beat { pid: 7, at: 0 });
    assert!(kills(&a.handle(Event::Tick { now: 1_001_999 })).is_empty());
    assert_eq!(kills(&a.handle(Event::Tick { now: 1_002_001 })), vec![(7, KillSig::Abrt)]);
}

#[test]
fn timeout_zero_disables_the_check() {
    let mut a = Arbiter::new(Config { timeout_ms: 0, ..CFG });
    a.handle(Event::Start { now: 0 });
    a.handle(Event::Spawned { pid: 1, slot: 0, now: 0 });
    assert!(kills(&a.handle(Event::Tick { now: 10_000_000 })).is_empty());
}

#[test]
fn term_is_a_graceful_stop() {
    let mut a = running();
    let out = a.handle(Event::Signal { sig: Sig::Term, now: 1000 });
    assert_eq!(logs(&out)[0], (Level::Info, "Handling signal: term".into()));
    assert_eq!(out.iter().position(|c| *c == Command::CloseListeners), Some(1), "listeners close first");
    assert_eq!(kills(&out), vec![(100, KillSig::Term), (101, KillSig::Term)]);
    // A second TERM changes nothing; no respawn while stopping.
    assert!(kills(&a.handle(Event::Signal { sig: Sig::Term, now: 1100 })).is_empty());
    let out = a.handle(Event::Exited { pid: 100, status: Status::Exited(0), now: 1200 });
    assert!(spawns(&out).is_empty() && exit(&out).is_none());
    // No heartbeat timeouts during the stop: graceful_timeout rules.
    assert!(kills(&a.handle(Event::Tick { now: 5000 })).is_empty());
    let out = a.handle(Event::Exited { pid: 101, status: Status::Exited(0), now: 5500 });
    assert_eq!(logs(&out), vec![(Level::Info, "Shutting down: Master".into())]);
    assert_eq!(exit(&out), Some(0));
    assert!(a.handle(Event::Tick { now: 9000 }).is_empty(), "nothing after exit");
}

#[test]
fn graceful_timeout_ends_with_sigkill() {
    let mut a = running();
    a.handle(Event::Signal { sig: Sig::Term, now: 1000 });
    assert!(kills(&a.handle(Event::Tick { now: 5999 })).is_empty());
    assert_eq!(kills(&a.handle(Event::Tick { now: 6000 })), vec![(100, KillSig::Kill), (101, KillSig::Kill)]);
    let out = a.handle(Event::Exited { pid: 100, status: Status::Signaled(9, "SIGKILL"), now: 6001 });
    assert_eq!(
        logs(&out),
        vec![(Level::Error, "Worker (pid:100) was sent SIGKILL by the arbiter after graceful_timeout.".into())]
    );
    // A worker that survives SIGKILL does not keep the master forever.
    let out = a.handle(Event::Tick { now: 8001 });
    assert_eq!(exit(&out), Some(0));
}

#[test]
fn int_and_quit_are_quick() {
    for sig in [Sig::Int, Sig::Quit] {
        let mut a = running();
        let out = a.handle(Event::Signal { sig, now: 0 });
        assert_eq!(logs(&out)[0].1, format!("Handling signal: {}", sig.name()));
        assert_eq!(kills(&out), vec![(100, KillSig::Quit), (101, KillSig::Quit)]);
    }
}

#[test]
fn int_during_a_graceful_stop_hurries_it() {
    let mut a = running();
    a.handle(Event::Signal { sig: Sig::Term, now: 0 });
    let out = a.handle(Event::Signal { sig: Sig::Int, now: 100 });
    assert_eq!(kills(&out), vec![(100, KillSig::Quit), (101, KillSig::Quit)]);
    // Limit cut to 2 s from the INT (graceful_timeout was 5 s).
    assert!(kills(&a.handle(Event::Tick { now: 2099 })).is_empty());
    assert_eq!(kills(&a.handle(Event::Tick { now: 2100 })).len(), 2);
}

#[test]
fn boot_and_load_errors_halt_with_their_code() {
    for (code, reason) in [(3u8, "Worker failed to boot."), (4, "App failed to load.")] {
        let mut a = running();
        let out = a.handle(Event::Exited { pid: 100, status: Status::Exited(i32::from(code)), now: 10 });
        assert!(spawns(&out).is_empty());
        assert_eq!(kills(&out), vec![(101, KillSig::Term)]);
        // The other worker fails the same way during the halt: still a clean halt.
        let out = a.handle(Event::Exited { pid: 101, status: Status::Exited(i32::from(code)), now: 20 });
        assert_eq!(
            logs(&out),
            vec![
                (Level::Error, format!("Worker (pid:101) exited with code {code}.")),
                (Level::Error, "Shutting down: Master".into()),
                (Level::Error, format!("Reason: {reason}")),
            ]
        );
        assert_eq!(exit(&out), Some(code));
    }
}

#[test]
fn unknown_children_are_reaped_silently() {
    let mut a = running();
    let out = a.handle(Event::Exited { pid: 4242, status: Status::Exited(3), now: 0 });
    assert!(spawns(&out).is_empty() && kills(&out).is_empty() && exit(&out).is_none());
    assert!(logs(&out).iter().all(|(l, _)| *l == Level::Debug));
    assert_eq!(a.workers().len(), 2);
    // Their beats are ignored too.
    a.handle(Event::Beat { pid: 4242, at: 0 });
    assert_eq!(a.workers().len(), 2);
}

#[test]
fn signals_of_the_next_issue_are_logged_and_ignored() {
    let mut a = running();
    for sig in [Sig::Hup, Sig::Ttin, Sig::Ttou, Sig::Usr1, Sig::Usr2, Sig::Winch] {
        let out = a.handle(Event::Signal { sig, now: 0 });
        assert!(kills(&out).is_empty() && spawns(&out).is_empty() && exit(&out).is_none());
        assert_eq!(logs(&out)[0].1, format!("Handling signal: {}", sig.name()));
    }
    let out = a.handle(Event::Signal { sig: Sig::Chld, now: 0 });
    assert_eq!(logs(&out), vec![(Level::Debug, "Handling signal: chld".into())]);
}

#[test]
fn a_fork_racing_a_stop_is_stopped() {
    let mut a = Arbiter::new(Config { workers: 1, ..CFG });
    a.handle(Event::Start { now: 0 });
    let out = a.handle(Event::Signal { sig: Sig::Term, now: 1 });
    assert!(exit(&out).is_none(), "the pending fork is still to come");
    let out = a.handle(Event::Spawned { pid: 9, slot: 0, now: 2 });
    assert_eq!(kills(&out), vec![(9, KillSig::Term)]);
    assert_eq!(exit(&a.handle(Event::Exited { pid: 9, status: Status::Exited(0), now: 3 })), Some(0));
}
