//! The WSGI bridge of one request (PEP 3333): the environ dict, `wsgi.input`,
//! `start_response` and `write`, `wsgi.early_hints`, `wsgi.file_wrapper`, `wsgi.errors`,
//! and the socket I/O they drive.
//!
//! One [`Exchange`] holds the connection of a request: the socket, the core's
//! [`Connection`] (which decodes the body and frames the response) and the response head.
//! `wsgi.input` ([`Input`]) and `start_response` ([`StartResponse`]) share it with the
//! worker loop through an `Arc<Mutex<_>>`, locked with `lock_py_attached` (never held while
//! waiting for the GIL, so an application thread cannot deadlock the worker). Every socket
//! call runs with the GIL released.
//!
//! **Deadlines.** The client has `timeout` seconds from `accept` to deliver its request
//! head and its body; the client gets its connection closed (head), or an `OSError` is
//! raised inside the application reading its body (and, if the application lets it
//! through, a `408`; see [`ClientFault`]). A write that makes no progress for `timeout`
//! seconds fails the same way. Every socket wait lasts at most a beat interval
//! (`timeout / 2`) and no longer than the deadline, and the worker beats whenever a wait
//! ends, with or without bytes: a client that trickles one byte just before each wait
//! would time out still lets the worker beat, so the worker is never killed for a slow
//! client. gunicorn's sync worker blocks without a deadline and is killed by the master
//! after `timeout`: the bound on a client is the same, the worker survives.
//!
//! **Expect: 100-continue.** The interim `100 Continue` goes out when the application
//! first waits for the body (PEP 3333's second way), never once the final head went
//! out: an application that answers without reading (a 401, a 413) saves the client its
//! upload.
//!
//! **Quick stop.** INT or QUIT (the worker's `quick` flag) ends every socket wait of the
//! exchange at once: the signal interrupts the blocked call (`EINTR`, the sockets have
//! timeouts) and the loop sees the flag. The call fails with `SystemExit(0)`, as
//! gunicorn's `handle_quit` raises it from the `sendall` the worker was blocked in (see
//! [`stop_error`]).

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ferrocorn_core::environ::{Environ, Key, Name};
use ferrocorn_core::response::{self, Frame, RequestInfo, ResponseHead};
use ferrocorn_core::{Connection, Event, RecvError, UsageError};
use pyo3::exceptions::{PyAssertionError, PyOSError, PySystemExit, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::request::ClientFault;
use crate::heartbeat::Slot;
use crate::listen::Stream;

/// The `Server` header value (gunicorn writes `Server: gunicorn`).
pub const SERVER: &[u8] = b"ferrocorn";

/// How many bytes one socket read asks for.
pub const READ_CHUNK: usize = 64 * 1024;

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

// ---------------------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------------------

/// How reading the request head ended.
#[derive(Debug)]
pub enum HeadResult {
    /// A request head was read (`Exchange::conn.head()`).
    Request,
    /// The client closed, timed out or failed before sending a whole head: close silently.
    Gone,
    /// The request was rejected: answer with the error page and close.
    Rejected(RecvError),
    /// INT or QUIT arrived while the head was still coming (quick stop).
    Stopped,
}

/// The connection of one request and its response state.
#[derive(Debug)]
pub struct Exchange {
    stream: Option<Stream>,
    /// The core's connection (the head stays readable through `conn.head()`).
    pub conn: Connection,
    rbuf: Vec<u8>,
    pending: Vec<u8>,
    pending_pos: usize,
    body_done: bool,
    /// The error that ended the request body, if any.
    pub body_error: Option<RecvError>,
    /// The connection is unusable: the client went away, or stopped reading.
    pub client_gone: bool,
    /// Why the client failed the request, if it did (an `OSError` from `wsgi.input` or a
    /// write).
    pub fault: Option<ClientFault>,
    /// `100 Continue` is owed: the client asked for it and the application has not read
    /// yet.
    pub continue_due: bool,
    deadline: Instant,
    /// The longest single socket wait (a beat interval).
    wait: Duration,
    /// The receive timeout the socket has now.
    read_wait: Duration,
    write_limit: Duration,
    beat: &'static Slot,
    /// The worker's INT/QUIT flag (quick stop).
    stop: Arc<AtomicBool>,
    /// The facts of the request (its version, for early hints).
    pub req: RequestInfo,
    /// The response head from `start_response`.
    pub head: Option<ResponseHead>,
    /// Whether the head went out.
    pub headers_sent: bool,
    head_buf: Vec<u8>,
    /// The request is over: input reads return nothing and writes fail.
    pub over: bool,
    /// The request's environ as data (for the access log).
    pub environ: Option<Environ>,
}

/// Why a socket call of the sync worker gave up: INT or QUIT arrived (quick stop).
#[derive(Debug)]
pub struct Stopping;

impl std::fmt::Display for Stopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the worker is stopping (INT or QUIT)")
    }
}

impl std::error::Error for Stopping {}

/// The core refused a step of the response (never expected once it was started).
fn usage(e: UsageError) -> PyErr {
    PyAssertionError::new_err(e.to_string())
}

fn stopping() -> io::Error {
    // Not `Interrupted`: nothing may take it for a call to retry.
    io::Error::other(Stopping)
}

/// Whether an I/O error is the quick stop's.
pub fn is_stopping(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<Stopping>())
}

/// Whether the quick stop's `SystemExit` was raised in this process.
static STOP_RAISED: AtomicBool = AtomicBool::new(false);

/// The exception of a quick stop: `SystemExit(0)` the first time (gunicorn's
/// `handle_quit` ends in `sys.exit(0)`, raised wherever the application is), an
/// `OSError` after that (an application that caught the `SystemExit` and goes on writing
/// is refused, not interrupted twice).
pub fn stop_error() -> PyErr {
    if STOP_RAISED.swap(true, Ordering::SeqCst) {
        PyOSError::new_err(Stopping.to_string())
    } else {
        PySystemExit::new_err(0)
    }
}

/// Raises the quick stop's `SystemExit(0)` unless it was raised already (the sync
/// worker's Python-level INT/QUIT handler).
pub fn raise_stop_once() -> PyResult<()> {
    if STOP_RAISED.swap(true, Ordering::SeqCst) { Ok(()) } else { Err(PySystemExit::new_err(0)) }
}

/// A socket error that only means "not now" (a timeout, a signal, no data yet).
pub(super) fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Writes every slice, releasing nothing (call it with the GIL released). A write that
/// makes no progress for `limit` fails with `TimedOut`; the worker beats meanwhile; the
/// quick stop (`stop`) fails it with [`Stopping`].
fn write_all_slices(
    stream: &mut Stream,
    mut bufs: &mut [IoSlice<'_>],
    beat: &Slot,
    limit: Duration,
    stop: &AtomicBool,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    let mut progress = Instant::now();
    while !bufs.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return Err(stopping());
        }
        match stream.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut bufs, n);
                progress = Instant::now();
                beat.notify();
            }
            Err(e) if retryable(&e) => {
                beat.notify();
                if progress.elapsed() >= limit {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Exchange {
    /// A new exchange on an accepted connection. `timeout` is the worker's `timeout`
    /// (the client's deadline, see the module documentation).
    ///
    /// `rbuf` is the read buffer (lent by the worker, given back by [`Exchange::take_buffer`]);
    /// the socket's read and write timeouts must be `wait` (a beat interval), so blocking
    /// calls return to beat; reads near the deadline shorten it. `stop` is the worker's
    /// INT/QUIT flag: once set, every socket call of the exchange fails with [`Stopping`].
    pub fn new(
        stream: Stream,
        conn: Connection,
        mut rbuf: Vec<u8>,
        timeout: Duration,
        wait: Duration,
        beat: &'static Slot,
        stop: Arc<AtomicBool>,
    ) -> Exchange {
        if rbuf.len() < READ_CHUNK {
            rbuf.resize(READ_CHUNK, 0);
        }
        Exchange {
            stream: Some(stream),
            conn,
            rbuf,
            pending: Vec::new(),
            pending_pos: 0,
            body_done: false,
            body_error: None,
            client_gone: false,
            fault: None,
            continue_due: false,
            deadline: Instant::now() + timeout,
            wait,
            read_wait: wait,
            write_limit: timeout,
            beat,
            stop,
            req: RequestInfo {
                is_head: false,
                version: ferrocorn_core::Version::HTTP_11,
                keep_alive: false,
                is_connect: false,
            },
            head: None,
            headers_sent: false,
            head_buf: Vec::with_capacity(256),
            over: false,
            environ: None,
        }
    }

    /// Reads from the socket once (into the connection), within the deadline: each wait
    /// lasts at most a beat interval and ends at the deadline; the worker beats after
    /// each (bytes or not).
    fn read_socket(&mut self, py: Python<'_>) -> io::Result<()> {
        let Exchange { stream, rbuf, conn, deadline, beat, stop, wait, read_wait, .. } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(stopping());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            // Within the last beat interval, the wait ends at the deadline.
            let want = left.min(*wait).max(Duration::from_millis(1));
            if want < *read_wait {
                stream.set_read_timeout(Some(want))?;
                *read_wait = want;
            }
            let buf = rbuf.as_mut_slice();
            let r = py.detach(|| stream.read(buf));
            beat.notify();
            match r {
                Ok(0) => {
                    conn.receive_eof();
                    return Ok(());
                }
                Ok(n) => {
                    conn.receive(&rbuf[..n]);
                    return Ok(());
                }
                Err(e) if retryable(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until a request head is complete.
    pub fn read_head(&mut self, py: Python<'_>) -> HeadResult {
        loop {
            match self.conn.next_event() {
                Ok(Event::Request(head)) => {
                    self.req = RequestInfo::from_head(head);
                    return HeadResult::Request;
                }
                Ok(Event::NeedData) => match self.read_socket(py) {
                    Ok(()) => {}
                    Err(e) if is_stopping(&e) => return HeadResult::Stopped,
                    Err(_) => {
                        self.client_gone = true;
                        return HeadResult::Gone;
                    }
                },
                Ok(_) => return HeadResult::Gone,
                Err(RecvError::NoMoreData) => return HeadResult::Gone,
                Err(e) => return HeadResult::Rejected(e),
            }
        }
    }

    /// Decodes more body into `pending`; `Ok(false)` at the end of the body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if self.body_done || self.over {
            return Ok(false);
        }
        loop {
            match self.conn.next_event() {
                Ok(Event::Data(d)) => {
                    if self.pending_pos == self.pending.len() {
                        self.pending.clear();
                        self.pending_pos = 0;
                    }
                    self.pending.extend_from_slice(d);
                    return Ok(true);
                }
                Ok(Event::NeedData) => {
                    if self.continue_due {
                        // The application waits for the body: now the client may send it.
                        self.continue_due = false;
                        self.send_continue(py);
                    }
                    if let Err(e) = self.read_socket(py) {
                        self.body_done = true;
                        if is_stopping(&e) {
                            return Err(stop_error());
                        }
                        self.fault = ClientFault::of_io(&e, false);
                        // A stalled client may still read an answer; a broken connection
                        // takes none.
                        if self.fault != Some(ClientFault::BodyStalled) {
                            self.client_gone = true;
                        }
                        return Err(PyOSError::new_err(format!(
                            "error reading the request body: {e}"
                        )));
                    }
                }
                Ok(_) => {
                    self.body_done = true;
                    return Ok(false);
                }
                Err(e) => {
                    self.body_done = true;
                    let msg = e.to_string();
                    if matches!(e, RecvError::NoMoreData) {
                        self.fault = Some(ClientFault::Disconnected);
                    }
                    self.body_error = Some(e);
                    return Err(PyOSError::new_err(msg));
                }
            }
        }
    }

    fn available(&self) -> &[u8] {
        &self.pending[self.pending_pos..]
    }

    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(self.available().len());
        let b = PyBytes::new(py, &self.pending[self.pending_pos..self.pending_pos + n]);
        self.pending_pos += n;
        b
    }
}

impl BodyRead for Exchange {
    /// `wsgi.input.read(size)`: `None` or negative reads to the end.
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        while self.available().len() < want && self.fill(py)? {}
        Ok(self.take(py, want))
    }

    /// `wsgi.input.readline(size)`.
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = match size {
            Some(n) if n >= 0 => n as usize,
            _ => usize::MAX,
        };
        let mut scanned = 0;
        loop {
            let avail = self.available();
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.take(py, (scanned + i + 1).min(limit)));
            }
            if avail.len() >= limit {
                return Ok(self.take(py, limit));
            }
            scanned = avail.len();
            if !self.fill(py)? {
                return Ok(self.take(py, limit));
            }
        }
    }
}

impl Exchange {
    /// Keeps the head of `start_response` (a later call, with `exc_info`, may replace it
    /// until the first body write starts the response).
    fn set_head(&mut self, head: ResponseHead) {
        self.head = Some(head);
    }

    /// The core's connection with the response started: on the first write, it frames the
    /// head of `start_response` (the date is taken then, as gunicorn's `send_headers`)
    /// and encodes it. The sync worker closes every connection after its response.
    /// `None` before `start_response`.
    pub fn started(&mut self) -> Option<&mut Connection> {
        if !self.conn.response_started() {
            let head = self.head.as_ref()?;
            self.head_buf.clear();
            self.conn.close_after_response();
            let date = crate::worker::date_now();
            self.conn.send_response(head, SERVER, &date, &mut self.head_buf).ok()?;
        }
        Some(&mut self.conn)
    }

    /// Writes body chunks (and the head first, if not sent yet); `finish` ends the body.
    /// Empty chunks write nothing (a body with only empty chunks sends the head at
    /// `finish`).
    pub fn send_body(&mut self, py: Python<'_>, chunks: &[&[u8]], finish: bool) -> PyResult<()> {
        if self.over || self.client_gone {
            return Err(PyOSError::new_err("the connection is closed"));
        }
        let Some(writer) = self.started() else {
            return Err(PyAssertionError::new_err(
                "the application wrote body bytes before calling start_response()",
            ));
        };
        let mut frames: Vec<Frame> = Vec::with_capacity(chunks.len());
        let mut warn = false;
        for c in chunks {
            let f = writer.send_data(c.len()).map_err(usage)?;
            warn |= f.warn_no_body;
            frames.push(f);
        }
        let last = if finish { writer.end_response().map_err(usage)?.last } else { b"" };
        if warn {
            self.warn_no_body();
        }
        let nothing = frames.iter().all(Frame::is_empty) && last.is_empty();
        if nothing && (self.headers_sent || !finish) {
            return Ok(());
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 + 3 * chunks.len());
        if !self.headers_sent {
            slices.push(IoSlice::new(&self.head_buf));
        }
        for (c, f) in chunks.iter().zip(&frames) {
            slices.push(IoSlice::new(f.prefix()));
            slices.push(IoSlice::new(&c[..f.take]));
            slices.push(IoSlice::new(f.suffix));
        }
        slices.push(IoSlice::new(last));
        let Some(stream) = self.stream.as_mut() else {
            return Err(PyOSError::new_err("the connection is closed"));
        };
        let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
        let r = py.detach(|| write_all_slices(stream, &mut slices, beat, limit, stop));
        self.headers_sent = true;
        if let Err(e) = r {
            // A quick stop is not the client's doing: the application's error path runs
            // as for any exception after the head (gunicorn logs the `SystemExit`).
            self.write_failed(&e);
            return Err(io_to_py(&e));
        }
        Ok(())
    }

    fn warn_no_body(&self) {
        let method = self.conn.head().map_or(&b""[..], |h| h.method());
        super::request::warn_no_body(method, self.head.as_ref().map_or(0, ResponseHead::code));
    }

    /// Ends the response: the head if it was never sent, and the last chunk.
    pub fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.head.is_none() {
            return Err(PyAssertionError::new_err(
                "the application returned without calling start_response()",
            ));
        }
        self.send_body(py, &[], true)
    }

    /// Sends `count` bytes of `fd` from `offset` with sendfile(2), after the head and
    /// chunk prefix; returns how many bytes of the body went out.
    pub fn send_file(
        &mut self,
        py: Python<'_>,
        fd: BorrowedFd<'_>,
        offset: i64,
        count: u64,
    ) -> PyResult<u64> {
        if self.over || self.client_gone {
            return Err(PyOSError::new_err("the connection is closed"));
        }
        let Some(writer) = self.started() else {
            return Err(PyAssertionError::new_err(
                "the application returned without calling start_response()",
            ));
        };
        let f = writer.send_data(usize::try_from(count).unwrap_or(usize::MAX)).map_err(usage)?;
        if f.warn_no_body {
            self.warn_no_body();
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(PyOSError::new_err("the connection is closed"));
        };
        let mut slices = Vec::with_capacity(2);
        if !self.headers_sent {
            slices.push(IoSlice::new(&self.head_buf));
        }
        slices.push(IoSlice::new(f.prefix()));
        let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
        let take = f.take;
        let suffix = f.suffix;
        let r = py.detach(|| -> io::Result<u64> {
            write_all_slices(stream, &mut slices, beat, limit, stop)?;
            let mut off: nix::libc::off_t = offset;
            let mut left = take;
            let mut progress = Instant::now();
            while left > 0 {
                if stop.load(Ordering::Relaxed) {
                    return Err(stopping());
                }
                match nix::sys::sendfile::sendfile(stream.as_fd(), fd, Some(&mut off), left) {
                    Ok(0) => break,
                    Ok(n) => {
                        left -= n;
                        progress = Instant::now();
                        beat.notify();
                    }
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                        beat.notify();
                        if progress.elapsed() >= limit {
                            return Err(io::ErrorKind::TimedOut.into());
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if left > 0 {
                // The file is shorter than announced: the body cannot be completed.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            write_all_slices(stream, &mut [IoSlice::new(suffix)], beat, limit, stop)?;
            Ok(take as u64)
        });
        self.headers_sent = true;
        r.map_err(|e| {
            self.write_failed(&e);
            io_to_py(&e)
        })
    }

    /// Records a failed write: the connection is unusable (unless the quick stop ended
    /// it), and the client's fault if it is one.
    fn write_failed(&mut self, e: &io::Error) {
        if is_stopping(e) {
            return;
        }
        self.client_gone = true;
        if self.fault.is_none() {
            self.fault = ClientFault::of_io(e, true);
        }
    }

    /// Writes an error page when nothing was sent yet (the request is then over).
    pub fn send_raw(&mut self, py: Python<'_>, bytes: &[u8]) {
        if self.headers_sent || self.client_gone {
            return;
        }
        self.headers_sent = true;
        if let Some(stream) = self.stream.as_mut() {
            // Not cut by a quick stop: the 500 page for the stop's `SystemExit` goes out
            // (gunicorn writes it too); an error page is small and nothing preceded it.
            static GO_ON: AtomicBool = AtomicBool::new(false);
            let (beat, limit) = (self.beat, self.write_limit);
            let r = py.detach(|| {
                write_all_slices(stream, &mut [IoSlice::new(bytes)], beat, limit, &GO_ON)
            });
            if r.is_err() {
                self.client_gone = true;
            }
        }
    }

    /// Writes an interim response (`103 Early Hints`) now, unless the final head went out
    /// already.
    pub fn send_interim(&mut self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        if self.headers_sent {
            return Ok(());
        }
        if self.over || self.client_gone {
            return Err(PyOSError::new_err("the connection is closed"));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(PyOSError::new_err("the connection is closed"));
        };
        let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
        let r =
            py.detach(|| write_all_slices(stream, &mut [IoSlice::new(bytes)], beat, limit, stop));
        r.map_err(|e| {
            self.write_failed(&e);
            io_to_py(&e)
        })
    }

    /// Writes `100 Continue` (when the application first waits for the body), unless the
    /// final head went out already.
    pub fn send_continue(&mut self, py: Python<'_>) {
        if self.headers_sent || self.client_gone {
            return;
        }
        if let Some(stream) = self.stream.as_mut() {
            let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
            let r = py.detach(|| {
                write_all_slices(stream, &mut [IoSlice::new(response::CONTINUE)], beat, limit, stop)
            });
            if let Err(e) = r {
                self.write_failed(&e);
            }
        }
    }

    /// The client's deadline from `accept` (and the longest a write may make no progress).
    pub fn timeout(&self) -> Duration {
        self.write_limit
    }

    /// Gives the read buffer back (for the next connection).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rbuf)
    }

    /// Takes the socket out (the request is over).
    pub fn take_stream(&mut self) -> Option<Stream> {
        self.over = true;
        self.stream.take()
    }
}

/// A Python `OSError` for an I/O error (errno and its text, as Python raises them); the
/// quick stop's error is [`stop_error`].
pub(crate) fn io_to_py(e: &io::Error) -> PyErr {
    if is_stopping(e) {
        return stop_error();
    }
    match e.raw_os_error() {
        Some(n) => PyOSError::new_err((n, nix::errno::Errno::from_raw(n).desc())),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// An exchange shared with the Python objects of its request.
pub type Shared = Arc<Mutex<Exchange>>;

/// Locks an exchange without holding the GIL while waiting.
pub fn lock<'a>(py: Python<'_>, ex: &'a Shared) -> MutexGuard<'a, Exchange> {
    lock_any(py, ex)
}

/// Locks what a request's Python objects share with the worker without holding the GIL
/// while waiting (a poisoned lock is taken as it is).
pub fn lock_any<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    m.lock_py_attached(py).unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// wsgi.input
// ---------------------------------------------------------------------------------------

/// A request body as `wsgi.input` reads it (the sync worker's [`Exchange`], the
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
/// ([`Shared`] for the sync worker, the engine's exchange for the gthread worker).
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

impl ResponseSink for Shared {
    fn state(&self, py: Python<'_>) -> (bool, bool) {
        let ex = lock(py, self);
        (ex.headers_sent, ex.head.is_some())
    }

    fn set_head(&self, py: Python<'_>, head: ResponseHead) {
        lock(py, self).set_head(head);
    }

    /// Sends `data` at once (the head first).
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        lock(py, self).send_body(py, &[data], false)
    }

    fn request_version(&self, py: Python<'_>) -> ferrocorn_core::Version {
        lock(py, self).req.version
    }

    fn send_interim(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        lock(py, self).send_interim(py, bytes)
    }
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
        self.sink.write(py, super::request::bytes_of(data)?)
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
