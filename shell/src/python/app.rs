//! Loading the WSGI application: gunicorn's `util.import_app` (`module`,
//! `module:name`, `module:factory(literal args)`), PasteDeploy (`--paste`), and the
//! environment set-up that precedes the import (`--chdir`, `--pythonpath`, `--env`).
//!
//! The serving code calls [`prepare_import`] then [`load_app`], in the master when
//! `preload_app` is set and in each worker otherwise; `--check-config` and
//! `--print-config` go through [`super::serve::PythonApp`].

use pyo3::exceptions::{
    PyAttributeError, PyImportError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::convert::{ensure_on_sys_path, format_traceback, repr};
use crate::settings::Settings;
use crate::settings::config::AppConfig;

/// What kind of failure stopped the application from loading; gunicorn's workers exit
/// with a different code for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppErrorKind {
    /// gunicorn's `AppImportError`: the module imported but the application could not be
    /// found or built from it. A worker exits with `APP_LOAD_ERROR` (4).
    AppImport,
    /// Anything else: the module failed to import (`ImportError`), the factory raised,
    /// PasteDeploy failed. A worker exits with `WORKER_BOOT_ERROR` (3).
    Other,
}

/// The application failed to load.
#[derive(Debug)]
pub struct AppLoadError {
    /// The kind of failure.
    pub kind: AppErrorKind,
    /// The Python exception.
    pub error: PyErr,
    /// The formatted traceback (what gunicorn prints with `traceback.print_exc()`).
    pub traceback: String,
}

impl AppLoadError {
    fn new(py: Python<'_>, error: PyErr) -> AppLoadError {
        let kind = match app_import_error_type(py) {
            Ok(t) if error.get_type(py).is_subclass(&t).unwrap_or(false) => AppErrorKind::AppImport,
            _ => AppErrorKind::Other,
        };
        AppLoadError { kind, traceback: format_traceback(py, &error), error }
    }

    /// The exit code a worker uses for this failure (gunicorn's `APP_LOAD_ERROR` = 4 or
    /// `WORKER_BOOT_ERROR` = 3).
    pub fn worker_exit_code(&self) -> u8 {
        match self.kind {
            AppErrorKind::AppImport => 4,
            AppErrorKind::Other => 3,
        }
    }
}

/// `ferrocorn.errors.AppImportError`, the class gunicorn calls `gunicorn.errors.AppImportError`.
fn app_import_error_type(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyType>> {
    Ok(PyModule::import(py, "ferrocorn.errors")?.getattr("AppImportError")?.cast_into()?)
}

fn app_import_error(py: Python<'_>, msg: String) -> PyErr {
    match app_import_error_type(py) {
        Ok(t) => PyErr::from_type(t, msg),
        Err(e) => e,
    }
}

/// Raises `new` "during handling of" `old`, as a `raise` inside an `except` block does.
fn chained(py: Python<'_>, new: PyErr, old: &PyErr) -> PyErr {
    // Setting __context__ only fails for exotic exception objects; the error stands anyway.
    let _ = new.value(py).setattr("__context__", old.value(py));
    new
}

/// Sets the process up as gunicorn does before importing the application: puts the
/// starting directory on `sys.path`, changes to `chdir` and puts it first on `sys.path`,
/// puts each `pythonpath` entry (made absolute) first on `sys.path`, and sets the
/// `raw_env` variables in `os.environ`.
pub fn prepare_import(py: Python<'_>, settings: &Settings, app: &AppConfig) -> PyResult<()> {
    let os = PyModule::import(py, "os")?;
    // gunicorn's first `Application.chdir()`, before the config file: the starting
    // directory goes on sys.path whatever `--chdir` says later, so `--chdir sub` still
    // imports an application that sits beside the command.
    ensure_on_sys_path(py, &crate::settings::Env::from_process().cwd.to_string_lossy())?;
    if let Some(dir) = &app.chdir {
        os.call_method1("chdir", (dir,))?;
        ensure_on_sys_path(py, dir)?;
    }
    for p in &app.pythonpath {
        let abs: String = os.getattr("path")?.call_method1("abspath", (p,))?.extract()?;
        ensure_on_sys_path(py, &abs)?;
    }
    let environ = os.getattr("environ")?;
    for (k, v) in settings.env_pairs().map_err(PyRuntimeError::new_err)? {
        environ.set_item(k, v)?;
    }
    Ok(())
}

/// Loads the application the settings name: through PasteDeploy when `paste` is set,
/// else with [`import_app`] on the `APP_MODULE` (or `wsgi_app`). Call [`prepare_import`]
/// first.
pub fn load_app<'py>(
    py: Python<'py>,
    settings: &Settings,
    app: &AppConfig,
) -> Result<Bound<'py, PyAny>, AppLoadError> {
    let uri = settings.app_uri.as_deref().unwrap_or_default();
    let loaded = if app.paste {
        settings
            .paste_global_conf()
            .map_err(PyRuntimeError::new_err)
            .and_then(|conf| load_paste_app(py, uri, &conf))
    } else {
        import_app(py, uri)
    };
    loaded.map_err(|e| AppLoadError::new(py, e))
}

/// Loads a PasteDeploy application (`config:` is prepended to a bare path; `#name`
/// selects the section), relative to the working directory, with these global defaults.
pub fn load_paste_app<'py>(
    py: Python<'py>,
    uri: &str,
    global_conf: &[(String, String)],
) -> PyResult<Bound<'py, PyAny>> {
    let uri = if uri.contains(':') { uri.to_owned() } else { format!("config:{uri}") };
    let defaults = PyDict::new(py);
    for (k, v) in global_conf {
        defaults.set_item(k, v)?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("name", py.None())?;
    kwargs.set_item("relative_to", PyModule::import(py, "os")?.call_method0("getcwd")?)?;
    kwargs.set_item("global_conf", defaults)?;
    PyModule::import(py, "paste.deploy")?.getattr("loadapp")?.call((uri,), Some(&kwargs))
}

/// gunicorn's `util.import_app`: imports `module` and returns `module.application`,
/// `module.name`, or the result of `module.factory(args)` where the arguments are Python
/// literals; raises `AppImportError` (or `ImportError` for a module that cannot be
/// imported) with gunicorn's messages.
pub fn import_app<'py>(py: Python<'py>, uri: &str) -> PyResult<Bound<'py, PyAny>> {
    let (module, obj) = uri.split_once(':').unwrap_or((uri, "application"));
    let module_obj =
        match PyModule::import(py, "importlib")?.call_method1("import_module", (module,)) {
            Ok(m) => m,
            Err(e) if e.is_instance_of::<PyImportError>(py) => {
                if module.ends_with(".py") && std::path::Path::new(module).exists() {
                    let stem = module.rsplit_once('.').map_or(module, |(s, _)| s);
                    let hint = PyImportError::new_err(format!(
                        "Failed to find application, did you mean '{stem}:{obj}'?"
                    ));
                    return Err(chained(py, hint, &e));
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };

    let ast = PyModule::import(py, "ast")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("mode", "eval")?;
    let expr = match ast.getattr("parse")?.call((obj,), Some(&kwargs)) {
        Ok(tree) => tree.getattr("body")?,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PySyntaxError>(py) => {
            let msg = format!(
                "Failed to parse {} as an attribute name or function call.",
                repr(py, obj)?
            );
            return Err(chained(py, app_import_error(py, msg), &e));
        }
        Err(e) => return Err(e),
    };

    let (name, call): (String, Option<CallArgs<'py>>) = if expr
        .is_instance(&ast.getattr("Name")?)?
    {
        (expr.getattr("id")?.extract()?, None)
    } else if expr.is_instance(&ast.getattr("Call")?)? {
        let func = expr.getattr("func")?;
        if !func.is_instance(&ast.getattr("Name")?)? {
            let msg = format!("Function reference must be a simple name: {}", repr(py, obj)?);
            return Err(app_import_error(py, msg));
        }
        match literal_args(py, &ast, &expr) {
            Ok(args) => (func.getattr("id")?.extract()?, Some(args)),
            Err(e) if e.is_instance_of::<PyValueError>(py) => {
                let msg =
                    format!("Failed to parse arguments as literal values: {}", repr(py, obj)?);
                return Err(chained(py, app_import_error(py, msg), &e));
            }
            Err(e) => return Err(e),
        }
    } else {
        let msg =
            format!("Failed to parse {} as an attribute name or function call.", repr(py, obj)?);
        return Err(app_import_error(py, msg));
    };

    let mut app = match module_obj.getattr(name.as_str()) {
        Ok(a) => a,
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => {
            let msg =
                format!("Failed to find attribute {} in {}.", repr(py, &name)?, repr(py, module)?);
            return Err(chained(py, app_import_error(py, msg), &e));
        }
        Err(e) => return Err(e),
    };

    if let Some((args, kwargs)) = call {
        app = match app.call(args.to_tuple(), Some(&kwargs)) {
            Ok(a) => a,
            Err(e) if e.is_instance_of::<PyTypeError>(py) => {
                if !called_with_wrong_args(py, &app, &e)? {
                    return Err(e);
                }
                // Python's own message for the bad call, without a traceback.
                let only = PyModule::import(py, "traceback")?
                    .call_method1("format_exception_only", (e.get_type(py), e.value(py)))?;
                let text: String =
                    PyString::new(py, "").call_method1("join", (only,))?.extract()?;
                return Err(chained(py, app_import_error(py, text.trim().to_owned()), &e));
            }
            Err(e) => return Err(e),
        };
    }

    if app.is_none() {
        let msg = format!("Failed to find application object: {}", repr(py, obj)?);
        return Err(app_import_error(py, msg));
    }
    if !app.is_callable() {
        return Err(app_import_error(py, "Application object must be callable.".to_owned()));
    }
    Ok(app)
}

/// Positional and keyword arguments for a factory call.
type CallArgs<'py> = (Bound<'py, PyList>, Bound<'py, PyDict>);

/// The positional and keyword arguments of an `ast.Call`, each through
/// `ast.literal_eval` (which raises `ValueError` for anything but a literal).
fn literal_args<'py>(
    py: Python<'py>,
    ast: &Bound<'py, PyModule>,
    call: &Bound<'py, PyAny>,
) -> PyResult<CallArgs<'py>> {
    let literal_eval = ast.getattr("literal_eval")?;
    let args = PyList::empty(py);
    for a in call.getattr("args")?.try_iter()? {
        args.append(literal_eval.call1((a?,))?)?;
    }
    let kwargs = PyDict::new(py);
    for kw in call.getattr("keywords")?.try_iter()? {
        let kw = kw?;
        kwargs.set_item(kw.getattr("arg")?, literal_eval.call1((kw.getattr("value")?,))?)?;
    }
    Ok((args, kwargs))
}

/// gunicorn's `_called_with_wrong_args`: a `TypeError` whose traceback never reaches the
/// factory's own code came from the call itself (wrong arguments), not from inside.
fn called_with_wrong_args(py: Python<'_>, f: &Bound<'_, PyAny>, err: &PyErr) -> PyResult<bool> {
    let Some(tb) = err.traceback(py) else {
        return Ok(true);
    };
    let code = f.getattr("__code__")?;
    let mut tb = tb.into_any();
    while !tb.is_none() {
        if tb.getattr("tb_frame")?.getattr("f_code")?.is(&code) {
            return Ok(false);
        }
        tb = tb.getattr("tb_next")?;
    }
    Ok(true)
}
