//! The WSGI objects of one request (PEP 3333), whichever worker serves it: the environ
//! dict ([`EnvironBuilder`]), `wsgi.input` ([`Input`] over a [`BodyRead`]),
//! `start_response` and `write` ([`StartResponse`] over a [`ResponseSink`]),
//! `wsgi.early_hints`, `wsgi.file_wrapper`, `wsgi.errors`, and the latin-1 strings PEP
//! 3333 speaks in.
//!
//! The objects share the request's connection state with the worker through an
//! `Arc<Mutex<_>>`, locked with `lock_py_attached` ([`lock_any`]: never held while
//! waiting for the GIL, so an application thread cannot deadlock the worker). The sync
//! worker's state is [`super::blocking::BlockingExchange`], the gthread worker's
//! [`super::gthread`]'s request around the engine's exchange.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferrocorn_core::environ::{Environ, Key, Name};
use ferrocorn_core::response::{self, ResponseHead};
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// The `Server` header value (gunicorn writes `Server: gunicorn`).
pub const SERVER: &[u8] = b"ferrocorn";

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

/// Bytes as a latin-1 `str` (PEP 3333's "native string").
pub fn latin1<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(b) {
        Ok(s) if b.is_ascii() => PyString::new(py, s),
        _ => PyString::new(py, &b.iter().map(|&c| char::from(c)).collect::<String>()),
    }
}

/// A `str` as latin-1 bytes; characters above U+00FF are an error (PEP 3333).
pub fn to_latin1(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(obj)))
    })?;
    let s = s.to_str()?;
    if s.is_ascii() {
        return Ok(s.as_bytes().to_vec());
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| PyValueError::new_err(format!("{what} is not latin-1: {s:?}")))
}

/// An item of the application's result (or of `write`) as bytes.
pub fn bytes_of<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    match item.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes()),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{} is not a byte",
            item.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
    }
}

/// gunicorn's warning when the application sends body bytes on a response that has none
/// (HEAD, 1xx, 204, 304), once per response. gunicorn logs it through a logger of its
/// own that has no handler (`gunicorn.http.wsgi`), so Python's last-resort handler
/// prints the bare message on stderr: no timestamp, whatever `--log-level` and
/// `--error-logfile` say. The same line goes to the same place here.
pub fn warn_no_body(method: &[u8], status: u16) {
    use std::io::Write;
    let method: String = method.iter().map(|&c| char::from(c)).collect();
    let line = format!(
        "WSGI app sent body bytes on a no-body response (method={method} status={status}); dropping per RFC 9110.\n"
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".to_owned())
}

// ---------------------------------------------------------------------------------------
// The environ
// ---------------------------------------------------------------------------------------

/// The longest value the per-key caches keep.
const CACHE_VALUE_MAX: usize = 256;
/// How many distinct `HTTP_*` names the cache keeps.
const CACHE_NAMES_MAX: usize = 256;

#[derive(Debug)]
struct Cached {
    bytes: Vec<u8>,
    value: Py<PyString>,
}

#[derive(Debug)]
struct HttpName {
    key: Py<PyString>,
    last: Option<Cached>,
}

/// Builds environ dicts: a template of the constant entries (`dict.copy()` per request),
/// interned keys for every [`Key`], and for each key (and each `HTTP_*` name) the last
/// value seen, reused when the next request has the same bytes (methods, protocols,
/// server names, hosts, user agents repeat).
#[derive(Debug)]
pub struct EnvironBuilder {
    template: Py<PyDict>,
    keys: Vec<Py<PyString>>,
    last: Vec<Option<Cached>>,
    http: std::collections::HashMap<Vec<u8>, HttpName>,
    input_key: Py<PyString>,
}

/// What the constant part of the environ holds.
#[derive(Debug)]
pub struct TemplateParts<'py> {
    /// `wsgi.errors`.
    pub errors: Bound<'py, PyAny>,
    /// `wsgi.multiprocess` (`workers > 1`).
    pub multiprocess: bool,
    /// `SERVER_SOFTWARE`.
    pub server_software: &'py str,
}

impl EnvironBuilder {
    /// The builder for one worker.
    pub fn new(py: Python<'_>, parts: TemplateParts<'_>) -> PyResult<EnvironBuilder> {
        let t = PyDict::new(py);
        t.set_item("wsgi.errors", parts.errors)?;
        t.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        t.set_item("wsgi.multithread", false)?;
        t.set_item("wsgi.multiprocess", parts.multiprocess)?;
        t.set_item("wsgi.run_once", false)?;
        t.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        t.set_item("wsgi.input_terminated", true)?;
        t.set_item("SERVER_SOFTWARE", parts.server_software)?;
        Ok(EnvironBuilder {
            template: t.unbind(),
            keys: Key::ALL.iter().map(|k| PyString::intern(py, k.as_str()).unbind()).collect(),
            last: Key::ALL.iter().map(|_| None).collect(),
            http: std::collections::HashMap::new(),
            input_key: PyString::intern(py, "wsgi.input").unbind(),
        })
    }

    fn value<'py>(
        py: Python<'py>,
        slot: &mut Option<Cached>,
        bytes: &[u8],
    ) -> Bound<'py, PyString> {
        if let Some(c) = slot {
            if c.bytes == bytes {
                return c.value.bind(py).clone();
            }
        }
        let v = latin1(py, bytes);
        if bytes.len() <= CACHE_VALUE_MAX {
            *slot = Some(Cached { bytes: bytes.to_vec(), value: v.clone().unbind() });
        }
        v
    }

    /// Sets a constant entry of the template (the gthread worker says
    /// `wsgi.multithread: True`).
    pub fn set_constant(&self, py: Python<'_>, key: &str, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.template.bind(py).set_item(key, value)
    }

    /// The environ dict of a request, with `wsgi.input` set to `input`.
    pub fn build<'py>(
        &mut self,
        py: Python<'py>,
        env: &Environ,
        input: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = self.template.bind(py).copy()?;
        for (name, value) in env.iter() {
            match name {
                Name::Key(Key::ServerSoftware) => {}
                Name::Key(k) => {
                    let v = Self::value(py, &mut self.last[k.index()], value);
                    d.set_item(self.keys[k.index()].bind(py), v)?;
                }
                Name::Http(n) => {
                    if !self.http.contains_key(n) && self.http.len() >= CACHE_NAMES_MAX {
                        d.set_item(latin1(py, n), latin1(py, value))?;
                        continue;
                    }
                    let entry = self.http.entry(n.to_vec()).or_insert_with(|| HttpName {
                        key: PyString::intern(py, &String::from_utf8_lossy(n)).unbind(),
                        last: None,
                    });
                    let v = Self::value(py, &mut entry.last, value);
                    d.set_item(entry.key.bind(py), v)?;
                }
            }
        }
        d.set_item(self.input_key.bind(py), input)?;
        Ok(d)
    }
}

/// Locks what a request's Python objects share with the worker without holding the GIL
/// while waiting (a poisoned lock is taken as it is).
pub fn lock_any<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    m.lock_py_attached(py).unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// wsgi.input
// ---------------------------------------------------------------------------------------

/// The byte count a `read(size)` or `readline(size)` asks for: `None` or a negative size
/// means all that is left.
pub fn size_limit(size: Option<isize>) -> usize {
    match size {
        Some(n) if n >= 0 => n as usize,
        _ => usize::MAX,
    }
}

/// A request body as `wsgi.input` reads it (the sync worker's
/// [`super::blocking::BlockingExchange`], the
/// gthread worker's request), shared as `Arc<Mutex<_>>` with the worker.
pub trait BodyRead: Send + std::fmt::Debug {
    /// Reads at most `size` bytes (all that is left when `size` is `None` or negative).
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>>;
    /// Reads one line (at most `size` bytes).
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>>;
}

/// `wsgi.input` of a worker's request, locked for each call.
pub trait InputSource: Send + Sync + std::fmt::Debug {
    /// [`BodyRead::read`].
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>>;
    /// [`BodyRead::readline`].
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>>;
    /// Reads lines until the end, or until `hint` bytes were read (see [`readlines`]).
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>>;
}

impl<T: BodyRead> InputSource for Arc<Mutex<T>> {
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        lock_any(py, self).read(py, size)
    }

    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        lock_any(py, self).readline(py, size)
    }

    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let mut body = lock_any(py, self);
        readlines(py, hint, || body.readline(py, None))
    }
}

/// `wsgi.input`: the request body, decoded (chunked included), streamed from the socket.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "Input", frozen)]
pub struct Input {
    src: Box<dyn InputSource>,
}

impl Input {
    /// The input of a request.
    pub fn new(src: impl InputSource + 'static) -> Input {
        Input { src: Box::new(src) }
    }
}

#[pymethods]
impl Input {
    /// Reads at most `size` bytes (all that is left when `size` is omitted or negative).
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.src.read(py, size)
    }

    /// Reads one line (at most `size` bytes).
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.src.readline(py, size)
    }

    /// Reads lines until the end, or until `hint` bytes were read.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        self.src.readlines(py, hint)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.src.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}

/// `readlines(hint)` of a `wsgi.input` (both workers): lines from `readline` until an
/// empty one, or until `hint` bytes were read.
pub fn readlines<'py>(
    py: Python<'py>,
    hint: Option<isize>,
    mut readline: impl FnMut() -> PyResult<Bound<'py, PyBytes>>,
) -> PyResult<Bound<'py, PyList>> {
    let lines = PyList::empty(py);
    let mut total = 0usize;
    loop {
        let line = readline()?;
        let n = line.as_bytes().len();
        if n == 0 {
            break;
        }
        lines.append(line)?;
        total += n;
        if matches!(hint, Some(h) if h > 0 && total >= h as usize) {
            break;
        }
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------
// start_response and write
// ---------------------------------------------------------------------------------------

/// What `start_response` and `write` act on: the response of a worker's request
/// (the sync worker's [`super::blocking::BlockingExchange`], the gthread worker's request).
pub trait ResponseSink: Send + Sync + std::fmt::Debug {
    /// Whether the head went out, and whether `start_response` was called before.
    fn state(&self, py: Python<'_>) -> (bool, bool);
    /// Keeps the head of `start_response` (sent with the first body bytes).
    fn set_head(&self, py: Python<'_>, head: ResponseHead);
    /// PEP 3333's `write(data)`.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()>;
    /// The request's HTTP version.
    fn request_version(&self, py: Python<'_>) -> ferrocorn_core::Version;
    /// Writes an interim response (`103 Early Hints`) at once; nothing once the final
    /// head is out.
    fn send_interim(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()>;
}

/// `environ['wsgi.early_hints']` (gunicorn 25+): `early_hints(headers)` sends `103 Early
/// Hints` with `headers` (an iterable of `(name, value)`, `str` or `bytes`) at once,
/// before the final response; several calls send several. It does nothing for an
/// HTTP/1.0 request or once the final head went out. A bad name or value raises
/// `ValueError` and sends nothing (the bytes come from
/// [`response::encode_early_hints`]).
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "EarlyHints", frozen)]
pub struct EarlyHints {
    sink: Box<dyn ResponseSink>,
}

impl EarlyHints {
    /// Sets `wsgi.early_hints` of `environ` for the response `sink`.
    pub fn install(environ: &Bound<'_, PyDict>, sink: impl ResponseSink + 'static) -> PyResult<()> {
        let py = environ.py();
        let hints = Bound::new(py, EarlyHints { sink: Box::new(sink) })?;
        environ.set_item(pyo3::intern!(py, "wsgi.early_hints"), hints)
    }
}

/// A header name or value given to `wsgi.early_hints`: `bytes` as they are, `str` as
/// latin-1.
fn hint_bytes(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    match obj.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes().to_vec()),
        Err(_) => to_latin1(obj, what),
    }
}

#[pymethods]
impl EarlyHints {
    fn __call__(&self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.sink.state(py).0 {
            return Ok(());
        }
        let version = self.sink.request_version(py);
        if !version.at_least_11() {
            return Ok(());
        }
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for item in headers.try_iter()? {
            let parts: Vec<Bound<'_, PyAny>> = item?.try_iter()?.collect::<PyResult<_>>()?;
            let [name, value] = parts.as_slice() else {
                return Err(PyValueError::new_err(format!(
                    "an early hint must be a (name, value) pair, not {} items",
                    parts.len()
                )));
            };
            pairs.push((hint_bytes(name, "header name")?, hint_bytes(value, "header value")?));
        }
        let mut out = Vec::with_capacity(64);
        let pairs = pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
        if response::encode_early_hints(version, pairs, &mut out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?
        {
            self.sink.send_interim(py, &out)?;
        }
        Ok(())
    }
}

/// The `start_response` callable of one request; `write` is its bound method.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "StartResponse", frozen)]
pub struct StartResponse {
    sink: Box<dyn ResponseSink>,
}

impl StartResponse {
    /// The `start_response` of a request.
    pub fn new(sink: impl ResponseSink + 'static) -> StartResponse {
        StartResponse { sink: Box::new(sink) }
    }
}

#[pymethods]
impl StartResponse {
    /// PEP 3333's `start_response(status, response_headers, exc_info=None)`.
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (started, head_set) = slf.get().sink.state(py);
        let head = response_head(status, headers, exc_info, started, head_set)?;
        slf.get().sink.set_head(py, head);
        slf.getattr(pyo3::intern!(py, "write"))
    }

    /// PEP 3333's `write(data)`.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sink.write(py, bytes_of(data)?)
    }
}

/// The response head of a `start_response(status, response_headers, exc_info)` call
/// (both workers): `started` says the head went out, `head_set` that `start_response`
/// was called before. With `exc_info` after the head went out, its exception is raised
/// again; a second call without `exc_info` is an error (PEP 3333).
pub fn response_head(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    exc_info: Option<&Bound<'_, PyAny>>,
    started: bool,
    head_set: bool,
) -> PyResult<ResponseHead> {
    match exc_info.filter(|e| !e.is_none()) {
        Some(info) if started => return Err(PyErr::from_value(info.get_item(1)?)),
        None if head_set => return Err(PyAssertionError::new_err("Response headers already set!")),
        _ => {}
    }
    let status = to_latin1(status, "status")?;
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(headers.len().unwrap_or(4));
    for item in headers.try_iter()? {
        let item = item?;
        let t = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a header must be a (name, value) tuple, not {}",
                type_name(&item)
            ))
        })?;
        if t.len() != 2 {
            return Err(PyTypeError::new_err("a header must be a (name, value) tuple"));
        }
        pairs.push((
            to_latin1(&t.get_item(0)?, "header name")?,
            to_latin1(&t.get_item(1)?, "header value")?,
        ));
    }
    ResponseHead::from_app(&status, pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

// ---------------------------------------------------------------------------------------
// wsgi.file_wrapper
// ---------------------------------------------------------------------------------------

/// `wsgi.file_wrapper(filelike, blksize=8192)`: iterates the file in blocks; a result of
/// this type whose file has a real `fileno()` is sent with sendfile(2).
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "FileWrapper", frozen)]
pub struct FileWrapper {
    /// The wrapped file-like object.
    #[pyo3(get)]
    pub filelike: Py<PyAny>,
    /// The block size of iteration.
    #[pyo3(get)]
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper { filelike, blksize: blksize.max(1) }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self.filelike.bind(py).call_method1("read", (self.blksize,))?;
        Ok(data.is_truthy()?.then_some(data))
    }

    /// The legacy `__getitem__` protocol of wsgiref's FileWrapper.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        _key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = self.filelike.bind(py).call_method1("read", (self.blksize,))?;
        if data.is_truthy()? {
            Ok(data)
        } else {
            Err(pyo3::exceptions::PyIndexError::new_err("end of file"))
        }
    }

    /// Closes the file, if it can be closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// wsgi.errors
// ---------------------------------------------------------------------------------------

/// `wsgi.errors`: text written as it is into the error log (`sys.stderr` when `errorlog`
/// is `-`, else the error log file), as gunicorn's `WSGIErrorsWrapper`.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "ErrorStream", frozen)]
pub struct ErrorStream {
    file: Option<std::fs::File>,
}

impl ErrorStream {
    /// The stream for `errorlog`.
    pub fn open(errorlog: &str) -> ErrorStream {
        let file = (errorlog != "-")
            .then(|| std::fs::OpenOptions::new().create(true).append(true).open(errorlog).ok())
            .flatten();
        ErrorStream { file }
    }
}

#[pymethods]
impl ErrorStream {
    /// Writes a string.
    fn write(&self, py: Python<'_>, s: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = match s.cast::<PyString>() {
            Ok(t) => t.to_string_lossy().into_owned(),
            Err(_) => match s.cast::<PyBytes>() {
                Ok(b) => String::from_utf8_lossy(b.as_bytes()).into_owned(),
                Err(_) => return Err(PyTypeError::new_err("wsgi.errors.write() takes a str")),
            },
        };
        match &self.file {
            Some(f) => {
                let _ = (&*f).write_all(text.as_bytes());
            }
            None => {
                let err = PyModule::import(py, "sys")?.getattr("stderr")?;
                if !err.is_none() {
                    err.call_method1("write", (text,))?;
                }
            }
        }
        Ok(())
    }

    /// Writes each string of a sequence.
    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for l in lines.try_iter()? {
            self.write(py, &l?)?;
        }
        Ok(())
    }

    /// Flushes `sys.stderr` (the file is unbuffered).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        if self.file.is_none() {
            let err = PyModule::import(py, "sys")?.getattr("stderr")?;
            if !err.is_none() {
                err.call_method0("flush")?;
            }
        }
        Ok(())
    }
}
