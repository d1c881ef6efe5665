//! The WSGI worker body the arbiter forks ([`WsgiBody`]): [`super::sync`] or
//! [`super::gthread`] by each generation's worker class, and the fork protocol of the
//! interpreter (`PyOS_BeforeFork` / `PyOS_AfterFork_*`).

use pyo3::prelude::*;

use super::convert::write_stream;
use super::gthread::WsgiGthreadBody;
use super::setup::setup_failed;
use super::sync::WsgiSyncBody;
use crate::settings::proto::proto_config;
use crate::settings::{Env, Settings, WorkerKind};
use crate::worker::{WorkerBody, WorkerContext};

/// The WSGI worker body: [`WsgiSyncBody`] or [`WsgiGthreadBody`] by the worker class of each
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
    /// it does not have, a parser policy that does not build, TLS files that do not
    /// make a configuration: checked after `chdir`, as gunicorn checks them when it
    /// creates its sockets).
    pub fn new(
        settings: &Settings,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<WsgiBody, String> {
        settings.check_servable()?;
        proto_config(settings)?;
        crate::tls::acceptor(settings)?;
        Ok(WsgiBody { preloaded, env: env.clone() })
    }
}

impl WorkerBody for WsgiBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        Python::attach(|py| {
            let preloaded = self.preloaded.as_ref().map(|app| app.clone_ref(py));
            // The master checked these settings before it took them (at start or HUP).
            let code = match ctx.settings.worker_kind() {
                Ok(WorkerKind::Sync) => {
                    match WsgiSyncBody::new(&ctx.settings, preloaded, &self.env) {
                        Ok(b) => b.run(py, ctx),
                        Err(text) => setup_failed(py, &text),
                    }
                }
                Ok(WorkerKind::Gthread) => {
                    match WsgiGthreadBody::new(&ctx.settings, preloaded, &self.env) {
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
