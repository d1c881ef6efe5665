//! The WSGI gthread worker (gunicorn's `ThreadWorker`, `-k gthread`, or `sync` with
//! `--threads` > 1): the application on the gthread engine
//! ([`crate::worker::gthread`]), which owns accepting, reading, parsing, keep-alive,
//! slow clients and writing, all without the GIL.
//!
//! ```text
//!   worker main thread: load the app (GIL), then the engine's supervisor (no GIL)
//!   each of `threads` serving threads: attached to the interpreter once, GIL released
//!     request read by the engine (no GIL; a body ≤ 64 KiB is already buffered)
//!     environ as data, pre-GIL (core::environ::build)
//!     GIL: pre_request, environ dict (template copy), app(environ, start_response),
//!          iterate the result into the connection's buffer, close(), access log,
//!          post_request
//!     GIL released around anything that may wait: a streamed body, a response larger
//!     than the buffer, sendfile
//!     response written by the engine (no GIL), next request or park
//! ```
//!
//! `wsgi.multithread` is `True`. `wsgi.input` and `start_response` hold the request's
//! [`Exchange`] behind an `Arc<Mutex<_>>` for the length of the call; the engine gets it
//! back when the application returned (objects the application kept then read nothing
//! and write nothing). Errors follow the sync worker ([`super::sync`]): an exception
//! before the response started gives the 500 page and `Error handling request METHOD
//! URI`; after it, `Error handling request` and the connection is closed.
//!
//! **Differences from the sync worker.** A request body that fails (bad chunk, client
//! gone, deadline) raises `OSError` in the application; if the application lets it
//! through, the answer is the 500 page (the sync worker answers the core's error page for
//! a framing error). The Python-level ABRT handler does not run (the worker's main thread
//! never runs Python after boot); since the main thread beats on its own, the master only
//! times out a worker whose process is frozen.

use std::io::BufRead;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferrocorn_core::access_log::{AccessRecord, EnvironLookup, HeaderLookup, NoEnviron, NoHeaders};
use ferrocorn_core::environ::{self, ConnInfo, Environ, EnvironConfig, Key, Local};
use ferrocorn_core::response::ResponseHead;
use ferrocorn_core::{Peer, ProtoConfig, RequestHead};
use pyo3::exceptions::{PyAssertionError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::app::{AppErrorKind, AppLoadError, load_app};
use super::convert::{exc_str, format_traceback, write_stream};
use super::hooks::{Hooks, RequestObj, ResponseObj, WorkerObj};
use super::sync::proto_config;
use super::wsgi::{EnvironBuilder, ErrorStream, FileWrapper, TemplateParts, latin1, to_latin1};
use crate::listen::ListenAddr;
use crate::log::Logger;
use crate::log::access::AccessLog;
use crate::settings::{Env, Settings};
use crate::worker::gthread::{self, Exchange, Failed, Handler};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR, WorkerBody, WorkerContext};

/// The WSGI gthread worker body. Built in the master (which may have preloaded the
/// application) and run in every forked worker.
#[derive(Debug)]
pub struct GthreadBody {
    settings: Settings,
    preloaded: Option<Py<PyAny>>,
    proto: Arc<ProtoConfig>,
    environ: EnvironConfig,
    sendfile: bool,
}

impl GthreadBody {
    /// A body for `settings`; `preloaded` is the application loaded in the master.
    pub fn new(settings: &Settings, preloaded: Option<Py<PyAny>>, env: &Env) -> Result<GthreadBody, String> {
        let proto = proto_config(settings)?;
        let environ = EnvironConfig {
            script_name: std::env::var("SCRIPT_NAME").unwrap_or_default().into_bytes(),
            headers: proto.headers.clone(),
            ..EnvironConfig::default()
        };
        Ok(GthreadBody { settings: settings.clone(), preloaded, proto: Arc::new(proto), environ, sendfile: settings.sendfile(env) })
    }
}

impl WorkerBody for GthreadBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        Python::attach(|py| {
            let code = run_worker(py, self, &ctx);
            let _ = write_stream(py, "stdout", "");
            let _ = write_stream(py, "stderr", "");
            code
        })
    }

    #[allow(unsafe_code)]
    fn before_fork(&self) {
        // SAFETY: called by the master's main thread, which holds the GIL (the master runs
        // inside the `ferrocorn` console script's call into the extension), just before
        // fork(2), as the C API requires.
        unsafe { pyo3::ffi::PyOS_BeforeFork() }
    }

    #[allow(unsafe_code)]
    fn after_fork_parent(&self) {
        // SAFETY: the same thread, still holding the GIL, right after fork(2) in the parent
        // (also when fork failed), pairing the `PyOS_BeforeFork` above.
        unsafe { pyo3::ffi::PyOS_AfterFork_Parent() }
    }

    #[allow(unsafe_code)]
    fn after_fork_child(&self) {
        // SAFETY: first call in the child after fork(2), by the only thread of the child,
        // which holds the GIL it held in the parent; it resets the interpreter's locks and
        // thread states as `os.fork()` does.
        unsafe { pyo3::ffi::PyOS_AfterFork_Child() }
    }
}

/// An application that failed to load in a worker, as gunicorn (and the sync worker).
fn boot_failure(py: Python<'_>, ctx: &WorkerContext, e: &AppLoadError) -> u8 {
    let msg = exc_str(py, &e.error);
    match e.kind {
        AppErrorKind::AppImport => {
            let _ = write_stream(py, "stderr", &format!("{msg}\n"));
            APP_LOAD_ERROR
        }
        AppErrorKind::Other => {
            ctx.log.error(format_args!("Exception in worker process\n{}", e.traceback.trim_end()));
            let _ = write_stream(py, "stderr", &format!("{msg}\n"));
            WORKER_BOOT_ERROR
        }
    }
}

fn run_worker(py: Python<'_>, body: &GthreadBody, ctx: &WorkerContext) -> u8 {
    let app = match &body.preloaded {
        Some(app) => app.clone_ref(py),
        None => match load_app(py, &body.settings) {
            Ok(app) => app.unbind(),
            Err(e) => return boot_failure(py, ctx, &e),
        },
    };
    let handler = match WsgiHandler::new(py, body, ctx, app) {
        Ok(h) => h,
        Err(text) => {
            let _ = write_stream(py, "stderr", &format!("{text}\n"));
            return WORKER_BOOT_ERROR;
        }
    };
    let opts = gthread::Options::from_settings(&body.settings, Arc::clone(&body.proto));
    let code = py.detach(|| gthread::serve(ctx, &handler, &opts));
    if ctx.signals.quick() {
        ctx.hooks.worker_int(&ctx.info());
    }
    code
}

// ---------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------

/// The application as a [`Handler`] of the engine.
struct WsgiHandler {
    app: Py<PyAny>,
    builder: Mutex<EnvironBuilder>,
    environ: EnvironConfig,
    locals: Vec<Local>,
    /// The access log (a line at a time, under the GIL).
    access: Option<Mutex<AccessLog>>,
    hooks: Hooks,
    obj: Py<WorkerObj>,
    log: Logger,
    pid: u32,
    sendfile: bool,
}

impl WsgiHandler {
    fn new(py: Python<'_>, body: &GthreadBody, ctx: &WorkerContext, app: Py<PyAny>) -> Result<WsgiHandler, String> {
        let s = &body.settings;
        let pyerr = |e: PyErr| format_traceback(py, &e);
        let errors = Py::new(py, ErrorStream::open(s.str("errorlog").unwrap_or("-"))).map_err(pyerr)?;
        let builder = EnvironBuilder::new(
            py,
            TemplateParts {
                errors: errors.into_bound(py).into_any(),
                multiprocess: s.int("workers") > 1,
                server_software: &body.environ.server_software,
            },
        )
        .map_err(pyerr)?;
        builder.set_constant(py, "wsgi.multithread", pyo3::types::PyBool::new(py, true).to_owned().into_any()).map_err(pyerr)?;
        let access = AccessLog::open(s.str("accesslog"), s.str("access_log_format").unwrap_or(ferrocorn_core::access_log::DEFAULT_FORMAT))?;
        let obj = WorkerObj::new(py, ctx.pid, ctx.master_pid, ctx.age, ctx.timeout.as_secs(), &ctx.log, s)
            .and_then(|o| Py::new(py, o))
            .map_err(pyerr)?;
        let locals = ctx
            .listeners
            .iter()
            .map(|l| match l.addr() {
                ListenAddr::Tcp(a) => Local::Tcp(*a),
                ListenAddr::Unix(p) => Local::Unix(p.as_os_str().as_encoded_bytes().to_vec()),
            })
            .collect();
        Ok(WsgiHandler {
            app,
            builder: Mutex::new(builder),
            environ: body.environ.clone(),
            locals,
            access: access.map(Mutex::new),
            hooks: Hooks::from_settings(py, s),
            obj,
            log: ctx.log.clone(),
            pid: ctx.pid,
            sendfile: body.sendfile,
        })
    }
}

impl std::fmt::Debug for WsgiHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsgiHandler").field("pid", &self.pid).finish_non_exhaustive()
    }
}

/// The request as `wsgi.input` and `start_response` share it.
#[derive(Debug, Default)]
struct Req {
    ex: Exchange,
    /// The head from `start_response`, written with the first body byte (until then a
    /// later `start_response(..., exc_info)` may replace it).
    head: Option<ResponseHead>,
    /// The head went into the response.
    started: bool,
    /// The application wrote body bytes on a no-body response (warned once).
    warned: bool,
}

type SharedReq = Arc<Mutex<Req>>;

fn lock<'a>(py: Python<'_>, r: &'a SharedReq) -> MutexGuard<'a, Req> {
    r.lock_py_attached(py).unwrap_or_else(PoisonError::into_inner)
}

fn io_err(e: &std::io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(n) => PyOSError::new_err((n, nix::errno::Errno::from_raw(n).desc())),
        None => PyOSError::new_err(e.to_string()),
    }
}

impl Req {
    /// Starts the response with the head from `start_response`, once.
    fn start(&mut self) -> PyResult<()> {
        if self.started {
            return Ok(());
        }
        let Some(head) = &self.head else {
            return Err(PyAssertionError::new_err("the application wrote body bytes before calling start_response()"));
        };
        self.ex.start(head).map_err(|e| io_err(&e))?;
        self.started = true;
        Ok(())
    }

    /// Writes body bytes, releasing the GIL when the socket may have to be waited for.
    fn write(&mut self, py: Python<'_>, log: &Logger, data: &[u8]) -> PyResult<()> {
        self.start()?;
        let ex = &mut self.ex;
        let warn = if ex.write_may_block(data.len()) { py.detach(|| ex.write(data)) } else { ex.write(data) }
            .map_err(|e| io_err(&e))?;
        if warn && !self.warned {
            self.warned = true;
            log.warning("WSGI app sent body bytes on a no-body response (HEAD, 1xx, 204 or 304); dropping per RFC 9110.");
        }
        Ok(())
    }

    /// Makes at least one byte of body available (or reaches the end), releasing the GIL
    /// when that means waiting for the client.
    fn fill(&mut self, py: Python<'_>) -> PyResult<usize> {
        let ex = &mut self.ex;
        let n = if ex.body_may_block() { py.detach(|| ex.fill_buf().map(|b| b.len())) } else { ex.fill_buf().map(|b| b.len()) };
        n.map_err(|e| PyOSError::new_err(format!("error reading the request body: {e}")))
    }

    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let avail = self.fill(py)?;
        if avail >= want || avail == 0 {
            let n = avail.min(want);
            let b = PyBytes::new(py, &self.ex.fill_buf().map_err(|e| io_err(&e))?[..n]);
            self.ex.consume(n);
            return Ok(b);
        }
        let mut out = Vec::new();
        while out.len() < want {
            let avail = self.fill(py)?;
            if avail == 0 {
                break;
            }
            let take = avail.min(want - out.len());
            out.extend_from_slice(&self.ex.fill_buf().map_err(|e| io_err(&e))?[..take]);
            self.ex.consume(take);
        }
        Ok(PyBytes::new(py, &out))
    }

    fn readline<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            if self.fill(py)? == 0 {
                break;
            }
            let buf = self.ex.fill_buf().map_err(|e| io_err(&e))?;
            let room = limit - out.len();
            let (take, done) = match buf.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len().min(room), false),
            };
            out.extend_from_slice(&buf[..take]);
            self.ex.consume(take);
            if done {
                break;
            }
        }
        Ok(PyBytes::new(py, &out))
    }
}

/// `wsgi.input` of the gthread worker: the body, buffered or streamed by the engine.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "ThreadInput", frozen)]
struct ThreadInput {
    req: SharedReq,
}

#[pymethods]
impl ThreadInput {
    /// Reads at most `size` bytes (all that is left when `size` is omitted or negative).
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        lock(py, &self.req).read(py, size)
    }

    /// Reads one line (at most `size` bytes).
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        lock(py, &self.req).readline(py, size)
    }

    /// Reads lines until the end, or until `hint` bytes were read.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let lines = PyList::empty(py);
        let mut total = 0usize;
        let mut r = lock(py, &self.req);
        loop {
            let line = r.readline(py, None)?;
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

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = lock(py, &self.req).readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}

/// `start_response` of the gthread worker; `write` is its bound method.
#[derive(Debug)]
#[pyclass(module = "ferrocorn.wsgi", name = "ThreadStartResponse", frozen)]
struct ThreadStartResponse {
    req: SharedReq,
    log: Logger,
}

#[pymethods]
impl ThreadStartResponse {
    /// PEP 3333's `start_response(status, response_headers, exc_info=None)`.
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let exc = exc_info.filter(|e| !e.is_none());
        {
            let r = lock(py, &slf.get().req);
            match exc {
                Some(info) if r.started => {
                    drop(r);
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
                None if r.head.is_some() => return Err(PyAssertionError::new_err("Response headers already set!")),
                _ => {}
            }
        }
        let status = to_latin1(status, "status")?;
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(headers.len().unwrap_or(4));
        for item in headers.try_iter()? {
            let item = item?;
            let t = item.cast::<PyTuple>().map_err(|_| PyTypeError::new_err("a header must be a (name, value) tuple"))?;
            if t.len() != 2 {
                return Err(PyTypeError::new_err("a header must be a (name, value) tuple"));
            }
            pairs.push((to_latin1(&t.get_item(0)?, "header name")?, to_latin1(&t.get_item(1)?, "header value")?));
        }
        let head = ResponseHead::from_app(&status, pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        lock(py, &slf.get().req).head = Some(head);
        slf.getattr(pyo3::intern!(py, "write"))
    }

    /// PEP 3333's `write(data)`.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = bytes_of(data)?;
        lock(py, &self.req).write(py, &self.log, b)
    }
}

fn bytes_of<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    match item.cast::<PyBytes>() {
        Ok(b) => Ok(b.as_bytes()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{} is not a byte",
            item.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
    }
}

fn peer_ip(peer: &Peer) -> String {
    peer.ip().map(|ip| ip.to_string()).unwrap_or_default()
}

#[allow(unsafe_code)]
fn borrow_fd<'a>(fd: i32) -> BorrowedFd<'a> {
    // SAFETY: `fd` is the `fileno()` of a file object the caller holds a reference to for
    // the whole use of the borrowed descriptor (fstat, lseek, sendfile within one call of
    // `WsgiHandler::send_file`), so the descriptor stays open meanwhile; it is only read.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `EnvironLookup` over the core's environ.
#[derive(Debug)]
struct EnvLookup<'a>(&'a Environ);

impl EnvironLookup for EnvLookup<'_> {
    fn lookup(&self, key: &str, out: &mut Vec<u8>) -> bool {
        match self.0.iter().find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(key.as_bytes())) {
            Some((_, v)) => {
                out.extend_from_slice(v);
                true
            }
            None => false,
        }
    }
}

/// What the access log and `post_request` need once the application is done.
struct Outcome {
    /// A status that replaced the application's (500 page, error page).
    replaced: Option<u16>,
}

impl Handler for WsgiHandler {
    fn handle(&self, ex: &mut Exchange) -> Result<(), Failed> {
        // Everything that needs no interpreter happens before the GIL is taken.
        let (Some(head), Some(peer)) = (ex.head(), ex.peer()) else { return Err(Failed) };
        let conn = ConnInfo { peer, local: self.locals[ex.listener()].clone(), tls: false };
        let built = environ::build(head, &conn, &self.environ);
        Python::attach(|py| self.serve(py, ex, peer, built))
    }

    fn reopen_logs(&self) {
        if let Some(access) = &self.access {
            if let Err(e) = access.lock().unwrap_or_else(PoisonError::into_inner).reopen() {
                self.log.error(e);
            }
        }
    }

    fn run_thread(&self, serve: &mut (dyn FnMut() + Send)) {
        // Attach the thread once for its life (its Python thread state stays), and
        // release the GIL while it serves: each request then only takes the GIL.
        Python::attach(|py| py.detach(serve));
    }
}

impl WsgiHandler {
    fn serve(
        &self,
        py: Python<'_>,
        ex: &mut Exchange,
        peer: Peer,
        built: Result<Environ, environ::EnvironError>,
    ) -> Result<(), Failed> {
        let head = ex.head().ok_or(Failed)?;
        let req_obj = if self.hooks.any() { request_obj(py, head, &peer).ok() } else { None };
        let pre = match (&self.hooks.pre_request, &req_obj) {
            (Some(hook), Some(r)) => hook.bind(py).call1((self.obj.bind(py), r.bind(py))).map(|_| ()),
            _ => Ok(()),
        };
        self.obj.get().count_request();
        let start = ex.started();
        let shared: SharedReq = Arc::new(Mutex::new(Req { ex: std::mem::take(ex), ..Req::default() }));
        let mut outcome = Outcome { replaced: None };
        let mut environ_dict: Option<Bound<'_, PyDict>> = None;
        let mut env_data: Option<Environ> = None;
        let result = match (pre, built) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => {
                self.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(&peer)));
                let mut out = Vec::new();
                ferrocorn_core::response::error_page(e.status(), e.reason(), &e.to_string(), &mut out);
                lock(py, &shared).ex.write_raw(&out);
                outcome.replaced = Some(e.status());
                Ok(())
            }
            (Ok(()), Ok(env)) => {
                let called = self.call_app(py, &shared, &env, &mut environ_dict);
                env_data = Some(env);
                called
            }
        };
        if let Err(err) = &result {
            outcome.replaced = self.app_error(py, &shared, err);
        }
        let mut r = lock(py, &shared);
        if result.is_ok() && outcome.replaced.is_none() && r.head.is_some() {
            if let Err(e) = r.start() {
                self.log.debug(format_args!("response: {e}"));
            }
        }
        *ex = std::mem::take(&mut r.ex);
        let head_kept = r.head.take();
        drop(r);
        self.access(ex, &peer, outcome.replaced, head_kept.as_ref(), env_data.as_ref(), start.elapsed());
        if let Some((hook, arity)) = &self.hooks.post_request {
            self.post_request(py, hook, *arity, req_obj.as_ref(), environ_dict.as_ref(), ex, head_kept.as_ref());
        }
        if result.is_err() && outcome.replaced.is_none() {
            return Err(Failed);
        }
        Ok(())
    }

    /// Builds the environ dict, calls the application and writes its response.
    fn call_app<'py>(
        &self,
        py: Python<'py>,
        shared: &SharedReq,
        env: &Environ,
        keep: &mut Option<Bound<'py, PyDict>>,
    ) -> PyResult<()> {
        let input = Bound::new(py, ThreadInput { req: Arc::clone(shared) })?.into_any();
        let environ = self.builder.lock_py_attached(py).unwrap_or_else(PoisonError::into_inner).build(py, env, input)?;
        *keep = Some(environ.clone());
        let sr = Bound::new(py, ThreadStartResponse { req: Arc::clone(shared), log: self.log.clone() })?;
        let result = self.app.bind(py).call1((environ, sr))?;
        let written = self.write_result(py, shared, &result);
        let closed = if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
            Ok(())
        } else {
            match result.getattr_opt(pyo3::intern!(py, "close")) {
                Ok(Some(close)) => close.call0().map(|_| ()),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        written.and(closed)
    }

    fn write_result(&self, py: Python<'_>, shared: &SharedReq, result: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.sendfile {
            if let Ok(w) = result.cast::<FileWrapper>() {
                if self.send_file(py, shared, w.get())? {
                    return Ok(());
                }
            }
        }
        if let Ok(list) = result.cast::<PyList>() {
            let mut r = lock(py, shared);
            for item in list.iter() {
                r.write(py, &self.log, bytes_of(&item)?)?;
            }
            return r.start();
        }
        if let Ok(tuple) = result.cast::<PyTuple>() {
            let mut r = lock(py, shared);
            for item in tuple.iter() {
                r.write(py, &self.log, bytes_of(&item)?)?;
            }
            return r.start();
        }
        for item in result.try_iter()? {
            let item = item?;
            lock(py, shared).write(py, &self.log, bytes_of(&item)?)?;
        }
        lock(py, shared).start()
    }

    /// Sends a `wsgi.file_wrapper` result with sendfile(2); `false` when its file has no
    /// usable descriptor (the caller iterates it instead).
    fn send_file(&self, py: Python<'_>, shared: &SharedReq, w: &FileWrapper) -> PyResult<bool> {
        let file = w.filelike.bind(py);
        let Ok(fileno) = file.call_method0("fileno").and_then(|f| f.extract::<i32>()) else {
            return Ok(false);
        };
        if fileno < 0 {
            return Ok(false);
        }
        if file.hasattr("flush")? {
            let _ = file.call_method0("flush");
        }
        let fd = borrow_fd(fileno);
        let Ok(st) = nix::sys::stat::fstat(fd) else { return Ok(false) };
        if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
            return Ok(false);
        }
        let Ok(offset) = nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekCur) else { return Ok(false) };
        let size = u64::try_from(st.st_size - offset).unwrap_or(0);
        let mut r = lock(py, shared);
        r.start()?;
        let count = r.ex.framing().and_then(|f| match f.body {
            ferrocorn_core::response::BodyFraming::Length(n) => Some(n.min(size)),
            _ => None,
        });
        let count = count.unwrap_or(size);
        let ex = &mut r.ex;
        py.detach(|| ex.sendfile(fd, offset as u64, count)).map_err(|e| io_err(&e))?;
        Ok(true)
    }

    /// Answers an exception of the application (or a hook); returns the status sent in
    /// place of the application's, if any.
    fn app_error(&self, py: Python<'_>, shared: &SharedReq, err: &PyErr) -> Option<u16> {
        let mut r = lock(py, shared);
        if r.ex.broken() {
            self.log.debug("Ignoring connection closed by the client");
            return None;
        }
        let method_uri = r
            .ex
            .head()
            .map(|h| format!("{} {}", String::from_utf8_lossy(h.method()), String::from_utf8_lossy(h.target())))
            .unwrap_or_default();
        let tb = format_traceback(py, err);
        if r.started {
            self.log.error(format_args!("Error handling request\n{}", tb.trim_end()));
            return None;
        }
        self.log.error(format_args!("Error handling request {method_uri}\n{}", tb.trim_end()));
        let mut out = Vec::new();
        ferrocorn_core::response::internal_error_page(&mut out);
        r.ex.write_raw(&out);
        Some(500)
    }

    fn access(
        &self,
        ex: &Exchange,
        peer: &Peer,
        replaced: Option<u16>,
        resp: Option<&ResponseHead>,
        env: Option<&Environ>,
        elapsed: std::time::Duration,
    ) {
        let Some(access) = &self.access else { return };
        let access = access.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(head) = ex.head() else { return };
        let status = replaced.or_else(|| ex.status()).or_else(|| resp.map(ResponseHead::code)).unwrap_or(500);
        let sent = if replaced.is_some() { 0 } else { ex.sent() };
        let time = access.now_text();
        let version = head.version.as_bytes();
        let ip = peer_ip(peer);
        let response_headers: &dyn HeaderLookup = match (resp, replaced) {
            (Some(h), None) => h,
            _ => &NoHeaders,
        };
        let lookup;
        let environ: &dyn EnvironLookup = match env {
            Some(e) => {
                lookup = EnvLookup(e);
                &lookup
            }
            None => &NoEnviron,
        };
        let get = |k: Key| env.and_then(|e| e.get(k));
        let http = |n: &[u8]| match env {
            Some(e) => e.get_name(n),
            None => head.header(&n[5..]),
        };
        let rec = AccessRecord {
            remote_addr: get(Key::RemoteAddr).or(Some(ip.as_bytes())),
            method: head.method(),
            raw_uri: head.target(),
            protocol: &version,
            status,
            path_info: get(Key::PathInfo).unwrap_or(head.path()),
            query: head.query(),
            sent: Some(sent),
            referer: http(b"HTTP_REFERER"),
            user_agent: http(b"HTTP_USER_AGENT"),
            authorization: http(b"HTTP_AUTHORIZATION"),
            request_time: (elapsed.as_secs(), elapsed.subsec_micros()),
            pid: self.pid,
            time: &time,
            request_headers: head as &RequestHead,
            response_headers,
            environ,
        };
        access.write(&rec);
    }

    #[allow(clippy::too_many_arguments)]
    fn post_request(
        &self,
        py: Python<'_>,
        hook: &Py<PyAny>,
        arity: usize,
        req: Option<&Py<RequestObj>>,
        environ: Option<&Bound<'_, PyDict>>,
        ex: &Exchange,
        resp: Option<&ResponseHead>,
    ) {
        let Some(req) = req else { return };
        let resp = response_obj(py, resp, ex.sent());
        let environ = environ.cloned().unwrap_or_else(|| PyDict::new(py));
        let worker = self.obj.bind(py).clone().into_any();
        let req = req.bind(py).clone().into_any();
        let called = resp.and_then(|resp| {
            let args: Vec<Bound<'_, PyAny>> = match arity {
                2 => vec![worker, req],
                3 => vec![worker, req, environ.into_any()],
                _ => vec![worker, req, environ.into_any(), resp.into_any()],
            };
            hook.bind(py).call1(PyTuple::new(py, args)?)
        });
        if let Err(e) = called {
            self.log.error(format_args!("Exception in post_request hook\n{}", format_traceback(py, &e).trim_end()));
        }
    }
}

/// The `req` of hooks.
fn request_obj(py: Python<'_>, head: &RequestHead, peer: &Peer) -> PyResult<Py<RequestObj>> {
    let headers = PyList::empty(py);
    for (n, v) in head.headers() {
        headers.append((latin1(py, &n.to_ascii_uppercase()), latin1(py, v)))?;
    }
    let remote_addr: Bound<'_, PyAny> = match peer {
        Peer::Tcp(a) => (a.ip().to_string(), a.port()).into_pyobject(py)?.into_any(),
        Peer::Unix => "".into_pyobject(py)?.into_any(),
    };
    let scheme = head.scheme.map_or("http", |s| s.as_str());
    Py::new(
        py,
        RequestObj {
            method: latin1(py, head.method()).into_any().unbind(),
            uri: latin1(py, head.target()).into_any().unbind(),
            path: latin1(py, head.path()).into_any().unbind(),
            query: latin1(py, head.query()).into_any().unbind(),
            version: (head.version.major, head.version.minor).into_pyobject(py)?.into_any().unbind(),
            headers: headers.into_any().unbind(),
            scheme: scheme.into_pyobject(py)?.into_any().unbind(),
            remote_addr: remote_addr.unbind(),
        },
    )
}

/// The `resp` of `post_request`.
fn response_obj<'py>(py: Python<'py>, head: Option<&ResponseHead>, sent: u64) -> PyResult<Bound<'py, ResponseObj>> {
    let (status, code, headers) = match head {
        Some(h) => {
            let list = PyList::empty(py);
            for (n, v) in h.headers() {
                list.append((latin1(py, n), latin1(py, v)))?;
            }
            (latin1(py, h.status()).into_any(), h.code().into_pyobject(py)?.into_any(), list.into_any())
        }
        None => (py.None().into_bound(py), py.None().into_bound(py), PyList::empty(py).into_any()),
    };
    Bound::new(py, ResponseObj { status: status.unbind(), status_code: code.unbind(), headers: headers.unbind(), sent })
}

/// The WSGI worker body of the configured worker class: [`SyncBody`](super::sync::SyncBody)
/// for `sync`, [`GthreadBody`] for `gthread` (and `sync` with `threads` > 1).
#[derive(Debug)]
pub enum WsgiBody {
    /// `-k sync`.
    Sync(super::sync::SyncBody),
    /// `-k gthread`.
    Gthread(GthreadBody),
}

/// Whether the worker class is gunicorn's gthread worker (`gthread` or the class path).
pub fn is_gthread(class: &str) -> bool {
    class == "gthread" || class.ends_with("ThreadWorker")
}

impl WsgiBody {
    /// The body for worker class `class` (as [`Settings::worker_class`] resolves it).
    pub fn new(class: &str, settings: &Settings, preloaded: Option<Py<PyAny>>, env: &Env) -> Result<WsgiBody, String> {
        if is_gthread(class) {
            GthreadBody::new(settings, preloaded, env).map(WsgiBody::Gthread)
        } else {
            super::sync::SyncBody::new(settings, preloaded, env).map(WsgiBody::Sync)
        }
    }

    fn inner(&self) -> &dyn WorkerBody {
        match self {
            WsgiBody::Sync(b) => b,
            WsgiBody::Gthread(b) => b,
        }
    }
}

impl WorkerBody for WsgiBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        self.inner().run(ctx)
    }

    fn before_fork(&self) {
        self.inner().before_fork();
    }

    fn after_fork_parent(&self) {
        self.inner().after_fork_parent();
    }

    fn after_fork_child(&self) {
        self.inner().after_fork_child();
    }
}
