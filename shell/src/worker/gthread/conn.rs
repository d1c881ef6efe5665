//! One accepted connection of the engine and what persists across its requests: the
//! socket, the core's connection state, the output buffer, the body being collected or
//! spooled, and the poller bookkeeping. The engine owns it between requests; an
//! [`super::exchange::Exchange`] holds it while a handler serves a request.

use ferrocorn_core::{Connection, Peer};

use crate::transport::Stream;

/// One accepted connection and everything that persists across its requests.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) core: Connection,
    pub(super) peer: Peer,
    pub(super) listener: usize,
    /// Response bytes not written yet, from `out_pos`.
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    /// The body of the current request, collected before the handler is called (and the
    /// pieces of a streamed body as they are read).
    pub(super) body: Vec<u8>,
    /// Registered in epoll (ADD was done).
    pub(super) registered: bool,
    /// The socket may hold bytes we did not read (cleared when a read comes back short).
    pub(super) may_read: bool,
    /// Close once the output is written.
    pub(super) close_after: bool,
    /// What a parked connection waits for, and until when.
    pub(super) wait: Wait,
    /// The deadline of the request being read (set at its first byte).
    pub(super) req_deadline: u64,
    /// The `Content-Length` of the body being collected before the handler is called.
    pub(super) body_target: Option<u64>,
    /// Body bytes read straight into `body` and then given to the core, whose `Data`
    /// events for them are not copied again.
    pub(super) body_skip: usize,
    /// The file a body larger than `body` holds is spooled to while it arrives (an
    /// unnamed file in `tmp_upload_dir`), and how many bytes it got.
    pub(super) spool: Option<std::fs::File>,
    pub(super) spooled: u64,
}

/// What a connection parked in the poller waits for, and when it is closed if that does
/// not come (monotonic ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// A request (or more of one): readable.
    Read { until: u64 },
    /// Room for the pending output: writable.
    Write { until: u64 },
}

impl Wait {
    /// When the wait ends.
    pub(super) fn until(self) -> u64 {
        match self {
            Wait::Read { until } | Wait::Write { until } => until,
        }
    }

    /// Whether the connection waits to write.
    pub(super) fn writing(self) -> bool {
        matches!(self, Wait::Write { .. })
    }
}
