//! What the master and its workers share: the exit statuses a worker reports to the
//! master, and gunicorn's server hooks ([`ServerHooks`]), some called in the master, some
//! in the workers. Below both the arbiter and the workers.
//!
//! ## Server hooks, and when the arbiter calls them (gunicorn 27's points)
//!
//! | hook | process | when |
//! |---|---|---|
//! | `nworkers_changed(server, new, old)` | master | at start (`old` = `None`, before `on_starting`), on HUP, TTIN, TTOU, WINCH |
//! | `on_starting(server)` | master | after the pidfile, before the listeners |
//! | `when_ready(server)` | master | listeners bound, `READY=1` sent, before the first fork |
//! | `pre_fork(server, worker)` | master | before each `fork` (`worker.pid` is 0) |
//! | `post_fork(server, worker)` | worker | right after `fork`, before the user/group switch and the body |
//! | `post_worker_init(worker)` | worker | the body loaded the application ([`crate::worker::WorkerContext::booted`]) |
//! | `worker_int(worker)` | worker | INT or QUIT arrived (the body calls it) |
//! | `worker_abort(worker)` | worker | ABRT arrived: the master timed it out (the body calls it) |
//! | `worker_exit(server, worker)` | worker | the body returned, after `Worker exiting (pid: N)` |
//! | `child_exit(server, worker)` | master | a worker was reaped (not when its exit code halts the master) |
//! | `on_reload(server)` | master | HUP: the new configuration loaded, listeners changed if needed, before the new workers |
//! | `pre_exec(server)` | new master | USR2: in the forked child, just before `exec` |
//! | `on_exit(server)` | master | after `Shutting down`, before the process exits |
//!
//! Every hook is a no-op by default. The Python bridge implements [`ServerHooks`] by
//! calling the config file's callables with `server` and `worker` objects built from
//! [`ServerInfo`] and [`WorkerInfo`].

use crate::log::Logger;
use crate::settings::{ServerConfig, Settings};

/// gunicorn's exit code of a worker that failed to boot.
pub const WORKER_BOOT_ERROR: u8 = 3;
/// gunicorn's exit code of a worker whose application failed to load.
pub const APP_LOAD_ERROR: u8 = 4;

/// The master as hooks see it (gunicorn's `server`, the `Arbiter`).
#[derive(Clone, Copy, Debug)]
pub struct ServerInfo<'a> {
    /// The master's pid.
    pub pid: i32,
    /// `Master`, or `Master.2` for a master re-executed by USR2 and not yet promoted.
    pub master_name: &'static str,
    /// The process name (`proc_name`, or `default_proc_name`; `.2` appended while
    /// re-executed).
    pub proc_name: &'a str,
    /// How many workers the master keeps (`server.num_workers`).
    pub num_workers: usize,
    /// The running workers (`server.WORKERS`), oldest first.
    pub workers: &'a [WorkerInfo],
    /// The listeners' names (`http://127.0.0.1:8000`, `unix:/run/app.sock`).
    pub listeners: &'a [String],
    /// The settings in force (`server.cfg`).
    pub settings: &'a Settings,
    /// Their configuration.
    pub config: &'a ServerConfig,
    /// The error log (`server.log`).
    pub log: &'a Logger,
    /// The pid of the master started by USR2, while it runs (`server.reexec_pid`).
    pub reexec_pid: Option<i32>,
    /// The master that re-executed this one, until it is promoted (`server.master_pid`).
    pub master_pid: Option<i32>,
}

/// A worker as hooks see it (gunicorn's `worker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its pid (0 in `pre_fork`: not forked yet).
    pub pid: i32,
    /// The master's pid (`worker.ppid`).
    pub ppid: i32,
    /// Spawn order from 1 (`worker.age`).
    pub age: u64,
    /// Its heartbeat slot.
    pub slot: usize,
}

/// gunicorn's server hooks (all but the per-request ones, which belong to the worker
/// body). Every method does nothing by default.
pub trait ServerHooks: Send + Sync {
    /// `on_starting(server)`.
    fn on_starting(&self, _server: &ServerInfo<'_>) {}
    /// `on_reload(server)`.
    fn on_reload(&self, _server: &ServerInfo<'_>) {}
    /// `when_ready(server)`.
    fn when_ready(&self, _server: &ServerInfo<'_>) {}
    /// `pre_fork(server, worker)`.
    fn pre_fork(&self, _server: &ServerInfo<'_>, _worker: &WorkerInfo) {}
    /// `post_fork(server, worker)`, in the worker.
    fn post_fork(&self, _server: &ServerInfo<'_>, _worker: &WorkerInfo) {}
    /// `post_worker_init(worker)`, in the worker.
    fn post_worker_init(&self, _worker: &WorkerInfo) {}
    /// `worker_int(worker)`, in the worker.
    fn worker_int(&self, _worker: &WorkerInfo) {}
    /// `worker_abort(worker)`, in the worker.
    fn worker_abort(&self, _worker: &WorkerInfo) {}
    /// `pre_exec(server)`, in the forked new master.
    fn pre_exec(&self, _server: &ServerInfo<'_>) {}
    /// `child_exit(server, worker)`, in the master.
    fn child_exit(&self, _server: &ServerInfo<'_>, _worker: &WorkerInfo) {}
    /// `worker_exit(server, worker)`, in the worker.
    fn worker_exit(&self, _server: &ServerInfo<'_>, _worker: &WorkerInfo) {}
    /// `nworkers_changed(server, new, old)`; `old` is `None` the first time.
    fn nworkers_changed(&self, _server: &ServerInfo<'_>, _new: usize, _old: Option<usize>) {}
    /// `on_exit(server)`.
    fn on_exit(&self, _server: &ServerInfo<'_>) {}
}

/// The hooks that do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl ServerHooks for NoHooks {}
