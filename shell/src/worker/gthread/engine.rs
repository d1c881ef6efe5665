//! The event loop shared by the worker's threads (see the module documentation of
//! [`super`] for the model): connection slots, accept with backpressure, the per-connection
//! drive loop, parking in epoll, deadlines, graceful stop.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferrocorn_core::response;
use ferrocorn_core::{BodyKind, ConnState, Connection, Event, Peer, ProtoConfig};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::conn::{Conn, Wait};
use super::exchange::{DRAIN_BUDGET, Exchange, FLUSH_AT, Handler, Setup};
use super::options::Options;
use crate::heartbeat::{Heartbeats, Slot, monotonic_ms};
use crate::listen::Listener;
use crate::log::Logger;
use crate::transport::{Peeked, Stream};
use crate::worker::WorkerContext;

/// The token of the eventfd that wakes every thread to exit.
const WAKE: u64 = u64::MAX;
/// Listener `i` has token `LISTEN + i`.
const LISTEN: u64 = u64::MAX - 1 - 1024;
/// How long a new connection may stay silent (gunicorn's `DEFAULT_WORKER_DATA_TIMEOUT`),
/// when `keepalive` is shorter.
const FRESH_MS: u64 = 5_000;
/// Deadlines are checked this often.
const SWEEP_MS: u64 = 100;
/// How many pending connections one listener wake-up accepts at most. A busy worker sees
/// its listener again only after the connections ready before it (the poller's ready list
/// is first in, first out), so a burst that arrives while the workers serve is accepted
/// this many at a time per round (a much smaller batch leaves a burst waiting in the
/// backlog for rounds on end). How they spread over the workers is [`BALANCE_SLACK`]'s.
const ACCEPT_BATCH: usize = 16;
/// A wake-up stops accepting (after the first connection) once this worker has this many
/// more open connections than the least loaded other worker: the rest of a burst is left
/// for the others, and this worker gets what they leave on its next round.
const BALANCE_SLACK: usize = 4;
/// The main thread's tick while connections are open and the serving threads were recently
/// found all blocked in requests: how soon a follower is promoted when every serving
/// thread is stuck in a request.
const TICK_BUSY: Duration = Duration::from_millis(1);
/// The tick while connections are open but requests do not block: a fast tick would cost
/// the main thread's wake-ups for nothing. The first blocking request after such a stretch waits up to this long for
/// a follower, and turns the fast tick on.
const TICK_WARM: Duration = Duration::from_millis(5);
/// How long the fast tick stays on after every serving thread was last found blocked.
const FAST_FOR_MS: u64 = 1_000;
/// The main thread's tick without connections.
const TICK_IDLE: Duration = Duration::from_millis(100);
/// A follower is promoted when no thread has polled for this long.
const PROMOTE_MS: u64 = 2;
/// How long a stopping worker keeps its idle kept-alive connections open at most (and at
/// most until their keep-alive deadline), for a request a client may already be sending:
/// gunicorn 27's `STOP_KEEPALIVE_LINGER`.
const STOP_LINGER_MS: u64 = 2_000;
/// A graceful stop closes the idle kept-alive connections still open this long before its
/// `graceful_timeout` ends (at most a quarter of it), so the worker exits by itself before
/// the master's SIGKILL.
const IDLE_CUT_MARGIN_MS: u64 = 1_000;
/// Another worker's published connection count counts if it beat within this long.
const PEER_FRESH_MS: u64 = 2_000;

#[derive(Debug, Default)]
struct LeaderState {
    polling: bool,
    idle: usize,
}

#[derive(Debug, Default)]
struct ConnSlot {
    generation: u32,
    conn: Option<Box<Conn>>,
}

/// What accepting one connection gave.
enum Accepted {
    /// A connection, and there is room for more.
    Conn(u32, u32, Box<Conn>),
    /// The worker reached `worker_connections` with this one (if it could be set up).
    Full(Option<(u32, u32, Box<Conn>)>),
    /// A connection was lost before or while it was set up; try the next one.
    Dropped,
    /// Nothing pending.
    Empty,
}

/// What the drive loop decided.
enum Next {
    Park(Wait),
    Close,
    /// The handler did not give the connection back.
    Lost,
}

/// A worker's engine: what its threads share, by concern.
struct Engine<'a, H> {
    handler: &'a H,
    opts: &'a Options,
    proto: Arc<ProtoConfig>,
    log: &'a Logger,
    epoll: Epoll,
    wake: EventFd,
    /// A body could not be spooled (`tmp_upload_dir` unusable): said once per worker.
    spool_warned: AtomicBool,
    /// The `Server` header value.
    server: &'static [u8],
    io_timeout: Duration,
    io_timeout_ms: u64,
    /// Leader/follower: which thread polls, and when a follower is promoted.
    lead: Leadership,
    /// The listeners, and the balance of connections over the workers.
    accept: Accepting<'a>,
    /// The connection slots.
    conns: Slots,
    /// Stopping: gracefully, at once, after `max_requests`.
    stop: Stop,
}

/// Leader/follower (see the module documentation).
struct Leadership {
    /// Leader/follower: whether a thread polls (or is about to), how many wait to.
    leader: Mutex<LeaderState>,
    followers: Condvar,
    /// When the last leader stopped polling to serve (monotonic ms).
    leader_left: AtomicU64,
    /// The kernel thread ids of the serving threads (0 until started).
    tids: Vec<std::sync::atomic::AtomicI32>,
    /// The main thread sleeps at the idle tick because no request came for a while
    /// ([`FAST_FOR_MS`]); the next request to arrive writes `nudge` so that it ticks fast
    /// again, in case that request blocks and another one needs a follower.
    quiet: AtomicBool,
    nudge: EventFd,
}

/// The listeners in the poller, and this worker's share of the connections.
struct Accepting<'a> {
    listeners: &'a [Listener],
    /// Whether listener `i` is in the poller (it leaves it at `worker_connections` and on
    /// stop). Changed under this lock only.
    listening: Mutex<Vec<bool>>,
    /// Listener `i` left the poller at `worker_connections`: a hint for
    /// [`Engine::resume_accept`], which decides under `listening`.
    paused: Vec<AtomicBool>,
    /// Listener `i` had connections pending when its last wake-up stopped accepting
    /// ([`ACCEPT_BATCH`], [`BALANCE_SLACK`]): the next thread about to poll accepts more
    /// first, rather than when the poller reports the listener again, behind every
    /// connection ready before it.
    more: Vec<AtomicBool>,
    /// This worker's heartbeat slot, where it publishes its open connections, and every
    /// worker's ([`Engine::balance`]).
    slot: &'a Slot,
    peers: Heartbeats,
    me: usize,
}

/// The connection slots: a connection parked in the poller lives in its slot; the token
/// of its events is its index and the slot's generation.
struct Slots {
    slots: Vec<Mutex<ConnSlot>>,
    free: Mutex<Vec<u32>>,
    nconns: AtomicUsize,
}

/// How and when the worker stops.
struct Stop {
    /// No new connections, no more keep-alive (TERM, `max_requests`).
    stopping: Arc<AtomicBool>,
    /// Idle connections are closed at once: the worker exits now. A graceful stop (TERM,
    /// `max_requests`) does not set it: each kept-alive connection carries one more
    /// request, answered with `Connection: close`, or reaches its keep-alive deadline
    /// (or the end of the graceful timeout), so that no request a client sends meanwhile
    /// is dropped.
    closing_idle: AtomicBool,
    exit: AtomicBool,
    requests: AtomicU64,
    max_requests: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Listener `i` in a worker's poller: level-triggered, and `EPOLLEXCLUSIVE`, so that a new
/// connection wakes one worker (one whose leader is waiting, if any: a worker busy serving
/// is passed over) rather than every worker, the first to `accept` winning and the others
/// waking for nothing.
fn listen_event(i: usize) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTEN + i as u64)
}

fn token(idx: u32, generation: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(idx)
}

/// Runs the gthread engine in this worker process until it is told to stop; returns the
/// exit status.
pub(super) fn serve<H: Handler>(ctx: &WorkerContext, handler: &H, opts: &Options) -> u8 {
    match Engine::new(ctx, handler, opts) {
        Ok(shared) => {
            ctx.booted();
            shared.publish();
            shared.run(ctx)
        }
        Err(e) => {
            ctx.log.error(format_args!("Cannot start the gthread engine: {e}"));
            crate::worker::WORKER_BOOT_ERROR
        }
    }
}

impl<'a, H: Handler> Engine<'a, H> {
    fn new(ctx: &'a WorkerContext, handler: &'a H, opts: &'a Options) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        for (i, l) in ctx.listeners.iter().enumerate() {
            epoll.add(l.as_fd(), listen_event(i))?;
        }
        let cap = opts.worker_connections.max(1) + ctx.listeners.len();
        let io_timeout = if ctx.timeout.is_zero() { Duration::from_secs(30) } else { ctx.timeout };
        // Once per worker process, for the life of the process.
        let server: &'static [u8] = Box::leak(opts.server.clone().into_boxed_slice());
        Ok(Engine {
            handler,
            opts,
            proto: Arc::clone(&opts.proto),
            log: &ctx.log,
            epoll,
            wake,
            spool_warned: AtomicBool::new(false),
            server,
            io_timeout,
            io_timeout_ms: io_timeout.as_millis() as u64,
            lead: Leadership {
                leader: Mutex::new(LeaderState::default()),
                followers: Condvar::new(),
                leader_left: AtomicU64::new(0),
                tids: (0..opts.threads.max(1))
                    .map(|_| std::sync::atomic::AtomicI32::new(0))
                    .collect(),
                quiet: AtomicBool::new(false),
                nudge: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            },
            accept: Accepting {
                listeners: &ctx.listeners,
                listening: Mutex::new(vec![true; ctx.listeners.len()]),
                paused: ctx.listeners.iter().map(|_| AtomicBool::new(false)).collect(),
                more: ctx.listeners.iter().map(|_| AtomicBool::new(false)).collect(),
                slot: ctx.heartbeat,
                peers: ctx.peers,
                me: ctx.slot,
            },
            conns: Slots {
                slots: (0..cap).map(|_| Mutex::new(ConnSlot::default())).collect(),
                free: Mutex::new((0..cap as u32).rev().collect()),
                nconns: AtomicUsize::new(0),
            },
            stop: Stop {
                stopping: Arc::new(AtomicBool::new(false)),
                closing_idle: AtomicBool::new(false),
                exit: AtomicBool::new(false),
                requests: AtomicU64::new(0),
                max_requests: ctx.max_requests,
            },
        })
    }

    /// Publishes this worker's open connections in its heartbeat slot, for the other
    /// workers' [`Engine::balance`]; nothing once it stops accepting for good.
    fn publish(&self) {
        let open = (!self.stop.stopping.load(Ordering::SeqCst))
            .then(|| self.conns.nconns.load(Ordering::SeqCst));
        self.accept.slot.set_accepting(open);
    }

    /// How many more open connections this worker has than the least loaded other
    /// accepting worker (0 without another one).
    fn excess(&self) -> usize {
        let mine = self.conns.nconns.load(Ordering::SeqCst);
        self.accept
            .peers
            .fewest_connections(self.accept.me, monotonic_ms(), PEER_FRESH_MS)
            .map_or(0, |fewest| mine.saturating_sub(fewest))
    }

    /// Balances new connections over the workers. The kernel offers a new connection to
    /// the workers waiting on the listener in the order they registered it
    /// (`EPOLLEXCLUSIVE` entries queue at the tail, and the first one waiting takes it),
    /// so an idle first worker would take nearly all of a burst (and a keep-alive
    /// connection keeps its worker for its life: the crowded worker's clients wait
    /// longer). After accepting, a worker that has more
    /// connections than another accepting worker registers listener `i` again, which puts
    /// it at the back of that queue: the next connection goes to a worker that is waiting
    /// ahead of it. Nothing is lost meanwhile: a connection arriving between the two
    /// calls wakes another worker, and one already pending makes the listener ready at
    /// once when it is added back.
    fn balance(&self, i: usize) {
        if self.excess() == 0 {
            return;
        }
        let mut listening = lock(&self.accept.listening);
        if !listening[i] {
            return;
        }
        let fd = self.accept.listeners[i].as_fd();
        if self.epoll.delete(fd).is_err() || self.epoll.add(fd, listen_event(i)).is_err() {
            // Out of the poller: it comes back when a connection closes.
            let _ = self.epoll.delete(fd);
            listening[i] = false;
            self.accept.paused[i].store(true, Ordering::SeqCst);
        }
    }

    /// The main thread: heartbeat, signals, deadlines, graceful stop. The `threads`
    /// serving threads run [`Engine::thread_loop`].
    fn run(&self, ctx: &WorkerContext) -> u8 {
        let done = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let done = &done;
            for i in 0..self.opts.threads.max(1) {
                let spawned = std::thread::Builder::new()
                    .name(format!("ferrocorn-{i}"))
                    .spawn_scoped(scope, move || {
                        block_signals();
                        self.lead.tids[i].store(nix::unistd::gettid().as_raw(), Ordering::Relaxed);
                        self.handler.run_thread(&mut || self.thread_loop());
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    ctx.log.error(format_args!("Cannot start a worker thread: {e}"));
                    self.halt();
                    return crate::worker::WORKER_BOOT_ERROR;
                }
            }
            let code = self.supervise(ctx);
            self.halt();
            // Threads still in a request after the graceful timeout are left behind: the
            // process exits under them.
            let end = Instant::now() + Duration::from_millis(200);
            while done.load(Ordering::SeqCst) < self.opts.threads.max(1) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(2));
            }
            if done.load(Ordering::SeqCst) < self.opts.threads.max(1) {
                ctx.log.info(format_args!("Worker exiting (pid: {})", ctx.pid));
                std::process::exit(i32::from(code));
            }
            code
        })
    }

    fn halt(&self) {
        self.stop.stopping.store(true, Ordering::SeqCst);
        self.stop.closing_idle.store(true, Ordering::SeqCst);
        self.stop.exit.store(true, Ordering::SeqCst);
        let _ = self.wake.write(1);
        let _g = lock(&self.lead.leader);
        self.lead.followers.notify_all();
    }

    /// Wakes a follower to poll when no thread has polled for [`PROMOTE_MS`], one is
    /// idle, and no serving thread is running: every one is blocked in a long request (a
    /// database call, a sleep, a slow upload). A thread that is running (or runnable,
    /// preempted on a busy machine) is making progress; a second thread would only
    /// compete with it for the CPU and the GIL.
    ///
    /// Returns whether every serving thread was found blocked with the leader away from
    /// the poller for [`PROMOTE_MS`] (whether or not a follower was idle to be woken):
    /// requests block, and the main thread then ticks fast for a while. A leader that is
    /// merely slow or preempted (a busy machine: the client itself preempts it after most
    /// responses) does not count.
    fn promote(&self, now: u64) -> bool {
        {
            let st = lock(&self.lead.leader);
            if st.polling
                || st.idle == 0
                || now < self.lead.leader_left.load(Ordering::Relaxed) + PROMOTE_MS
            {
                return false;
            }
        }
        if self.lead.tids.iter().any(|t| thread_running(t.load(Ordering::Relaxed))) {
            return false;
        }
        let st = lock(&self.lead.leader);
        if !st.polling && st.idle > 0 {
            self.lead.followers.notify_one();
        }
        true
    }

    fn supervise(&self, ctx: &WorkerContext) -> u8 {
        let mut stop_deadline: Option<Instant> = None;
        // When a stop closes the idle kept-alive connections left (monotonic ms).
        let mut idle_cut: Option<u64> = None;
        let mut last_sweep = 0;
        // When every serving thread was last found blocked in a request.
        let mut last_away = 0;
        // The requests dispatched so far, and when that count last moved.
        let (mut last_served, mut last_request) = (0, 0);
        loop {
            let now = monotonic_ms();
            ctx.heartbeat.notify_at(now);
            if ctx.signals.quick() {
                return 0;
            }
            if now >= last_sweep + SWEEP_MS && ctx.parent_changed() {
                ctx.log.info(format_args!("Parent changed, shutting down: {}", ctx.pid));
                return 0;
            }
            if ctx.signals.take_usr1() {
                if let Err(e) = ctx.log.reopen() {
                    ctx.log.error(e);
                }
                self.handler.reopen_logs();
            }
            let stop_now = !ctx.signals.alive() || self.stop.stopping.load(Ordering::SeqCst);
            if stop_now && stop_deadline.is_none() {
                self.stop.stopping.store(true, Ordering::SeqCst);
                self.stop_listening();
                self.drain_listeners();
                stop_deadline = Some(Instant::now() + ctx.graceful_timeout);
                // Idle kept-alive connections are closed by their keep-alive deadline,
                // [`STOP_LINGER_MS`] after the stop began at the latest, or shortly before
                // the graceful timeout ends (so the worker exits on its own rather than by
                // the master's SIGKILL), not at once: see [`closable_on_stop`].
                let grace = ctx.graceful_timeout.as_millis() as u64;
                let before_end = grace - (grace / 4).min(IDLE_CUT_MARGIN_MS);
                idle_cut = Some(now + before_end.min(STOP_LINGER_MS));
            }
            if stop_deadline.is_some() || now >= last_sweep + SWEEP_MS {
                self.sweep(now, idle_cut.is_some_and(|cut| now >= cut));
                last_sweep = now;
            }
            if self.promote(now) {
                last_away = now;
            }
            if let Some(end) = stop_deadline {
                if self.conns.nconns.load(Ordering::SeqCst) == 0 || Instant::now() >= end {
                    return 0;
                }
            }
            // The fast ticks are for promoting followers: only with several threads and
            // requests coming (idle keep-alive connections, such as a proxy's pool, leave
            // the main thread at the idle tick).
            let served = self.stop.requests.load(Ordering::Relaxed);
            if served != last_served {
                (last_served, last_request) = (served, now);
            }
            let quiet = now >= last_request + FAST_FOR_MS && now >= last_away + FAST_FOR_MS;
            let tick = if self.opts.threads == 1
                || self.conns.nconns.load(Ordering::Relaxed) == 0
                || quiet
            {
                TICK_IDLE
            } else if now < last_away + FAST_FOR_MS {
                TICK_BUSY
            } else {
                TICK_WARM
            };
            if quiet && self.opts.threads > 1 {
                self.lead.quiet.store(true, Ordering::SeqCst);
            }
            if wait_signal(ctx, tick, self.lead.nudge.as_fd()) {
                let _ = self.lead.nudge.read();
                last_request = monotonic_ms();
            }
        }
    }

    /// Closes parked connections past their deadline (with `close_idle`, near the end of a
    /// graceful stop, also every kept-alive connection waiting between requests: see
    /// [`closable_on_stop`]).
    ///
    /// A reading connection whose socket holds bytes (a request that arrived while every
    /// serving thread was busy, and waits for one in the poller) is not past any deadline:
    /// the keep-alive and first-byte waits are for connections with no request pending,
    /// and the request deadline is for a client that stops sending, not for one the
    /// worker has not got round to. It is served when a thread is free, however long
    /// that takes (as gunicorn's gthread, whose queued requests wait for a thread).
    ///
    /// A request whose head arrived but whose buffered body (at most
    /// [`Options::buffer_body`]) did not within the request deadline is answered
    /// `408 Request Timeout`, with one log line, rather than closed silently.
    fn sweep(&self, now: u64, close_idle: bool) {
        let stopping = close_idle || self.stop.closing_idle.load(Ordering::SeqCst);
        for (idx, slot) in self.conns.slots.iter().enumerate() {
            let expired = {
                let mut s = lock(slot);
                match &s.conn {
                    Some(c) if stopping && !c.wait.writing() && closable_on_stop(c) => {
                        s.conn.take()
                    }
                    Some(c)
                        if now >= c.wait.until() && (c.wait.writing() || !request_waiting(c)) =>
                    {
                        s.conn.take()
                    }
                    _ => None,
                }
            };
            if let Some(mut c) = expired {
                if !c.wait.writing() && c.core.state() == ConnState::Body {
                    self.body_timed_out(&mut c);
                }
                self.close(idx as u32, c);
            }
        }
    }

    /// Answers `408 Request Timeout` (without waiting for the socket) to a request whose
    /// buffered body did not arrive whole within the request deadline, and logs it once.
    fn body_timed_out(&self, c: &mut Conn) {
        let declared = match c.core.head().map(|h| h.body) {
            Some(BodyKind::Length(n)) => n.to_string(),
            _ => "chunked".to_owned(),
        };
        let target = c
            .core
            .head()
            .map(|h| String::from_utf8_lossy(h.target()).into_owned())
            .unwrap_or_default();
        let client = match c.peer {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix => "unix".to_owned(),
        };
        self.log.info(format_args!(
            "Request body timed out after {} s ({} of {declared} bytes received): \
             408 to {client} for {target}",
            self.io_timeout.as_secs(),
            c.body.len() as u64 + c.spooled,
        ));
        let mut page = Vec::new();
        response::error_page(
            408,
            "Request Timeout",
            "The request body did not arrive in time.",
            &mut page,
        );
        c.out.clear();
        c.out_pos = 0;
        let _ = c.stream.send(&page);
        c.close_after = true;
    }

    /// One serving thread: wait for a ready connection or listener, serve it, repeat.
    fn thread_loop(&self) {
        let mut scratch = vec![0u8; 64 * 1024];
        let mut events = [EpollEvent::empty()];
        while !self.stop.exit.load(Ordering::Relaxed) {
            if let Some(i) = self.accept_due() {
                if let Some((idx, generation, conn)) = self.accept_batch(i) {
                    self.run_conn(idx, generation, conn, &mut scratch);
                }
                continue;
            }
            {
                let mut st = lock(&self.lead.leader);
                while st.polling && !self.stop.exit.load(Ordering::Relaxed) {
                    st.idle += 1;
                    st = self.lead.followers.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.idle -= 1;
                }
                st.polling = true;
            }
            let waited = self.epoll.wait(&mut events, EpollTimeout::NONE);
            {
                let mut st = lock(&self.lead.leader);
                st.polling = false;
            }
            self.lead.leader_left.store(monotonic_ms(), Ordering::Relaxed);
            match waited {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.log.error(format_args!("epoll_wait failed: {e}"));
                    self.halt();
                    return;
                }
            }
            let t = events[0].data();
            if t == WAKE {
                continue;
            }
            if t >= LISTEN {
                if self.stop.stopping.load(Ordering::SeqCst) {
                    // The listeners stay ready (level-triggered) until they leave the
                    // poller: take them out now rather than at the main thread's next
                    // tick, and leave the pending connections to the next worker.
                    self.stop_listening();
                    continue;
                }
                let i = (t - LISTEN) as usize;
                if let Some((idx, generation, conn)) = self.accept_batch(i) {
                    self.run_conn(idx, generation, conn, &mut scratch);
                }
                continue;
            }
            let (idx, generation) = (t as u32, (t >> 32) as u32);
            let conn = {
                let mut s = lock(&self.conns.slots[idx as usize]);
                if s.generation != generation {
                    continue;
                }
                s.conn.take()
            };
            if let Some(mut conn) = conn {
                conn.may_read = true;
                self.run_conn(idx, generation, conn, &mut scratch);
            }
        }
    }

    /// A listener whose last wake-up left connections pending, if this worker may take
    /// more now (it accepts, and is within [`BALANCE_SLACK`] of the others). The flag is
    /// cleared either way: it only hastens accepting. Connections left pending for the
    /// other workers are not lost when they do not take them either: the listener stays
    /// in this worker's ready list (level-triggered) and comes round again.
    fn accept_due(&self) -> Option<usize> {
        let i = self.accept.more.iter().position(|m| m.load(Ordering::Relaxed))?;
        self.accept.more[i].store(false, Ordering::Relaxed);
        if self.stop.stopping.load(Ordering::Relaxed) || !lock(&self.accept.listening)[i] {
            return None;
        }
        (self.excess() <= BALANCE_SLACK).then_some(i)
    }

    /// Accepts what is pending on listener `i` (at most [`ACCEPT_BATCH`]): the first
    /// connection is returned to be served at once, the others are parked in the poller
    /// (their request, if already there, makes them ready at once). Stops early at
    /// `worker_connections`, where [`Engine::accept`] takes the listener out of the poller,
    /// and when this worker has [`BALANCE_SLACK`] more connections than another.
    fn accept_batch(&self, i: usize) -> Option<(u32, u32, Box<Conn>)> {
        let mut first = None;
        let mut keep = |c: Option<(u32, u32, Box<Conn>)>| {
            let Some((idx, generation, conn)) = c else { return };
            if first.is_none() {
                first = Some((idx, generation, conn));
            } else {
                self.park_fresh(idx, generation, conn);
            }
        };
        // Whether connections may be left pending.
        let mut more = true;
        for n in 0..ACCEPT_BATCH {
            if n > 0 && self.excess() > BALANCE_SLACK {
                break;
            }
            match self.accept(i) {
                Accepted::Conn(idx, generation, conn) => keep(Some((idx, generation, conn))),
                Accepted::Dropped => {}
                Accepted::Full(c) => {
                    keep(c);
                    more = false;
                    break;
                }
                Accepted::Empty => {
                    more = false;
                    break;
                }
            }
        }
        self.accept.more[i].store(more, Ordering::Relaxed);
        if first.is_some() {
            self.balance(i);
        }
        first
    }

    /// Accepts one connection on listener `i`.
    fn accept(&self, i: usize) -> Accepted {
        let listener = &self.accept.listeners[i];
        let accepted = socket2::SockRef::from(listener).accept();
        let (sock, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                if matches!(e.raw_os_error(), Some(nix::libc::ECONNABORTED | nix::libc::EPROTO)) {
                    return Accepted::Dropped;
                }
                if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                    self.log.error(format_args!("accept failed: {e}"));
                }
                return Accepted::Empty;
            }
        };
        // Accepted after a stop began: served all the same (one request, then closed).
        let n = self.conns.nconns.fetch_add(1, Ordering::SeqCst) + 1;
        self.publish();
        let full = n >= self.opts.worker_connections;
        if full {
            self.pause(i);
        }
        let made = self.new_conn(i, sock, &addr);
        match (made, full) {
            (Some((idx, generation, conn)), false) => Accepted::Conn(idx, generation, conn),
            (made, true) => Accepted::Full(made),
            (None, false) => Accepted::Dropped,
        }
    }

    /// The connection state of an accepted socket, in a free slot.
    fn new_conn(
        &self,
        i: usize,
        sock: socket2::Socket,
        addr: &socket2::SockAddr,
    ) -> Option<(u32, u32, Box<Conn>)> {
        if sock.set_nonblocking(true).is_err() {
            self.conns.nconns.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let (stream, peer) = match addr.as_socket() {
            Some(a) => {
                let _ = sock.set_tcp_nodelay(true);
                (Stream::Tcp(sock.into()), Peer::Tcp(a))
            }
            None => (Stream::Unix(sock.into()), Peer::Unix),
        };
        let stream = match &self.opts.tls {
            Some(tls) => match tls.wrap(stream, &peer) {
                Ok(s) => s,
                Err(_) => {
                    self.conns.nconns.fetch_sub(1, Ordering::SeqCst);
                    return None;
                }
            },
            None => stream,
        };
        let Some(idx) = lock(&self.conns.free).pop() else {
            self.conns.nconns.fetch_sub(1, Ordering::SeqCst);
            return None;
        };
        let generation = {
            let mut s = lock(&self.conns.slots[idx as usize]);
            s.generation = s.generation.wrapping_add(1);
            s.generation
        };
        let now = monotonic_ms();
        let conn = Box::new(Conn {
            stream,
            core: Connection::new(Arc::clone(&self.proto), peer),
            peer,
            listener: i,
            out: Vec::new(),
            out_pos: 0,
            body: Vec::new(),
            registered: false,
            may_read: true,
            close_after: false,
            wait: Wait::Read { until: now },
            req_deadline: now + self.io_timeout_ms,
            body_target: None,
            body_skip: 0,
            spool: None,
            spooled: 0,
        });
        Some((idx, generation, conn))
    }

    /// Takes listener `i` out of the poller while the worker is at `worker_connections`:
    /// connections wait in the kernel's backlog, or go to another worker.
    fn pause(&self, i: usize) {
        let mut listening = lock(&self.accept.listening);
        // Set before reading `nconns` (and `close` decrements it before reading
        // `paused`): a connection closing meanwhile either keeps the listener in or
        // sees the flag and puts it back.
        self.accept.paused[i].store(true, Ordering::SeqCst);
        if listening[i] && self.conns.nconns.load(Ordering::SeqCst) >= self.opts.worker_connections
        {
            let _ = self.epoll.delete(self.accept.listeners[i].as_fd());
            listening[i] = false;
        }
        if listening[i] {
            self.accept.paused[i].store(false, Ordering::SeqCst);
        }
    }

    /// Takes every listener out of the poller for good (`stopping` is set). The main
    /// thread then calls [`Engine::drain_listeners`].
    fn stop_listening(&self) {
        {
            let mut listening = lock(&self.accept.listening);
            for (l, on) in self.accept.listeners.iter().zip(listening.iter_mut()) {
                if std::mem::take(on) {
                    let _ = self.epoll.delete(l.as_fd());
                }
            }
        }
        self.publish();
    }

    /// Accepts what is pending on the listeners once they left the poller for good: those
    /// connections are served (one request each, answered with `Connection: close`)
    /// before the worker exits. Called by the main thread only, before it first looks at
    /// whether connections are left (a serving thread draining meanwhile could accept
    /// after the main thread saw none, and the worker would exit under them).
    ///
    /// The listeners are `EPOLLEXCLUSIVE`: the kernel woke this worker alone for the
    /// connections queued so far, and does not wake another one for them when this
    /// worker stops polling. Left in the queue, such a connection would wait until the
    /// next one arrives and wakes another worker (for ever, on a quiet server). What
    /// arrives after the listeners left the poller wakes the other workers.
    fn drain_listeners(&self) {
        for i in 0..self.accept.listeners.len() {
            loop {
                let c = match self.accept(i) {
                    Accepted::Conn(idx, generation, conn) => Some((idx, generation, conn)),
                    Accepted::Dropped => continue,
                    Accepted::Full(c) => c,
                    Accepted::Empty => break,
                };
                let full = c.is_none()
                    || self.conns.nconns.load(Ordering::SeqCst) >= self.opts.worker_connections;
                if let Some((idx, generation, conn)) = c {
                    self.park_fresh(idx, generation, conn);
                }
                if full {
                    break;
                }
            }
        }
    }

    /// Puts paused listeners back in the poller when there is room again.
    fn resume_accept(&self) {
        for (i, p) in self.accept.paused.iter().enumerate() {
            if !p.load(Ordering::SeqCst) {
                continue;
            }
            let mut listening = lock(&self.accept.listening);
            if !listening[i]
                && !self.stop.stopping.load(Ordering::SeqCst)
                && self.conns.nconns.load(Ordering::SeqCst) < self.opts.worker_connections
                && self.epoll.add(self.accept.listeners[i].as_fd(), listen_event(i)).is_ok()
            {
                listening[i] = true;
                p.store(false, Ordering::SeqCst);
            }
        }
    }

    fn close(&self, idx: u32, conn: Box<Conn>) {
        let conn = *conn;
        if conn.close_after || !conn.out.is_empty() {
            // Stop sending and read what the client still sent, so that closing does not
            // turn into a reset that destroys the answer in flight.
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            let mut buf = [0u8; 4096];
            let _ = conn.stream.recv(&mut buf);
        }
        drop(conn);
        lock(&self.conns.free).push(idx);
        self.conns.nconns.fetch_sub(1, Ordering::SeqCst);
        self.publish();
        self.resume_accept();
    }

    /// Serves `conn` as long as it has work, then parks or closes it.
    fn run_conn(&self, idx: u32, generation: u32, conn: Box<Conn>, scratch: &mut [u8]) {
        let mut held = Some(conn);
        let next = self.drive(&mut held, scratch);
        let Some(conn) = held else {
            // The handler kept the connection: it is gone for us.
            lock(&self.conns.free).push(idx);
            self.conns.nconns.fetch_sub(1, Ordering::SeqCst);
            self.publish();
            self.resume_accept();
            return;
        };
        match next {
            Next::Close | Next::Lost => self.close(idx, conn),
            Next::Park(wait) => self.park(idx, generation, conn, wait),
        }
    }

    /// Parks a connection just accepted until its first request arrives (or the first-byte
    /// wait ends).
    fn park_fresh(&self, idx: u32, generation: u32, conn: Box<Conn>) {
        let deadline = monotonic_ms() + (self.opts.keepalive.as_millis() as u64).max(FRESH_MS);
        self.park(idx, generation, conn, Wait::Read { until: deadline });
    }

    /// Puts a connection in the poller, owned by nobody, until it is ready or its wait
    /// ends.
    fn park(&self, idx: u32, generation: u32, mut conn: Box<Conn>, wait: Wait) {
        if !wait.writing()
            && self.stop.closing_idle.load(Ordering::SeqCst)
            && closable_on_stop(&conn)
        {
            return self.close(idx, conn);
        }
        conn.wait = wait;
        let mut flags = if wait.writing() {
            EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
        };
        if !wait.writing() && conn.stream.pending_output() {
            // A TLS handshake flight the socket did not take: the peer waits for it.
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut ev = EpollEvent::new(flags | EpollFlags::EPOLLONESHOT, token(idx, generation));
        // Under the slot's lock: the event may fire at once, and its thread must find the
        // connection in the slot.
        let mut s = lock(&self.conns.slots[idx as usize]);
        let r = if conn.registered {
            self.epoll.modify(conn.stream.as_fd(), &mut ev)
        } else {
            self.epoll.add(conn.stream.as_fd(), ev)
        };
        if r.is_err() {
            drop(s);
            return self.close(idx, conn);
        }
        conn.registered = true;
        s.conn = Some(conn);
    }

    /// Writes the pending output without blocking: `Ok(true)` when all of it went.
    fn flush(conn: &mut Conn) -> io::Result<bool> {
        while conn.out_pos < conn.out.len() {
            match conn.stream.send(&conn.out[conn.out_pos..]) {
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        conn.out.clear();
        conn.out_pos = 0;
        if conn.out.capacity() > 4 * FLUSH_AT {
            conn.out = Vec::new();
        }
        // Over TLS, the records of what went may still wait for the socket.
        match conn.stream.flush_pending() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn park_write(&self) -> Next {
        Next::Park(Wait::Write { until: monotonic_ms() + self.io_timeout_ms })
    }

    /// Reads, parses and serves requests on the connection until it needs the network.
    fn drive(&self, held: &mut Option<Box<Conn>>, scratch: &mut [u8]) -> Next {
        loop {
            let Some(conn) = held.as_deref_mut() else { return Next::Lost };
            // Pipelined responses are written together, but a connection whose output
            // piles up is parked before its next request is read: a client that does not
            // read holds buffer space, never the thread, and the next handler always has
            // room in the buffer.
            if conn.close_after || conn.out.len() - conn.out_pos >= FLUSH_AT / 4 {
                match Self::flush(conn) {
                    Ok(true) if conn.close_after => return Next::Close,
                    Ok(true) => {}
                    Ok(false) => return self.park_write(),
                    Err(_) => {
                        conn.out.clear();
                        return Next::Close;
                    }
                }
            }
            let c = &mut *conn;
            // A client that closes in the middle of a head gets nothing (as the sync worker
            // and gunicorn: "Ignored premature client disconnection"); one that closes in
            // the middle of a body it announced gets the core's page.
            let in_head = matches!(c.core.state(), ConnState::Proxy | ConnState::Head);
            match c.core.next_event() {
                Ok(Event::NeedData) => {
                    match Self::flush(c) {
                        Ok(true) => {}
                        Ok(false) => return self.park_write(),
                        Err(_) => {
                            c.out.clear();
                            return Next::Close;
                        }
                    }
                    if !c.may_read {
                        return self.park_read(c);
                    }
                    if let Some(target) = c.body_target {
                        // A buffered Content-Length body: read it straight into the
                        // body buffer (no scratch copy), then let the core account for it.
                        let want = target.saturating_sub(c.body.len() as u64);
                        let start = c.body.len();
                        c.body.reserve(want as usize);
                        let r = std::io::Read::read_to_end(
                            &mut std::io::Read::take(&mut c.stream, want),
                            &mut c.body,
                        );
                        let got = c.body.len() - start;
                        if got > 0 {
                            c.body_skip += got;
                            c.core.receive(&c.body[start..]);
                        }
                        match r {
                            Ok(_) if (got as u64) < want => c.core.receive_eof(),
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                c.may_read = false;
                                if got == 0 {
                                    return self.park_read(c);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Next::Close,
                        }
                        continue;
                    }
                    let idle = c.core.is_idle();
                    match c.stream.recv(scratch) {
                        Ok(0) => {
                            if in_head {
                                crate::tls_failure::before_request(
                                    self.log, &c.peer, &c.stream, None,
                                );
                            }
                            c.core.receive_eof()
                        }
                        Ok(n) => {
                            // A spooled body must progress every `timeout` seconds (as a
                            // streamed one), not arrive whole within it.
                            if idle || c.spool.is_some() {
                                c.req_deadline = monotonic_ms() + self.io_timeout_ms;
                            }
                            c.may_read = n == scratch.len();
                            c.core.receive(&scratch[..n]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            c.may_read = false;
                            return self.park_read(c);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            if in_head {
                                crate::tls_failure::before_request(
                                    self.log,
                                    &c.peer,
                                    &c.stream,
                                    Some(&e),
                                );
                            }
                            return Next::Close;
                        }
                    }
                }
                Ok(Event::Request(head)) => {
                    let (expect, kind) = (head.expect_continue, head.body);
                    c.body.clear();
                    c.body_skip = 0;
                    c.spool = None;
                    c.spooled = 0;
                    c.body_target = match kind {
                        BodyKind::Length(n) if n > 0 && n <= self.opts.buffer_body as u64 => {
                            Some(n)
                        }
                        _ => None,
                    };
                    let expect = expect && kind != BodyKind::Empty && kind != BodyKind::Length(0);
                    let big =
                        matches!(kind, BodyKind::Length(n) if n > self.opts.buffer_body as u64);
                    if big
                        && !expect
                        && matches!(kind, BodyKind::Length(n) if n <= self.opts.spool_limit)
                    {
                        // Read in the poller into a file, without a thread; the handler is
                        // called when it is all there.
                        match open_spool(self.opts.spool_dir.as_deref()) {
                            Ok(f) => c.spool = Some(f),
                            Err(e) if !self.spool_warned.swap(true, Ordering::Relaxed) => {
                                self.log.warning(format_args!(
                                    "Cannot spool request bodies in {}, they stream: {e}",
                                    spool_dir_name(self.opts.spool_dir.as_deref())
                                ));
                            }
                            Err(_) => {}
                        }
                    }
                    if big && c.spool.is_none() {
                        // The body streams: `100 Continue` waits until the handler reads
                        // it (a handler may answer without wanting it).
                        self.dispatch(held, true, expect);
                    } else if expect {
                        // Read ahead now: the body is wanted.
                        c.out.extend_from_slice(response::CONTINUE);
                    }
                }
                Ok(Event::Data(d)) if c.body_skip > 0 => {
                    // Already in the body buffer (read straight into it).
                    c.body_skip = c.body_skip.saturating_sub(d.len());
                }
                Ok(Event::Data(d)) if c.spool.is_some() => {
                    let n = d.len() as u64;
                    let written = c.spool.as_mut().map(|f| std::io::Write::write_all(f, d));
                    if let Some(Err(e)) = written {
                        self.log.error(format_args!("Cannot spool a request body: {e}"));
                        c.spool = None;
                        response::internal_error_page(&mut c.out);
                        c.close_after = true;
                    }
                    c.spooled += n;
                }
                Ok(Event::Data(d)) => {
                    c.body.extend_from_slice(d);
                    if c.body.len() > self.opts.buffer_body {
                        self.dispatch(held, true, false);
                    }
                }
                Ok(Event::EndOfMessage(_)) => {
                    c.body_target = None;
                    if let Some(f) = c.spool.as_mut() {
                        if std::io::Seek::rewind(f).is_err() {
                            return Next::Close;
                        }
                    }
                    self.dispatch(held, false, false);
                }
                Ok(_) => c.close_after = true, // Paused, ConnectionClosed
                Err(e) => {
                    if !(in_head && matches!(e, ferrocorn_core::RecvError::NoMoreData)) {
                        response::error_response(&e, &mut c.out);
                    }
                    c.close_after = true;
                }
            }
        }
    }

    fn park_read(&self, c: &Conn) -> Next {
        // A TLS handshake is read under the request-read deadline set at the accept.
        let deadline = if c.core.is_idle() && !c.stream.handshaking() {
            let ka = self.opts.keepalive.as_millis() as u64;
            monotonic_ms() + if c.core.requests() == 0 { ka.max(FRESH_MS) } else { ka }
        } else {
            c.req_deadline
        };
        Next::Park(Wait::Read { until: deadline })
    }

    /// Whether the next response may keep the connection open.
    fn server_keepalive(&self) -> bool {
        // gunicorn refuses keep-alive once `worker_connections - threads` connections are
        // kept; here the count includes the connections being served.
        !self.opts.keepalive.is_zero()
            && !self.stop.stopping.load(Ordering::Relaxed)
            && self.conns.nconns.load(Ordering::Relaxed)
                <= self.opts.worker_connections.saturating_sub(self.opts.threads).max(1)
    }

    /// Calls the handler for the request just read (its body buffered, or streaming from
    /// the socket, with `Expect: 100-continue` still to answer if `expect`), then prepares
    /// the connection for the next one.
    fn dispatch(&self, held: &mut Option<Box<Conn>>, streaming: bool, expect: bool) {
        let Some(conn) = held.take() else { return };
        let n = self.stop.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if self.lead.quiet.load(Ordering::Relaxed) && self.lead.quiet.swap(false, Ordering::SeqCst)
        {
            let _ = self.lead.nudge.write(1);
        }
        if self.stop.max_requests > 0 && n == self.stop.max_requests {
            self.log.info("Autorestarting worker after current request.");
            self.stop.stopping.store(true, Ordering::SeqCst);
        }
        let mark = conn.out.len();
        let setup = Setup {
            streaming,
            expect_continue: expect,
            server_keepalive: self.server_keepalive(),
            stopping: Arc::clone(&self.stop.stopping),
            timeout: self.io_timeout,
            server: self.server,
        };
        let mut ex = Exchange::new(conn, setup);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handler.handle(&mut ex)));
        if !ex.is_attached() {
            return;
        }
        let ok = match result {
            Ok(Ok(())) => ex.response_started() && ex.finish().is_ok(),
            Ok(Err(_)) => false,
            Err(_) => {
                self.log.error("Error handling request (the handler panicked)");
                false
            }
        };
        let mut keep = ok && ex.keep_alive();
        if keep && streaming && !ex.body_complete() {
            // The response goes out now, not after the rest of a body the handler did
            // not read: that only decides whether the connection is kept.
            ex.flush_ready();
            keep = !ex.broken()
                && ex.body_left().is_none_or(|n| n <= DRAIN_BUDGET as u64)
                && ex.drain_body(DRAIN_BUDGET);
        }
        let (started, broken) = (ex.response_started(), ex.broken());
        let Some(mut c) = ex.conn.take() else { return };
        c.spool = None;
        c.spooled = 0;
        if !ok && !started && !broken && !c.close_after {
            // Nothing of this response was queued: answer 500 in its place.
            c.out.truncate(mark.max(c.out_pos));
            response::internal_error_page(&mut c.out);
        }
        if broken {
            c.out.clear();
            c.out_pos = 0;
        }
        if !keep || c.close_after {
            c.core.close_after_response();
        }
        if c.core.start_next_cycle().is_ok() {
            c.body.clear();
            if c.body.capacity() > 4 * self.opts.buffer_body {
                c.body = Vec::new();
            }
        } else {
            c.close_after = true;
        }
        *held = Some(c);
    }
}

/// An unnamed file in `dir` (the system's temporary directory without one) for a body
/// being spooled: `O_TMPFILE` where the file system has it, else a file created and
/// unlinked at once. Either way it disappears when closed.
fn open_spool(dir: Option<&std::path::Path>) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_TMPFILE | nix::libc::O_CLOEXEC)
        .open(&dir);
    match unnamed {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Err(e),
        Err(_) => {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("ferrocorn-upload-{}-{n}", std::process::id()));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_CLOEXEC)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
    }
}

fn spool_dir_name(dir: Option<&std::path::Path>) -> String {
    dir.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf).display().to_string()
}

/// Whether thread `tid` of this process is running or runnable (`R` in its stat).
fn thread_running(tid: i32) -> bool {
    if tid == 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('R'))
}

/// Waits up to `tick` for a signal (the wake-up pipe), draining it only when it fired.
/// Also returns at once when `nudge` is readable, and says so.
fn wait_signal(ctx: &WorkerContext, tick: Duration, nudge: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let ms = PollTimeout::try_from(tick.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    let mut fds = [
        PollFd::new(ctx.signals.wake_fd(), PollFlags::POLLIN),
        PollFd::new(nudge, PollFlags::POLLIN),
    ];
    if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
        return false;
    }
    if fds[0].revents().is_some_and(|r| !r.is_empty()) {
        ctx.signals.drain();
    }
    fds[1].revents().is_some_and(|r| !r.is_empty())
}

/// Blocks the signals the main thread handles, in a serving thread: they are delivered
/// to the main thread, and blocking syscalls here are not interrupted.
fn block_signals() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

/// Whether a parked reading connection may be closed because the worker stops (at the end
/// of a graceful stop, or when it exits): only a kept-alive connection between requests
/// whose client has sent nothing more. A fresh connection (no request yet) or one whose
/// next request has begun, or already sits in the socket, is served first (within its
/// deadline and the graceful timeout): closing a socket with unread bytes resets it, and
/// the client loses a request it already sent.
///
/// Closing even an idle kept-alive connection races with its client, which may send its
/// next request at any moment (and HTTP clients such as `http.client` then fail it with
/// `RemoteDisconnected`): this is why a graceful stop does not close idle connections at
/// once but lets each carry one more request (answered with `Connection: close`) until
/// its keep-alive deadline, the same bound as for a worker that keeps running, or for
/// [`STOP_LINGER_MS`] if that is sooner (as gunicorn 27).
fn closable_on_stop(c: &Conn) -> bool {
    if !c.core.is_idle() || c.core.requests() == 0 {
        return false;
    }
    matches!(c.stream.peek(), Ok(Peeked::Eof | Peeked::Nothing))
}

/// Whether a parked reading connection has a request waiting for a thread: bytes of it in
/// the socket, unread because every serving thread was busy when they came.
fn request_waiting(c: &Conn) -> bool {
    matches!(c.stream.peek(), Ok(Peeked::Data))
}
