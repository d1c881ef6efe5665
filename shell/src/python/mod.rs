//! The Python bridge: the only part of ferrocorn that touches CPython.
//!
//! ferrocorn ships as a Python package whose extension module, `ferrocorn._ferrocorn`, is
//! this crate built with the `python` feature. The `ferrocorn` console script (or
//! `python -m ferrocorn`) runs in the user's interpreter and calls [`main`] with the
//! command line; the interpreter is already initialised, so virtualenvs, `sys.path` and
//! `sys.executable` are exactly what the user's Python says.
//!
//! - [`config`]: the config file executed as module `__config__` (or `python:MODULE`
//!   imported), its setting-named globals handed to the settings layer, and the importer
//!   for `module.func` hook strings.
//! - [`app`]: gunicorn's `import_app` and PasteDeploy loading, and the environment set-up
//!   before the import.
//! - [`convert`]: Python objects as setting [`Value`](crate::settings::Value)s.
//! - [`serve`]: serving: the master set up as gunicorn's arbiter (server hooks and HUP
//!   reload from [`server_hooks`]), with [`worker`]'s body around [`sync`], the WSGI
//!   sync worker, or [`gthread`], the WSGI gthread worker, over [`wsgi`] (environ,
//!   `wsgi.input`, `start_response`, file wrapper), [`request`] (what both workers do
//!   alike per request) and [`hooks`] (`pre_request` / `post_request` and their `worker`,
//!   `req`, `resp`).
//! - [`cfg`]: the `cfg` object hooks see (`server.cfg`, `worker.cfg`), gunicorn's `Config`.
//! - [`pylog`]: Python logging (`logconfig*`, `logger_class`): gunicorn's logger object,
//!   which the Rust loggers forward every record to when one of those settings is set.
//!
//! Where ferrocorn deliberately differs from gunicorn 27 here:
//! - `--check-config` / `--print-config` apply `--pythonpath` and `--env` before importing
//!   the application (gunicorn applies them only when serving, so its check can fail on
//!   an app that serves fine).
//! - The exception class is `ferrocorn.errors.AppImportError` (gunicorn:
//!   `gunicorn.errors.AppImportError`); the messages are gunicorn's.
//! - A hook that is a callable instance (no `__qualname__`) is shown by its class name
//!   in `--print-config`, where gunicorn crashes with an `AttributeError`.
//! - Errors raised by the loader itself carry no traceback frames of ferrocorn's (it is
//!   Rust); the exception lines and chained causes are Python's own.

pub mod app;
pub mod cfg;
pub mod config;
pub mod convert;
pub mod gthread;
pub mod hooks;
pub mod pylog;
pub mod request;
pub mod serve;
pub mod server_hooks;
pub mod sync;
pub mod worker;
pub mod wsgi;

use std::sync::Mutex;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::run;
use crate::settings::Env;

/// A `BaseException` that is not an `Exception` (`SystemExit`, `KeyboardInterrupt`)
/// raised by the config file or the application import. gunicorn only catches
/// `Exception`, so these end the process the way Python ends it (`sys.exit(3)` in a
/// config file exits 3); the settings layer only carries text, so the bridge keeps the
/// exception here and [`main`] raises it again.
static ESCAPED: Mutex<Option<PyErr>> = Mutex::new(None);

/// Whether `err` must escape (see [`ESCAPED`]); if so it is kept for [`main`].
fn escapes(py: Python<'_>, err: &PyErr) -> bool {
    if err.is_instance_of::<PyException>(py) {
        return false;
    }
    if let Ok(mut slot) = ESCAPED.lock() {
        slot.get_or_insert_with(|| err.clone_ref(py));
    }
    true
}

/// Runs the `ferrocorn` command in this interpreter: `argv` without the program name.
/// Output goes to Python's `sys.stdout` / `sys.stderr` (flushed, so it keeps its place
/// after whatever the config file or the application printed); returns the exit code.
pub fn main(py: Python<'_>, argv: &[String]) -> PyResult<u8> {
    server_hooks::record_start();
    let _ = server_hooks::ARGV.set(argv.to_vec());
    let env = Env::from_process();
    let out = run::run_full(argv, &env, &config::PythonConfig, Some(&app::PythonApp));
    if let Some(err) = ESCAPED.lock().ok().and_then(|mut e| e.take()) {
        return Err(err);
    }
    convert::write_stream(py, "stdout", &out.stdout)?;
    convert::write_stream(py, "stderr", &out.stderr)?;
    Ok(out.code)
}

/// The extension module `ferrocorn._ferrocorn`.
#[pymodule]
#[pyo3(name = "_ferrocorn")]
pub mod extension {
    use pyo3::prelude::*;

    /// Adds `__version__` (the crate's version, which is also the package's).
    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }

    #[pymodule_export]
    use super::cfg::_cfg_for_argv;

    /// Runs the `ferrocorn` command with these arguments (without the program name) and
    /// returns its exit code.
    #[pyfunction]
    fn main(py: Python<'_>, argv: Vec<String>) -> PyResult<u8> {
        super::main(py, &argv)
    }
}
