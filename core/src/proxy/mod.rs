//! The PROXY protocol, v1 (text) and v2 (binary), per the HAProxy specification
//! ("The PROXY protocol", versions 1 & 2, haproxy `doc/proxy-protocol.txt`; section numbers
//! in comments refer to it).
//!
//! [`parse`] is a pure function of the bytes received so far: the caller (the connection
//! machine) calls it again with a longer buffer after every read, and the answer for a
//! header split across reads is the same as for the header read whole. It returns
//! [`Parsed::Partial`] exactly while the bytes seen so far can still be the beginning of a
//! valid header, and an error as soon as they cannot (§2: the receiver must not try to
//! guess whether the header is present; a listener that requires a header never falls
//! back to plain HTTP, unlike gunicorn, which treats the header as optional).
//!
//! Where the spec leaves room, this parser takes the strict reading:
//!
//! * v1 (§2.1): exactly one space between fields, dotted-quad IPv4 without leading zeros,
//!   IPv6 text without zone ids, decimal ports 0-65535 without sign or leading zeros, the
//!   CRLF ending by byte 107 (an error as soon as it no longer can), no lone CR or LF
//!   anywhere. `UNKNOWN` may be followed
//!   by a space and anything (but CR or LF) up to the CRLF, which is ignored.
//! * v2 (§2.2): the version nibble must be 2 and the command LOCAL or PROXY. For PROXY
//!   the protocol byte must be one of the seven combinations the spec lists (`\x00`,
//!   `\x11`, `\x12`, `\x21`, `\x22`, `\x31`, `\x32`); for LOCAL it is ignored, as the spec
//!   says, and so is the whole block after the 16 fixed bytes (addresses and TLVs):
//!   without a family there is no knowing where TLVs would start. TLVs must tile
//!   the rest of the block exactly; a `PP2_TYPE_CRC32C` is verified (§2.2.3), more than
//!   one of them is refused (which one would the sender mean?), `PP2_TYPE_UNIQUE_ID` is at
//!   most 128 bytes (§2.2.5), `PP2_TYPE_SSL` holds its 5 fixed bytes and sub-TLVs that tile
//!   the rest of it (§2.2.6). Unknown types and `PP2_TYPE_NOOP` are kept as they are.
//!
//! The environ value `PROXY_PROTOCOL` is [`ProxyInfo::proxy_protocol_label`].

mod crc32c;
mod text;
pub mod tlv;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::config::ProxyMode;
use crate::error::{Detail, RecvError};

pub use tlv::{SslInfo, Tlv};

/// Result of parsing a possibly incomplete input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A whole header was parsed from the first `consumed` bytes.
    Complete {
        /// The parsed value.
        value: T,
        /// How many input bytes it took.
        consumed: usize,
    },
    /// More bytes are needed.
    Partial,
}

/// Which version of the protocol the header was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyVersion {
    /// The text header, `PROXY ... CRLF` (§2.1).
    V1,
    /// The binary header with the 12-byte signature (§2.2).
    V2,
}

/// What the proxy says the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyCommand {
    /// The connection was made by the proxy itself (a health check), or v1 `UNKNOWN`:
    /// use the real endpoints of the socket.
    Local,
    /// The connection was relayed for a client: the header carries its addresses.
    Proxy,
}

/// The address family of the relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// Unknown or not said (v1 `UNKNOWN`, v2 `AF_UNSPEC`, every LOCAL header).
    Unspec,
    /// IPv4 (v1 `TCP4`, v2 `AF_INET`).
    Inet,
    /// IPv6 (v1 `TCP6`, v2 `AF_INET6`).
    Inet6,
    /// A unix socket (v2 `AF_UNIX`).
    Unix,
}

/// The transport protocol of the relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Unknown or not said (v1 `UNKNOWN`, v2 `UNSPEC`, every LOCAL header).
    Unspec,
    /// A stream (TCP, `SOCK_STREAM`); v1 `TCP4` and `TCP6` are streams.
    Stream,
    /// Datagrams (UDP, `SOCK_DGRAM`).
    Dgram,
}

/// What a PROXY header said about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyInfo {
    /// The protocol version of the header.
    pub version: ProxyVersion,
    /// LOCAL (use the real endpoints) or PROXY (use the addresses below).
    pub command: ProxyCommand,
    /// The address family of the relayed connection.
    pub family: AddressFamily,
    /// The transport of the relayed connection.
    pub transport: Transport,
    /// The client's address; `None` for LOCAL, `UNKNOWN`, `AF_UNSPEC` and `AF_UNIX`.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (on the proxy); same `None` rules as `source`.
    pub destination: Option<SocketAddr>,
    /// The source and destination paths of an `AF_UNIX` connection. A path ends at its
    /// first NUL, except an abstract-namespace name (first byte NUL), which keeps its
    /// leading NUL and loses only the trailing NUL padding.
    pub unix: Option<(Vec<u8>, Vec<u8>)>,
    /// The v2 TLVs in the order they came, `PP2_TYPE_NOOP`, `PP2_TYPE_CRC32C` and unknown
    /// types included; always empty for v1 and for LOCAL.
    pub tlvs: Vec<Tlv>,
}

impl ProxyInfo {
    /// The info of a header that says "use the real endpoints" (v1 `UNKNOWN`, v2 LOCAL).
    fn local(version: ProxyVersion) -> Self {
        ProxyInfo {
            version,
            command: ProxyCommand::Local,
            family: AddressFamily::Unspec,
            transport: Transport::Unspec,
            source: None,
            destination: None,
            unix: None,
            tlvs: Vec::new(),
        }
    }

    /// The value of the first TLV of type `kind`, if any.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.kind == kind).map(|t| t.value.as_slice())
    }

    /// `PP2_TYPE_ALPN` (0x01): the application protocol the client negotiated (`h2`, ...).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(tlv::ALPN)
    }

    /// `PP2_TYPE_AUTHORITY` (0x02): the host name the client asked for (TLS SNI), UTF-8
    /// by the spec but not checked here.
    pub fn authority(&self) -> Option<&[u8]> {
        self.tlv(tlv::AUTHORITY)
    }

    /// `PP2_TYPE_UNIQUE_ID` (0x05): an opaque connection id of at most 128 bytes.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(tlv::UNIQUE_ID)
    }

    /// `PP2_TYPE_NETNS` (0x30): the name of the network namespace the connection came in.
    pub fn netns(&self) -> Option<&[u8]> {
        self.tlv(tlv::NETNS)
    }

    /// `PP2_TYPE_SSL` (0x20): what the proxy knows about the client's TLS session.
    pub fn ssl(&self) -> Option<SslInfo<'_>> {
        self.tlv(tlv::SSL).and_then(SslInfo::from_value)
    }

    /// The environ value `PROXY_PROTOCOL` (gunicorn sets it from the v1 protocol word).
    ///
    /// v1: `TCP4`, `TCP6`, or `UNKNOWN`. v2 has no such word; the label is chosen to read
    /// the same way: `LOCAL` for the LOCAL command, and for PROXY `TCP4` / `UDP4`
    /// (`AF_INET` stream / datagram; `TCP4` also for an unspecified transport, which the
    /// spec does not allow with `AF_INET` anyway), `TCP6` / `UDP6` (`AF_INET6`), `UNIX`
    /// (`AF_UNIX`, either transport) and `UNSPEC` (`AF_UNSPEC`).
    pub fn proxy_protocol_label(&self) -> &'static str {
        match (self.version, self.command, self.family, self.transport) {
            (ProxyVersion::V1, ProxyCommand::Local, _, _) => "UNKNOWN",
            (ProxyVersion::V2, ProxyCommand::Local, _, _) => "LOCAL",
            (_, _, AddressFamily::Inet, Transport::Dgram) => "UDP4",
            (_, _, AddressFamily::Inet, _) => "TCP4",
            (_, _, AddressFamily::Inet6, Transport::Dgram) => "UDP6",
            (_, _, AddressFamily::Inet6, _) => "TCP6",
            (_, _, AddressFamily::Unix, _) => "UNIX",
            (ProxyVersion::V1, _, AddressFamily::Unspec, _) => "UNKNOWN",
            (ProxyVersion::V2, _, AddressFamily::Unspec, _) => "UNSPEC",
        }
    }
}

/// Parses the PROXY header a listener in `mode` requires at the start of `buf`.
///
/// * [`ProxyMode::V1`] requires a v1 line, [`ProxyMode::V2`] a v2 header,
///   [`ProxyMode::Auto`] either (told apart by the first byte: `P` or CR).
/// * `Ok(Parsed::Partial)`: `buf` is a strict prefix of some valid header; read more.
/// * `Ok(Parsed::Complete { value, consumed })`: the header is the first `consumed` bytes;
///   what follows belongs to the application protocol.
/// * `Err(RecvError::InvalidProxyLine)` for v1 (and for bytes that start neither version
///   under `Auto`), `Err(RecvError::InvalidProxyHeader)` for v2. Also an error under
///   [`ProxyMode::Off`], where the caller must not ask.
///
/// ```
/// use ferrocorn_core::config::ProxyMode;
/// use ferrocorn_core::proxy::{self, Parsed};
///
/// let buf = b"PROXY TCP4 192.0.2.1 198.51.100.2 4242 80\r\nGET / HTTP/1.1\r\n";
/// let Parsed::Complete { value, consumed } = proxy::parse(buf, ProxyMode::V1)? else {
///     unreachable!()
/// };
/// assert_eq!(value.source, Some("192.0.2.1:4242".parse().unwrap()));
/// assert_eq!(&buf[consumed..], b"GET / HTTP/1.1\r\n");
/// // A prefix of a header: read more.
/// assert!(matches!(proxy::parse(b"PROXY TCP4 19", ProxyMode::V1)?, Parsed::Partial));
/// # Ok::<(), ferrocorn_core::RecvError>(())
/// ```
pub fn parse(buf: &[u8], mode: ProxyMode) -> Result<Parsed<ProxyInfo>, RecvError> {
    match mode {
        ProxyMode::Off => Err(RecvError::InvalidProxyLine(Detail::new(b"proxy_protocol is off"))),
        ProxyMode::V1 => v1::parse(buf),
        ProxyMode::V2 => v2::parse(buf),
        ProxyMode::Auto => match buf.first() {
            None => Ok(Parsed::Partial),
            // The two versions are told apart by their first byte: `P` of `PROXY` (§2.1)
            // or CR, the first byte of the v2 signature (§2.2).
            Some(&b'P') => v1::parse(buf),
            Some(&b'\r') => v2::parse(buf),
            Some(_) => Err(RecvError::InvalidProxyLine(Detail::new(v1::detail_window(buf)))),
        },
    }
}
