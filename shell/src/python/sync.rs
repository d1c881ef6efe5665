//! The WSGI sync worker (gunicorn's `SyncWorker`): one request at a time, `Connection:
//! close` on every response.
//!
//! ```text
//!   poll(listeners, signal pipe; timeout/2)      GIL released, heartbeat on every wake-up
//!   accept until EAGAIN                           GIL released
//!     read the head (core Connection)             GIL released; deadline `timeout`
//!       rejected → the core's error page, close
//!     begin_request (heartbeat slot), nr += 1
//!     pre_request(worker, req)
//!     environ dict (template copy), 100 Continue if asked
//!     app(environ, start_response) → iterate     GIL held; every write releases it
//!       list results: head + every chunk in one writev
//!       wsgi.file_wrapper with a real fileno: sendfile(2)
//!     result.close(), access log, post_request
//!     close: at once when nothing is unread, else shutdown + drain (≤ 64 KiB, ≤ 2 s)
//! ```
//!
//! An exception in the application before anything was sent gives gunicorn's 500 page and
//! `Error handling request METHOD URI` with the traceback in the error log; after the head
//! went out, `Error handling request` and the connection is closed. A body error (bad
//! chunk, client gone, deadline) raises `OSError` inside the application; if the
//! application lets it through and nothing was sent, the client gets the core's error page
//! for it (gunicorn sends nothing).

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocorn_core::access_log::{AccessRecord, EnvironLookup, HeaderLookup, NoHeaders};
use ferrocorn_core::config::{HeaderPolicy, ParserPolicy, ProxyMode, ProxyPolicy, TrustPolicy, UnderscoreHeaders};
use ferrocorn_core::environ::{self, ConnInfo, Environ, EnvironConfig, Key, Local};
use ferrocorn_core::{AllowList, Connection, Limits, Peer, ProtoConfig, RecvError, RequestHead};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::app::{AppErrorKind, AppLoadError, load_app};
use super::convert::{exc_str, format_traceback, write_stream};
use super::hooks::{Hooks, RequestObj, ResponseObj, WorkerObj};
use super::wsgi::{self, EnvironBuilder, ErrorStream, Exchange, FileWrapper, HeadResult, Input, Shared, StartResponse, TemplateParts, latin1, lock};
use crate::heartbeat::monotonic_ms;
use crate::listen::{ListenAddr, Stream};
use crate::log::access::AccessLog;
use crate::settings::{Env, Settings, Value};
use crate::worker::{APP_LOAD_ERROR, WORKER_BOOT_ERROR, WorkerBody, WorkerContext};

/// How long a closing connection may still send us bytes we discard (gunicorn's
/// `close_graceful`: 2 s, 64 KiB).
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 64 * 1024;

/// The parser policy the settings describe.
pub fn proto_config(settings: &Settings) -> Result<ProtoConfig, String> {
    let list = |name: &str| -> Vec<String> {
        match settings.get(name) {
            Value::Str(s) => s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
            v => v.as_str_list().into_iter().map(str::to_owned).collect(),
        }
    };
    let allow = |name: &str| -> Result<AllowList, String> {
        let entries = list(name);
        AllowList::from_entries(entries.iter().map(String::as_str)).map_err(|e| format!("{name}: invalid entry {:?}", e.entry))
    };
    let secure_scheme_headers = match settings.get("secure_scheme_headers") {
        Value::Dict(pairs) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_ascii_uppercase(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    let underscore = match settings.str("header_map").unwrap_or("drop") {
        "refuse" => UnderscoreHeaders::Refuse,
        "dangerous" => UnderscoreHeaders::Dangerous,
        _ => UnderscoreHeaders::Drop,
    };
    let mode = match settings.str("proxy_protocol").unwrap_or("off") {
        "v1" => ProxyMode::V1,
        "v2" => ProxyMode::V2,
        "auto" => ProxyMode::Auto,
        _ => ProxyMode::Off,
    };
    Ok(ProtoConfig {
        limits: Limits::from_gunicorn(
            settings.int("limit_request_line"),
            settings.int("limit_request_fields"),
            settings.int("limit_request_field_size"),
        ),
        parser: ParserPolicy {
            permit_obsolete_folding: settings.bool("permit_obsolete_folding"),
            strip_header_spaces: settings.bool("strip_header_spaces"),
            permit_unconventional_method: settings.bool("permit_unconventional_http_method"),
            permit_unconventional_version: settings.bool("permit_unconventional_http_version"),
            casefold_method: settings.bool("casefold_http_method"),
        },
        headers: HeaderPolicy { underscore, forwarder_headers: list("forwarder_headers") },
        trust: TrustPolicy { forwarded_allow: allow("forwarded_allow_ips")?, secure_scheme_headers },
        proxy: ProxyPolicy { mode, allow: allow("proxy_allow_ips")? },
    })
}

/// The WSGI sync worker body. Built in the master (which may have preloaded the
/// application) and run in every forked worker.
#[derive(Debug)]
pub struct SyncBody {
    preloaded: Option<Py<PyAny>>,
    environ: EnvironConfig,
    sendfile: bool,
}

impl SyncBody {
    /// A body for `settings`; `preloaded` is the application loaded in the master. The
    /// parser policy is checked here, so a bad one stops the master before it forks; each
    /// worker builds its own from its generation's settings.
    pub fn new(settings: &Settings, preloaded: Option<Py<PyAny>>, env: &Env) -> Result<SyncBody, String> {
        let proto = proto_config(settings)?;
        let environ = EnvironConfig {
            script_name: std::env::var("SCRIPT_NAME").unwrap_or_default().into_bytes(),
            headers: proto.headers.clone(),
            ..EnvironConfig::default()
        };
        Ok(SyncBody { preloaded, environ, sendfile: settings.sendfile(env) })
    }
}

impl WorkerBody for SyncBody {
    fn run(&self, ctx: WorkerContext) -> u8 {
        Python::attach(|py| {
            let code = run_worker(py, self, ctx);
            // What the application printed must not be lost with the process.
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

/// Reports an application that failed to load in a worker, as gunicorn: an
/// `AppImportError` prints its message and exits 4; anything else logs
/// `Exception in worker process` with the traceback, prints the message and exits 3.
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

fn run_worker(py: Python<'_>, body: &SyncBody, ctx: WorkerContext) -> u8 {
    let app = match &body.preloaded {
        Some(app) => app.clone_ref(py),
        None => match load_app(py, &ctx.settings) {
            Ok(app) => app.unbind(),
            Err(e) => return boot_failure(py, &ctx, &e),
        },
    };
    let mut worker = match Worker::new(py, body, ctx, app) {
        Ok(w) => w,
        Err(text) => {
            let _ = write_stream(py, "stderr", &format!("{text}\n"));
            return WORKER_BOOT_ERROR;
        }
    };
    if let Err(e) = worker.install_abort(py) {
        worker.ctx.log.warning(format_args!("ABRT stays the default action: {}", exc_str(py, &e)));
    }
    worker.ctx.booted();
    let code = worker.serve(py);
    if ABORTED.load(Ordering::Relaxed) {
        return 1;
    }
    if worker.ctx.signals.quick() {
        worker.ctx.hooks.worker_int(&worker.ctx.info());
    }
    code
}

/// Set by the Python-level ABRT handler (the master timed the worker out).
static ABORTED: AtomicBool = AtomicBool::new(false);

/// The Python-level ABRT handler (gunicorn's `handle_abort`): `worker_abort(worker)`,
/// then `SystemExit(1)` raised where the application is.
#[pyclass(module = "ferrocorn.workers", name = "AbortHandler", frozen)]
pub struct AbortHandler {
    hooks: Arc<dyn crate::arbiter::hooks::ServerHooks>,
    info: crate::arbiter::hooks::WorkerInfo,
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

struct Worker<'a> {
    body: &'a SyncBody,
    ctx: WorkerContext,
    app: Py<PyAny>,
    environ: EnvironBuilder,
    access: Option<AccessLog>,
    hooks: Hooks,
    obj: Py<WorkerObj>,
    locals: Vec<Local>,
    /// Keeps the file faulthandler writes stacks into open.
    abort_file: Option<Py<PyAny>>,
    /// The socket read buffer, lent to each exchange.
    rbuf: Vec<u8>,
    /// The parser policy of this generation's settings.
    proto: Arc<ProtoConfig>,
    /// The environ configuration of this generation's settings.
    environ_cfg: EnvironConfig,
}

/// `EnvironLookup` over the core's environ (the `wsgi.*` objects are not there).
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

/// What the end of a request needs to know.
#[derive(Debug)]
struct Done {
    /// A status that replaced the application's (500 page, error page).
    status: Option<u16>,
}

impl<'a> Worker<'a> {
    fn new(py: Python<'_>, body: &'a SyncBody, ctx: WorkerContext, app: Py<PyAny>) -> Result<Worker<'a>, String> {
        // This generation's settings (a HUP reload gives new workers new ones).
        let settings = Arc::clone(&ctx.settings);
        let s = &*settings;
        let pyerr = |e: PyErr| format_traceback(py, &e);
        // A HUP reload gives new workers new settings: the parser policy follows them.
        let proto = proto_config(s)?;
        let environ_cfg = EnvironConfig { headers: proto.headers.clone(), ..body.environ.clone() };
        let proto = Arc::new(proto);
        let errors = Py::new(py, ErrorStream::open(s.str("errorlog").unwrap_or("-"))).map_err(pyerr)?;
        let workers = s.int("workers");
        let environ = EnvironBuilder::new(
            py,
            TemplateParts { errors: errors.into_bound(py).into_any(), multiprocess: workers > 1, server_software: &body.environ.server_software },
        )
        .map_err(pyerr)?;
        let access = AccessLog::open(s.str("accesslog"), s.str("access_log_format").unwrap_or(ferrocorn_core::access_log::DEFAULT_FORMAT))?;
        // The object the server hooks of this process got (post_fork), when they made one.
        let obj = super::hooks::this_worker(py, ctx.pid, || {
            WorkerObj::new(py, ctx.pid, ctx.master_pid, ctx.age, ctx.timeout.as_secs(), &ctx.log, s)
        })
        .map_err(pyerr)?;
        let locals = ctx
            .listeners
            .iter()
            .map(|l| match l.addr() {
                ListenAddr::Tcp(a) => Local::Tcp(*a),
                ListenAddr::Unix(p) => Local::Unix(p.as_os_str().as_encoded_bytes().to_vec()),
            })
            .collect();
        Ok(Worker {
            body,
            hooks: Hooks::from_settings(py, s),
            ctx,
            app,
            environ,
            access,
            obj,
            locals,
            abort_file: None,
            rbuf: vec![0; wsgi::READ_CHUNK],
            proto,
            environ_cfg,
        })
    }

    fn alive(&self) -> bool {
        self.ctx.signals.alive() && self.obj.get().is_alive() && !ABORTED.load(Ordering::Relaxed)
    }

    /// ABRT (the master's timeout) as gunicorn handles it, plus the stacks: a Python
    /// handler that calls `worker_abort(worker)` and raises `SystemExit(1)` where the
    /// application is, and `faulthandler` writing every thread's stack into the error log
    /// first (from the C handler, so even an application stuck in C code leaves its
    /// stack).
    fn install_abort(&mut self, py: Python<'_>) -> PyResult<()> {
        let signal = PyModule::import(py, "signal")?;
        let sigabrt = signal.getattr("SIGABRT")?;
        let handler = Py::new(py, AbortHandler { hooks: Arc::clone(&self.ctx.hooks), info: self.ctx.info() })?;
        signal.call_method1("signal", (&sigabrt, handler))?;
        let file = match self.ctx.settings.str("errorlog") {
            Some(path) if path != "-" => {
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
                if let Some(Err(e)) = self.access.as_mut().map(AccessLog::reopen) {
                    self.ctx.log.error(e);
                }
            }
            if self.ctx.parent_changed() {
                self.ctx.log.info(format_args!("Parent changed, shutting down: {}", self.ctx.pid));
                return 0;
            }
            let ctx = &self.ctx;
            let polled = py.detach(|| -> nix::Result<Vec<usize>> {
                let mut fds: Vec<PollFd<'_>> = ctx.listeners.iter().map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)).collect();
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
            for i in ready {
                // Accept until the queue is empty (gunicorn's sync worker does the same).
                while self.alive() {
                    let listener = &self.ctx.listeners[i];
                    match py.detach(|| listener.accept()) {
                        Ok((stream, peer)) => {
                            self.handle(py, i, stream, peer);
                            self.ctx.heartbeat.notify();
                        }
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => break,
                        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ECONNABORTED | nix::libc::EPROTO)) => {}
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
        let client = match peer {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix => String::new(),
        };
        let conn = Connection::new(Arc::clone(&self.proto), peer);
        let timeout = if ctx.timeout.is_zero() { Duration::from_secs(30) } else { ctx.timeout };
        // Every blocking read or write returns within a beat interval, so the worker beats
        // while it waits for a client. (Set per connection: a connection inherits the
        // listener's options when its handshake completes, which can be before this
        // worker existed.)
        let _ = stream.set_read_timeout(Some(ctx.beat_interval()));
        let _ = stream.set_write_timeout(Some(ctx.beat_interval()));
        let rbuf = std::mem::take(&mut self.rbuf);
        let ex: Shared = Arc::new(Mutex::new(Exchange::new(stream, conn, rbuf, timeout, ctx.heartbeat, ctx.log.clone())));
        let mut g = lock(py, &ex);
        match g.read_head(py) {
            HeadResult::Request => {}
            HeadResult::Gone => {
                drop(g.take_stream());
                self.rbuf = g.take_buffer();
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
        ctx.heartbeat.begin_request(head.method(), head.target(), client.as_bytes(), monotonic_ms());
        let method_uri = format!("{} {}", String::from_utf8_lossy(head.method()), String::from_utf8_lossy(head.target()));
        let expect_continue = head.expect_continue;
        let req = if self.hooks.any() { request_obj(py, head, &peer).ok() } else { None };
        let conn_info = ConnInfo { peer, local: self.locals[listener].clone(), tls: false };
        let built = environ::build(head, &conn_info, &self.environ_cfg);
        drop(g);

        // gunicorn's order: pre_request, the environ, then the request is counted.
        let pre = match (&self.hooks.pre_request, &req) {
            (Some(hook), Some(r)) => hook.bind(py).call1((self.obj.bind(py), r.bind(py))).map(|_| ()),
            _ => Ok(()),
        };
        let start = Instant::now();
        let nr = self.obj.get().count_request();
        if self.ctx.max_requests > 0 && nr >= self.ctx.max_requests {
            self.ctx.log.info("Autorestarting worker after current request.");
            self.obj.get().stop();
        }
        let mut environ_dict: Option<Bound<'_, PyDict>> = None;
        let mut done = Done { status: None };
        let outcome = match (pre, built) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => {
                self.ctx.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(&peer)));
                let mut out = Vec::new();
                ferrocorn_core::response::error_page(e.status(), e.reason(), &e.to_string(), &mut out);
                lock(py, &ex).send_raw(py, &out);
                done.status = Some(e.status());
                Ok(())
            }
            (Ok(()), Ok(env)) => self.start_app(py, &ex, env, expect_continue).and_then(|d| {
                environ_dict = Some(d.clone());
                self.call_app(py, &ex, d)
            }),
        };
        if let Err(err) = outcome {
            done.status = self.app_error(py, &ex, &err, &method_uri, &peer);
        }
        let elapsed = start.elapsed();
        let ctx = &self.ctx;
        ctx.heartbeat.end_request();
        self.access(py, &ex, &peer, &done, elapsed);
        if let Some((hook, arity)) = &self.hooks.post_request {
            self.post_request(py, hook, *arity, req.as_ref(), environ_dict.as_ref(), &ex);
        }
        let mut g = lock(py, &ex);
        // Read whole: the body (if any) was consumed and nothing beyond it arrived.
        let fully_read = !g.client_gone
            && matches!(g.conn.discard_body(&mut 0), Ok(ferrocorn_core::Discard::Done))
            && g.conn.buffered() == 0;
        let stream = g.take_stream();
        self.rbuf = g.take_buffer();
        drop(g);
        close(py, ctx, stream, fully_read);
    }

    /// Builds the environ dict (and sends `100 Continue` when asked).
    fn start_app<'py>(&mut self, py: Python<'py>, ex: &Shared, env: Environ, expect_continue: bool) -> PyResult<Bound<'py, PyDict>> {
        let input = Bound::new(py, Input::new(Arc::clone(ex)))?.into_any();
        let d = self.environ.build(py, &env, input)?;
        let mut g = lock(py, ex);
        g.environ = Some(env);
        if expect_continue {
            g.send_continue(py);
        }
        Ok(d)
    }

    fn reject(&self, peer: &Peer, e: &RecvError) {
        self.ctx.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(peer)));
    }

    /// Calls the application and writes its response.
    fn call_app<'py>(&self, py: Python<'py>, ex: &Shared, environ: Bound<'py, PyDict>) -> PyResult<()> {
        let sr = Bound::new(py, StartResponse::new(Arc::clone(ex)))?;
        let result = self.app.bind(py).call1((environ, sr))?;
        let written = self.write_result(py, ex, &result);
        // Lists and tuples have no close(); asking would cost an AttributeError.
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

    fn write_result(&self, py: Python<'_>, ex: &Shared, result: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.body.sendfile {
            if let Ok(w) = result.cast::<FileWrapper>() {
                if self.send_file(py, ex, w.get())? {
                    return Ok(());
                }
            }
        }
        if result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>() {
            let items: Vec<Bound<'_, PyAny>> = result.try_iter()?.collect::<PyResult<_>>()?;
            let mut chunks: Vec<&[u8]> = Vec::with_capacity(items.len());
            for item in &items {
                chunks.push(bytes_of(item)?);
            }
            let mut g = lock(py, ex);
            if g.head.is_none() {
                return g.finish(py);
            }
            return g.send_body(py, &chunks, true);
        }
        for item in result.try_iter()? {
            let item = item?;
            let data = bytes_of(&item)?;
            lock(py, ex).send_body(py, &[data], false)?;
        }
        lock(py, ex).finish(py)
    }

    /// Sends a `wsgi.file_wrapper` result with sendfile(2); `false` when its file has no
    /// usable descriptor (the caller iterates it instead).
    fn send_file(&self, py: Python<'_>, ex: &Shared, w: &FileWrapper) -> PyResult<bool> {
        let file = w.filelike.bind(py);
        let Ok(fileno) = file.call_method0("fileno").and_then(|f| f.extract::<i32>()) else {
            return Ok(false);
        };
        if fileno < 0 {
            return Ok(false);
        }
        // Buffered writes of the application must reach the file first.
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
        let mut g = lock(py, ex);
        let count = g.writer.as_ref().and_then(|wr| wr.remaining()).unwrap_or(size);
        g.send_file(py, fd, offset, count)?;
        g.finish(py)?;
        Ok(true)
    }

    /// Answers an exception of the application (or a hook); returns the status that was
    /// sent in place of the application's, if any.
    fn app_error(&self, py: Python<'_>, ex: &Shared, err: &PyErr, method_uri: &str, peer: &Peer) -> Option<u16> {
        let mut g = lock(py, ex);
        if g.client_gone {
            self.ctx.log.debug("Ignoring connection closed by the client");
            return None;
        }
        if let Some(e) = g.body_error.clone() {
            self.ctx.log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(peer)));
            if g.headers_sent {
                return None;
            }
            let mut out = Vec::new();
            ferrocorn_core::response::error_response(&e, &mut out);
            g.send_raw(py, &out);
            return Some(e.status());
        }
        let tb = format_traceback(py, err);
        if g.headers_sent {
            self.ctx.log.error(format_args!("Error handling request\n{}", tb.trim_end()));
            g.client_gone = true;
            return None;
        }
        self.ctx.log.error(format_args!("Error handling request {method_uri}\n{}", tb.trim_end()));
        let mut out = Vec::new();
        ferrocorn_core::response::internal_error_page(&mut out);
        g.send_raw(py, &out);
        Some(500)
    }

    fn access(&self, py: Python<'_>, ex: &Shared, peer: &Peer, done: &Done, elapsed: Duration) {
        let Some(access) = &self.access else { return };
        let g = lock(py, ex);
        let Some(head) = g.conn.head() else { return };
        let status = done.status.or_else(|| g.head.as_ref().map(|h| h.code())).unwrap_or(500);
        let sent = if done.status.is_some() { 0 } else { g.writer.as_ref().map_or(0, |w| w.sent()) };
        let time = access.now_text();
        let version = head.version.as_bytes();
        let ip = peer_ip(peer);
        let response_headers: &dyn HeaderLookup = match (&g.head, done.status) {
            (Some(h), None) => h,
            _ => &NoHeaders,
        };
        let empty;
        let lookup;
        let environ: &dyn EnvironLookup = match &g.environ {
            Some(env) => {
                lookup = EnvLookup(env);
                &lookup
            }
            None => {
                empty = ferrocorn_core::access_log::NoEnviron;
                &empty
            }
        };
        let env = g.environ.as_ref();
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
            pid: self.ctx.pid,
            time: &time,
            request_headers: head as &RequestHead,
            response_headers,
            environ,
        };
        access.write(&rec);
    }

    fn post_request(&self, py: Python<'_>, hook: &Py<PyAny>, arity: usize, req: Option<&Py<RequestObj>>, environ: Option<&Bound<'_, PyDict>>, ex: &Shared) {
        let Some(req) = req else { return };
        let resp = {
            let g = lock(py, ex);
            response_obj(py, &g)
        };
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
            self.ctx.log.error(format_args!("Exception in post_request hook\n{}", format_traceback(py, &e).trim_end()));
        }
    }
}

fn bytes_of<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    match item.cast::<pyo3::types::PyBytes>() {
        Ok(b) => Ok(b.as_bytes()),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
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
    // `Worker::send_file`), so the descriptor stays open meanwhile; it is only read.
    unsafe { BorrowedFd::borrow_raw(fd) }
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
fn response_obj<'py>(py: Python<'py>, g: &Exchange) -> PyResult<Bound<'py, ResponseObj>> {
    let (status, code, headers) = match &g.head {
        Some(h) => {
            let list = PyList::empty(py);
            for (n, v) in h.headers() {
                list.append((latin1(py, n), latin1(py, v)))?;
            }
            (latin1(py, h.status()).into_any(), h.code().into_pyobject(py)?.into_any(), list.into_any())
        }
        None => (py.None().into_bound(py), py.None().into_bound(py), PyList::empty(py).into_any()),
    };
    Bound::new(
        py,
        ResponseObj {
            status: status.unbind(),
            status_code: code.unbind(),
            headers: headers.unbind(),
            sent: g.writer.as_ref().map_or(0, |w| w.sent()),
        },
    )
}

/// Closes a connection: at once when the request was read whole and nothing more is
/// waiting (the kernel then sends FIN, never RST), else as gunicorn's `close_graceful`:
/// shut down sending, discard what the client still sends (at most 64 KiB, for at most
/// 2 s), then close, so the client reads our answer rather than a reset.
fn close(py: Python<'_>, ctx: &WorkerContext, stream: Option<Stream>, fully_read: bool) {
    let Some(mut stream) = stream else { return };
    py.detach(|| {
        if fully_read {
            let mut probe = [0u8; 1];
            let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
            if let Err(nix::errno::Errno::EAGAIN) = nix::sys::socket::recv(stream.as_fd().as_raw_fd(), &mut probe, flags) {
                return;
            }
        }
        if stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let end = Instant::now() + DRAIN_TIME;
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < DRAIN_BYTES && Instant::now() < end {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                    ctx.heartbeat.notify();
                }
                Err(_) => break,
            }
        }
    });
}
