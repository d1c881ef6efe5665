//! The master process: binds, forks workers, and keeps them running.
//!
//! [`decide`] holds every decision; this module performs them with nix and feeds back
//! what happened. The loop:
//!
//! ```text
//!   poll(signal pipe, 1 s; 100 ms while stopping)
//!     → pending signals (flags set by signal-hook handlers, which only queue)
//!     → waitpid(-1, WNOHANG) until nothing is left: Event::Exited
//!     → every worker's heartbeat slot: Event::Beat
//!     → Event::Tick
//!   each event → decide::Arbiter::handle → Commands → performed here
//! ```
//!
//! ## Calling it
//!
//! The CLI calls [`serve`] once the settings are resolved, with the worker body that
//! serves the application (the Python bridge's WSGI body; [`crate::worker::hello`] for
//! tests):
//!
//! ```no_run
//! # use ferrocorn::settings::Settings;
//! # fn cli(settings: &Settings) -> std::process::ExitCode {
//! let body = ferrocorn::worker::hello::HelloBody::new(settings);
//! ferrocorn::arbiter::serve(settings, &body)
//! # }
//! ```
//!
//! `serve` must be called while the process has one thread: it forks. With Python, call
//! it with the GIL held by the main thread and no Python threads started; the bridge's
//! body runs `PyOS_AfterFork_Child` first thing in [`WorkerBody::run`].

pub mod decide;

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid as NixPid};
use signal_hook::SigId;

use crate::heartbeat::{Heartbeats, monotonic_ms};
use crate::listen::{self, BindOptions, Listener};
use crate::log::Logger;
use crate::settings::Settings;
use crate::worker::{WorkerBody, WorkerContext, WorkerSignals};
use decide::{Arbiter, Command, Config, Event, KillSig, Sig, Status};

/// The version in `Starting ferrocorn <version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Knobs that are not gunicorn settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Pause between bind attempts (gunicorn: 1 s; tests shorten it).
    pub bind_retry_delay: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { bind_retry_delay: Duration::from_secs(1) }
    }
}

/// Runs the master with `settings` until it stops; returns the process exit code.
pub fn serve(settings: &Settings, body: &dyn WorkerBody) -> ExitCode {
    ExitCode::from(serve_with(settings, body, &ServeOptions::default()))
}

/// [`serve`] with explicit [`ServeOptions`]; returns the exit status.
pub fn serve_with(settings: &Settings, body: &dyn WorkerBody, opts: &ServeOptions) -> u8 {
    let log = match Logger::open(settings.str("errorlog").unwrap_or("-"), settings.str("loglevel").unwrap_or("info")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut binds = Vec::new();
    for b in settings.list("bind") {
        match listen::parse_address(b) {
            Ok(a) => binds.push(a),
            Err(e) => {
                eprint!("\nError: {e}\n\n");
                return 1;
            }
        }
    }
    log.info(format_args!("Starting ferrocorn {VERSION}"));
    if std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() > 1) {
        log.warning("The master has more than one thread; forking it is unsafe.");
    }
    let signals = match MasterSignals::install() {
        Ok(s) => s,
        Err(e) => {
            log.error(format_args!("Cannot install signal handlers: {e}"));
            return 1;
        }
    };
    let bind_opts = BindOptions {
        backlog: i32::try_from(settings.int("backlog")).unwrap_or(i32::MAX),
        reuse_port: settings.bool("reuse_port"),
        umask: u32::try_from(settings.int("umask")).unwrap_or(0),
        retry_delay: opts.bind_retry_delay,
        is_ssl: settings.is_ssl(),
        ..BindOptions::default()
    };
    let listeners = match listen::create_listeners(&binds, &bind_opts, &log) {
        Ok(l) => l,
        Err(e) => {
            if !e.logged {
                log.error(&e.message);
            }
            return 1;
        }
    };
    let names: Vec<String> = listeners.iter().map(ToString::to_string).collect();
    log.info(format_args!("Listening at: {} ({})", names.join(","), std::process::id()));
    log.info(format_args!("Using worker: {}", settings.worker_class()));
    let workers = usize::try_from(settings.int("workers")).unwrap_or(1).max(1);
    let heartbeats = match Heartbeats::map(workers + 64) {
        Ok(h) => h,
        Err(e) => {
            log.error(format_args!("Cannot map the heartbeat region: {e}"));
            return 1;
        }
    };
    let secs = |name: &str| u64::try_from(settings.int(name)).unwrap_or(0);
    let cfg = Config {
        workers,
        timeout_ms: secs("timeout") * 1000,
        graceful_timeout_ms: secs("graceful_timeout") * 1000,
    };
    let mut master = Master {
        arbiter: Arbiter::new(cfg),
        listeners,
        heartbeats,
        log,
        signals,
        body,
        pid: nix::unistd::getpid().as_raw(),
        timeout: Duration::from_secs(secs("timeout")),
        graceful_timeout: Duration::from_secs(secs("graceful_timeout")),
    };
    master.run()
}

struct Master<'a> {
    arbiter: Arbiter,
    listeners: Vec<Listener>,
    heartbeats: Heartbeats,
    log: Logger,
    signals: MasterSignals,
    body: &'a dyn WorkerBody,
    pid: i32,
    timeout: Duration,
    graceful_timeout: Duration,
}

impl Master<'_> {
    fn run(&mut self) -> u8 {
        if let Some(code) = self.feed(Event::Start { now: monotonic_ms() }) {
            return code;
        }
        loop {
            let wait_ms: u16 = if self.arbiter.stopping() { 100 } else { 1000 };
            let mut fds = [nix::poll::PollFd::new(self.signals.read.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, wait_ms);
            self.signals.drain();
            for sig in Sig::ALL {
                if self.signals.take(sig) {
                    if let Some(code) = self.feed(Event::Signal { sig, now: monotonic_ms() }) {
                        return code;
                    }
                }
            }
            if let Some(code) = self.reap() {
                return code;
            }
            let beats: Vec<(i32, usize)> = self.arbiter.workers().iter().map(|(p, w)| (*p, w.slot)).collect();
            for (pid, slot) in beats {
                let at = self.heartbeats.slot(slot).last_beat();
                if let Some(code) = self.feed(Event::Beat { pid, at }) {
                    return code;
                }
            }
            if let Some(code) = self.feed(Event::Tick { now: monotonic_ms() }) {
                return code;
            }
        }
    }

    fn reap(&mut self) -> Option<u8> {
        loop {
            let status = match waitpid(NixPid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Status::Exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Status::Signaled(sig as i32, sig.as_str())),
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(_) => continue,
            };
            let ev = Event::Exited { pid: status.0.as_raw(), status: status.1, now: monotonic_ms() };
            if let Some(code) = self.feed(ev) {
                return Some(code);
            }
        }
    }

    /// Handles an event and everything it leads to; `Some(code)` when the master exits.
    fn feed(&mut self, first: Event) -> Option<u8> {
        let mut queue = VecDeque::from([first]);
        while let Some(ev) = queue.pop_front() {
            for cmd in self.arbiter.handle(ev) {
                match cmd {
                    Command::Log(level, line) => self.log.log(level, line),
                    Command::Spawn { slot } => queue.push_back(self.spawn(slot)),
                    Command::Kill(pid, sig) => {
                        let sig = match sig {
                            KillSig::Term => Signal::SIGTERM,
                            KillSig::Quit => Signal::SIGQUIT,
                            KillSig::Abrt => Signal::SIGABRT,
                            KillSig::Kill => Signal::SIGKILL,
                        };
                        let _ = nix::sys::signal::kill(NixPid::from_raw(pid), sig);
                    }
                    Command::ReportTimeout { pid, slot } => self.report_timeout(pid, slot),
                    Command::CloseListeners => listen::close_listeners(std::mem::take(&mut self.listeners), true),
                    Command::Exit(code) => return Some(code),
                }
            }
        }
        None
    }

    fn report_timeout(&self, pid: i32, slot: usize) {
        let s = self.heartbeats.slot(slot);
        let now = monotonic_ms();
        let silent = now.saturating_sub(s.last_beat()) as f64 / 1000.0;
        match s.in_flight() {
            Some(r) => {
                let from = if r.client.is_empty() { String::new() } else { format!(" from {}", r.client) };
                let took = now.saturating_sub(r.started_ms) as f64 / 1000.0;
                self.log.critical(format_args!(
                    "Worker (pid:{pid}) was serving {} {}{from} for {took:.1} s (no heartbeat for {silent:.1} s)",
                    r.method, r.path
                ));
            }
            None => self.log.critical(format_args!(
                "Worker (pid:{pid}) was not serving a request (no heartbeat for {silent:.1} s)"
            )),
        }
    }

    fn spawn(&mut self, slot: usize) -> Event {
        let now = monotonic_ms();
        self.heartbeats.slot(slot).reset(now);
        let age = self.arbiter.workers().values().map(|w| w.age).max().unwrap_or(0) + 1;
        let mask = handled_sigset();
        let mut old = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old));
        match fork_process() {
            Ok(ForkResult::Parent { child }) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Event::Spawned { pid: child.as_raw(), slot, now }
            }
            Ok(ForkResult::Child) => {
                let code = self.child(slot, age, &old);
                std::process::exit(i32::from(code));
            }
            Err(e) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                self.log.error(format_args!("fork failed: {e}"));
                Event::SpawnFailed { slot }
            }
        }
    }

    /// The worker side of a fork. Never returns to the master loop.
    fn child(&mut self, slot: usize, age: u64, old_mask: &SigSet) -> u8 {
        self.signals.detach();
        let signals = match WorkerSignals::install() {
            Ok(s) => s,
            Err(e) => {
                self.log.error(format_args!("Cannot install worker signal handlers: {e}"));
                return decide::WORKER_BOOT_ERROR;
            }
        };
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
        let pid = std::process::id();
        self.log.info(format_args!("Booting worker with pid: {pid}"));
        let ctx = WorkerContext {
            pid,
            master_pid: self.pid,
            age,
            listeners: std::mem::take(&mut self.listeners),
            heartbeat: self.heartbeats.slot(slot),
            signals,
            timeout: self.timeout,
            graceful_timeout: self.graceful_timeout,
            log: self.log.clone(),
        };
        let body = self.body;
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.run(ctx))) {
            Ok(c) => c,
            Err(_) => {
                self.log.error("Exception in worker process");
                255
            }
        };
        self.log.info(format_args!("Worker exiting (pid: {pid})"));
        code
    }
}

/// Forks the master.
#[allow(unsafe_code)]
fn fork_process() -> nix::Result<ForkResult> {
    // SAFETY: the master runs no other threads when it forks (`serve` warns if it does):
    // no lock can be held by a thread that does not exist in the child. The child only
    // swaps signal handlers (signal-hook's registry, whose lock no one holds) and then
    // runs the worker body, which starts its own threads if it needs any.
    unsafe { nix::unistd::fork() }
}

fn to_signal(sig: Sig) -> Signal {
    match sig {
        Sig::Int => Signal::SIGINT,
        Sig::Quit => Signal::SIGQUIT,
        Sig::Term => Signal::SIGTERM,
        Sig::Chld => Signal::SIGCHLD,
        Sig::Hup => Signal::SIGHUP,
        Sig::Ttin => Signal::SIGTTIN,
        Sig::Ttou => Signal::SIGTTOU,
        Sig::Usr1 => Signal::SIGUSR1,
        Sig::Usr2 => Signal::SIGUSR2,
        Sig::Winch => Signal::SIGWINCH,
    }
}

fn handled_sigset() -> SigSet {
    let mut set = SigSet::empty();
    for s in Sig::ALL {
        set.add(to_signal(s));
    }
    set.add(Signal::SIGABRT);
    set
}

/// The master's signal handlers: each sets a flag and writes a byte to a self-pipe that
/// the loop polls. Nothing else runs in a handler.
struct MasterSignals {
    flags: Vec<(Sig, Arc<AtomicBool>)>,
    ids: Vec<SigId>,
    read: UnixStream,
}

impl MasterSignals {
    fn install() -> std::io::Result<MasterSignals> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for sig in Sig::ALL {
            let flag = Arc::new(AtomicBool::new(false));
            let n = to_signal(sig) as i32;
            ids.push(signal_hook::flag::register(n, Arc::clone(&flag))?);
            ids.push(signal_hook::low_level::pipe::register(n, write.try_clone()?)?);
            flags.push((sig, flag));
        }
        Ok(MasterSignals { flags, ids, read })
    }

    fn take(&self, sig: Sig) -> bool {
        self.flags.iter().any(|(s, f)| *s == sig && f.swap(false, Ordering::Relaxed))
    }

    fn drain(&self) {
        let mut buf = [0u8; 256];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// In a forked worker: removes the master's actions (the worker installs its own).
    fn detach(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl std::fmt::Debug for MasterSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterSignals").field("signals", &self.flags.len()).finish()
    }
}
