//! What the two WSGI workers ([`super::sync`], [`super::gthread`]) do alike around one
//! request, whatever owns its connection: the `req` and `resp` objects of hooks and the
//! calls of `pre_request` / `post_request`, the access-log record, the application's
//! result (`bytes` items, `close()`), a `wsgi.file_wrapper` result as a regular file for
//! sendfile(2), the answer to an environ the core refused, and what is said of a request
//! its client failed ([`ClientFault`]: one line, never a traceback).

use std::os::fd::BorrowedFd;
use std::time::Duration;

use ferrocorn_core::access_log::{AccessRecord, EnvironLookup, HeaderLookup, NoEnviron, NoHeaders};
use ferrocorn_core::environ::{Environ, EnvironError, Key};
use ferrocorn_core::response::ResponseHead;
use ferrocorn_core::{Peer, RequestHead};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::convert::format_traceback;
use super::hooks::{Hooks, RequestObj, ResponseObj, WorkerObj};
use super::wsgi::{FileWrapper, latin1};
use crate::log::Logger;
use crate::log::access::AccessLog;

/// The client's IP as text (empty on a unix socket).
pub fn peer_ip(peer: &Peer) -> String {
    peer.ip().map(|ip| ip.to_string()).unwrap_or_default()
}

/// The client as the heartbeat slot records it: `ip:port`, empty on a unix socket.
pub fn peer_text(peer: &Peer) -> String {
    match peer {
        Peer::Tcp(a) => a.to_string(),
        Peer::Unix => String::new(),
    }
}

/// `METHOD URI` of a request, for `Error handling request METHOD URI`.
pub fn method_uri(head: &RequestHead) -> String {
    format!("{} {}", String::from_utf8_lossy(head.method()), String::from_utf8_lossy(head.target()))
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

/// Calls the result's `close()`, if it has one (lists and tuples have none: asking would
/// cost an `AttributeError`).
pub fn close_result(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match result.getattr_opt(pyo3::intern!(py, "close")) {
        Ok(Some(close)) => close.call0().map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Logs an environ the core refused (`Invalid request from ip=...`) and returns its
/// error page.
pub fn environ_refused(log: &Logger, peer: &Peer, e: &EnvironError) -> Vec<u8> {
    log.warning(format_args!("Invalid request from ip={}: {e}", peer_ip(peer)));
    let mut out = Vec::new();
    ferrocorn_core::response::error_page(e.status(), e.reason(), &e.to_string(), &mut out);
    out
}

/// A request that failed through its client's doing, seen as an `OSError` by the
/// application (from `wsgi.input` or from a write). When the application lets it
/// through, the worker logs one line for it, never a traceback: gunicorn's debug line
/// for a client that went away, an info line for a client that stalled past its
/// deadline (gunicorn has none: its worker is killed instead); and answers
/// [`ClientFault::page`] when nothing was sent yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// The body did not arrive within the client's deadline (`timeout`).
    BodyStalled,
    /// The client stopped reading the response: a write made no progress for `timeout`.
    ReadStalled,
    /// The client closed its side before the end of a body with a Content-Length (the
    /// core's `NoMoreData`).
    Disconnected,
    /// A socket error (its errno): reset, broken pipe, not connected, or another.
    Socket(i32),
}

impl ClientFault {
    /// The fault of a failed socket read (`writing` false) or write: a deadline, or an
    /// error of the socket (an error without an errno, such as a file shorter than
    /// announced to sendfile(2), is no fault of the client's).
    pub fn of_io(e: &std::io::Error, writing: bool) -> Option<ClientFault> {
        match (e.kind(), writing) {
            (std::io::ErrorKind::TimedOut, false) => Some(ClientFault::BodyStalled),
            (std::io::ErrorKind::TimedOut, true) => Some(ClientFault::ReadStalled),
            _ => e.raw_os_error().map(ClientFault::Socket),
        }
    }

    /// The answer when nothing was sent yet: `408 Request Timeout` for a body that did
    /// not arrive (RFC 9110 §15.5.9), the core's 400 page for an early end of the body
    /// (a client that only half-closed may still read it); nothing for a broken
    /// connection.
    pub fn page(self, timeout: Duration) -> Option<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        match self {
            ClientFault::BodyStalled => {
                let msg =
                    format!("The request body did not arrive within {} s.", timeout.as_secs());
                ferrocorn_core::response::error_page(408, "Request Timeout", &msg, &mut out);
                Some((408, out))
            }
            ClientFault::Disconnected => {
                let e = ferrocorn_core::RecvError::NoMoreData;
                ferrocorn_core::response::error_response(&e, &mut out);
                Some((e.status(), out))
            }
            ClientFault::ReadStalled | ClientFault::Socket(_) => None,
        }
    }

    /// Logs the one line of this fault. A client that went away gets gunicorn 27's debug
    /// line (`Ignoring connection reset`, `Ignoring EPIPE` (`Ignoring connection epipe`
    /// in its gthread worker), `Ignoring socket not connected`, `Ignored premature client
    /// disconnection. ...`); a stall gets an info line that names the request; any other
    /// socket error one error line (gunicorn logs `Socket error processing request.` with
    /// a traceback).
    pub fn log(
        self,
        log: &Logger,
        gthread: bool,
        peer: &Peer,
        method_uri: &str,
        timeout: Duration,
    ) {
        use nix::libc::{ECONNRESET, ENOTCONN, EPIPE};
        let ip = peer_ip(peer);
        let secs = timeout.as_secs();
        match self {
            ClientFault::BodyStalled => log.info(format_args!(
                "Request body timed out: {method_uri} from ip={ip} (timeout {secs} s)"
            )),
            ClientFault::ReadStalled => log.info(format_args!(
                "Response timed out: {method_uri} to ip={ip} read nothing (timeout {secs} s)"
            )),
            ClientFault::Disconnected => log.debug(format_args!(
                "Ignored premature client disconnection. {}",
                ferrocorn_core::RecvError::NoMoreData
            )),
            ClientFault::Socket(ECONNRESET) => log.debug("Ignoring connection reset"),
            ClientFault::Socket(ENOTCONN) => log.debug("Ignoring socket not connected"),
            ClientFault::Socket(EPIPE) if gthread => log.debug("Ignoring connection epipe"),
            ClientFault::Socket(EPIPE) => log.debug("Ignoring EPIPE"),
            ClientFault::Socket(errno) => log.error(format_args!(
                "Socket error processing request: {method_uri} from ip={ip}: {}",
                std::io::Error::from_raw_os_error(errno)
            )),
        }
    }
}

/// The regular file behind a `wsgi.file_wrapper` result, for sendfile(2).
#[derive(Debug)]
pub struct FileSource<'a> {
    /// The file's descriptor (borrowed for the length of the caller's call).
    pub fd: BorrowedFd<'a>,
    /// Where the file's position is.
    pub offset: i64,
    /// The bytes from there to the end of the file.
    pub size: u64,
}

/// The wrapped file as a regular file with a descriptor (its buffered writes flushed);
/// `None` when it has none (the caller iterates the wrapper instead).
pub fn file_source<'a>(py: Python<'_>, w: &'a FileWrapper) -> PyResult<Option<FileSource<'a>>> {
    let file = w.filelike.bind(py);
    let Ok(fileno) = file.call_method0("fileno").and_then(|f| f.extract::<i32>()) else {
        return Ok(None);
    };
    if fileno < 0 {
        return Ok(None);
    }
    // Buffered writes of the application must reach the file first.
    if file.hasattr("flush")? {
        let _ = file.call_method0("flush");
    }
    let fd = borrow_fd(fileno);
    let Ok(st) = nix::sys::stat::fstat(fd) else { return Ok(None) };
    if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
        return Ok(None);
    }
    let Ok(offset) = nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekCur) else {
        return Ok(None);
    };
    let size = u64::try_from(st.st_size - offset).unwrap_or(0);
    Ok(Some(FileSource { fd, offset, size }))
}

#[allow(unsafe_code)]
fn borrow_fd<'a>(fd: i32) -> BorrowedFd<'a> {
    // SAFETY: `fd` is the `fileno()` of the file object of a `FileWrapper` the caller
    // borrows for the whole use of the descriptor (the `'a` of [`FileSource`]: fstat,
    // lseek, sendfile within one call of the worker's `send_file`), and the wrapper holds
    // a reference to that file object, so the descriptor stays open meanwhile; it is only
    // read.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

// ---------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------

/// The `req` of hooks.
pub fn request_obj(py: Python<'_>, head: &RequestHead, peer: &Peer) -> PyResult<Py<RequestObj>> {
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
            version: (head.version.major, head.version.minor)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            headers: headers.into_any().unbind(),
            scheme: scheme.into_pyobject(py)?.into_any().unbind(),
            remote_addr: remote_addr.unbind(),
        },
    )
}

/// The `resp` of `post_request`: the head from `start_response` (if any) and the body
/// bytes sent.
pub fn response_obj<'py>(
    py: Python<'py>,
    head: Option<&ResponseHead>,
    sent: u64,
) -> PyResult<Bound<'py, ResponseObj>> {
    let (status, code, headers) = match head {
        Some(h) => {
            let list = PyList::empty(py);
            for (n, v) in h.headers() {
                list.append((latin1(py, n), latin1(py, v)))?;
            }
            (
                latin1(py, h.status()).into_any(),
                h.code().into_pyobject(py)?.into_any(),
                list.into_any(),
            )
        }
        None => (py.None().into_bound(py), py.None().into_bound(py), PyList::empty(py).into_any()),
    };
    Bound::new(
        py,
        ResponseObj {
            status: status.unbind(),
            status_code: code.unbind(),
            headers: headers.unbind(),
            sent,
        },
    )
}

/// gunicorn's default `pre_request` hook: `worker.log.debug("%s %s", req.method,
/// req.path)`, the per-request line of `--log-level debug` (bytes as latin-1, as
/// gunicorn's strings hold them). A configured `pre_request` replaces it, as in gunicorn.
pub fn log_request(log: &Logger, hooks: &Hooks, head: &RequestHead) {
    if hooks.pre_request.is_some() || !log.enabled(crate::log::Level::Debug) {
        return;
    }
    let text = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
    log.debug(format_args!("{} {}", text(head.method()), text(head.path())));
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

/// `pre_request(worker, req)`, when there is such a hook (and a `req`).
pub fn pre_request(
    py: Python<'_>,
    hooks: &Hooks,
    worker: &Py<WorkerObj>,
    req: Option<&Py<RequestObj>>,
) -> PyResult<()> {
    match (&hooks.pre_request, req) {
        (Some(hook), Some(r)) => hook.bind(py).call1((worker.bind(py), r.bind(py))).map(|_| ()),
        _ => Ok(()),
    }
}

/// Calls the `post_request` hook, if any, with as many arguments as it takes: `worker`,
/// the `req` made for `pre_request` (no call without one), the environ dict (an empty
/// dict when the application was not called) and the `resp` that `resp` makes (called
/// only when the hook takes it; it must not hold what the hook may need, such as the
/// lock of `wsgi.input`). An exception is logged (`Exception in post_request hook`) and
/// changes nothing else.
pub fn post_request<'py>(
    py: Python<'py>,
    hooks: &Hooks,
    log: &Logger,
    worker: &Py<WorkerObj>,
    req: Option<&Py<RequestObj>>,
    environ: Option<&Bound<'py, PyDict>>,
    resp: impl FnOnce() -> PyResult<Bound<'py, ResponseObj>>,
) {
    let (Some((hook, arity)), Some(req)) = (&hooks.post_request, req) else { return };
    let environ = environ.cloned().unwrap_or_else(|| PyDict::new(py));
    let worker = worker.bind(py).clone().into_any();
    let req = req.bind(py).clone().into_any();
    let called = resp().and_then(|resp| {
        let args: Vec<Bound<'_, PyAny>> = match arity {
            2 => vec![worker, req],
            3 => vec![worker, req, environ.into_any()],
            _ => vec![worker, req, environ.into_any(), resp.into_any()],
        };
        hook.bind(py).call1(PyTuple::new(py, args)?)
    });
    if let Err(e) = called {
        log.error(format_args!(
            "Exception in post_request hook\n{}",
            format_traceback(py, &e).trim_end()
        ));
    }
}

// ---------------------------------------------------------------------------------------
// The access log
// ---------------------------------------------------------------------------------------

/// A served request as the access log needs it.
#[derive(Debug)]
pub struct Served<'a> {
    /// The request head.
    pub head: &'a RequestHead,
    /// The client.
    pub peer: &'a Peer,
    /// The status sent.
    pub status: u16,
    /// Body bytes sent.
    pub sent: u64,
    /// The application's response head, when it is what was sent (not when an error page
    /// replaced it).
    pub response: Option<&'a ResponseHead>,
    /// The request's environ as data, when it was built.
    pub environ: Option<&'a Environ>,
    /// How long the request took.
    pub elapsed: Duration,
    /// The worker's pid.
    pub pid: u32,
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

/// Writes the access-log line of a served request.
pub fn write_access(access: &AccessLog, s: &Served<'_>) {
    if let Some(f) = access.forward() {
        return Python::attach(|py| super::pylog::access(py, f, s));
    }
    let head = s.head;
    let time = access.now_text();
    let version = head.version.as_bytes();
    let ip = peer_ip(s.peer);
    let response_headers: &dyn HeaderLookup = match s.response {
        Some(h) => h,
        None => &NoHeaders,
    };
    let lookup;
    let environ: &dyn EnvironLookup = match s.environ {
        Some(e) => {
            lookup = EnvLookup(e);
            &lookup
        }
        None => &NoEnviron,
    };
    let env = s.environ;
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
        status: s.status,
        path_info: get(Key::PathInfo).unwrap_or(head.path()),
        query: head.query(),
        sent: Some(s.sent),
        referer: http(b"HTTP_REFERER"),
        user_agent: http(b"HTTP_USER_AGENT"),
        authorization: http(b"HTTP_AUTHORIZATION"),
        request_time: (s.elapsed.as_secs(), s.elapsed.subsec_micros()),
        pid: s.pid,
        time: &time,
        request_headers: head,
        response_headers,
        environ,
    };
    access.write(&rec);
}
