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
//! The requests in flight are recorded in the worker's heartbeat slot (the oldest is
//! shown), and hooks get the process's one `worker` object (the one `post_fork` got).
//! What both workers do alike is in [`super::request`] and [`super::worker`].
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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferrocorn_core::Peer;
use ferrocorn_core::environ::{self, ConnInfo, Environ, EnvironConfig, Local};
use ferrocorn_core::response::ResponseHead;
use pyo3::exceptions::{PyAssertionError, PyOSError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::convert::format_traceback;
use super::hooks::{Hooks, WorkerObj};
use super::request::{self, ClientFault, Served, bytes_of, request_obj, response_obj};
use super::worker::{Common, environ_config, proto_config, setup_failed, worker_app};
use super::wsgi::{
    self, BodyRead, EarlyHints, EnvironBuilder, FileWrapper, Input, ResponseSink, StartResponse,
    io_to_py,
};
use crate::heartbeat::{Requests, monotonic_ms};
use crate::log::Logger;
use crate::log::access::AccessLog;
use crate::settings::{Env, Settings};
use crate::worker::WorkerContext;
use crate::worker::gthread::{self, Exchange, Failed, Handler};

/// The WSGI gthread worker body (run through [`super::worker::WsgiBody`]).
#[derive(Debug)]
pub struct GthreadBody {
    preloaded: Option<Py<PyAny>>,
    environ: EnvironConfig,
    sendfile: bool,
}

impl GthreadBody {
    /// A body for `settings`; `preloaded` is the application loaded in the master.
    pub fn new(
        settings: &Settings,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<GthreadBody, String> {
        let proto = proto_config(settings)?;
        let environ = environ_config(&proto);
        Ok(GthreadBody { preloaded, environ, sendfile: settings.sendfile(env) })
    }

    /// Serves in a forked worker; the exit status. The worker follows its generation's
    /// settings (a HUP reload gives new workers new ones), as the sync worker does.
    pub(super) fn run(&self, py: Python<'_>, ctx: &WorkerContext) -> u8 {
        let settings = Arc::clone(&ctx.settings);
        let app = match worker_app(py, self.preloaded.as_ref(), &settings, ctx) {
            Ok(app) => app,
            Err(code) => return code,
        };
        let proto = match proto_config(&settings) {
            Ok(proto) => Arc::new(proto),
            Err(text) => return setup_failed(py, &text),
        };
        let mut environ = self.environ.clone();
        environ.headers = proto.headers.clone();
        let stream_bodies = wants_streamed_bodies(py, &app);
        let handler = match WsgiHandler::new(py, &settings, &environ, ctx, app, self.sendfile) {
            Ok(h) => h,
            Err(text) => return setup_failed(py, &text),
        };
        let mut opts = gthread::Options::from_settings(&settings, proto);
        if stream_bodies {
            opts.spool_limit = 0;
        }
        let code = py.detach(|| gthread::serve(ctx, &handler, &opts));
        if ctx.signals.quick() {
            ctx.hooks.worker_int(&ctx.info());
        }
        code
    }
}

/// Whether the application asks for request bodies to stream (read as they arrive, the
/// application called at once) rather than be spooled before it is called: a true
/// `ferrocorn_stream_request_body` attribute on the application object.
fn wants_streamed_bodies(py: Python<'_>, app: &Py<PyAny>) -> bool {
    app.bind(py)
        .getattr("ferrocorn_stream_request_body")
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
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
    /// The `worker` object of this process (the one the server hooks got).
    obj: Py<WorkerObj>,
    /// The requests in flight, in the heartbeat slot (a timeout kill says what the
    /// worker was serving).
    requests: Requests,
    log: Logger,
    pid: u32,
    sendfile: bool,
    /// `spew`: each serving thread is traced too (the main thread inherited the trace
    /// from the master).
    spew: bool,
    /// `timeout` (for what is said of a client that stalled).
    timeout: std::time::Duration,
}

impl WsgiHandler {
    fn new(
        py: Python<'_>,
        settings: &Settings,
        environ_cfg: &EnvironConfig,
        ctx: &WorkerContext,
        app: Py<PyAny>,
        sendfile: bool,
    ) -> Result<WsgiHandler, String> {
        let Common { environ, access, hooks, obj, locals } =
            Common::new(py, ctx, settings, &environ_cfg.server_software, true)?;
        Ok(WsgiHandler {
            app,
            builder: Mutex::new(environ),
            environ: environ_cfg.clone(),
            locals,
            access: access.map(Mutex::new),
            hooks,
            obj,
            requests: Requests::new(ctx.heartbeat),
            log: ctx.log.clone(),
            pid: ctx.pid,
            timeout: ctx.timeout,
            sendfile,
            spew: settings.bool("spew"),
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
    /// Why reading the body failed, when it is the client's doing.
    fault: Option<ClientFault>,
}

type SharedReq = Arc<Mutex<Req>>;

fn lock<'a>(py: Python<'_>, r: &'a SharedReq) -> MutexGuard<'a, Req> {
    wsgi::lock_any(py, r)
}

impl Req {
    /// Starts the response with the head from `start_response`, once.
    fn start(&mut self) -> PyResult<()> {
        if self.started {
            return Ok(());
        }
        let Some(head) = &self.head else {
            return Err(PyAssertionError::new_err(
                "the application wrote body bytes before calling start_response()",
            ));
        };
        self.ex.start(head).map_err(|e| io_to_py(&e))?;
        self.started = true;
        Ok(())
    }

    /// Writes body bytes, releasing the GIL when the socket may have to be waited for.
    /// `now`: a chunk of a streamed response (yielded by an iterator, or given to
    /// `write()`), which goes out before the application is asked for the next one, with
    /// the head and whatever was buffered before it. Otherwise (the items of a list or
    /// tuple, all there at once) the bytes are buffered and go out together.
    fn write(&mut self, py: Python<'_>, data: &[u8], now: bool) -> PyResult<()> {
        self.start()?;
        let ex = &mut self.ex;
        let warn = if now {
            if data.is_empty() && !ex.pending_output() {
                Ok(false)
            } else {
                py.detach(|| ex.write_now(data))
            }
        } else if ex.write_may_block(data.len()) {
            py.detach(|| ex.write(data))
        } else {
            ex.write(data)
        }
        .map_err(|e| io_to_py(&e))?;
        if warn && !self.warned {
            self.warned = true;
            let method = self.ex.head().map_or(&b""[..], |h| h.method());
            request::warn_no_body(method, self.ex.status().unwrap_or(0));
        }
        Ok(())
    }

    /// Makes at least one byte of body available (or reaches the end), releasing the GIL
    /// when that means waiting for the client.
    fn fill(&mut self, py: Python<'_>) -> PyResult<usize> {
        let ex = &mut self.ex;
        let n = if ex.body_may_block() {
            py.detach(|| ex.fill_buf().map(|b| b.len()))
        } else {
            ex.fill_buf().map(|b| b.len())
        };
        n.map_err(|e| {
            // The engine reports the core's verdicts as `InvalidData` with their text.
            let eof = ferrocorn_core::RecvError::NoMoreData.to_string();
            self.fault = if e.kind() == std::io::ErrorKind::InvalidData && e.to_string() == eof {
                Some(ClientFault::Disconnected)
            } else {
                ClientFault::of_io(&e, false)
            };
            PyOSError::new_err(format!("error reading the request body: {e}"))
        })
    }
}

/// `wsgi.input` of the gthread worker: the body, buffered or streamed by the engine.
impl BodyRead for Req {
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let avail = self.fill(py)?;
        if avail >= want || avail == 0 {
            let n = avail.min(want);
            let b = PyBytes::new(py, &self.ex.fill_buf().map_err(|e| io_to_py(&e))?[..n]);
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
            out.extend_from_slice(&self.ex.fill_buf().map_err(|e| io_to_py(&e))?[..take]);
            self.ex.consume(take);
        }
        Ok(PyBytes::new(py, &out))
    }

    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            if self.fill(py)? == 0 {
                break;
            }
            let buf = self.ex.fill_buf().map_err(|e| io_to_py(&e))?;
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

/// What `start_response` of the gthread worker acts on.
#[derive(Debug)]
struct ThreadResponse {
    req: SharedReq,
}

impl ResponseSink for ThreadResponse {
    fn state(&self, py: Python<'_>) -> (bool, bool) {
        let r = lock(py, &self.req);
        (r.started, r.head.is_some())
    }

    fn set_head(&self, py: Python<'_>, head: ResponseHead) {
        lock(py, &self.req).head = Some(head);
    }

    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        lock(py, &self.req).write(py, data, true)
    }

    fn request_version(&self, py: Python<'_>) -> ferrocorn_core::Version {
        lock(py, &self.req).ex.head().map_or(ferrocorn_core::Version::HTTP_10, |h| h.version)
    }

    fn send_interim(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        let mut r = lock(py, &self.req);
        if r.started {
            return Ok(());
        }
        let ex = &mut r.ex;
        py.detach(|| ex.write_interim(bytes)).map_err(|e| io_to_py(&e))
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
        let _serving = self.requests.begin(
            head.method(),
            head.target(),
            request::peer_text(&peer).as_bytes(),
            monotonic_ms(),
        );
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
        Python::attach(|py| {
            if self.spew {
                let traced = PyModule::import(py, "ferrocorn.debug")
                    .and_then(|m| m.call_method0("trace_this_thread"));
                if let Err(e) = traced {
                    self.log.warning(format_args!("spew: {}", super::convert::exc_str(py, &e)));
                }
            }
            py.detach(serve)
        });
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
        request::log_request(&self.log, &self.hooks, head);
        let pre = request::pre_request(py, &self.hooks, &self.obj, req_obj.as_ref());
        self.obj.get().count_request();
        let start = ex.started();
        let shared: SharedReq =
            Arc::new(Mutex::new(Req { ex: std::mem::take(ex), ..Req::default() }));
        let mut outcome = Outcome { replaced: None };
        let mut environ_dict: Option<Bound<'_, PyDict>> = None;
        let mut env_data: Option<Environ> = None;
        let result = match (pre, built) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => {
                let out = request::environ_refused(&self.log, &peer, &e);
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
            outcome.replaced = self.app_error(py, &shared, err, &peer);
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
        self.access(
            ex,
            &peer,
            outcome.replaced,
            head_kept.as_ref(),
            env_data.as_ref(),
            start.elapsed(),
        );
        request::post_request(
            py,
            &self.hooks,
            &self.log,
            &self.obj,
            req_obj.as_ref(),
            environ_dict.as_ref(),
            || response_obj(py, head_kept.as_ref(), ex.sent()),
        );
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
        let input = Bound::new(py, Input::new(Arc::clone(shared)))?.into_any();
        let environ = self
            .builder
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner)
            .build(py, env, input)?;
        EarlyHints::install(&environ, ThreadResponse { req: Arc::clone(shared) })?;
        *keep = Some(environ.clone());
        let sr = Bound::new(py, StartResponse::new(ThreadResponse { req: Arc::clone(shared) }))?;
        let result = self.app.bind(py).call1((environ, sr))?;
        let written = self.write_result(py, shared, &result);
        written.and(request::close_result(py, &result))
    }

    fn write_result(
        &self,
        py: Python<'_>,
        shared: &SharedReq,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if self.sendfile {
            if let Ok(w) = result.cast::<FileWrapper>() {
                if self.send_file(py, shared, w.get())? {
                    return Ok(());
                }
            }
        }
        // A list or tuple is all there: its items are buffered and go out together when
        // the handler returns (head and body in one write for the common one-item list).
        if let Ok(list) = result.cast::<PyList>() {
            let mut r = lock(py, shared);
            for item in list.iter() {
                r.write(py, bytes_of(&item)?, false)?;
            }
            return r.start();
        }
        if let Ok(tuple) = result.cast::<PyTuple>() {
            let mut r = lock(py, shared);
            for item in tuple.iter() {
                r.write(py, bytes_of(&item)?, false)?;
            }
            return r.start();
        }
        // Any other iterable streams: each chunk is written before the next is asked for
        // (a generator may take its time to produce it), so the client gets it as it is
        // yielded, and a client gone fails the write, which ends the response (the
        // caller then closes the iterable).
        for item in result.try_iter()? {
            let item = item?;
            lock(py, shared).write(py, bytes_of(&item)?, true)?;
        }
        lock(py, shared).start()
    }

    /// Sends a `wsgi.file_wrapper` result with sendfile(2); `false` when its file has no
    /// usable descriptor (the caller iterates it instead).
    fn send_file(&self, py: Python<'_>, shared: &SharedReq, w: &FileWrapper) -> PyResult<bool> {
        let Some(src) = request::file_source(py, w)? else { return Ok(false) };
        let mut r = lock(py, shared);
        r.start()?;
        let count = r.ex.framing().and_then(|f| match f.body {
            ferrocorn_core::response::BodyFraming::Length(n) => Some(n.min(src.size)),
            _ => None,
        });
        let count = count.unwrap_or(src.size);
        let ex = &mut r.ex;
        py.detach(|| ex.sendfile(src.fd, src.offset as u64, count)).map_err(|e| io_to_py(&e))?;
        Ok(true)
    }

    /// Answers an exception of the application (or a hook); returns the status sent in
    /// place of the application's, if any.
    fn app_error(
        &self,
        py: Python<'_>,
        shared: &SharedReq,
        err: &PyErr,
        peer: &Peer,
    ) -> Option<u16> {
        let mut r = lock(py, shared);
        // A body the client failed to send, let through by the application (its
        // `OSError`): one line, no traceback (the sync worker does the same).
        if let Some(fault) = r.fault.filter(|_| err.is_instance_of::<PyOSError>(py)) {
            let method_uri = r.ex.head().map(request::method_uri).unwrap_or_default();
            fault.log(&self.log, true, peer, &method_uri, self.timeout);
            let (status, out) =
                fault.page(self.timeout).filter(|_| !r.started && !r.ex.broken())?;
            r.ex.write_raw(&out);
            return Some(status);
        }
        if r.ex.broken() {
            self.log.debug("Ignoring connection closed by the client");
            return None;
        }
        let method_uri = r.ex.head().map(request::method_uri).unwrap_or_default();
        let tb = format_traceback(py, err);
        if r.started {
            self.log.exception(format_args!("Error handling request\n{}", tb.trim_end()));
            return None;
        }
        self.log.exception(format_args!("Error handling request {method_uri}\n{}", tb.trim_end()));
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
        let Some(head) = ex.head() else { return };
        let status = replaced
            .or_else(|| ex.status())
            .or_else(|| resp.map(ResponseHead::code))
            .unwrap_or(500);
        if let Some(statsd) = self.log.statsd() {
            statsd.request(status, elapsed);
        }
        let Some(access) = &self.access else { return };
        let access = access.lock().unwrap_or_else(PoisonError::into_inner);
        let served = Served {
            head,
            peer,
            status,
            sent: if replaced.is_some() { 0 } else { ex.sent() },
            response: resp.filter(|_| replaced.is_none()),
            environ: env,
            elapsed,
            pid: self.pid,
        };
        request::write_access(&access, &served);
    }
}
