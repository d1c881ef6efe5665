//! The WSGI environ as plain Rust data: the CGI variables of one request, built by
//! [`build`] from the parsed [`RequestHead`], what the shell knows about the connection
//! ([`ConnInfo`]) and a little configuration ([`EnvironConfig`]).
//!
//! The `wsgi.*` objects (`wsgi.input`, `wsgi.errors`, ...) and `gunicorn.socket` are Python
//! objects and are left to the shell; `wsgi.url_scheme` is here because it is a string
//! decided by trust rules ([`crate::forwarded`]).
//!
//! **Shape, for the shell.** An [`Environ`] is one byte buffer plus a list of entries, built
//! with four allocations whatever the number of headers (those two, and two scratch lists
//! that group repeated headers). Each entry is a [`Name`] and a value:
//!
//! - a [`Name::Key`] is one of the well-known variables ([`Key`]): the shell keeps one
//!   interned Python string per variant, indexed by [`Key::index`];
//! - a [`Name::Http`] is the whole `HTTP_*` name, built once per distinct header, which the
//!   shell can intern through a small cache of common header names;
//! - values are bytes to be decoded as latin-1 (PEP 3333's "bytes as latin-1 `str`"),
//!   so the shell can also cache the few values that repeat (methods, protocols, schemes).
//!
//! Iteration order is fixed and mirrors the insertion order of gunicorn's environ dict:
//! `SERVER_SOFTWARE`, `REQUEST_METHOD`, `QUERY_STRING`, `RAW_URI`, `SERVER_PROTOCOL`, the
//! headers (`CONTENT_TYPE`, `CONTENT_LENGTH` and `HTTP_*` in order of first appearance),
//! `wsgi.url_scheme`, `REMOTE_ADDR`, `REMOTE_PORT`, `SERVER_NAME`, `SERVER_PORT`,
//! `PATH_INFO`, `SCRIPT_NAME`, then `PROXY_PROTOCOL`, `PROXY_ADDR`, `PROXY_PORT`.
//!
//! `SERVER_SOFTWARE` is the same for every request: a shell that keeps it in its template
//! dict can skip that entry. `expect_continue` and `keep_alive` are not copied here: the
//! shell has the [`RequestHead`] they live on.
//!
//! # The variables (gunicorn's `wsgi.create`)
//!
//! | Variable | Value |
//! |---|---|
//! | `SERVER_SOFTWARE` | [`EnvironConfig::server_software`] |
//! | `REQUEST_METHOD` | the method as parsed |
//! | `QUERY_STRING` | the raw query after the first `?`, empty if none |
//! | `RAW_URI` | the request-target verbatim |
//! | `SERVER_PROTOCOL` | `HTTP/<major>.<minor>` of the request |
//! | `CONTENT_TYPE`, `CONTENT_LENGTH` | raw header values, only if present, never also as `HTTP_*` |
//! | `HTTP_<NAME>` | every kept header: upper-cased, `-` → `_`; repeats joined with `,` |
//! | `wsgi.url_scheme` | [`forwarded::url_scheme`] |
//! | `REMOTE_ADDR`, `REMOTE_PORT` | TCP peer; unix peer: `""` and no port; PROXY source if any |
//! | `SERVER_NAME`, `SERVER_PORT` | TCP: the listening socket; unix: from `Host` (see below) |
//! | `PATH_INFO` | the path minus `SCRIPT_NAME`, percent-decoded to bytes |
//! | `SCRIPT_NAME` | [`forwarded::script_name`] |
//! | `PROXY_PROTOCOL`, `PROXY_ADDR`, `PROXY_PORT` | only on a connection that sent a PROXY header |
//!
//! Over TLS with `cert_reqs` 1 or 2, the shell adds the client certificate's
//! `SSL_CLIENT_VERIFY`, `SSL_CLIENT_S_DN`, `SSL_CLIENT_I_DN`, `SSL_CLIENT_M_SERIAL` and
//! `SSL_CLIENT_CERT` (Apache mod_ssl's names) to the environ dict after these: see the
//! shell's `tls_peer` module.
//!
//! `SERVER_NAME`/`SERVER_PORT` on a unix socket come from `Host` (`host[:port]`, the port
//! defaulting to 80 or 443 by `wsgi.url_scheme`); with no (or an empty) `Host` they are the
//! socket path and `""`. For an absolute-form target gunicorn still reads the `Host`
//! header, not the target's authority, and so does this module.
//!
//! The path is split from the target as `urllib.parse.urlsplit` does where it matters:
//! origin-form up to `?`; absolute-form after the authority (`http://h` gives `""`);
//! `OPTIONS *` gives `*`, as gunicorn does. `PATH_INFO` is the path after the `SCRIPT_NAME`
//! prefix, which is compared with the *raw* path and as plain bytes (so `SCRIPT_NAME=/app`
//! turns `/application` into `lication`, as in gunicorn), then decoded like
//! `urllib.parse.unquote_to_bytes`: `%HH` becomes one byte (`%2F` too), anything else,
//! `+` included, stays as it is.
//!
//! # Deliberate differences from gunicorn
//!
//! - `CONNECT host:443`: `PATH_INFO` is `""`, where gunicorn's `urlsplit` gives `"443"`.
//!   Neither `CONNECT` nor `OPTIONS *` is checked against `SCRIPT_NAME` (gunicorn answers
//!   500 to both when `SCRIPT_NAME` is set): they do not name a resource under it.
//!   `SCRIPT_NAME` is still reported.
//! - A PROXY header that carries no client address (v2 LOCAL, v1 `UNKNOWN`, `AF_UNSPEC`)
//!   leaves `REMOTE_ADDR`/`REMOTE_PORT` at the real peer, and has no `PROXY_ADDR` or
//!   `PROXY_PORT`; gunicorn sets `REMOTE_ADDR = None` and `REMOTE_PORT = 'None'`.
//! - PROXY v2 `AF_UNIX` (refused by gunicorn) is treated the same way: its paths are not
//!   network addresses (RFC 3875 §4.1.8: `REMOTE_ADDR` is the client's network address, and
//!   middlewares parse it as an IP), so `REMOTE_ADDR`/`REMOTE_PORT` stay the real peer's and
//!   there is no `PROXY_ADDR`; `PROXY_PROTOCOL` is `UNIX`.
//! - The PROXY addresses apply to every request of the connection (gunicorn's gthread
//!   worker loses them after the first request).
//! - Unix socket with `Host: [::1]:8080`: `SERVER_NAME` is `[::1]` (RFC 3875 keeps the
//!   brackets) and `SERVER_PORT` `8080`; gunicorn splits on every `:` and gives `[` and
//!   `""`. An empty port (`Host: example.com:`) gets the default port, not `""`. A socket
//!   path holding `:` is not split into a name and a port, as gunicorn's `str.split` does.
//! - Unix socket paths are bytes reported as latin-1; gunicorn reports the `str` Python
//!   decoded with the file-system encoding (the same for ASCII paths).
//! - An IPv6 address with a zone (`fe80::1%eth0`) is reported without the zone.
//! - A `SCRIPT_NAME` header changes `SCRIPT_NAME` only from a trusted peer that may send it
//!   (see [`crate::forwarded`]).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use crate::config::HeaderPolicy;
use crate::error::Detail;
use crate::forwarded;
use crate::h1::{RequestHead, Scheme, Span, TargetForm};
use crate::net::Peer;
use crate::proxy::{ProxyCommand, ProxyInfo};

/// The local end of a connection: the socket it was accepted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// A TCP listener, as `getsockname(2)` reports it.
    Tcp(SocketAddr),
    /// A unix-socket listener: its path as bytes (empty for an unnamed socket).
    Unix(Vec<u8>),
}

/// What the shell knows about the connection a request came on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The peer, from `accept(2)`.
    pub peer: Peer,
    /// The listening socket.
    pub local: Local,
    /// Whether the listener speaks TLS (`certfile`/`keyfile` set).
    pub tls: bool,
}

/// The configuration the environ depends on, built once by the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvironConfig {
    /// The `SCRIPT_NAME` environment variable of the server process (empty when unset):
    /// the prefix every request path must start with.
    pub script_name: Vec<u8>,
    /// `SERVER_SOFTWARE`, e.g. `ferrocorn/0.1.0`.
    pub server_software: String,
    /// The same policy as [`crate::config::ProtoConfig::headers`]: its `forwarder_headers`
    /// decide whether a `SCRIPT_NAME` header may replace [`EnvironConfig::script_name`].
    pub headers: HeaderPolicy,
}

impl Default for EnvironConfig {
    fn default() -> Self {
        EnvironConfig {
            script_name: Vec::new(),
            server_software: String::from(concat!("ferrocorn/", env!("CARGO_PKG_VERSION"))),
            headers: HeaderPolicy::default(),
        }
    }
}

/// A well-known environ variable (every name but the `HTTP_*` ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `SERVER_SOFTWARE`
    ServerSoftware,
    /// `REQUEST_METHOD`
    RequestMethod,
    /// `QUERY_STRING`
    QueryString,
    /// `RAW_URI`
    RawUri,
    /// `SERVER_PROTOCOL`
    ServerProtocol,
    /// `CONTENT_TYPE`
    ContentType,
    /// `CONTENT_LENGTH`
    ContentLength,
    /// `wsgi.url_scheme`
    UrlScheme,
    /// `REMOTE_ADDR`
    RemoteAddr,
    /// `REMOTE_PORT`
    RemotePort,
    /// `SERVER_NAME`
    ServerName,
    /// `SERVER_PORT`
    ServerPort,
    /// `PATH_INFO`
    PathInfo,
    /// `SCRIPT_NAME`
    ScriptName,
    /// `PROXY_PROTOCOL`
    ProxyProtocol,
    /// `PROXY_ADDR`
    ProxyAddr,
    /// `PROXY_PORT`
    ProxyPort,
}

impl Key {
    /// How many variants there are.
    pub const COUNT: usize = 17;

    /// Every variant, in [`Key::index`] order.
    pub const ALL: [Key; Key::COUNT] = [
        Key::ServerSoftware,
        Key::RequestMethod,
        Key::QueryString,
        Key::RawUri,
        Key::ServerProtocol,
        Key::ContentType,
        Key::ContentLength,
        Key::UrlScheme,
        Key::RemoteAddr,
        Key::RemotePort,
        Key::ServerName,
        Key::ServerPort,
        Key::PathInfo,
        Key::ScriptName,
        Key::ProxyProtocol,
        Key::ProxyAddr,
        Key::ProxyPort,
    ];

    /// A dense index in `0..Key::COUNT`, for a table of interned key objects.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The environ name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Key::ServerSoftware => "SERVER_SOFTWARE",
            Key::RequestMethod => "REQUEST_METHOD",
            Key::QueryString => "QUERY_STRING",
            Key::RawUri => "RAW_URI",
            Key::ServerProtocol => "SERVER_PROTOCOL",
            Key::ContentType => "CONTENT_TYPE",
            Key::ContentLength => "CONTENT_LENGTH",
            Key::UrlScheme => "wsgi.url_scheme",
            Key::RemoteAddr => "REMOTE_ADDR",
            Key::RemotePort => "REMOTE_PORT",
            Key::ServerName => "SERVER_NAME",
            Key::ServerPort => "SERVER_PORT",
            Key::PathInfo => "PATH_INFO",
            Key::ScriptName => "SCRIPT_NAME",
            Key::ProxyProtocol => "PROXY_PROTOCOL",
            Key::ProxyAddr => "PROXY_ADDR",
            Key::ProxyPort => "PROXY_PORT",
        }
    }

    /// The key called `name` (exact, case-sensitive), if it is a well-known one.
    pub fn from_name(name: &[u8]) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str().as_bytes() == name)
    }
}

/// The name of an environ entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Name<'a> {
    /// A well-known variable.
    Key(Key),
    /// A header variable: the whole name, `HTTP_` included (`HTTP_USER_AGENT`).
    Http(&'a [u8]),
}

impl<'a> Name<'a> {
    /// The name as bytes (ASCII).
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Name::Key(k) => k.as_str().as_bytes(),
            Name::Http(name) => name,
        }
    }
}

/// Why no environ could be built for a request. The shell answers [`EnvironError::status`]
/// and goes on with the connection as after any error response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvironError {
    /// The request path does not start with `SCRIPT_NAME` (gunicorn's
    /// `ConfigurationProblem`, answered with 500).
    ScriptNameMismatch {
        /// The raw path (capped).
        path: Detail,
        /// The `SCRIPT_NAME` in force (capped).
        script_name: Detail,
    },
}

impl EnvironError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            EnvironError::ScriptNameMismatch { .. } => 500,
        }
    }

    /// The standard reason phrase of [`EnvironError::status`] (gunicorn sends
    /// `500 Bad Request`, keeping the reason of its 400 path).
    pub fn reason(&self) -> &'static str {
        match self.status() {
            500 => "Internal Server Error",
            _ => "Bad Request",
        }
    }

    /// The name of the gunicorn exception for the same error.
    pub fn gunicorn_class(&self) -> &'static str {
        match self {
            EnvironError::ScriptNameMismatch { .. } => "ConfigurationProblem",
        }
    }
}

/// `str(exc)` of the matching gunicorn exception, which is also the text of its error page.
impl fmt::Display for EnvironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironError::ScriptNameMismatch { path, script_name } => write!(
                f,
                "Configuration problem: Request path {path:?} does not start with SCRIPT_NAME {script_name:?}"
            ),
        }
    }
}

impl core::error::Error for EnvironError {}

/// The CGI variables of one request. See the [module documentation](self).
#[derive(Clone, PartialEq, Eq)]
pub struct Environ {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// For each [`Key`], the index of its entry, or [`ABSENT`].
    keys: [u32; Key::COUNT],
    scheme: Scheme,
}

const ABSENT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Key(Key),
    Http(Span),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    name: Slot,
    value: Span,
}

impl Environ {
    /// The value of a well-known variable, if it is set.
    pub fn get(&self, key: Key) -> Option<&[u8]> {
        match self.keys[key.index()] {
            ABSENT => None,
            i => Some(self.entries[i as usize].value.get(&self.buf)),
        }
    }

    /// The value of any variable by its whole name (`b"PATH_INFO"`, `b"HTTP_HOST"`).
    pub fn get_name(&self, name: &[u8]) -> Option<&[u8]> {
        match Key::from_name(name) {
            Some(key) => self.get(key),
            None => self.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, v)| v),
        }
    }

    /// Whether a variable is set.
    pub fn contains(&self, key: Key) -> bool {
        self.keys[key.index()] != ABSENT
    }

    /// `wsgi.url_scheme` as a value the shell can map to a cached string.
    pub fn url_scheme(&self) -> Scheme {
        self.scheme
    }

    /// The entries in their fixed order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.buf, entries: self.entries.iter() }
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no variable is set (never true for a built environ).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
        f.debug_map().entries(self.iter().map(|(n, v)| (latin1(n.as_bytes()), latin1(v)))).finish()
    }
}

impl<'a> IntoIterator for &'a Environ {
    type Item = (Name<'a>, &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the `(name, value)` entries of an [`Environ`], in its fixed order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    buf: &'a [u8],
    entries: core::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Name<'a>, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next().map(|e| {
            let name = match e.name {
                Slot::Key(k) => Name::Key(k),
                Slot::Http(span) => Name::Http(span.get(self.buf)),
            };
            (name, e.value.get(self.buf))
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Appends entries to one buffer.
struct Builder {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    keys: [u32; Key::COUNT],
}

impl Builder {
    fn span_from(&self, start: usize) -> Span {
        Span::new(start..self.buf.len())
    }

    /// Adds `key` with the value `fill` appends to the buffer.
    fn push_with(&mut self, key: Key, fill: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        fill(&mut self.buf);
        let value = self.span_from(start);
        self.keys[key.index()] = self.entries.len() as u32;
        self.entries.push(Entry { name: Slot::Key(key), value });
    }

    fn push(&mut self, key: Key, value: &[u8]) {
        self.push_with(key, |buf| buf.extend_from_slice(value));
    }
}

/// Lets `write!` format addresses and numbers straight into the buffer.
struct Sink<'a>(&'a mut Vec<u8>);

impl fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn push_display(buf: &mut Vec<u8>, value: impl fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(Sink(buf), "{value}");
}

/// Builds the environ of a request.
///
/// Fails only when the path does not start with the `SCRIPT_NAME` in force
/// ([`EnvironError::ScriptNameMismatch`]).
///
/// ```
/// use std::sync::Arc;
/// use ferrocorn_core::environ::{self, ConnInfo, EnvironConfig, Key, Local};
/// use ferrocorn_core::{Connection, Event, Peer, ProtoConfig};
///
/// let peer = Peer::Tcp("127.0.0.1:40000".parse().unwrap());
/// let mut conn = Connection::new(Arc::new(ProtoConfig::default()), peer);
/// conn.receive(b"GET /app/users?id=7 HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: https\r\n\r\n");
/// let Event::Request(head) = conn.next_event()? else { unreachable!() };
/// let mut cfg = EnvironConfig::default();
/// cfg.script_name = b"/app".to_vec();
/// let info = ConnInfo { peer, local: Local::Tcp("0.0.0.0:8000".parse().unwrap()), tls: false };
/// let env = environ::build(head, &info, &cfg)?;
/// assert_eq!(env.get(Key::ScriptName), Some(&b"/app"[..]));
/// assert_eq!(env.get(Key::PathInfo), Some(&b"/users"[..]));
/// // The peer is in forwarded_allow_ips (localhost by default): its scheme header counts.
/// assert_eq!(env.get(Key::UrlScheme), Some(&b"https"[..]));
/// assert_eq!(env.get_name(b"HTTP_HOST"), Some(&b"example.com"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build(
    head: &RequestHead,
    conn: &ConnInfo,
    cfg: &EnvironConfig,
) -> Result<Environ, EnvironError> {
    let scheme = forwarded::url_scheme(head, conn.tls);
    let script_name = forwarded::script_name(head, &cfg.script_name, &cfg.headers);
    let path_info = path_info(head, script_name)?;

    let mut b = Builder {
        // The head holds every name and value once; the target shows up three times, and
        // each field gains at most 3 bytes (`HTTP_` and `,` against `: ` and CRLF).
        buf: Vec::with_capacity(
            head.raw.len()
                + 2 * head.target().len()
                + 3 * head.header_count()
                + cfg.server_software.len()
                + script_name.len()
                + 160,
        ),
        entries: Vec::with_capacity(head.header_count() + Key::COUNT),
        keys: [ABSENT; Key::COUNT],
    };
    b.push(Key::ServerSoftware, cfg.server_software.as_bytes());
    b.push(Key::RequestMethod, head.method());
    b.push(Key::QueryString, head.query());
    b.push(Key::RawUri, head.target());
    b.push(Key::ServerProtocol, &head.version.as_bytes());
    push_headers(&mut b, head);
    b.push(Key::UrlScheme, scheme.as_str().as_bytes());

    let proxy = head.proxy.as_deref();
    match remote(proxy, &conn.peer) {
        Endpoint::Ip(addr) => {
            b.push_with(Key::RemoteAddr, |buf| push_display(buf, addr.ip()));
            b.push_with(Key::RemotePort, |buf| push_display(buf, addr.port()));
        }
        Endpoint::Path(path) => b.push(Key::RemoteAddr, path),
    }

    match &conn.local {
        Local::Tcp(addr) => {
            b.push_with(Key::ServerName, |buf| push_display(buf, addr.ip()));
            b.push_with(Key::ServerPort, |buf| push_display(buf, addr.port()));
        }
        Local::Unix(path) => match head.header(b"host").filter(|h| !h.is_empty()) {
            Some(host) => {
                let (name, port) = split_host(host);
                b.push(Key::ServerName, name);
                match port {
                    Some(port) => b.push(Key::ServerPort, port),
                    None => b.push(Key::ServerPort, default_port(scheme)),
                }
            }
            None => {
                b.push(Key::ServerName, path);
                b.push(Key::ServerPort, b"");
            }
        },
    }

    b.push_with(Key::PathInfo, |buf| unquote_into(path_info, buf));
    b.push(Key::ScriptName, script_name);

    if let Some(info) = proxy {
        b.push(Key::ProxyProtocol, info.proxy_protocol_label().as_bytes());
        if let Some(addr) = proxy_destination(info) {
            b.push_with(Key::ProxyAddr, |buf| push_display(buf, addr.ip()));
            b.push_with(Key::ProxyPort, |buf| push_display(buf, addr.port()));
        }
    }

    Ok(Environ { buf: b.buf, entries: b.entries, keys: b.keys, scheme })
}

/// The part of the request path that becomes `PATH_INFO` (still percent-encoded).
fn path_info<'a>(head: &'a RequestHead, script_name: &[u8]) -> Result<&'a [u8], EnvironError> {
    match head.target_form {
        TargetForm::Asterisk => Ok(b"*"),
        TargetForm::Authority => Ok(b""),
        TargetForm::Origin | TargetForm::Absolute => {
            let path = head.path();
            path.strip_prefix(script_name).ok_or_else(|| EnvironError::ScriptNameMismatch {
                path: Detail::new(path),
                script_name: Detail::new(script_name),
            })
        }
    }
}

/// An address a variable pair is made of.
enum Endpoint<'a> {
    /// An IP address and a port.
    Ip(SocketAddr),
    /// A unix-socket path, without a port.
    Path(&'a [u8]),
}

/// Whether a PROXY header replaces the real endpoints: only a PROXY command with IP
/// addresses (`AF_INET`, `AF_INET6`). LOCAL, `UNKNOWN`, `AF_UNSPEC` and `AF_UNIX` (whose
/// paths are no network address) leave the connection's own endpoints.
fn relayed(info: Option<&ProxyInfo>) -> Option<&ProxyInfo> {
    info.filter(|i| i.command == ProxyCommand::Proxy && i.source.is_some())
}

/// `REMOTE_ADDR`/`REMOTE_PORT`: the PROXY source if there is one, else the real peer.
fn remote<'a>(proxy: Option<&'a ProxyInfo>, peer: &Peer) -> Endpoint<'a> {
    if let Some(src) = relayed(proxy).and_then(|info| info.source) {
        return Endpoint::Ip(src);
    }
    match peer {
        Peer::Tcp(addr) => Endpoint::Ip(*addr),
        Peer::Unix => Endpoint::Path(b""),
    }
}

/// `PROXY_ADDR`/`PROXY_PORT`: the address the client connected to on the proxy.
fn proxy_destination(info: &ProxyInfo) -> Option<SocketAddr> {
    relayed(Some(info))?.destination
}

/// Splits a `Host` value into `SERVER_NAME` and the port, if one is given. An IP literal
/// keeps its brackets; an empty port counts as none.
fn split_host(host: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if host.first() == Some(&b'[') {
        match host.iter().position(|&b| b == b']') {
            Some(close) if host.get(close + 1) == Some(&b':') => Some(close + 1),
            _ => None,
        }
    } else {
        host.iter().rposition(|&b| b == b':')
    };
    match colon {
        Some(i) if i + 1 < host.len() => (&host[..i], Some(&host[i + 1..])),
        Some(i) => (&host[..i], None),
        None => (host, None),
    }
}

fn default_port(scheme: Scheme) -> &'static [u8] {
    match scheme {
        Scheme::Http => b"80",
        Scheme::Https => b"443",
    }
}

/// Whether a field goes to `CONTENT_TYPE`/`CONTENT_LENGTH` rather than `HTTP_*`.
fn special_key(name: &[u8]) -> Option<Key> {
    if name.eq_ignore_ascii_case(b"content-type") {
        Some(Key::ContentType)
    } else if name.eq_ignore_ascii_case(b"content-length") {
        Some(Key::ContentLength)
    } else {
        None
    }
}

/// A byte of a header name as it appears after `HTTP_`.
fn env_byte(b: u8) -> u8 {
    if b == b'-' { b'_' } else { b.to_ascii_uppercase() }
}

/// Orders header names by the `HTTP_*` key they map to.
fn cmp_env_name(a: &[u8], b: &[u8]) -> Ordering {
    a.iter().map(|&c| env_byte(c)).cmp(b.iter().map(|&c| env_byte(c)))
}

/// `CONTENT_TYPE`, `CONTENT_LENGTH` and one `HTTP_*` entry per distinct key, in order of
/// first appearance, repeated values joined with `,` in the order they came (gunicorn's
/// dict update). Names that differ only by `-`/`_` or case share a key, as in gunicorn.
fn push_headers(b: &mut Builder, head: &RequestHead) {
    let fields = &head.fields;
    let raw = &head.raw;
    let name = move |i: usize| fields[i].name.get(raw);
    let value = move |i: usize| fields[i].value.get(raw);

    // Group the HTTP_* fields by key: a stable sort puts each group's fields together, in
    // the order they came; `links[i]` is the next field of i's group, and whether i is the
    // first of its group. O(n log n) whatever the number of repeats.
    const END: u32 = u32::MAX;
    let mut order: Vec<u32> =
        (0..fields.len() as u32).filter(|&i| special_key(name(i as usize)).is_none()).collect();
    order.sort_by(|&x, &y| cmp_env_name(name(x as usize), name(y as usize)));
    let mut links: Vec<(u32, bool)> = vec![(END, true); fields.len()];
    for pair in order.windows(2) {
        let (x, y) = (pair[0] as usize, pair[1] as usize);
        if cmp_env_name(name(x), name(y)) == Ordering::Equal {
            links[x].0 = y as u32;
            links[y].1 = false;
        }
    }

    for i in 0..fields.len() {
        if let Some(key) = special_key(name(i)) {
            if b.keys[key.index()] == ABSENT {
                // The parser refuses repeats of these; were there any, gunicorn's last
                // value would win at the place of the first.
                let last = (i..fields.len())
                    .rev()
                    .find(|&j| special_key(name(j)) == Some(key))
                    .unwrap_or(i);
                b.push(key, value(last));
            }
            continue;
        }
        let (mut next, first) = links[i];
        if !first {
            continue;
        }
        let name_start = b.buf.len();
        b.buf.extend_from_slice(b"HTTP_");
        b.buf.extend(name(i).iter().map(|&c| env_byte(c)));
        let name_span = b.span_from(name_start);
        let value_start = b.buf.len();
        b.buf.extend_from_slice(value(i));
        while next != END {
            b.buf.push(b',');
            b.buf.extend_from_slice(value(next as usize));
            next = links[next as usize].0;
        }
        let value_span = b.span_from(value_start);
        b.entries.push(Entry { name: Slot::Http(name_span), value: value_span });
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `urllib.parse.unquote_to_bytes`: each `%HH` becomes the byte it names; a `%` not
/// followed by two hex digits stays as it is; `+` is not a space.
fn unquote_into(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' && i + 2 < src.len() {
            if let (Some(hi), Some(lo)) = (hex_value(src[i + 1]), hex_value(src[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(src[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProtoConfig, UnderscoreHeaders};
    use crate::conn::{Connection, Event};
    use crate::proxy::{AddressFamily, ProxyVersion, Transport};
    use alloc::string::ToString;
    use alloc::sync::Arc;

    /// In the default `forwarded_allow_ips`.
    const TRUSTED: &str = "127.0.0.1:50000";
    /// Not in it.
    const UNTRUSTED: &str = "203.0.113.9:41000";
    const SOCK: &[u8] = b"/run/app.sock";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn head_with(cfg: ProtoConfig, peer: Peer, raw: &[u8]) -> RequestHead {
        let mut conn = Connection::new(Arc::new(cfg), peer);
        conn.receive(raw);
        match conn.next_event() {
            Ok(Event::Request(head)) => head.clone(),
            other => panic!("no request head from {:?}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn tcp(peer: &str, tls: bool) -> ConnInfo {
        ConnInfo { peer: Peer::Tcp(addr(peer)), local: Local::Tcp(addr("127.0.0.1:8000")), tls }
    }

    fn unix(tls: bool) -> ConnInfo {
        ConnInfo { peer: Peer::Unix, local: Local::Unix(SOCK.to_vec()), tls }
    }

    fn cfg(script_name: &str) -> EnvironConfig {
        EnvironConfig {
            script_name: script_name.as_bytes().to_vec(),
            server_software: String::from("ferrocorn/test"),
            ..EnvironConfig::default()
        }
    }

    /// Parses `raw` from the connection's peer and builds its environ.
    fn try_env(conn: &ConnInfo, cfg: &EnvironConfig, raw: &[u8]) -> Result<Environ, EnvironError> {
        build(&head_with(ProtoConfig::default(), conn.peer, raw), conn, cfg)
    }

    fn env(conn: &ConnInfo, cfg: &EnvironConfig, raw: &[u8]) -> Environ {
        try_env(conn, cfg, raw).unwrap()
    }

    fn latin1(b: &[u8]) -> String {
        b.iter().map(|&c| char::from(c)).collect()
    }

    /// `environ.get(name)` as latin-1 text, as Python would see it.
    fn val(e: &Environ, name: &str) -> Option<String> {
        e.get_name(name.as_bytes()).map(latin1)
    }

    fn pairs(e: &Environ) -> Vec<(String, String)> {
        e.iter().map(|(n, v)| (latin1(n.as_bytes()), latin1(v))).collect()
    }

    #[test]
    fn every_variable_in_order() {
        let raw = b"POST /app/p%41th?q=1&r=%20 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\n\
X-A: 1\r\nAccept: */*\r\nContent-Length: 3\r\nx-a: 2\r\nExpect: 100-continue\r\n\r\nabc";
        let e = env(&tcp("10.1.2.3:5555", false), &cfg("/app"), raw);
        let want: &[(&str, &str)] = &[
            ("SERVER_SOFTWARE", "ferrocorn/test"),
            ("REQUEST_METHOD", "POST"),
            ("QUERY_STRING", "q=1&r=%20"),
            ("RAW_URI", "/app/p%41th?q=1&r=%20"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("HTTP_HOST", "example.com:8080"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_X_A", "1,2"),
            ("HTTP_ACCEPT", "*/*"),
            ("CONTENT_LENGTH", "3"),
            ("HTTP_EXPECT", "100-continue"),
            ("wsgi.url_scheme", "http"),
            ("REMOTE_ADDR", "10.1.2.3"),
            ("REMOTE_PORT", "5555"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "8000"),
            ("PATH_INFO", "/pAth"),
            ("SCRIPT_NAME", "/app"),
        ];
        let want: Vec<(String, String)> =
            want.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(pairs(&e), want);
        assert_eq!(e.len(), want.len());
        assert_eq!(e.url_scheme(), Scheme::Http);
        assert_eq!(e.get(Key::PathInfo), Some(&b"/pAth"[..]));
        assert!(!e.contains(Key::ProxyProtocol));
        // Lookups by name and by key agree, for every key.
        for key in Key::ALL {
            assert_eq!(e.get(key), e.get_name(key.as_str().as_bytes()), "{key:?}");
            assert_eq!(Key::from_name(key.as_str().as_bytes()), Some(key));
            assert_eq!(Key::ALL[key.index()], key);
        }
        // HTTP_* names come back whole.
        let http: Vec<&[u8]> = e
            .iter()
            .filter_map(|(n, _)| match n {
                Name::Http(h) => Some(h),
                Name::Key(_) => None,
            })
            .collect();
        assert_eq!(http, [&b"HTTP_HOST"[..], b"HTTP_X_A", b"HTTP_ACCEPT", b"HTTP_EXPECT"]);
    }

    #[test]
    fn http_1_0_and_ipv6() {
        let conn = ConnInfo {
            peer: Peer::Tcp(addr("[2001:db8::7]:40000")),
            local: Local::Tcp(addr("[::]:8443")),
            tls: false,
        };
        let e = env(&conn, &cfg(""), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(val(&e, "SERVER_PROTOCOL").as_deref(), Some("HTTP/1.0"));
        assert_eq!(val(&e, "REMOTE_ADDR").as_deref(), Some("2001:db8::7"));
        assert_eq!(val(&e, "REMOTE_PORT").as_deref(), Some("40000"));
        assert_eq!(val(&e, "SERVER_NAME").as_deref(), Some("::"));
        assert_eq!(val(&e, "SERVER_PORT").as_deref(), Some("8443"));
        assert_eq!(val(&e, "QUERY_STRING").as_deref(), Some(""));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/"));
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some(""));
        assert_eq!(val(&e, "HTTP_HOST"), None);
        assert_eq!(val(&e, "CONTENT_TYPE"), None);
        assert_eq!(val(&e, "CONTENT_LENGTH"), None);
    }

    #[test]
    fn tcp_server_name_ignores_host() {
        let e = env(
            &tcp(TRUSTED, false),
            &cfg(""),
            b"GET / HTTP/1.1\r\nHost: other.example:9999\r\n\r\n",
        );
        assert_eq!(val(&e, "SERVER_NAME").as_deref(), Some("127.0.0.1"));
        assert_eq!(val(&e, "SERVER_PORT").as_deref(), Some("8000"));
        assert_eq!(val(&e, "HTTP_HOST").as_deref(), Some("other.example:9999"));
    }

    #[test]
    fn script_name_from_environment_and_headers() {
        let raw = b"GET /mount/x HTTP/1.1\r\nHost: a\r\nSCRIPT_NAME: /mount\r\nPATH_INFO: /forged\r\n\r\n";
        // Trusted peer: the header wins over the configured value; PATH_INFO is not forwarded.
        let e = env(&tcp(TRUSTED, false), &cfg("/env"), raw);
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some("/mount"));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/x"));
        assert_eq!(val(&e, "HTTP_SCRIPT_NAME").as_deref(), Some("/mount"));
        assert_eq!(val(&e, "HTTP_PATH_INFO").as_deref(), Some("/forged"));

        // Untrusted peer: the headers are dropped, the configured value is used.
        let e = try_env(&tcp(UNTRUSTED, false), &cfg("/env"), raw);
        assert!(matches!(e, Err(EnvironError::ScriptNameMismatch { .. })));
        let e = env(&tcp(UNTRUSTED, false), &cfg("/mo"), raw);
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some("/mo"));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("unt/x"));
        assert_eq!(val(&e, "HTTP_SCRIPT_NAME"), None);
        assert_eq!(val(&e, "HTTP_PATH_INFO"), None);

        // Untrusted peer under header_map = dangerous: kept as HTTP_*, never obeyed.
        let mut proto = ProtoConfig::default();
        proto.headers.underscore = UnderscoreHeaders::Dangerous;
        let conn = tcp(UNTRUSTED, false);
        let e = build(&head_with(proto, conn.peer, raw), &conn, &cfg("")).unwrap();
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some(""));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/mount/x"));
        assert_eq!(val(&e, "HTTP_SCRIPT_NAME").as_deref(), Some("/mount"));

        // Configured only.
        let e = env(&tcp(TRUSTED, false), &cfg("/env"), b"GET /env HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some("/env"));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some(""));
        // A plain byte prefix, as in gunicorn.
        let e = env(
            &tcp(TRUSTED, false),
            &cfg("/app"),
            b"GET /application HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("lication"));
    }

    #[test]
    fn script_name_mismatch_is_a_500() {
        let err = try_env(
            &tcp(TRUSTED, false),
            &cfg("/app"),
            b"GET /other?x HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap_err();
        assert_eq!(err.status(), 500);
        assert_eq!(err.reason(), "Internal Server Error");
        assert_eq!(err.gunicorn_class(), "ConfigurationProblem");
        assert_eq!(
            err.to_string(),
            "Configuration problem: Request path '/other' does not start with SCRIPT_NAME '/app'"
        );
        // The prefix is compared with the raw path, before decoding.
        let err = try_env(
            &tcp(TRUSTED, false),
            &cfg("/app"),
            b"GET /%61pp/x HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(err.is_err());
        // A trusted SCRIPT_NAME header is checked the same way.
        let err = try_env(
            &tcp(TRUSTED, false),
            &cfg(""),
            b"GET /x HTTP/1.1\r\nHost: a\r\nSCRIPT_NAME: /y\r\n\r\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Configuration problem: Request path '/x' does not start with SCRIPT_NAME '/y'"
        );
    }

    #[test]
    fn path_info_percent_decoding() {
        let cases: &[(&str, &[u8])] = &[
            ("/a%2Fb", b"/a/b"),
            ("/%zz", b"/%zz"),
            ("/%E9t%e9", b"/\xe9t\xe9"),
            ("/%c3%a9", b"/\xc3\xa9"),
            ("/%", b"/%"),
            ("/%4", b"/%4"),
            ("/%%41", b"/%A"),
            ("/%4g%41", b"/%4gA"),
            ("/a+b", b"/a+b"),
            ("/%00%20", b"/\x00 "),
            ("//double//slash", b"//double//slash"),
        ];
        for (path, want) in cases {
            let raw = alloc::format!("GET {path}?a=%41 HTTP/1.1\r\nHost: h\r\n\r\n");
            let e = env(&tcp(TRUSTED, false), &cfg(""), raw.as_bytes());
            assert_eq!(e.get(Key::PathInfo), Some(*want), "{path}");
            assert_eq!(e.get(Key::QueryString), Some(&b"a=%41"[..]), "{path}");
        }
        // SCRIPT_NAME is taken off before decoding.
        let e = env(
            &tcp(TRUSTED, false),
            &cfg("/a%20b"),
            b"GET /a%20b/c%20d HTTP/1.1\r\nHost: h\r\n\r\n",
        );
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some("/a%20b"));
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/c d"));
    }

    #[test]
    fn target_forms() {
        let conn = tcp(TRUSTED, false);
        let e = env(
            &conn,
            &cfg(""),
            b"GET http://example.com/p%20q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        );
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/p q"));
        assert_eq!(val(&e, "QUERY_STRING").as_deref(), Some("x=1"));
        assert_eq!(val(&e, "RAW_URI").as_deref(), Some("http://example.com/p%20q?x=1"));
        let e =
            env(&conn, &cfg(""), b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some(""));
        let e =
            env(&conn, &cfg(""), b"GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some(""));
        assert_eq!(val(&e, "QUERY_STRING").as_deref(), Some("q"));
        let e = env(
            &conn,
            &cfg("/app"),
            b"GET http://example.com/app/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        );
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("/x"));

        // OPTIONS *: '*' as in gunicorn, and no SCRIPT_NAME check (gunicorn: 500).
        let e = env(&conn, &cfg("/app"), b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some("*"));
        assert_eq!(val(&e, "SCRIPT_NAME").as_deref(), Some("/app"));
        assert_eq!(val(&e, "RAW_URI").as_deref(), Some("*"));

        // CONNECT: '' where gunicorn says '443'; no SCRIPT_NAME check either.
        let e = env(
            &conn,
            &cfg("/app"),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        );
        assert_eq!(val(&e, "PATH_INFO").as_deref(), Some(""));
        assert_eq!(val(&e, "QUERY_STRING").as_deref(), Some(""));
        assert_eq!(val(&e, "RAW_URI").as_deref(), Some("example.com:443"));
        assert_eq!(val(&e, "REQUEST_METHOD").as_deref(), Some("CONNECT"));
    }

    #[test]
    fn repeated_headers_are_joined() {
        let raw = b"GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nAccept: b\r\nx-a: 2\r\nCookie: c=1\r\nX-a: 3\r\n\
Cookie: d=2\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n";
        let e = env(&tcp(TRUSTED, false), &cfg(""), raw);
        let http: Vec<(String, String)> =
            pairs(&e).into_iter().filter(|(n, _)| n.starts_with("HTTP_")).collect();
        let want: Vec<(String, String)> = [
            ("HTTP_X_A", "1,2,3"),
            ("HTTP_HOST", "h"),
            ("HTTP_ACCEPT", "b"),
            ("HTTP_COOKIE", "c=1,d=2"),
            ("HTTP_X_EMPTY", ""),
            ("HTTP_X_LATIN", "caf\u{e9}"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(http, want);
        assert_eq!(e.get_name(b"HTTP_X_LATIN"), Some(&b"caf\xe9"[..]));
    }

    #[test]
    fn dash_and_underscore_names_share_a_key() {
        // Only reachable under header_map = dangerous (or a listed forwarder header), where
        // gunicorn joins them too.
        let mut proto = ProtoConfig::default();
        proto.headers.underscore = UnderscoreHeaders::Dangerous;
        let conn = tcp(TRUSTED, false);
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Auth_Token: a\r\nx-auth-token: b\r\n\r\n";
        let e = build(&head_with(proto, conn.peer, raw), &conn, &cfg("")).unwrap();
        assert_eq!(val(&e, "HTTP_X_AUTH_TOKEN").as_deref(), Some("a,b"));
        assert_eq!(e.iter().filter(|(n, _)| n.as_bytes() == b"HTTP_X_AUTH_TOKEN").count(), 1);
    }

    #[test]
    fn remote_user_is_never_set_from_a_header() {
        // gunicorn has no REMOTE_USER at all; a listed, trusted header stays an HTTP_ var.
        let mut proto = ProtoConfig::default();
        proto.headers.forwarder_headers.push(String::from("REMOTE_USER"));
        let mut config = cfg("");
        config.headers = proto.headers.clone();
        let conn = tcp(TRUSTED, false);
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nRemote_User: alice\r\n\r\n";
        let e = build(&head_with(proto, conn.peer, raw), &conn, &config).unwrap();
        assert_eq!(val(&e, "HTTP_REMOTE_USER").as_deref(), Some("alice"));
        assert_eq!(val(&e, "REMOTE_USER"), None);
    }

    #[test]
    fn content_type_and_length_are_not_http_vars() {
        let raw =
            b"PUT /u HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\nCONTENT-TYPE: application/json; charset=utf-8\r\n\r\n";
        let e = env(&tcp(TRUSTED, false), &cfg(""), raw);
        assert_eq!(val(&e, "CONTENT_TYPE").as_deref(), Some("application/json; charset=utf-8"));
        assert_eq!(val(&e, "CONTENT_LENGTH").as_deref(), Some("0"));
        assert_eq!(val(&e, "HTTP_CONTENT_TYPE"), None);
        assert_eq!(val(&e, "HTTP_CONTENT_LENGTH"), None);
        let names: Vec<String> = pairs(&e).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[5..8], ["HTTP_HOST", "CONTENT_LENGTH", "CONTENT_TYPE"]);
    }

    #[test]
    fn unix_socket_server_name_from_host() {
        let cases: &[(&str, bool, &str, &str)] = &[
            ("Host: example.com\r\n", false, "example.com", "80"),
            ("Host: example.com\r\n", true, "example.com", "443"),
            ("Host: example.com:8080\r\n", false, "example.com", "8080"),
            ("Host: example.com:8080\r\n", true, "example.com", "8080"),
            ("Host: example.com:\r\n", false, "example.com", "80"),
            ("Host: [::1]:8080\r\n", false, "[::1]", "8080"),
            ("Host: [::1]\r\n", true, "[::1]", "443"),
            ("Host: 10.0.0.1:81\r\n", false, "10.0.0.1", "81"),
            // Unix peers are trusted: their secure-scheme header sets the default port.
            ("Host: example.com\r\nX-Forwarded-Proto: https\r\n", false, "example.com", "443"),
            ("Host: example.com\r\nX-Forwarded-Proto: http\r\n", true, "example.com", "80"),
        ];
        for (headers, tls, name, port) in cases {
            let raw = alloc::format!("GET / HTTP/1.1\r\n{headers}\r\n");
            let e = env(&unix(*tls), &cfg(""), raw.as_bytes());
            assert_eq!(val(&e, "SERVER_NAME").as_deref(), Some(*name), "{headers:?}");
            assert_eq!(val(&e, "SERVER_PORT").as_deref(), Some(*port), "{headers:?}");
            assert_eq!(val(&e, "REMOTE_ADDR").as_deref(), Some(""));
            assert_eq!(val(&e, "REMOTE_PORT"), None);
        }
        // No Host (HTTP/1.0): the socket path and an empty port.
        let e = env(&unix(false), &cfg(""), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(val(&e, "SERVER_NAME").as_deref(), Some("/run/app.sock"));
        assert_eq!(val(&e, "SERVER_PORT").as_deref(), Some(""));
        // An absolute-form target does not change it: gunicorn reads Host only.
        let e = env(
            &unix(false),
            &cfg(""),
            b"GET http://target.example:81/ HTTP/1.1\r\nHost: host.example\r\n\r\n",
        );
        assert_eq!(val(&e, "SERVER_NAME").as_deref(), Some("host.example"));
        assert_eq!(val(&e, "SERVER_PORT").as_deref(), Some("80"));
    }

    #[test]
    fn split_host_shapes() {
        assert_eq!(split_host(b"a"), (&b"a"[..], None));
        assert_eq!(split_host(b"a:1"), (&b"a"[..], Some(&b"1"[..])));
        assert_eq!(split_host(b"a:"), (&b"a"[..], None));
        assert_eq!(split_host(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(split_host(b"[::1]:"), (&b"[::1]"[..], None));
        assert_eq!(split_host(b"[::1]:9"), (&b"[::1]"[..], Some(&b"9"[..])));
    }

    #[test]
    fn url_scheme_by_listener_and_trust() {
        let get = |conn: &ConnInfo, extra: &str| {
            let raw = alloc::format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
            let e = env(conn, &cfg(""), raw.as_bytes());
            assert_eq!(val(&e, "wsgi.url_scheme").as_deref(), Some(e.url_scheme().as_str()));
            e.url_scheme()
        };
        assert_eq!(get(&tcp(TRUSTED, false), ""), Scheme::Http);
        assert_eq!(get(&tcp(TRUSTED, true), ""), Scheme::Https);
        assert_eq!(get(&tcp(TRUSTED, false), "X-Forwarded-Proto: https\r\n"), Scheme::Https);
        assert_eq!(get(&tcp(TRUSTED, false), "X-Forwarded-Protocol: ssl\r\n"), Scheme::Https);
        assert_eq!(get(&tcp(TRUSTED, false), "X-Forwarded-Ssl: on\r\n"), Scheme::Https);
        // A trusted header downgrades a TLS listener, as in gunicorn.
        assert_eq!(get(&tcp(TRUSTED, true), "X-Forwarded-Proto: http\r\n"), Scheme::Http);
        // An untrusted peer's headers change nothing.
        assert_eq!(get(&tcp(UNTRUSTED, false), "X-Forwarded-Proto: https\r\n"), Scheme::Http);
        assert_eq!(get(&tcp(UNTRUSTED, true), "X-Forwarded-Proto: http\r\n"), Scheme::Https);
        // The header itself is still there for the application.
        let e = env(
            &tcp(UNTRUSTED, false),
            &cfg(""),
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n",
        );
        assert_eq!(val(&e, "HTTP_X_FORWARDED_PROTO").as_deref(), Some("https"));
    }

    fn proxy_info(
        version: ProxyVersion,
        command: ProxyCommand,
        src: Option<&str>,
        dst: Option<&str>,
    ) -> ProxyInfo {
        let family = match src.map(addr) {
            Some(SocketAddr::V4(_)) => AddressFamily::Inet,
            Some(SocketAddr::V6(_)) => AddressFamily::Inet6,
            None => AddressFamily::Unspec,
        };
        ProxyInfo {
            version,
            command,
            family,
            transport: if src.is_some() { Transport::Stream } else { Transport::Unspec },
            source: src.map(addr),
            destination: dst.map(addr),
            unix: None,
            tlvs: Vec::new(),
        }
    }

    fn env_with_proxy(conn: &ConnInfo, info: ProxyInfo) -> Environ {
        let mut head =
            head_with(ProtoConfig::default(), conn.peer, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        head.proxy = Some(Arc::new(info));
        build(&head, conn, &cfg("")).unwrap()
    }

    fn proxy_vars(e: &Environ) -> Vec<(String, String)> {
        pairs(e)
            .into_iter()
            .filter(|(n, _)| {
                n.starts_with("REMOTE_") || n.starts_with("PROXY_") || n.starts_with("SERVER_N")
            })
            .collect()
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(n, val)| (n.to_string(), val.to_string())).collect()
    }

    #[test]
    fn proxy_header_overrides_remote() {
        let conn = tcp(TRUSTED, false);
        let info = proxy_info(
            ProxyVersion::V1,
            ProxyCommand::Proxy,
            Some("192.0.2.10:56324"),
            Some("198.51.100.1:443"),
        );
        let e = env_with_proxy(&conn, info);
        assert_eq!(
            proxy_vars(&e),
            owned(&[
                ("REMOTE_ADDR", "192.0.2.10"),
                ("REMOTE_PORT", "56324"),
                ("SERVER_NAME", "127.0.0.1"),
                ("PROXY_PROTOCOL", "TCP4"),
                ("PROXY_ADDR", "198.51.100.1"),
                ("PROXY_PORT", "443"),
            ])
        );

        let info = proxy_info(
            ProxyVersion::V2,
            ProxyCommand::Proxy,
            Some("[2001:db8::1]:1234"),
            Some("[2001:db8::2]:80"),
        );
        let e = env_with_proxy(&unix(false), info);
        assert_eq!(
            proxy_vars(&e),
            owned(&[
                ("REMOTE_ADDR", "2001:db8::1"),
                ("REMOTE_PORT", "1234"),
                ("SERVER_NAME", "h"),
                ("PROXY_PROTOCOL", "TCP6"),
                ("PROXY_ADDR", "2001:db8::2"),
                ("PROXY_PORT", "80"),
            ])
        );
    }

    #[test]
    fn proxy_local_keeps_the_real_peer() {
        // gunicorn: REMOTE_ADDR None, REMOTE_PORT 'None'. Here: the real peer.
        let e = env_with_proxy(
            &tcp(TRUSTED, false),
            proxy_info(ProxyVersion::V2, ProxyCommand::Local, None, None),
        );
        assert_eq!(
            proxy_vars(&e),
            owned(&[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("REMOTE_PORT", "50000"),
                ("SERVER_NAME", "127.0.0.1"),
                ("PROXY_PROTOCOL", "LOCAL"),
            ])
        );
        let e = env_with_proxy(
            &unix(false),
            proxy_info(ProxyVersion::V1, ProxyCommand::Local, None, None),
        );
        assert_eq!(
            proxy_vars(&e),
            owned(&[("REMOTE_ADDR", ""), ("SERVER_NAME", "h"), ("PROXY_PROTOCOL", "UNKNOWN")])
        );
        // A LOCAL header's addresses (v2 LOCAL may carry a block) are not used.
        let e = env_with_proxy(
            &tcp(TRUSTED, false),
            proxy_info(
                ProxyVersion::V2,
                ProxyCommand::Local,
                Some("192.0.2.10:1"),
                Some("192.0.2.11:2"),
            ),
        );
        assert_eq!(val(&e, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
        assert_eq!(val(&e, "PROXY_ADDR"), None);
    }

    #[test]
    fn proxy_unix_family_keeps_the_real_peer() {
        // The paths of an AF_UNIX header are no network address: REMOTE_ADDR/REMOTE_PORT
        // stay the connection's own, as for LOCAL and AF_UNSPEC, and there is no PROXY_ADDR.
        let unix_info = || {
            let mut info = proxy_info(ProxyVersion::V2, ProxyCommand::Proxy, None, None);
            info.family = AddressFamily::Unix;
            info.transport = Transport::Stream;
            info.unix = Some((b"/run/client.sock".to_vec(), b"/run/haproxy.sock".to_vec()));
            info
        };
        let e = env_with_proxy(&tcp(TRUSTED, false), unix_info());
        assert_eq!(
            proxy_vars(&e),
            owned(&[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("REMOTE_PORT", "50000"),
                ("SERVER_NAME", "127.0.0.1"),
                ("PROXY_PROTOCOL", "UNIX"),
            ])
        );
        // On a unix listener: the unix peer's empty REMOTE_ADDR and no port, as without PROXY.
        let e = env_with_proxy(&unix(false), unix_info());
        assert_eq!(
            proxy_vars(&e),
            owned(&[("REMOTE_ADDR", ""), ("SERVER_NAME", "h"), ("PROXY_PROTOCOL", "UNIX")])
        );
    }

    #[test]
    fn unquote_matches_urllib() {
        let mut out = Vec::new();
        unquote_into(b"%41%4a%4A%%2%2x%ff%FF%", &mut out);
        assert_eq!(out, b"AJJ%%2%2x\xff\xff%");
    }

    #[test]
    fn default_config() {
        let c = EnvironConfig::default();
        assert!(c.script_name.is_empty());
        assert!(c.server_software.starts_with("ferrocorn/"));
        assert!(c.headers.is_forwarder_header(b"script_name"));
    }
}
