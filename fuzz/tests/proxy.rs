//! Fuzz target for the PROXY protocol parser (`ferrocorn_core::proxy::parse`), in every mode.
//!
//! Runs as an ordinary test (bolero feeds it a bounded number of random inputs);
//! `cargo bolero test proxy` (or cargo-fuzz through bolero) fuzzes it for real.
//!
//! The first input byte picks how the rest is used: as it is, behind a fixed preamble
//! (`PROXY TCP4 `, the v2 signature, ...), or to build a well-formed header (addresses,
//! TLVs, a correct CRC32C) followed by the remaining bytes, so that random inputs reach
//! the deep parts of the grammar and the `Complete` paths, not only the first-byte checks.
//!
//! Invariants, for `V1`, `V2` and `Auto` (and `Off`, which must refuse):
//! * no panic; an error is of the class of the mode (`InvalidProxyLine` for v1,
//!   `InvalidProxyHeader` for v2);
//! * `Complete { consumed }`: `0 < consumed <= input.len()`; the consumed prefix alone
//!   parses to the same value; every strict prefix of it is `Partial`;
//! * growing prefixes go `Partial`* then stay at one outcome: the same `Complete`, or an
//!   error of the same class (the answer does not depend on how the bytes were split).

use ferrocorn_core::RecvError;
use ferrocorn_core::config::ProxyMode;
use ferrocorn_core::proxy::{Parsed, ProxyInfo, parse};

const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The PROXY-command protocol bytes the spec lists, with their address-block lengths.
const PROTOCOLS: [(u8, usize); 7] =
    [(0x00, 0), (0x11, 12), (0x12, 12), (0x21, 36), (0x22, 36), (0x31, 216), (0x32, 216)];

/// CRC-32C, bit by bit (independent of the parser's table-driven one).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// A byte reader that yields zeros once the input runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// A well-formed v2 header built from fuzz bytes, then the bytes left over.
fn v2_from(input: &[u8]) -> Vec<u8> {
    let mut r = Bytes(input);
    let flags = r.byte();
    let (fam, addr_len) = PROTOCOLS[usize::from(r.byte()) % PROTOCOLS.len()];
    let local = flags & 0x01 != 0;
    let mut body = r.take(addr_len);
    let mut crc_at = None;
    let ntlv = r.byte() % 6;
    for i in 0..ntlv {
        if flags & 0x02 != 0 && i == flags % 4 && crc_at.is_none() {
            body.extend_from_slice(&[0x03, 0, 4]);
            crc_at = Some(16 + body.len());
            body.extend_from_slice(&[0; 4]);
            continue;
        }
        let kind = match r.byte() {
            // Keep the typed TLVs mostly valid: a CRC32C is added above, a UNIQUE_ID is
            // short, an SSL value gets its fixed part and well-formed sub-TLVs.
            0x03 => 0x04,
            k => k,
        };
        let value = if kind == 0x20 {
            let mut v = r.take(5);
            for _ in 0..r.byte() % 4 {
                let sub = r.byte();
                let len = usize::from(r.byte() % 16);
                v.extend_from_slice(&[sub, 0, len as u8]);
                v.extend(r.take(len));
            }
            v
        } else {
            let len = usize::from(r.byte() % 40);
            r.take(len)
        };
        body.push(kind);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend(value);
    }
    let mut out = SIGNATURE.to_vec();
    out.push(if local { 0x20 } else { 0x21 });
    out.push(if local { flags } else { fam });
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend(body);
    if let Some(at) = crc_at {
        let sum = crc32c(&out);
        out[at..at + 4].copy_from_slice(&sum.to_be_bytes());
    }
    out.extend_from_slice(r.0);
    out
}

/// A well-formed TCP4 line built from fuzz bytes, then the bytes left over.
fn v1_from(input: &[u8]) -> Vec<u8> {
    let mut r = Bytes(input);
    let ip = |r: &mut Bytes<'_>| format!("{}.{}.{}.{}", r.byte(), r.byte(), r.byte(), r.byte());
    let port = |r: &mut Bytes<'_>| u16::from_be_bytes([r.byte(), r.byte()]);
    let line =
        format!("PROXY TCP4 {} {} {} {}\r\n", ip(&mut r), ip(&mut r), port(&mut r), port(&mut r));
    let mut out = line.into_bytes();
    out.extend_from_slice(r.0);
    out
}

/// What the parser is given for a fuzz input.
fn shape(input: &[u8]) -> Vec<u8> {
    let Some((&pick, rest)) = input.split_first() else { return Vec::new() };
    let behind = |preamble: &[u8]| [preamble, rest].concat();
    match pick % 10 {
        0 | 1 => rest.to_vec(),
        2 => behind(b"PROXY "),
        3 => behind(b"PROXY TCP4 "),
        4 => behind(b"PROXY TCP6 "),
        5 => v1_from(rest),
        6 => behind(&SIGNATURE),
        7 => {
            // The fixed part of a v2 PROXY header whose length covers all the rest.
            let mut out = SIGNATURE.to_vec();
            let (fam, _) =
                PROTOCOLS[usize::from(rest.first().copied().unwrap_or(0)) % PROTOCOLS.len()];
            out.extend_from_slice(&[0x21, fam]);
            out.extend_from_slice(&(rest.len().min(0xFFFF) as u16).to_be_bytes());
            out.extend_from_slice(rest);
            out
        }
        _ => v2_from(rest),
    }
}

fn class(e: &RecvError) -> &'static str {
    e.gunicorn_class()
}

/// The prefix lengths to check in `0..=n`: all of the first 256, the last 64, and a
/// stride through the middle (so a 4 KB input costs a few hundred parses, not 4096).
fn cuts(n: usize) -> impl Iterator<Item = usize> {
    let stride = (n / 64).max(1);
    (0..=n).filter(move |&k| k <= 256 || k + 64 >= n || k % stride == 0)
}

fn check_mode(buf: &[u8], mode: ProxyMode) {
    let whole = parse(buf, mode);
    if let Err(e) = &whole {
        let ok = match mode {
            ProxyMode::V1 => matches!(e, RecvError::InvalidProxyLine(_)),
            ProxyMode::V2 => matches!(e, RecvError::InvalidProxyHeader(_)),
            _ => matches!(e, RecvError::InvalidProxyLine(_) | RecvError::InvalidProxyHeader(_)),
        };
        assert!(ok, "{mode:?}: error of the wrong class: {e:?}");
    }
    if let Ok(Parsed::Complete { value, consumed }) = &whole {
        assert!(
            *consumed > 0 && *consumed <= buf.len(),
            "{mode:?}: consumed {consumed} of {}",
            buf.len()
        );
        let alone = parse(&buf[..*consumed], mode);
        assert_eq!(alone, whole, "{mode:?}: the consumed prefix alone parses differently");
        check_value(value);
    }
    // Growing prefixes: Partial, then one settled outcome.
    let mut settled: Option<Result<Parsed<ProxyInfo>, RecvError>> = None;
    for k in cuts(buf.len()) {
        let got = parse(&buf[..k], mode);
        match (&settled, &got) {
            (None, Ok(Parsed::Partial)) => {}
            (None, _) => settled = Some(got),
            (Some(Ok(done)), _) => {
                assert_eq!(
                    &got,
                    &Ok(done.clone()),
                    "{mode:?}: prefix {k} changed a complete header"
                )
            }
            (Some(Err(e)), Err(g)) => assert_eq!(class(e), class(g), "{mode:?}: prefix {k}"),
            (Some(Err(e)), _) => panic!("{mode:?}: prefix {k} gives {got:?} after the error {e:?}"),
        }
    }
    match (&settled, &whole) {
        (None, Ok(Parsed::Partial)) => {}
        (Some(Err(e)), Err(w)) => assert_eq!(class(e), class(w)),
        (Some(s), w) => assert_eq!(s, w, "{mode:?}: the whole input disagrees with its prefixes"),
        (None, w) => panic!("{mode:?}: every prefix is Partial but the whole gives {w:?}"),
    }
}

/// Internal consistency of a parsed header.
fn check_value(info: &ProxyInfo) {
    use ferrocorn_core::proxy::{AddressFamily, ProxyCommand};
    match (info.command, info.family) {
        (ProxyCommand::Local, _) | (_, AddressFamily::Unspec) => {
            assert!(info.source.is_none() && info.destination.is_none() && info.unix.is_none());
        }
        (_, AddressFamily::Unix) => assert!(info.source.is_none() && info.unix.is_some()),
        (_, AddressFamily::Inet) => {
            assert!(
                info.source.is_some_and(|a| a.is_ipv4())
                    && info.destination.is_some_and(|a| a.is_ipv4())
            )
        }
        (_, AddressFamily::Inet6) => {
            assert!(
                info.source.is_some_and(|a| a.is_ipv6())
                    && info.destination.is_some_and(|a| a.is_ipv6())
            )
        }
    }
    if let Some(id) = info.unique_id() {
        assert!(id.len() <= 128);
    }
    if info.tlv(0x20).is_some() {
        assert!(info.ssl().is_some(), "an SSL TLV was accepted that its view cannot read");
    }
    let label = info.proxy_protocol_label();
    assert!(
        ["TCP4", "TCP6", "UDP4", "UDP6", "UNIX", "LOCAL", "UNSPEC", "UNKNOWN"].contains(&label)
    );
}

#[test]
fn proxy() {
    let check = |input: &[u8]| {
        let buf = shape(input);
        assert!(parse(&buf, ProxyMode::Off).is_err());
        for mode in [ProxyMode::V1, ProxyMode::V2, ProxyMode::Auto] {
            check_mode(&buf, mode);
        }
    };
    // Every input of the regression corpus, whatever bolero's time budget leaves.
    if !cfg!(fuzzing) {
        assert!(
            ferrocorn_fuzz::replay_corpus("proxy", &check) > 0,
            "the regression corpus is empty"
        );
    }
    bolero::check!().with_max_len(4096).for_each(check);
}

/// The shapes do produce whole headers (else the invariants above would be checked on
/// errors only).
#[test]
fn shapes_reach_complete_headers() {
    // pick 8 (built v2), flags, protocol index 1 (TCP4), 12 address bytes, TLV count, TLVs.
    let mut input = vec![8, 0x00, 1, 10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0, 80];
    input.extend_from_slice(&[2, 0x01, 2, b'h', b'2', 0xE0, 0]);
    let v2 = shape(&input);
    let Ok(Parsed::Complete { value, .. }) = parse(&v2, ProxyMode::V2) else {
        panic!("{:?}", parse(&v2, ProxyMode::V2))
    };
    assert_eq!(value.source, Some("10.0.0.1:8080".parse().unwrap()));
    assert_eq!(value.alpn(), Some(&b"h2"[..]));
    // flags 0x02: a CRC32C TLV as the third of three.
    let mut input = vec![8, 0x02, 1, 10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0, 80, 3];
    input.extend_from_slice(&[0x01, 2, b'h', b'2', 0xE0, 0]);
    let crc = shape(&input);
    let Ok(Parsed::Complete { value, .. }) = parse(&crc, ProxyMode::Auto) else {
        panic!("{:?}", parse(&crc, ProxyMode::Auto))
    };
    assert!(value.tlv(0x03).is_some());
    let v1 = shape(&[5, 10, 0, 0, 1, 10, 0, 0, 2, 0x1F, 0x90, 0, 80, b'G']);
    let Ok(Parsed::Complete { value, consumed }) = parse(&v1, ProxyMode::V1) else { panic!() };
    assert_eq!(consumed, v1.len() - 1);
    assert_eq!(value.source, Some("10.0.0.1:8080".parse().unwrap()));
}
