//! StatsD metrics, as gunicorn's `Statsd` logger sends them when `statsd_host` is set:
//! one datagram per metric over a connected UDP socket (`host:port`) or unix datagram
//! socket (`unix://PATH`), lines rendered by [`ferrocorn_core::statsd`] with
//! `statsd_prefix` and `dogstatsd_tags`. What is sent:
//!
//! - `gunicorn.request.duration` (ms), `gunicorn.requests` and
//!   `gunicorn.request.status.<code>` for every request the access log would record;
//! - `gunicorn.log.critical` / `error` / `warning` / `exception` for every error-log call
//!   at those levels, whatever `loglevel` drops;
//! - `gunicorn.workers`, a gauge the master sends when the count of workers it keeps
//!   changes.
//!
//! The master opens the socket; the workers share it after fork. A send that fails (no
//! receiver yet, a full buffer) is dropped, as a datagram may be.
//!
//! gunicorn sends one datagram per metric, three per request. Each `send(2)` costs a few
//! microseconds of CPU, so a worker batches its request metrics instead: the lines join a
//! buffer (newline-separated, as StatsD and DogStatsD read a packet) sent when it passes
//! 1000 bytes, by a thread of the worker every 50 ms, and when the worker exits
//! ([`Statsd::flush`]). The lines are gunicorn's; the error-log counters and the workers
//! gauge go out at once, one datagram each.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrocorn_core::statsd::{LogLevel, MetricValue, Statsd as Lines, WORKERS};

use crate::settings::config::{StatsdConfig, StatsdHost};

#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Socket {
    fn send(&self, bytes: &[u8]) {
        let _ = match self {
            Socket::Udp(s) => s.send(bytes),
            Socket::Unix(s) => s.send(bytes),
        };
    }
}

/// A datagram's worth of request metrics waiting to be sent.
const BATCH_BYTES: usize = 1000;
/// How long request metrics may wait for a full batch.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Request metrics not sent yet, and the process whose they are (0 until the first
/// request; a forked worker starts with the master's empty batch and its own flushing
/// thread).
#[derive(Debug, Default)]
struct Batch {
    lines: String,
    pid: u32,
    /// No flushing thread could be started: each request's metrics go out at once.
    direct: bool,
}

/// A StatsD client for the settings' `statsd_host`.
#[derive(Debug)]
pub struct Statsd {
    socket: Arc<Socket>,
    lines: Lines,
    batch: Arc<Mutex<Batch>>,
}

impl Statsd {
    /// The client for `statsd_host`. An address that cannot be used is an error at
    /// start, as in gunicorn (whose `Statsd` logger fails to build).
    pub fn new(config: &StatsdConfig) -> Result<Statsd, String> {
        let socket = match &config.host {
            StatsdHost::Unix(path) => {
                let s = UnixDatagram::unbound().map_err(|e| format!("Error: statsd: {e}"))?;
                // gunicorn connects once; a receiver that is not there yet is not an error.
                let _ = s.connect(path);
                Socket::Unix(s)
            }
            StatsdHost::Udp { host, port } => {
                let port = u16::try_from(*port)
                    .map_err(|_| format!("Error: statsd_host: invalid port {port}"))?;
                let host = host.as_str();
                let bind = if host.contains(':') { "[::]:0" } else { "0.0.0.0:0" };
                let s = UdpSocket::bind(bind).map_err(|e| format!("Error: statsd: {e}"))?;
                s.connect((host, port))
                    .map_err(|e| format!("Error: statsd_host {host}:{port}: {e}"))?;
                Socket::Udp(s)
            }
            StatsdHost::Fd(fd) => {
                return Err(format!(
                    "Error: statsd_host {fd}: ferrocorn sends StatsD to host:port or unix://PATH only"
                ));
            }
        };
        match &socket {
            Socket::Udp(s) => s.set_nonblocking(true),
            Socket::Unix(s) => s.set_nonblocking(true),
        }
        .map_err(|e| format!("Error: statsd: {e}"))?;
        let lines = Lines::new(&config.prefix, &config.tags);
        Ok(Statsd {
            socket: Arc::new(socket),
            lines,
            batch: Arc::new(Mutex::new(Batch::default())),
        })
    }

    fn send(&self, line: &str) {
        self.socket.send(line.as_bytes());
    }

    /// The three metrics of a served request, batched (see the module's text).
    pub fn request(&self, status: u16, elapsed: Duration) {
        let mut b = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        if b.pid == 0 {
            // The first request of this process (a worker: the master, which forks them,
            // never serves one, so a worker starts with an empty batch and no thread).
            b.pid = std::process::id();
            b.direct = !self.start_flushing();
        }
        for line in self.lines.access(status, (elapsed.as_secs(), elapsed.subsec_micros())) {
            if !b.lines.is_empty() {
                b.lines.push('\n');
            }
            b.lines.push_str(&line);
        }
        if b.direct || b.lines.len() >= BATCH_BYTES {
            self.socket.send(b.lines.as_bytes());
            b.lines.clear();
        }
    }

    /// Sends the request metrics waiting in this process (a worker that exits).
    pub fn flush(&self) {
        flush(&self.socket, &self.batch);
    }

    /// This process's thread that sends the waiting request metrics every
    /// [`FLUSH_EVERY`]; it ends with the process. Whether it started.
    fn start_flushing(&self) -> bool {
        let (socket, batch) = (Arc::clone(&self.socket), Arc::clone(&self.batch));
        let spawned = std::thread::Builder::new().name("statsd".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush(&socket, &batch);
            }
        });
        spawned.is_ok()
    }

    /// The counter of an error-log call at `level`.
    pub fn log_call(&self, level: LogLevel) {
        let mut line = String::new();
        self.lines.increment(level.metric(), 1, &mut line);
        self.send(&line);
    }

    /// The master's worker-count gauge.
    pub fn workers(&self, n: usize) {
        let mut line = String::new();
        self.lines.gauge(WORKERS, MetricValue::Int(n as i64), &mut line);
        self.send(&line);
    }
}

fn flush(socket: &Socket, batch: &Mutex<Batch>) {
    let mut b = batch.lock().unwrap_or_else(PoisonError::into_inner);
    if !b.lines.is_empty() && b.pid == std::process::id() {
        socket.send(b.lines.as_bytes());
        b.lines.clear();
    }
}
