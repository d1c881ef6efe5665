//! The gthread worker's engine: one event loop per worker process, shared by a pool of
//! exactly `threads` threads that run the application (`-k gthread`, and `-k sync` with
//! `--threads` > 1).
//!
//! # Threading model: leader/follower over one epoll
//!
//! ```text
//!   main thread: heartbeat, signals, deadlines (every 100 ms), graceful stop, and
//!                promotes a follower when no thread has polled for 2 ms (1 ms tick while
//!                requests block, 5 ms otherwise)
//!
//!   leader (one of the `threads`):  epoll_wait(1 event) --+--> listener: accept a few,
//!        ^                                                |      serve the first
//!        |                                                +--> connection: take it from
//!        |                                                |      its slot, serve it, ...
//!        +--- poll again (no sleep if events are ready) <--+--- park it (EPOLLONESHOT
//!                                                               re-arm) or close it
//!   followers: wait on a condvar until there is no leader and they are woken
//! ```
//!
//! Connections are registered with `EPOLLONESHOT`, so an event goes to exactly one
//! thread, and that thread owns the connection until it parks it again: it
//! reads, parses (the core's incremental `Connection`), calls the application, writes the
//! response, and, when a pipelined request is already buffered, serves that one too, all
//! without handing the request to another thread. A request costs `epoll_wait`, `read`,
//! `write` and one `epoll_ctl` to re-arm: no futex wake-up and no context switch between
//! an I/O thread and an application thread, which is what a hand-off design pays twice
//! per request (a few microseconds each, the whole CPU budget of a hello-world request).
//!
//! Listeners are level-triggered and `EPOLLEXCLUSIVE` in every worker's poller: a new
//! connection wakes one worker, the first in the kernel's queue whose leader is waiting (a
//! worker busy serving is passed over). Connections are balanced over the workers, which
//! matters for keep-alive clients (each connection stays with its worker for its life):
//! every worker publishes its open connections in its heartbeat slot; after accepting, a
//! worker with more than another registers the listener again, which moves it to the back
//! of the kernel's queue; a wake-up accepts at most 16 and stops once this worker has 4
//! more than the least loaded one, and the connections it left pending are taken first
//! thing by its next thread about to poll, if it is still within 4 (rather than when the
//! poller reports the listener again, behind every connection ready before it).
//!
//! One thread polls at a time (the leader). When it takes an event it stops polling and
//! serves, without waking anyone; when done it polls again, and gets the next ready event
//! at once. So while requests are short (Python under the GIL, where a second thread
//! could only wait for the GIL anyway) one hot thread does the work: no wake-ups, no GIL
//! hand-offs, warm caches. When no thread has polled for 2 ms and every serving thread
//! is blocked in a long request (a database call, a sleep, a slow upload: no serving
//! thread is running or runnable, per `/proc/self/task/*/stat`) the main thread wakes a
//! follower, which becomes the leader: up to `threads` requests then run at once, and a
//! request waits about 2 ms for a free thread (the main thread checks every millisecond
//! for a second after it last found every serving thread blocked, and every 5 ms
//! otherwise, so the first blocking request after a stretch of short ones may wait up to
//! 5 ms). A thread that is merely preempted on a busy machine does not get a follower promoted: it would only compete with it for the
//! CPU and the GIL (and a thread waiting for the GIL can wait whole switch intervals).
//!
//! A connection is owned by at most one thread at a time. Idle keep-alive connections, and
//! slow clients (a head or a small body trickling in, a client that does not read its
//! response) sit in the poller owned by nobody, in a slot of a fixed table
//! (`worker_connections` slots): they cost a slot and their buffers, never a thread.
//! Tokens carry a generation, so an event for a connection closed meanwhile is ignored.
//!
//! - **Bodies.** A body of at most [`Options::buffer_body`] bytes (64 KiB) is read before
//!   the application is called, so the application never waits on the network (an
//!   `Expect: 100-continue` is answered as the engine starts reading it); one that has not
//!   arrived whole `timeout` seconds after the request's first byte is answered
//!   `408 Request Timeout` with one log line, without calling the handler. A larger one
//!   streams: reading `wsgi.input` may block the serving thread, each wait bounded by
//!   `timeout`; its `100 Continue` goes out when the handler first reads, never after the
//!   response started (the connection then closes after the response). The response to a
//!   body the handler did not read whole goes out when the handler returns, never after
//!   the body: with more than 64 KiB left the response says `Connection: close` and the
//!   connection closes after it, with less the rest is skipped to keep the connection.
//! - **Spooled bodies** (when `tmp_upload_dir` is set). A `Content-Length` body over
//!   64 KiB and up to [`Options::spool_limit`] (8 MiB) without `Expect: 100-continue` is
//!   read in the poller, without a thread, into an unnamed file in `tmp_upload_dir`
//!   ([`Options::spool_dir`]), and the handler is called when it is
//!   all there, reading it from the file: a slow upload costs a connection slot and a
//!   file, never a thread (200 uploads at 1 byte/s leave the other clients served at
//!   100%). Each read must make progress within `timeout` (as a streamed body's), else
//!   `408 Request Timeout` and one log line. A body with `Expect: 100-continue` (the
//!   client asks whether it is wanted), over the limit, or for an application that asks
//!   for streamed bodies (`ferrocorn_stream_request_body = True` on the application
//!   object, which sets the limit to 0) streams as above.
//! - **Responses** that the handler has all at once (a WSGI list) collect in the
//!   connection's buffer and are written when the handler returns, without blocking (head
//!   and body in one `write(2)`); what the socket does not take is parked with `EPOLLOUT`
//!   and the thread is free. Chunks that would grow the buffer past 64 KiB are written at
//!   once (waits bounded by `timeout`), so the buffer stays bounded. A streamed response
//!   (each chunk a WSGI iterator yields, `write()`) is written chunk by chunk, each before
//!   the next is asked for, with what was buffered before it in one `writev(2)`: the
//!   client gets each chunk as it is produced, and a client gone fails the next write,
//!   which ends the response.
//! - **Deadlines** (checked by the main thread every 100 ms): an idle keep-alive
//!   connection is closed `keepalive` seconds after its last response; a new connection
//!   may stay silent `max(keepalive, 5 s)` (gunicorn's 5 s first-byte wait); a request
//!   must arrive whole (head and buffered body) within `timeout` seconds of its first byte,
//!   however it trickles; a parked response must make progress every `timeout` seconds.
//!   A `timeout` of 0 means 30 s for these. A connection whose socket holds request bytes
//!   no thread has read (every serving thread was busy when they came) is past none of
//!   these: the idle waits are for connections with nothing pending, the request
//!   deadline for a client that stops sending. Its request waits in the poller for a
//!   free thread, however long, and is served then (as gunicorn's queued requests).
//! - **Backpressure.** At `worker_connections` open connections the listener leaves the
//!   poller: connections wait in the kernel's backlog (or go to another worker) until
//!   one closes. As in gunicorn, keep-alive is refused when fewer than `threads` slots
//!   are left.
//! - **Graceful stop** (TERM: a HUP, TTOU or USR2 upgrade retiring the worker, a stop
//!   of the master; and `max_requests`, after `Autorestarting worker after current
//!   request.`): listeners leave the poller, and the connections already queued on them
//!   are accepted and served once (the kernel woke this worker alone for them,
//!   `EPOLLEXCLUSIVE`, and would not wake another: left queued they would wait for the
//!   next arrival); requests being served finish and their connections close after the
//!   response; parked responses are written. A kept-alive connection is not closed under
//!   its client, which may be sending its next request at that very moment (the request
//!   would be lost: `RemoteDisconnected` in `http.client`): it carries one more request,
//!   answered with `Connection: close`, or is closed by its keep-alive deadline, as in a
//!   worker that keeps running; those still idle 2 s after the stop began (gunicorn 27's
//!   `STOP_KEEPALIVE_LINGER`), or 1 s before the end of `graceful_timeout` (a quarter of
//!   it, if shorter) if sooner, are closed then. The worker exits when no connection is
//!   left, or after `graceful_timeout`. INT/QUIT exit at once.
//! - **Heartbeat**: the main thread beats every tick, as gunicorn's gthread main loop
//!   does; a worker whose threads are all stuck in the application keeps beating (the same
//!   as gunicorn).
//!
//! Unlike gunicorn's gthread, pipelined requests are answered at once (gunicorn leaves
//! the buffered second request until the keep-alive timeout), a stalled client never
//! holds a thread, and the PROXY header stays with the connection for every request.

mod conn;
mod engine;
pub mod exchange;
mod options;

pub use exchange::{BodyError, Exchange, Failed, Handler};
pub use options::{Options, SPOOL_LIMIT};

use super::{WorkerBody, WorkerContext};

/// Runs the engine with `handler` in this worker process until it is told to stop;
/// returns the worker's exit status. For worker bodies that prepare something first
/// (the WSGI worker loads the application).
pub fn serve<H: Handler>(ctx: &WorkerContext, handler: &H, opts: &Options) -> u8 {
    engine::serve(ctx, handler, opts)
}

/// A worker body that runs the engine with a fixed handler.
#[derive(Debug)]
pub struct GthreadBody<H> {
    handler: H,
    opts: Options,
}

impl<H: Handler> GthreadBody<H> {
    /// A body serving `handler` with `opts`.
    pub fn new(handler: H, opts: Options) -> Self {
        GthreadBody { handler, opts }
    }
}

impl<H: Handler> WorkerBody for GthreadBody<H> {
    fn run(&self, ctx: WorkerContext) -> u8 {
        serve(&ctx, &self.handler, &self.opts)
    }
}
