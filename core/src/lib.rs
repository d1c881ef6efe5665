//! # ferrocorn-core: the sans-IO protocol core
//!
//! **The contract.** Nothing in this crate touches a socket, a file, a clock, a thread or a
//! Python interpreter. It is `no_std` (with `alloc`) outside of tests, so `std::net`,
//! `std::fs` and `std::time` are unreachable by construction. The caller (the shell, or
//! any server: see `examples/blocking_server.rs`) owns every buffer, every deadline and
//! every syscall:
//!
//! ```text
//!            server (sockets, timers, Python)           |        core (this crate)
//!  ---------------------------------------------------- | -------------------------------------
//!  read(2) ----- bytes -------------------------------> | Connection::receive / receive_eof
//!                                                       |   PROXY header (proxy::)
//!                                                       |   request head (h1::head)
//!  <---------- Event::Request / Data / EndOfMessage --- | Connection::next_event
//!            | NeedData | Paused | ConnectionClosed     |   body framing (h1::chunked)
//!  build the environ: environ::build(&RequestHead, ..)  | environ:: (WSGI variables, data)
//!  app status + headers -> response::ResponseHead ----> | Connection::send_response
//!  app body chunks -----------------------------------> | Connection::send_data / write_data
//!  <---------- head bytes, body frames, last chunk ---- | Connection::end_response
//!  write(2) / writev(2) / sendfile(2)                   |   (response:: framing, head bytes)
//!  Connection::keep_alive? start_next_cycle : close --> | the keep-alive rule (conn::)
//!  access log: access_log::AccessFormat::render(&rec)   | access_log:: (atoms, escaping)
//! ```
//!
//! **Call order.** `receive` buffers bytes; `next_event` turns buffered bytes into events;
//! `Event::NeedData` is a normal outcome that means "read more, then call `next_event`
//! again"; an `Err(RecvError)` is terminal for the connection (answer
//! [`response::error_response`] and close). The response goes through the same
//! [`Connection`]: `send_response`, `send_data`, `end_response`. After `EndOfMessage` the
//! connection is `Paused` until `start_next_cycle`, which succeeds only when
//! [`Connection::keep_alive`] says the connection may be reused; that answer is the one
//! place the keep-alive rule lives (see [`conn`]).
//!
//! ```
//! use std::sync::Arc;
//! use ferrocorn_core::{Connection, Event, Peer, ProtoConfig};
//!
//! let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
//! conn.receive(b"GET /hello?x=1 HTTP/1.1\r\nHost: example.com\r\n");
//! assert!(matches!(conn.next_event()?, Event::NeedData)); // the head is not complete
//! conn.receive(b"\r\n");
//! let Event::Request(head) = conn.next_event()? else { unreachable!() };
//! assert_eq!((head.method(), head.path(), head.query()), (&b"GET"[..], &b"/hello"[..], &b"x=1"[..]));
//! assert_eq!(head.header(b"host"), Some(&b"example.com"[..]));
//! # Ok::<(), ferrocorn_core::RecvError>(())
//! ```
//!
//! **Policy is data.** Every gunicorn setting that changes parsing is a field of
//! [`config::ProtoConfig`]; the parser never reads a setting. Leniencies that open
//! smuggling holes are opt-in and documented as dangerous.
//!
//! **Features.** `gunicorn` (default) adds the WSGI- and gunicorn-specific modules:
//! `environ` (with `forwarded`), `access_log`, `statsd` and `pyrepr`. Without it the crate
//! is the HTTP/1.1 and PROXY protocol alone.
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

/// The examples of `README.md`, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use config::{Limits, ParserPolicy, ProtoConfig, UnderscoreHeaders};
pub use conn::{ConnState, Connection, Discard, Event, UsageError};
#[cfg(feature = "gunicorn")]
pub use environ::EnvironError;
pub use error::{Detail, HeadLimit, RecvError};
pub use h1::{BodyKind, HeaderField, RequestHead, Trailers, Version};
pub use net::{AllowList, AllowListError, Peer};
pub use response::{ResponseError, ResponseHead};
