//! The WSGI sync worker (gunicorn's `SyncWorker`): one request at a time, `Connection:
//! close` on every response.
//!
//! ```text
//!   poll(listeners, signal pipe; timeout/2)      GIL released, heartbeat on every wake-up
//!   accept until EAGAIN                           GIL released, heartbeat per connection
//!     read the head (core Connection)             GIL released; deadline `timeout`,
//!                                                 heartbeat after every wait (≤ timeout/2)
//!       rejected → the core's error page, close
//!     begin_request (heartbeat slot), nr += 1
//!     pre_request(worker, req)
//!     environ dict (template copy)
//!     app(environ, start_response) → iterate     GIL held; every write releases it
//!       wsgi.input: 100 Continue (if asked) when the app first waits for the body
//!       list results: head + every chunk in one writev
//!       wsgi.file_wrapper with a real fileno: sendfile(2)
//!     result.close(), access log, post_request
//!     close: at once when nothing is unread (or the client stalled),
//!            else shutdown + drain (≤ 64 KiB, ≤ 2 s)
//! ```
//!
//! **INT and QUIT stop at once** (gunicorn's `handle_quit`): the worker's Rust handler
//! sets the quick flag, which ends any socket wait of the request (a client that reads
//! slowly, a body that trickles in; see [`super::blocking`]), and trips a Python-level
//! handler ([`QuitHandler`]) that raises `SystemExit(0)` wherever the application is (a
//! `time.sleep` in a streaming generator). The request then ends as gunicorn's does: the
//! 500 page if nothing was sent, else `Error handling request` with the `SystemExit`
//! traceback and the response cut; the iterable is closed, the access log and
//! `post_request` run, the worker calls `worker_int(worker)` and exits 0.
//!
//! An exception in the application before anything was sent gives gunicorn's 500 page and
//! `Error handling request METHOD URI` with the traceback in the error log; after the head
//! went out, `Error handling request` and the connection is closed. A body error (bad
//! chunk, client gone, deadline) raises `OSError` inside the application; if the
//! application lets it through and nothing was sent, the client gets the core's error page
//! for a framing error, `408` for a body that did not arrive in time (gunicorn sends
//! nothing). A failure that is the client's doing ([`request::ClientFault`]) is logged
//! in one line, never with a traceback.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocorn_core::environ::{self, ConnInfo, EnvironConfig, Local};
use ferrocorn_core::{Connection, Peer, ProtoConfig, RecvError};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::blocking::{self, BlockingExchange, HeadResult, Link, SharedExchange, lock};
use super::convert::{exc_str, format_traceback};
use super::pipeline::Pipeline;
use super::pyio::{self, stop_error};
use super::request::{self, ClientFault, peer_ip};
use super::setup::{Common, environ_config, setup_failed, worker_app};
use crate::heartbeat::monotonic_ms;
use crate::settings::{Env, ServerConfig, Settings};
use crate::transport::{self, Stream};
use crate::worker::WorkerContext;

/// The WSGI sync worker body (run through [`super::worker::WsgiBody`]).
#[derive(Debug)]
pub struct WsgiSyncBody {
    preloaded: Option<Py<PyAny>>,
    environ: EnvironConfig,
    sendfile: bool,
}

impl WsgiSyncBody {
    /// A body for `settings`; `preloaded` is the application loaded in the master. The
    /// parser policy is checked here, so a bad one stops the master before it forks; each
    /// worker builds its own from its generation's settings.
    pub fn new(
        settings: &Settings,
        config: &ServerConfig,
        preloaded: Option<Py<PyAny>>,
        env: &Env,
    ) -> Result<WsgiSyncBody, String> {
        Ok(WsgiSyncBody {
            preloaded,
            environ: environ_config(&config.proto),
            sendfile: settings.sendfile(env),
        })
    }

    /// Serves in a forked worker; the exit status.
    pub(super) fn run(&self, py: Python<'_>, ctx: WorkerContext) -> u8 {
        let app = match worker_app(py, self.preloaded.as_ref(), &ctx.settings, &ctx) {
            Ok(app) => app,
            Err(code) => return code,
        };
        let mut worker = match Worker::new(py, self, ctx, app) {
            Ok(w) => w,
            Err(text) => return setup_failed(py, &text),
        };
        if let Err(e) = worker.install_abort(py) {
            worker
                .ctx
                .log
                .warning(format_args!("ABRT stays the default action: {}", exc_str(py, &e)));
        }
        if let Err(e) = install_quit(py) {
            worker.ctx.log.warning(format_args!(
                "INT and QUIT do not interrupt the application: {}",
                exc_str(py, &e)
            ));
        }
        worker.ctx.booted();
        let code = worker.serve(py);
        if ABORTED.load(Ordering::Relaxed) {
            return 1;
        }
        if worker.ctx.signals.quick() {
            // Run the Python handler the signal tripped now (its `SystemExit`, if not
            // raised yet, has nowhere to go), not inside the `worker_int` hook.
            let _ = py.check_signals();
            worker.ctx.hooks.worker_int(&worker.ctx.info());
        }
        code
    }
}

/// Set by the Python-level ABRT handler (the master timed the worker out).
static ABORTED: AtomicBool = AtomicBool::new(false);

/// The Python-level ABRT handler (gunicorn's `handle_abort`): `worker_abort(worker)`,
/// then `SystemExit(1)` raised where the application is.
#[pyclass(module = "ferrocorn.workers", name = "AbortHandler", frozen)]
pub struct AbortHandler {
    hooks: Arc<dyn crate::lifecycle::ServerHooks>,
    info: crate::lifecycle::WorkerInfo,
}

impl std::fmt::Debug for AbortHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbortHandler").field("info", &self.info).finish_non_exhaustive()
    }
}

#[pymethods]
impl AbortHandler {
    fn __call__(&self, _signum: &Bound<'_, PyAny>, _frame: &Bound<'_, PyAny>) -> PyResult<()> {
        ABORTED.store(true, Ordering::Relaxed);
        self.hooks.worker_abort(&self.info);
        Err(pyo3::exceptions::PySystemExit::new_err(1))
    }
}

/// The Python-level INT/QUIT handler of the sync worker: raises `SystemExit(0)` where
/// the application is, once (gunicorn's `handle_quit`; the worker's Rust handler has set
/// the quick flag already, and `worker_int` runs when the worker loop ends).
#[pyclass(module = "ferrocorn.workers", name = "QuitHandler", frozen)]
#[derive(Debug)]
pub struct QuitHandler;

#[pymethods]
impl QuitHandler {
    fn __call__(&self, _signum: &Bound<'_, PyAny>, _frame: &Bound<'_, PyAny>) -> PyResult<()> {
        pyio::raise_stop_once()
    }
}

/// Makes INT and QUIT interrupt Python code: [`QuitHandler`] becomes Python's handler of
/// both signals, while the process keeps the worker's own (Rust) signal action, which
/// sets the quick flag, wakes the poll, and then trips the Python handler with
/// `PyErr_SetInterruptEx` (async-signal-safe). Python runs the handler in the main thread
/// at its next check: between bytecodes, or when a blocking call such as `time.sleep`
/// is interrupted.
#[allow(unsafe_code)]
fn install_quit(py: Python<'_>) -> PyResult<()> {
    use nix::libc;
    let signal = PyModule::import(py, "signal")?;
    let handler = Py::new(py, QuitHandler)?;
    for sig in [libc::SIGINT, libc::SIGQUIT] {
        let mut kept = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: reads the current action of `sig` into a zeroed `sigaction`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), kept.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        // `signal.signal` records the Python handler and installs Python's C handler...
        signal.call_method1("signal", (sig, handler.clone_ref(py)))?;
        // ...which is replaced by the worker's action again (read above, fully
        // initialised by the kernel).
        // SAFETY: `kept` is the action `sigaction` returned for this signal.
        if unsafe { libc::sigaction(sig, kept.as_ptr(), std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: `PyErr_SetInterruptEx` is async-signal-safe (Python's C API docs: "can
        // be called ... from a C signal handler"); it only trips the handler recorded above.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                pyo3::ffi::PyErr_SetInterruptEx(sig);
            })
        }?;
    }
    Ok(())
}

struct Worker {
    ctx: WorkerContext,
    /// The request pipeline (the application, hooks, access log).
    pipeline: Pipeline,
    locals: Vec<Local>,
    /// Keeps the file faulthandler writes stacks into open.
    abort_file: Option<Py<PyAny>>,
    /// The socket read buffer, lent to each exchange.
    rbuf: Vec<u8>,
    /// The parser policy of this generation's settings.
    proto: Arc<ProtoConfig>,
    /// The environ configuration of this generation's settings.
    environ_cfg: EnvironConfig,
    /// TLS (`certfile`, `keyfile`): every accepted socket is wrapped.
    tls: Option<transport::TlsAcceptor>,
}

impl Worker {
    fn new(
        py: Python<'_>,
        body: &WsgiSyncBody,
        ctx: WorkerContext,
        app: Py<PyAny>,
    ) -> Result<Worker, String> {
        // This generation's settings (a HUP reload gives new workers new ones): the parser
        // policy follows them.
        let settings = Arc::clone(&ctx.settings);
        let proto = Arc::clone(&ctx.config.proto);
        let tls = crate::tls_context::acceptor(&ctx.config)?;
        let mut environ_cfg = body.environ.clone();
        environ_cfg.headers = proto.headers.clone();
        let common = Common::new(py, &ctx, &settings, &body.environ.server_software, false)?;
        let locals = common.locals.clone();
        let mut pipeline = common.pipeline(app, &ctx, body.sendfile);
        pipeline.max_requests = ctx.max_requests;
        Ok(Worker {
            ctx,
            pipeline,
            locals,
            abort_file: None,
            rbuf: vec![0; blocking::READ_CHUNK],
            proto,
            environ_cfg,
            tls,
        })
    }
    fn alive(&self) -> bool {
        self.ctx.signals.alive()
            && self.pipeline.obj.get().is_alive()
            && !ABORTED.load(Ordering::Relaxed)
    }

    /// ABRT (the master's timeout) as gunicorn handles it, plus the stacks: a Python
    /// handler that calls `worker_abort(worker)` and raises `SystemExit(1)` where the
    /// application is, and `faulthandler` writing every thread's stack into the error log
    /// first (from the C handler, so even an application stuck in C code leaves its
    /// stack).
    fn install_abort(&mut self, py: Python<'_>) -> PyResult<()> {
        let signal = PyModule::import(py, "signal")?;
        let sigabrt = signal.getattr("SIGABRT")?;
        let handler = Py::new(
            py,
            AbortHandler { hooks: Arc::clone(&self.ctx.hooks), info: self.ctx.info() },
        )?;
        signal.call_method1("signal", (&sigabrt, handler))?;
        let file = match self.ctx.config.log.errorlog.as_str() {
            path if path != "-" => {
                let f = PyModule::import(py, "builtins")?.call_method1("open", (path, "a"))?;
                self.abort_file = Some(f.clone().unbind());
                f
            }
            _ => PyModule::import(py, "sys")?.getattr("stderr")?,
        };
        // `faulthandler.register` refuses SIGABRT; `enable` dumps on ABRT (and on SIGSEGV,
        // SIGFPE, SIGBUS, SIGILL), then re-raises it into the handler installed above.
        let kwargs = PyDict::new(py);
        kwargs.set_item("file", file)?;
        kwargs.set_item("all_threads", true)?;
        PyModule::import(py, "faulthandler")?.getattr("enable")?.call((), Some(&kwargs))?;
        Ok(())
    }

    fn serve(&mut self, py: Python<'_>) -> u8 {
        let poll_ms = u16::try_from(self.ctx.beat_interval().as_millis()).unwrap_or(u16::MAX);
        while self.alive() {
            self.ctx.heartbeat.notify();
            if self.ctx.signals.take_usr1() {
                if let Err(e) = self.ctx.log.reopen() {
                    self.ctx.log.error(e);
                }
                self.pipeline.reopen_access();
            }
            if self.ctx.parent_changed() {
                self.ctx.log.info(format_args!("Parent changed, shutting down: {}", self.ctx.pid));
                return 0;
            }
            let ctx = &self.ctx;
            let polled = py.detach(|| -> nix::Result<Vec<usize>> {
                let mut fds: Vec<PollFd<'_>> = ctx
                    .listeners
                    .iter()
                    .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
                    .collect();
                fds.push(PollFd::new(ctx.signals.wake_fd(), PollFlags::POLLIN));
                poll(&mut fds, PollTimeout::from(poll_ms))?;
                Ok(fds[..ctx.listeners.len()]
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect())
            });
            let ready = match polled {
                Ok(r) => r,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    self.ctx.log.error(format_args!("poll failed: {e}"));
                    return 1;
                }
            };
            self.ctx.signals.drain();
            // The poll may have slept most of a beat interval: beat before a client's
            // deadline starts.
            self.ctx.heartbeat.notify();
            for i in ready {
                // Accept until the queue is empty (gunicorn's sync worker does the same).
                while self.alive() {
                    let listener = &self.ctx.listeners[i];
                    match py.detach(|| listener.accept()) {
                        Ok((stream, peer)) => {
                            // The client's deadline starts now; so does a beat interval.
                            self.ctx.heartbeat.notify();
                            self.handle(py, i, stream, peer);
                            self.ctx.heartbeat.notify();
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) =>
                        {
                            break;
                        }
                        Err(e)
                            if matches!(
                                e.raw_os_error(),
                                Some(nix::libc::ECONNABORTED | nix::libc::EPROTO)
                            ) => {}
                        Err(e) => {
                            self.ctx.log.error(format_args!("accept failed: {e}"));
                            break;
                        }
                    }
                }
            }
        }
        0
    }

    /// Serves one connection (one request).
    fn handle(&mut self, py: Python<'_>, listener: usize, stream: Stream, peer: Peer) {
        let ctx = &self.ctx;
        let client = request::peer_text(&peer);
        let conn = Connection::new(Arc::clone(&self.proto), peer);
        let timeout = if ctx.timeout.is_zero() { Duration::from_secs(30) } else { ctx.timeout };
        // Every blocking read or write returns within a beat interval, so the worker beats
        // while it waits for a client. (Set per connection: a connection inherits the
        // listener's options when its handshake completes, which can be before this
        // worker existed.)
        let _ = stream.set_read_timeout(Some(ctx.beat_interval()));
        let _ = stream.set_write_timeout(Some(ctx.beat_interval()));
        // Over TLS the handshake is the first reads of the head, under the same deadline.
        let stream = match &self.tls {
            Some(tls) => match tls.wrap(stream, &peer) {
                Ok(s) => s,
                Err(e) => {
                    ctx.log.error(format_args!("TLS: {e}"));
                    return;
                }
            },
            None => stream,
        };
        let rbuf = std::mem::take(&mut self.rbuf);
        let ex: SharedExchange = Arc::new(Mutex::new(BlockingExchange::new(
            stream,
            conn,
            rbuf,
            timeout,
            ctx.beat_interval(),
            ctx.heartbeat,
            ctx.signals.quick_flag(),
        )));
        let mut g = lock(py, &ex);
        match g.read_head(py) {
            HeadResult::Request => {}
            HeadResult::Gone(e) => {
                if let Some(s) = g.stream() {
                    crate::tls_failure::before_request(&ctx.log, &peer, s, e.as_ref());
                }
                drop(g.take_stream());
                self.rbuf = g.take_buffer();
                return;
            }
            HeadResult::Stopped => {
                // gunicorn's `SystemExit` from the `recv` of the parser: the 500 page and
                // `Error handling request (no URI read)` with the exception.
                let tb = format_traceback(py, &stop_error());
                self.ctx.log.exception(format_args!(
                    "Error handling request (no URI read)\n{}",
                    tb.trim_end()
                ));
                let mut out = Vec::new();
                ferrocorn_core::response::internal_error_page(&mut out);
                g.send_raw(py, &out);
                let stream = g.take_stream();
                self.rbuf = g.take_buffer();
                drop(g);
                close(py, &self.ctx, stream, false);
                return;
            }
            HeadResult::Rejected(e) => {
                self.reject(&peer, &e);
                let mut out = Vec::new();
                ferrocorn_core::response::error_response(&e, &mut out);
                g.send_raw(py, &out);
                let stream = g.take_stream();
                self.rbuf = g.take_buffer();
                drop(g);
                close(py, &self.ctx, stream, false);
                return;
            }
        }
        let Some(head) = g.conn.head() else { return };
        ctx.heartbeat.begin_request(
            head.method(),
            head.target(),
            client.as_bytes(),
            monotonic_ms(),
        );
        let conn_info =
            ConnInfo { peer, local: self.locals[listener].clone(), tls: self.tls.is_some() };
        let built = environ::build(head, &conn_info, &self.environ_cfg);
        let mut request = self.pipeline.request(py, head, peer, built, Instant::now());
        request.client_cert = g.stream().and_then(Stream::client_vars);
        drop(g);
        self.pipeline.serve(py, &ex, request);
        let ctx = &self.ctx;
        ctx.heartbeat.end_request();
        let mut g = lock(py, &ex);
        // Read whole: the body (if any) was consumed and nothing beyond it arrived. A
        // client that stalled past its deadline is not waited for again (no drain).
        let fully_read = g.link == Link::Open
            && (g.fault == Some(ClientFault::BodyStalled)
                || matches!(g.conn.discard_body(&mut 0), Ok(ferrocorn_core::Discard::Done))
                    && g.conn.buffered() == 0);
        let stream = g.take_stream();
        self.rbuf = g.take_buffer();
        drop(g);
        close(py, ctx, stream, fully_read);
    }

    fn reject(&self, peer: &Peer, e: &RecvError) {
        self.ctx.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(peer)));
    }
}

/// Closes a connection with the GIL released ([`transport::close_graceful`]).
fn close(py: Python<'_>, ctx: &WorkerContext, stream: Option<Stream>, fully_read: bool) {
    let Some(stream) = stream else { return };
    let wait = ctx.beat_interval();
    py.detach(|| transport::close_graceful(stream, fully_read, ctx.heartbeat, wait));
}
