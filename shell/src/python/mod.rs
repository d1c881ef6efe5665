//! The Python bridge: the only part of ferrocorn that touches CPython.
//!
//! ferrocorn ships as a Python package whose extension module, `ferrocorn._ferrocorn`, is
//! this crate built with the `python` feature. The `ferrocorn` console script (or
//! `python -m ferrocorn`) runs in the user's interpreter and calls [`main`] with the
//! command line; the interpreter is already initialised, so virtualenvs, `sys.path` and
//! `sys.executable` are exactly what the user's Python says.
//!
//! - [`config_file`]: the config file executed as module `__config__` (or `python:MODULE`
//!   imported), its setting-named globals handed to the settings layer, and the importer
//!   for `module.func` hook strings.
//! - [`app`]: gunicorn's `import_app` and PasteDeploy loading, and the environment set-up
//!   before the import.
//! - [`convert`]: Python objects as setting [`Value`](crate::settings::Value)s.
//! - [`serve`]: serving: the master set up as gunicorn's arbiter (server hooks and HUP
//!   reload from [`server_hooks`]) with [`worker`]'s body, which runs [`sync`], the WSGI
//!   sync worker (over [`blocking`], its connection driver), or [`gthread`], the WSGI
//!   gthread worker (over the engine), each set up by [`setup`] and serving every request
//!   through [`pipeline`], the one WSGI request pipeline; under it [`wsgi`] (environ,
//!   `wsgi.input`, `start_response`, file wrapper), [`request`] (hooks' `req`/`resp`, the
//!   access record, client faults), [`hooks`] (`pre_request` / `post_request` and their
//!   `worker`, `req`, `resp`) and [`pyio`] (I/O errors as Python sees them).
//! - [`ssl_context`]: the `ssl_context` hook, run in the master at start and on HUP, its
//!   `ssl.SSLContext` read into the plan the TLS acceptor is built from.
//! - [`config_object`]: the `cfg` object hooks see (`server.cfg`, `worker.cfg`), gunicorn's `Config`.
//! - [`pylog`]: Python logging (`logconfig*`, `logger_class`): gunicorn's logger object,
//!   which the Rust loggers forward every record to when one of those settings is set.
//!
//! The files are layered one way: `mod.rs` → `serve` → `worker` → `sync`/`gthread` →
//! `setup`/`blocking` → `pipeline` → `pylog` → `request` → `wsgi`/`hooks` → `pyio`/`convert`.
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
pub mod blocking;
pub mod config_file;
pub mod config_object;
pub mod convert;
pub mod gthread;
pub mod hooks;
pub mod pipeline;
pub mod pyio;
pub mod pylog;
pub mod request;
pub mod serve;
pub mod server_hooks;
pub mod setup;
pub mod ssl_context;
pub mod sync;
pub mod worker;
pub mod wsgi;

use pyo3::prelude::*;

use crate::run;
use crate::settings::Env;

/// Runs the `ferrocorn` command in this interpreter: `argv` without the program name.
/// Output goes to Python's `sys.stdout` / `sys.stderr` (flushed, so it keeps its place
/// after whatever the config file or the application printed); returns the exit code.
pub fn main(py: Python<'_>, argv: &[String]) -> PyResult<u8> {
    server_hooks::record_start();
    let _ = server_hooks::ARGV.set(argv.to_vec());
    let env = Env::from_process();
    let out = run::run_full(argv, &env, &config_file::PythonConfig, Some(&serve::PythonApp));
    if let Some(err) = convert::take_escaped() {
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
    use super::config_object::_cfg_for_argv;

    /// Runs the `ferrocorn` command with these arguments (without the program name) and
    /// returns its exit code.
    #[pyfunction]
    fn main(py: Python<'_>, argv: Vec<String>) -> PyResult<u8> {
        super::main(py, &argv)
    }
}
