//! Table tests of the arbiter's decisions (`arbiter::decide`): events in, commands out,
//! no fork, no signal, no clock.

use ferrocorn::arbiter::decide::{Arbiter, Command, Config, Event, Hook, KillSig, Sig, Status};
use ferrocorn::log::Level;

const CFG: Config = Config {
    workers: 2,
    timeout_ms: 2000,
    graceful_timeout_ms: 5000,
    daemon: false,
    systemd: false,
    reuse_port: false,
    max_workers: 8,
};

fn spawns(cmds: &[Command]) -> Vec<usize> {
    cmds.iter()
        .filter_map(|c| if let Command::Spawn { slot, .. } = c { Some(*slot) } else { None })
        .collect()
}

fn kills(cmds: &[Command]) -> Vec<(i32, KillSig)> {
    cmds.iter()
        .filter_map(|c| if let Command::Kill(p, s) = c { Some((*p, *s)) } else { None })
        .collect()
}

fn logs(cmds: &[Command]) -> Vec<(Level, String)> {
    cmds.iter()
        .filter_map(|c| if let Command::Log(l, s) = c { Some((*l, s.clone())) } else { None })
        .collect()
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
    assert_eq!(
        logs(&out),
        vec![(Level::Error, "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?".into())]
    );
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
    let out =
        a.handle(Event::Exited { pid: 100, status: Status::Signaled(9, "SIGKILL"), now: 6001 });
    assert_eq!(
        logs(&out),
        vec![(
            Level::Error,
            "Worker (pid:100) was sent SIGKILL by the arbiter after WORKER TIMEOUT.".into()
        )]
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
    assert_eq!(
        out.iter().position(|c| *c == Command::CloseListeners { unlink: true }),
        Some(1),
        "listeners close first"
    );
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
    assert_eq!(
        kills(&a.handle(Event::Tick { now: 6000 })),
        vec![(100, KillSig::Kill), (101, KillSig::Kill)]
    );
    let out =
        a.handle(Event::Exited { pid: 100, status: Status::Signaled(9, "SIGKILL"), now: 6001 });
    assert_eq!(
        logs(&out),
        vec![(
            Level::Error,
            "Worker (pid:100) was sent SIGKILL by the arbiter after graceful_timeout.".into()
        )]
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
        let out =
            a.handle(Event::Exited { pid: 100, status: Status::Exited(i32::from(code)), now: 10 });
        assert!(spawns(&out).is_empty());
        assert_eq!(kills(&out), vec![(101, KillSig::Term)]);
        // The other worker fails the same way during the halt: still a clean halt.
        let out =
            a.handle(Event::Exited { pid: 101, status: Status::Exited(i32::from(code)), now: 20 });
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
fn a_fork_racing_a_stop_is_stopped() {
    let mut a = Arbiter::new(Config { workers: 1, ..CFG });
    a.handle(Event::Start { now: 0 });
    let out = a.handle(Event::Signal { sig: Sig::Term, now: 1 });
    assert!(exit(&out).is_none(), "the pending fork is still to come");
    let out = a.handle(Event::Spawned { pid: 9, slot: 0, now: 2 });
    assert_eq!(kills(&out), vec![(9, KillSig::Term)]);
    assert_eq!(
        exit(&a.handle(Event::Exited { pid: 9, status: Status::Exited(0), now: 3 })),
        Some(0)
    );
}

// ---- every signal in every state ----------------------------------------------------

/// The commands as short strings: `kill:100:Term`, `spawn:2`, `Reload`, `hook:n:3<-2`,
/// log lines as `INFO text` (the `Handling signal` line is checked apart).
fn render(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| {
            Some(match c {
                Command::Log(_, l) if l.starts_with("Handling signal: ") => return None,
                Command::Log(level, l) => format!("{} {l}", level.name()),
                Command::Spawn { slot, .. } => format!("spawn:{slot}"),
                Command::Kill(p, s) => format!("kill:{p}:{s:?}"),
                Command::Hook(Hook::NWorkersChanged { new, old }) => format!("hook:n:{new}<-{old}"),
                Command::Hook(Hook::ChildExit { pid, .. }) => format!("hook:exit:{pid}"),
                Command::Hook(Hook::OnReload) => "hook:on_reload".to_owned(),
                Command::CloseListeners { unlink } => format!("close:{unlink}"),
                other => format!("{other:?}"),
            })
        })
        .collect()
}

fn handling(cmds: &[Command]) -> Option<(Level, String)> {
    logs(cmds).into_iter().find(|(_, l)| l.starts_with("Handling signal: "))
}

/// The states a master can be in when a signal arrives.
fn states() -> Vec<(&'static str, Arbiter)> {
    let daemon = {
        let mut a = Arbiter::new(Config { daemon: true, ..CFG });
        a.handle(Event::Start { now: 0 });
        a.handle(Event::Spawned { pid: 100, slot: 0, now: 0 });
        a.handle(Event::Spawned { pid: 101, slot: 1, now: 0 });
        a
    };
    let stopping = {
        let mut a = running();
        a.handle(Event::Signal { sig: Sig::Term, now: 0 });
        a
    };
    let reloading = {
        let mut a = running();
        a.handle(Event::Signal { sig: Sig::Hup, now: 0 });
        a.handle(Event::Reloaded { cfg: CFG, now: 0 });
        a.handle(Event::Spawned { pid: 200, slot: 2, now: 0 });
        a.handle(Event::Spawned { pid: 201, slot: 3, now: 0 });
        a
    };
    let upgrading = {
        let mut a = running();
        a.handle(Event::Signal { sig: Sig::Usr2, now: 0 });
        a.handle(Event::Reexeced { pid: 300 });
        a
    };
    let reexeced = {
        let mut a = Arbiter::new(CFG).reexeced_by(1);
        a.handle(Event::Start { now: 0 });
        a.handle(Event::Spawned { pid: 100, slot: 0, now: 0 });
        a.handle(Event::Spawned { pid: 101, slot: 1, now: 0 });
        a
    };
    vec![
        ("running", running()),
        ("daemon", daemon),
        ("stopping", stopping),
        ("reloading", reloading),
        ("upgrading", upgrading),
        ("reexeced", reexeced),
    ]
}

#[test]
fn every_signal_in_every_state() {
    let quit_all = "kill:100:Quit kill:101:Quit";
    let s = |x: &str| x.to_owned();
    // (state, signal) -> rendered commands; `-` = only a debug line, no action.
    let expect = |state: &str, sig: Sig| -> String {
        match (state, sig) {
            ("stopping", Sig::Int | Sig::Quit) => s(quit_all),
            ("stopping", Sig::Term | Sig::Chld) => s(""),
            ("stopping", sig) => {
                format!("DEBUG Ignoring SIG{} while shutting down.", sig.name().to_uppercase())
            }
            ("reloading", Sig::Int | Sig::Quit) => {
                format!("close:true {quit_all} kill:200:Quit kill:201:Quit")
            }
            ("reloading", Sig::Term) => {
                s("close:true kill:100:Term kill:101:Term kill:200:Term kill:201:Term")
            }
            ("upgrading" | "reexeced", Sig::Int | Sig::Quit) => format!("close:false {quit_all}"),
            ("upgrading" | "reexeced", Sig::Term) => s("close:false kill:100:Term kill:101:Term"),
            (_, Sig::Int | Sig::Quit) => format!("close:true {quit_all}"),
            (_, Sig::Term) => s("close:true kill:100:Term kill:101:Term"),
            (_, Sig::Chld) => s(""),
            ("reexeced", Sig::Hup) => s("INFO Hang up: Master.2 Reload"),
            (_, Sig::Hup) => s("INFO Hang up: Master Reload"),
            ("reloading", Sig::Ttin) => s("hook:n:3<-2 spawn:4 DEBUG 3 workers"),
            (_, Sig::Ttin) => s("hook:n:3<-2 spawn:2 DEBUG 3 workers"),
            ("reloading", Sig::Ttou) => s("hook:n:1<-2 kill:200:Term DEBUG 1 workers"),
            (_, Sig::Ttou) => s("hook:n:1<-2 kill:100:Term DEBUG 1 workers"),
            ("reloading", Sig::Usr1) => {
                s("ReopenLogs kill:100:Usr1 kill:101:Usr1 kill:200:Usr1 kill:201:Usr1")
            }
            (_, Sig::Usr1) => s("ReopenLogs kill:100:Usr1 kill:101:Usr1"),
            ("upgrading", Sig::Usr2) => s("WARNING USR2 signal ignored. Child exists."),
            ("reexeced", Sig::Usr2) => s("WARNING USR2 signal ignored. Parent exists."),
            (_, Sig::Usr2) => s("Reexec"),
            ("daemon", Sig::Winch) => {
                s("INFO graceful stop of workers hook:n:0<-2 kill:100:Term kill:101:Term")
            }
            ("reloading", Sig::Winch) => s("DEBUG SIGWINCH ignored. Not daemonized"),
            (_, Sig::Winch) => s("DEBUG SIGWINCH ignored. Not daemonized"),
        }
    };
    let mut failures = Vec::new();
    for sig in Sig::ALL {
        for (name, mut a) in states() {
            let out = a.handle(Event::Signal { sig, now: 1000 });
            let got = render(&out).join(" ");
            let want = expect(name, sig);
            if got != want {
                failures.push(format!("{name} + {sig:?}:\n  got  {got}\n  want {want}"));
            }
            // Every handled signal is announced as gunicorn does, CHLD at debug; nothing
            // is announced for signals ignored while stopping.
            let announced = handling(&out);
            let want_level = if sig == Sig::Chld { Level::Debug } else { Level::Info };
            let ignored =
                name == "stopping" && !matches!(sig, Sig::Int | Sig::Quit | Sig::Term | Sig::Chld);
            if ignored {
                assert_eq!(announced, None, "{name} {sig:?}");
            } else {
                assert_eq!(
                    announced,
                    Some((want_level, format!("Handling signal: {}", sig.name()))),
                    "{name} {sig:?}"
                );
            }
            assert!(exit(&out).is_none());
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---- HUP: replace after ready ---------------------------------------------------------

fn reload(a: &mut Arbiter, cfg: Config) -> Vec<Command> {
    let out = a.handle(Event::Signal { sig: Sig::Hup, now: 1000 });
    assert!(out.contains(&Command::Reload));
    a.handle(Event::Reloaded { cfg, now: 1000 })
}

#[test]
fn hup_retires_an_old_worker_only_when_a_new_one_booted() {
    let mut a = running();
    let out = reload(&mut a, CFG);
    assert_eq!(render(&out), vec!["hook:n:2<-2", "hook:on_reload", "spawn:2", "spawn:3"]);
    assert!(a.reloading());
    a.handle(Event::Spawned { pid: 200, slot: 2, now: 1001 });
    a.handle(Event::Spawned { pid: 201, slot: 3, now: 1001 });
    // Nothing is retired until a new worker booted; ticks respawn nothing.
    assert!(render(&a.handle(Event::Tick { now: 1500 })).is_empty());
    let out = a.handle(Event::Booted { pid: 200, now: 1600 });
    assert_eq!(render(&out), vec!["kill:100:Term"], "the oldest goes first");
    let out = a.handle(Event::Booted { pid: 201, now: 1700 });
    assert_eq!(
        render(&out),
        vec!["kill:101:Term", "INFO Reload complete: 2 new workers booted.", "ReloadDone"]
    );
    assert!(!a.reloading());
    // The old ones exit: no respawn, child_exit is called.
    let out = a.handle(Event::Exited { pid: 100, status: Status::Exited(0), now: 1800 });
    assert_eq!(render(&out), vec!["hook:exit:100"]);
    let out =
        a.handle(Event::Exited { pid: 101, status: Status::Signaled(15, "SIGTERM"), now: 1800 });
    assert_eq!(render(&out), vec!["INFO Worker (pid:101) was sent SIGTERM!", "hook:exit:101"]);
    assert_eq!(a.workers().keys().copied().collect::<Vec<_>>(), vec![200, 201]);
}

#[test]
fn hup_with_fewer_or_more_workers() {
    // 2 -> 1: the one new worker booting retires both old ones.
    let mut a = running();
    reload(&mut a, Config { workers: 1, ..CFG });
    a.handle(Event::Spawned { pid: 200, slot: 2, now: 1001 });
    let out = a.handle(Event::Booted { pid: 200, now: 1100 });
    assert_eq!(render(&out)[..2], ["kill:100:Term", "kill:101:Term"]);
    // 2 -> 3: the third new worker retires nobody.
    let mut a = running();
    let out = reload(&mut a, Config { workers: 3, ..CFG });
    assert_eq!(
        render(&out),
        vec!["hook:n:3<-2", "hook:on_reload", "spawn:2", "spawn:3", "spawn:4", "DEBUG 3 workers"]
    );
    for (pid, slot) in [(200, 2), (201, 3), (202, 4)] {
        a.handle(Event::Spawned { pid, slot, now: 1001 });
    }
    assert_eq!(render(&a.handle(Event::Booted { pid: 202, now: 1100 })), vec!["kill:100:Term"]);
    assert_eq!(render(&a.handle(Event::Booted { pid: 200, now: 1100 })), vec!["kill:101:Term"]);
    assert_eq!(
        render(&a.handle(Event::Booted { pid: 201, now: 1100 })),
        vec!["INFO Reload complete: 3 new workers booted.", "ReloadDone"]
    );
}

#[test]
fn a_new_worker_failing_to_boot_aborts_the_reload_and_the_old_workers_stay() {
    for code in [3, 4] {
        let mut a = running();
        reload(&mut a, CFG);
        a.handle(Event::Spawned { pid: 200, slot: 2, now: 1001 });
        a.handle(Event::Spawned { pid: 201, slot: 3, now: 1001 });
        let out = a.handle(Event::Exited { pid: 200, status: Status::Exited(code), now: 1200 });
        assert_eq!(
            render(&out),
            vec![
                format!("ERROR Worker (pid:200) exited with code {code}."),
                format!(
                    "ERROR Reload aborted: new worker (pid:200) failed to boot (exit code {code}); the old workers keep serving."
                ),
                "kill:201:Term".into(),
                "ReloadAborted".into(),
                "hook:exit:200".into(),
            ]
        );
        assert!(exit(&out).is_none() && !a.stopping() && !a.reloading());
        // The other new worker failing too changes nothing; the old ones serve on.
        let out = a.handle(Event::Exited { pid: 201, status: Status::Exited(code), now: 1300 });
        assert!(exit(&out).is_none() && spawns(&out).is_empty() && !a.stopping());
        assert_eq!(a.workers().keys().copied().collect::<Vec<_>>(), vec![100, 101]);
        // They are the current generation again: a crash is replaced as usual.
        let out = a.handle(Event::Exited { pid: 100, status: Status::Exited(1), now: 1400 });
        assert_eq!(spawns(&out).len(), 1);
    }
}

#[test]
fn a_config_that_does_not_load_keeps_everything() {
    let mut a = running();
    a.handle(Event::Signal { sig: Sig::Hup, now: 1000 });
    let out = a.handle(Event::ReloadFailed { error: "bad: x".into() });
    assert_eq!(
        render(&out),
        vec!["ERROR Reload failed, the running configuration is kept: bad: x"]
    );
    assert!(!a.reloading() && a.workers().len() == 2);
}

#[test]
fn a_retired_worker_that_lingers_gets_sigkill_after_graceful_timeout() {
    let mut a = Arbiter::new(Config { timeout_ms: 0, ..CFG });
    a.handle(Event::Start { now: 0 });
    a.handle(Event::Spawned { pid: 100, slot: 0, now: 0 });
    a.handle(Event::Spawned { pid: 101, slot: 1, now: 0 });
    a.handle(Event::Signal { sig: Sig::Ttou, now: 1000 });
    assert!(kills(&a.handle(Event::Tick { now: 5999 })).is_empty());
    assert_eq!(kills(&a.handle(Event::Tick { now: 6000 })), vec![(100, KillSig::Kill)]);
    let out =
        a.handle(Event::Exited { pid: 100, status: Status::Signaled(9, "SIGKILL"), now: 6001 });
    assert_eq!(
        render(&out),
        vec![
            "ERROR Worker (pid:100) was sent SIGKILL by the arbiter after graceful_timeout.",
            "hook:exit:100"
        ]
    );
}

#[test]
fn ttin_stops_at_the_heartbeat_capacity_and_ttou_at_one() {
    let mut a = Arbiter::new(Config { workers: 7, ..CFG });
    a.handle(Event::Start { now: 0 });
    assert_eq!(
        render(&a.handle(Event::Signal { sig: Sig::Ttin, now: 0 })),
        vec!["hook:n:8<-7", "spawn:7", "DEBUG 8 workers"]
    );
    assert_eq!(
        render(&a.handle(Event::Signal { sig: Sig::Ttin, now: 0 })),
        vec!["WARNING SIGTTIN ignored: at most 8 workers (raise `workers` to allow more)."]
    );
    assert_eq!(a.num_workers(), 8);
    let mut a = Arbiter::new(Config { workers: 1, ..CFG });
    a.handle(Event::Start { now: 0 });
    assert!(render(&a.handle(Event::Signal { sig: Sig::Ttou, now: 0 })).is_empty());
    assert_eq!(a.num_workers(), 1);
    assert_eq!(CFG.slots(), 8 * 2 + 64);
}

#[test]
fn winch_when_daemonized_then_hup_brings_workers_back() {
    let mut a = Arbiter::new(Config { daemon: true, ..CFG });
    a.handle(Event::Start { now: 0 });
    a.handle(Event::Spawned { pid: 100, slot: 0, now: 0 });
    a.handle(Event::Spawned { pid: 101, slot: 1, now: 0 });
    a.handle(Event::Signal { sig: Sig::Winch, now: 0 });
    // Exits are not replaced.
    assert!(
        spawns(&a.handle(Event::Exited { pid: 100, status: Status::Exited(0), now: 1 })).is_empty()
    );
    assert!(
        spawns(&a.handle(Event::Exited { pid: 101, status: Status::Exited(0), now: 1 })).is_empty()
    );
    assert!(spawns(&a.handle(Event::Tick { now: 2000 })).is_empty());
    // HUP (the documented roll-back): workers come back.
    let out = reload(&mut a, Config { daemon: true, ..CFG });
    assert_eq!(
        render(&out),
        vec!["hook:n:2<-0", "hook:on_reload", "spawn:0", "spawn:1", "DEBUG 2 workers"]
    );
}

#[test]
fn usr2_then_the_new_master_exiting_allows_another_usr2() {
    let mut a = running();
    a.handle(Event::Signal { sig: Sig::Usr2, now: 0 });
    a.handle(Event::Reexeced { pid: 300 });
    assert_eq!(a.reexec_pid(), Some(300));
    let out = a.handle(Event::Exited { pid: 300, status: Status::Exited(1), now: 5 });
    assert_eq!(render(&out), vec!["ERROR The new master (pid:300) exited with code 1."]);
    assert!(spawns(&out).is_empty(), "not a worker");
    assert_eq!(render(&a.handle(Event::Signal { sig: Sig::Usr2, now: 6 })), vec!["Reexec"]);
    let out = a.handle(Event::ReexecFailed { error: "EAGAIN".into() });
    assert_eq!(render(&out), vec!["ERROR USR2: cannot start a new master: EAGAIN"]);
}

#[test]
fn a_reexeced_master_is_promoted_when_its_parent_goes() {
    let mut a = Arbiter::new(CFG).reexeced_by(77);
    assert_eq!(a.master_name(), "Master.2");
    a.handle(Event::Start { now: 0 });
    let out = a.handle(Event::ParentGone);
    assert_eq!(render(&out), vec!["INFO Master has been promoted.", "Promote"]);
    assert_eq!(a.master_name(), "Master");
    assert!(a.handle(Event::ParentGone).is_empty(), "once");
    // Promoted: its stop removes socket files, and USR2 works.
    assert_eq!(render(&a.handle(Event::Signal { sig: Sig::Usr2, now: 0 })), vec!["Reexec"]);
}

#[test]
fn an_unpromoted_master_shuts_down_as_master_2() {
    let mut a = Arbiter::new(Config { workers: 1, ..CFG }).reexeced_by(77);
    a.handle(Event::Start { now: 0 });
    a.handle(Event::Spawned { pid: 5, slot: 0, now: 0 });
    a.handle(Event::Signal { sig: Sig::Term, now: 0 });
    let out = a.handle(Event::Exited { pid: 5, status: Status::Exited(0), now: 1 });
    assert!(logs(&out).contains(&(Level::Info, "Shutting down: Master.2".into())));
}

#[test]
fn systemd_and_reuse_port_sockets_are_not_unlinked() {
    for cfg in [Config { systemd: true, ..CFG }, Config { reuse_port: true, ..CFG }] {
        let mut a = Arbiter::new(cfg);
        a.handle(Event::Start { now: 0 });
        assert!(
            a.handle(Event::Signal { sig: Sig::Term, now: 0 })
                .contains(&Command::CloseListeners { unlink: false })
        );
    }
}

#[test]
fn ages_count_spawns_and_booted_is_recorded() {
    let mut a = Arbiter::new(Config { workers: 2, ..CFG });
    let out = a.handle(Event::Start { now: 0 });
    assert_eq!(
        out.iter().filter(|c| matches!(c, Command::Spawn { .. })).cloned().collect::<Vec<_>>(),
        vec![Command::Spawn { slot: 0, age: 1 }, Command::Spawn { slot: 1, age: 2 }]
    );
    a.handle(Event::Spawned { pid: 10, slot: 1, now: 0 });
    assert_eq!(a.workers()[&10].age, 2);
    a.handle(Event::Booted { pid: 10, now: 0 });
    assert!(a.workers()[&10].booted);
}

#[test]
fn a_changed_file_reloads_as_hup_does_except_while_stopping() {
    let mut a = running();
    let out = a.handle(Event::FilesChanged { path: "/srv/app/views.py".into() });
    assert_eq!(
        logs(&out),
        vec![(Level::Info, "Worker reloading: /srv/app/views.py modified".to_owned())]
    );
    assert!(out.contains(&Command::Reload));
    let out = a.handle(Event::Reloaded { cfg: CFG, now: 1000 });
    assert!(a.reloading(), "{out:?}");
    // A stop in progress is not turned into a reload.
    let mut a = running();
    a.handle(Event::Signal { sig: Sig::Term, now: 2000 });
    let out = a.handle(Event::FilesChanged { path: "/srv/app/views.py".into() });
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_code_reload_boots_one_new_worker_before_the_rest() {
    let mut a = running();
    let out = a.handle(Event::FilesChanged { path: "/srv/app/views.py".into() });
    assert!(out.contains(&Command::Reload));
    let out = a.handle(Event::Reloaded { cfg: CFG, now: 1000 });
    assert_eq!(spawns(&out).len(), 1, "one new worker first: {out:?}");
    a.handle(Event::Spawned { pid: 200, slot: 2, now: 1001 });
    assert!(spawns(&a.handle(Event::Tick { now: 1500 })).is_empty());
    // It booted: one old worker goes, and the rest of the new ones are spawned.
    let out = a.handle(Event::Booted { pid: 200, now: 1600 });
    assert_eq!(kills(&out), vec![(100, KillSig::Term)]);
    assert_eq!(spawns(&out).len(), 1, "{out:?}");
    // A HUP still spawns every new worker at once.
    let mut a = running();
    let out = reload(&mut a, CFG);
    assert_eq!(spawns(&out).len(), 2);
}

#[test]
fn a_code_reload_whose_first_worker_fails_keeps_the_old_workers() {
    let mut a = running();
    a.handle(Event::FilesChanged { path: "/srv/app/views.py".into() });
    a.handle(Event::Reloaded { cfg: CFG, now: 1000 });
    a.handle(Event::Spawned { pid: 200, slot: 2, now: 1001 });
    let out = a.handle(Event::Exited { pid: 200, status: Status::Exited(4), now: 1100 });
    assert!(logs(&out).iter().any(|(_, l)| l.starts_with("Reload aborted")), "{out:?}");
    assert!(spawns(&out).is_empty() && kills(&out).is_empty(), "{out:?}");
    assert!(!a.reloading());
    assert_eq!(a.workers().len(), 2);
}
