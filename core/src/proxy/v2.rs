//! PROXY protocol v2, the binary header (§2.2):
//!
//! ```text
//! 0                 12         13       14       16
//! | signature (12)  | ver|cmd  | fam|tr | len BE | address block | TLVs ... |
//!                                                 <------------ len -------->
//! ```

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::crc32c::Crc32c;
use super::tlv::{self, Tlv};
use super::{AddressFamily, Parsed, ProxyCommand, ProxyInfo, ProxyVersion, Transport};
use crate::error::{Detail, RecvError};

/// §2.2: the 12-byte signature. It holds a NUL and `\r\n\r\n`, so no HTTP request or
/// v1 line can begin with it.
pub(crate) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part: signature, version/command, family/transport, length.
pub(crate) const FIXED: usize = 16;

/// §2.2: the length of the address block of each family: two IPv4 addresses and two
/// ports, two IPv6 addresses and two ports, two 108-byte unix paths.
const INET_LEN: usize = 12;
const INET6_LEN: usize = 36;
const UNIX_LEN: usize = 216;
/// The length of one `sun_path` of the unix address block.
const UNIX_PATH: usize = 108;

fn invalid(reason: &str) -> RecvError {
    RecvError::InvalidProxyHeader(Detail::new(reason.as_bytes()))
}

/// Parses a v2 header at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed<ProxyInfo>, RecvError> {
    let seen = buf.len().min(SIGNATURE.len());
    if buf[..seen] != SIGNATURE[..seen] {
        return Err(invalid("bad PROXY v2 signature"));
    }
    let Some(&ver_cmd) = buf.get(12) else { return Ok(Parsed::Partial) };
    // §2.2: the high nibble of byte 13 is the version; it is always 2 and the receiver
    // must accept no other value.
    if ver_cmd >> 4 != 2 {
        return Err(invalid("unsupported PROXY version"));
    }
    // §2.2: the low nibble is the command, 0x0 LOCAL or 0x1 PROXY; other values are
    // unassigned and receivers must drop connections that present them.
    let command = match ver_cmd & 0x0F {
        0 => ProxyCommand::Local,
        1 => ProxyCommand::Proxy,
        _ => return Err(invalid("unsupported PROXY v2 command")),
    };
    let Some(&fam) = buf.get(13) else { return Ok(Parsed::Partial) };
    // §2.2: for LOCAL the receiver uses the real connection endpoints and discards the
    // protocol block, the family byte included, which it ignores.
    let (family, transport, addr_len) = match command {
        ProxyCommand::Local => (AddressFamily::Unspec, Transport::Unspec, 0),
        ProxyCommand::Proxy => protocol(fam)?,
    };
    if buf.len() < FIXED {
        return Ok(Parsed::Partial);
    }
    // §2.2: bytes 15-16 are the length of the rest of the header, big-endian, so a
    // header is at most 16 + 65535 bytes.
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = FIXED + len;
    // §2.2: the address block of the family must fit in `len`; a header too short for it
    // is invalid (known as soon as the length is in).
    if len < addr_len {
        return Err(invalid("PROXY v2 header too short for its addresses"));
    }
    if command == ProxyCommand::Local {
        // §2.2: the receiver always skips exactly `len` bytes after the fixed part,
        // LOCAL included.
        return Ok(if buf.len() < total {
            Parsed::Partial
        } else {
            Parsed::Complete { value: ProxyInfo::local(ProxyVersion::V2), consumed: total }
        });
    }

    // The TLVs after the address block (§2.2.1-§2.2.8), checked as far as they arrived.
    let tlv_start = FIXED + addr_len;
    let have = buf.len().min(total);
    let avail = if have > tlv_start { &buf[tlv_start..have] } else { &[][..] };
    let complete = buf.len() >= total;
    let mut tlvs = Vec::new();
    let mut crc_at: Option<usize> = None;
    let mut offset = 0usize;
    let mut visit = |kind: u8, vlen: usize, value: &[u8]| -> Result<(), &'static str> {
        tlv::check(kind, vlen, value)?;
        let value_at = tlv_start + offset + 3;
        offset += 3 + vlen;
        if kind == tlv::CRC32C {
            if crc_at.is_some() {
                return Err("more than one CRC32C TLV");
            }
            crc_at = Some(value_at);
        }
        if complete {
            tlvs.push(Tlv { kind, value: value.to_vec() });
        }
        Ok(())
    };
    tlv::walk(avail, len - addr_len, &mut visit).map_err(invalid)?;
    if !complete {
        return Ok(Parsed::Partial);
    }

    let header = &buf[..total];
    // §2.2.3: a receiver that supports the checksum computes it over the whole header
    // (fixed part, addresses, TLVs) with the checksum field set to zero, and treats the
    // connection as invalid when it differs from the one sent (big-endian).
    if let Some(at) = crc_at {
        let mut crc = Crc32c::new();
        crc.update(&header[..at]);
        crc.update(&[0; 4]);
        crc.update(&header[at + 4..]);
        let sent = u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        if crc.finish() != sent {
            return Err(invalid("PROXY v2 CRC32C mismatch"));
        }
    }

    let block = &header[FIXED..tlv_start];
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let (source, destination, unix) = match family {
        AddressFamily::Inet => {
            let src = Ipv4Addr::new(block[0], block[1], block[2], block[3]);
            let dst = Ipv4Addr::new(block[4], block[5], block[6], block[7]);
            (
                Some(SocketAddr::new(src.into(), port(8))),
                Some(SocketAddr::new(dst.into(), port(10))),
                None,
            )
        }
        AddressFamily::Inet6 => {
            let octets = |at: usize| -> [u8; 16] { core::array::from_fn(|i| block[at + i]) };
            let src = Ipv6Addr::from(octets(0));
            let dst = Ipv6Addr::from(octets(16));
            (
                Some(SocketAddr::new(src.into(), port(32))),
                Some(SocketAddr::new(dst.into(), port(34))),
                None,
            )
        }
        AddressFamily::Unix => {
            let paths = (unix_path(&block[..UNIX_PATH]), unix_path(&block[UNIX_PATH..]));
            (None, None, Some(paths))
        }
        AddressFamily::Unspec => (None, None, None),
    };
    Ok(Parsed::Complete {
        value: ProxyInfo {
            version: ProxyVersion::V2,
            command: ProxyCommand::Proxy,
            family,
            transport,
            source,
            destination,
            unix,
            tlvs,
        },
        consumed: total,
    })
}

/// The family, transport and address-block length of a PROXY command's protocol byte.
///
/// §2.2: the high nibble is the family (0 `AF_UNSPEC`, 1 `AF_INET`, 2 `AF_INET6`,
/// 3 `AF_UNIX`; receivers must drop connections with other values), the low nibble the
/// transport (0 UNSPEC, 1 STREAM, 2 DGRAM; likewise). Of the pairs, the spec lists as
/// expected only `\x00` (UNSPEC) and the six `\x11 \x12 \x21 \x22 \x31 \x32`; an address family
/// with an unspecified transport, or a transport without a family, is refused too.
fn protocol(fam: u8) -> Result<(AddressFamily, Transport, usize), RecvError> {
    let (family, addr_len) = match fam >> 4 {
        0 => (AddressFamily::Unspec, 0),
        1 => (AddressFamily::Inet, INET_LEN),
        2 => (AddressFamily::Inet6, INET6_LEN),
        3 => (AddressFamily::Unix, UNIX_LEN),
        _ => return Err(invalid("unsupported PROXY v2 address family")),
    };
    let transport = match fam & 0x0F {
        0 => Transport::Unspec,
        1 => Transport::Stream,
        2 => Transport::Dgram,
        _ => return Err(invalid("unsupported PROXY v2 transport")),
    };
    if (family == AddressFamily::Unspec) != (transport == Transport::Unspec) {
        return Err(invalid("unexpected PROXY v2 family and transport pair"));
    }
    Ok((family, transport, addr_len))
}

/// A `sun_path` without its NUL padding: up to the first NUL, or, for a Linux
/// abstract-namespace name (first byte NUL), without the trailing NULs only.
fn unix_path(raw: &[u8]) -> Vec<u8> {
    let end = if raw.first() == Some(&0) {
        raw.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1)
    } else {
        raw.iter().position(|&b| b == 0).unwrap_or(raw.len())
    };
    raw[..end].to_vec()
}
