//! Listening sockets: gunicorn's bind forms, options, retry loop and texts.
//!
//! | `-b` form | socket |
//! |---|---|
//! | `HOST`, `HOST:PORT`, `tcp://HOST:PORT`, `:PORT` | TCP over IPv4 (`HOST` resolved, first address); port 8000 by default |
//! | `[V6]`, `[V6]:PORT` | TCP over IPv6 (`::1:8000` without brackets is refused, as gunicorn) |
//! | `unix:PATH`, `unix://PATH` | unix stream socket; a stale socket file is removed first, the file is created under `umask` and removed on a clean exit |
//! | `fd://N` | an inherited, already bound socket; when any `fd://` is given, every address bind is ignored (gunicorn's `create_sockets`) |
//!
//! Every socket gets `SO_REUSEADDR`, `SO_REUSEPORT` when `reuse_port`, `TCP_NODELAY` on
//! TCP, is non-blocking and listens with `backlog`. Sockets are made in the master before
//! the first fork and inherited by the workers; they are close-on-exec (a future re-exec
//! on USR2 clears the flag on the fds it hands over).
//!
//! A failing bind is retried 5 times, 1 second apart, with gunicorn's lines
//! (`Connection in use: ('127.0.0.1', 8000)`, `connection to ('127.0.0.1', 8000) failed:
//! [Errno 98] Address already in use`, debug `Retrying in 1 second.`), then
//! `Can't connect to ('127.0.0.1', 8000)` and exit 1.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::log::{Logger, py_os_error};
use crate::transport::Stream;

/// One `bind` entry, parsed as gunicorn's `util.parse_address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddr {
    /// `(host, port)`: host lower-cased, brackets removed.
    Tcp {
        /// Host name or address literal (empty means all IPv4 interfaces).
        host: String,
        /// Port number as given (checked against 0..=65535 at bind time, as Python).
        port: i64,
    },
    /// A unix socket path (or an abstract name starting with NUL).
    Unix(String),
    /// An inherited file descriptor.
    Fd(i32),
}

/// Parses one `bind` value (`util.parse_address`); errors are gunicorn's texts.
pub fn parse_address(netloc: &str) -> Result<BindAddr, String> {
    if let Some(rest) = netloc.strip_prefix("unix:") {
        return Ok(BindAddr::Unix(rest.strip_prefix("//").unwrap_or(rest).to_owned()));
    }
    if let Some(fd) = netloc.strip_prefix("fd://") {
        return match crate::settings::validate::parse_int_base10(fd) {
            Some(n) if i32::try_from(n).is_ok() => Ok(BindAddr::Fd(n as i32)),
            _ => Err(format!("{} is not a valid file descriptor.", py_str_repr(fd))),
        };
    }
    let netloc = match netloc.split_once("tcp://") {
        Some((_, rest)) => rest,
        None => netloc,
    };
    let (host, port): (String, String) = if netloc.contains('[') && netloc.contains(']') {
        let host = netloc.split(']').next().unwrap_or("");
        let host = host.get(1..).unwrap_or("").to_owned();
        let port = netloc.split("]:").nth(1).unwrap_or("8000").to_owned();
        (host, port)
    } else if netloc.contains(':') {
        let mut parts = netloc.split(':');
        let host = parts.next().unwrap_or("").to_owned();
        let port = parts.next().unwrap_or("8000").to_owned();
        (host, port)
    } else if netloc.is_empty() {
        ("0.0.0.0".to_owned(), "8000".to_owned())
    } else {
        (netloc.to_owned(), "8000".to_owned())
    };
    let port = crate::settings::validate::parse_int_base10(&port)
        .ok_or_else(|| format!("{} is not a valid port number.", py_str_repr(&port)))?;
    Ok(BindAddr::Tcp { host: host.to_lowercase(), port })
}

fn py_str_repr(s: &str) -> String {
    crate::settings::value::str_repr(s)
}

impl fmt::Display for BindAddr {
    /// Python's `str()` of the parsed address: `('127.0.0.1', 8000)`, the path, or the fd.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp { host, port } => write!(f, "({}, {port})", py_str_repr(host)),
            BindAddr::Unix(path) => f.write_str(path),
            BindAddr::Fd(n) => write!(f, "{n}"),
        }
    }
}

/// How sockets are made (from `backlog`, `reuse_port`, `umask`, and the retry policy).
#[derive(Clone, Debug)]
pub struct BindOptions {
    /// `listen(2)` backlog.
    pub backlog: i32,
    /// Set `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// The umask a unix socket file is created under.
    pub umask: u32,
    /// Bind attempts per address (gunicorn: 5).
    pub attempts: u32,
    /// Pause after each failed attempt (gunicorn: 1 s).
    pub retry_delay: Duration,
    /// `https` in the listener's name.
    pub is_ssl: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            backlog: 2048,
            reuse_port: false,
            umask: 0,
            attempts: 5,
            retry_delay: Duration::from_secs(1),
            is_ssl: false,
        }
    }
}

/// What a listener is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path (empty for an unnamed socket).
    Unix(PathBuf),
}

/// A listening socket owned by the master and inherited by the workers.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    addr: ListenAddr,
    scheme: &'static str,
    /// The socket file we created, removed on a clean exit.
    owned_path: Option<PathBuf>,
}

impl fmt::Display for Listener {
    /// gunicorn's listener name: `http://127.0.0.1:8000`, `http://[::1]:8000`, `unix:PATH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            ListenAddr::Tcp(SocketAddr::V4(a)) => {
                write!(f, "{}://{}:{}", self.scheme, a.ip(), a.port())
            }
            ListenAddr::Tcp(SocketAddr::V6(a)) => write!(f, "http://[{}]:{}", a.ip(), a.port()),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Listener {
    /// What the socket is bound to.
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Whether this is a unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.addr, ListenAddr::Unix(_))
    }

    /// Accepts one connection (the listener is non-blocking: `WouldBlock` when another
    /// worker took it). The connection is blocking and close-on-exec.
    pub fn accept(&self) -> io::Result<(Stream, ferrocorn_core::Peer)> {
        let (sock, peer) = self.socket.accept()?;
        sock.set_nonblocking(false)?;
        if let Some(addr) = peer.as_socket() {
            Ok((Stream::Tcp(sock.into()), ferrocorn_core::Peer::Tcp(addr)))
        } else {
            Ok((Stream::Unix(sock.into()), ferrocorn_core::Peer::Unix))
        }
    }

    /// A second handle on the same socket (`dup`), close-on-exec.
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(Listener {
            socket: self.socket.try_clone()?,
            addr: self.addr.clone(),
            scheme: self.scheme,
            owned_path: self.owned_path.clone(),
        })
    }

    /// The socket file this listener removes on a clean exit, if any.
    pub fn owned_path(&self) -> Option<&Path> {
        self.owned_path.as_deref()
    }

    /// Whether the socket survives `exec` (off by default; a USR2 re-exec turns it on in
    /// the forked child only).
    pub fn set_inheritable(&self, inheritable: bool) -> io::Result<()> {
        self.socket.set_cloexec(!inheritable)
    }

    /// Closes the socket; removes the socket file when we created it and `unlink`.
    pub fn close(self, unlink: bool) {
        let path = self.owned_path.clone();
        drop(self);
        if let (true, Some(p)) = (unlink, path) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Why binding failed for good.
#[derive(Debug)]
pub struct BindError {
    /// What to show (already logged when it came from the retry loop).
    pub message: String,
    /// Whether the message was already written to the log.
    pub logged: bool,
}

enum Attempt {
    /// An `OSError`: logged, retried.
    Os(io::Error),
    /// Anything else (`'x' is not a socket`, port out of range): fatal at once.
    Fatal(String),
}

/// Creates the listeners for `bind` values, as gunicorn's `sock.create_sockets`.
pub fn create_listeners(
    binds: &[BindAddr],
    opts: &BindOptions,
    log: &Logger,
) -> Result<Vec<Listener>, BindError> {
    let fds: Vec<i32> = binds
        .iter()
        .filter_map(|b| if let BindAddr::Fd(n) = b { Some(*n) } else { None })
        .collect();
    if !fds.is_empty() {
        return fds
            .into_iter()
            .map(|fd| {
                adopt_fd(fd, opts).map_err(|e| BindError {
                    message: format!("fd://{fd}: {}", py_os_error(&e)),
                    logged: false,
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for addr in binds {
        let mut sock = None;
        for _ in 0..opts.attempts.max(1) {
            match bind_one(addr, opts) {
                Ok(l) => {
                    sock = Some(l);
                    break;
                }
                Err(Attempt::Fatal(message)) => return Err(BindError { message, logged: false }),
                Err(Attempt::Os(e)) => {
                    match e.raw_os_error() {
                        Some(n) if n == nix::libc::EADDRINUSE => {
                            log.error(format_args!("Connection in use: {addr}"))
                        }
                        Some(n) if n == nix::libc::EADDRNOTAVAIL => {
                            log.error(format_args!("Invalid address: {addr}"))
                        }
                        _ => {}
                    }
                    log.error(format_args!("connection to {addr} failed: {}", os_error_text(&e)));
                    log.debug("Retrying in 1 second.");
                    std::thread::sleep(opts.retry_delay);
                }
            }
        }
        match sock {
            Some(l) => out.push(l),
            None => {
                let message = format!("Can't connect to {addr}");
                log.error(&message);
                return Err(BindError { message, logged: true });
            }
        }
    }
    Ok(out)
}

/// Python's `str()` of the error, including resolver (`gaierror`) failures.
fn os_error_text(e: &io::Error) -> String {
    if e.raw_os_error().is_some() {
        return py_os_error(e);
    }
    let text = e.to_string();
    let msg = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text);
    let code = match msg {
        "Name or service not known" => -2,
        "Temporary failure in name resolution" => -3,
        "Non-recoverable failure in name resolution" => -4,
        "Address family for hostname not supported" => -9,
        "No address associated with hostname" => -5,
        _ => return msg.to_owned(),
    };
    format!("[Errno {code}] {msg}")
}

fn bind_one(addr: &BindAddr, opts: &BindOptions) -> Result<Listener, Attempt> {
    match addr {
        BindAddr::Tcp { host, port } => {
            let port = u16::try_from(*port)
                .map_err(|_| Attempt::Fatal("bind(): port must be 0-65535.".to_owned()))?;
            let sa = resolve(host, port).map_err(Attempt::Os)?;
            let domain = if sa.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
            let socket = Socket::new(domain, Type::STREAM, None).map_err(Attempt::Os)?;
            socket.set_tcp_nodelay(true).map_err(Attempt::Os)?;
            set_options(&socket, opts).map_err(Attempt::Os)?;
            socket.bind(&SockAddr::from(sa)).map_err(Attempt::Os)?;
            finish(&socket, opts).map_err(Attempt::Os)?;
            let bound = socket.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(sa);
            Ok(Listener {
                socket,
                addr: ListenAddr::Tcp(bound),
                scheme: scheme(opts),
                owned_path: None,
            })
        }
        BindAddr::Unix(path) => {
            let abstract_name = path.starts_with('\0');
            if !abstract_name {
                match std::fs::metadata(path) {
                    Ok(m) if m.file_type().is_socket() => {
                        std::fs::remove_file(path).map_err(Attempt::Os)?
                    }
                    Ok(_) => {
                        return Err(Attempt::Fatal(format!(
                            "{} is not a socket",
                            py_str_repr(path)
                        )));
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Attempt::Os(e)),
                }
            }
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(Attempt::Os)?;
            set_options(&socket, opts).map_err(Attempt::Os)?;
            let sa = SockAddr::unix(path).map_err(Attempt::Os)?;
            let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                opts.umask as nix::libc::mode_t,
            ));
            let bound = socket.bind(&sa);
            nix::sys::stat::umask(old);
            bound.map_err(Attempt::Os)?;
            finish(&socket, opts).map_err(Attempt::Os)?;
            Ok(Listener {
                socket,
                addr: ListenAddr::Unix(PathBuf::from(path)),
                scheme: scheme(opts),
                owned_path: (!abstract_name).then(|| PathBuf::from(path)),
            })
        }
        BindAddr::Fd(_) => Err(Attempt::Fatal("fd binds are adopted, not bound".to_owned())),
    }
}

fn scheme(opts: &BindOptions) -> &'static str {
    if opts.is_ssl { "https" } else { "http" }
}

/// Resolves `(host, port)` for an IPv4 socket, or an IPv6 literal (gunicorn's
/// `util.is_ipv6` picks the family from the host text).
fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Ok(SocketAddr::new(IpAddr::V6(v6), port));
    }
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::new(IpAddr::V4(v4), port));
    }
    (host, port).to_socket_addrs()?.find(SocketAddr::is_ipv4).ok_or_else(|| {
        io::Error::other(
            "failed to lookup address information: Address family for hostname not supported",
        )
    })
}

fn set_options(socket: &Socket, opts: &BindOptions) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        match socket.set_reuse_port(true) {
            Err(e)
                if !matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOPROTOOPT | nix::libc::EINVAL)
                ) =>
            {
                return Err(e);
            }
            _ => {}
        }
    }
    Ok(())
}

fn finish(socket: &Socket, opts: &BindOptions) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if !socket.is_listener()? {
        socket.listen(opts.backlog)?;
    }
    Ok(())
}

/// Takes over listening sockets inherited across `exec`: `GUNICORN_FD` after a USR2
/// re-exec, or systemd's `LISTEN_FDS`. They are made non-blocking and close-on-exec and
/// listened on only if they are not listening yet. With `own_files`, a unix socket's
/// file is removed on a clean exit (the re-executed master takes over that duty).
pub fn adopt_listeners(
    fds: &[i32],
    opts: &BindOptions,
    own_files: bool,
) -> Result<Vec<Listener>, BindError> {
    fds.iter()
        .map(|&fd| {
            let mut l = adopt_fd(fd, opts).map_err(|e| BindError {
                message: format!("fd {fd}: {}", py_os_error(&e)),
                logged: false,
            })?;
            if own_files {
                if let ListenAddr::Unix(p) = &l.addr {
                    l.owned_path = (!p.as_os_str().is_empty()).then(|| p.clone());
                }
            }
            Ok(l)
        })
        .collect()
}

/// Takes over an inherited socket given as `fd://N`.
fn adopt_fd(fd: i32, opts: &BindOptions) -> io::Result<Listener> {
    let owned = take_inherited_fd(fd)?;
    let socket = Socket::from(owned);
    let local = socket.local_addr()?;
    set_options(&socket, opts)?;
    let addr = if let Some(sa) = local.as_socket() {
        socket.set_tcp_nodelay(true)?;
        ListenAddr::Tcp(sa)
    } else {
        ListenAddr::Unix(local.as_pathname().map(Path::to_path_buf).unwrap_or_default())
    };
    finish(&socket, opts)?;
    Ok(Listener { socket, addr, scheme: scheme(opts), owned_path: None })
}

/// Takes ownership of file descriptor `fd`, which the parent process left open for us.
#[allow(unsafe_code)]
fn take_inherited_fd(fd: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // Refuse numbers that are not open, or that are stdio, or that this process opened
    // itself (the heartbeat region is not an fd; at bind time the master holds no other
    // sockets, the log file is opened with O_APPEND and would fail `local_addr`).
    if fd < 3 || !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return Err(io::Error::from_raw_os_error(nix::libc::EBADF));
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    if !target.to_string_lossy().starts_with("socket:") {
        return Err(io::Error::from_raw_os_error(nix::libc::ENOTSOCK));
    }
    // SAFETY: `fd` is open (checked above) and is a socket the user handed over with
    // `fd://N`: it was inherited across exec, so no object of this process owns it; from
    // here on the returned `OwnedFd` is its only owner (gunicorn likewise closes the
    // original after adopting it).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Closes every listener; socket files we created are removed when `unlink`.
pub fn close_listeners(listeners: Vec<Listener>, unlink: bool) {
    for l in listeners {
        l.close(unlink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: i64) -> BindAddr {
        BindAddr::Tcp { host: h.to_owned(), port: p }
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse_address("127.0.0.1:8000"), Ok(tcp("127.0.0.1", 8000)));
        assert_eq!(parse_address("LocalHost"), Ok(tcp("localhost", 8000)));
        assert_eq!(parse_address(":9000"), Ok(tcp("", 9000)));
        assert_eq!(parse_address(""), Ok(tcp("0.0.0.0", 8000)));
        assert_eq!(parse_address("tcp://0.0.0.0:80"), Ok(tcp("0.0.0.0", 80)));
        assert_eq!(parse_address("[::1]:8001"), Ok(tcp("::1", 8001)));
        assert_eq!(parse_address("[::1]"), Ok(tcp("::1", 8000)));
        assert_eq!(parse_address("unix:/tmp/a.sock"), Ok(BindAddr::Unix("/tmp/a.sock".into())));
        assert_eq!(parse_address("unix:///tmp/a.sock"), Ok(BindAddr::Unix("/tmp/a.sock".into())));
        assert_eq!(parse_address("fd://3"), Ok(BindAddr::Fd(3)));
        assert_eq!(parse_address("fd://abc"), Err("'abc' is not a valid file descriptor.".into()));
        assert_eq!(parse_address("127.0.0.1:x"), Err("'x' is not a valid port number.".into()));
        assert_eq!(parse_address("::1:8000"), Err("'' is not a valid port number.".into()));
    }

    #[test]
    fn python_str_of_addresses() {
        assert_eq!(tcp("127.0.0.1", 8000).to_string(), "('127.0.0.1', 8000)");
        assert_eq!(BindAddr::Unix("/tmp/x".into()).to_string(), "/tmp/x");
        assert_eq!(BindAddr::Fd(5).to_string(), "5");
    }

    #[test]
    fn binds_and_names() {
        let log = Logger::stderr(crate::log::Level::Critical);
        let ls =
            create_listeners(&[tcp("127.0.0.1", 0), tcp("::1", 0)], &BindOptions::default(), &log);
        let ls = match ls {
            Ok(l) => l,
            Err(e) => panic!("{}", e.message),
        };
        assert!(ls[0].to_string().starts_with("http://127.0.0.1:"));
        assert!(ls[1].to_string().starts_with("http://[::1]:"));
        close_listeners(ls, true);
    }

    #[test]
    fn in_use_is_retried_then_fails() {
        let log = Logger::stderr(crate::log::Level::Critical);
        let first =
            create_listeners(&[tcp("127.0.0.1", 0)], &BindOptions::default(), &log).unwrap();
        let ListenAddr::Tcp(sa) = first[0].addr().clone() else { panic!() };
        let opts = BindOptions {
            attempts: 2,
            retry_delay: Duration::from_millis(1),
            ..BindOptions::default()
        };
        let err =
            create_listeners(&[tcp("127.0.0.1", i64::from(sa.port()))], &opts, &log).unwrap_err();
        assert_eq!(err.message, format!("Can't connect to ('127.0.0.1', {})", sa.port()));
        assert!(err.logged);
    }

    #[test]
    fn unix_socket_file_lifecycle() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let p = path.to_str().unwrap().to_owned();
        let log = Logger::stderr(crate::log::Level::Critical);
        let opts = BindOptions { umask: 0o077, ..BindOptions::default() };
        let a = create_listeners(&[BindAddr::Unix(p.clone())], &opts, &log).unwrap();
        assert_eq!(a[0].to_string(), format!("unix:{p}"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
        drop(a); // closed without unlink: a stale socket file stays
        assert!(path.exists());
        let b = create_listeners(&[BindAddr::Unix(p.clone())], &opts, &log).unwrap();
        close_listeners(b, true);
        assert!(!path.exists());
        std::fs::write(&path, b"x").unwrap();
        let err = create_listeners(&[BindAddr::Unix(p.clone())], &opts, &log).unwrap_err();
        assert_eq!(err.message, format!("'{p}' is not a socket"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn resolver_errors_read_like_python() {
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(os_error_text(&e), "[Errno -2] Name or service not known");
    }
}
