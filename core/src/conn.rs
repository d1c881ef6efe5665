//! The connection state machine (being written).
use alloc::sync::Arc;
use crate::config::ProtoConfig;
use crate::error::RecvError;
use crate::h1::{RequestHead, Trailers};
use crate::net::Peer;

/// A connection.
#[derive(Debug)]
pub struct Connection { _config: Arc<ProtoConfig>, _peer: Peer }
/// Its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState { /// Idle.
 Idle }
/// An event.
#[derive(Debug)]
pub enum Event<'a> {
    /// A head.
    Request(RequestHead),
    /// Body bytes.
    Data(&'a [u8]),
    /// End.
    EndOfMessage(Trailers),
    /// Need more.
    NeedData,
    /// Paused.
    Paused,
    /// Closed.
    ConnectionClosed,
}
impl Connection {
    /// New.
    pub fn new(config: Arc<ProtoConfig>, peer: Peer) -> Self { Connection { _config: config, _peer: peer } }
    /// Next.
    pub fn next_event(&mut self) -> Result<Event<'_>, RecvError> { Ok(Event::NeedData) }
}
