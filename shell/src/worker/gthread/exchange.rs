//! What a [`Handler`] gets for one request: the head, the body ([`Body`]: buffered bytes
//! or a blocking reader with a deadline) and the response ([`Response`]: head, body chunks,
//! `sendfile`), all framed by the core.
//!
//! The engine calls [`Handler::handle`] on the thread that read the request; that thread
//! also writes the response, so a request costs no hand-off between threads. Response
//! bytes collect in the connection's output buffer and go out in one `write(2)` when the
//! handler returns (pipelined responses share it); a chunk that would make the buffer
//! larger than [`FLUSH_AT`] is written at once with `writev(2)`, straight from the
//! caller's slice, waiting for the socket with a deadline. Whatever the socket does not
//! take when the handler is done stays with the connection, which the engine parks in the
//! poller: a slow reader costs buffer space, never a thread.

use std::io::{self, BufRead, IoSlice, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferrocorn_core::h1::RequestHead;
use ferrocorn_core::response::{self, BodyWriter, Framing, RequestInfo, ResponseHead};
use ferrocorn_core::{Connection, Event, Peer};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// The output buffer size past which response bytes are written before more are added.
pub const FLUSH_AT: usize = 64 * 1024;

/// The application side of the gthread engine: called once per request, on one of the
/// worker's `threads` threads, concurrently with other requests.
pub trait Handler: Send + Sync {
    /// Serves one request: reads `ex.body` if it wants, starts the response with
    /// [`Response::start`], writes its body, and returns. `Err(Failed)` means the handler
    /// failed and already logged why: the engine answers `500 Internal Server Error` when
    /// no byte of the response was started, and closes the connection either way. A
    /// handler that returns `Ok` without starting a response is treated as failed.
    fn handle(&self, ex: &mut Exchange<'_>) -> Result<(), Failed>;
}

/// A handler failed (it logged the reason itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

/// One request and its response, lent to [`Handler::handle`].
#[derive(Debug)]
pub struct Exchange<'a> {
    /// The request head (with the connection's PROXY header, if any).
    pub head: &'a RequestHead,
    /// The client.
    pub peer: Peer,
    /// The index, in `WorkerContext::listeners`, of the listener that accepted the
    /// connection.
    pub listener: usize,
    /// The request body.
    pub body: Body<'a>,
    /// The response.
    pub response: Response<'a>,
    /// When the request head was read whole (for the access log's durations).
    pub started: Instant,
    /// How many requests this connection carried before this one.
    pub nth: u64,
}

// ---------------------------------------------------------------------------------------
// Blocking I/O on a non-blocking socket, with a deadline per wait
// ---------------------------------------------------------------------------------------

/// Waits until `fd` is ready for `what`, at most `timeout`.
fn wait_ready(fd: BorrowedFd<'_>, what: PollFlags, timeout: Duration) -> io::Result<()> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"));
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, what)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes all of `bufs` (in order) to the non-blocking socket `fd`, waiting at most
/// `timeout` each time the socket is full.
pub(crate) fn write_all_vectored(fd: BorrowedFd<'_>, bufs: &[&[u8]], timeout: Duration) -> io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    while idx < bufs.len() {
        if off == bufs[idx].len() {
            idx += 1;
            off = 0;
            continue;
        }
        let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
        let mut n = 0;
        for (i, b) in bufs[idx..].iter().enumerate().take(4) {
            slices[n] = IoSlice::new(if i == 0 { &b[off..] } else { b });
            n += 1;
        }
        match nix::sys::uio::writev(fd, &slices[..n]) {
            Ok(mut w) => {
                while w > 0 && idx < bufs.len() {
                    let left = bufs[idx].len() - off;
                    if w >= left {
                        w -= left;
                        idx += 1;
                        off = 0;
                    } else {
                        off += w;
                        w = 0;
                    }
                }
            }
            Err(Errno::EAGAIN) => wait_ready(fd, PollFlags::POLLOUT, timeout)?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The request body
// ---------------------------------------------------------------------------------------

/// The request body, as `Read` and `BufRead`.
///
/// A body of at most the engine's buffering limit (64 KiB) is read whole before the
/// handler is called ([`Body::buffered`] gives it as one slice), so the application never
/// waits on the network. A larger one streams: reading it may block the calling thread,
/// each wait at most the worker's `timeout`; a body that fails to arrive or does not
/// follow its framing reads as an error.
#[derive(Debug)]
pub struct Body<'a> {
    inner: Inner<'a>,
}

#[derive(Debug)]
enum Inner<'a> {
    Buffered { data: &'a [u8], pos: usize },
    Stream(Stream<'a>),
}

#[derive(Debug)]
struct Stream<'a> {
    conn: &'a mut Connection,
    fd: BorrowedFd<'a>,
    buf: &'a mut Vec<u8>,
    pos: usize,
    scratch: &'a mut [u8],
    timeout: Duration,
    done: bool,
    failed: bool,
}

impl<'a> Body<'a> {
    pub(crate) fn buffered_from(data: &'a [u8]) -> Body<'a> {
        Body { inner: Inner::Buffered { data, pos: 0 } }
    }

    pub(crate) fn stream_from(
        conn: &'a mut Connection,
        fd: BorrowedFd<'a>,
        prefix: &'a mut Vec<u8>,
        scratch: &'a mut [u8],
        timeout: Duration,
    ) -> Body<'a> {
        Body { inner: Inner::Stream(Stream { conn, fd, buf: prefix, pos: 0, scratch, timeout, done: false, failed: false }) }
    }

    /// The whole body, when it was read before the handler was called.
    pub fn buffered(&self) -> Option<&[u8]> {
        match &self.inner {
            Inner::Buffered { data, .. } => Some(data),
            Inner::Stream(_) => None,
        }
    }

    /// Whether the body was read from the network to its end (so the connection may
    /// carry another request).
    pub(crate) fn complete(&self) -> bool {
        match &self.inner {
            Inner::Buffered { .. } => true,
            Inner::Stream(s) => s.done || (!s.failed && s.conn.state() == ferrocorn_core::ConnState::Done),
        }
    }

    /// Reads the rest of a streamed body and drops it, at most `budget` bytes, so the
    /// connection can carry another request. Returns whether the end was reached.
    pub(crate) fn drain(&mut self, mut budget: usize) -> bool {
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
}

impl Stream<'_> {
    fn fill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        loop {
            if self.done || self.failed {
                return Ok(());
            }
            match self.conn.next_event() {
                Ok(Event::Data(d)) => {
                    self.buf.extend_from_slice(d);
                    return Ok(());
                }
                Ok(Event::EndOfMessage(_) | Event::Paused | Event::ConnectionClosed | Event::Request(_)) => {
                    self.done = true;
                }
                Ok(Event::NeedData) => match nix::unistd::read(self.fd, self.scratch) {
                    Ok(0) => self.conn.receive_eof(),
                    Ok(n) => self.conn.receive(&self.scratch[..n]),
                    Err(Errno::EAGAIN) => {
                        if let Err(e) = wait_ready(self.fd, PollFlags::POLLIN, self.timeout) {
                            self.failed = true;
                            return Err(e);
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        self.failed = true;
                        return Err(e.into());
                    }
                },
                Err(e) => {
                    self.failed = true;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
            }
        }
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.inner {
            Inner::Buffered { data, pos } => Ok(&data[*pos..]),
            Inner::Stream(s) => {
                if s.pos == s.buf.len() {
                    s.fill()?;
                }
                Ok(&s.buf[s.pos..])
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.inner {
            Inner::Buffered { data, pos } => *pos = (*pos + amt).min(data.len()),
            Inner::Stream(s) => s.pos = (s.pos + amt).min(s.buf.len()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The response
// ---------------------------------------------------------------------------------------

/// The response of one request: framing chosen by the core, bytes buffered with the
/// connection and written by the engine, large chunks written at once.
#[derive(Debug)]
pub struct Response<'a> {
    fd: BorrowedFd<'a>,
    out: &'a mut Vec<u8>,
    out_pos: &'a mut usize,
    info: RequestInfo,
    server_keepalive: bool,
    stopping: &'a AtomicBool,
    timeout: Duration,
    server: &'a [u8],
    state: Option<(Framing, BodyWriter)>,
    code: u16,
    finished: bool,
    broken: bool,
}

impl<'a> Response<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        fd: BorrowedFd<'a>,
        out: &'a mut Vec<u8>,
        out_pos: &'a mut usize,
        info: RequestInfo,
        server_keepalive: bool,
        stopping: &'a AtomicBool,
        timeout: Duration,
        server: &'a [u8],
    ) -> Response<'a> {
        Response {
            fd,
            out,
            out_pos,
            info,
            server_keepalive,
            stopping,
            timeout,
            server,
            state: None,
            code: 0,
            finished: false,
            broken: false,
        }
    }

    /// Starts the response: chooses the framing (`Content-Length`, chunked, or until
    /// close; keep-alive only if the server allows it now, so a response started after
    /// TERM says `Connection: close`) and queues the head. Fails
    /// when a response was already started.
    pub fn start(&mut self, head: &ResponseHead) -> io::Result<()> {
        if self.state.is_some() {
            return Err(io::Error::other("the response was already started"));
        }
        let keepalive = self.server_keepalive && !self.stopping.load(Ordering::Relaxed);
        let framing = response::choose_framing(&self.info, head, keepalive);
        response::encode_head(head, &framing, self.server, &date_now(), self.out);
        self.code = head.code();
        self.state = Some((framing, BodyWriter::new(framing.body)));
        Ok(())
    }

    /// Whether [`Response::start`] was called.
    pub fn started(&self) -> bool {
        self.state.is_some()
    }

    /// The status code, once started.
    pub fn status(&self) -> Option<u16> {
        self.state.as_ref().map(|_| self.code)
    }

    /// Body bytes written (without chunk framing): the access log's `%(b)s`.
    pub fn sent(&self) -> u64 {
        self.state.as_ref().map_or(0, |(_, w)| w.sent())
    }

    /// Whether the connection may carry another request after this response (as the
    /// head says; the engine may still close it if the body was not read whole).
    pub fn keep_alive(&self) -> bool {
        self.state.as_ref().is_some_and(|(f, _)| f.keep_alive) && !self.broken
    }

    /// The framing chosen by [`Response::start`].
    pub fn framing(&self) -> Option<&Framing> {
        self.state.as_ref().map(|(f, _)| f)
    }

    fn writer(&mut self) -> io::Result<&mut BodyWriter> {
        if self.broken {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed"));
        }
        match &mut self.state {
            Some((_, w)) => Ok(w),
            None => Err(io::Error::other("the response was not started")),
        }
    }

    /// Writes what is buffered and then `extra`, waiting for the socket.
    fn flush_with(&mut self, extra: &[&[u8]]) -> io::Result<()> {
        let pending = &self.out[*self.out_pos..];
        let mut bufs: [&[u8]; 4] = [pending, &[], &[], &[]];
        for (slot, b) in bufs[1..].iter_mut().zip(extra) {
            *slot = b;
        }
        let r = write_all_vectored(self.fd, &bufs[..1 + extra.len().min(3)], self.timeout);
        self.out.clear();
        *self.out_pos = 0;
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Writes a chunk of the body (framed; cut at `Content-Length`; dropped for HEAD and
    /// other no-body responses). Small chunks are buffered; a chunk that would grow the
    /// buffer past [`FLUSH_AT`] is written at once, without a copy.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let frame = self.writer()?.frame(data.len());
        if frame.is_empty() {
            return Ok(());
        }
        let body = &data[..frame.take];
        if self.out.len() + body.len() + 32 <= FLUSH_AT {
            self.out.extend_from_slice(frame.prefix());
            self.out.extend_from_slice(body);
            self.out.extend_from_slice(frame.suffix);
            Ok(())
        } else {
            self.flush_with(&[frame.prefix(), body, frame.suffix])
        }
    }

    /// Writes `count` bytes of `file` from `offset` as body bytes with `sendfile(2)`
    /// (framed like [`Response::write`]). Returns the bytes sent; fewer than `count` when
    /// the file is shorter.
    pub fn sendfile(&mut self, file: BorrowedFd<'_>, offset: u64, count: u64) -> io::Result<u64> {
        let len = usize::try_from(count).unwrap_or(usize::MAX);
        let frame = self.writer()?.frame(len);
        if frame.take == 0 {
            return Ok(0);
        }
        self.flush_with(&[frame.prefix()])?;
        let mut off = i64::try_from(offset).map_err(io::Error::other)?;
        let mut left = frame.take;
        while left > 0 {
            match nix::sys::sendfile::sendfile64(self.fd, file, Some(&mut off), left.min(1 << 30)) {
                Ok(0) => break,
                Ok(n) => left -= n,
                Err(Errno::EAGAIN) => {
                    if let Err(e) = wait_ready(self.fd, PollFlags::POLLOUT, self.timeout) {
                        self.broken = true;
                        return Err(e);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(e.into());
                }
            }
        }
        if left > 0 {
            // The file was shorter than promised: the framing cannot be kept.
            self.broken = true;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the count"));
        }
        self.out.extend_from_slice(frame.suffix);
        Ok((frame.take - left) as u64)
    }

    /// Ends the body (the last chunk of a chunked body). Called by the engine when the
    /// handler did not; an `Err` means the body is incomplete (shorter than its
    /// `Content-Length`) and the connection must close.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let fin = self.writer()?.finish();
        self.out.extend_from_slice(fin.last);
        if fin.must_close() {
            self.broken = true;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "response shorter than its Content-Length"));
        }
        Ok(())
    }

    pub(crate) fn broken(&self) -> bool {
        self.broken
    }
}

/// The `Date` header value, formatted once per second per thread.
fn date_now() -> [u8; 29] {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(i64, [u8; 29])> = const { Cell::new((i64::MIN, [0; 29])) };
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    CACHE.with(|c| {
        let (secs, date) = c.get();
        if secs == now {
            return date;
        }
        let date = response::http_date(now);
        c.set((now, date));
        date
    })
}

impl AsFd for Response<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
    }
}
