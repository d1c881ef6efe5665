//! The master process: binds, forks workers, and keeps them running.
//!
//! [`decide`] holds every decision; this module performs them with nix and feeds back
//! what happened. The loop:
//!
//! ```text
//!   poll(signal pipe, 1 s; 100 ms while stopping or reloading)
//!     → pending signals (flags set by signal-hook handlers, which only queue)
//!     → waitpid(-1, WNOHANG) until nothing is left: Event::Exited
//!     → a re-executed master whose parent is gone: Event::ParentGone
//!     → every worker's heartbeat slot: Event::Beat, and Event::Booted once
//!     → Event::Tick
//!   each event → decide::Arbiter::handle → Commands → performed here
//! ```
//!
//! ## Calling it
//!
//! The CLI calls [`serve_with`] once the settings are resolved and their [`ServerConfig`]
//! built (the settings stay for what reads them by name: hooks, the Python `cfg`
//! object, the configuration dump), with the worker body that
//! serves the application (the Python bridge's WSGI body; the test server's Rust bodies
//! in `tests/`) and [`ServeOptions`]: the server hooks, the [`Reload`] that re-resolves the
//! settings on HUP, the [`ReexecCommand`] USR2 runs, the [`ProcTitle`] setter:
//!
//! ```no_run
//! # use ferrocorn::settings::{ServerConfig, Settings};
//! use ferrocorn::worker::{WorkerBody, WorkerContext};
//!
//! /// A worker that exits at once (a real one serves its listeners until told to stop).
//! struct Body;
//!
//! impl WorkerBody for Body {
//!     fn run(&self, _ctx: WorkerContext) -> u8 {
//!         0
//!     }
//! }
//!
//! # fn cli(settings: &Settings, config: &ServerConfig) -> std::process::ExitCode {
//! ferrocorn::arbiter::serve(settings, config, &Body)
//! # }
//! ```
//!
//! `serve` must be called while the process has one thread: it forks (and, with
//! `daemon`, daemonizes first). With Python, call it with the GIL held by the main
//! thread and no Python threads started; the bridge's body runs `PyOS_AfterFork_Child`
//! first thing in [`WorkerBody::run`].
//!
//! ## Start-up order (gunicorn 27's)
//!
//! daemonize → `Starting ferrocorn` → `nworkers_changed(None)` → pidfile (`<pidfile>.2`
//! when re-executed) → `on_starting` → signals → listeners (systemd's `LISTEN_FDS` when
//! `LISTEN_PID` is ours, else `GUNICORN_FD` from a USR2 parent, else bind; none with
//! `reuse_port`: each worker binds its own) → `Listening at:` → `Using worker:` →
//! `READY=1` → `when_ready` → workers.
//!
//! ## systemd notifications
//!
//! With `NOTIFY_SOCKET` set: `READY=1` when listening, `RELOADING=1` (with
//! `MONOTONIC_USEC`, for `Type=notify-reload`) when a HUP starts and `READY=1` when the
//! new workers booted (or the reload failed or was aborted), `STOPPING=1` when a stop
//! begins. gunicorn 27 only ever sends `READY=1`.

pub mod decide;
pub mod hooks;

use std::collections::VecDeque;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
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
pub use crate::lifecycle::{NoHooks, ServerHooks, ServerInfo, WorkerInfo};
use crate::listen::{self, BindAddr, BindOptions, Listener};
use crate::log::Logger;
use crate::process::{self, CommTitle, Pidfile, ProcTitle};
use crate::reload::Watcher;
use crate::settings::{ServerConfig, Settings};
use crate::worker::{WorkerBody, WorkerContext, WorkerSignals};
use decide::{Arbiter, Command, Config, Event, Hook, KillSig, Sig, Status};
pub use hooks::{ReexecCommand, Reload};

/// The version in `Starting ferrocorn <version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the CLI layer plugs in, and knobs that are not gunicorn settings.
#[derive(Clone)]
pub struct ServeOptions {
    /// Pause between bind attempts (gunicorn: 1 s; tests shorten it).
    pub bind_retry_delay: Duration,
    /// The server hooks ([`NoHooks`] by default).
    pub hooks: Arc<dyn ServerHooks>,
    /// Re-resolves the settings on HUP; `None` reuses the running settings (the workers
    /// are still replaced).
    pub reload: Option<Arc<dyn Reload>>,
    /// What USR2 executes; `None` means [`ReexecCommand::from_process`], taken when
    /// `serve` starts.
    pub reexec: Option<ReexecCommand>,
    /// Sets the process titles ([`CommTitle`] by default).
    pub title: Arc<dyn ProcTitle>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            bind_retry_delay: Duration::from_secs(1),
            hooks: Arc::new(NoHooks),
            reload: None,
            reexec: None,
            title: Arc::new(CommTitle),
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("bind_retry_delay", &self.bind_retry_delay)
            .field("reload", &self.reload.is_some())
            .field("reexec", &self.reexec)
            .finish_non_exhaustive()
    }
}

/// Runs the master with `settings` (configured as `config`) until it stops; returns the
/// process exit code.
pub fn serve(settings: &Settings, config: &ServerConfig, body: &dyn WorkerBody) -> ExitCode {
    ExitCode::from(serve_with(settings, config, body, &ServeOptions::default()))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The arbiter's part of the configuration.
fn arbiter_config(config: &ServerConfig, systemd: bool) -> Config {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let workers = config.worker.workers;
    Config {
        workers,
        timeout_ms: ms(config.worker.timeout),
        graceful_timeout_ms: ms(config.worker.graceful_timeout),
        daemon: config.process.daemon,
        systemd,
        reuse_port: config.listen.reuse_port,
        max_workers: decide::DEFAULT_MAX_WORKERS.max(workers),
    }
}

fn bind_options(config: &ServerConfig, opts: &ServeOptions) -> BindOptions {
    BindOptions {
        backlog: config.listen.backlog,
        reuse_port: config.listen.reuse_port,
        umask: config.listen.umask,
        retry_delay: opts.bind_retry_delay,
        is_ssl: config.listen.is_ssl,
        ..BindOptions::default()
    }
}

fn parse_binds(config: &ServerConfig) -> Result<Vec<BindAddr>, String> {
    config.listen.bind.iter().map(|b| listen::parse_address(b)).collect()
}

/// The worker uid/gid when they differ from ours (`user`, `group`), else `None`.
fn owner(config: &ServerConfig) -> Option<(u32, u32)> {
    let uid = config.process.uid?;
    let gid = config.process.gid?;
    let same = uid == nix::unistd::geteuid().as_raw() && gid == nix::unistd::getegid().as_raw();
    (!same).then_some((uid, gid))
}

/// [`serve`] with explicit [`ServeOptions`]; returns the exit status.
pub fn serve_with(
    settings: &Settings,
    config: &ServerConfig,
    body: &dyn WorkerBody,
    opts: &ServeOptions,
) -> u8 {
    let reexec = opts.reexec.clone().unwrap_or_else(ReexecCommand::from_process);
    let parent: Option<i32> = env_var("GUNICORN_PID").and_then(|p| p.trim().parse().ok());
    let inherited = env_var("GUNICORN_FD");
    if config.process.daemon && inherited.is_none() {
        if let Err(e) = process::daemonize(config.process.enable_stdio_inheritance) {
            eprintln!("Error: cannot daemonize: {e}");
            return 1;
        }
    }
    let log = match Logger::for_config(&config.log, settings) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let owner = owner(config);
    if let (Some((uid, gid)), Some(p)) = (owner, log.path()) {
        if let Err(e) = process::chown_if_needed(std::path::Path::new(p), uid, gid) {
            log.warning(format_args!("Cannot chown {p} to {uid}:{gid}: {e}"));
        }
    }
    let binds = match parse_binds(config) {
        Ok(b) => b,
        Err(e) => {
            eprint!("\nError: {e}\n\n");
            return 1;
        }
    };
    if log.enabled(crate::log::Level::Debug) {
        log.debug(settings.current_configuration());
    }
    log.info(format_args!("Starting ferrocorn {VERSION}"));
    if std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() > 1) {
        log.warning("The master has more than one thread; forking it is unsafe.");
    }
    let settings = Arc::new(settings.clone());
    let config = Arc::new(config.clone());
    let systemd_fds = process::systemd_listen_fds(
        env_var("LISTEN_PID").as_deref(),
        env_var("LISTEN_FDS").as_deref(),
    );
    let cfg = arbiter_config(&config, systemd_fds.is_some());
    let mut arbiter = Arbiter::new(cfg);
    if let Some(p) = parent {
        arbiter = arbiter.reexeced_by(p);
    }
    let proc_name = config.process.proc_name.clone();
    let mut master = Master {
        arbiter,
        settings: Arc::clone(&settings),
        config: Arc::clone(&config),
        binds,
        listeners: Vec::new(),
        prev: None,
        heartbeats: None,
        log,
        signals: None,
        body,
        pid: nix::unistd::getpid().as_raw(),
        pidfile: None,
        proc_name,
        hooks: Arc::clone(&opts.hooks),
        reload: opts.reload.clone(),
        reexec,
        title: Arc::clone(&opts.title),
        notify_socket: env_var("NOTIFY_SOCKET"),
        bind_opts: bind_options(&config, opts),
        watcher: None,
    };
    match Watcher::new(&config.reload, master.pid) {
        Ok(w) => master.watcher = w,
        Err(e) => {
            master.log.error(&e);
            eprintln!("Error: {e}");
            return 1;
        }
    }
    if master.watcher.is_some() && config.app.preload_app {
        master.log.warning(
            "reload with preload_app: the workers fork from the application the master \
loaded, so a reload restarts them with the code they already had",
        );
    }
    master.with_server(|h, s| h.nworkers_changed(s, cfg.workers, None));
    if let Some(path) = &config.process.pidfile {
        let path = if parent.is_some() { format!("{path}.2") } else { path.to_owned() };
        match Pidfile::create(&path, master.pid) {
            Ok(p) => master.pidfile = Some(p),
            Err(e) => {
                master.log.error(&e);
                eprintln!("Error: {e}");
                return 1;
            }
        }
    }
    master.with_server(|h, s| h.on_starting(s));
    match MasterSignals::install() {
        Ok(s) => master.signals = Some(s),
        Err(e) => {
            master.log.error(format_args!("Cannot install signal handlers: {e}"));
            return master.fail(1);
        }
    }
    let created = if let Some(fds) = &systemd_fds {
        process::unset_env(&["LISTEN_PID", "LISTEN_FDS"]);
        listen::adopt_listeners(fds, &master.bind_opts, false)
    } else if let Some(fds) = inherited.filter(|_| parent.is_some()) {
        process::unset_env(&["GUNICORN_FD"]);
        match process::gunicorn_fds(&fds) {
            Ok(fds) => listen::adopt_listeners(&fds, &master.bind_opts, true),
            Err(message) => Err(listen::BindError { message, logged: false }),
        }
    } else if cfg.reuse_port {
        Ok(Vec::new())
    } else {
        listen::create_listeners(&master.binds, &master.bind_opts, &master.log)
    };
    match created {
        Ok(l) => master.listeners = l,
        Err(e) => {
            if !e.logged {
                master.log.error(&e.message);
            }
            return master.fail(1);
        }
    }
    master.chown_sockets();
    master.log.debug("Arbiter booted");
    master.log.info(format_args!(
        "Listening at: {} ({})",
        master.listener_names().join(","),
        master.pid
    ));
    master.log.info(format_args!("Using worker: {}", config.worker.class_name));
    master.notify("READY=1\nSTATUS=ferrocorn arbiter booted");
    match Heartbeats::map(cfg.slots()) {
        Ok(h) => master.heartbeats = Some(h),
        Err(e) => {
            master.log.error(format_args!("Cannot map the heartbeat region: {e}"));
            return master.fail(1);
        }
    }
    master.with_server(|h, s| h.when_ready(s));
    master.set_master_title();
    master.run()
}

/// What a configuration generation holds while a reload rolls out.
struct Generation {
    settings: Arc<Settings>,
    config: Arc<ServerConfig>,
    binds: Vec<BindAddr>,
    listeners: Vec<Listener>,
}

struct Master<'a> {
    arbiter: Arbiter,
    settings: Arc<Settings>,
    config: Arc<ServerConfig>,
    binds: Vec<BindAddr>,
    listeners: Vec<Listener>,
    /// The previous generation during a reload (restored if the reload is aborted).
    prev: Option<Generation>,
    heartbeats: Option<Heartbeats>,
    log: Logger,
    signals: Option<MasterSignals>,
    body: &'a dyn WorkerBody,
    pid: i32,
    pidfile: Option<Pidfile>,
    proc_name: String,
    hooks: Arc<dyn ServerHooks>,
    reload: Option<Arc<dyn Reload>>,
    reexec: ReexecCommand,
    title: Arc<dyn ProcTitle>,
    notify_socket: Option<String>,
    bind_opts: BindOptions,
    /// `reload`: the application's files, watched (see [`crate::reload`]).
    watcher: Option<Watcher>,
}

impl Master<'_> {
    fn listener_names(&self) -> Vec<String> {
        self.listeners.iter().map(ToString::to_string).collect()
    }

    /// Calls `f` with the hooks and the master as hooks see it.
    fn with_server(&self, f: impl FnOnce(&dyn ServerHooks, &ServerInfo<'_>)) {
        let workers: Vec<WorkerInfo> = {
            let mut w: Vec<WorkerInfo> = self
                .arbiter
                .workers()
                .iter()
                .map(|(pid, w)| WorkerInfo { pid: *pid, ppid: self.pid, age: w.age, slot: w.slot })
                .collect();
            w.sort_by_key(|w| w.age);
            w
        };
        let names = self.listener_names();
        let proc_name = self.current_proc_name();
        let info = ServerInfo {
            pid: self.pid,
            master_name: self.arbiter.master_name(),
            proc_name: &proc_name,
            num_workers: self.arbiter.num_workers(),
            workers: &workers,
            listeners: &names,
            settings: &self.settings,
            config: &self.config,
            log: &self.log,
            reexec_pid: self.arbiter.reexec_pid(),
            master_pid: self.arbiter.parent(),
        };
        f(self.hooks.as_ref(), &info);
    }

    fn current_proc_name(&self) -> String {
        if self.arbiter.parent().is_some() {
            format!("{}.2", self.proc_name)
        } else {
            self.proc_name.clone()
        }
    }

    fn set_master_title(&self) {
        self.title.set(&format!("ferrocorn: master [{}]", self.current_proc_name()));
    }

    fn notify(&self, state: &str) {
        if let Err(e) = process::sd_notify(self.notify_socket.as_deref(), state) {
            self.log.debug(format_args!("Exception while invoking sd_notify(): {e}"));
        }
    }

    fn chown_sockets(&self) {
        let Some((uid, gid)) = owner(&self.config) else { return };
        for l in &self.listeners {
            if let Some(p) = l.owned_path() {
                if let Err(e) = process::chown_if_needed(p, uid, gid) {
                    self.log
                        .warning(format_args!("Cannot chown {} to {uid}:{gid}: {e}", p.display()));
                }
            }
        }
    }

    /// Ends a start that failed after the pidfile was written.
    fn fail(&mut self, code: u8) -> u8 {
        if let Some(p) = self.pidfile.take() {
            p.unlink();
        }
        code
    }

    fn heartbeats(&self) -> Heartbeats {
        self.heartbeats.expect("mapped before the loop")
    }

    fn run(&mut self) -> u8 {
        if let Some(code) = self.feed(Event::Start { now: monotonic_ms() }) {
            return code;
        }
        loop {
            let busy = self.arbiter.stopping() || self.arbiter.reloading();
            let wait_ms: u16 = if busy { 100 } else { 1000 };
            let wait_ms = match &self.watcher {
                Some(w) => wait_ms.min(u16::try_from(w.wait_ms(monotonic_ms())).unwrap_or(1000)),
                None => wait_ms,
            };
            {
                let signals = self.signals.as_ref().expect("installed before the loop");
                let mut fds = vec![nix::poll::PollFd::new(
                    signals.read.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                if let Some(fd) = self.watcher.as_ref().and_then(Watcher::fd) {
                    fds.push(nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN));
                }
                let _ = nix::poll::poll(&mut fds, wait_ms);
                signals.drain();
            }
            let changed = self.watcher.as_mut().and_then(|w| w.check(monotonic_ms()));
            if let Some(path) = changed {
                let ev = Event::FilesChanged { path: path.display().to_string() };
                if let Some(code) = self.feed(ev) {
                    return code;
                }
            }
            for sig in Sig::ALL {
                if self.signals.as_ref().is_some_and(|s| s.take(sig)) {
                    if let Some(code) = self.feed(Event::Signal { sig, now: monotonic_ms() }) {
                        return code;
                    }
                }
            }
            if let Some(code) = self.reap() {
                return code;
            }
            if let Some(p) = self.arbiter.parent() {
                if nix::unistd::getppid().as_raw() != p {
                    if let Some(code) = self.feed(Event::ParentGone) {
                        return code;
                    }
                }
            }
            let hb = self.heartbeats();
            let beats: Vec<(i32, usize, bool)> =
                self.arbiter.workers().iter().map(|(p, w)| (*p, w.slot, w.booted)).collect();
            for (pid, slot, booted) in beats {
                let s = hb.slot(slot);
                let mut evs = vec![Event::Beat { pid, at: s.last_beat() }];
                if !booted && s.booted() {
                    evs.push(Event::Booted { pid, now: monotonic_ms() });
                }
                for ev in evs {
                    if let Some(code) = self.feed(ev) {
                        return code;
                    }
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
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    (pid, Status::Signaled(sig as i32, sig.as_str()))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(_) => continue,
            };
            let ev =
                Event::Exited { pid: status.0.as_raw(), status: status.1, now: monotonic_ms() };
            if let Some(code) = self.feed(ev) {
                return Some(code);
            }
        }
    }

    /// Handles an event and everything it leads to; `Some(code)` when the master exits.
    fn feed(&mut self, first: Event) -> Option<u8> {
        let mut queue = VecDeque::from([first]);
        while let Some(ev) = queue.pop_front() {
            let exiting = self.arbiter.workers().clone();
            let counted = self.arbiter.logged_count();
            let cmds = self.arbiter.handle(ev);
            // gunicorn's `gunicorn.workers` gauge goes with the `N workers` line.
            if let (Some(n), Some(statsd)) = (self.arbiter.logged_count(), self.log.statsd()) {
                if counted != Some(n) {
                    statsd.workers(n);
                }
            }
            for cmd in cmds {
                match cmd {
                    Command::Log(level, line) => self.log.log(level, line),
                    Command::Spawn { slot, age } => queue.push_back(self.spawn(slot, age)),
                    Command::Kill(pid, sig) => {
                        let sig = match sig {
                            KillSig::Term => Signal::SIGTERM,
                            KillSig::Quit => Signal::SIGQUIT,
                            KillSig::Abrt => Signal::SIGABRT,
                            KillSig::Kill => Signal::SIGKILL,
                            KillSig::Usr1 => Signal::SIGUSR1,
                        };
                        let _ = nix::sys::signal::kill(NixPid::from_raw(pid), sig);
                    }
                    Command::ReportTimeout { pid, slot } => self.report_timeout(pid, slot),
                    Command::CloseListeners { unlink } => {
                        self.notify("STOPPING=1");
                        listen::close_listeners(std::mem::take(&mut self.listeners), unlink);
                        if let Some(prev) = self.prev.take() {
                            listen::close_listeners(prev.listeners, unlink);
                        }
                    }
                    Command::Reload => queue.push_back(self.reload()),
                    Command::ReloadDone => self.reload_done(),
                    Command::ReloadAborted => self.reload_aborted(),
                    Command::ReopenLogs => {
                        if let Err(e) = self.log.reopen() {
                            self.log.error(e);
                        }
                    }
                    Command::Reexec => queue.push_back(self.reexec()),
                    Command::Promote => self.promote(),
                    Command::Hook(Hook::NWorkersChanged { new, old }) => {
                        self.with_server(|h, s| h.nworkers_changed(s, new, Some(old)));
                    }
                    Command::Hook(Hook::OnReload) => self.with_server(|h, s| h.on_reload(s)),
                    Command::Hook(Hook::ChildExit { pid, age }) => {
                        let slot = exiting.get(&pid).map_or(0, |w| w.slot);
                        let w = WorkerInfo { pid, ppid: self.pid, age, slot };
                        self.with_server(|h, s| h.child_exit(s, &w));
                    }
                    Command::Exit(code) => {
                        if let Some(p) = self.pidfile.take() {
                            p.unlink();
                        }
                        self.with_server(|h, s| h.on_exit(s));
                        return Some(code);
                    }
                }
            }
        }
        None
    }

    /// HUP: re-resolve the settings; on success switch to them (logger, listeners,
    /// pidfile, title) and keep the previous generation until the new workers booted.
    fn reload(&mut self) -> Event {
        let usec = monotonic_ms() * 1000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
        let loaded = match &self.reload {
            Some(r) => r.reload(),
            None => Ok(((*self.settings).clone(), (*self.config).clone())),
        };
        // The TLS files too: a broken certificate keeps the old workers serving.
        let servable =
            |(s, c): (Settings, ServerConfig)| crate::tls_context::acceptor(&c).map(|_| (s, c));
        let new =
            match loaded.and_then(servable).and_then(|(s, c)| parse_binds(&c).map(|b| (s, c, b))) {
                Ok(x) => x,
                Err(error) => {
                    self.notify("READY=1");
                    return Event::ReloadFailed { error };
                }
            };
        let (settings, config, binds) = new;
        let settings = Arc::new(settings);
        let config = Arc::new(config);
        // Listeners: unchanged addresses keep their sockets; otherwise bind the new set
        // (sharing sockets whose address stays).
        let mut listeners = Vec::new();
        let bind_opts = BindOptions {
            retry_delay: self.bind_opts.retry_delay,
            ..bind_options(&config, &ServeOptions::default())
        };
        let same = binds == self.binds || self.arbiter.config().systemd;
        if same || bind_opts.reuse_port && self.listeners.is_empty() {
            for l in &self.listeners {
                match l.try_clone() {
                    Ok(c) => listeners.push(c),
                    Err(e) => {
                        self.notify("READY=1");
                        return Event::ReloadFailed {
                            error: format!("cannot share a listener: {e}"),
                        };
                    }
                }
            }
        } else {
            let mut fresh = Vec::new();
            for b in &binds {
                match self.binds.iter().position(|o| o == b).and_then(|i| self.listeners.get(i)) {
                    Some(l) => match l.try_clone() {
                        Ok(c) => listeners.push(c),
                        Err(e) => {
                            self.notify("READY=1");
                            return Event::ReloadFailed {
                                error: format!("cannot share a listener: {e}"),
                            };
                        }
                    },
                    None => fresh.push(b.clone()),
                }
            }
            match listen::create_listeners(&fresh, &bind_opts, &self.log) {
                Ok(l) => listeners.extend(l),
                Err(e) => {
                    self.notify("READY=1");
                    return Event::ReloadFailed { error: e.message };
                }
            }
        }
        match Logger::for_config(&config.log, &settings) {
            Ok(l) => self.log = l,
            Err(e) => self.log.error(format_args!("Keeping the current error log: {e}")),
        }
        // gunicorn's reload runs `Arbiter.setup` again, which logs the dump again.
        if self.log.enabled(crate::log::Level::Debug) {
            self.log.debug(settings.current_configuration());
        }
        let old_config = Arc::clone(&self.config);
        let old = Generation {
            settings: std::mem::replace(&mut self.settings, Arc::clone(&settings)),
            config: std::mem::replace(&mut self.config, Arc::clone(&config)),
            binds: std::mem::replace(&mut self.binds, binds),
            listeners: std::mem::replace(&mut self.listeners, listeners),
        };
        if !same {
            self.chown_sockets();
            self.log.info(format_args!("Listening at: {}", self.listener_names().join(",")));
        }
        match &mut self.prev {
            // A reload during a reload: the oldest generation stays the one to restore.
            Some(_) => listen::close_listeners(old.listeners, false),
            None => self.prev = Some(old),
        }
        self.proc_name = config.process.proc_name.clone();
        if let Some(p) = self.pidfile.take() {
            let path = p.path().to_path_buf();
            p.unlink();
            let want = config.process.pidfile.as_ref().map(|p| {
                if self.arbiter.parent().is_some() { format!("{p}.2") } else { p.clone() }
            });
            let path = want.map_or(path, std::path::PathBuf::from);
            match Pidfile::create(&path, self.pid) {
                Ok(p) => self.pidfile = Some(p),
                Err(e) => self.log.error(e),
            }
        }
        self.set_master_title();
        if config.reload != old_config.reload {
            // The old watcher's directory goes before the new one makes it again.
            self.watcher = None;
            match Watcher::new(&config.reload, self.pid) {
                Ok(w) => self.watcher = w,
                Err(e) => self.log.error(e),
            }
        }
        let cfg = arbiter_config(&config, self.arbiter.config().systemd);
        Event::Reloaded { cfg, now: monotonic_ms() }
    }

    fn reload_done(&mut self) {
        if let Some(prev) = self.prev.take() {
            let keep: Vec<_> = self
                .listeners
                .iter()
                .filter_map(|l| l.owned_path().map(|p| p.to_path_buf()))
                .collect();
            for l in prev.listeners {
                let unlink = l.owned_path().is_some_and(|p| !keep.iter().any(|k| k == p));
                l.close(unlink);
            }
        }
        self.notify("READY=1");
    }

    fn reload_aborted(&mut self) {
        if let Some(prev) = self.prev.take() {
            let keep: Vec<_> = prev
                .listeners
                .iter()
                .filter_map(|l| l.owned_path().map(|p| p.to_path_buf()))
                .collect();
            for l in std::mem::replace(&mut self.listeners, prev.listeners) {
                let unlink = l.owned_path().is_some_and(|p| !keep.iter().any(|k| k == p));
                l.close(unlink);
            }
            self.settings = prev.settings;
            self.config = prev.config;
            self.binds = prev.binds;
            self.proc_name = self.config.process.proc_name.clone();
        }
        self.notify("READY=1");
    }

    fn promote(&mut self) {
        if let (Some(p), Some(path)) = (self.pidfile.as_mut(), &self.config.process.pidfile) {
            if let Err(e) = p.rename(path) {
                self.log.error(e);
            }
        }
        self.set_master_title();
    }

    /// USR2: fork; the child runs `pre_exec` and executes the new master with the
    /// listeners inherited.
    fn reexec(&mut self) -> Event {
        let fds: Vec<i32> = self.listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
        let systemd = self.arbiter.config().systemd;
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = self
            .reexec
            .env
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.to_str(),
                    Some("GUNICORN_PID" | "GUNICORN_FD" | "LISTEN_PID" | "LISTEN_FDS")
                )
            })
            .cloned()
            .collect();
        env.push(("GUNICORN_PID".into(), self.pid.to_string().into()));
        if systemd {
            env.push(("LISTEN_FDS".into(), fds.len().to_string().into()));
        } else {
            let list: Vec<String> = fds.iter().map(ToString::to_string).collect();
            env.push(("GUNICORN_FD".into(), list.join(",").into()));
        }
        let cstr = |b: &[u8]| CString::new(b).map_err(|e| e.to_string());
        let prepared = (|| -> Result<ExecArgs, String> {
            let program = cstr(self.reexec.program.as_os_str().as_bytes())?;
            let argv = self
                .reexec
                .argv
                .iter()
                .map(|a| cstr(a.as_bytes()))
                .collect::<Result<Vec<_>, _>>()?;
            let env =
                env.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
            Ok((program, argv, env))
        })();
        let (program, argv, env) = match prepared {
            Ok(p) => p,
            Err(error) => return Event::ReexecFailed { error },
        };
        match fork_process() {
            Ok(ForkResult::Parent { child }) => Event::Reexeced { pid: child.as_raw() },
            Err(e) => Event::ReexecFailed { error: e.to_string() },
            Ok(ForkResult::Child) => {
                if let Some(s) = self.signals.as_mut() {
                    s.detach();
                }
                self.with_server(|h, s| h.pre_exec(s));
                let mut env = env;
                if systemd {
                    let pid = nix::unistd::getpid().as_raw();
                    env.push((b"LISTEN_PID".to_vec(), pid.to_string().into_bytes()));
                }
                let env: Vec<CString> = env
                    .into_iter()
                    .filter_map(|(mut k, v)| {
                        k.push(b'=');
                        k.extend_from_slice(&v);
                        CString::new(k).ok()
                    })
                    .collect();
                let _ = std::env::set_current_dir(&self.reexec.cwd);
                let err = exec_with_listeners(&program, &argv, &env, &fds, systemd);
                self.log.error(format_args!(
                    "USR2: cannot execute {}: {err}",
                    self.reexec.program.display()
                ));
                exit_now(1)
            }
        }
    }

    fn report_timeout(&self, pid: i32, slot: usize) {
        let s = self.heartbeats().slot(slot);
        let now = monotonic_ms();
        let silent = now.saturating_sub(s.last_beat()) as f64 / 1000.0;
        match s.in_flight() {
            Some(r) => {
                let from =
                    if r.client.is_empty() { String::new() } else { format!(" from {}", r.client) };
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

    fn spawn(&mut self, slot: usize, age: u64) -> Event {
        let now = monotonic_ms();
        self.heartbeats().slot(slot).reset(now);
        let pre = WorkerInfo { pid: 0, ppid: self.pid, age, slot };
        self.with_server(|h, s| h.pre_fork(s, &pre));
        let mask = handled_sigset();
        let mut old = SigSet::empty();
        let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old));
        self.body.before_fork();
        let forked = fork_process();
        match &forked {
            Ok(ForkResult::Child) => self.body.after_fork_child(),
            Ok(ForkResult::Parent { .. }) | Err(_) => self.body.after_fork_parent(),
        }
        match forked {
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
        if let Some(s) = self.signals.as_mut() {
            s.detach();
        }
        let signals = match WorkerSignals::install() {
            Ok(s) => s,
            Err(e) => {
                self.log.error(format_args!("Cannot install worker signal handlers: {e}"));
                return decide::WORKER_BOOT_ERROR;
            }
        };
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
        let pid = std::process::id();
        self.title.set(&format!("ferrocorn: worker [{}]", self.proc_name));
        self.log.info(format_args!("Booting worker with pid: {pid}"));
        let info = WorkerInfo { pid: pid as i32, ppid: self.pid, age, slot };
        if self.listeners.is_empty() && self.arbiter.config().reuse_port {
            match listen::create_listeners(&self.binds, &self.bind_opts, &self.log) {
                Ok(l) => self.listeners = l,
                Err(e) => {
                    if !e.logged {
                        self.log.error(&e.message);
                    }
                    return decide::WORKER_BOOT_ERROR;
                }
            }
        }
        self.with_server(|h, s| h.post_fork(s, &info));
        if let Some((uid, gid)) = owner(&self.config) {
            if let Err(e) = process::set_owner_process(uid, gid, self.config.process.initgroups) {
                self.log.error(format_args!("Cannot switch to user {uid} group {gid}: {e}"));
                return decide::WORKER_BOOT_ERROR;
            }
        }
        let ctx = WorkerContext {
            pid,
            master_pid: self.pid,
            age,
            listeners: std::mem::take(&mut self.listeners),
            slot,
            heartbeat: self.heartbeats().slot(slot),
            peers: self.heartbeats(),
            signals,
            timeout: self.config.worker.timeout,
            graceful_timeout: self.config.worker.graceful_timeout,
            log: self.log.clone(),
            settings: Arc::clone(&self.settings),
            config: Arc::clone(&self.config),
            hooks: Arc::clone(&self.hooks),
            max_requests: max_requests(&self.config),
        };
        if let Some(prev) = self.prev.take() {
            drop(prev.listeners);
        }
        let body = self.body;
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.run(ctx))) {
            Ok(c) => c,
            Err(_) => {
                self.log.error("Exception in worker process");
                255
            }
        };
        self.log.info(format_args!("Worker exiting (pid: {pid})"));
        self.with_server(|h, s| h.worker_exit(s, &info));
        // The request metrics still batched (log/statsd.rs).
        if let Some(s) = self.log.statsd() {
            s.flush();
        }
        code
    }
}

/// The program, argv and environment of a re-exec, made before the fork.
type ExecArgs = (CString, Vec<CString>, Vec<(Vec<u8>, Vec<u8>)>);

/// This worker's request limit: `max_requests` plus a draw in `0..=max_requests_jitter`
/// (gunicorn's `randint`), or 0 (no limit) when `max_requests` is 0.
fn max_requests(config: &ServerConfig) -> u64 {
    let base = config.worker.max_requests;
    if base == 0 {
        return 0;
    }
    let jitter = config.worker.max_requests_jitter;
    if jitter == 0 {
        return base;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    base + h.finish() % (jitter + 1)
}

/// Forks the master.
#[allow(unsafe_code)]
fn fork_process() -> nix::Result<ForkResult> {
    // SAFETY: the master runs no other threads when it forks (`serve` warns if it does):
    // no lock can be held by a thread that does not exist in the child. The child only
    // swaps signal handlers (signal-hook's registry, whose lock no one holds) and then
    // runs the worker body (which starts its own threads if it needs any) or executes a
    // new master.
    unsafe { nix::unistd::fork() }
}

/// Leaves the process at once, without running atexit handlers (a forked child that
/// failed to exec must not run the parent's cleanup).
#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and always sound to call.
    unsafe { nix::libc::_exit(code) }
}

/// In the forked child of a USR2: makes the listeners inheritable (with systemd, moved
/// to fds 3, 4, ... as `LISTEN_FDS` promises) and executes the new master. Returns only
/// on failure.
#[allow(unsafe_code)]
fn exec_with_listeners(
    program: &CString,
    argv: &[CString],
    env: &[CString],
    fds: &[i32],
    systemd: bool,
) -> nix::Error {
    use nix::libc;
    if systemd {
        // First move every listener above the target range, then down into 3..3+n, so
        // no move overwrites a listener not yet moved.
        let mut high = Vec::new();
        for &fd in fds {
            // SAFETY: `fd` is a listener this process owns; F_DUPFD_CLOEXEC returns a new
            // descriptor (>= 3 + n) or -1, and touches no memory.
            let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3 + fds.len() as libc::c_int) };
            if n < 0 {
                return nix::Error::last();
            }
            high.push(n);
        }
        for (i, &fd) in high.iter().enumerate() {
            // SAFETY: dup2 onto 3 + i: this child is about to exec, and whatever fd
            // 3 + i held is either a listener already copied above or a close-on-exec
            // descriptor the new program never sees. dup2 clears FD_CLOEXEC on the copy.
            if unsafe { libc::dup2(fd, 3 + i as libc::c_int) } < 0 {
                return nix::Error::last();
            }
        }
    } else {
        for &fd in fds {
            // SAFETY: clears FD_CLOEXEC on a descriptor this process owns; no memory is
            // touched.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
                return nix::Error::last();
            }
        }
    }
    match nix::unistd::execve(program, argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
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
