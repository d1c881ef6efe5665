//! The WSGI worker body the arbiter forks ([`WsgiBody`]): [`super::sync`] or
//! [`super::gthread`] by each generation's worker class, and the fork protocol of the
//! interpreter (`PyOS_BeforeFork` / `PyOS_AfterFork_*`).

use pyo3::prelude::*;

use super::convert::write_stream;
use super::gthread::WsgiGthreadBody;
use super::setup::setup_failed;
use super::sync::WsgiSyncBody;
use crate::settings::{Env, ServerConfig, WorkerKind};
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
    /// The body for a configuration ferrocorn can serve (its [`ServerConfig`] was built),
    /// refused when its TLS files do not make a configuration (checked after `chdir`, as
    /// gunicorn checks them when it creates its sockets); `preloaded` is the application
    /// the master loaded.
    pub fn new(
        config: &ServerConfig,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<WsgiBody, String> {
        crate::tls_context::acceptor(config)?;
        Ok(WsgiBody { preloaded, env: env.clone() })
    }
}

impl WorkerBody for WsgiBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        Python::attach(|py| {
            let preloaded = self.preloaded.as_ref().map(|app| app.clone_ref(py));
            // The master checked these settings before it took them (at start or HUP).
            let code = match ctx.config.worker.kind {
                WorkerKind::Sync => {
                    match WsgiSyncBody::new(&ctx.settings, &ctx.config, preloaded, &self.env) {
                        Ok(b) => b.run(py, ctx),
                        Err(text) => setup_failed(py, &text),
                    }
                }
                WorkerKind::Gthread => {
                    match WsgiGthreadBody::new(&ctx.settings, &ctx.config, preloaded, &self.env) {
                        Ok(b) => b.run(py, &ctx),
                        Err(text) => setup_failed(py, &text),
                    }
                }
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
