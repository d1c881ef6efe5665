//! The connection state machine, both directions: bytes in, events out; a response head,
//! body frames and the end of the response in, bytes to write out; and the one answer to
//! "may this connection carry another request?".
//!
//! ```text
//! receiving:
//!   [Proxy] --header--> [Head] --head--> [Body] --end--> [Done] --start_next_cycle--> [Head]
//!      |                  |                 |               (Paused until then)
//!      +------------------+-----------------+--> [Failed] (any RecvError; terminal)
//!                         +--EOF between requests--> [Closed]
//! sending (one response per request):
//!   [Idle] --send_response--> [Body] --send_data ... end_response--> [Ended]
//!     ^                                                                 |
//!     +---------------------- start_next_cycle (if keep_alive) --------+
//! ```
//!
//! The connection buffers what [`Connection::receive`] gives it and hands out body bytes
//! as slices of that buffer (no copy). The caller reads from the socket only after
//! [`Event::NeedData`], so the buffer holds at most one read beyond what the parser's
//! limits allow.
//!
//! **The keep-alive rule** lives here and nowhere else: [`Connection::keep_alive`] is true
//! only while
//! - the request allows it (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
//!   `Connection: keep-alive`; never CONNECT) and its body was read or skipped through its
//!   framing, never abandoned past the budget of [`Connection::discard_body`];
//! - the server did not say it will close ([`Connection::close_after_response`]: no
//!   keep-alive configured, a stop, `max_requests`, a retiring worker, a write failure);
//! - the response's framing allows it: its body does not run until the connection closes
//!   (HTTP/1.0 without `Content-Length`, a 2xx answer to CONNECT);
//! - the response body, once ended, was as long as its `Content-Length`.
//!
//! gunicorn spreads the same rule over `Request.should_close`, `Response.should_close`
//! and its workers' `alive` flags; h11 keeps it in its `ConnectionState`, as here.

use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::config::{ProtoConfig, ProxyMode};
use crate::error::{Detail, RecvError};
use crate::h1::chunked::{ChunkedDecoder, Step};
use crate::h1::head::{HeadParser, Progress};
use crate::h1::{BodyKind, RequestHead, Trailers};
use crate::net::Peer;
use crate::proxy::{self, Parsed, ProxyInfo};
use crate::response::{
    self, BodyFraming, BodyWriter, Finish, Frame, Framing, RequestInfo, ResponseHead,
};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnState {
    /// Waiting for the PROXY header.
    Proxy,
    /// Waiting for (or reading) a request head.
    Head,
    /// Reading a body.
    Body,
    /// A request was read whole; `start_next_cycle` starts the next one.
    Done,
    /// The peer closed cleanly between requests.
    Closed,
    /// An error was returned; the connection must close.
    Failed,
}

/// What `next_event` found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A request head was read; its body (if any) follows as `Data` events. The head
    /// stays available from [`Connection::head`] until `start_next_cycle`.
    Request(&'a RequestHead),
    /// Bytes of the decoded body (never empty).
    Data(&'a [u8]),
    /// The body is complete, with the trailers of a chunked body.
    EndOfMessage(Trailers),
    /// More bytes are needed: read, `receive`, and call again.
    NeedData,
    /// The request was read whole; call `start_next_cycle` for the next one.
    Paused,
    /// The peer closed the connection cleanly between requests.
    ConnectionClosed,
}

/// How far [`Connection::discard_body`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// The rest of the body was skipped: the request is read whole (`Paused` next).
    Done,
    /// More bytes are needed to get to the end of the body.
    NeedData,
    /// The body goes on past the budget: close the connection rather than read on.
    OverBudget,
}

/// The caller used the connection out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// `start_next_cycle` before the request was read whole: body bytes are never read
    /// as a request. Drain the body with `next_event` (within a cap) or close.
    NotDone,
    /// `start_next_cycle` when the connection may not persist ([`Connection::keep_alive`]
    /// is false).
    MustClose,
    /// `send_response` with no request to answer (before a `Request` event).
    NoRequest,
    /// `send_response` when the response to this request was already started.
    ResponseStarted,
    /// `send_data` or `end_response` before `send_response`.
    NoResponse,
    /// `start_next_cycle` while a started response was not ended with `end_response`.
    ResponseNotEnded,
}

impl core::fmt::Display for UsageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UsageError::NotDone => "the request was not read whole",
            UsageError::MustClose => "the connection may not persist",
            UsageError::NoRequest => "there is no request to answer",
            UsageError::ResponseStarted => "the response was already started",
            UsageError::NoResponse => "the response was not started",
            UsageError::ResponseNotEnded => "the response was not ended",
        })
    }
}

impl core::error::Error for UsageError {}

/// Whether a response may leave the connection open for another request: the request
/// allows it, the server does, and the body does not run until the connection closes.
/// (Whether the body then came out whole is checked by [`Connection::keep_alive`].)
pub(crate) fn persists(request: bool, server: bool, body: BodyFraming) -> bool {
    request && server && body != BodyFraming::CloseDelimited
}

/// The send side of the current exchange.
#[derive(Debug)]
enum Sending {
    /// No response to the current request yet.
    Idle,
    /// The head was encoded; body frames follow.
    Body(Framing, BodyWriter),
    /// The response ended; the flag says whether its body was as long as promised.
    Ended(Framing, BodyWriter, bool),
}

#[derive(Debug)]
enum State {
    Proxy,
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
    Closed,
    Failed(RecvError),
}

/// One HTTP/1.x connection, server side: it reads requests and frames their responses.
///
/// An HTTP/1.0 client that does not ask for keep-alive gets `Connection: close`, and the
/// connection refuses the next cycle; the server never decides that itself:
///
/// ```
/// use std::sync::Arc;
/// use ferrocorn_core::response::ResponseHead;
/// use ferrocorn_core::{Connection, Event, Peer, ProtoConfig, UsageError};
///
/// let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
/// conn.receive(b"GET / HTTP/1.0\r\n\r\n");
/// assert!(matches!(conn.next_event()?, Event::Request(_)));
/// assert!(matches!(conn.next_event()?, Event::EndOfMessage(_)));
/// let head = ResponseHead::from_app(b"204 No Content", std::iter::empty())?;
/// let mut out = Vec::new();
/// let framing = conn.send_response(&head, b"", b"", &mut out)?;
/// conn.end_response()?;
/// assert!(!framing.keep_alive && !conn.keep_alive());
/// assert_eq!(out, b"HTTP/1.0 204 No Content\r\nConnection: close\r\n\r\n");
/// assert_eq!(conn.start_next_cycle(), Err(UsageError::MustClose));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Arc<ProtoConfig>,
    peer: Peer,
    trusted: bool,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    state: State,
    parser: HeadParser,
    /// The current request's head; its buffers are reused from request to request.
    head: RequestHead,
    has_head: bool,
    proxy: Option<Arc<ProxyInfo>>,
    /// The request allows the connection to persist (its head says so, and its body was
    /// not abandoned).
    keep_alive: bool,
    /// The server said it will close after the current response.
    close_wanted: bool,
    sending: Sending,
    requests: u64,
}

impl Connection {
    /// A new connection from `peer`.
    pub fn new(config: Arc<ProtoConfig>, peer: Peer) -> Self {
        let trusted = config.trust.forwarded_allow.allows(&peer);
        let state = if config.proxy.mode == ProxyMode::Off { State::Head } else { State::Proxy };
        Connection {
            config,
            peer,
            trusted,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            state,
            parser: HeadParser::new(),
            head: RequestHead::empty(),
            has_head: false,
            proxy: None,
            keep_alive: false,
            close_wanted: false,
            sending: Sending::Idle,
            requests: 0,
        }
    }

    /// Buffers bytes read from the socket.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            } else if self.pos >= 4096 && self.pos * 2 >= self.buf.len() {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Records that the peer closed its sending side: no more bytes will come.
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// Bytes received and not yet consumed (pipelined requests, unread body).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Where the connection is.
    pub fn state(&self) -> ConnState {
        match self.state {
            State::Proxy => ConnState::Proxy,
            State::Head => ConnState::Head,
            State::Length(_) | State::Chunked(_) => ConnState::Body,
            State::Done => ConnState::Done,
            State::Closed => ConnState::Closed,
            State::Failed(_) => ConnState::Failed,
        }
    }

    /// Whether the connection may carry another request after the current one, as far as
    /// is known now: the keep-alive rule of the module documentation, over the request,
    /// the server's wish, and the response as far as it was sent. Before the response it
    /// says whether the response may say `Connection: keep-alive`; after
    /// [`Connection::end_response`] it is the final answer, and
    /// [`Connection::start_next_cycle`] succeeds exactly when it is true and the request
    /// was read whole.
    pub fn keep_alive(&self) -> bool {
        let response = match &self.sending {
            Sending::Idle => true,
            Sending::Body(f, _) => f.keep_alive,
            Sending::Ended(f, _, complete) => f.keep_alive && *complete,
        };
        self.keep_alive && !self.close_wanted && response
    }

    /// The server will close the connection after the current response (or, when called
    /// between responses, after the next one): keep-alive is off, the worker is stopping
    /// or retiring, `max_requests` was reached, a write failed, the application failed.
    /// A response started afterwards says `Connection: close`; one already started keeps
    /// its head, and the connection closes after it. It cannot be undone.
    pub fn close_after_response(&mut self) {
        self.close_wanted = true;
    }

    /// Starts the response to the current request: chooses its framing
    /// ([`response::choose_framing`], with the keep-alive decision of
    /// [`Connection::keep_alive`]) and appends the head to `out`
    /// ([`response::encode_head`] with `server` and `date`). Returns the framing; body
    /// bytes then go through [`Connection::send_data`] and the response ends with
    /// [`Connection::end_response`]. Interim responses (`100 Continue`, `103 Early
    /// Hints`) and error pages are not responses in this sense: write them directly.
    pub fn send_response(
        &mut self,
        head: &ResponseHead,
        server: &[u8],
        date: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Framing, UsageError> {
        if !matches!(self.sending, Sending::Idle) {
            return Err(UsageError::ResponseStarted);
        }
        // A request whose body then failed is still answered (and the connection closes:
        // the failure cleared `keep_alive`).
        let Some(h) = self.head() else { return Err(UsageError::NoRequest) };
        let req = RequestInfo { keep_alive: self.keep_alive, ..RequestInfo::from_head(h) };
        let framing = response::choose_framing(&req, head, !self.close_wanted);
        response::encode_head(head, &framing, server, date, out);
        self.sending = Sending::Body(framing, BodyWriter::new(framing.body));
        Ok(framing)
    }

    fn writer(&mut self) -> Result<&mut BodyWriter, UsageError> {
        match &mut self.sending {
            Sending::Body(_, w) | Sending::Ended(_, w, _) => Ok(w),
            Sending::Idle => Err(UsageError::NoResponse),
        }
    }

    /// Frames the next `len` bytes of the response body without touching them (for
    /// `writev` or `sendfile` straight from the application's buffer): write
    /// [`Frame::prefix`], the first [`Frame::take`] bytes, then [`Frame::suffix`]. Bytes
    /// past `Content-Length`, on a no-body response or after the end are dropped (see
    /// [`BodyWriter::frame`]).
    pub fn send_data(&mut self, len: usize) -> Result<Frame, UsageError> {
        Ok(self.writer()?.frame(len))
    }

    /// Frames `data` and appends the bytes to write to `out` (the copying path of
    /// [`Connection::send_data`]).
    pub fn write_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<Frame, UsageError> {
        Ok(self.writer()?.write(data, out))
    }

    /// Ends the response: returns what to write last (the last chunk of a chunked body).
    /// A body shorter than its `Content-Length` ([`Finish::must_close`]) makes
    /// [`Connection::keep_alive`] false. A second call returns an empty [`Finish`].
    pub fn end_response(&mut self) -> Result<Finish, UsageError> {
        match core::mem::replace(&mut self.sending, Sending::Idle) {
            Sending::Idle => Err(UsageError::NoResponse),
            Sending::Body(f, mut w) => {
                let fin = w.finish();
                self.sending = Sending::Ended(f, w, !fin.must_close());
                Ok(fin)
            }
            ended @ Sending::Ended(..) => {
                self.sending = ended;
                Ok(Finish { last: b"", missing: 0 })
            }
        }
    }

    /// The framing of the current response, once started.
    pub fn framing(&self) -> Option<&Framing> {
        match &self.sending {
            Sending::Body(f, _) | Sending::Ended(f, _, _) => Some(f),
            Sending::Idle => None,
        }
    }

    /// Whether the response to the current request was started.
    pub fn response_started(&self) -> bool {
        !matches!(self.sending, Sending::Idle)
    }

    /// Whether the response to the current request was ended.
    pub fn response_ended(&self) -> bool {
        matches!(self.sending, Sending::Ended(..))
    }

    /// Body bytes of the current response framed for writing (without chunk framing):
    /// the access log's `%(b)s`.
    pub fn body_sent(&self) -> u64 {
        match &self.sending {
            Sending::Body(_, w) | Sending::Ended(_, w, _) => w.sent(),
            Sending::Idle => 0,
        }
    }

    /// Bytes the current response still owes its `Content-Length` (`None` for other
    /// framings, or before the response).
    pub fn body_remaining(&self) -> Option<u64> {
        match &self.sending {
            Sending::Body(_, w) | Sending::Ended(_, w, _) => w.remaining(),
            Sending::Idle => None,
        }
    }

    /// How many request heads were read on this connection.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The head of the current request, from its `Request` event until `start_next_cycle`.
    pub fn head(&self) -> Option<&RequestHead> {
        self.has_head.then_some(&self.head)
    }

    /// The PROXY header of the connection, once read.
    pub fn proxy(&self) -> Option<&Arc<ProxyInfo>> {
        self.proxy.as_ref()
    }

    /// Whether no byte of a new request has arrived (for idle keep-alive timeouts: an
    /// idle connection may be closed silently, a started request may not).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.parser.at_start() && self.buffered() == 0
    }

    fn fail(&mut self, e: RecvError) -> Result<Event<'_>, RecvError> {
        self.keep_alive = false;
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// The next event. `Err` is terminal: answer `status()` if nothing was sent, then close.
    pub fn next_event(&mut self) -> Result<Event<'_>, RecvError> {
        loop {
            let avail = &self.buf[self.pos..];
            match &mut self.state {
                State::Proxy => {
                    let cfg = &self.config.proxy;
                    if !cfg.allow.allows(&self.peer) {
                        let who = self.peer.ip().map(|ip| ip.to_string()).unwrap_or_default();
                        return self
                            .fail(RecvError::ForbiddenProxyRequest(Detail::new(who.as_bytes())));
                    }
                    if avail.is_empty() && self.eof {
                        self.state = State::Closed;
                        continue;
                    }
                    match proxy::parse(avail, cfg.mode) {
                        Ok(Parsed::Complete { value, consumed }) => {
                            self.pos += consumed;
                            self.proxy = Some(Arc::new(value));
                            self.state = State::Head;
                        }
                        Ok(Parsed::Partial) if self.eof => {
                            let e = if cfg.mode == ProxyMode::V2 || avail.first() == Some(&b'\r') {
                                RecvError::InvalidProxyHeader(Detail::new(avail))
                            } else {
                                RecvError::InvalidProxyLine(Detail::new(avail))
                            };
                            return self.fail(e);
                        }
                        Ok(Parsed::Partial) => return Ok(Event::NeedData),
                        Err(e) => return self.fail(e),
                    }
                }
                State::Head => match self.parser.advance(avail, &self.config, self.trusted) {
                    Err(e) => return self.fail(e),
                    Ok(Progress::NeedData) => {
                        if !self.eof {
                            return Ok(Event::NeedData);
                        }
                        if b"\r\n".starts_with(avail) {
                            self.pos = self.buf.len();
                            self.state = State::Closed;
                        } else {
                            return self.fail(RecvError::NoMoreData);
                        }
                    }
                    Ok(Progress::Done(len)) => {
                        let proxy = self.proxy.clone();
                        if let Err(e) = self.parser.finish(
                            avail,
                            len,
                            &self.config,
                            self.trusted,
                            proxy,
                            &mut self.head,
                        ) {
                            return self.fail(e);
                        }
                        self.has_head = true;
                        self.pos += len;
                        self.requests += 1;
                        self.keep_alive = self.head.keep_alive;
                        self.state = match self.head.body {
                            BodyKind::Empty => State::Length(0),
                            BodyKind::Length(n) => State::Length(n),
                            BodyKind::Chunked => State::Chunked(ChunkedDecoder::new()),
                        };
                        return Ok(Event::Request(&self.head));
                    }
                },
                State::Length(remaining) => {
                    if *remaining == 0 {
                        self.state = State::Done;
                        return Ok(Event::EndOfMessage(Trailers::default()));
                    }
                    if avail.is_empty() {
                        if self.eof {
                            return self.fail(RecvError::NoMoreData);
                        }
                        return Ok(Event::NeedData);
                    }
                    let n = (*remaining).min(avail.len() as u64);
                    *remaining -= n;
                    let start = self.pos;
                    self.pos += n as usize;
                    return Ok(Event::Data(&self.buf[start..self.pos]));
                }
                State::Chunked(decoder) => match decoder.step(avail, &self.config) {
                    Err(e) => return self.fail(e),
                    Ok(Step::Skip(n)) => self.pos += n,
                    Ok(Step::Data(n)) => {
                        let start = self.pos;
                        self.pos += n;
                        return Ok(Event::Data(&self.buf[start..self.pos]));
                    }
                    Ok(Step::NeedData) => {
                        if self.eof {
                            let e = decoder.eof_error();
                            return self.fail(e);
                        }
                        return Ok(Event::NeedData);
                    }
                    Ok(Step::End(n, trailers)) => {
                        self.pos += n;
                        self.state = State::Done;
                        return Ok(Event::EndOfMessage(trailers));
                    }
                },
                State::Done => return Ok(Event::Paused),
                State::Closed => return Ok(Event::ConnectionClosed),
                State::Failed(e) => return Err(e.clone()),
            }
        }
    }

    /// Skips what is left of the current body (the application did not read it), at most
    /// `budget` bytes of decoded body over all calls for this request (the caller keeps
    /// the count). Body bytes are only ever skipped through the body framing, never
    /// parsed as a request: past the budget the connection must close.
    pub fn discard_body(&mut self, budget: &mut u64) -> Result<Discard, RecvError> {
        loop {
            match self.state {
                State::Length(_) | State::Chunked(_) => {}
                _ => return Ok(Discard::Done),
            }
            match self.next_event()? {
                Event::Data(d) => {
                    let n = d.len() as u64;
                    if n > *budget {
                        *budget = 0;
                        self.keep_alive = false;
                        return Ok(Discard::OverBudget);
                    }
                    *budget -= n;
                }
                Event::NeedData => return Ok(Discard::NeedData),
                Event::EndOfMessage(_) | Event::Paused => return Ok(Discard::Done),
                Event::Request(_) | Event::ConnectionClosed => return Ok(Discard::Done),
            }
        }
    }

    /// Starts the next exchange on a persistent connection. Pipelined bytes already
    /// received stay buffered and are parsed next.
    ///
    /// Needs the request read whole ([`UsageError::NotDone`]), its response ended if one
    /// was started ([`UsageError::ResponseNotEnded`]), and [`Connection::keep_alive`]
    /// ([`UsageError::MustClose`]). A connection used only to read requests (a replay, a
    /// fuzz target) may skip the send side; a server always answers.
    pub fn start_next_cycle(&mut self) -> Result<(), UsageError> {
        if !matches!(self.state, State::Done) {
            return Err(UsageError::NotDone);
        }
        if matches!(self.sending, Sending::Body(..)) {
            return Err(UsageError::ResponseNotEnded);
        }
        if !self.keep_alive() {
            return Err(UsageError::MustClose);
        }
        self.state = State::Head;
        self.has_head = false;
        self.sending = Sending::Idle;
        let fields = core::mem::take(&mut self.head.fields);
        self.parser.reset(fields);
        Ok(())
    }
}
