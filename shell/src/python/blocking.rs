//! The sync worker's connection driver: one request on a blocking socket
//! ([`BlockingExchange`]): the core's [`Connection`] decoding what the socket gives and
//! framing the response, the response head, and every socket call with the GIL released,
//! through the transport's blocking calls ([`crate::transport`]). `wsgi.input`
//! ([`super::wsgi::Input`]) and `start_response` share it with the worker loop as
//! [`SharedExchange`].
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
//! [`super::pyio::stop_error`]).

use std::io::{self, IoSlice, Read};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferrocorn_core::response::{self, Frame, RequestInfo, ResponseHead};
use ferrocorn_core::{Connection, Event, RecvError, UsageError};
use pyo3::exceptions::{PyAssertionError, PyOSError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::pipeline::{Driver, Failure, Sent};
use super::pyio::{io_to_py, stop_error};
use super::request::{ClientFault, FileSource};
use super::wsgi::{BodyRead, ResponseSink, SERVER, lock_any, size_limit, warn_no_body};
use crate::heartbeat::Slot;
use crate::transport::{self, Stream, Waits, is_stopping, retryable, stopping};

/// The core refused a step of the response (never expected once it was started).
fn usage(e: UsageError) -> PyErr {
    PyAssertionError::new_err(e.to_string())
}

/// How many bytes one socket read asks for.
pub const READ_CHUNK: usize = 64 * 1024;

/// How reading the request head ended.
#[derive(Debug)]
pub enum HeadResult {
    /// A request head was read (`BlockingExchange::conn.head()`).
    Request,
    /// The client closed, timed out or failed (the read's error) before sending a whole
    /// head: close (a TLS connection's failure is logged, `crate::tls_failure`).
    Gone(Option<io::Error>),
    /// The request was rejected: answer with the error page and close.
    Rejected(RecvError),
    /// INT or QUIT arrived while the head was still coming (quick stop).
    Stopped,
}

/// The connection of one request and its response state.
#[derive(Debug)]
pub struct BlockingExchange {
    stream: Option<Stream>,
    /// The core's connection (the head stays readable through `conn.head()`).
    pub conn: Connection,
    rbuf: Vec<u8>,
    pending: Vec<u8>,
    pending_pos: usize,
    /// Where reading the request body is.
    body: BodyState,
    /// Whether the connection can still carry bytes.
    pub link: Link,
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
}

/// Where reading the request body is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyState {
    /// More may come.
    Reading,
    /// The body ended (or there is none).
    Ended,
    /// Reading failed: the client's doing (see `fault`), or the core's verdict on a body
    /// that broke its framing.
    Failed(Option<RecvError>),
}

/// Whether the connection can still carry bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// It can.
    Open,
    /// The client went away, or stopped reading: nothing more is sent.
    Broken,
    /// The request is over (the socket was taken out): input reads return nothing and
    /// writes fail.
    Closed,
}

impl BlockingExchange {
    /// A new exchange on an accepted connection. `timeout` is the worker's `timeout`
    /// (the client's deadline, see the module documentation).
    ///
    /// `rbuf` is the read buffer (lent by the worker, given back by [`BlockingExchange::take_buffer`]);
    /// the socket's read and write timeouts must be `wait` (a beat interval), so blocking
    /// calls return to beat; reads near the deadline shorten it. `stop` is the worker's
    /// INT/QUIT flag: once set, every socket call of the exchange fails with [`crate::transport::Stopping`].
    pub fn new(
        stream: Stream,
        conn: Connection,
        mut rbuf: Vec<u8>,
        timeout: Duration,
        wait: Duration,
        beat: &'static Slot,
        stop: Arc<AtomicBool>,
    ) -> BlockingExchange {
        if rbuf.len() < READ_CHUNK {
            rbuf.resize(READ_CHUNK, 0);
        }
        BlockingExchange {
            stream: Some(stream),
            conn,
            rbuf,
            pending: Vec::new(),
            pending_pos: 0,
            body: BodyState::Reading,
            link: Link::Open,
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
        }
    }

    /// Reads from the socket once (into the connection), within the deadline: each wait
    /// lasts at most a beat interval and ends at the deadline; the worker beats after
    /// each (bytes or not).
    fn read_socket(&mut self, py: Python<'_>) -> io::Result<()> {
        let BlockingExchange { stream, rbuf, conn, deadline, beat, stop, wait, read_wait, .. } =
            self;
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
                    // Owed from now on: sent when the application first waits for the body.
                    self.continue_due = head.expect_continue;
                    return HeadResult::Request;
                }
                Ok(Event::NeedData) => match self.read_socket(py) {
                    Ok(()) => {}
                    Err(e) if is_stopping(&e) => return HeadResult::Stopped,
                    Err(e) => {
                        self.link = Link::Broken;
                        return HeadResult::Gone(Some(e));
                    }
                },
                Ok(_) => return HeadResult::Gone(None),
                Err(RecvError::NoMoreData) => return HeadResult::Gone(None),
                Err(e) => return HeadResult::Rejected(e),
            }
        }
    }

    /// Decodes more body into `pending`; `Ok(false)` at the end of the body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        if self.body != BodyState::Reading || self.link == Link::Closed {
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
                        self.body = BodyState::Failed(None);
                        if is_stopping(&e) {
                            return Err(stop_error());
                        }
                        self.fault = ClientFault::of_io(&e, false);
                        // A stalled client may still read an answer; a broken connection
                        // takes none.
                        if self.fault != Some(ClientFault::BodyStalled) {
                            self.link = Link::Broken;
                        }
                        return Err(PyOSError::new_err(format!(
                            "error reading the request body: {e}"
                        )));
                    }
                }
                Ok(_) => {
                    self.body = BodyState::Ended;
                    return Ok(false);
                }
                Err(e) => {
                    let msg = e.to_string();
                    if matches!(e, RecvError::NoMoreData) {
                        self.fault = Some(ClientFault::Disconnected);
                    }
                    self.body = BodyState::Failed(Some(e));
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

impl BodyRead for BlockingExchange {
    /// `wsgi.input.read(size)`: `None` or negative reads to the end.
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = size_limit(size);
        while self.available().len() < want && self.fill(py)? {}
        Ok(self.take(py, want))
    }

    /// `wsgi.input.readline(size)`.
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size_limit(size);
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

impl BlockingExchange {
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
        if self.link != Link::Open {
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
        let r =
            py.detach(|| transport::write_all(stream, &mut slices, Waits { beat, limit, stop }));
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
        warn_no_body(method, self.head.as_ref().map_or(0, ResponseHead::code));
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
        if self.link != Link::Open {
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
            transport::write_all(stream, &mut slices, Waits { beat, limit, stop })?;
            // A file shorter than announced cannot complete the body: an error.
            transport::sendfile_all(stream, fd, offset, take, Waits { beat, limit, stop })?;
            transport::write_all(stream, &mut [IoSlice::new(suffix)], Waits { beat, limit, stop })?;
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
        self.link = Link::Broken;
        if self.fault.is_none() {
            self.fault = ClientFault::of_io(e, true);
        }
    }

    /// Writes an error page when nothing was sent yet (the request is then over).
    pub fn send_raw(&mut self, py: Python<'_>, bytes: &[u8]) {
        if self.headers_sent || self.link != Link::Open {
            return;
        }
        self.headers_sent = true;
        if let Some(stream) = self.stream.as_mut() {
            // Not cut by a quick stop: the 500 page for the stop's `SystemExit` goes out
            // (gunicorn writes it too); an error page is small and nothing preceded it.
            static GO_ON: AtomicBool = AtomicBool::new(false);
            let (beat, limit) = (self.beat, self.write_limit);
            let r = py.detach(|| {
                transport::write_all(
                    stream,
                    &mut [IoSlice::new(bytes)],
                    Waits { beat, limit, stop: &GO_ON },
                )
            });
            if r.is_err() {
                self.link = Link::Broken;
            }
        }
    }

    /// Writes an interim response (`103 Early Hints`) now, unless the final head went out
    /// already.
    pub fn send_interim(&mut self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        if self.headers_sent {
            return Ok(());
        }
        if self.link != Link::Open {
            return Err(PyOSError::new_err("the connection is closed"));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(PyOSError::new_err("the connection is closed"));
        };
        let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
        let r = py.detach(|| {
            transport::write_all(stream, &mut [IoSlice::new(bytes)], Waits { beat, limit, stop })
        });
        r.map_err(|e| {
            self.write_failed(&e);
            io_to_py(&e)
        })
    }

    /// Writes `100 Continue` (when the application first waits for the body), unless the
    /// final head went out already.
    pub fn send_continue(&mut self, py: Python<'_>) {
        if self.headers_sent || self.link != Link::Open {
            return;
        }
        if let Some(stream) = self.stream.as_mut() {
            let (beat, limit, stop) = (self.beat, self.write_limit, &*self.stop);
            let r = py.detach(|| {
                transport::write_all(
                    stream,
                    &mut [IoSlice::new(response::CONTINUE)],
                    Waits { beat, limit, stop },
                )
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

    /// The connection, while it is open.
    pub fn stream(&self) -> Option<&Stream> {
        self.stream.as_ref()
    }

    /// Takes the socket out (the request is over).
    pub fn take_stream(&mut self) -> Option<Stream> {
        self.link = Link::Closed;
        self.stream.take()
    }
}

/// A blocking exchange shared with the Python objects of its request.
pub type SharedExchange = Arc<Mutex<BlockingExchange>>;

/// Locks an exchange without holding the GIL while waiting.
pub fn lock<'a>(py: Python<'_>, ex: &'a SharedExchange) -> MutexGuard<'a, BlockingExchange> {
    lock_any(py, ex)
}

impl ResponseSink for SharedExchange {
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

/// The sync worker's side of the WSGI pipeline.
impl Driver for SharedExchange {
    fn write_all(&self, py: Python<'_>, chunks: &[&[u8]]) -> PyResult<()> {
        let mut g = lock(py, self);
        if g.head.is_none() {
            return g.finish(py);
        }
        g.send_body(py, chunks, true)
    }

    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        lock(py, self).finish(py)
    }

    fn send_file(&self, py: Python<'_>, src: &FileSource<'_>) -> PyResult<()> {
        let mut g = lock(py, self);
        let count = src.count(g.started().and_then(|c| c.body_remaining()));
        g.send_file(py, src.fd, src.offset, count)?;
        g.finish(py)
    }

    fn failure(&self, py: Python<'_>) -> Failure {
        let g = lock(py, self);
        Failure {
            started: g.headers_sent,
            broken: g.link == Link::Broken,
            fault: g.fault,
            body_error: match &g.body {
                BodyState::Failed(verdict) => verdict.clone(),
                _ => None,
            },
        }
    }

    fn send_page(&self, py: Python<'_>, page: &[u8]) {
        lock(py, self).send_raw(py, page);
    }

    fn abandon(&self, py: Python<'_>) {
        lock(py, self).link = Link::Broken;
    }

    fn stopping(&self, py: Python<'_>) -> bool {
        lock(py, self).stop.load(Ordering::Relaxed)
    }

    fn with_sent<R>(&self, py: Python<'_>, f: impl FnOnce(Sent<'_>) -> R) -> R {
        let g = lock(py, self);
        f(Sent { request: g.conn.head(), head: g.head.as_ref(), bytes: g.conn.body_sent() })
    }
}
