//! The connection state machine (being written: the API is fixed, the bodies are not).
use alloc::sync::Arc;
use crate::config::ProtoConfig;
use crate::error::RecvError;
use crate::h1::{RequestHead, Trailers};
use crate::net::Peer;

/// A connection.
#[derive(Debug)]
pub struct Connection { _config: Arc<ProtoConfig>, _peer: Peer }
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
    /// A request head was read; its body (if any) follows as `Data` events.
    Request(RequestHead),
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
/// The caller used the connection out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// `start_next_cycle` before the request was read whole.
    NotDone,
}
impl Connection {
    /// A new connection from `peer`.
    pub fn new(config: Arc<ProtoConfig>, peer: Peer) -> Self { Connection { _config: config, _peer: peer } }
    /// Buffers bytes read from the socket.
    pub fn receive(&mut self, _bytes: &[u8]) {}
    /// Records that the peer closed its sending side.
    pub fn receive_eof(&mut self) {}
    /// The next event.
    pub fn next_event(&mut self) -> Result<Event<'_>, RecvError> { Ok(Event::NeedData) }
    /// Starts reading the next request on a persistent connection.
    pub fn start_next_cycle(&mut self) -> Result<(), UsageError> { Ok(()) }
    /// Where the connection is.
    pub fn state(&self) -> ConnState { ConnState::Head }
}
