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
//! The request itself goes through the pipeline both workers share
//! ([`super::pipeline`]); this module is the gthread worker's [`Driver`] for it.
//!
//! `wsgi.multithread` is `True`. `wsgi.input` and `start_response` hold the request's
//! [`Exchange`] behind an `Arc<Mutex<_>>` (a `ThreadRequest`) for the length of the call;
//! the engine gets it back when the application returned (objects the application kept
//! then read nothing and write nothing).
//!
//! **Differences from the sync worker**, forced by the engine: a list result is buffered
//! and written when the handler returns; a body of at most 64 KiB is read before the
//! application is called. The Python-level ABRT handler does not run (the worker's main
//! thread never runs Python after boot); since the main thread beats on its own, the
//! master only times out a worker whose process is frozen.

use std::io::BufRead;
use std::sync::{Arc, Mutex, MutexGuard};

use ferrocorn_core::RecvError;
use ferrocorn_core::environ::{self, ConnInfo, EnvironConfig, Local};
use ferrocorn_core::response::ResponseHead;
use pyo3::exceptions::{PyAssertionError, PyOSError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::pipeline::{Driver, Failure, Outcome, Pipeline, Sent};
use super::pyio::io_to_py;
use super::request::{self, ClientFault, FileSource};
use super::setup::{Common, environ_config, setup_failed, worker_app};
use super::wsgi::{self, BodyRead, ResponseSink, size_limit};
use crate::heartbeat::{Requests, monotonic_ms};
use crate::settings::{Env, ServerConfig, Settings};
use crate::transport::Stream;
use crate::worker::WorkerContext;
use crate::worker::gthread::{self, BodyError, Exchange, Failed, Handler};

/// The WSGI gthread worker body (run through [`super::worker::WsgiBody`]).
#[derive(Debug)]
pub struct WsgiGthreadBody {
    preloaded: Option<Py<PyAny>>,
    environ: EnvironConfig,
    sendfile: bool,
}

impl WsgiGthreadBody {
    /// A body for `settings`; `preloaded` is the application loaded in the master.
    pub fn new(
        settings: &Settings,
        config: &ServerConfig,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<WsgiGthreadBody, String> {
        let environ = environ_config(&config.proto);
        Ok(WsgiGthreadBody { preloaded, environ, sendfile: settings.sendfile(env) })
    }

    /// Serves in a forked worker; the exit status. The worker follows its generation's
    /// settings (a HUP reload gives new workers new ones), as the sync worker does.
    pub(super) fn run(&self, py: Python<'_>, ctx: &WorkerContext) -> u8 {
        let settings = Arc::clone(&ctx.settings);
        let app = match worker_app(py, self.preloaded.as_ref(), &settings, ctx) {
            Ok(app) => app,
            Err(code) => return code,
        };
        let mut environ = self.environ.clone();
        environ.headers = ctx.config.proto.headers.clone();
        let stream_bodies = wants_streamed_bodies(py, &app);
        let handler = match WsgiHandler::new(py, &settings, &environ, ctx, app, self.sendfile) {
            Ok(h) => h,
            Err(text) => return setup_failed(py, &text),
        };
        let mut opts = gthread::Options::from_config(&ctx.config);
        opts.tls = match crate::tls_context::acceptor(&ctx.config) {
            Ok(tls) => tls,
            Err(text) => return setup_failed(py, &text),
        };
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
    pipeline: Pipeline,
    environ: EnvironConfig,
    locals: Vec<Local>,
    /// The requests in flight, in the heartbeat slot (a timeout kill says what the
    /// worker was serving).
    requests: Requests,
    /// `spew`: each serving thread is traced too (the main thread inherited the trace
    /// from the master).
    spew: bool,
    /// The listeners serve TLS (`wsgi.url_scheme` is `https`).
    tls: bool,
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
        let common = Common::new(py, ctx, settings, &environ_cfg.server_software, true)?;
        let locals = common.locals.clone();
        Ok(WsgiHandler {
            pipeline: common.pipeline(app, ctx, sendfile),
            environ: environ_cfg.clone(),
            locals,
            requests: Requests::new(ctx.heartbeat),
            spew: ctx.config.app.spew,
            tls: ctx.config.listen.is_ssl,
        })
    }
}

impl std::fmt::Debug for WsgiHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsgiHandler").field("pid", &self.pipeline.pid).finish_non_exhaustive()
    }
}

/// A request of the gthread worker, as `wsgi.input` and `start_response` share it: the
/// engine's exchange for the length of the application's call.
#[derive(Debug, Default)]
struct ThreadRequest {
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
    /// The core's verdict on a body that broke its framing.
    body_error: Option<RecvError>,
}

type SharedRequest = Arc<Mutex<ThreadRequest>>;

fn lock<'a>(py: Python<'_>, r: &'a SharedRequest) -> MutexGuard<'a, ThreadRequest> {
    wsgi::lock_any(py, r)
}

impl ThreadRequest {
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

    /// Ends the response: its head, if not sent yet (the engine ends the body).
    fn finish(&mut self) -> PyResult<()> {
        if self.head.is_none() {
            return Err(PyAssertionError::new_err(
                "the application returned without calling start_response()",
            ));
        }
        self.start()
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
            wsgi::warn_no_body(method, self.ex.status().unwrap_or(0));
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
            // The engine reports the core's verdicts inside `InvalidData` errors.
            let verdict = e.get_ref().and_then(|r| r.downcast_ref::<BodyError>());
            self.fault = match verdict {
                Some(BodyError(RecvError::NoMoreData)) => Some(ClientFault::Disconnected),
                Some(_) => None,
                None => ClientFault::of_io(&e, false),
            };
            self.body_error = verdict.map(|v| v.0.clone());
            PyOSError::new_err(format!("error reading the request body: {e}"))
        })
    }
}
/// `wsgi.input` of the gthread worker: the body, buffered or streamed by the engine.
impl BodyRead for ThreadRequest {
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = size_limit(size);
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
        let limit = size_limit(size);
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

/// What `start_response` and `wsgi.early_hints` of the gthread worker act on.
impl ResponseSink for SharedRequest {
    fn state(&self, py: Python<'_>) -> (bool, bool) {
        let r = lock(py, self);
        (r.started, r.head.is_some())
    }

    fn set_head(&self, py: Python<'_>, head: ResponseHead) {
        lock(py, self).head = Some(head);
    }

    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        lock(py, self).write(py, data, true)
    }

    fn request_version(&self, py: Python<'_>) -> ferrocorn_core::Version {
        lock(py, self).ex.head().map_or(ferrocorn_core::Version::HTTP_10, |h| h.version)
    }

    fn send_interim(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        let mut r = lock(py, self);
        if r.started {
            return Ok(());
        }
        let ex = &mut r.ex;
        py.detach(|| ex.write_interim(bytes)).map_err(|e| io_to_py(&e))
    }
}

/// The gthread worker's side of the WSGI pipeline.
impl Driver for SharedRequest {
    /// The items are buffered and go out together when the handler returns (head and
    /// body in one write for the common one-item list).
    fn write_all(&self, py: Python<'_>, chunks: &[&[u8]]) -> PyResult<()> {
        let mut r = lock(py, self);
        if r.head.is_none() {
            return r.finish();
        }
        for c in chunks {
            r.write(py, c, false)?;
        }
        r.finish()
    }

    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        lock(py, self).finish()
    }

    fn send_file(&self, py: Python<'_>, src: &FileSource<'_>) -> PyResult<()> {
        let mut r = lock(py, self);
        r.finish()?;
        let count = src.count(r.ex.framing().and_then(|f| match f.body {
            ferrocorn_core::response::BodyFraming::Length(n) => Some(n),
            _ => None,
        }));
        let ex = &mut r.ex;
        let offset = u64::try_from(src.offset).unwrap_or(0);
        py.detach(|| ex.sendfile(src.fd, offset, count)).map_err(|e| io_to_py(&e))?;
        Ok(())
    }

    fn failure(&self, py: Python<'_>) -> Failure {
        let r = lock(py, self);
        Failure {
            started: r.started,
            broken: r.ex.broken(),
            fault: r.fault,
            body_error: r.body_error.clone(),
        }
    }

    fn send_page(&self, py: Python<'_>, page: &[u8]) {
        let mut r = lock(py, self);
        if !r.started {
            r.ex.write_raw(page);
        }
    }

    /// Nothing to do: a failed request closes its connection (the handler's `Failed`).
    fn abandon(&self, _py: Python<'_>) {}

    /// INT and QUIT stop the engine, not a request.
    fn stopping(&self, _py: Python<'_>) -> bool {
        false
    }

    fn with_sent<R>(&self, py: Python<'_>, f: impl FnOnce(Sent<'_>) -> R) -> R {
        let r = lock(py, self);
        f(Sent { request: r.ex.head(), head: r.head.as_ref(), bytes: r.ex.sent() })
    }
}

impl Handler for WsgiHandler {
    fn handle(&self, ex: &mut Exchange) -> Result<(), Failed> {
        // Everything that needs no interpreter happens before the GIL is taken.
        let (Some(head), Some(peer)) = (ex.head(), ex.peer()) else { return Err(Failed) };
        let conn = ConnInfo { peer, local: self.locals[ex.listener()].clone(), tls: self.tls };
        let built = environ::build(head, &conn, &self.environ);
        let _serving = self.requests.begin(
            head.method(),
            head.target(),
            request::peer_text(&peer).as_bytes(),
            monotonic_ms(),
        );
        let started = ex.started();
        Python::attach(|py| {
            let request = {
                let Some(head) = ex.head() else { return Err(Failed) };
                let mut request = self.pipeline.request(py, head, peer, built, started);
                request.client_cert = ex.stream().and_then(Stream::client_vars);
                request
            };
            let shared: SharedRequest = Arc::new(Mutex::new(ThreadRequest {
                ex: std::mem::take(ex),
                ..Default::default()
            }));
            let outcome = self.pipeline.serve(py, &shared, request);
            // The engine gets the exchange back; objects the application kept then read
            // nothing and write nothing.
            *ex = std::mem::take(&mut lock(py, &shared).ex);
            match outcome {
                Outcome::Answered => Ok(()),
                Outcome::Failed => Err(Failed),
            }
        })
    }

    fn reopen_logs(&self) {
        self.pipeline.reopen_access();
    }

    fn run_thread(&self, serve: &mut (dyn FnMut() + Send)) {
        // Attach the thread once for its life (its Python thread state stays), and
        // release the GIL while it serves: each request then only takes the GIL.
        Python::attach(|py| {
            if self.spew {
                let traced = PyModule::import(py, "ferrocorn.debug")
                    .and_then(|m| m.call_method0("trace_this_thread"));
                if let Err(e) = traced {
                    self.pipeline
                        .log
                        .warning(format_args!("spew: {}", super::convert::exc_str(py, &e)));
                }
            }
            py.detach(serve)
        });
    }
}
