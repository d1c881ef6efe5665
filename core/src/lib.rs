//! # ferrocorn-core: the sans-IO protocol core
//!
//! **The contract.** Nothing in this crate touches a socket, a file, a clock, a thread or a
//! Python interpreter. It is `no_std` (with `alloc`) outside of tests, so `std::net`,
//! `std::fs` and `std::time` are unreachable by construction. The caller (the shell)
//! owns every buffer, every deadline and every syscall:
//!
//! ```text
//!            shell (sockets, timers, Python)            |        core (this crate)
//!  ---------------------------------------------------- | -------------------------------------
//!  read(2) ----- bytes -------------------------------> | Connection::receive / receive_eof
//!                                                       |   PROXY header (proxy::)          |
//!                                                       |   request head (h1::head)         |
//!  <---------- Event::Request / Data / EndOfMessage --- | Connection::next_event            |
//!            | NeedData | Paused | ConnectionClosed     |   body framing (h1::body)         |
//!  build the environ: environ::build(&RequestHead, ..)  | environ:: (WSGI variables, data)  |
//!  app response -> response::ResponseHead ------------> | response:: (framing, head bytes)  |
//!  <---------- bytes to write ------------------------- |                                   |
//!  Connection::start_next_cycle (keep-alive)            |                                   |
//!  access log: access_log::AccessFormat::render(&rec)   | access_log:: (atoms, escaping)    |
//! ```
//!
//! **Call order.** `receive` buffers bytes; `next_event` turns buffered bytes into events;
//! `Event::NeedData` is a normal outcome that means "read more, then call `next_event`
//! again"; an `Err(RecvError)` is terminal for the connection (answer `status()` and close).
//! After `EndOfMessage` the connection is `Paused` until `start_next_cycle` is called (the
//! caller decides, from `RequestHead::keep_alive` and its own settings, whether to go on).
//!
//! **Policy is data.** Every gunicorn setting that changes parsing is a field of
//! [`config::ProtoConfig`]; the parser never reads a setting. Leniencies that open
//! smuggling holes are opt-in and documented as dangerous.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "gunicorn")]
pub mod access_log;
pub mod config;
pub mod conn;
pub mod date;
#[cfg(feature = "gunicorn")]
pub mod environ;
pub mod error;
#[cfg(feature = "gunicorn")]
pub mod forwarded;
pub mod h1;
pub mod net;
pub mod proxy;
// The error pages quote what was refused as Python's `repr` does, so the module is always
// built; it is public with the gunicorn feature.
#[cfg(feature = "gunicorn")]
pub mod pyrepr;
#[cfg(not(feature = "gunicorn"))]
#[allow(dead_code, unreachable_pub)]
mod pyrepr;
pub mod response;
#[cfg(feature = "gunicorn")]
pub mod statsd;

#[cfg(test)]
mod tests;

pub use config::{Limits, ParserPolicy, ProtoConfig, UnderscoreHeaders};
pub use conn::{ConnState, Connection, Discard, Event, UsageError};
#[cfg(feature = "gunicorn")]
pub use environ::EnvironError;
pub use error::{Detail, HeadLimit, RecvError};
pub use h1::{BodyKind, HeaderField, RequestHead, Trailers, Version};
pub use net::{AllowList, AllowListError, Peer};
pub use response::{ResponseError, ResponseHead};
