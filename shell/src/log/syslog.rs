//! Syslog, as gunicorn's `syslog` setting configures Python's `SysLogHandler`: every line
//! of the error log (and, unless `disable_redirect_access_to_syslog`, of the access log)
//! is also sent to `syslog_addr` as
//!
//! ```text
//! <PRI>gunicorn.<prefix>.<error|access>: [<pid>] <message>\0
//! ```
//!
//! where PRI is `facility * 8 + severity` (`syslog_facility`; DEBUG 7, INFO 6, WARNING 4,
//! ERROR 3, CRITICAL 2), `<prefix>` is `syslog_prefix` or the process name with `:` made
//! `.`, and the trailing NUL is the handler's `append_nul`. Addresses: `udp://HOST:PORT`,
//! `tcp://HOST:PORT` (messages written back to back, each ending in its NUL) and
//! `unix://PATH#dgram|stream` (no type: a datagram socket, else a stream, as Python tries).
//! Port 514 when none is given.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Mutex;

use crate::settings::config::{Level, SyslogConfig};

#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    Tcp(Mutex<TcpStream>),
    UnixDgram(UnixDatagram),
    UnixStream(Mutex<UnixStream>),
}

/// The syslog destination of the error and access logs.
#[derive(Debug)]
pub struct Syslog {
    socket: Socket,
    facility: u32,
    prefix: String,
}

/// gunicorn's `SYSLOG_FACILITIES`.
fn facility(name: &str) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "auth" | "security" => 4,
        "authpriv" => 10,
        "cron" => 9,
        "daemon" => 3,
        "ftp" => 11,
        "kern" => 0,
        "lpr" => 6,
        "mail" => 2,
        "news" => 7,
        "syslog" => 5,
        "user" => 1,
        "uucp" => 8,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// gunicorn's `parse_syslog_address` for `udp://` and `tcp://`: (host, port).
fn host_port(addr: &str) -> Result<(String, u16), String> {
    let host = if addr.contains('[') && addr.contains(']') {
        addr.split(']').next().unwrap_or("").get(1..).unwrap_or("").to_lowercase()
    } else if addr.contains(':') {
        addr.split(':').next().unwrap_or("").to_lowercase()
    } else if addr.is_empty() {
        "localhost".to_owned()
    } else {
        addr.to_lowercase()
    };
    let rest = addr.rsplit(']').next().unwrap_or(addr);
    let port = match rest.split_once(':') {
        Some((_, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| format!("Error: {p:?} is not a valid port number."))?
        }
        Some((_, p)) => return Err(format!("Error: '{p}' is not a valid port number.")),
        None => 514,
    };
    Ok((host, port))
}

impl Syslog {
    /// The destination `syslog` describes. An address that cannot be used stops the
    /// start, as the handler's set-up fails in gunicorn.
    pub fn new(config: &SyslogConfig) -> Result<Syslog, String> {
        let addr = config.addr.as_str();
        let name = config.facility.as_str();
        let facility = facility(name).ok_or_else(|| "Error: unknown facility name".to_owned())?;
        let fail = |e: std::io::Error| format!("Error: syslog address {addr}: {e}");
        let socket = if let Some(rest) = addr.strip_prefix("unix://") {
            let (path, kind) = match rest.split_once('#') {
                Some((p, k)) => (p, Some(k)),
                None => (rest, None),
            };
            if kind == Some("dgram") {
                let s = UnixDatagram::unbound().map_err(fail)?;
                s.connect(path).map_err(fail)?;
                Socket::UnixDgram(s)
            } else if kind.is_some() {
                Socket::UnixStream(Mutex::new(UnixStream::connect(path).map_err(fail)?))
            } else {
                // Python's handler tries a datagram socket first, then a stream.
                let d = UnixDatagram::unbound().map_err(fail)?;
                match d.connect(path) {
                    Ok(()) => Socket::UnixDgram(d),
                    Err(_) => {
                        Socket::UnixStream(Mutex::new(UnixStream::connect(path).map_err(fail)?))
                    }
                }
            }
        } else if let Some(rest) = addr.strip_prefix("udp://") {
            let (host, port) = host_port(rest)?;
            let bind = if host.contains(':') { "[::]:0" } else { "0.0.0.0:0" };
            let s = UdpSocket::bind(bind).map_err(fail)?;
            s.connect((host.as_str(), port)).map_err(fail)?;
            Socket::Udp(s)
        } else if let Some(rest) = addr.strip_prefix("tcp://") {
            let (host, port) = host_port(rest)?;
            Socket::Tcp(Mutex::new(TcpStream::connect((host.as_str(), port)).map_err(fail)?))
        } else {
            return Err("Error: invalid syslog address".to_owned());
        };
        Ok(Syslog { socket, facility, prefix: config.prefix.clone() })
    }

    /// Sends one message of the `error` or `access` log at `level`, as written by `pid`.
    pub fn send(&self, log: &str, level: Level, pid: u32, msg: &str) {
        let severity = match level {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Critical => 2,
        };
        let line = format!(
            "<{}>gunicorn.{}.{log}: [{pid}] {msg}\0",
            self.facility * 8 + severity,
            self.prefix
        );
        // A syslog that is gone must not stop the server (Python's handler reports the
        // failure through `handleError` and goes on).
        let _ = match &self.socket {
            Socket::Udp(s) => s.send(line.as_bytes()).map(|_| ()),
            Socket::UnixDgram(s) => s.send(line.as_bytes()).map(|_| ()),
            Socket::Tcp(s) => s
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write_all(line.as_bytes()),
            Socket::UnixStream(s) => s
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write_all(line.as_bytes()),
        };
    }
}
