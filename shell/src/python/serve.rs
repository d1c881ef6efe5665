//! `ferrocorn APP [options]`: the master with the WSGI sync worker.
//!
//! In the master, as gunicorn's `Arbiter.setup`: `SERVER_SOFTWARE` in `os.environ`, the
//! import environment (`--chdir`, `--pythonpath`, `--env`), the application loaded when
//! `preload_app`, then [`crate::arbiter::serve`], which logs `Starting ferrocorn`, binds,
//! and forks the workers (`PyOS_BeforeFork` / `PyOS_AfterFork_*` around each fork, see
//! [`super::worker::WsgiBody`]). The master runs no Python thread of its own.

use pyo3::prelude::*;

use super::app::{load_app, prepare_import};
use super::convert::{exc_str, write_stream};
use crate::run::{AppLoader, Outcome};
use crate::settings::config::AppConfig;
use crate::settings::{Env, ServerConfig, Settings};

/// Serves the application of `settings`; returns the exit code (output left to print
/// goes into `out`).
pub fn serve(py: Python<'_>, settings: &Settings, config: &ServerConfig, out: &mut Outcome) -> u8 {
    let flushed = write_stream(py, "stdout", &out.stdout)
        .and_then(|()| write_stream(py, "stderr", &out.stderr));
    out.stdout.clear();
    out.stderr.clear();
    if let Err(e) = flushed {
        out.stderr = format!("\nError: {}\n", exc_str(py, &e));
        return 1;
    }
    let software = concat!("ferrocorn/", env!("CARGO_PKG_VERSION"));
    let setup = (|| -> PyResult<()> {
        PyModule::import(py, "os")?.getattr("environ")?.set_item("SERVER_SOFTWARE", software)?;
        // The master's and the workers' own handlers take SIGINT; Python's
        // KeyboardInterrupt handler must not also fire in them.
        let signal = PyModule::import(py, "signal")?;
        signal.call_method1("signal", (signal.getattr("SIGINT")?, signal.getattr("SIG_DFL")?))?;
        prepare_import(py, settings, &config.app)?;
        // gunicorn installs `spew` in the master before the arbiter starts; the workers
        // inherit it on their main thread.
        if config.app.spew {
            PyModule::import(py, "ferrocorn.debug")?.call_method0("spew")?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        if super::convert::escapes(py, &e) {
            return 1;
        }
        out.stderr = format!("\nError: {}\n", exc_str(py, &e));
        return 1;
    }
    let preloaded = if config.app.preload_app {
        match load_app(py, settings, &config.app) {
            Ok(app) => Some(app.unbind()),
            Err(e) => {
                if super::convert::escapes(py, &e.error) {
                    return 1;
                }
                // gunicorn lets the exception end the process: its traceback, exit 1.
                out.stderr = e.traceback;
                return 1;
            }
        }
    } else {
        None
    };
    // The `ssl_context` hook, after `chdir` (its files resolve as gunicorn's do).
    let config = &match super::ssl_context::with_context(py, settings, config.clone()) {
        Ok(c) => c,
        Err(e) => {
            out.stderr = format!("\nError: {e}\n");
            return 1;
        }
    };
    let body = match super::worker::WsgiBody::new(config, preloaded, &Env::from_process()) {
        Ok(b) => b,
        Err(e) => {
            out.stderr = format!("\nError: {e}\n");
            return 1;
        }
    };
    // Python logging (`logconfig*`, `logger_class`), when asked for: gunicorn's logger
    // object, made before the loggers that forward to it.
    if let Err(e) = super::pylog::install(py, settings) {
        out.stderr = if e.is_empty() { e } else { format!("{e}\n") };
        return 1;
    }
    let log = match crate::log::Logger::for_config(&config.log, settings) {
        Ok(l) => l,
        Err(e) => {
            out.stderr = format!("{e}\n");
            return 1;
        }
    };
    let opts = match super::server_hooks::serve_options(py, settings, config, log) {
        Ok(o) => o,
        Err(e) => {
            out.stderr = format!("\nError: {}\n", exc_str(py, &e));
            return 1;
        }
    };
    let code = crate::arbiter::serve_with(settings, config, &body, &opts);
    // Output the application printed in the master must not be lost.
    let _ = write_stream(py, "stdout", "");
    let _ = write_stream(py, "stderr", "");
    code
}

/// `--check-config` / `--print-config` through the interpreter: set up as a worker
/// would, then import the application.
#[derive(Clone, Copy, Debug, Default)]
pub struct PythonApp;

impl AppLoader for PythonApp {
    fn check_app(&self, settings: &Settings, out: &mut Outcome) -> Result<(), String> {
        Python::attach(|py| {
            // What gunicorn printed before importing (the configuration) comes first.
            let flushed = write_stream(py, "stdout", &out.stdout)
                .and_then(|()| write_stream(py, "stderr", &out.stderr));
            if let Err(e) = flushed {
                return Err(format!("\nError: {e}\n"));
            }
            out.stdout.clear();
            out.stderr.clear();
            let app = AppConfig::new(settings);
            if let Err(e) = prepare_import(py, settings, &app) {
                return Err(format!("\nError: {}\n", super::convert::exc_str(py, &e)));
            }
            match load_app(py, settings, &app) {
                Ok(_) => Ok(()),
                // SystemExit and KeyboardInterrupt are not caught (main raises them).
                Err(e) if super::convert::escapes(py, &e.error) => Err(String::new()),
                Err(e) => Err(format!("\nError while loading the application:\n\n{}", e.traceback)),
            }
        })
    }

    fn serve(&self, settings: &Settings, config: &ServerConfig, out: &mut Outcome) -> u8 {
        Python::attach(|py| serve(py, settings, config, out))
    }
}
