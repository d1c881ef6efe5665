//! What a [`Handler`] gets for one request: an [`Exchange`] that owns the connection for
//! the length of the call, with the head, the body (`Read` / `BufRead` over buffered bytes
//! or the socket) and the response (head, body chunks, `sendfile`), all framed by the core.
//!
//! The engine calls [`Handler::handle`] on the thread that read the request; that thread
//! also writes the response, so a request costs no hand-off between threads. Response
//! bytes a handler has all at once ([`Exchange::write`]) collect in the connection's
//! output buffer and go out in one `write(2)` when the handler returns (pipelined
//! responses share it); a chunk that would make the buffer larger than [`FLUSH_AT`] is
//! written at once with `writev(2)`, straight from the caller's slice, waiting for the
//! socket with a deadline. A chunk of a streamed response ([`Exchange::write_now`], a
//! chunk the application yielded) goes out before the handler asks for the next one, with
//! what was buffered before it, in one `writev(2)`. Whatever the socket does not take
//! when the handler is done stays with the connection, which the engine parks in the
//! poller: a slow reader costs buffer space, never a thread.
//!
//! `Expect: 100-continue` on a body that streams (larger than the engine's buffering
//! limit) is answered when the handler first reads the body, and never once the response
//! has started: a handler that answers without reading (a 413, a 401) sends no `100`, and
//! the connection then closes rather than waits for a body the client may never send.
//! A body the engine spooled to a file before the handler was called reads from the file
//! (never blocking on the network).
//!
//! Without `Expect`, the same holds for a body with more than `DRAIN_BUDGET` (64 KiB) left unread
//! when the response starts (it says `Connection: close`); less is skipped after the
//! response went out, to keep the connection.
//!
//! The exchange is an owned value (no lifetimes), so a handler can share it with objects
//! that outlive the call (the WSGI bridge puts it behind an `Arc<Mutex<_>>` for
//! `wsgi.input` and `start_response`): it takes it with `std::mem::take` and puts it back
//! before returning. An exchange that is not put back loses its connection.

use std::io::{self, BufRead, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrocorn_core::h1::RequestHead;
use ferrocorn_core::response::{self, Frame, Framing, ResponseHead};
use ferrocorn_core::{Connection, Event, Peer, RecvError};
use nix::poll::PollFlags;

use super::conn::Conn;
use crate::transport::{self, wait_ready};

/// The output buffer size past which response bytes are written before more are added.
pub const FLUSH_AT: usize = 64 * 1024;

/// How much of a streamed body the handler did not read is skipped to keep the
/// connection. A body with more than this left is not waited for: the response says
/// `Connection: close`, goes out at once, and the connection closes after it.
pub(super) const DRAIN_BUDGET: usize = 64 * 1024;

/// The application side of the gthread engine: called once per request, on one of the
/// worker's `threads` threads, concurrently with other requests.
pub trait Handler: Send + Sync {
    /// Serves one request: reads the body if it wants, starts the response with
    /// [`Exchange::start`], writes its body, and returns. `Err(Failed)` means the handler
    /// failed and already logged why: the engine answers `500 Internal Server Error` when
    /// no response was started, and closes the connection either way. A handler that
    /// returns `Ok` without starting a response is treated as failed.
    fn handle(&self, ex: &mut Exchange) -> Result<(), Failed>;

    /// Runs one serving thread's whole life: calls `serve` once. The default just calls
    /// it; the WSGI handler attaches the thread to the interpreter for its life and
    /// releases the GIL while serving, so each request only takes the GIL.
    fn run_thread(&self, serve: &mut (dyn FnMut() + Send)) {
        serve();
    }

    /// USR1 arrived: reopen the handler's own log files (the engine reopens the error
    /// log). Called from the worker's main thread. The default does nothing.
    fn reopen_logs(&self) {}
}

/// `Expect: 100-continue` on a body that streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Continue {
    /// Nothing is owed (not asked, or answered).
    #[default]
    None,
    /// The client asked and waits: answered when the handler first reads the body.
    Owed,
    /// The response started first: never answered, and the connection closes after it.
    Withheld,
}

/// Where reading a request body is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum BodyState {
    /// More may come (or the body is buffered whole).
    #[default]
    Reading,
    /// The body was read to its end.
    Ended,
    /// Reading failed (the client, the deadline, or a framing error).
    Failed,
}

/// A handler failed (it logged the reason itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

/// One request and its response, owned by the handler for the length of
/// [`Handler::handle`].
#[derive(Debug, Default)]
pub struct Exchange {
    pub(super) conn: Option<Box<Conn>>,
    /// The body streams from the socket (it was larger than the buffering limit).
    streaming: bool,
    body_pos: usize,
    /// Where reading the body is.
    body: BodyState,
    /// Body bytes decoded from the socket so far (a streamed body).
    body_got: u64,
    scratch: Vec<u8>,
    server_keepalive: bool,
    stopping: Option<Arc<AtomicBool>>,
    timeout: Duration,
    server: &'static [u8],
    code: u16,
    finished: bool,
    broken: bool,
    started: Option<Instant>,
    nth: u64,
    /// `Expect: 100-continue` on a streamed body.
    expect: Continue,
}

/// What the engine fixes for one exchange.
#[derive(Debug)]
pub(super) struct Setup {
    pub streaming: bool,
    /// `Expect: 100-continue` is still to be answered when the body is first read.
    pub expect_continue: bool,
    pub server_keepalive: bool,
    pub stopping: Arc<AtomicBool>,
    pub timeout: Duration,
    pub server: &'static [u8],
}

/// A request body that broke its framing: the core's verdict, inside the `InvalidData`
/// error a body read returns (its text is the verdict's).
#[derive(Debug)]
pub struct BodyError(pub RecvError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the request is over")
}

impl Exchange {
    pub(super) fn new(conn: Box<Conn>, setup: Setup) -> Exchange {
        assert!(conn.core.head().is_some(), "a request was read");
        let nth = conn.core.requests().saturating_sub(1);
        Exchange {
            conn: Some(conn),
            streaming: setup.streaming,
            body_pos: 0,
            body: BodyState::Reading,
            body_got: 0,
            scratch: Vec::new(),
            server_keepalive: setup.server_keepalive,
            stopping: Some(setup.stopping),
            timeout: setup.timeout,
            server: setup.server,
            code: 0,
            finished: false,
            broken: false,
            started: Some(Instant::now()),
            nth,
            expect: if setup.streaming && setup.expect_continue {
                Continue::Owed
            } else {
                Continue::None
            },
        }
    }

    /// Whether the exchange holds its connection (an empty one is what
    /// `std::mem::take` leaves behind).
    pub fn is_attached(&self) -> bool {
        self.conn.is_some()
    }

    /// The request head (with the connection's PROXY header, if any). `None` only on an
    /// empty exchange.
    pub fn head(&self) -> Option<&RequestHead> {
        self.conn.as_ref().and_then(|c| c.core.head())
    }

    /// The connection. `None` only on an empty exchange.
    pub fn stream(&self) -> Option<&crate::transport::Stream> {
        self.conn.as_ref().map(|c| &c.stream)
    }

    /// The client.
    pub fn peer(&self) -> Option<Peer> {
        self.conn.as_ref().map(|c| c.peer)
    }

    /// The index, in `WorkerContext::listeners`, of the listener that accepted the
    /// connection.
    pub fn listener(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.listener)
    }

    /// When the request head was read whole and the handler was called.
    pub fn started(&self) -> Instant {
        self.started.unwrap_or_else(Instant::now)
    }

    /// How many requests this connection carried before this one.
    pub fn nth(&self) -> u64 {
        self.nth
    }

    // -----------------------------------------------------------------------------------
    // The body
    // -----------------------------------------------------------------------------------

    /// The whole body when it was read before the handler was called (at most the
    /// engine's buffering limit, 64 KiB); `None` when it streams from the socket.
    pub fn buffered_body(&self) -> Option<&[u8]> {
        match &self.conn {
            Some(c) if !self.streaming && c.spool.is_none() => Some(&c.body),
            _ => None,
        }
    }

    /// Whether reading more of the body may wait on the network (the caller may release
    /// locks first, e.g. the GIL).
    pub fn body_may_block(&self) -> bool {
        match &self.conn {
            Some(c) => {
                self.streaming && self.body != BodyState::Ended && self.body_pos == c.body.len()
            }
            None => false,
        }
    }

    /// Whether the body was read from the network to its end (so the connection may
    /// carry another request).
    pub(super) fn body_complete(&self) -> bool {
        match &self.conn {
            Some(c) => {
                !self.streaming
                    || self.body == BodyState::Ended
                    || (self.body != BodyState::Failed
                        && c.core.state() == ferrocorn_core::ConnState::Done)
            }
            None => false,
        }
    }

    /// How many bytes of a streamed `Content-Length` body are still to come from the
    /// socket (`None` for a chunked body, or when the body does not stream).
    pub(super) fn body_left(&self) -> Option<u64> {
        let c = self.conn.as_ref()?;
        if !self.streaming || self.body == BodyState::Ended {
            return Some(0);
        }
        match c.core.head()?.body {
            ferrocorn_core::BodyKind::Length(n) => Some(n.saturating_sub(self.body_got)),
            _ => None,
        }
    }

    /// Whether the handler left more of a streamed body unread than is skipped to keep
    /// the connection ([`DRAIN_BUDGET`]): the connection closes after the response.
    fn body_abandoned(&self) -> bool {
        self.streaming
            && self.body != BodyState::Ended
            && self.body_left().is_some_and(|n| n > DRAIN_BUDGET as u64)
    }

    /// Writes what the socket takes now of the queued response, without waiting: the
    /// response goes out before the engine decides what to do with an unread body.
    pub(super) fn flush_ready(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        while c.out_pos < c.out.len() {
            match c.stream.send(&c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        }
    }

    /// Reads the rest of a streamed body and drops it, at most `budget` bytes. Returns
    /// whether the end was reached. A body whose `100 Continue` was never sent is not
    /// waited for (the client may never send it): `false`, and the connection closes.
    pub(super) fn drain_body(&mut self, mut budget: usize) -> bool {
        if self.expect != Continue::None {
            return false;
        }
        loop {
            match self.fill_buf() {
                Ok([]) => return true,
                Ok(b) if b.len() <= budget => {
                    let n = b.len();
                    budget -= n;
                    self.consume(n);
                }
                _ => return false,
            }
        }
    }

    /// Decodes more of a streamed body into the connection's body buffer.
    fn fill_stream(&mut self) -> io::Result<()> {
        if self.expect == Continue::Owed {
            // The body is wanted now: answer `Expect: 100-continue` (after any pipelined
            // response still queued) before waiting for it.
            self.expect = Continue::None;
            if self.conn.is_none() {
                return Err(closed());
            }
            if let Err(e) = self.flush_with(&[response::CONTINUE]) {
                self.body = BodyState::Failed;
                return Err(e);
            }
        }
        let Some(c) = self.conn.as_mut() else { return Err(closed()) };
        c.body.clear();
        self.body_pos = 0;
        if self.scratch.is_empty() {
            self.scratch = vec![0; 64 * 1024];
        }
        loop {
            if self.body != BodyState::Reading {
                return Ok(());
            }
            match c.core.next_event() {
                Ok(Event::Data(d)) => {
                    self.body_got += d.len() as u64;
                    c.body.extend_from_slice(d);
                    return Ok(());
                }
                Ok(Event::NeedData) => match c.stream.recv(&mut self.scratch) {
                    Ok(0) => c.core.receive_eof(),
                    Ok(n) => c.core.receive(&self.scratch[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) =
                            wait_ready(c.stream.as_fd(), PollFlags::POLLIN, self.timeout)
                        {
                            self.body = BodyState::Failed;
                            return Err(e);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.body = BodyState::Failed;
                        return Err(e);
                    }
                },
                // EndOfMessage, Paused, ConnectionClosed (a new Request cannot come here).
                Ok(_) => self.body = BodyState::Ended,
                Err(e) => {
                    self.body = BodyState::Failed;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, BodyError(e)));
                }
            }
        }
    }

    /// Reads the next piece of a spooled body from its file into the body buffer (nothing
    /// for a body held in memory).
    fn fill_spool(&mut self) -> io::Result<()> {
        let Some(c) = self.conn.as_mut() else { return Err(closed()) };
        let Some(f) = c.spool.as_mut() else { return Ok(()) };
        c.body.resize(64 * 1024, 0);
        let n = loop {
            match f.read(&mut c.body) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.body.clear();
                    self.body = BodyState::Failed;
                    return Err(e);
                }
            }
        };
        c.body.truncate(n);
        self.body_pos = 0;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // The response
    // -----------------------------------------------------------------------------------

    /// Starts the response: chooses the framing (`Content-Length`, chunked, or until
    /// close; keep-alive only if the server allows it now, so a response started after
    /// TERM says `Connection: close`) and queues the head. Fails when a response was
    /// already started.
    pub fn start(&mut self, head: &ResponseHead) -> io::Result<()> {
        if self.response_started() {
            return Err(io::Error::other("the response was already started"));
        }
        let abandoned = self.body_abandoned();
        let Some(c) = self.conn.as_mut() else {
            return Err(closed());
        };
        if self.expect == Continue::Owed {
            // Never a `100 Continue` after the final response has begun; the client may
            // then never send the body, so the connection closes after the response.
            self.expect = Continue::Withheld;
        }
        let stopping = self.stopping.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
        // A body the handler left unread, too large to skip, is not waited for: the
        // connection closes after the response, and the response says so.
        let keepalive =
            self.server_keepalive && !stopping && self.expect != Continue::Withheld && !abandoned;
        if !keepalive {
            c.core.close_after_response();
        }
        let date = crate::worker::date_now();
        c.core.send_response(head, self.server, &date, &mut c.out).map_err(io::Error::other)?;
        self.code = head.code();
        Ok(())
    }

    /// Whether [`Exchange::start`] was called.
    pub fn response_started(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.core.response_started())
    }

    /// The status code, once started.
    pub fn status(&self) -> Option<u16> {
        self.response_started().then_some(self.code)
    }

    /// Body bytes written (without chunk framing): the access log's `%(b)s`.
    pub fn sent(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.core.body_sent())
    }

    /// Whether the connection may carry another request after this response (the core's
    /// answer; the engine may still close it if the body was not read whole).
    pub fn keep_alive(&self) -> bool {
        self.response_started()
            && !self.broken
            && self.conn.as_ref().is_some_and(|c| c.core.keep_alive())
    }

    /// The framing chosen by [`Exchange::start`].
    pub fn framing(&self) -> Option<&Framing> {
        self.conn.as_ref().and_then(|c| c.core.framing())
    }

    /// Whether writing `len` more body bytes may wait on the network (the caller may
    /// release locks first, e.g. the GIL).
    pub fn write_may_block(&self, len: usize) -> bool {
        self.conn.as_ref().is_some_and(|c| c.out.len() + len + 32 > FLUSH_AT)
    }

    /// Whether the connection failed (a write error or timeout): the request is over.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The core's connection, to frame the body of the started response.
    fn writer(&mut self) -> io::Result<&mut Connection> {
        match self.conn.as_mut() {
            Some(c) if !self.broken && c.core.response_started() => Ok(&mut c.core),
            Some(_) if !self.broken => Err(io::Error::other("the response was not started")),
            _ => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed")),
        }
    }

    fn frame(&mut self, len: usize) -> io::Result<Frame> {
        self.writer()?.send_data(len).map_err(io::Error::other)
    }

    /// Writes what is buffered and then `extra`, waiting for the socket.
    fn flush_with(&mut self, extra: &[&[u8]]) -> io::Result<()> {
        let Some(c) = self.conn.as_mut() else { return Err(closed()) };
        let pending = &c.out[c.out_pos..];
        let mut bufs: [&[u8]; 4] = [pending, &[], &[], &[]];
        for (slot, b) in bufs[1..].iter_mut().zip(extra) {
            *slot = b;
        }
        let r =
            transport::write_all_ready(&c.stream, &bufs[..1 + extra.len().min(3)], self.timeout);
        c.out.clear();
        c.out_pos = 0;
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Writes a chunk of the body (framed; cut at `Content-Length`; dropped for HEAD and
    /// other no-body responses). Small chunks are buffered; a chunk that would grow the
    /// buffer past [`FLUSH_AT`] is written at once, without a copy. Returns whether body
    /// bytes were dropped on a no-body response for the first time (the caller may warn).
    pub fn write(&mut self, data: &[u8]) -> io::Result<bool> {
        let frame = self.frame(data.len())?;
        if frame.is_empty() {
            return Ok(frame.warn_no_body);
        }
        let body = &data[..frame.take];
        let Some(c) = self.conn.as_mut() else { return Err(closed()) };
        if c.out.len() + body.len() + 32 <= FLUSH_AT {
            c.out.extend_from_slice(frame.prefix());
            c.out.extend_from_slice(body);
            c.out.extend_from_slice(frame.suffix);
            Ok(frame.warn_no_body)
        } else {
            self.flush_with(&[frame.prefix(), body, frame.suffix]).map(|()| frame.warn_no_body)
        }
    }

    /// Writes a chunk of the body (framed as [`Exchange::write`]) now, with whatever is
    /// still buffered before it (the head, earlier chunks, a pipelined response), in one
    /// `writev(2)` straight from the caller's slice, waiting for the socket (each wait at
    /// most the worker's `timeout`). For a streamed response: each chunk reaches the
    /// client without waiting for the next. A failed write breaks the exchange: the
    /// response is over. Returns what [`Exchange::write`] returns.
    pub fn write_now(&mut self, data: &[u8]) -> io::Result<bool> {
        let frame = self.frame(data.len())?;
        if frame.is_empty() {
            if self.pending_output() {
                self.flush_with(&[])?;
            }
            return Ok(frame.warn_no_body);
        }
        self.flush_with(&[frame.prefix(), &data[..frame.take], frame.suffix])
            .map(|()| frame.warn_no_body)
    }

    /// Whether response bytes wait in the buffer (to go out when the handler returns, or
    /// with the next [`Exchange::write_now`]).
    pub fn pending_output(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.out.len() > c.out_pos)
    }

    /// Writes `count` bytes of `file` from `offset` as body bytes with `sendfile(2)`
    /// (framed like [`Exchange::write`]; `count` is cut at `Content-Length`). Returns the
    /// body bytes sent.
    pub fn sendfile(&mut self, file: BorrowedFd<'_>, offset: u64, count: u64) -> io::Result<u64> {
        let len = usize::try_from(count).unwrap_or(usize::MAX);
        let frame = self.frame(len)?;
        if frame.take == 0 {
            return Ok(0);
        }
        self.flush_with(&[frame.prefix()])?;
        let Some(c) = self.conn.as_mut() else { return Err(closed()) };
        let offset = i64::try_from(offset).map_err(io::Error::other)?;
        // A file shorter than promised cannot keep the framing: the exchange breaks.
        if let Err(e) = transport::sendfile_ready(&c.stream, file, offset, frame.take, self.timeout)
        {
            self.broken = true;
            return Err(e);
        }
        c.out.extend_from_slice(frame.suffix);
        Ok(frame.take as u64)
    }

    /// Ends the body (the last chunk of a chunked body). Called by the engine when the
    /// handler did not; an `Err` means the body is incomplete (shorter than its
    /// `Content-Length`) and the connection must close.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let fin = self.writer()?.end_response().map_err(io::Error::other)?;
        if let Some(c) = self.conn.as_mut() {
            c.out.extend_from_slice(fin.last);
        }
        if fin.must_close() {
            // What was queued still goes out; the connection closes after it (the core
            // knows).
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "response shorter than its Content-Length",
            ));
        }
        Ok(())
    }

    /// Writes an interim response (`103 Early Hints`) at once, waiting for the socket;
    /// nothing once the response was started. A failed write breaks the connection.
    pub fn write_interim(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.response_started() {
            return Ok(());
        }
        if self.broken {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed"));
        }
        self.flush_with(&[bytes])
    }

    /// Queues bytes as they are (an error page written in place of a response that was
    /// never started); the connection closes after them.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        if self.response_started() {
            return;
        }
        if let Some(c) = self.conn.as_mut() {
            c.out.extend_from_slice(bytes);
            c.close_after = true;
        }
        self.finished = true;
    }
}

impl Read for Exchange {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The request body: buffered bytes, or decoded from the socket as it comes (each wait
/// at most the worker's `timeout`; a body that fails to arrive or breaks its framing
/// reads as an error).
impl BufRead for Exchange {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let pending = self.conn.as_ref().map_or(0, |c| c.body.len());
        if self.body_pos == pending {
            if self.streaming {
                self.fill_stream()?;
            } else {
                self.fill_spool()?;
            }
        }
        match &self.conn {
            Some(c) => Ok(&c.body[self.body_pos..]),
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, amt: usize) {
        let len = self.conn.as_ref().map_or(0, |c| c.body.len());
        self.body_pos = (self.body_pos + amt).min(len);
    }
}
