//! Python objects to setting [`Value`]s, and the helpers every part of the bridge uses
//! (tracebacks, `repr`, `sys.path`).

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};

use crate::settings::{ObjKind, PyObj, Value};

/// Converts a Python object into the [`Value`] shape the validators work on. Containers
/// are converted item by item; anything else (functions, classes, instances, ints that
/// do not fit 64 bits) becomes a [`Value::Object`] that keeps a reference to the object.
pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::None);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Int(i));
        }
        return describe(obj).map(|o| Value::Object(Box::new(o)));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|i| to_value(&i)).collect::<PyResult<_>>().map(Value::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().map(|i| to_value(&i)).collect::<PyResult<_>>().map(Value::Tuple);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return d
            .iter()
            .map(|(k, v)| Ok((to_value(&k)?, to_value(&v)?)))
            .collect::<PyResult<_>>()
            .map(Value::Dict);
    }
    if obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>() {
        // gunicorn's list validators iterate whatever they are given.
        return obj.try_iter()?.map(|i| to_value(&i?)).collect::<PyResult<_>>().map(Value::List);
    }
    describe(obj).map(|o| Value::Object(Box::new(o)))
}

/// Describes an object for the settings layer: its kind (as `inspect` tells it), its
/// `__qualname__`, `str()`, positional arity when callable, and a handle to the object.
pub fn describe(obj: &Bound<'_, PyAny>) -> PyResult<PyObj> {
    let py = obj.py();
    let inspect = PyModule::import(py, "inspect")?;
    let is = |f: &str| -> PyResult<bool> { inspect.call_method1(f, (obj,))?.is_truthy() };
    let kind = if is("isfunction")? || is("ismethod")? {
        ObjKind::Function
    } else if is("isclass")? {
        ObjKind::Class
    } else if obj.is_callable() {
        ObjKind::Callable
    } else {
        ObjKind::Other
    };
    let qualname = match obj.getattr("__qualname__") {
        Ok(q) => q.str()?.to_str()?.to_owned(),
        Err(_) => obj.get_type().qualname()?.to_str()?.to_owned(),
    };
    let arity = if kind == ObjKind::Other { None } else { arity(obj).ok() };
    Ok(PyObj {
        kind,
        qualname,
        text: obj.str()?.to_str()?.to_owned(),
        arity,
        handle: Some(Arc::new(obj.clone().unbind())),
    })
}

/// gunicorn's `util.get_arity`: the parameters of `inspect.signature(f)` that are
/// positional-only or positional-or-keyword (with or without defaults); `*args`,
/// keyword-only parameters and `**kwargs` do not count.
pub fn arity(f: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = f.py();
    let inspect = PyModule::import(py, "inspect")?;
    let param = inspect.getattr("Parameter")?;
    let positional = [param.getattr("POSITIONAL_ONLY")?, param.getattr("POSITIONAL_OR_KEYWORD")?];
    let params =
        inspect.call_method1("signature", (f,))?.getattr("parameters")?.call_method0("values")?;
    let mut n = 0;
    for p in params.try_iter()? {
        let kind = p?.getattr("kind")?;
        for k in &positional {
            if kind.eq(k)? {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// The Python object a [`PyObj`] from the bridge refers to (`None` for built-in
/// defaults, which have no Python object).
pub fn handle(obj: &PyObj) -> Option<&Py<PyAny>> {
    obj.handle.as_ref()?.downcast_ref::<Py<PyAny>>()
}

/// `''.join(traceback.format_exception(type, value, tb))` for an error.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let text = (|| -> PyResult<String> {
        let tb = PyModule::import(py, "traceback")?;
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        PyString::new(py, "").call_method1("join", (lines,))?.extract::<String>()
    })();
    // Formatting can only fail when the interpreter is in trouble; say what we know.
    let text = text.unwrap_or_else(|_| format!("{err}\n"));
    remember(py, err, &text);
    text
}

/// `str(exc)` of an error's value.
pub fn exc_str(py: Python<'_>, err: &PyErr) -> String {
    err.value(py).str().and_then(|s| s.to_str().map(str::to_owned)).unwrap_or_default()
}

/// Python's `repr()` of a string.
pub fn repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_str()?.to_owned())
}

/// Puts `dir` first on `sys.path` unless it is already there (gunicorn's
/// `Application.chdir` and `--pythonpath`).
pub fn ensure_on_sys_path(py: Python<'_>, dir: &str) -> PyResult<()> {
    let path = PyModule::import(py, "sys")?.getattr("path")?;
    if !path.contains(dir)? {
        path.call_method1("insert", (0, dir))?;
    }
    Ok(())
}

/// Writes text to `sys.stdout` or `sys.stderr` and flushes it, so it lands in order
/// with whatever Python code printed before.
pub fn write_stream(py: Python<'_>, stream: &str, text: &str) -> PyResult<()> {
    let s = PyModule::import(py, "sys")?.getattr(stream)?;
    if s.is_none() {
        return Ok(());
    }
    if !text.is_empty() {
        s.call_method1("write", (text,))?;
    }
    s.call_method0("flush")?;
    Ok(())
}

/// A `BaseException` that is not an `Exception` (`SystemExit`, `KeyboardInterrupt`)
/// raised by the config file or the application import. gunicorn only catches
/// `Exception`, so these end the process the way Python ends it (`sys.exit(3)` in a
/// config file exits 3); the settings layer only carries text, so the bridge keeps the
/// exception here and [`super::main`] raises it again.
static ESCAPED: Mutex<Option<PyErr>> = Mutex::new(None);

/// Whether `err` must escape (a `BaseException` that is not an `Exception`); if so it is
/// kept for [`super::main`].
pub fn escapes(py: Python<'_>, err: &PyErr) -> bool {
    if err.is_instance_of::<PyException>(py) {
        return false;
    }
    if let Ok(mut slot) = ESCAPED.lock() {
        slot.get_or_insert_with(|| err.clone_ref(py));
    }
    true
}

/// The escaping exception kept by [`escapes`], taken (once).
pub fn take_escaped() -> Option<PyErr> {
    ESCAPED.lock().ok().and_then(|mut e| e.take())
}

thread_local! {
    /// The last Python exception formatted on this thread, and its text: with Python
    /// logging configured, an exception record whose message ends with that text gets the
    /// exception itself (`python/pylog.rs`).
    static LAST_ERROR: std::cell::RefCell<Option<(PyErr, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// Keeps `err` (formatted as `text`) for the exception record that may follow.
fn remember(py: Python<'_>, err: &PyErr, text: &str) {
    if crate::log::forward().is_some() {
        LAST_ERROR.with(|l| *l.borrow_mut() = Some((err.clone_ref(py), text.to_owned())));
    }
}

/// The exception [`format_traceback`] formatted last on this thread, and its text, taken.
pub fn take_last_error() -> Option<(PyErr, String)> {
    LAST_ERROR.with(|l| l.borrow_mut().take())
}
