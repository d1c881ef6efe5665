//! What a worker process gets from the arbiter, and the trait a worker body implements.
//!
//! The arbiter forks; in the child it swaps the master's signal handlers for the
//! worker's ([`WorkerSignals`]), logs `Booting worker with pid: N`, and calls
//! [`WorkerBody::run`] with a [`WorkerContext`]. What `run` returns is the process exit
//! status (`3` = [`WORKER_BOOT_ERROR`] and `4` = [`APP_LOAD_ERROR`] stop the master, as
//! in gunicorn). A panic in `run` is logged and exits 255 (gunicorn's `-1`).
//!
//! The Python bridge implements [`WorkerBody`] with the WSGI application; [`hello`] is a
//! Rust body (a fixed `Hello, World!`) used by the tests and as a placeholder.

pub mod gthread;

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use signal_hook::consts::signal::{
    SIGABRT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
};

use crate::heartbeat::{Heartbeats, Slot};
pub use crate::lifecycle::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::lifecycle::{ServerHooks, WorkerInfo};
use crate::listen::Listener;
use crate::log::Logger;
use crate::settings::{ServerConfig, Settings};

/// The code a worker body runs in the forked child.
pub trait WorkerBody {
    /// Serves until told to stop; returns the exit status of the worker process.
    fn run(&self, ctx: WorkerContext) -> u8;

    /// Called in the master just before `fork(2)` (the Python bridge runs
    /// `PyOS_BeforeFork` here). The default does nothing.
    fn before_fork(&self) {}

    /// Called in the master just after `fork(2)`, also when it failed
    /// (`PyOS_AfterFork_Parent`). The default does nothing.
    fn after_fork_parent(&self) {}

    /// Called first thing in the child after `fork(2)` (`PyOS_AfterFork_Child`). The
    /// default does nothing.
    fn after_fork_child(&self) {}
}

/// Everything a worker body needs, handed over after fork.
pub struct WorkerContext {
    /// This worker's pid.
    pub pid: u32,
    /// The master's pid (the worker stops when its parent changes).
    pub master_pid: i32,
    /// Spawn order, from 1 (gunicorn's `worker.age`).
    pub age: u64,
    /// The listening sockets, inherited from the master (non-blocking).
    pub listeners: Vec<Listener>,
    /// The index of [`Self::heartbeat`] in the master's table.
    pub slot: usize,
    /// This worker's heartbeat slot: beat with [`Slot::notify`], record the request
    /// being served with [`Slot::begin_request`] / [`Slot::end_request`].
    pub heartbeat: &'static Slot,
    /// Every worker's slot (this one's is [`Self::slot`]): what the others publish, such
    /// as their open connections.
    pub peers: Heartbeats,
    /// TERM / INT / QUIT / USR1 as flags, and a wake-up fd for `poll`.
    pub signals: WorkerSignals,
    /// `timeout`: the master kills a worker whose last beat is older.
    pub timeout: Duration,
    /// `graceful_timeout`: how long in-flight work may take after TERM.
    pub graceful_timeout: Duration,
    /// The error log.
    pub log: Logger,
    /// The settings of this worker's generation (a HUP reload gives new workers new
    /// settings).
    pub settings: Arc<Settings>,
    /// Their configuration.
    pub config: Arc<ServerConfig>,
    /// The server hooks; the body calls `post_worker_init` (through [`Self::booted`]),
    /// `worker_int` and `worker_abort`.
    pub hooks: Arc<dyn ServerHooks>,
    /// Requests to serve before retiring (`max_requests` plus this worker's draw of
    /// `max_requests_jitter`); 0 means no limit. The body stops accepting after that
    /// many, finishes the request in flight, logs `Autorestarting worker after current
    /// request.` and returns 0; the master spawns a replacement.
    pub max_requests: u64,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("pid", &self.pid)
            .field("master_pid", &self.master_pid)
            .field("age", &self.age)
            .field("listeners", &self.listeners)
            .field("max_requests", &self.max_requests)
            .finish_non_exhaustive()
    }
}

impl WorkerContext {
    /// This worker as hooks see it.
    pub fn info(&self) -> WorkerInfo {
        WorkerInfo { pid: self.pid as i32, ppid: self.master_pid, age: self.age, slot: self.slot }
    }

    /// Says the application is loaded: calls `post_worker_init(worker)`, then marks the
    /// heartbeat slot booted. During a HUP reload the master retires an old worker only
    /// when a new one got here, so call it once the application imported, before
    /// serving.
    pub fn booted(&self) {
        self.hooks.post_worker_init(&self.info());
        self.heartbeat.mark_booted();
    }

    /// Whether the master is gone (the worker was re-parented).
    pub fn parent_changed(&self) -> bool {
        nix::unistd::getppid().as_raw() != self.master_pid
    }

    /// How often to beat while idle: half the timeout, as gunicorn (1 s when the timeout
    /// is disabled, at least 50 ms).
    pub fn beat_interval(&self) -> Duration {
        if self.timeout.is_zero() {
            Duration::from_secs(1)
        } else {
            (self.timeout / 2).max(Duration::from_millis(50))
        }
    }
}

/// The worker's view of its signals (gunicorn's `init_signals`):
/// TERM = stop after the current request, INT and QUIT = stop now (the body calls
/// `worker_int`), ABRT = the master's timeout (see below), USR1 = reopen logs (a flag
/// the body takes), HUP/USR2/TTIN/TTOU = default action (terminate), WINCH ignored.
///
/// ## ABRT and the stack dump slot
///
/// By default ABRT makes the process exit 1 from the signal handler itself: nothing else
/// is safe to run there, and a body stuck in application code never returns to check a
/// flag. A body that can say more calls [`WorkerSignals::handle_abort_in_body`] at
/// start: ABRT then only sets [`WorkerSignals::aborted`] and wakes the poll, and the
/// body logs what it can, calls `worker_abort(worker)` and returns 1. The master sends
/// SIGKILL [`crate::arbiter::decide::ABORT_GRACE_MS`] after ABRT regardless.
///
/// The Python body fills this slot without Rust's flag: after the worker's signals are
/// installed it registers a Python-level `signal.signal(SIGABRT, handler)` (which calls
/// `worker_abort(worker)` and `sys.exit(1)`, as gunicorn's `handle_abort`), then
/// `faulthandler.register(SIGABRT, file=<error log>, all_threads=True, chain=True)`, so
/// every thread's Python stack is written from the C handler at once, even when the
/// application is stuck in C code, before Python's handler runs. The master has already
/// logged the request being served (from the heartbeat slot).
#[derive(Debug)]
pub struct WorkerSignals {
    term: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
    abrt: Arc<AtomicBool>,
    abrt_ids: Vec<signal_hook::SigId>,
    wake: UnixStream,
    wake_tx: UnixStream,
}

impl WorkerSignals {
    /// Installs the worker's handlers (in the child, after the master's were removed).
    pub fn install() -> std::io::Result<WorkerSignals> {
        use signal_hook::{flag, low_level::pipe};
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut s = WorkerSignals {
            term: Arc::new(AtomicBool::new(false)),
            quit: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
            abrt: Arc::new(AtomicBool::new(false)),
            abrt_ids: Vec::new(),
            wake: read,
            wake_tx: write.try_clone()?,
        };
        flag::register(SIGTERM, Arc::clone(&s.term))?;
        for sig in [SIGINT, SIGQUIT] {
            flag::register(sig, Arc::clone(&s.quit))?;
        }
        flag::register(SIGUSR1, Arc::clone(&s.usr1))?;
        for sig in [SIGTERM, SIGINT, SIGQUIT, SIGUSR1] {
            pipe::register(sig, write.try_clone()?)?;
        }
        s.abrt_ids.push(flag::register_conditional_shutdown(
            SIGABRT,
            1,
            Arc::new(AtomicBool::new(true)),
        )?);
        for sig in [SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU] {
            flag::register_conditional_default(sig, Arc::new(AtomicBool::new(true)))?;
        }
        Ok(s)
    }

    /// Takes over ABRT: instead of exiting 1 from the handler, set [`Self::aborted`] and
    /// wake the poll (see the type's docs).
    pub fn handle_abort_in_body(&mut self) -> std::io::Result<()> {
        use signal_hook::{flag, low_level::pipe};
        for id in self.abrt_ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        self.abrt_ids.push(flag::register(SIGABRT, Arc::clone(&self.abrt))?);
        self.abrt_ids.push(pipe::register(SIGABRT, self.wake_tx.try_clone()?)?);
        Ok(())
    }

    /// ABRT arrived (only after [`Self::handle_abort_in_body`]).
    pub fn aborted(&self) -> bool {
        self.abrt.load(Ordering::Relaxed)
    }

    /// Neither TERM nor INT/QUIT arrived.
    pub fn alive(&self) -> bool {
        !self.term.load(Ordering::Relaxed) && !self.quit.load(Ordering::Relaxed)
    }

    /// INT or QUIT arrived: stop now, even mid-request.
    pub fn quick(&self) -> bool {
        self.quit.load(Ordering::Relaxed)
    }

    /// The INT/QUIT flag itself, set from the signal handler: code that blocks with the
    /// interpreter released (the sync worker's socket writes) checks it between calls.
    pub fn quick_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.quit)
    }

    /// Takes the USR1 flag.
    pub fn take_usr1(&self) -> bool {
        self.usr1.swap(false, Ordering::Relaxed)
    }

    /// The fd that becomes readable when a signal arrives (poll it with the listeners).
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Empties the wake-up pipe.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Sleeps up to `d`, returning early (false) when INT/QUIT arrives.
    pub fn sleep_unless_quick(&self, d: Duration) -> bool {
        let end = std::time::Instant::now() + d;
        loop {
            if self.quick() {
                return false;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            let mut fds = [nix::poll::PollFd::new(self.wake_fd(), nix::poll::PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis().clamp(1, 1000)).unwrap_or(1000);
            let _ = nix::poll::poll(&mut fds, ms);
            self.drain();
        }
    }
}

/// The `Date` header value for now, formatted once per second per thread.
pub fn date_now() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(i64, [u8; 29])> = const { Cell::new((i64::MIN, [0; 29])) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    CACHE.with(|c| {
        let (secs, date) = c.get();
        if secs == now {
            return date;
        }
        let date = ferrocorn_core::date::http_date(now);
        c.set((now, date));
        date
    })
}
