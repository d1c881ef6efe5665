//! The connection state machine: bytes in, events out.
//!
//! ```text
//!   [Proxy] --header--> [Head] --head--> [Body] --end--> [Done] --start_next_cycle--> [Head]
//!      |                  |                 |               (Paused until then)
//!      +------------------+-----------------+--> [Failed] (any RecvError; terminal)
//!                         +--EOF between requests--> [Closed]
//! ```
//!
//! The connection buffers what [`Connection::receive`] gives it and hands out body bytes
//! as slices of that buffer (no copy). The caller reads from the socket only after
//! [`Event::NeedData`], so the buffer holds at most one read beyond what the parser's
//! limits allow.

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

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
pub enum UsageError {
    /// `start_next_cycle` before the request was read whole: body bytes are never read
    /// as a request. Drain the body with `next_event` (within a cap) or close.
    NotDone,
    /// `start_next_cycle` after a request that does not allow the connection to persist.
    MustClose,
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

/// One HTTP/1.x connection, server side, receiving.
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
    keep_alive: bool,
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

    /// Whether the last request allows the connection to persist.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
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

    /// Starts reading the next request on a persistent connection. Pipelined bytes already
    /// received stay buffered and are parsed next.
    pub fn start_next_cycle(&mut self) -> Result<(), UsageError> {
        match self.state {
            State::Done if self.keep_alive => {
                self.state = State::Head;
                self.has_head = false;
                let fields = core::mem::take(&mut self.head.fields);
                self.parser.reset(fields);
                Ok(())
            }
            State::Done => Err(UsageError::MustClose),
            _ => Err(UsageError::NotDone),
        }
    }
}
