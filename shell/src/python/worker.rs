//! The WSGI worker body the arbiter forks ([`WsgiBody`]: [`super::sync`] or
//! [`super::gthread`] by worker class), and what both workers do alike per process: the
//! parser policy of the settings, the fork protocol of the interpreter
//! (`PyOS_BeforeFork` / `PyOS_AfterFork_*`), the application loaded (or preloaded) with
//! gunicorn's boot failures, and the objects a worker sets up once ([`Common`]: environ
//! builder, access log, hooks, the process's `worker` object, listener addresses).

use ferrocorn_core::ProtoConfig;
use ferrocorn_core::environ::{EnvironConfig, Local};
use pyo3::prelude::*;

use super::app::{AppErrorKind, load_app};
use super::convert::{exc_str, format_traceback, write_stream};
use super::gthread::GthreadBody;
use super::hooks::{Hooks, WorkerObj, this_worker};
use super::sync::SyncBody;
use super::wsgi::{EnvironBuilder, ErrorStream, TemplateParts};
use crate::listen::ListenAddr;
use crate::log::access::AccessLog;
pub use crate::settings::proto::proto_config;
use crate::settings::{Env, Settings, WorkerKind};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR, WorkerBody, WorkerContext};

/// The environ configuration of a parser policy (`SCRIPT_NAME` from the process
/// environment, as gunicorn).
pub fn environ_config(proto: &ProtoConfig) -> EnvironConfig {
    let mut cfg = EnvironConfig::default();
    cfg.script_name = std::env::var("SCRIPT_NAME").unwrap_or_default().into_bytes();
    cfg.headers = proto.headers.clone();
    cfg
}

/// The WSGI worker body: [`SyncBody`] or [`GthreadBody`] by the worker class of each
/// worker's generation, so a HUP that changes `worker_class` (or `threads`) gives the new
/// workers the new class, as in gunicorn. Built in the master (which may have preloaded
/// the application) and run in every forked worker.
#[derive(Debug)]
pub struct WsgiBody {
    preloaded: Option<Py<PyAny>>,
    env: Env,
}

impl WsgiBody {
    /// The body for `settings`, refused when ferrocorn cannot serve them (a worker class
    /// it does not have, a parser policy that does not build).
    pub fn new(
        settings: &Settings,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<WsgiBody, String> {
        settings.check_servable()?;
        proto_config(settings)?;
        Ok(WsgiBody { preloaded, env: env.clone() })
    }
}

impl WorkerBody for WsgiBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        Python::attach(|py| {
            let preloaded = self.preloaded.as_ref().map(|app| app.clone_ref(py));
            // The master checked these settings before it took them (at start or HUP).
            let code = match ctx.settings.worker_kind() {
                Ok(WorkerKind::Sync) => match SyncBody::new(&ctx.settings, preloaded, &self.env) {
                    Ok(b) => b.run(py, ctx),
                    Err(text) => setup_failed(py, &text),
                },
                Ok(WorkerKind::Gthread) => {
                    match GthreadBody::new(&ctx.settings, preloaded, &self.env) {
                        Ok(b) => b.run(py, &ctx),
                        Err(text) => setup_failed(py, &text),
                    }
                }
                Err(text) => setup_failed(py, &text),
            };
            // What the application printed must not be lost with the process.
            let _ = write_stream(py, "stdout", "");
            let _ = write_stream(py, "stderr", "");
            code
        })
    }

    #[allow(unsafe_code)]
    fn before_fork(&self) {
        // SAFETY: called by the master's main thread, which holds the GIL (the master runs
        // inside the `ferrocorn` console script's call into the extension), just before
        // fork(2), as the C API requires.
        unsafe { pyo3::ffi::PyOS_BeforeFork() }
    }

    #[allow(unsafe_code)]
    fn after_fork_parent(&self) {
        // SAFETY: the same thread, still holding the GIL, right after fork(2) in the parent
        // (also when fork failed), pairing the `PyOS_BeforeFork` above.
        unsafe { pyo3::ffi::PyOS_AfterFork_Parent() }
    }

    #[allow(unsafe_code)]
    fn after_fork_child(&self) {
        // SAFETY: first call in the child after fork(2), by the only thread of the child,
        // which holds the GIL it held in the parent; it resets the interpreter's locks and
        // thread states as `os.fork()` does.
        unsafe { pyo3::ffi::PyOS_AfterFork_Child() }
    }
}

/// The application of a worker: the one preloaded in the master, else loaded from
/// `settings`. A failure is reported as gunicorn does and gives the exit status: an
/// `AppImportError` prints its message and exits 4; anything else logs `Exception in
/// worker process` with the traceback, prints the message and exits 3.
pub fn worker_app(
    py: Python<'_>,
    preloaded: Option<&Py<PyAny>>,
    settings: &Settings,
    ctx: &WorkerContext,
) -> Result<Py<PyAny>, u8> {
    let loaded = match preloaded {
        Some(app) => Ok(app.clone_ref(py)),
        None => load_app(py, settings).map(Bound::unbind),
    };
    let e = match loaded {
        Ok(app) => {
            if settings.bool("reload") {
                publish_module_files(py, ctx);
            }
            return Ok(app);
        }
        Err(e) => e,
    };
    let msg = exc_str(py, &e.error);
    Err(match e.kind {
        AppErrorKind::AppImport => {
            // With `reload`, the code being edited failed to import: its traceback, once
            // per edit (the old workers keep serving until the files change again).
            if settings.bool("reload") {
                ctx.log.exception(format_args!(
                    "Exception in worker process\n{}",
                    e.traceback.trim_end()
                ));
            }
            let _ = write_stream(py, "stderr", &format!("{msg}\n"));
            APP_LOAD_ERROR
        }
        AppErrorKind::Other => {
            ctx.log
                .exception(format_args!("Exception in worker process\n{}", e.traceback.trim_end()));
            let _ = write_stream(py, "stderr", &format!("{msg}\n"));
            WORKER_BOOT_ERROR
        }
    })
}

/// `reload`: publishes the source files of the modules this worker imported (and, from
/// a daemon thread, what it imports later) where the master's watcher reads them.
fn publish_module_files(py: Python<'_>, ctx: &WorkerContext) {
    let path = crate::reload::module_list(ctx.master_pid, ctx.pid);
    let published = PyModule::import(py, "ferrocorn.reloader")
        .and_then(|m| m.call_method1("publish", (path.to_string_lossy().into_owned(),)));
    if let Err(e) = published {
        ctx.log.warning(format_args!(
            "reload: cannot publish this worker's module files: {}",
            exc_str(py, &e)
        ));
    }
}

/// Reports a worker that could not set itself up (`text` on stderr); the exit status.
pub fn setup_failed(py: Python<'_>, text: &str) -> u8 {
    let _ = write_stream(py, "stderr", &format!("{text}\n"));
    WORKER_BOOT_ERROR
}

/// What a WSGI worker sets up once, before serving.
#[derive(Debug)]
pub struct Common {
    /// Environ dicts from the template.
    pub environ: EnvironBuilder,
    /// The access log, when `accesslog` is set.
    pub access: Option<AccessLog>,
    /// `pre_request` and `post_request`.
    pub hooks: Hooks,
    /// The `worker` object of this process: the one the server hooks got (`post_fork`),
    /// so attributes they set reach `pre_request` and `post_request`.
    pub obj: Py<WorkerObj>,
    /// The address of each listener, by index.
    pub locals: Vec<Local>,
}

impl Common {
    /// The pieces for worker `ctx` under `settings`; `multithread` is the environ's
    /// `wsgi.multithread`. An error is the text to print.
    pub fn new(
        py: Python<'_>,
        ctx: &WorkerContext,
        settings: &Settings,
        server_software: &str,
        multithread: bool,
    ) -> Result<Common, String> {
        let s = settings;
        let pyerr = |e: PyErr| format_traceback(py, &e);
        let errors =
            Py::new(py, ErrorStream::open(s.str("errorlog").unwrap_or("-"))).map_err(pyerr)?;
        let environ = EnvironBuilder::new(
            py,
            TemplateParts {
                errors: errors.into_bound(py).into_any(),
                multiprocess: s.int("workers") > 1,
                server_software,
            },
        )
        .map_err(pyerr)?;
        if multithread {
            environ
                .set_constant(
                    py,
                    "wsgi.multithread",
                    pyo3::types::PyBool::new(py, true).to_owned().into_any(),
                )
                .map_err(pyerr)?;
        }
        // gunicorn sends the access log to syslog too, unless told not to.
        let syslog = ctx.log.syslog().filter(|_| !s.bool("disable_redirect_access_to_syslog"));
        let access = AccessLog::open_with(
            s.str("accesslog"),
            s.str("access_log_format").unwrap_or(ferrocorn_core::access_log::DEFAULT_FORMAT),
            syslog.cloned(),
        )?;
        let obj = this_worker(py, ctx.pid, || {
            WorkerObj::new(py, ctx.pid, ctx.master_pid, ctx.age, ctx.timeout.as_secs(), &ctx.log, s)
        })
        .map_err(pyerr)?;
        let locals = ctx
            .listeners
            .iter()
            .map(|l| match l.addr() {
                ListenAddr::Tcp(a) => Local::Tcp(*a),
                ListenAddr::Unix(p) => Local::Unix(p.as_os_str().as_encoded_bytes().to_vec()),
            })
            .collect();
        Ok(Common { environ, access, hooks: Hooks::from_settings(py, s), obj, locals })
    }
}
