//! The objects server hooks receive, with the attributes hooks use in practice:
//! `worker` ([`WorkerObj`]: `pid`, `ppid`, `age`, `log`, `cfg`, `alive`, `nr`, `booted`,
//! `timeout`, and any attribute a hook sets), `req`
//! ([`RequestObj`]: `method`, `uri`, `path`, `query`, `version`, `headers`, `scheme`,
//! `remote_addr`) and `resp` ([`ResponseObj`]: `status`, `status_code`, `headers`,
//! `sent`), and the calls of `pre_request` and `post_request`.
//!
//! As in gunicorn's sync worker, an exception in `pre_request` fails the request (500,
//! logged as `Error handling request`), and one in `post_request` is logged as
//! `Exception in post_request hook` with its traceback and changes nothing else.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::convert::handle;
use crate::log::{Level, Logger};
use crate::settings::{Settings, Value};

/// `worker.log`: gunicorn's logger methods, writing into the error log.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.workers", name = "Logger", frozen)]
pub struct HookLog {
    log: Logger,
}

impl HookLog {
    /// `log` seen from Python.
    pub fn new(log: Logger) -> HookLog {
        HookLog { log }
    }

    fn emit(
        &self,
        py: Python<'_>,
        level: Level,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        tb: bool,
    ) -> PyResult<()> {
        if !self.log.enabled(level) {
            return Ok(());
        }
        let mut text = if args.is_empty() {
            msg.str()?.to_string()
        } else {
            let a: Bound<'_, PyAny> =
                if args.len() == 1 && args.get_item(0)?.is_instance_of::<PyDict>() {
                    args.get_item(0)?
                } else {
                    args.clone().into_any()
                };
            msg.rem(a)?.str()?.to_string()
        };
        if tb {
            let exc: String =
                PyModule::import(py, "traceback")?.call_method0("format_exc")?.extract()?;
            if !exc.starts_with("NoneType: None") {
                text.push('\n');
                text.push_str(exc.trim_end());
            }
        }
        self.log.log(level, text);
        Ok(())
    }
}

#[pymethods]
impl HookLog {
    #[pyo3(signature = (msg, *args))]
    fn debug(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Debug, msg, args, false)
    }
    #[pyo3(signature = (msg, *args))]
    fn info(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Info, msg, args, false)
    }
    #[pyo3(signature = (msg, *args))]
    fn warning(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Warning, msg, args, false)
    }
    #[pyo3(signature = (msg, *args))]
    fn error(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Error, msg, args, false)
    }
    #[pyo3(signature = (msg, *args))]
    fn critical(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Critical, msg, args, false)
    }
    #[pyo3(signature = (msg, *args))]
    fn exception(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.emit(py, Level::Error, msg, args, true)
    }
}

/// The `worker` argument of hooks (gunicorn's `SyncWorker`). In a worker process, every
/// hook and the worker body share one object ([`this_worker`]), so attributes a hook sets
/// (`worker.tracer = ...` in `post_fork`) are there in the next hook.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.workers", name = "SyncWorker", frozen, dict)]
pub struct WorkerObj {
    /// `worker.pid` (`"[booting]"` in `pre_fork`, as gunicorn).
    pid: u32,
    /// `worker.ppid`.
    #[pyo3(get)]
    ppid: i32,
    /// `worker.age`.
    #[pyo3(get)]
    age: u64,
    /// `worker.log`.
    #[pyo3(get)]
    log: Py<HookLog>,
    /// `worker.cfg`: every setting as an attribute.
    #[pyo3(get)]
    cfg: Py<PyAny>,
    /// `worker.timeout` (seconds).
    #[pyo3(get)]
    timeout: u64,
    alive: AtomicBool,
    nr: AtomicU64,
    booted: AtomicBool,
}

/// The worker object of this process, once made: `(pid, object)`.
static THIS_WORKER: std::sync::Mutex<Option<(u32, Py<WorkerObj>)>> = std::sync::Mutex::new(None);

/// The worker object of worker `pid`: in that worker's own process, the one object
/// shared by the hooks and the body (made by `make` the first time); elsewhere (the
/// master) a new one each call.
pub fn this_worker(
    py: Python<'_>,
    pid: u32,
    make: impl FnOnce() -> PyResult<WorkerObj>,
) -> PyResult<Py<WorkerObj>> {
    if pid != std::process::id() {
        return Py::new(py, make()?);
    }
    let cached = THIS_WORKER
        .lock()
        .ok()
        .and_then(|g| g.as_ref().filter(|(p, _)| *p == pid).map(|(_, o)| o.clone_ref(py)));
    if let Some(o) = cached {
        return Ok(o);
    }
    let obj = Py::new(py, make()?)?;
    if let Ok(mut g) = THIS_WORKER.lock() {
        *g = Some((pid, obj.clone_ref(py)));
    }
    Ok(obj)
}

impl WorkerObj {
    /// The worker object of this process.
    pub fn new(
        py: Python<'_>,
        pid: u32,
        ppid: i32,
        age: u64,
        timeout: u64,
        log: &Logger,
        settings: &Settings,
    ) -> PyResult<WorkerObj> {
        Ok(WorkerObj {
            pid,
            ppid,
            age,
            log: Py::new(py, HookLog { log: log.clone() })?,
            cfg: cfg_namespace(py, settings)?.unbind(),
            timeout,
            alive: AtomicBool::new(true),
            nr: AtomicU64::new(0),
            booted: AtomicBool::new(false),
        })
    }

    /// A worker object with an already built `cfg`.
    pub fn with_cfg(
        py: Python<'_>,
        pid: u32,
        ppid: i32,
        age: u64,
        timeout: u64,
        log: &Logger,
        cfg: Py<PyAny>,
    ) -> PyResult<WorkerObj> {
        Ok(WorkerObj {
            pid,
            ppid,
            age,
            log: Py::new(py, HookLog { log: log.clone() })?,
            cfg,
            timeout,
            alive: AtomicBool::new(true),
            nr: AtomicU64::new(0),
            booted: AtomicBool::new(false),
        })
    }

    /// Whether the worker should go on serving (a hook may set `worker.alive = False`).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Stops the worker after the current request.
    pub fn stop(&self) {
        self.alive.store(false, Ordering::Relaxed);
    }

    /// Marks the worker booted (`worker.booted`, after `post_worker_init`).
    pub fn mark_booted(&self) {
        self.booted.store(true, Ordering::Relaxed);
    }

    /// Counts a request; returns the new count.
    pub fn count_request(&self) -> u64 {
        self.nr.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[pymethods]
impl WorkerObj {
    /// `worker.pid`: `"[booting]"` before the fork (`pre_fork`), as gunicorn.
    #[getter]
    fn pid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.pid == 0 {
            Ok("[booting]".into_pyobject(py)?.into_any())
        } else {
            Ok(self.pid.into_pyobject(py)?.into_any())
        }
    }

    /// `worker.booted`: the application is loaded and `post_worker_init` ran.
    #[getter]
    fn booted(&self) -> bool {
        self.booted.load(Ordering::Relaxed)
    }

    /// `worker.alive`.
    #[getter]
    fn alive(&self) -> bool {
        self.is_alive()
    }

    #[setter]
    fn set_alive(&self, v: bool) {
        self.alive.store(v, Ordering::Relaxed);
    }

    /// `worker.nr`: requests handled so far.
    #[getter]
    fn nr(&self) -> u64 {
        self.nr.load(Ordering::Relaxed)
    }
}

/// `worker.cfg` (and `server.cfg`): gunicorn's `Config`, from [`super::config_object::cfg_object`].
fn cfg_namespace<'py>(py: Python<'py>, settings: &Settings) -> PyResult<Bound<'py, PyAny>> {
    Ok(super::config_object::cfg_object(py, settings)?.into_bound(py))
}

/// A setting value as a Python object.
pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        Value::List(items) => PyList::new(
            py,
            items.iter().map(|i| value_to_py(py, i)).collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Tuple(items) => PyTuple::new(
            py,
            items.iter().map(|i| value_to_py(py, i)).collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::Dict(pairs) => {
            let d = PyDict::new(py);
            for (k, v) in pairs {
                d.set_item(value_to_py(py, k)?, value_to_py(py, v)?)?;
            }
            d.into_any()
        }
        Value::Object(o) => match handle(o) {
            Some(h) => h.bind(py).clone(),
            None => py.None().into_bound(py),
        },
    })
}

/// The `req` argument of hooks (gunicorn's `Request`).
#[derive(Debug)]
#[pyclass(module = "ferrocorn.http", name = "Request", frozen, get_all)]
pub struct RequestObj {
    /// `req.method`.
    pub method: Py<PyAny>,
    /// `req.uri`: the request-target as sent.
    pub uri: Py<PyAny>,
    /// `req.path`.
    pub path: Py<PyAny>,
    /// `req.query`.
    pub query: Py<PyAny>,
    /// `req.version`: `(1, 1)`.
    pub version: Py<PyAny>,
    /// `req.headers`: `(NAME, value)` pairs, names upper-cased.
    pub headers: Py<PyAny>,
    /// `req.scheme`.
    pub scheme: Py<PyAny>,
    /// `req.remote_addr`: `(ip, port)`, or `''` on a unix socket.
    pub remote_addr: Py<PyAny>,
}

/// The `resp` argument of `post_request` (gunicorn's `Response`).
#[derive(Debug)]
#[pyclass(module = "ferrocorn.http", name = "Response", frozen, get_all)]
pub struct ResponseObj {
    /// `resp.status`: the status line as the application gave it, or `None`.
    pub status: Py<PyAny>,
    /// `resp.status_code`.
    pub status_code: Py<PyAny>,
    /// `resp.headers`: `(name, value)` pairs after hop-by-hop filtering.
    pub headers: Py<PyAny>,
    /// `resp.sent`: body bytes written.
    pub sent: u64,
}

/// The `pre_request` and `post_request` hooks, when they are not gunicorn's defaults.
#[derive(Debug)]
pub struct Hooks {
    /// `pre_request(worker, req)`.
    pub pre_request: Option<Py<PyAny>>,
    /// `post_request(worker, req[, environ[, resp]])` and its arity.
    pub post_request: Option<(Py<PyAny>, usize)>,
}

impl Hooks {
    /// The hooks the settings name (a default hook is `None`).
    pub fn from_settings(py: Python<'_>, settings: &Settings) -> Hooks {
        let get = |name: &str| match settings.get(name) {
            Value::Object(o) => handle(o).map(|h| (h.clone_ref(py), o.arity.unwrap_or(2))),
            _ => None,
        };
        Hooks { pre_request: get("pre_request").map(|(h, _)| h), post_request: get("post_request") }
    }

    /// Whether any hook needs `req` objects.
    pub fn any(&self) -> bool {
        self.pre_request.is_some() || self.post_request.is_some()
    }
}
