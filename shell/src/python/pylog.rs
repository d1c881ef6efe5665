//! Python logging, for servers that ask for it: `logconfig` (a `fileConfig` ini, also the
//! logging sections of a `--paste` ini), `logconfig_dict`, `logconfig_json` and
//! `logger_class`.
//!
//! With any of them set, [`install`] makes gunicorn's logger object in the master, before
//! the Rust loggers are made: the user's class, or `ferrocorn.glogging.Logger`
//! (shell/python/ferrocorn/glogging.py, gunicorn 27's `glogging.Logger` with its
//! `CONFIG_DEFAULTS` merged the way gunicorn merges them) for gunicorn's own names
//! (`simple`, `gunicorn.glogging.Logger`, the statsd logger: ferrocorn sends the StatsD
//! metrics from Rust). It is instantiated with the `cfg` object, which runs its `setup`;
//! an error there is gunicorn's `Error: ...` and exit 1. [`PyLogger`] then is the
//! [`Forward`] of every [`crate::log::Logger`] and [`crate::log::access::AccessLog`] of the
//! process and of the workers it forks: each error-log call becomes the object's
//! `info`/`warning`/... call (records on the `gunicorn.error` logger, gunicorn's levels),
//! an exception caught in Python its `exception` with the exception as `exc_info`, each
//! served request its `access(resp, req, environ, request_time)` (the access record's
//! `msg` is `access_log_format`, its `args` the atoms dict), USR1 its `reopen_files`,
//! and a worker's first call its `close_on_exec`, as gunicorn's worker does when it
//! starts. A HUP with changed settings runs its `setup` again (gunicorn's reload); a
//! failing one keeps the previous configuration, as gunicorn does.
//!
//! Without these settings nothing here runs, and the logs stay rendered in Rust.

use std::any::Any;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::convert::{exc_str, format_traceback};
use super::request::{Served, peer_ip};
use crate::log::{Forward, Level};
use crate::settings::{Settings, Value};

/// Whether `settings` ask for Python logging.
pub fn wanted(settings: &Settings) -> bool {
    let set = |name: &str| match settings.get(name) {
        Value::None => false,
        Value::Str(s) => !s.is_empty(),
        Value::Dict(d) => !d.is_empty(),
        _ => true,
    };
    set("logconfig") || set("logconfig_dict") || set("logconfig_json") || custom_class(settings)
}

/// Whether `logger_class` names a class other than gunicorn's own.
fn custom_class(settings: &Settings) -> bool {
    match settings.get("logger_class") {
        Value::Str(s) => !matches!(
            s.as_str(),
            "simple"
                | "gunicorn.glogging.Logger"
                | "egg:gunicorn#simple"
                | "gunicorn.instrument.statsd.Statsd"
                | "egg:gunicorn#statsd"
        ),
        _ => true,
    }
}

/// Makes the Python logger when `settings` ask for one and sends the logs there from now
/// on. An error is the text to print (gunicorn's `\nError: ...\n`).
pub fn install(py: Python<'_>, settings: &Settings) -> Result<(), String> {
    crate::log::set_forward(None);
    if !wanted(settings) {
        return Ok(());
    }
    let made = (|| -> PyResult<(Py<PyAny>, Py<PyModule>, i64)> {
        let module = PyModule::import(py, "ferrocorn.glogging")?;
        let uri = super::config_object::to_py(py, settings.get("logger_class"))?;
        let class = module.call_method1("load_class", (uri,))?;
        let cfg = super::config_object::cfg_object(py, settings)?;
        let (obj, level) = module.call_method1("make", (class, cfg))?.extract()?;
        Ok((obj, module.unbind(), level))
    })();
    let (obj, module, level) = match made {
        Ok(m) => m,
        Err(e) => {
            if super::convert::escapes(py, &e) {
                return Err(String::new());
            }
            if e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) {
                return Err(format!("\nError: {}\n", exc_str(py, &e)));
            }
            // Anything else escapes gunicorn's `run` with its traceback.
            return Err(format_traceback(py, &e).trim_end().to_owned());
        }
    };
    let logger = PyLogger {
        access_fn: module.getattr(py, "_access").map_err(|e| exc_str(py, &e))?,
        exception_fn: module.getattr(py, "_exception").map_err(|e| exc_str(py, &e))?,
        level_fn: module.getattr(py, "level_of").map_err(|e| exc_str(py, &e))?,
        obj,
        level: AtomicU8::new(level_number(level)),
        custom: custom_class(settings),
        configured: Mutex::new(settings.current_configuration()),
        pid: AtomicU32::new(0),
    };
    crate::log::set_forward(Some(Arc::new(logger)));
    Ok(())
}

/// A Python level number as kept here (custom levels above 255 count as `CRITICAL`).
fn level_number(level: i64) -> u8 {
    u8::try_from(level.max(0)).unwrap_or(50)
}

/// gunicorn's logger object, in Python (see the module's text).
#[derive(Debug)]
pub struct PyLogger {
    obj: Py<PyAny>,
    access_fn: Py<PyAny>,
    exception_fn: Py<PyAny>,
    level_fn: Py<PyAny>,
    /// Python's level number of the lowest record worth passing on.
    level: AtomicU8,
    custom: bool,
    /// The settings it was last set up with (`current_configuration`'s text).
    configured: Mutex<String>,
    /// The process that last called `close_on_exec`.
    pid: AtomicU32,
}

impl PyLogger {
    /// After the first call of a process (the master's `Starting` line, a worker's
    /// `Booting worker`), `close_on_exec`, as gunicorn's `Arbiter.start` and worker's
    /// `init_process` call it right after those lines.
    fn started(&self, py: Python<'_>) {
        let pid = std::process::id();
        if self.pid.swap(pid, Ordering::Relaxed) != pid {
            report(py, self.obj.call_method0(py, "close_on_exec"));
        }
    }

    /// One served request, as gunicorn's `log.access(resp, req, environ, request_time)`.
    pub fn access(&self, py: Python<'_>, s: &Served<'_>) {
        let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
        let built = (|| -> PyResult<()> {
            let (status, resp_headers) = match s.response {
                Some(r) => {
                    let headers = PyList::empty(py);
                    for (n, v) in r.headers() {
                        headers.append((latin1(n), latin1(v)))?;
                    }
                    (latin1(r.status()).into_pyobject(py)?.into_any().unbind(), headers)
                }
                None => (py.None(), PyList::empty(py)),
            };
            let head = s.head;
            let req_headers = PyList::empty(py);
            for (n, v) in head.headers() {
                req_headers.append((latin1(n).to_ascii_uppercase(), latin1(v)))?;
            }
            let environ = PyDict::new(py);
            match (s.environ, s.response) {
                (Some(e), Some(_)) => {
                    for (n, v) in e.iter() {
                        environ.set_item(latin1(n.as_bytes()), latin1(v))?;
                    }
                }
                // An error page: gunicorn's `handle_error` logs it with `default_environ`
                // (the request line's variables and the client's address only).
                (e, _) => {
                    environ.set_item("REQUEST_METHOD", latin1(head.method()))?;
                    environ.set_item("QUERY_STRING", latin1(head.query()))?;
                    environ.set_item("RAW_URI", latin1(head.target()))?;
                    environ.set_item("SERVER_PROTOCOL", latin1(&head.version.as_bytes()))?;
                    let from_environ = |k: &[u8]| {
                        e.and_then(|e| e.iter().find(|(n, _)| n.as_bytes() == k).map(|(_, v)| v))
                    };
                    for k in ["SERVER_SOFTWARE", "REMOTE_ADDR", "REMOTE_PORT"] {
                        if let Some(v) = from_environ(k.as_bytes()) {
                            environ.set_item(k, latin1(v))?;
                        }
                    }
                    if !environ.contains("REMOTE_ADDR")? {
                        environ.set_item("REMOTE_ADDR", peer_ip(s.peer))?;
                    }
                }
            }
            let req_line = PyTuple::new(
                py,
                [
                    latin1(head.method()),
                    latin1(head.target()),
                    latin1(head.path()),
                    latin1(head.query()),
                ],
            )?
            .add(PyTuple::new(py, [(head.version.major, head.version.minor)])?)?;
            let micros = u64::try_from(s.elapsed.as_micros()).unwrap_or(u64::MAX);
            self.access_fn.call1(
                py,
                (
                    &self.obj,
                    status,
                    s.status,
                    s.sent,
                    resp_headers,
                    req_line,
                    req_headers,
                    environ,
                    micros,
                ),
            )?;
            Ok(())
        })();
        report(py, built);
        self.started(py);
    }
}

/// A failure of the Python logger itself goes to stderr (with its traceback): logging
/// must never stop the server.
fn report<T>(py: Python<'_>, r: PyResult<T>) {
    if let Err(e) = r {
        if !e.is_instance_of::<pyo3::exceptions::PyException>(py) {
            // A SystemExit raised by a quick stop's signal: the worker's own flag ends it.
            return;
        }
        eprint!("{}", format_traceback(py, &e));
    }
}

impl Forward for PyLogger {
    fn setup(&self, settings: &Settings) -> Result<(), String> {
        let now = settings.current_configuration();
        let mut configured = self.configured.lock().unwrap_or_else(PoisonError::into_inner);
        if *configured == now {
            return Ok(());
        }
        Python::attach(|py| {
            let applied = super::config_object::cfg_object(py, settings)
                .and_then(|cfg| self.obj.call_method1(py, "setup", (cfg,)));
            match applied {
                Ok(_) => *configured = now,
                Err(e) => {
                    // gunicorn's reload: say so, keep the previous configuration.
                    eprintln!(
                        "\nError: reloading the logger configuration failed, keeping the previous one"
                    );
                    eprint!("{}", format_traceback(py, &e));
                    let prev = self.obj.getattr(py, "cfg");
                    report(py, prev.and_then(|cfg| self.obj.call_method1(py, "setup", (cfg,))));
                }
            }
            if let Ok(l) = self.level_fn.call1(py, (&self.obj,)).and_then(|l| l.extract(py)) {
                self.level.store(level_number(l), Ordering::Relaxed);
            }
        });
        Ok(())
    }

    fn log(&self, level: Level, msg: &str) {
        let name = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        };
        Python::attach(|py| {
            report(py, self.obj.call_method1(py, name, (msg,)));
            self.started(py);
        });
    }

    fn exception(&self, msg: &str) {
        Python::attach(|py| {
            let last = super::convert::take_last_error();
            if let Some((err, text)) = last {
                if let Some(head) = msg.strip_suffix(text.trim_end()) {
                    let head = head.trim_end_matches('\n');
                    let called = self
                        .exception_fn
                        .call1(py, (&self.obj, head, err.value(py).clone(), err.traceback(py)));
                    report(py, called);
                    return self.started(py);
                }
            }
            report(py, self.obj.call_method1(py, "error", (msg,)));
            self.started(py);
        });
    }

    fn reopen(&self) {
        Python::attach(|py| report(py, self.obj.call_method0(py, "reopen_files")));
    }

    fn level(&self) -> Level {
        match self.level.load(Ordering::Relaxed) {
            0..=10 => Level::Debug,
            11..=20 => Level::Info,
            21..=30 => Level::Warning,
            31..=40 => Level::Error,
            _ => Level::Critical,
        }
    }

    fn custom(&self) -> bool {
        self.custom
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Sends a served request to the Python logger `f` (the access log's [`Forward`]).
pub fn access(py: Python<'_>, f: &dyn Forward, s: &Served<'_>) {
    if let Some(l) = f.as_any().downcast_ref::<PyLogger>() {
        l.access(py, s);
    }
}
