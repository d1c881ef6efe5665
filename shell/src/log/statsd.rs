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

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use ferrocorn_core::statsd::{LogLevel, MetricValue, Statsd as Lines, WORKERS};

use crate::settings::config::{StatsdConfig, StatsdHost};

#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// A StatsD client for the settings' `statsd_host`.
#[derive(Debug)]
pub struct Statsd {
    socket: Socket,
    lines: Lines,
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
        Ok(Statsd { socket, lines })
    }

    fn send(&self, line: &str) {
        let _ = match &self.socket {
            Socket::Udp(s) => s.send(line.as_bytes()),
            Socket::Unix(s) => s.send(line.as_bytes()),
        };
    }

    /// The three metrics of a served request.
    pub fn request(&self, status: u16, elapsed: Duration) {
        for line in self.lines.access(status, (elapsed.as_secs(), elapsed.subsec_micros())) {
            self.send(&line);
        }
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
