//! The `cfg` object hooks see (`server.cfg`, `worker.cfg`): gunicorn's `Config`.
//!
//! [`cfg_object`] turns the resolved [`Settings`] into an instance of
//! `ferrocorn.config.Config` (shell/python/ferrocorn/config.py), a Python class that
//! reproduces gunicorn 27's `gunicorn.config.Config`: every setting as an attribute,
//! `cfg.settings[name].value`, `cfg.set(name, value)`, and the derived properties
//! (`worker_class_str`, `address`, `uid`, `gid`, `proc_name`, `is_ssl`, `ssl_options`,
//! `env`, `sendfile`, `reuse_port`, `paste_global_conf`, ...).
//!
//! Why a Python class fed from Rust rather than a `#[pyclass]`: what hook code relies on
//! is Python behaviour — `__getattr__` falling back to the settings after the properties
//! (so `cfg.sendfile` is the property and `cfg.settings['sendfile'].value` the raw
//! setting), the exact `AttributeError` texts, properties that read `os.environ` when
//! called, values that are ordinary mutable `list`s and `dict`s, `str(cfg)` — and a
//! near-copy of gunicorn's own class keeps all of that identical by construction, where a
//! pyclass would re-implement Python's attribute protocol by hand. Nothing here is on a
//! per-request path (the Rust server reads [`Settings`], not this object), so the
//! interpreted class costs nothing that matters.
//!
//! Rust's part: each value becomes the Python object gunicorn would hold (hooks and
//! classes from the config file are the very objects the file defined; a hook left at
//! its default gets gunicorn's built-in function, with gunicorn's `__qualname__`), and
//! `cfg.set()` validates through ferrocorn's validators (the same code the settings layer
//! runs on the config file and the command line).

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::config_file::PythonConfig;
use super::convert::{handle, to_value, write_stream};
use crate::settings::defs::index_of;
use crate::settings::resolve::{self, Loaded};
use crate::settings::validate::Ctx;
use crate::settings::{Action, Env, SETTINGS, Settings, Validator, Value};

/// The `ferrocorn.config.Config` for these settings: what the serving code hands hooks
/// as `server.cfg` and `worker.cfg` (one object for both, as in gunicorn, where the
/// worker's `cfg` is the arbiter's).
pub fn cfg_object(py: Python<'_>, settings: &Settings) -> PyResult<Py<PyAny>> {
    let env = Env::from_process();
    let rows = PyList::empty(py);
    for (s, r) in settings.iter() {
        let cli =
            if s.cli.is_empty() { py.None() } else { PyList::new(py, s.cli)?.into_any().unbind() };
        let action = match s.action {
            Action::Store | Action::StoreOptional(_) => None,
            Action::StoreTrue => Some("store_true"),
            Action::StoreConst(_) => Some("store_const"),
            Action::Append => Some("append"),
        };
        // gunicorn's `Setting.default` is the raw class attribute; a default computed from
        // the environment is computed again here (the same environment, the same value).
        let default = match s.default.value(&env) {
            Ok(v) => to_py(py, &v)?,
            Err(_) => py.None(),
        };
        let row = PyTuple::new(
            py,
            [
                s.name.into_pyobject(py)?.into_any().unbind(),
                s.section.title().into_pyobject(py)?.into_any().unbind(),
                cli,
                s.meta.into_pyobject(py)?.unbind(),
                action.into_pyobject(py)?.unbind(),
                default,
                s.help.into_pyobject(py)?.into_any().unbind(),
                to_py(py, &r.value)?,
            ],
        )?;
        rows.append(row)?;
    }
    let validate = wrap_pyfunction!(validate_setting, py)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("usage", "%(prog)s [OPTIONS] [APP_MODULE]")?;
    Ok(PyModule::import(py, "ferrocorn.config")?
        .getattr("build")?
        .call((rows, validate), Some(&kwargs))?
        .unbind())
}

/// A setting's value as the Python object gunicorn would hold.
///
/// `Value::Object`s from the config file carry a handle to their Python object, which is
/// returned as is. The only objects without a handle are the built-in hook defaults:
/// they become `None` here, and `ferrocorn.config.build` puts gunicorn's built-in
/// function in their place.
pub fn to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::None => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Value::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::List(items) => {
            let l = PyList::empty(py);
            for i in items {
                l.append(to_py(py, i)?)?;
            }
            l.into_any().unbind()
        }
        Value::Tuple(items) => {
            let objs = items.iter().map(|i| to_py(py, i)).collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, objs)?.into_any().unbind()
        }
        Value::Dict(pairs) => {
            let d = PyDict::new(py);
            for (k, v) in pairs {
                d.set_item(to_py(py, k)?, to_py(py, v)?)?;
            }
            d.into_any().unbind()
        }
        Value::Object(o) => match handle(o) {
            Some(obj) => obj.clone_ref(py),
            None => py.None(),
        },
    })
}

/// `cfg.set(name, value)`'s validator: the value converted as a config-file value is,
/// checked by the setting's validator (hook import strings are imported), and returned
/// as the Python object gunicorn would store. Warnings gunicorn prints while validating
/// (`ssl_version`) go to `sys.stderr`.
///
/// gunicorn's validators raise `TypeError` for a value of the wrong type and
/// `ValueError` or its `ConfigError` for a bad value of the right type; ferrocorn's
/// validators give only the message, which is gunicorn's, so the class is chosen from
/// it: where gunicorn raises `ConfigError` (unknown user or group, missing `chdir`,
/// unknown `reload_engine`) `ferrocorn.errors.ConfigError`, type and callability
/// complaints `TypeError`, the rest `ValueError`.
#[pyfunction]
fn validate_setting(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let Some(i) = index_of(name) else {
        return Err(PyValueError::new_err(format!("No configuration setting for: {name}")));
    };
    let raw = to_value(value)?;
    let env = Env::from_process();
    let mut ctx = Ctx { env: &env, importer: Some(&PythonConfig), warnings: Vec::new() };
    let validated = SETTINGS[i].validator.validate(&raw, &mut ctx);
    for w in &ctx.warnings {
        write_stream(py, "stderr", &format!("{w}\n"))?;
    }
    match validated {
        // A hook given as an object keeps its own object (and post_request's wrapping
        // is done by the Python side, as gunicorn's validator does it).
        Ok(Value::Object(_)) if matches!(raw, Value::Object(_)) => Ok(value.clone().unbind()),
        Ok(v) => to_py(py, &v),
        Err(msg) => {
            let is_config =
                ["No such user", "No such group", "can't chdir", "Invalid reload_engine"]
                    .iter()
                    .any(|w| msg.starts_with(w));
            if is_config {
                let class = PyModule::import(py, "ferrocorn.errors")?.getattr("ConfigError")?;
                return Err(PyErr::from_value(class.call1((msg,))?));
            }
            // gunicorn's `validate_callable` raises TypeError for every failure (an
            // import error included).
            let hook =
                matches!(SETTINGS[i].validator, Validator::Callable(_) | Validator::PostRequest);
            let is_type = hook
                || ["type", "callable", "arity", "dictionary", "import string"]
                    .iter()
                    .any(|w| msg.contains(w));
            Err(if is_type { PyTypeError::new_err(msg) } else { PyValueError::new_err(msg) })
        }
    }
}

/// Resolves a `ferrocorn` command line (without the program name) in this process's
/// environment, config file included, and returns the `cfg` object hooks would get.
/// For tests and tools (`ferrocorn._ferrocorn._cfg_for_argv`); a configuration error is a
/// `RuntimeError` carrying what the command would print.
#[pyfunction]
pub fn _cfg_for_argv(py: Python<'_>, argv: Vec<String>) -> PyResult<Py<PyAny>> {
    let env = Env::from_process();
    match resolve::load(&argv, &env, &PythonConfig) {
        Ok(Loaded::Settings(s)) => cfg_object(py, &s),
        Ok(_) => Err(PyRuntimeError::new_err("--help and --version give no config")),
        Err(e) => Err(PyRuntimeError::new_err(e.render())),
    }
}
