//! The config file in CPython: gunicorn's `get_config_from_filename` and
//! `get_config_from_module_name`, and the importer behind `module.func` hook strings.

use pyo3::exceptions::{PyAttributeError, PyImportError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::{
    describe, ensure_on_sys_path, exc_str, format_traceback, to_value, write_stream,
};
use crate::settings::defs::index_of;
use crate::settings::validate::Importer;
use crate::settings::{ConfigError, ConfigSource, Env, PyObj, Value};

/// The banner gunicorn's `util.warn` prints for a config file whose name does not end in
/// `.py` or `.pyc` (the file is executed as Python all the same).
pub const NON_PY_BANNER: &str =
    "!!!\n!!! WARNING: configuration file should have a valid Python extension.\n!!!\n\n";

/// The config source and hook importer backed by the running interpreter.
#[derive(Clone, Copy, Debug, Default)]
pub struct PythonConfig;

impl ConfigSource for PythonConfig {
    fn load(&self, location: &str, env: &Env) -> Result<Vec<(String, Value)>, ConfigError> {
        Python::attach(|py| load_config(py, location, env))
    }

    fn importer(&self) -> Option<&dyn Importer> {
        Some(self)
    }
}

impl Importer for PythonConfig {
    fn import(&self, module: &str, attr: &str) -> Result<PyObj, String> {
        Python::attach(|py| {
            let builtins = PyModule::import(py, "builtins").map_err(|e| exc_str(py, &e))?;
            let kwargs = PyDict::new(py);
            let fromlist = PyList::new(py, [attr]).map_err(|e| exc_str(py, &e))?;
            kwargs.set_item("fromlist", fromlist).map_err(|e| exc_str(py, &e))?;
            let module_obj = builtins
                .getattr("__import__")
                .and_then(|f| f.call((module,), Some(&kwargs)))
                .map_err(|e| exc_str(py, &e))?;
            let obj = match module_obj.getattr(attr) {
                Ok(o) => o,
                Err(e) if e.is_instance_of::<PyAttributeError>(py) => {
                    return Err(format!("Can not load '{attr}' from '{module}'"));
                }
                Err(e) => return Err(exc_str(py, &e)),
            };
            describe(&obj).map_err(|e| exc_str(py, &e))
        })
    }

    fn call0(&self, function: &PyObj) -> Option<Result<Value, String>> {
        let f = super::convert::handle(function)?;
        Some(Python::attach(|py| {
            f.bind(py).call0().and_then(|r| to_value(&r)).map_err(|e| exc_str(py, &e))
        }))
    }
}

fn load_config(
    py: Python<'_>,
    location: &str,
    env: &Env,
) -> Result<Vec<(String, Value)>, ConfigError> {
    // gunicorn's first `Application.chdir()`: the (default) chdir, i.e. the working
    // directory, goes first on sys.path, so the config can import the project's modules.
    let other = |e: PyErr| {
        super::convert::escapes(py, &e);
        ConfigError::Other(exc_str(py, &e))
    };
    ensure_on_sys_path(py, &env.cwd.to_string_lossy()).map_err(other)?;
    let namespace = if let Some(module) = location.strip_prefix("python:") {
        // Errors propagate as `Error: <str(exc)>`, as in gunicorn. Contexts the module
        // makes for the `ssl_context` hook are watched, as a file's are.
        let watch = PyModule::import(py, "ferrocorn._ssl_context").map_err(other)?;
        watch.call_method1("watch", (true,)).map_err(other)?;
        let imported = PyModule::import(py, "importlib")
            .and_then(|m| m.call_method1("import_module", (module,)))
            .and_then(|m| Ok(m.getattr("__dict__")?.cast_into::<PyDict>()?));
        watch.call_method0("unwatch").map_err(other)?;
        imported.map_err(other)?
    } else {
        let filename = location.strip_prefix("file:").unwrap_or(location);
        exec_config_file(py, filename).map_err(|e| {
            super::convert::escapes(py, &e);
            ConfigError::ConfigFileFailed {
                location: filename.to_owned(),
                traceback: format_traceback(py, &e),
            }
        })?
    };
    let mut values = Vec::new();
    for (k, v) in namespace.iter() {
        let Ok(name) = k.extract::<String>() else {
            continue;
        };
        // Only names that are exactly setting names are applied; the rest of the
        // module (imports, helpers, upper-case constants) is ignored.
        if index_of(&name).is_none() {
            continue;
        }
        let value = to_value(&v).map_err(other)?;
        values.push((name, value));
    }
    Ok(values)
}

/// Executes a config file as the module `__config__` (registered in `sys.modules`) and
/// returns its namespace.
fn exec_config_file<'py>(py: Python<'py>, filename: &str) -> PyResult<Bound<'py, PyDict>> {
    const NAME: &str = "__config__";
    let ext: String = PyModule::import(py, "os.path")?
        .call_method1("splitext", (filename,))?
        .get_item(1)?
        .extract()?;
    let util = PyModule::import(py, "importlib.util")?;
    let spec = if ext == ".py" || ext == ".pyc" {
        util.call_method1("spec_from_file_location", (NAME, filename))?
    } else {
        write_stream(py, "stderr", NON_PY_BANNER)?;
        let loader = PyModule::import(py, "importlib.machinery")?
            .getattr("SourceFileLoader")?
            .call1((NAME, filename))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("loader", loader)?;
        util.getattr("spec_from_file_location")?.call((NAME, filename), Some(&kwargs))?
    };
    if spec.is_none() {
        return Err(PyImportError::new_err(format!("cannot load a config module from {filename}")));
    }
    let module = util.call_method1("module_from_spec", (&spec,))?;
    PyModule::import(py, "sys")?.getattr("modules")?.set_item(NAME, &module)?;
    // Contexts the file makes for the `ssl_context` hook are watched (`super::ssl_context`).
    let watch = PyModule::import(py, "ferrocorn._ssl_context")?;
    watch.call_method1("watch", (true,))?;
    let ran = spec.getattr("loader")?.call_method1("exec_module", (&module,));
    watch.call_method0("unwatch")?;
    ran?;
    Ok(module.getattr("__dict__")?.cast_into::<PyDict>()?)
}
