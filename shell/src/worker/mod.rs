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

pub mod hello;

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use signal_hook::consts::signal::{
    SIGABRT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
};

pub use crate::arbiter::decide::{APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::heartbeat::Slot;
use crate::listen::Listener;
use crate::log::Logger;

/// The code a worker body runs in the forked child.
pub trait WorkerBody {
    /// Serves until told to stop; returns the exit status of the worker process.
    fn run(&self, ctx: WorkerContext) -> u8;
}

/// Everything a worker body needs, handed over after fork.
#[derive(Debug)]
pub struct WorkerContext {
    /// This worker's pid.
    pub pid: u32,
    /// The master's pid (the worker stops when its parent changes).
    pub master_pid: i32,
    /// Spawn order, from 1 (gunicorn's `worker.age`).
    pub age: u64,
    /// The listening sockets, inherited from the master (non-blocking).
    pub listeners: Vec<Listener>,
    /// This worker's heartbeat slot: beat with [`Slot::notify`], record the request
    /// being served with [`Slot::begin_request`] / [`Slot::end_request`].
    pub heartbeat: &'static Slot,
    /// TERM / INT / QUIT / USR1 as flags, and a wake-up fd for `poll`.
    pub signals: WorkerSignals,
    /// `timeout`: the master kills a worker whose last beat is older.
    pub timeout: Duration,
    /// `graceful_timeout`: how long in-flight work may take after TERM.
    pub graceful_timeout: Duration,
    /// The error log.
    pub log: Logger,
}

impl WorkerContext {
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
/// TERM = stop after the current request, INT and QUIT = stop now, ABRT = exit 1 at once
/// (the master's timeout; the Python bridge will dump stacks first), USR1 = reopen logs
/// (flag only for now), HUP/USR2/TTIN/TTOU = default action (terminate), WINCH ignored.
#[derive(Debug)]
pub struct WorkerSignals {
    term: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    usr1: Arc<AtomicBool>,
    wake: UnixStream,
}

impl WorkerSignals {
    /// Installs the worker's handlers (in the child, after the master's were removed).
    pub fn install() -> std::io::Result<WorkerSignals> {
        use signal_hook::{flag, low_level::pipe};
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let s = WorkerSignals {
            term: Arc::new(AtomicBool::new(false)),
            quit: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
            wake: read,
        };
        flag::register(SIGTERM, Arc::clone(&s.term))?;
        for sig in [SIGINT, SIGQUIT] {
            flag::register(sig, Arc::clone(&s.quit))?;
        }
        flag::register(SIGUSR1, Arc::clone(&s.usr1))?;
        for sig in [SIGTERM, SIGINT, SIGQUIT, SIGUSR1] {
            pipe::register(sig, write.try_clone()?)?;
        }
        flag::register_conditional_shutdown(SIGABRT, 1, Arc::new(AtomicBool::new(true)))?;
        for sig in [SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU] {
            flag::register_conditional_default(sig, Arc::new(AtomicBool::new(true)))?;
        }
        Ok(s)
    }

    /// Neither TERM nor INT/QUIT arrived.
    pub fn alive(&self) -> bool {
        !self.term.load(Ordering::Relaxed) && !self.quit.load(Ordering::Relaxed)
    }

    /// INT or QUIT arrived: stop now, even mid-request.
    pub fn quick(&self) -> bool {
        self.quit.load(Ordering::Relaxed)
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
