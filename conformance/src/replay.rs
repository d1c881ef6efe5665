//! Replaying bytes through a [`Connection`] and recording what came out.
//!
//! The driver behaves like a shell that reads eagerly: after each piece it drains events
//! until `NeedData`; after the last piece it calls `receive_eof` and drains until the
//! connection ends. `Paused` (a request was read whole) is always answered with
//! `start_next_cycle`, so pipelined requests are all read, unless the request does not
//! allow the connection to persist (then the driver closes, as the shell and gunicorn
//! do). The connection ends with `ConnectionClosed`, that close, an error, or a stall (`NeedData` although EOF was recorded: a
//! shell would wait forever).

use std::sync::Arc;

use ferrocorn_core::{Connection, Event, Peer, ProtoConfig, RecvError};

use crate::case::FieldList;

/// One request as the core delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Vec<u8>,
    /// The request-target.
    pub target: Vec<u8>,
    /// `(major, minor)`.
    pub version: (u8, u8),
    /// The fields, names as sent.
    pub headers: FieldList,
    /// The concatenated `Data` events.
    pub body: Vec<u8>,
    /// The trailer fields of `EndOfMessage`, names as sent.
    pub trailers: FieldList,
    /// Whether `EndOfMessage` was seen.
    pub complete: bool,
    /// The body framing the head announced (`Debug` of `BodyKind`).
    pub framing: String,
    /// `RequestHead::keep_alive`.
    pub keep_alive: bool,
    /// `RequestHead::expect_continue`.
    pub expect_continue: bool,
    /// `Debug` of the PROXY information attached to the head, if any.
    pub proxy: Option<String>,
}

/// How the connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// `ConnectionClosed` (after EOF, or earlier when the connection may not persist).
    Closed,
    /// The last request does not allow the connection to persist (`keep_alive` is false),
    /// so the driver closed after it, as the shell would.
    NotPersistent,
    /// `next_event` returned an error.
    Error {
        /// `gunicorn_class()`.
        class: &'static str,
        /// `status()`.
        status: u16,
        /// `Display` of the error.
        message: String,
    },
    /// `NeedData` after `receive_eof`: the core waits for bytes that will never come.
    Stalled,
    /// `start_next_cycle` refused after `Paused`.
    Usage(String),
    /// The core kept producing events without consuming input (a loop).
    Runaway,
}

/// Everything a connection produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The requests, in order (the last one may be incomplete if the connection failed).
    pub requests: Vec<Request>,
    /// How it ended.
    pub end: End,
}

fn pairs<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> FieldList {
    fields.map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

impl Outcome {
    /// Whether two outcomes are the same but for the text of the error message.
    ///
    /// A fail-fast parser reports what it had seen when it gave up, which depends on
    /// where the input was cut (`Request Line is too large (4097 > 4094)` byte by byte,
    /// `(4118 > 4094)` whole; gunicorn does the same), so the split-independence check
    /// compares everything else: requests, bodies, trailers, framing, error class and
    /// status.
    pub fn same_but_message(&self, other: &Outcome) -> bool {
        let end = |e: &End| match e {
            End::Error { class, status, .. } => {
                End::Error { class, status: *status, message: String::new() }
            }
            other => other.clone(),
        };
        self.requests == other.requests && end(&self.end) == end(&other.end)
    }

    fn error(&mut self, e: &RecvError) {
        self.end =
            End::Error { class: e.gunicorn_class(), status: e.status(), message: e.to_string() };
    }
}

/// Feeds `chunks` (then EOF) to a new connection and records the outcome.
pub fn replay(config: &Arc<ProtoConfig>, peer: Peer, chunks: &[&[u8]]) -> Outcome {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    // Far more events than any honest parse needs (at most a few per input byte).
    let mut budget = 4 * total + 64;
    let mut conn = Connection::new(Arc::clone(config), peer);
    let mut out = Outcome { requests: Vec::new(), end: End::Closed };
    for chunk in chunks {
        conn.receive(chunk);
        if let Some(end) = drain(&mut conn, &mut out, false, &mut budget) {
            out.end = end;
            return out;
        }
    }
    conn.receive_eof();
    out.end = drain(&mut conn, &mut out, true, &mut budget).unwrap_or(End::Stalled);
    out
}

/// Pulls events until more input is needed (`None`) or the connection ended.
fn drain(conn: &mut Connection, out: &mut Outcome, eof: bool, budget: &mut usize) -> Option<End> {
    loop {
        if *budget == 0 {
            return Some(End::Runaway);
        }
        *budget -= 1;
        match conn.next_event() {
            Ok(Event::Request(head)) => out.requests.push(Request {
                method: head.method().to_vec(),
                target: head.target().to_vec(),
                version: (head.version.major, head.version.minor),
                headers: pairs(head.headers()),
                body: Vec::new(),
                trailers: Vec::new(),
                complete: false,
                framing: format!("{:?}", head.body),
                keep_alive: head.keep_alive,
                expect_continue: head.expect_continue,
                proxy: head.proxy.as_ref().map(|p| format!("{p:?}")),
            }),
            Ok(Event::Data(bytes)) => match out.requests.last_mut() {
                Some(req) if !req.complete => req.body.extend_from_slice(bytes),
                _ => return Some(End::Usage(String::from("Data event outside a request"))),
            },
            Ok(Event::EndOfMessage(trailers)) => match out.requests.last_mut() {
                Some(req) if !req.complete => {
                    req.trailers = pairs(trailers.fields());
                    req.complete = true;
                }
                _ => {
                    return Some(End::Usage(String::from("EndOfMessage event outside a request")));
                }
            },
            Ok(Event::NeedData) => return if eof { Some(End::Stalled) } else { None },
            Ok(Event::Paused) => {
                // The shell closes after a request that does not allow the connection to
                // persist (gunicorn stops iterating when `should_close()`).
                if out.requests.last().is_some_and(|r| !r.keep_alive) {
                    return Some(End::NotPersistent);
                }
                if let Err(e) = conn.start_next_cycle() {
                    return Some(End::Usage(format!("start_next_cycle after Paused: {e:?}")));
                }
            }
            // Before EOF too: the core may end a connection the request asked to close.
            Ok(Event::ConnectionClosed) => return Some(End::Closed),
            Ok(e) => return Some(End::Usage(format!("an event the replay does not know: {e:?}"))),
            Err(e) => {
                out.error(&e);
                return Some(out.end.clone());
            }
        }
    }
}
