//! PROXY protocol v1, the text header (§2.1):
//!
//! ```text
//! "PROXY" SP ( "TCP4" | "TCP6" ) SP src-addr SP dst-addr SP src-port SP dst-port CRLF
//! "PROXY" SP "UNKNOWN" [ SP <anything but CR and LF> ] CRLF
//! ```

use core::net::{IpAddr, SocketAddr};

use super::text::{self, Field};
use super::{AddressFamily, Parsed, ProxyCommand, ProxyInfo, ProxyVersion, Transport};
use crate::error::{Detail, RecvError};

/// §2.1: if the CRLF is not found in the first 107 characters (the worst case: `UNKNOWN`
/// with two full IPv6 addresses and ports), the receiver should declare the line invalid.
/// The line, its CRLF included, must fit in this many bytes.
pub(crate) const MAX_LINE: usize = 107;

/// The part of the buffer an error message shows: at most the 107 bytes a line can take.
pub(crate) fn detail_window(buf: &[u8]) -> &[u8] {
    &buf[..buf.len().min(MAX_LINE)]
}

fn invalid(bytes: &[u8]) -> RecvError {
    RecvError::InvalidProxyLine(Detail::new(bytes))
}

/// Parses a v1 line at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed<ProxyInfo>, RecvError> {
    let window = detail_window(buf);
    let mut i = 0;
    while i < window.len() {
        match window[i] {
            // §2.1: the line ends with CRLF, and a lone CR or LF must not end it: an LF
            // that is not the second half of a CRLF can never be part of a valid line.
            b'\n' => return Err(invalid(&window[..i])),
            b'\r' => match window.get(i + 1) {
                Some(b'\n') => {
                    let line = &window[..i];
                    return match check(line, true) {
                        Ok(Some(value)) => Ok(Parsed::Complete { value, consumed: i + 2 }),
                        Ok(None) | Err(()) => Err(invalid(line)),
                    };
                }
                Some(_) => return Err(invalid(&window[..i])),
                // The CR is the last byte seen: its LF may still come.
                None => break,
            },
            _ => i += 1,
        }
    }
    // No CRLF yet: still waiting is only right if the bytes so far can begin a valid line,
    // and its CRLF can still end by byte 107.
    let alive = match window.split_last() {
        // A CR must be followed by the LF that ends the line: what precedes it must be a
        // whole line already, and the LF must still fit.
        Some((b'\r', line)) => buf.len() < MAX_LINE && matches!(check(line, true), Ok(Some(_))),
        // Room for at least CR and LF.
        _ => buf.len() + 2 <= MAX_LINE && check(window, false).is_ok(),
    };
    if alive { Ok(Parsed::Partial) } else { Err(invalid(window)) }
}

/// Splits off the field that starts `rest`: the bytes up to the next SP, and what follows
/// that SP (`None` when no SP came yet, i.e. the field runs to the end of `rest`).
fn field(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    }
}

/// Checks a line (without its CRLF). With `whole`, `line` is all of it and the answer is
/// `Ok(Some(info))` or `Err(())`. Without, `line` is what arrived so far and `Ok(None)`
/// means that it can still begin a valid line.
fn check(line: &[u8], whole: bool) -> Result<Option<ProxyInfo>, ()> {
    const PREFIX: &[u8] = b"PROXY ";
    if line.len() < PREFIX.len() {
        return if !whole && PREFIX.starts_with(line) { Ok(None) } else { Err(()) };
    }
    if !line.starts_with(PREFIX) {
        return Err(());
    }
    let (proto, rest) = field(&line[PREFIX.len()..]);
    const PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];
    match (proto, rest) {
        // §2.1: after "UNKNOWN" the receiver ignores whatever comes before the CRLF and
        // uses the real connection endpoints. Here that is one space and anything that
        // is not CR or LF (the caller refuses those), or nothing.
        (b"UNKNOWN", _) => Ok(whole.then(|| ProxyInfo::local(ProxyVersion::V1))),
        (b"TCP4", Some(fields)) => addresses(fields, whole, text::ipv4, AddressFamily::Inet),
        (b"TCP6", Some(fields)) => addresses(fields, whole, text::ipv6, AddressFamily::Inet6),
        (_, None) if !whole && PROTOCOLS.iter().any(|p| p.starts_with(proto)) => Ok(None),
        _ => Err(()),
    }
}

/// `src-addr SP dst-addr SP src-port SP dst-port`: §2.1 "exactly one space", addresses
/// of the family the protocol word names ("TCP4" with IPv4 text, "TCP6" with IPv6 text).
fn addresses<A: Into<IpAddr>>(
    fields: &[u8],
    whole: bool,
    addr: fn(&[u8]) -> Field<A>,
    family: AddressFamily,
) -> Result<Option<ProxyInfo>, ()> {
    let (src_text, rest) = field(fields);
    let Some(rest) = rest else {
        return if whole { Err(()) } else { addr(src_text).map(|_| None) };
    };
    let src = addr(src_text)?.ok_or(())?;
    let (dst_text, rest) = field(rest);
    let Some(rest) = rest else {
        return if whole { Err(()) } else { addr(dst_text).map(|_| None) };
    };
    let dst = addr(dst_text)?.ok_or(())?;
    let (sport_text, rest) = field(rest);
    let Some(rest) = rest else {
        return if whole { Err(()) } else { text::port(sport_text).map(|_| None) };
    };
    let sport = text::port(sport_text)?.ok_or(())?;
    let (dport_text, rest) = field(rest);
    if rest.is_some() {
        // A sixth field (or a trailing space).
        return Err(());
    }
    let dport = text::port(dport_text)?;
    if !whole {
        return Ok(None);
    }
    let dport = dport.ok_or(())?;
    Ok(Some(ProxyInfo {
        version: ProxyVersion::V1,
        command: ProxyCommand::Proxy,
        family,
        transport: Transport::Stream,
        source: Some(SocketAddr::new(src.into(), sport)),
        destination: Some(SocketAddr::new(dst.into(), dport)),
        unix: None,
        tlvs: alloc::vec::Vec::new(),
    }))
}
