//! The transport: the bytes of a client connection, for every connection driver.
//!
//! A [`Stream`] is an accepted connection: TCP, a unix socket, or TLS over either
//! ([`Tls`], rustls; [`TlsAcceptor`] wraps an accepted socket). It reads, writes
//! (`writev(2)`), sends a file (`sendfile(2)`, one call at a time; over TLS a read of the
//! file and a write) and shuts down. On top of it, the two ways the workers wait for a
//! socket:
//!
//! - **Blocking**, for the sync worker (and the Rust test body): the socket has a receive
//!   and send timeout of one beat interval, so a blocked call returns to let the worker
//!   beat; [`Waits`] bounds how long a write may make no progress and carries the quick
//!   stop's flag. [`write_all`], [`sendfile_all`], [`close_graceful`].
//! - **Readiness**, for the gthread engine: the socket is non-blocking, the engine's
//!   poller says when to go on; a handler that must finish a write on its own thread
//!   waits with `poll(2)` ([`wait_ready`], [`write_all_ready`], [`sendfile_ready`]).
//!
//! Both report the same errors: [`retryable`] says "not now", `TimedOut` a peer that
//! made no progress within the limit, [`Stopping`] the quick stop.
//!
//! **TLS** keeps both ways: every call drives rustls over the socket as far as the
//! socket allows and reports `WouldBlock` (or the socket's timeout) exactly when the
//! socket would have, so the handshake is just the first reads of a connection: in the
//! gthread engine it waits in the poller like any read (never on a thread), in the sync
//! worker under the client's deadline. What a plain socket does not have, and the
//! drivers must look at: records rustls encrypted that the socket did not take yet
//! ([`Stream::pending_output`], written by [`Stream::flush_pending`]; [`write_all`],
//! [`write_all_ready`] and the sendfile calls finish them), and the handshake in
//! progress ([`Stream::handshaking`]: no request byte yet, but not an idle connection).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferrocorn_core::Peer;
use ferrocorn_core::config::{ProxyMode, ProxyPolicy};
use ferrocorn_core::proxy::{self, Parsed};
use rustls::{ServerConfig, ServerConnection};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::heartbeat::Slot;

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix stream socket.
    Unix(UnixStream),
    /// TLS over one of the above.
    Tls(Box<Tls>),
}

impl Stream {
    /// Sets the timeout of each read.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
        }
    }

    /// Sets the timeout of each write.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tls(s) => s.sock.set_write_timeout(t),
        }
    }

    /// `shutdown(2)`; over TLS, shutting down the sending side sends `close_notify`
    /// first (as far as the socket takes it).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    /// Whether encrypted records wait for the socket (never for a plain socket): the
    /// connection is not written out until [`Stream::flush_pending`] says so.
    pub fn pending_output(&self) -> bool {
        match self {
            Stream::Tls(s) => s.lock().wants_write(),
            _ => false,
        }
    }

    /// Writes the records waiting for the socket: `Ok` when none is left, `WouldBlock`
    /// (or the socket's timeout) when the socket is full.
    pub fn flush_pending(&self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush_records(&mut s.lock()),
            _ => Ok(()),
        }
    }

    /// Whether a TLS handshake is in progress (the peer sent no request byte yet, but
    /// the connection is not idle either).
    pub fn handshaking(&self) -> bool {
        match self {
            Stream::Tls(s) => s.lock().is_handshaking(),
            _ => false,
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The environ variables of the client certificate, once the handshake is over, on a
    /// TLS connection whose server asks for one (`cert_reqs` 1 or 2); made at the first
    /// call and shared by the connection's requests ([`crate::tls_peer`]).
    pub fn client_vars(&self) -> Option<Arc<crate::tls_peer::ClientVars>> {
        let Stream::Tls(s) = self else { return None };
        if !s.client_auth {
            return None;
        }
        if let Some(v) = s.client.get() {
            return Some(Arc::clone(v));
        }
        let conn = s.lock();
        if conn.is_handshaking() {
            return None;
        }
        let vars = Arc::new(crate::tls_peer::ClientVars::of(conn.peer_certificates()));
        drop(conn);
        Some(Arc::clone(s.client.get_or_init(|| vars)))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tls(s) => s.sock.as_fd(),
        }
    }
}

/// What a look at a socket's receive queue found ([`Stream::peek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peeked {
    /// Bytes are waiting.
    Data,
    /// The peer closed its side (and nothing is waiting).
    Eof,
    /// Nothing yet.
    Nothing,
}

impl Stream {
    /// Reads what is there into `buf` (on a non-blocking socket, `WouldBlock` when
    /// nothing is).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tls(s) => s.recv(buf),
        }
    }

    /// Writes what the socket takes of `buf` (over TLS: what rustls took, see
    /// [`Stream::pending_output`]).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_vectored(&[IoSlice::new(buf)])
    }

    /// Writes what the socket takes of `bufs`, in order (`writev(2)`).
    pub fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Unix(s) => (&*s).write_vectored(bufs),
            Stream::Tls(s) => s.send_vectored(bufs),
        }
    }

    /// Looks, without waiting and without taking anything, at what the peer sent (over
    /// TLS, plaintext rustls already decrypted counts, and so does a `close_notify`).
    pub fn peek(&self) -> io::Result<Peeked> {
        if let Stream::Tls(s) = self {
            return s.peek();
        }
        let mut byte = [0u8; 1];
        let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
        match nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(&self.as_fd()),
            &mut byte,
            flags,
        ) {
            Ok(0) => Ok(Peeked::Eof),
            Ok(_) => Ok(Peeked::Data),
            Err(Errno::EAGAIN) => Ok(Peeked::Nothing),
            Err(e) => Err(e.into()),
        }
    }

    /// One `sendfile(2)` of at most `count` bytes of `file` from `*offset` (advanced by
    /// what went); the bytes sent.
    pub fn sendfile(
        &self,
        file: BorrowedFd<'_>,
        offset: &mut i64,
        count: usize,
    ) -> io::Result<usize> {
        if let Stream::Tls(s) = self {
            // The kernel cannot encrypt (no kTLS here): a read of the file, one record's
            // worth, and a write.
            let mut buf = [0u8; TLS_FILE_CHUNK];
            let want = count.min(buf.len());
            let n = nix::sys::uio::pread(file, &mut buf[..want], *offset)?;
            if n == 0 {
                return Ok(0);
            }
            let sent = s.send_vectored(&[IoSlice::new(&buf[..n])])?;
            *offset += sent as i64;
            return Ok(sent);
        }
        nix::sys::sendfile::sendfile64(self.as_fd(), file, Some(offset), count.min(1 << 30))
            .map_err(io::Error::from)
    }
}

/// How much of a file one [`Stream::sendfile`] reads over TLS (one full record).
const TLS_FILE_CHUNK: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// What wraps accepted sockets in TLS: the rustls server configuration (built from the
/// settings by [`crate::tls`]) and `suppress_ragged_eofs`.
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    suppress_ragged_eofs: bool,
    /// `proxy_protocol` and `proxy_allow_ips`: a PROXY header comes before the handshake.
    proxy: Option<ProxyPolicy>,
    /// The server asks for client certificates (`cert_reqs` 1 or 2).
    client_auth: bool,
}

impl TlsAcceptor {
    /// An acceptor for `config`. With `suppress_ragged_eofs`, a peer that closes the
    /// connection without `close_notify` has ended its stream (gunicorn's default);
    /// without it, the read fails with `UnexpectedEof`.
    pub fn new(config: Arc<ServerConfig>, suppress_ragged_eofs: bool) -> TlsAcceptor {
        TlsAcceptor { config, suppress_ragged_eofs, proxy: None, client_auth: false }
    }

    /// With `cert_reqs` 1 or 2: the connections' requests carry the client certificate's
    /// variables ([`Stream::client_vars`]).
    pub fn with_client_auth(mut self, on: bool) -> TlsAcceptor {
        self.client_auth = on;
        self
    }

    /// With a PROXY protocol policy that is not off: a peer allowed to send the header
    /// sends it in the clear before the handshake (as haproxy's `send-proxy` does in
    /// front of a TLS listener).
    pub fn with_proxy(mut self, policy: ProxyPolicy) -> TlsAcceptor {
        self.proxy = (policy.mode != ProxyMode::Off).then_some(policy);
        self
    }

    /// The server side of a TLS connection over the accepted `sock` (TCP or unix) from
    /// `peer`. No byte moves yet: the handshake is driven by the connection's first
    /// reads.
    pub fn wrap(&self, sock: Stream, peer: &Peer) -> io::Result<Stream> {
        let conn = ServerConnection::new(Arc::clone(&self.config)).map_err(io::Error::other)?;
        let prelude = self.proxy.as_ref().filter(|p| p.allow.allows(peer)).map(|p| Prelude {
            mode: p.mode,
            buf: Vec::new(),
            given: 0,
            judged: None,
        });
        Ok(Stream::Tls(Box::new(Tls {
            sock,
            conn: Mutex::new(conn),
            prelude: Mutex::new(prelude),
            suppress_ragged_eofs: self.suppress_ragged_eofs,
            client_auth: self.client_auth,
            client: OnceLock::new(),
        })))
    }
}

/// The PROXY header before a handshake: read from the socket in the clear and handed
/// over as the connection's first bytes (the core parses and judges it as on a plain
/// connection); what follows it in the same reads is the handshake's.
#[derive(Debug)]
struct Prelude {
    mode: ProxyMode,
    buf: Vec<u8>,
    /// How much of `buf` was handed over.
    given: usize,
    /// How much of `buf` is to be handed over, once known: the header, or everything
    /// read when it is not a header (the core then refuses it).
    judged: Option<usize>,
}

/// A TLS connection: rustls over a plain [`Stream`]. Calls take `&self` as the plain
/// socket's do (the engine reads and writes through shared references); the rustls
/// state is behind a mutex that only the connection's owner ever takes.
#[derive(Debug)]
pub struct Tls {
    sock: Stream,
    conn: Mutex<ServerConnection>,
    /// The PROXY header still to read or hand over (`None` once done, or without one).
    prelude: Mutex<Option<Prelude>>,
    suppress_ragged_eofs: bool,
    client_auth: bool,
    /// The client certificate's variables, once made.
    client: OnceLock<Arc<crate::tls_peer::ClientVars>>,
}

/// The plain socket under a TLS connection, as rustls reads and writes it.
struct Sock<'a>(&'a Stream);

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Tls {
    fn lock(&self) -> MutexGuard<'_, ServerConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the records rustls holds, as far as the socket takes them.
    fn flush_records(&self, conn: &mut ServerConnection) -> io::Result<()> {
        while conn.wants_write() {
            match conn.write_tls(&mut Sock(&self.sock)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Plaintext into `buf`: what rustls decrypted already, else records read from the
    /// socket (the handshake's among them, answered as they come) until some plaintext,
    /// the end, or the socket has nothing more (`WouldBlock`, or its timeout).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.recv_prelude(buf)? {
            return Ok(n);
        }
        let mut conn = self.lock();
        loop {
            match conn.reader().read(buf) {
                // Plaintext, or the end after `close_notify`.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The socket ended without `close_notify`.
                    if self.suppress_ragged_eofs {
                        return Ok(0);
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "EOF occurred in violation of protocol (the peer closed the TLS connection without close_notify)",
                    ));
                }
                Err(e) => return Err(e),
            }
            // What we owe the peer goes first (a handshake flight): it may be what the
            // peer waits for before it sends more.
            self.flush_records(&mut conn)?;
            if conn.read_tls(&mut Sock(&self.sock))? > 0 {
                if let Err(e) = conn.process_new_packets() {
                    // rustls queued an alert saying why: it goes out if it can.
                    let _ = self.flush_records(&mut conn);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Read 0: rustls noted the end; the reader says whether it was clean.
        }
    }

    /// The PROXY header's bytes while there are (`None` after them, or without one).
    fn recv_prelude(&self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let mut guard = self.prelude.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = guard.as_mut() else { return Ok(None) };
        loop {
            if let Some(end) = p.judged {
                let n = out.len().min(end - p.given);
                out[..n].copy_from_slice(&p.buf[p.given..p.given + n]);
                p.given += n;
                if p.given == end {
                    *guard = None;
                }
                return Ok(Some(n));
            }
            match proxy::parse(&p.buf, p.mode) {
                Ok(Parsed::Complete { consumed, .. }) => {
                    let rest = p.buf.split_off(consumed);
                    p.judged = Some(consumed);
                    if !rest.is_empty() {
                        self.take_records(&rest)?;
                    }
                }
                Ok(Parsed::Partial) => {
                    // A header is at most 16 + 65535 bytes (v2); read a little at a time.
                    let mut chunk = [0u8; 536];
                    match self.sock.recv(&mut chunk)? {
                        // The end: the core gets what came, and then the end.
                        0 => p.judged = Some(p.buf.len()),
                        n => p.buf.extend_from_slice(&chunk[..n]),
                    }
                }
                Err(_) => p.judged = Some(p.buf.len()),
            }
        }
    }

    /// Records read with the PROXY header: given to rustls, and its answer (the
    /// handshake's next flight) sent as far as the socket takes it.
    fn take_records(&self, mut records: &[u8]) -> io::Result<()> {
        let mut conn = self.lock();
        while !records.is_empty() {
            conn.read_tls(&mut records)?;
            if let Err(e) = conn.process_new_packets() {
                let _ = self.flush_records(&mut conn);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        match self.flush_records(&mut conn) {
            Err(e) if !retryable(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Encrypts what rustls takes of `bufs` once the records before them went out
    /// (`WouldBlock` while they have not), and writes as much as the socket takes.
    fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut conn = self.lock();
        self.flush_records(&mut conn)?;
        let n = conn.writer().write_vectored(bufs)?;
        match self.flush_records(&mut conn) {
            Ok(()) => Ok(n),
            // The rest goes with the next call (or `flush_pending`).
            Err(e) if retryable(&e) && n > 0 => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn peek(&self) -> io::Result<Peeked> {
        if let Some(p) = self.prelude.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if p.judged.is_some_and(|end| end > p.given) {
                return Ok(Peeked::Data);
            }
        }
        {
            let mut conn = self.lock();
            let state = conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 {
                return Ok(Peeked::Data);
            }
            if state.peer_has_closed() {
                return Ok(Peeked::Eof);
            }
        }
        self.sock.peek()
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            let mut conn = self.lock();
            conn.send_close_notify();
            let _ = self.flush_records(&mut conn);
        }
        self.sock.shutdown(how)
    }
}

impl Drop for Tls {
    /// A TLS connection ends with `close_notify` (clients that read to the end of the
    /// connection tell a truncation from the end by it); sent only if the socket takes
    /// it at once.
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        conn.send_close_notify();
        if socket2::SockRef::from(&self.sock).set_nonblocking(true).is_ok() {
            while conn.wants_write() {
                match conn.write_tls(&mut Sock(&self.sock)) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
    }
}

/// A socket error that only means "not now" (a timeout, a signal, no data yet).
pub fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Why a blocking socket call gave up: INT or QUIT arrived (quick stop).
#[derive(Debug)]
pub struct Stopping;

impl std::fmt::Display for Stopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the worker is stopping (INT or QUIT)")
    }
}

impl std::error::Error for Stopping {}

/// The quick stop's error. Not `Interrupted`: nothing may take it for a call to retry.
pub fn stopping() -> io::Error {
    io::Error::other(Stopping)
}

/// Whether an I/O error is the quick stop's.
pub fn is_stopping(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<Stopping>())
}

// ---------------------------------------------------------------------------------------
// Blocking
// ---------------------------------------------------------------------------------------

/// How a blocking call waits: the worker's heartbeat (beaten after every wait, bytes or
/// not), the longest a write may make no progress, and the quick stop's flag.
#[derive(Clone, Copy, Debug)]
pub struct Waits<'a> {
    /// The worker's heartbeat slot.
    pub beat: &'a Slot,
    /// A write that makes no progress for this long fails with `TimedOut`.
    pub limit: Duration,
    /// Once set, every call fails with [`Stopping`].
    pub stop: &'a AtomicBool,
}

/// The bookkeeping of one blocking call: the quick stop, a beat after every wait, and
/// the limit on a call that makes no progress.
struct Progress<'a> {
    w: Waits<'a>,
    last: Instant,
}

impl<'a> Progress<'a> {
    fn new(w: Waits<'a>) -> Progress<'a> {
        Progress { w, last: Instant::now() }
    }

    /// Fails once the quick stop was asked for.
    fn go_on(&self) -> io::Result<()> {
        if self.w.stop.load(Ordering::Relaxed) { Err(stopping()) } else { Ok(()) }
    }

    /// Bytes went: the limit starts again.
    fn made(&mut self) {
        self.last = Instant::now();
        self.w.beat.notify();
    }

    /// A call failed: `Ok` to try again (it only meant "not now", within the limit).
    fn failed(&self, e: io::Error) -> io::Result<()> {
        self.w.beat.notify();
        if !retryable(&e) {
            return Err(e);
        }
        if self.last.elapsed() >= self.w.limit {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(())
    }

    /// Writes the TLS records still waiting for the socket (nothing for a plain socket).
    fn finish(self, stream: &Stream) -> io::Result<()> {
        while stream.pending_output() {
            self.go_on()?;
            match stream.flush_pending() {
                Ok(()) => self.w.beat.notify(),
                Err(e) => self.failed(e)?,
            }
        }
        Ok(())
    }
}

/// Writes every slice (the socket has a send timeout of a beat interval).
pub fn write_all(
    stream: &mut Stream,
    mut bufs: &mut [IoSlice<'_>],
    w: Waits<'_>,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    let mut p = Progress::new(w);
    while !bufs.is_empty() {
        p.go_on()?;
        match stream.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut bufs, n);
                p.made();
            }
            Err(e) => p.failed(e)?,
        }
    }
    p.finish(stream)
}

/// Sends `count` bytes of `file` from `offset`; a file shorter than that is an
/// `UnexpectedEof` (the body cannot be completed).
pub fn sendfile_all(
    stream: &Stream,
    file: BorrowedFd<'_>,
    mut offset: i64,
    count: usize,
    w: Waits<'_>,
) -> io::Result<()> {
    let mut left = count;
    let mut p = Progress::new(w);
    while left > 0 {
        p.go_on()?;
        match stream.sendfile(file, &mut offset, left) {
            Ok(0) => break,
            Ok(n) => {
                left -= n;
                p.made();
            }
            Err(e) => p.failed(e)?,
        }
    }
    if left > 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the count"));
    }
    p.finish(stream)
}

/// How long a closing connection may still send us bytes we discard (gunicorn's
/// `close_graceful`: 2 s, 64 KiB).
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// See [`DRAIN_TIME`].
pub const DRAIN_BYTES: usize = 64 * 1024;

/// Closes a connection: at once when the request was read whole and nothing more is
/// waiting (the kernel then sends FIN, never RST), else as gunicorn's `close_graceful`:
/// shut down sending, discard what the client still sends (at most [`DRAIN_BYTES`], for
/// at most [`DRAIN_TIME`]), then close, so the client reads our answer rather than a
/// reset. Each read waits at most `wait` (a beat interval) and the worker beats after it.
pub fn close_graceful(mut stream: Stream, fully_read: bool, beat: &Slot, wait: Duration) {
    if fully_read && matches!(stream.peek(), Ok(Peeked::Nothing)) {
        return;
    }
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let end = Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < DRAIN_BYTES && Instant::now() < end {
        // A read waits at most until the end of the drain.
        let left = end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let _ = stream.set_read_timeout(Some(left.min(wait)));
        let r = stream.read(&mut buf);
        // A beat after every wait, bytes or not (a client trickling its unread body
        // through the drain must not starve the heartbeat with a small `timeout`).
        beat.notify();
        match r {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if retryable(&e) => {}
            Err(_) => break,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------

/// Waits until the non-blocking `fd` is ready for `what`, at most `timeout`.
pub fn wait_ready(fd: BorrowedFd<'_>, what: PollFlags, timeout: Duration) -> io::Result<()> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"));
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, what)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes all of `bufs` (in order) to the non-blocking `stream`, waiting at most
/// `timeout` each time the socket is full.
pub fn write_all_ready(stream: &Stream, bufs: &[&[u8]], timeout: Duration) -> io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    while idx < bufs.len() {
        if off == bufs[idx].len() {
            idx += 1;
            off = 0;
            continue;
        }
        let mut slices: [IoSlice<'_>; 4] =
            [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
        let mut n = 0;
        for (i, b) in bufs[idx..].iter().enumerate().take(4) {
            slices[n] = IoSlice::new(if i == 0 { &b[off..] } else { b });
            n += 1;
        }
        match stream.send_vectored(&slices[..n]) {
            Ok(mut w) => {
                while w > 0 && idx < bufs.len() {
                    let left = bufs[idx].len() - off;
                    if w >= left {
                        w -= left;
                        idx += 1;
                        off = 0;
                    } else {
                        off += w;
                        w = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(stream.as_fd(), PollFlags::POLLOUT, timeout)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    finish_ready(stream, timeout)
}

/// Writes the TLS records still waiting for the non-blocking `stream` (nothing for a
/// plain socket), waiting at most `timeout` each time the socket is full.
fn finish_ready(stream: &Stream, timeout: Duration) -> io::Result<()> {
    loop {
        match stream.flush_pending() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(stream.as_fd(), PollFlags::POLLOUT, timeout)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends `count` bytes of `file` from `offset` on the non-blocking `stream`, waiting at
/// most `timeout` each time the socket is full; a file shorter than that is an
/// `UnexpectedEof`.
pub fn sendfile_ready(
    stream: &Stream,
    file: BorrowedFd<'_>,
    mut offset: i64,
    count: usize,
    timeout: Duration,
) -> io::Result<()> {
    let mut left = count;
    while left > 0 {
        match stream.sendfile(file, &mut offset, left) {
            Ok(0) => break,
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(stream.as_fd(), PollFlags::POLLOUT, timeout)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if left > 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the count"));
    }
    finish_ready(stream, timeout)
}
