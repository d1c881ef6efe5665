//! The arbiter's decisions as a pure function: events in, commands out.
//!
//! gunicorn interleaves these decisions with syscalls in `arbiter.py`; here they are a
//! state machine over the worker table that never forks, signals or sleeps, so every rule
//! is a table test. [`super`] feeds it events (signals, reaped children, heartbeats, the
//! 1 s tick, what a reload or a re-exec gave) and performs the [`Command`]s with nix.
//!
//! Rules (gunicorn 27 unless marked):
//! - start and after every reap: spawn until `num_workers` are running, SIGTERM the
//!   oldest surplus (`manage_workers`); `N workers` (debug) when that count changed;
//! - a worker whose heartbeat is older than `timeout` gets `WORKER TIMEOUT (pid:N)` and
//!   SIGABRT, and SIGKILL on a tick at least [`ABORT_GRACE_MS`] later if still alive.
//!   **Fix:** the master stamps the heartbeat at spawn, so a worker that never beats
//!   (hung at import) is timed out too;
//! - TERM: graceful stop (listeners closed, SIGTERM to workers, SIGKILL after
//!   `graceful_timeout`); INT and QUIT: quick stop (SIGQUIT); INT/QUIT during a stop
//!   send SIGQUIT again and cut the wait to 2 s; other signals during a stop are ignored
//!   (gunicorn does not dispatch them while it stops);
//! - HUP: `Hang up: Master`, then the master reloads the configuration
//!   ([`Command::Reload`]). **Fix:** a configuration that no longer loads is reported and
//!   the old one keeps serving (gunicorn 27 exits); with the new one, new workers are
//!   spawned and an old worker gets SIGTERM only when a new one has *booted* (loaded
//!   the application), so a broken deploy never takes the service down: a new worker
//!   that fails to boot (exit 3 or 4) aborts the reload and the old workers keep
//!   serving (gunicorn 27 retires the old workers at once and then halts);
//! - TTIN / TTOU: one worker more / less (never below 1; **fix:** never above
//!   [`Config::max_workers`], the heartbeat capacity, with a warning);
//! - USR1: reopen log files, USR1 to every worker;
//! - USR2: re-exec the master with the listeners inherited (`USR2 signal ignored. Child
//!   exists.` / `Parent exists.` as gunicorn); the re-executed master is promoted when
//!   its parent goes away ([`Event::ParentGone`]);
//! - WINCH: only when daemonized (gunicorn 27's rule): `graceful stop of workers`, no
//!   workers until TTIN or HUP; otherwise `SIGWINCH ignored. Not daemonized` (debug);
//! - a retired worker (HUP, TTOU, WINCH) that outlives `graceful_timeout` gets SIGKILL
//!   (**fix:** gunicorn waits forever unless the heartbeat stalls);
//! - only pids in the table count: other children (reparented orphans when we are PID 1)
//!   are reaped silently (gunicorn #3220); the re-exec'd master is forgotten when reaped;
//! - a worker exiting with 3 or 4 halts the master with that code (`Worker failed to
//!   boot.` / `App failed to load.`), except during a reload (above). **Fix:** a second
//!   failing worker during the halt does not crash the master (gunicorn 27 then dies
//!   with a traceback and exit 1);
//! - SIGKILL deaths say who killed: `... was sent SIGKILL! Perhaps out of memory?` only
//!   when the arbiter did not send it.

use std::collections::BTreeMap;

use crate::log::Level;

/// How long after SIGABRT a timed-out worker gets SIGKILL.
pub const ABORT_GRACE_MS: u64 = 1000;
/// gunicorn's wait after INT/QUIT arrives during a stop.
pub const QUICK_LIMIT_MS: u64 = 2000;
pub use crate::lifecycle::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
/// The default cap on `num_workers` (TTIN and reloads stop there, with a warning).
pub const DEFAULT_MAX_WORKERS: usize = 1024;

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
    /// Reload the configuration and replace the workers.
    Hup,
    /// One more worker.
    Ttin,
    /// One less worker.
    Ttou,
    /// Reopen log files (here and in the workers).
    Usr1,
    /// Re-exec the binary with the listeners inherited.
    Usr2,
    /// Retire every worker (only when daemonized).
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
    /// Reopen log files.
    Usr1,
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
    /// `reload`: a watched file changed (after a burst of changes ended).
    FilesChanged {
        /// The file whose change was seen first.
        path: String,
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
    /// A worker says it booted (its application is loaded): it marks its heartbeat slot.
    Booted {
        /// The worker.
        pid: Pid,
        /// Now, in monotonic ms.
        now: u64,
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
    /// After [`Command::Reload`]: the new configuration loaded (the master now spawns
    /// with the new settings).
    Reloaded {
        /// The arbiter's part of the new settings.
        cfg: Config,
        /// Now, in monotonic ms.
        now: u64,
    },
    /// After [`Command::Reload`]: the configuration did not load.
    ReloadFailed {
        /// Why (shown in the log).
        error: String,
    },
    /// After [`Command::Reexec`]: the new master was forked.
    Reexeced {
        /// Its pid.
        pid: Pid,
    },
    /// After [`Command::Reexec`]: the fork failed.
    ReexecFailed {
        /// Why.
        error: String,
    },
    /// A re-executed master noticed that the master that started it is gone.
    ParentGone,
}

/// A server hook the decisions call (the others are called by the loop at fixed points).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `nworkers_changed(server, new, old)`.
    NWorkersChanged {
        /// The new count.
        new: usize,
        /// The old count.
        old: usize,
    },
    /// `on_reload(server)`: the new configuration is in force, before the new workers.
    OnReload,
    /// `child_exit(server, worker)` after a worker is reaped.
    ChildExit {
        /// The worker's pid.
        pid: Pid,
        /// Its age (spawn order).
        age: u64,
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
        /// Its age (spawn order, from 1).
        age: u64,
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
    /// Close the listening sockets; remove unix socket files when `unlink` (not while a
    /// re-exec'd master shares them, not with systemd's or `reuse_port` sockets).
    CloseListeners {
        /// Remove the socket files we created.
        unlink: bool,
    },
    /// Reload the configuration; report [`Event::Reloaded`] or [`Event::ReloadFailed`].
    Reload,
    /// Every new worker booted: drop what the old configuration held (listeners no
    /// longer configured), and say so to systemd.
    ReloadDone,
    /// A new worker failed to boot: spawn with the previous settings again.
    ReloadAborted,
    /// Reopen the master's log files (USR1).
    ReopenLogs,
    /// Fork and exec a new master with the listeners; report [`Event::Reexeced`] or
    /// [`Event::ReexecFailed`].
    Reexec,
    /// This re-executed master is now the master: pidfile back to its name, title reset.
    Promote,
    /// Call a server hook.
    Hook(Hook),
    /// Exit the master with this code.
    Exit(u8),
}

/// The arbiter's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How many workers to keep (`workers`).
    pub workers: usize,
    /// Heartbeat timeout in ms (0 disables).
    pub timeout_ms: u64,
    /// How long a stop (or a retired worker) may take, in ms.
    pub graceful_timeout_ms: u64,
    /// `daemon`: WINCH retires the workers only then.
    pub daemon: bool,
    /// The listeners came from systemd (their files are not ours to remove).
    pub systemd: bool,
    /// `reuse_port` (gunicorn then leaves socket files alone too).
    pub reuse_port: bool,
    /// The most workers at once ([`DEFAULT_MAX_WORKERS`] or `workers` if larger): the
    /// heartbeat region has room for twice as many (old and new during a reload).
    pub max_workers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            timeout_ms: 30_000,
            graceful_timeout_ms: 30_000,
            daemon: false,
            systemd: false,
            reuse_port: false,
            max_workers: DEFAULT_MAX_WORKERS,
        }
    }
}

impl Config {
    /// Heartbeat slots the master must map for this configuration.
    pub fn slots(&self) -> usize {
        self.max_workers.max(self.workers) * 2 + 64
    }
}

/// Why the arbiter signalled a worker, so its death is reported right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    None,
    Timeout {
        aborted_at: u64,
        killed: bool,
    },
    /// SIGTERM outside a stop (HUP, TTOU, WINCH): SIGKILL at `deadline`.
    Retire {
        deadline: u64,
        killed: bool,
    },
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
    /// The configuration generation it was spawned with (bumped by each reload).
    pub generation: u64,
    /// Whether it said it booted.
    pub booted: bool,
    sent: Sent,
}

impl Worker {
    /// Whether the arbiter asked it to go (retired, stopped, or timed out).
    pub fn leaving(&self) -> bool {
        self.sent != Sent::None
    }

    /// Whether it was told to finish (SIGTERM/SIGQUIT/SIGKILL outside a timeout): it no
    /// longer counts towards `num_workers`. A timed-out worker counts until reaped, as
    /// in gunicorn.
    fn retiring(&self) -> bool {
        matches!(self.sent, Sent::Retire { .. } | Sent::Stop | Sent::StopKill)
    }
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
    num_workers: usize,
    workers: BTreeMap<Pid, Worker>,
    /// Slots (and ages) reserved by a `Spawn` not yet reported.
    pending: Vec<(usize, u64)>,
    age: u64,
    generation: u64,
    /// The configuration before a reload that is still rolling out.
    rollout: Option<Config>,
    /// A reload for changed files asked for (`Reload` sent, `Reloaded` not back yet).
    code_reload: bool,
    /// That reload rolls out one new worker first and the rest once it booted: code that
    /// fails to import fails one worker, once.
    canary: bool,
    reexec_pid: Option<Pid>,
    /// The master that re-executed us, until we are promoted.
    parent: Option<Pid>,
    phase: Phase,
    halt: Option<(u8, &'static str)>,
    full_logged: bool,
    /// The worker count last logged (`N workers`, debug), as gunicorn's
    /// `_last_logged_active_worker_count`.
    logged_count: Option<usize>,
    exited: bool,
}

impl Arbiter {
    /// A master with no workers yet.
    pub fn new(cfg: Config) -> Arbiter {
        Arbiter {
            cfg,
            num_workers: cfg.workers.min(cfg.max_workers.max(cfg.workers)),
            workers: BTreeMap::new(),
            pending: Vec::new(),
            age: 0,
            generation: 0,
            rollout: None,
            code_reload: false,
            canary: false,
            reexec_pid: None,
            parent: None,
            phase: Phase::Running,
            halt: None,
            full_logged: false,
            logged_count: None,
            exited: false,
        }
    }

    /// A master re-executed by the master `parent` (USR2): `Master.2` until promoted.
    pub fn reexeced_by(mut self, parent: Pid) -> Arbiter {
        self.parent = Some(parent);
        self
    }

    /// The worker table.
    pub fn workers(&self) -> &BTreeMap<Pid, Worker> {
        &self.workers
    }

    /// How many workers the arbiter keeps (`workers`, changed by TTIN/TTOU/WINCH/HUP).
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether a stop is in progress.
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
    }

    /// Whether a reload is rolling out (new workers not all booted yet).
    pub fn reloading(&self) -> bool {
        self.rollout.is_some()
    }

    /// The pid of the master forked by USR2, while it runs.
    pub fn reexec_pid(&self) -> Option<Pid> {
        self.reexec_pid
    }

    /// The master that re-executed this one, until this one is promoted.
    pub fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// `Master`, or `Master.2` for a re-executed master not yet promoted.
    pub fn master_name(&self) -> &'static str {
        if self.parent.is_some() { "Master.2" } else { "Master" }
    }

    /// How many heartbeat slots the arbiter may use (slot indices are below this).
    pub fn slots_needed(&self) -> usize {
        self.cfg.slots()
    }

    /// Handles one event.
    pub fn handle(&mut self, ev: Event) -> Vec<Command> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        match ev {
            Event::Start { .. } => self.manage(0, &mut out),
            Event::Signal { sig, now } => self.signal(sig, now, &mut out),
            Event::Spawned { pid, slot, now } => {
                let age = self.pending.iter().find(|p| p.0 == slot).map_or(self.age, |p| p.1);
                self.pending.retain(|&(s, _)| s != slot);
                let w = Worker {
                    slot,
                    age,
                    last_beat: now,
                    generation: self.generation,
                    booted: false,
                    sent: Sent::None,
                };
                self.workers.insert(pid, w);
                if self.stopping() {
                    // A fork that raced the stop: stop it too.
                    out.push(Command::Kill(pid, KillSig::Term));
                    if let Some(w) = self.workers.get_mut(&pid) {
                        w.sent = Sent::Stop;
                    }
                }
            }
            Event::SpawnFailed { slot } => {
                self.pending.retain(|&(s, _)| s != slot);
                out.push(Command::Log(
                    Level::Error,
                    "Failed to fork a worker; retrying on the next tick.".into(),
                ));
            }
            Event::Booted { pid, now } => self.booted(pid, now, &mut out),
            Event::Exited { pid, status, now } => self.reaped(pid, status, now, &mut out),
            Event::Beat { pid, at } => {
                if let Some(w) = self.workers.get_mut(&pid) {
                    w.last_beat = w.last_beat.max(at);
                }
            }
            Event::Tick { now } => self.tick(now, &mut out),
            Event::Reloaded { cfg, now } => self.reloaded(cfg, now, &mut out),
            Event::FilesChanged { path } => {
                if !self.stopping() {
                    out.push(Command::Log(
                        Level::Info,
                        format!("Worker reloading: {path} modified"),
                    ));
                    out.push(Command::Reload);
                    self.code_reload = true;
                }
            }
            Event::ReloadFailed { error } => {
                self.code_reload = false;
                out.push(Command::Log(
                    Level::Error,
                    format!("Reload failed, the running configuration is kept: {error}"),
                ));
            }
            Event::Reexeced { pid } => self.reexec_pid = Some(pid),
            Event::ReexecFailed { error } => {
                out.push(Command::Log(
                    Level::Error,
                    format!("USR2: cannot start a new master: {error}"),
                ));
            }
            Event::ParentGone => {
                if self.parent.take().is_some() {
                    out.push(Command::Log(Level::Info, "Master has been promoted.".into()));
                    out.push(Command::Promote);
                }
            }
        }
        self.maybe_exit(&mut out);
        out
    }

    fn free_slot(&self) -> Option<usize> {
        (0..self.cfg.slots()).find(|s| {
            !self.pending.iter().any(|p| p.0 == *s) && !self.workers.values().any(|w| w.slot == *s)
        })
    }

    /// The count of workers kept, as last logged (`N workers` at debug level; gunicorn's
    /// `gunicorn.workers` gauge).
    pub fn logged_count(&self) -> Option<usize> {
        self.logged_count
    }

    /// Workers of the current generation that are not leaving.
    fn current(&self) -> impl Iterator<Item = (&Pid, &Worker)> {
        let g = self.generation;
        self.workers.iter().filter(move |(_, w)| w.generation == g && !w.retiring())
    }

    /// `manage_workers`: spawn up to `num_workers`, retire the oldest surplus.
    fn manage(&mut self, now: u64, out: &mut Vec<Command>) {
        if self.stopping() {
            return;
        }
        // A code reload's first new worker boots alone (see `canary`).
        let want = if self.canary && self.rollout.is_some() {
            self.num_workers.min(1)
        } else {
            self.num_workers
        };
        while self.current().count() + self.pending.len() < want {
            let Some(slot) = self.free_slot() else {
                if !self.full_logged {
                    out.push(Command::Log(
                        Level::Error,
                        format!(
                            "Cannot spawn more workers: all {} heartbeat slots are in use.",
                            self.cfg.slots()
                        ),
                    ));
                    self.full_logged = true;
                }
                break;
            };
            self.age += 1;
            self.pending.push((slot, self.age));
            out.push(Command::Spawn { slot, age: self.age });
        }
        let surplus = self.current().count().saturating_sub(self.num_workers);
        if surplus > 0 {
            let mut by_age: Vec<(u64, Pid)> = self.current().map(|(p, w)| (w.age, *p)).collect();
            by_age.sort_unstable();
            for (_, pid) in by_age.into_iter().take(surplus) {
                self.retire(pid, now, out);
            }
        }
        // gunicorn logs the count of workers kept (spawned ones included) when it changed.
        let active = (self.current().count() + self.pending.len()).min(self.num_workers);
        if self.logged_count != Some(active) {
            self.logged_count = Some(active);
            out.push(Command::Log(Level::Debug, format!("{active} workers")));
        }
        self.maybe_finish_rollout(now, out);
    }

    fn retire(&mut self, pid: Pid, now: u64, out: &mut Vec<Command>) {
        if let Some(w) = self.workers.get_mut(&pid) {
            out.push(Command::Kill(pid, KillSig::Term));
            w.sent = Sent::Retire { deadline: now + self.cfg.graceful_timeout_ms, killed: false };
        }
    }

    fn set_num_workers(&mut self, new: usize, out: &mut Vec<Command>) {
        let old = self.num_workers;
        self.num_workers = new;
        out.push(Command::Hook(Hook::NWorkersChanged { new, old }));
    }

    fn signal(&mut self, sig: Sig, now: u64, out: &mut Vec<Command>) {
        if self.stopping() && !matches!(sig, Sig::Int | Sig::Quit | Sig::Term | Sig::Chld) {
            out.push(Command::Log(
                Level::Debug,
                format!("Ignoring SIG{} while shutting down.", sig.name().to_uppercase()),
            ));
            return;
        }
        let level = if sig == Sig::Chld { Level::Debug } else { Level::Info };
        out.push(Command::Log(level, format!("Handling signal: {}", sig.name())));
        match sig {
            Sig::Chld => {}
            Sig::Term => self.stop(true, now, out),
            Sig::Int | Sig::Quit => self.stop(false, now, out),
            Sig::Hup => {
                out.push(Command::Log(Level::Info, format!("Hang up: {}", self.master_name())));
                out.push(Command::Reload);
            }
            Sig::Ttin => {
                if self.num_workers >= self.cfg.max_workers {
                    out.push(Command::Log(
                        Level::Warning,
                        format!(
                            "SIGTTIN ignored: at most {} workers (raise `workers` to allow more).",
                            self.cfg.max_workers
                        ),
                    ));
                } else {
                    self.set_num_workers(self.num_workers + 1, out);
                    self.manage(now, out);
                }
            }
            Sig::Ttou => {
                if self.num_workers > 1 {
                    self.set_num_workers(self.num_workers - 1, out);
                    self.manage(now, out);
                }
            }
            Sig::Usr1 => {
                out.push(Command::ReopenLogs);
                for pid in self.workers.keys() {
                    out.push(Command::Kill(*pid, KillSig::Usr1));
                }
            }
            Sig::Usr2 => {
                if self.reexec_pid.is_some() {
                    out.push(Command::Log(
                        Level::Warning,
                        "USR2 signal ignored. Child exists.".into(),
                    ));
                } else if self.parent.is_some() {
                    out.push(Command::Log(
                        Level::Warning,
                        "USR2 signal ignored. Parent exists.".into(),
                    ));
                } else {
                    out.push(Command::Reexec);
                }
            }
            Sig::Winch => {
                if self.cfg.daemon {
                    out.push(Command::Log(Level::Info, "graceful stop of workers".into()));
                    self.set_num_workers(0, out);
                    let pids: Vec<Pid> = self
                        .workers
                        .iter()
                        .filter(|(_, w)| !w.retiring())
                        .map(|(p, _)| *p)
                        .collect();
                    for pid in pids {
                        self.retire(pid, now, out);
                    }
                } else {
                    out.push(Command::Log(Level::Debug, "SIGWINCH ignored. Not daemonized".into()));
                }
            }
        }
    }

    fn reloaded(&mut self, mut cfg: Config, now: u64, out: &mut Vec<Command>) {
        if self.stopping() {
            return;
        }
        cfg.max_workers = self.cfg.max_workers;
        if cfg.workers > cfg.max_workers {
            out.push(Command::Log(
                Level::Warning,
                format!(
                    "workers = {} is above the limit of this master; running {}.",
                    cfg.workers, cfg.max_workers
                ),
            ));
            cfg.workers = cfg.max_workers;
        }
        if self.rollout.is_none() {
            self.rollout = Some(self.cfg);
        }
        self.cfg = cfg;
        self.generation += 1;
        self.canary = std::mem::take(&mut self.code_reload);
        self.set_num_workers(cfg.workers, out);
        out.push(Command::Hook(Hook::OnReload));
        self.manage(now, out);
    }

    fn booted(&mut self, pid: Pid, now: u64, out: &mut Vec<Command>) {
        let Some(w) = self.workers.get_mut(&pid) else { return };
        if w.booted {
            return;
        }
        w.booted = true;
        if self.rollout.is_none() || w.generation != self.generation || w.retiring() {
            return;
        }
        // One new worker is up: one old worker may go.
        let g = self.generation;
        let oldest = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != g && !w.retiring())
            .min_by_key(|(_, w)| w.age)
            .map(|(p, _)| *p);
        if let Some(old) = oldest {
            self.retire(old, now, out);
        }
        if self.canary {
            // The new code imports: the rest of the new workers follow.
            self.canary = false;
            self.manage(now, out);
            return;
        }
        self.maybe_finish_rollout(now, out);
    }

    /// When every worker of the new generation booted: retire the remaining old ones.
    fn maybe_finish_rollout(&mut self, now: u64, out: &mut Vec<Command>) {
        if self.rollout.is_none() || !self.pending.is_empty() {
            return;
        }
        let g = self.generation;
        let (up, total) =
            self.current().fold((0, 0), |(u, t), (_, w)| (u + usize::from(w.booted), t + 1));
        if total < self.num_workers || up < total {
            return;
        }
        let old: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != g && !w.retiring())
            .map(|(p, _)| *p)
            .collect();
        for pid in old {
            self.retire(pid, now, out);
        }
        self.rollout = None;
        out.push(Command::Log(
            Level::Info,
            format!("Reload complete: {total} new workers booted."),
        ));
        out.push(Command::ReloadDone);
    }

    /// A new worker failed to boot during a reload: back to the previous configuration.
    fn abort_rollout(&mut self, pid: Pid, code: i32, now: u64, out: &mut Vec<Command>) {
        let Some(prev) = self.rollout.take() else { return };
        out.push(Command::Log(
            Level::Error,
            format!("Reload aborted: new worker (pid:{pid}) failed to boot (exit code {code}); the old workers keep serving."),
        ));
        let g = self.generation;
        let failed: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == g && !w.retiring())
            .map(|(p, _)| *p)
            .collect();
        for p in failed {
            self.retire(p, now, out);
        }
        // Every older worker still serving is the current generation again.
        self.generation += 1;
        let current = self.generation;
        for w in self.workers.values_mut() {
            if w.generation != g && !w.retiring() {
                w.generation = current;
            }
        }
        self.cfg = prev;
        out.push(Command::ReloadAborted);
        if self.num_workers != prev.workers {
            self.set_num_workers(prev.workers, out);
        }
        self.manage(now, out);
    }

    /// Begins a stop (`halt()` → `stop(graceful)`), or during one, hurries it.
    fn stop(&mut self, graceful: bool, now: u64, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Running => {
                let unlink = self.reexec_pid.is_none()
                    && self.parent.is_none()
                    && !self.cfg.systemd
                    && !self.cfg.reuse_port;
                out.push(Command::CloseListeners { unlink });
                let sig = if graceful { KillSig::Term } else { KillSig::Quit };
                self.signal_all(sig, Sent::Stop, out);
                self.phase =
                    Phase::Stopping { deadline: now + self.cfg.graceful_timeout_ms, killed: false };
            }
            Phase::Stopping { deadline, killed } => {
                if !graceful && !killed {
                    self.signal_all(KillSig::Quit, Sent::Stop, out);
                    self.phase =
                        Phase::Stopping { deadline: deadline.min(now + QUICK_LIMIT_MS), killed };
                }
            }
        }
    }

    fn signal_all(&mut self, sig: KillSig, why: Sent, out: &mut Vec<Command>) {
        for (pid, w) in &mut self.workers {
            out.push(Command::Kill(*pid, sig));
            if !matches!(
                w.sent,
                Sent::Timeout { killed: true, .. } | Sent::Retire { killed: true, .. }
            ) {
                w.sent = why;
            }
        }
    }

    fn reaped(&mut self, pid: Pid, status: Status, now: u64, out: &mut Vec<Command>) {
        if self.reexec_pid == Some(pid) {
            self.reexec_pid = None;
            let (level, how) = match status {
                Status::Exited(0) => (Level::Info, "exited".to_owned()),
                Status::Exited(c) => (Level::Error, format!("exited with code {c}")),
                Status::Signaled(_, name) => (Level::Error, format!("was sent {name}")),
            };
            out.push(Command::Log(level, format!("The new master (pid:{pid}) {how}.")));
            return;
        }
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
                        format!(
                            "Worker (pid:{pid}) was sent SIGKILL by the arbiter after WORKER TIMEOUT."
                        )
                    }
                    Sent::StopKill | Sent::Retire { killed: true, .. } => {
                        format!(
                            "Worker (pid:{pid}) was sent SIGKILL by the arbiter after graceful_timeout."
                        )
                    }
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
            out.push(Command::Log(
                Level::Error,
                format!("Worker (pid:{pid}) exited with code {c}."),
            ));
        }
        let halt = match code {
            Some(c) if c == i32::from(WORKER_BOOT_ERROR) => {
                Some((WORKER_BOOT_ERROR, "Worker failed to boot."))
            }
            Some(c) if c == i32::from(APP_LOAD_ERROR) => {
                Some((APP_LOAD_ERROR, "App failed to load."))
            }
            _ => None,
        };
        if let (Some(h), Some(c)) = (halt, code) {
            if self.rollout.is_some() && w.generation == self.generation && !w.booted {
                self.abort_rollout(pid, c, now, out);
                out.push(Command::Hook(Hook::ChildExit { pid, age: w.age }));
                return;
            }
            if w.generation != self.generation || self.stopping() && self.halt.is_some() {
                // A worker of an abandoned generation, or a second failure during the halt.
                out.push(Command::Hook(Hook::ChildExit { pid, age: w.age }));
                self.manage(now, out);
                return;
            }
            if self.halt.is_none() {
                self.halt = Some(h);
                self.stop(true, now, out);
            }
            return;
        }
        out.push(Command::Hook(Hook::ChildExit { pid, age: w.age }));
        self.manage(now, out);
    }

    fn tick(&mut self, now: u64, out: &mut Vec<Command>) {
        match self.phase {
            Phase::Running => {
                for (pid, w) in &mut self.workers {
                    match w.sent {
                        Sent::None
                            if self.cfg.timeout_ms > 0
                                && now.saturating_sub(w.last_beat) > self.cfg.timeout_ms =>
                        {
                            out.push(Command::Log(
                                Level::Critical,
                                format!("WORKER TIMEOUT (pid:{pid})"),
                            ));
                            out.push(Command::ReportTimeout { pid: *pid, slot: w.slot });
                            out.push(Command::Kill(*pid, KillSig::Abrt));
                            w.sent = Sent::Timeout { aborted_at: now, killed: false };
                        }
                        Sent::Timeout { aborted_at, killed: false }
                            if now >= aborted_at + ABORT_GRACE_MS =>
                        {
                            out.push(Command::Kill(*pid, KillSig::Kill));
                            w.sent = Sent::Timeout { aborted_at, killed: true };
                        }
                        Sent::Retire { deadline, killed: false } if now >= deadline => {
                            out.push(Command::Kill(*pid, KillSig::Kill));
                            w.sent = Sent::Retire { deadline, killed: true };
                        }
                        _ => {}
                    }
                }
                self.manage(now, out);
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
        out.push(Command::Log(level, format!("Shutting down: {}", self.master_name())));
        if let Some(r) = reason {
            out.push(Command::Log(level, format!("Reason: {r}")));
        }
        out.push(Command::Exit(code));
        self.exited = true;
    }
}
