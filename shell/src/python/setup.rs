//! What a WSGI worker process sets up before it serves, whatever its worker class: the
//! application (the one preloaded in the master, or loaded with gunicorn's boot
//! failures), the environ configuration of the parser policy, and the objects a worker
//! builds once ([`Common`]: environ builder, access log, hooks, the process's `worker`
//! object, listener addresses).

use ferrocorn_core::ProtoConfig;
use ferrocorn_core::environ::{EnvironConfig, Local};
use pyo3::prelude::*;

use super::app::{AppErrorKind, load_app};
use super::convert::{exc_str, format_traceback, write_stream};
use super::hooks::{Hooks, WorkerObj, this_worker};
use super::pipeline::Pipeline;
use super::wsgi::{EnvironBuilder, ErrorStream, TemplateParts};
use crate::listen::ListenAddr;
use crate::log::access::AccessLog;
use crate::settings::Settings;
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR, WorkerContext};

/// The environ configuration of a parser policy (`SCRIPT_NAME` from the process
/// environment, as gunicorn).
pub fn environ_config(proto: &ProtoConfig) -> EnvironConfig {
    let mut cfg = EnvironConfig::default();
    cfg.script_name = std::env::var("SCRIPT_NAME").unwrap_or_default().into_bytes();
    cfg.headers = proto.headers.clone();
    cfg
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
        None => load_app(py, settings, &ctx.config.app).map(Bound::unbind),
    };
    let e = match loaded {
        Ok(app) => {
            if ctx.config.reload.enabled {
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
            if ctx.config.reload.enabled {
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
    /// `wsgi.multithread`: the gthread worker.
    pub multithread: bool,
}

impl Common {
    /// The request pipeline of this worker for `app` (`max_requests` left to the worker).
    pub fn pipeline(self, app: Py<PyAny>, ctx: &WorkerContext, sendfile: bool) -> Pipeline {
        Pipeline {
            app,
            builder: std::sync::Mutex::new(self.environ),
            hooks: self.hooks,
            obj: self.obj,
            access: self.access.map(std::sync::Mutex::new),
            log: ctx.log.clone(),
            pid: ctx.pid,
            sendfile,
            timeout: ctx.timeout,
            gthread: self.multithread,
            max_requests: 0,
        }
    }

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
        let c = &ctx.config;
        let pyerr = |e: PyErr| format_traceback(py, &e);
        let errors = Py::new(py, ErrorStream::open(&c.log.errorlog)).map_err(pyerr)?;
        let environ = EnvironBuilder::new(
            py,
            TemplateParts {
                errors: errors.into_bound(py).into_any(),
                multiprocess: c.worker.workers > 1,
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
        let syslog = ctx.log.syslog().filter(|_| !c.log.disable_redirect_access_to_syslog);
        let access = AccessLog::open_with(
            c.log.accesslog.as_deref(),
            &c.log.access_log_format,
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
        Ok(Common { environ, access, hooks: Hooks::from_settings(py, s), obj, locals, multithread })
    }
}
