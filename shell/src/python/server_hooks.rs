//! The config file's server hooks (`on_starting`, `when_ready`, `pre_fork`, `post_fork`,
//! `post_worker_init`, `worker_int`, `worker_abort`, `pre_exec`, `child_exit`,
//! `worker_exit`, `nworkers_changed`, `on_reload`, `on_exit`) called by the arbiter,
//! with `server` ([`ServerObj`]: `pid`, `cfg`, `log`, `num_workers`, `proc_name`,
//! `master_name`, `LISTENERS`, `WORKERS`, `reexec_pid`, `master_pid`) and `worker`
//! ([`super::hooks::WorkerObj`]) objects; the HUP reload that runs the configuration
//! again in this interpreter; and the command USR2 executes (this interpreter again).
//! After a HUP reload the hooks and `cfg` of the new config file apply. In a worker
//! process, every hook and the worker body share one `worker` object, so attributes set
//! in `post_fork` are there later. Process titles go through `setproctitle` when it is
//! importable ([`PythonTitle`]).
//!
//! A hook left at its default is not called. An exception in a hook is logged as
//! `Exception in <name> hook` with its traceback and the server goes on.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::{format_traceback, handle};
use super::hooks::{HookLog, WorkerObj, this_worker};
use crate::arbiter::hooks::{ReexecCommand, Reload};
use crate::lifecycle::{ServerHooks, ServerInfo, WorkerInfo};
use crate::log::Logger;
use crate::settings::{Env, ServerConfig, Settings, Value};

/// gunicorn's server hooks, by name.
const NAMES: [&str; 13] = [
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
];

/// The `server` argument of hooks (gunicorn's `Arbiter`), a snapshot taken for the call.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.arbiter", name = "Arbiter", frozen)]
pub struct ServerObj {
    /// `server.pid`.
    #[pyo3(get)]
    pub pid: i32,
    /// `server.cfg`.
    #[pyo3(get)]
    pub cfg: Py<PyAny>,
    /// `server.log`.
    #[pyo3(get)]
    pub log: Py<HookLog>,
    /// `server.num_workers`.
    #[pyo3(get)]
    pub num_workers: usize,
    /// `server.proc_name`.
    #[pyo3(get)]
    pub proc_name: String,
    /// `server.master_name` (`Master`, or `Master.2` while re-executed).
    #[pyo3(get)]
    pub master_name: &'static str,
    /// `server.LISTENERS`: the listeners' names.
    #[pyo3(get, name = "LISTENERS")]
    pub listeners: Py<PyList>,
    /// `server.WORKERS`: `{pid: worker}`.
    #[pyo3(get, name = "WORKERS")]
    pub workers: Py<PyDict>,
    /// `server.reexec_pid` (0 when none, as gunicorn).
    #[pyo3(get)]
    pub reexec_pid: i32,
    /// `server.master_pid` (0 when none).
    #[pyo3(get)]
    pub master_pid: i32,
}

/// The hooks of one configuration generation (a HUP reload runs the config file again:
/// its new hooks and its new `cfg` apply from then on).
#[derive(Debug)]
struct Generation {
    hooks: Vec<(&'static str, Py<PyAny>)>,
    cfg: Py<PyAny>,
    timeout: u64,
}

impl Generation {
    fn hooks_of(py: Python<'_>, settings: &Settings) -> Vec<(&'static str, Py<PyAny>)> {
        NAMES
            .iter()
            .filter_map(|&name| match settings.get(name) {
                Value::Object(o) => handle(o).map(|h| (name, h.clone_ref(py))),
                _ => None,
            })
            .collect()
    }

    fn new(py: Python<'_>, settings: &Settings, config: &ServerConfig) -> PyResult<Generation> {
        Ok(Generation {
            hooks: Generation::hooks_of(py, settings),
            cfg: super::config_object::cfg_object(py, settings)?,
            timeout: config.worker.timeout.as_secs(),
        })
    }

    /// Whether `hooks` are this generation's (the same Python objects).
    fn same(&self, hooks: &[(&'static str, Py<PyAny>)]) -> bool {
        self.hooks.len() == hooks.len()
            && self.hooks.iter().zip(hooks).all(|(a, b)| a.0 == b.0 && a.1.as_ptr() == b.1.as_ptr())
    }
}

/// The hooks of the configuration, called from the arbiter.
#[derive(Debug)]
pub struct PythonHooks {
    generation: std::sync::Mutex<Arc<Generation>>,
    log: Logger,
}

impl PythonHooks {
    /// The hooks `settings` set (defaults are skipped); `log` is the error log.
    pub fn new(
        py: Python<'_>,
        settings: &Settings,
        config: &ServerConfig,
        log: Logger,
    ) -> PyResult<PythonHooks> {
        Ok(PythonHooks {
            generation: std::sync::Mutex::new(Arc::new(Generation::new(py, settings, config)?)),
            log,
        })
    }

    /// Whether any server hook is set.
    pub fn any(&self) -> bool {
        !self.current().hooks.is_empty()
    }

    fn current(&self) -> Arc<Generation> {
        self.generation
            .lock()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// Follows the master's settings: after a HUP reload, the new config file's hooks and
    /// `cfg` (the worker-side hooks follow what `post_fork` saw).
    fn refresh(&self, py: Python<'_>, settings: &Settings, config: &ServerConfig) {
        let hooks = Generation::hooks_of(py, settings);
        if self.current().same(&hooks) {
            return;
        }
        match Generation::new(py, settings, config) {
            Ok(g) => {
                if let Ok(mut cur) = self.generation.lock() {
                    *cur = Arc::new(g);
                }
            }
            Err(e) => self.log.error(format_args!(
                "Keeping the previous hooks: {}",
                format_traceback(py, &e).trim_end()
            )),
        }
    }

    fn server<'py>(&self, py: Python<'py>, s: &ServerInfo<'_>) -> PyResult<Bound<'py, ServerObj>> {
        let generation = self.current();
        let workers = PyDict::new(py);
        for w in s.workers {
            workers.set_item(w.pid, self.worker(py, w)?)?;
        }
        Bound::new(
            py,
            ServerObj {
                pid: s.pid,
                cfg: generation.cfg.clone_ref(py),
                log: Py::new(py, HookLog::new(s.log.clone()))?,
                num_workers: s.num_workers,
                proc_name: s.proc_name.to_owned(),
                master_name: s.master_name,
                listeners: PyList::new(py, s.listeners)?.unbind(),
                workers: workers.unbind(),
                reexec_pid: s.reexec_pid.unwrap_or(0),
                master_pid: s.master_pid.unwrap_or(0),
            },
        )
    }

    /// The `worker` object: in the worker's own process, the one it keeps for its life.
    fn worker<'py>(&self, py: Python<'py>, w: &WorkerInfo) -> PyResult<Bound<'py, WorkerObj>> {
        let generation = self.current();
        let pid = u32::try_from(w.pid).unwrap_or(0);
        let obj = this_worker(py, pid, || {
            WorkerObj::with_cfg(
                py,
                pid,
                w.ppid,
                w.age,
                generation.timeout,
                &self.log,
                generation.cfg.clone_ref(py),
            )
        })?;
        Ok(obj.into_bound(py))
    }

    /// Calls hook `name` with the arguments `args` builds; logs a failure.
    fn call(
        &self,
        name: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>,
    ) {
        let generation = self.current();
        let Some((_, hook)) = generation.hooks.iter().find(|(n, _)| *n == name) else { return };
        Python::attach(|py| {
            let called =
                args(py).and_then(|a| hook.bind(py).call1(pyo3::types::PyTuple::new(py, a)?));
            if let Err(e) = called {
                self.log.error(format_args!(
                    "Exception in {name} hook\n{}",
                    format_traceback(py, &e).trim_end()
                ));
            }
        });
    }

    /// `worker.alive` is false once the worker stops (gunicorn's signal handlers set it
    /// before `worker_int` / `worker_abort`, and it is false in `worker_exit`).
    fn stopping(&self, w: &WorkerInfo) {
        Python::attach(|py| {
            if let Ok(obj) = self.worker(py, w) {
                obj.get().stop();
            }
        });
    }

    fn call_server(&self, name: &str, s: &ServerInfo<'_>) {
        Python::attach(|py| self.refresh(py, s.settings, s.config));
        self.call(name, |py| Ok(vec![self.server(py, s)?.into_any()]));
    }

    fn call_server_worker(&self, name: &str, s: &ServerInfo<'_>, w: &WorkerInfo) {
        Python::attach(|py| self.refresh(py, s.settings, s.config));
        self.call(name, |py| {
            Ok(vec![self.server(py, s)?.into_any(), self.worker(py, w)?.into_any()])
        });
    }

    fn call_worker(&self, name: &str, w: &WorkerInfo) {
        self.call(name, |py| Ok(vec![self.worker(py, w)?.into_any()]));
    }
}

impl ServerHooks for PythonHooks {
    fn on_starting(&self, server: &ServerInfo<'_>) {
        self.call_server("on_starting", server);
    }
    fn on_reload(&self, server: &ServerInfo<'_>) {
        self.call_server("on_reload", server);
    }
    fn when_ready(&self, server: &ServerInfo<'_>) {
        self.call_server("when_ready", server);
    }
    fn pre_fork(&self, server: &ServerInfo<'_>, worker: &WorkerInfo) {
        self.call_server_worker("pre_fork", server, worker);
    }
    fn post_fork(&self, server: &ServerInfo<'_>, worker: &WorkerInfo) {
        self.call_server_worker("post_fork", server, worker);
    }
    fn post_worker_init(&self, worker: &WorkerInfo) {
        self.call_worker("post_worker_init", worker);
        // gunicorn sets `worker.booted` right after `post_worker_init`.
        Python::attach(|py| {
            if let Ok(w) = self.worker(py, worker) {
                w.get().mark_booted();
            }
        });
    }
    fn worker_int(&self, worker: &WorkerInfo) {
        self.stopping(worker);
        self.call_worker("worker_int", worker);
    }
    fn worker_abort(&self, worker: &WorkerInfo) {
        self.stopping(worker);
        self.call_worker("worker_abort", worker);
    }
    fn pre_exec(&self, server: &ServerInfo<'_>) {
        self.call_server("pre_exec", server);
    }
    fn child_exit(&self, server: &ServerInfo<'_>, worker: &WorkerInfo) {
        self.call_server_worker("child_exit", server, worker);
    }
    fn worker_exit(&self, server: &ServerInfo<'_>, worker: &WorkerInfo) {
        self.stopping(worker);
        self.call_server_worker("worker_exit", server, worker);
    }
    fn nworkers_changed(&self, server: &ServerInfo<'_>, new: usize, old: Option<usize>) {
        Python::attach(|py| self.refresh(py, server.settings, server.config));
        self.call("nworkers_changed", |py| {
            Ok(vec![
                self.server(py, server)?.into_any(),
                new.into_pyobject(py)?.into_any(),
                old.into_pyobject(py)?.into_any(),
            ])
        });
    }
    fn on_exit(&self, server: &ServerInfo<'_>) {
        self.call_server("on_exit", server);
    }
}

/// The command line the server was started with (kept by [`super::main`] for HUP).
pub static ARGV: OnceLock<Vec<String>> = OnceLock::new();

/// The environment and working directory when the command started, before `--env` and
/// `--chdir` changed them (gunicorn's `env_orig` and `START_CTX['cwd']`), for USR2.
pub static START: OnceLock<(Vec<(OsString, OsString)>, PathBuf)> = OnceLock::new();

/// Records [`START`] (call first thing).
pub fn record_start() {
    let _ = START.get_or_init(|| {
        (
            std::env::vars_os().collect(),
            std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        )
    });
}

/// What USR2 executes: `sys.executable` with `sys.argv` (gunicorn's `START_CTX`), so the
/// new master runs in the same interpreter and virtualenv, with the starting environment
/// and directory.
fn reexec_command(py: Python<'_>) -> PyResult<ReexecCommand> {
    let sys = PyModule::import(py, "sys")?;
    let exe: String = sys.getattr("executable")?.extract()?;
    let argv: Vec<String> = sys.getattr("argv")?.extract()?;
    let (env, cwd) =
        START.get().cloned().unwrap_or_else(|| (std::env::vars_os().collect(), PathBuf::from("/")));
    Ok(ReexecCommand {
        program: PathBuf::from(&exe),
        argv: std::iter::once(exe).chain(argv).map(OsString::from).collect(),
        env,
        cwd,
    })
}

/// HUP: the command line, `GUNICORN_CMD_ARGS` and the config file resolved again, in this
/// interpreter, as at start.
#[derive(Clone, Copy, Debug, Default)]
pub struct PythonReload;

impl Reload for PythonReload {
    fn reload(&self) -> Result<(Settings, ServerConfig), String> {
        let argv = ARGV.get().cloned().unwrap_or_default();
        let env = Env::from_process();
        match crate::settings::resolve::load(&argv, &env, &super::config_file::PythonConfig) {
            Ok(crate::settings::resolve::Loaded::Settings(s)) => {
                // Settings ferrocorn cannot serve are refused like a broken config: the
                // running configuration keeps serving.
                let config = ServerConfig::new(&s)?;
                // The `ssl_context` hook runs again: its certificates may be new.
                let config = Python::attach(|py| super::ssl_context::with_context(py, &s, config))?;
                // As gunicorn's `Application.reload`: a reloaded config asking for
                // `spew` turns it on in the master (the new workers inherit it).
                if config.app.spew {
                    pyo3::Python::attach(|py| {
                        PyModule::import(py, "ferrocorn.debug")
                            .and_then(|m| m.call_method0("spew"))
                            .map(|_| ())
                            .map_err(|e| super::convert::exc_str(py, &e))
                    })?;
                }
                Ok((*s, config))
            }
            Ok(_) => Err("the command line no longer names a configuration to serve".to_owned()),
            Err(e) => Err(e.render().trim().to_owned()),
        }
    }
}

/// Process titles through the `setproctitle` package when it is importable (gunicorn's
/// `util._setproctitle`), so `ps -o args` shows `ferrocorn: master [name]`; else the
/// kernel's `comm` name ([`crate::process::CommTitle`]).
#[derive(Debug)]
pub struct PythonTitle {
    setproctitle: Option<Py<PyAny>>,
}

impl PythonTitle {
    /// Imports `setproctitle.setproctitle` if it is there.
    pub fn new(py: Python<'_>) -> PythonTitle {
        let f = PyModule::import(py, "setproctitle").and_then(|m| m.getattr("setproctitle")).ok();
        PythonTitle { setproctitle: f.map(Bound::unbind) }
    }
}

impl crate::process::ProcTitle for PythonTitle {
    fn set(&self, title: &str) {
        match &self.setproctitle {
            Some(f) => Python::attach(|py| {
                if f.bind(py).call1((title,)).is_err() {
                    crate::process::CommTitle.set(title);
                }
            }),
            None => crate::process::CommTitle.set(title),
        }
    }
}

/// The options the Python command runs the arbiter with.
pub fn serve_options(
    py: Python<'_>,
    settings: &Settings,
    config: &ServerConfig,
    log: Logger,
) -> PyResult<crate::arbiter::ServeOptions> {
    let hooks = PythonHooks::new(py, settings, config, log)?;
    Ok(crate::arbiter::ServeOptions {
        hooks: Arc::new(hooks),
        reload: Some(Arc::new(PythonReload)),
        reexec: Some(reexec_command(py)?),
        title: Arc::new(PythonTitle::new(py)),
        ..crate::arbiter::ServeOptions::default()
    })
}
