//! The arbiter's decisions as a pure function: events in, commands out.
//!
//! gunicorn interleaves these decisions with syscalls in `arbiter.py`; here they are a
//! state machine over the worker table that never forks, signals or sleeps, so every rule
//! is a table test. [`super`] feeds it events (signals, reaped children, heartbeats, the
//! 1 s tick) and performs the [`Command`]s with nix.
//!
//! Rules (gunicorn 27 unless marked):
//! - start and after every reap: spawn until `workers` are running (`manage_workers`);
//! - a worker whose heartbeat is older than `timeout` gets `WORKER TIMEOUT (pid:N)` and
//!   SIGABRT, and SIGKILL on a tick at least [`ABORT_GRACE_MS`] later if still alive.
//!   **Fix:** the master stamps the heartbeat at spawn, so a worker that never beats
//!   (hung at import) is timed out too;
//! - TERM: graceful stop (listeners closed, SIGTERM to workers, SIGKILL after
//!   `graceful_timeout`); INT and QUIT: quick stop (SIGQUIT); INT/QUIT during a stop
//!   send SIGQUIT again and cut the wait to 2 s;
//! - only pids in the table count: other children (reparented orphans when we are PID 1)
//!   are reaped silently (gunicorn #3220);
//! - a worker exiting with 3 or 4 halts the master with that code (`Worker failed to
//!   boot.` / `App failed to load.`). **Fix:** a second failing worker during the halt
//!   does not crash the master (gunicorn 27 then dies with a traceback and exit 1);
//! - SIGKILL deaths say who killed: `... was sent SIGKILL! Perhaps out of memory?` only
//!   when the arbiter did not send it.

use std::collections::BTreeMap;

use crate::log::Level;

/// How long after SIGABRT a timed-out worker gets SIGKILL.
pub const ABORT_GRACE_MS: u64 = 1000;
/// gunicorn's wait after INT/QUIT arrives during a stop.
pub const QUICK_LIMIT_MS: u64 = 2000;
/// gunicorn's exit code of a worker that failed to boot.
pub const WORKER_BOOT_ERROR: u8 = 3;
/// gunicorn's exit code of a worker whose application failed to load.
pub const APP_LOAD_ERROR: u8 = 4;

/// A process id.
pub type Pid = i32;

/// A signal the master handles. Adding one is adding a variant here, its number in
/// `arbiter::signals`, and its rule in [`Arbiter::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sig {
    /// Quick shutdown.
    Int,
    /// Quick shutdown.
    Quit,
    /// Graceful shutdown.
    Term,
    /// A child changed state (the reaping itself is an [`Event::Exited`]).
    Chld,
    /// Reload (next issue).
    Hup,
    /// One more worker (next issue).
    Ttin,
    /// One less worker (next issue).
    Ttou,
    /// Reopen log files (next issue).
    Usr1,
    /// Re-exec (next issue).
    Usr2,
    /// Retire workers when daemonized (next issue).
    Winch,
}

impl Sig {
    /// Every handled signal, in the order pending ones are handled within one wake-up.
    pub const ALL: [Sig; 10] = [
        Sig::Int,
        Sig::Quit,
        Sig::Term,
        Sig::Chld,
        Sig::Hup,
        Sig::Ttin,
        Sig::Ttou,
        Sig::Usr1,
        Sig::Usr2,
        Sig::Winch,
    ];

    /// The lower-case name in `Handling signal: <name>`.
    pub fn name(self) -> &'static str {
        match self {
            Sig::Int => "int",
            Sig::Quit => "quit",
            Sig::Term => "term",
            Sig::Chld => "chld",
            Sig::Hup => "hup",
            Sig::Ttin => "ttin",
            Sig::Ttou => "ttou",
            Sig::Usr1 => "usr1",
            Sig::Usr2 => "usr2",
            Sig::Winch => "winch",
        }
    }
}

/// A signal the master sends to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillSig {
    /// Graceful stop.
    Term,
    /// Quick stop.
    Quit,
    /// Timeout: dump and exit.
    Abrt,
    /// The end.
    Kill,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal: its number and name (`SIGKILL`).
    Signaled(i32, &'static str),
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The master is up (listeners bound).
    Start {
        /// Now, in monotonic ms.
        now: u64,
    },
    /// A signal arrived.
    Signal {
        /// Which.
        sig: Sig,
        /// Now, in monotonic ms.
        now: u64,
    },
    /// A fork succeeded: `pid` runs in `slot`.
    Spawned {
        /// The worker's pid.
        pid: Pid,
        /// Its heartbeat slot.
        slot: usize,
        /// Now, in monotonic ms (the initial heartbeat).
        now: u64,
    },
    /// A fork failed.
    SpawnFailed {
        /// The slot reserved for it.
        slot: usize,
    },
    /// `waitpid` returned a child.
    Exited {
        /// Its pid.
        pid: Pid,
        /// How it ended.
        status: Status,
        /// Now, in monotonic ms.
        now: u64,
    },
    /// The heartbeat a worker last wrote.
    Beat {
        /// The worker.
        pid: Pid,
        /// Its last beat, in monotonic ms.
        at: u64,
    },
    /// The periodic check (at least every second).
    Tick {
        /// Now, in monotonic ms.
        now: u64,
    },
}

/// Something to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Write a line to the error log.
    Log(Level, String),
    /// Fork a worker that uses heartbeat `slot`; report [`Event::Spawned`] or
    /// [`Event::SpawnFailed`].
    Spawn {
        /// The heartbeat slot reserved for it.
        slot: usize,
    },
    /// Send a signal to a worker.
    Kill(Pid, KillSig),
    /// Log what worker `pid` was serving when it timed out (read from its slot).
    ReportTimeout {
        /// The worker.
        pid: Pid,
        /// Its slot.
        slot: usize,
    },
    /// Close the listening sockets (removing unix socket files).
    CloseListeners,
    /// Exit the master with this code.
    Exit(u8),
}

/// The arbiter's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How many workers to keep.
    pub workers: usize,
    /// Heartbeat timeout in ms (0 disables).
    pub timeout_ms: u64,
    /// How long a stop waits for workers, in ms.
    pub graceful_timeout_ms: u64,
}

/// Why the arbiter signalled a worker, so its death is reported right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    None,
    Timeout { aborted_at: u64, killed: bool },
    Stop,
    StopKill,
}

/// One running worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Worker {
    /// Its heartbeat slot.
    pub slot: usize,
    /// Spawn order (gunicorn's `age`).
    pub age: u64,
    /// Last heartbeat seen, in monotonic ms.
    pub last_beat: u64,
    sent: Sent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping { deadline: u64, killed: bool },
}

/// The master's state.
#[derive(Clone, Debug)]
pub struct Arbiter {
    cfg: Config,
    workers: BTreeMap<Pid, Worker>,
    /// Slots reserved by a `Spawn` not yet reported.
    pending: Vec<usize>,
    age: u64,
    phase: Phase,
    halt: Option<(u8, &'static str)>,
    exited: bool,
}

impl Arbiter {
    /// A master with no workers yet.
    pub fn new(cfg: Config) -> Arbiter {
        Arbiter {
            cfg,
            workers: BTreeMap::new(),
            pending: Vec::new(),
            age: 0,
            phase: Phase::Running,
            halt: None,
            exited: false,
        }
    }

    /// The worker table.
    pub fn workers(&self) -> &BTreeMap<Pid, Worker> {
        &self.workers
    }

    /// Whether a stop is in progress.
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
    }

    /// How many heartbeat slots the arbiter may use (slot indices are below this).
    pub fn slots_needed(&self) -> usize {
        self.cfg.workers.max(1)
    }

    /// Handles one event.
    pub fn handle(&mut self, ev: Event) -> Vec<Command> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        match ev {
            Event::Start { .. } => self.manage(&mut out),
            Event::Signal { sig, now } => self.signal(sig, now, &mut out),
            Event::Spawned { pid, slot, now } => {
                self.pending.retain(|&s| s != slot);
                self.age += 1;
                self.workers.insert(pid, Worker { slot, age: self.age, last_beat: now, sent: Sent::None });
                if self.stopping() {
                    // A fork that raced the stop: stop it too.
                    out.push(Command::Kill(pid, KillSig::Term));
                }
            }
            Event::SpawnFailed { slot } => {
                self.pending.retain(|&s| s != slot);
                out.push(Command::Log(Level::Error, "Failed to fork a worker; retrying on the next tick.".into()));
            }
            Event::Exited { pid, status, now } => self.reaped(pid, status, now, &mut out),
            Event::Beat { pid, at } => {
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.last_beat = w.last_beat.max(at);
                }
            }
            Event::Tick { now } => self.tick(now, &mut out),
        }
        self.maybe_exit(&mut out);
        out
    }

    fn free_slot(&self) -> usize {
        (0..)
            .find(|s| !self.pending.contains(s) && !self.workers.values().any(|w| w.slot == *s))
            .unwrap_or(0)
    }

    fn manage(&mut self, out: &mut Vec<Command>) {
        if self.stopping() {
            return;
        }
        while self.workers.len() + self.pending.len() < self.cfg.workers {
            let slot = self.free_slot();
            self.pending.push(slot);
            out.push(Command::Spawn { slot });
        }
    }

    fn signal(&mut self, sig: Sig, now: u64, out: &mut Vec<Command>) {
        let level = if sig == Sig::Chld { Level::Debug } else { Level::Info };
        out.push(Command::Log(level, format!("Handling signal: {}", sig.name())));
        match sig {
            Sig::Chld => {}
            Sig::Term => self.stop(true, now, out),
            Sig::Int | Sig::Quit => self.stop(false, now, out),
            Sig::Hup | Sig::Ttin | Sig::Ttou | Sig::Usr1 | Sig::Usr2 | Sig::Winch => out.push(Command::Log(
                Level::Warning,
                format!("SIG{} is not supported yet; ignored.", sig.name().to_uppercase()),
            )),
        }
    }

    /// Begins a stop (`halt()` → `stop(graceful)`), or during one, hurries it.
    fn stop(&mut self, graceful: bool, now: u64, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Running => {
                out.push(Command::CloseListeners);
                let sig = if graceful { KillSig::Term } else { KillSig::Quit };
                self.signal_all(sig, Sent::Stop, out);
                self.phase = Phase::Stopping { deadline: now + self.cfg.graceful_timeout_ms, killed: false };
            }
            Phase::Stopping { deadline, killed } => {
                if !graceful && !killed {
                    self.signal_all(KillSig::Quit, Sent::Stop, out);
                    self.phase = Phase::Stopping { deadline: deadline.min(now + QUICK_LIMIT_MS), killed };
                }
            }
        }
    }

    fn signal_all(&mut self, sig: KillSig, why: Sent, out: &mut Vec<Command>) {
        for (pid, w) in &mut self.workers {
            out.push(Command::Kill(*pid, sig));
            if !matches!(w.sent, Sent::Timeout { killed: true, .. }) {
                w.sent = why;
            }
        }
    }

    fn reaped(&mut self, pid: Pid, status: Status, now: u64, out: &mut Vec<Command>) {
        let Some(w) = self.workers.remove(&pid) else {
            out.push(Command::Log(
                Level::Debug,
                format!("Reaped unknown child process (pid:{pid}, status:{status:?})"),
            ));
            return;
        };
        let mut code = None;
        match status {
            Status::Exited(c) => code = Some(c),
            Status::Signaled(n, name) if n == nix::libc::SIGKILL => {
                let line = match w.sent {
                    Sent::Timeout { killed: true, .. } => {
                        format!("Worker (pid:{pid}) was sent SIGKILL by the arbiter after WORKER TIMEOUT.")
                    }
                    Sent::StopKill => format!("Worker (pid:{pid}) was sent SIGKILL by the arbiter after graceful_timeout."),
                    _ => format!("Worker (pid:{pid}) was sent {name}! Perhaps out of memory?"),
                };
                out.push(Command::Log(Level::Error, line));
            }
            Status::Signaled(n, name) => {
                let level = if n == nix::libc::SIGTERM { Level::Info } else { Level::Warning };
                out.push(Command::Log(level, format!("Worker (pid:{pid}) was sent {name}!")));
            }
        }
        if let Some(c) = code.filter(|&c| c != 0) {
            out.push(Command::Log(Level::Error, format!("Worker (pid:{pid}) exited with code {c}.")));
        }
        let halt = match code {
            Some(c) if c == i32::from(WORKER_BOOT_ERROR) => Some((WORKER_BOOT_ERROR, "Worker failed to boot.")),
            Some(c) if c == i32::from(APP_LOAD_ERROR) => Some((APP_LOAD_ERROR, "App failed to load.")),
            _ => None,
        };
        if let Some(h) = halt {
            if self.halt.is_none() {
                self.halt = Some(h);
                self.stop(true, now, out);
            }
            return;
        }
        self.manage(out);
    }

    fn tick(&mut self, now: u64, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Running => {
                if self.cfg.timeout_ms > 0 {
                    for (pid, w) in &mut self.workers {
                        match w.sent {
                            Sent::None if now.saturating_sub(w.last_beat) > self.cfg.timeout_ms => {
                                out.push(Command::Log(Level::Critical, format!("WORKER TIMEOUT (pid:{pid})")));
                                out.push(Command::ReportTimeout { pid: *pid, slot: w.slot });
                                out.push(Command::Kill(*pid, KillSig::Abrt));
                                w.sent = Sent::Timeout { aborted_at: now, killed: false };
                            }
                            Sent::Timeout { aborted_at, killed: false } if now >= aborted_at + ABORT_GRACE_MS => {
                                out.push(Command::Kill(*pid, KillSig::Kill));
                                w.sent = Sent::Timeout { aborted_at, killed: true };
                            }
                            _ => {}
                        }
                    }
                }
                self.manage(out);
            }
            Phase::Stopping { deadline, killed } => {
                if now >= deadline && !killed {
                    for (pid, w) in &mut self.workers {
                        out.push(Command::Kill(*pid, KillSig::Kill));
                        if !matches!(w.sent, Sent::Timeout { killed: true, .. }) {
                            w.sent = Sent::StopKill;
                        }
                    }
                    self.phase = Phase::Stopping { deadline: now + QUICK_LIMIT_MS, killed: true };
                } else if now >= deadline && killed {
                    // Workers that survive SIGKILL (uninterruptible sleep): do not wait forever.
                    self.workers.clear();
                    self.pending.clear();
                }
            }
        }
    }

    fn maybe_exit(&mut self, out: &mut Vec<Command>) {
        if !self.stopping() || !self.workers.is_empty() || !self.pending.is_empty() {
            return;
        }
        let (code, reason) = match self.halt {
            Some((c, r)) => (c, Some(r)),
            None => (0, None),
        };
        let level = if code == 0 { Level::Info } else { Level::Error };
        out.push(Command::Log(level, "Shutting down: Master".into()));
        if let Some(r) = reason {
            out.push(Command::Log(level, format!("Reason: {r}")));
        }
        out.push(Command::Exit(code));
        self.exited = true;
    }
}
