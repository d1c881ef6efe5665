//! Table tests and properties of the PROXY parser.

use std::format;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::crc32c::crc32c;
use super::*;
use crate::config::ProxyMode;

// ---------------------------------------------------------------------------------------
// Helpers

fn complete(buf: &[u8], mode: ProxyMode) -> (ProxyInfo, usize) {
    match parse(buf, mode) {
        Ok(Parsed::Complete { value, consumed }) => (value, consumed),
        other => {
            panic!("{:?}: expected a whole header, got {other:?}", String::from_utf8_lossy(buf))
        }
    }
}

fn is_line_error(r: &Result<Parsed<ProxyInfo>, RecvError>) -> bool {
    matches!(r, Err(RecvError::InvalidProxyLine(_)))
}

fn is_header_error(r: &Result<Parsed<ProxyInfo>, RecvError>) -> bool {
    matches!(r, Err(RecvError::InvalidProxyHeader(_)))
}

/// The v2 error's reason text.
fn v2_reason(buf: &[u8]) -> String {
    match parse(buf, ProxyMode::V2) {
        Err(RecvError::InvalidProxyHeader(d)) => d.as_str().into(),
        other => panic!("expected a v2 error, got {other:?}"),
    }
}

/// Every strict prefix of the header is `Partial`, in `mode` and under `Auto`.
fn assert_prefixes_partial(buf: &[u8], consumed: usize, mode: ProxyMode) {
    for cut in 0..consumed {
        for m in [mode, ProxyMode::Auto] {
            assert_eq!(
                parse(&buf[..cut], m),
                Ok(Parsed::Partial),
                "cut at {cut} of {:?} ({m:?})",
                String::from_utf8_lossy(buf)
            );
        }
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn inet_block(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&src.ip().octets());
    b.extend_from_slice(&dst.ip().octets());
    b.extend_from_slice(&src.port().to_be_bytes());
    b.extend_from_slice(&dst.port().to_be_bytes());
    b
}

fn inet6_block(src: SocketAddrV6, dst: SocketAddrV6) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&src.ip().octets());
    b.extend_from_slice(&dst.ip().octets());
    b.extend_from_slice(&src.port().to_be_bytes());
    b.extend_from_slice(&dst.port().to_be_bytes());
    b
}

fn unix_block(src: &[u8], dst: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 216];
    b[..src.len()].copy_from_slice(src);
    b[108..108 + dst.len()].copy_from_slice(dst);
    b
}

fn tlv_bytes(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(&(value.len() as u16).to_be_bytes());
    b.extend_from_slice(value);
    b
}

/// A v2 header: signature, `ver_cmd`, `fam`, the length of what follows, the address
/// block and the TLVs. With `crc`, a CRC32C TLV goes first (before `tlvs`) or last, and
/// is filled with the right checksum.
fn v2(ver_cmd: u8, fam: u8, block: &[u8], tlvs: &[(u8, &[u8])], crc: Option<bool>) -> Vec<u8> {
    let mut body = block.to_vec();
    let mut crc_at = None;
    if crc == Some(true) {
        crc_at = Some(16 + body.len() + 3);
        body.extend(tlv_bytes(tlv::CRC32C, &[0; 4]));
    }
    for (kind, value) in tlvs {
        body.extend(tlv_bytes(*kind, value));
    }
    if crc == Some(false) {
        crc_at = Some(16 + body.len() + 3);
        body.extend(tlv_bytes(tlv::CRC32C, &[0; 4]));
    }
    let mut out = v2::SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend(body);
    if let Some(at) = crc_at {
        let sum = crc32c(&out);
        out[at..at + 4].copy_from_slice(&sum.to_be_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------
// v1

#[test]
fn v1_tcp4() {
    let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    let mut buf = line.to_vec();
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let (info, consumed) = complete(&buf, ProxyMode::V1);
    assert_eq!(consumed, line.len());
    assert_eq!(info.version, ProxyVersion::V1);
    assert_eq!(info.command, ProxyCommand::Proxy);
    assert_eq!(info.family, AddressFamily::Inet);
    assert_eq!(info.transport, Transport::Stream);
    assert_eq!(info.source, Some(sa("192.168.0.1:56324")));
    assert_eq!(info.destination, Some(sa("192.168.0.11:443")));
    assert_eq!(info.unix, None);
    assert!(info.tlvs.is_empty());
    assert_eq!(info.proxy_protocol_label(), "TCP4");
    assert_eq!(complete(&buf, ProxyMode::Auto), (info, consumed));
    assert_prefixes_partial(&buf, consumed, ProxyMode::V1);
    // Extremes of the grammar.
    let (info, _) = complete(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", ProxyMode::V1);
    assert_eq!(info.source, Some(sa("0.0.0.0:0")));
    assert_eq!(info.destination, Some(sa("255.255.255.255:65535")));
}

#[test]
fn v1_tcp6() {
    let line = b"PROXY TCP6 2001:DB8::1 ::ffff:10.0.0.1 41234 8080\r\n";
    let (info, consumed) = complete(line, ProxyMode::V1);
    assert_eq!(consumed, line.len());
    assert_eq!(info.family, AddressFamily::Inet6);
    assert_eq!(info.transport, Transport::Stream);
    assert_eq!(info.source, Some(sa("[2001:db8::1]:41234")));
    assert_eq!(info.destination, Some(sa("[::ffff:10.0.0.1]:8080")));
    assert_eq!(info.proxy_protocol_label(), "TCP6");
    assert_prefixes_partial(line, consumed, ProxyMode::V1);
    // The longest TCP6 line: 104 bytes.
    let longest =
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(longest.len(), 104);
    assert_eq!(complete(longest, ProxyMode::V1).1, 104);
}

#[test]
fn v1_unknown() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UNKNOWN anything at all, \x01\xff not parsed\r\n",
        // The worst case of §2.1: exactly 107 bytes.
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    ] {
        let mut buf = line.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        let (info, consumed) = complete(&buf, ProxyMode::V1);
        assert_eq!(consumed, line.len());
        assert_eq!(info.command, ProxyCommand::Local);
        assert_eq!(info.family, AddressFamily::Unspec);
        assert_eq!(info.transport, Transport::Unspec);
        assert_eq!((info.source, info.destination), (None, None));
        assert_eq!(info.proxy_protocol_label(), "UNKNOWN");
        assert_prefixes_partial(&buf, consumed, ProxyMode::V1);
    }
}

#[test]
fn v1_invalid_lines() {
    // Each line breaks one rule of §2.1; the valid line they derive from parses.
    let good = "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443\r\n";
    complete(good.as_bytes(), ProxyMode::V1);
    let bad = [
        // exactly one space between fields
        "PROXY TCP4  192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY  TCP4 192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234  443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443 \r\n",
        " PROXY TCP4 192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY\tTCP4 192.168.0.1 192.168.0.11 41234 443\r\n",
        // ports: decimal, no leading zero, no sign, no `_`, at most 65535
        "PROXY TCP4 192.168.0.1 192.168.0.11 041234 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 +41234 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41_234 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 0443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 -443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 0x1bb\r\n",
        // IPv4 dotted quad without leading zeros
        "PROXY TCP4 192.168.00.1 192.168.0.11 41234 443\r\n",
        "PROXY TCP4 010.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.256 41234 443\r\n",
        "PROXY TCP4 192.168.1 192.168.0.11 41234 443\r\n",
        // the family must match the protocol word
        "PROXY TCP4 ::1 192.168.0.11 41234 443\r\n",
        "PROXY TCP6 192.168.0.1 ::1 41234 443\r\n",
        "PROXY TCP6 ::1 192.168.0.11 41234 443\r\n",
        // no zone ids, no brackets
        "PROXY TCP6 fe80::1%eth0 ::1 41234 443\r\n",
        "PROXY TCP6 [::1] ::1 41234 443\r\n",
        // the protocol word, case-sensitive
        "PROXY tcp4 192.168.0.1 192.168.0.11 41234 443\r\n",
        "proxy TCP4 192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY TCP5 192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY UDP4 192.168.0.1 192.168.0.11 41234 443\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY unknown\r\n",
        "PROXY\r\n",
        "PROXY \r\n",
        // missing and extra fields
        "PROXY TCP4\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443 80\r\n",
        // lone CR, bare LF
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443\r\r\n",
        "PROXY TCP4 192.168.0.1\r 192.168.0.11 41234 443\r\n",
        "PROXY UNKNOWN \n\r\n",
        "PROXY UNKNOWN a\rb\r\n",
        "\r\n",
        "GET / HTTP/1.1\r\n",
    ];
    for line in bad {
        let r = parse(line.as_bytes(), ProxyMode::V1);
        assert!(is_line_error(&r), "{line:?}: {r:?}");
        if !line.starts_with('\r') {
            let r = parse(line.as_bytes(), ProxyMode::Auto);
            assert!(is_line_error(&r), "{line:?} (auto): {r:?}");
        }
    }
}

#[test]
fn v1_errors_as_soon_as_no_valid_line_can_follow() {
    // Invalid without waiting for the CRLF.
    for prefix in [
        "PROXY TCP4 192.168.0.1 192.168.0.11 041",
        "PROXY TCP4 192.168.0.1 192.168.0.11 +",
        "PROXY TCP4 192.168.0.1 192.168.0.11 65536",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443 ",
        "PROXY TCP4 00",
        "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 ::",
        "PROXY TCP4  ",
        "PROXY tcp",
        "PROXY TCP4\r",
        "PROXY UNKNOWN\n",
        "PROXY UNKNOWNX",
        "PROXY TCP6 1:::",
        "PROXY TCP6 fe80::1%",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r",
        "PROXX",
        "G",
    ] {
        let r = parse(prefix.as_bytes(), ProxyMode::V1);
        assert!(is_line_error(&r), "{prefix:?}: {r:?}");
    }
    // Still a valid beginning.
    for prefix in [
        "",
        "P",
        "PROXY ",
        "PROXY TCP",
        "PROXY UNKNOWN",
        "PROXY UNKNOWN ",
        "PROXY UNKNOWN\r",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443",
        "PROXY TCP4 192.168.0.1 192.168.0.11 41234 443\r",
        "PROXY TCP4 192.168.0.1 192.168.0.11 0",
        "PROXY TCP6 ::",
        "PROXY TCP6 ::ffff:1.2.",
    ] {
        assert_eq!(parse(prefix.as_bytes(), ProxyMode::V1), Ok(Parsed::Partial), "{prefix:?}");
    }
}

#[test]
fn v1_crlf_within_107_bytes() {
    let unknown = |len: usize, end: &[u8]| {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(len, b'x');
        line.extend_from_slice(end);
        parse(&line, ProxyMode::V1)
    };
    // 105 bytes and CRLF: 107 in all, the most there may be.
    assert_eq!(
        unknown(105, b"\r\n").map(|p| matches!(p, Parsed::Complete { consumed: 107, .. })),
        Ok(true)
    );
    assert_eq!(unknown(105, b""), Ok(Parsed::Partial));
    assert_eq!(unknown(105, b"\r"), Ok(Parsed::Partial));
    // 106 bytes without a CR: the CRLF can no longer end within 107 bytes.
    assert!(is_line_error(&unknown(106, b"")));
    assert!(is_line_error(&unknown(106, b"\r")));
    assert!(is_line_error(&unknown(106, b"\r\n")));
    assert!(is_line_error(&unknown(107, b"")));
    assert!(is_line_error(&unknown(200, b"\r\n")));
    // A TCP4 line padded out with bytes that are not a valid continuation is refused
    // at once, long before the limit.
    assert!(is_line_error(&parse(
        b"PROXY TCP4 192.168.0.1 192.168.0.11 41234 443x",
        ProxyMode::V1
    )));
}

// ---------------------------------------------------------------------------------------
// v2

const SRC4: &str = "10.1.2.3:49152";
const DST4: &str = "192.0.2.7:443";

fn inet4() -> Vec<u8> {
    inet_block(SRC4.parse().unwrap(), DST4.parse().unwrap())
}

#[test]
fn v2_inet_stream() {
    let mut buf = v2(0x21, 0x11, &inet4(), &[], None);
    assert_eq!(buf.len(), 28);
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, 28);
    assert_eq!(info.version, ProxyVersion::V2);
    assert_eq!(info.command, ProxyCommand::Proxy);
    assert_eq!(info.family, AddressFamily::Inet);
    assert_eq!(info.transport, Transport::Stream);
    assert_eq!(info.source, Some(sa(SRC4)));
    assert_eq!(info.destination, Some(sa(DST4)));
    assert_eq!(info.proxy_protocol_label(), "TCP4");
    assert_eq!(complete(&buf, ProxyMode::Auto), (info, consumed));
    assert_prefixes_partial(&buf, consumed, ProxyMode::V2);
}

#[test]
fn v2_inet6_stream_and_dgram() {
    let src: SocketAddrV6 = "[2001:db8::1]:1234".parse().unwrap();
    let dst: SocketAddrV6 = "[2001:db8::2]:8443".parse().unwrap();
    let buf = v2(0x21, 0x21, &inet6_block(src, dst), &[], None);
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, 16 + 36);
    assert_eq!(info.family, AddressFamily::Inet6);
    assert_eq!(info.transport, Transport::Stream);
    assert_eq!(info.source, Some(SocketAddr::V6(src)));
    assert_eq!(info.destination, Some(SocketAddr::V6(dst)));
    assert_eq!(info.proxy_protocol_label(), "TCP6");
    assert_prefixes_partial(&buf, consumed, ProxyMode::V2);

    let (info, _) = complete(&v2(0x21, 0x22, &inet6_block(src, dst), &[], None), ProxyMode::V2);
    assert_eq!(info.transport, Transport::Dgram);
    assert_eq!(info.proxy_protocol_label(), "UDP6");
    let (info, _) = complete(&v2(0x21, 0x12, &inet4(), &[], None), ProxyMode::V2);
    assert_eq!(info.family, AddressFamily::Inet);
    assert_eq!(info.transport, Transport::Dgram);
    assert_eq!(info.source, Some(sa(SRC4)));
    assert_eq!(info.proxy_protocol_label(), "UDP4");
}

#[test]
fn v2_unix() {
    let buf = v2(0x21, 0x31, &unix_block(b"/run/client.sock", b"\0abstract"), &[], None);
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, 16 + 216);
    assert_eq!(info.family, AddressFamily::Unix);
    assert_eq!(info.transport, Transport::Stream);
    assert_eq!((info.source, info.destination), (None, None));
    assert_eq!(info.unix, Some((b"/run/client.sock".to_vec(), b"\0abstract".to_vec())));
    assert_eq!(info.proxy_protocol_label(), "UNIX");
    // A path ends at its first NUL; a full 108-byte path has none.
    let mut block = unix_block(b"/a\0junk", &[b'x'; 108]);
    block[108..].copy_from_slice(&[b'y'; 108]);
    let (info, _) = complete(&v2(0x21, 0x32, &block, &[], None), ProxyMode::V2);
    assert_eq!(info.transport, Transport::Dgram);
    assert_eq!(info.unix, Some((b"/a".to_vec(), vec![b'y'; 108])));
}

#[test]
fn v2_unspec_and_local() {
    // PROXY over AF_UNSPEC: no addresses, TLVs still read.
    let buf = v2(0x21, 0x00, &[], &[(tlv::AUTHORITY, b"example.com")], None);
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, buf.len());
    assert_eq!(
        (info.command, info.family, info.transport),
        (ProxyCommand::Proxy, AddressFamily::Unspec, Transport::Unspec)
    );
    assert_eq!((info.source, info.destination, info.unix.clone()), (None, None, None));
    assert_eq!(info.authority(), Some(&b"example.com"[..]));
    assert_eq!(info.proxy_protocol_label(), "UNSPEC");

    // LOCAL: the whole block is skipped, whatever the family byte says (§2.2).
    for fam in [0x00, 0x11, 0x21, 0xFF] {
        let mut buf = v2(0x20, fam, b"\x01\x02\x03\x04\x05", &[], None);
        let header_len = buf.len();
        buf.extend_from_slice(b"GET /");
        let (info, consumed) = complete(&buf, ProxyMode::V2);
        assert_eq!(consumed, header_len);
        assert_eq!(info, ProxyInfo::local(ProxyVersion::V2));
        assert_eq!(info.command, ProxyCommand::Local);
        assert_eq!((info.source, info.destination), (None, None));
        assert_eq!(info.proxy_protocol_label(), "LOCAL");
        assert_prefixes_partial(&buf, consumed, ProxyMode::V2);
    }
    // The usual health check: LOCAL, UNSPEC, nothing after.
    assert_eq!(complete(&v2(0x20, 0x00, &[], &[], None), ProxyMode::V2).1, 16);
}

#[test]
fn v2_bad_fixed_part() {
    let good = v2(0x21, 0x11, &inet4(), &[], None);
    let with = |at: usize, byte: u8| {
        let mut b = good.clone();
        b[at] = byte;
        b
    };
    // version must be 2
    for vc in [0x11, 0x31, 0x01, 0xF1] {
        assert_eq!(v2_reason(&with(12, vc)), "unsupported PROXY version");
        // ... known from the 13th byte on.
        assert!(is_header_error(&parse(&with(12, vc)[..13], ProxyMode::V2)));
    }
    // command 0 or 1
    for vc in [0x22, 0x2F] {
        assert_eq!(v2_reason(&with(12, vc)), "unsupported PROXY v2 command");
    }
    // family 0..=3
    for fam in [0x41, 0xF1] {
        assert_eq!(v2_reason(&with(13, fam)), "unsupported PROXY v2 address family");
        assert!(is_header_error(&parse(&with(13, fam)[..14], ProxyMode::V2)));
    }
    // transport 0..=2
    for fam in [0x13, 0x1F] {
        assert_eq!(v2_reason(&with(13, fam)), "unsupported PROXY v2 transport");
    }
    // only the listed pairs
    for fam in [0x10, 0x01, 0x02, 0x20, 0x30] {
        assert_eq!(v2_reason(&with(13, fam)), "unexpected PROXY v2 family and transport pair");
    }
    // the signature, byte by byte
    for at in 0..12 {
        let bad = with(at, good[at] ^ 0x20);
        assert_eq!(v2_reason(&bad), "bad PROXY v2 signature");
        assert!(is_header_error(&parse(&bad[..=at], ProxyMode::V2)));
    }
    // A v1 line under V2, a v2 header under V1.
    assert!(is_header_error(&parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyMode::V2)));
    assert!(is_line_error(&parse(&good, ProxyMode::V1)));
}

#[test]
fn v2_length_too_short_for_addresses() {
    for (fam, need) in
        [(0x11u8, 12usize), (0x12, 12), (0x21, 36), (0x22, 36), (0x31, 216), (0x32, 216)]
    {
        let short = v2(0x21, fam, &vec![0; need - 1], &[], None);
        assert_eq!(v2_reason(&short), "PROXY v2 header too short for its addresses", "{fam:#x}");
        // Known from the length field on, without waiting for the block.
        assert!(is_header_error(&parse(&short[..16], ProxyMode::V2)));
        assert_eq!(complete(&v2(0x21, fam, &vec![0; need], &[], None), ProxyMode::V2).1, 16 + need);
    }
}

#[test]
fn v2_truncated_tlv() {
    let mut block = inet4();
    // A TLV header cut short (2 bytes left in the block).
    block.extend_from_slice(&[tlv::NOOP, 0]);
    let buf = v2(0x21, 0x11, &block, &[], None);
    assert_eq!(v2_reason(&buf), "truncated TLV header");
    // A TLV whose value runs past the end of the header.
    let mut block = inet4();
    block.extend_from_slice(&[tlv::ALPN, 0, 5, b'h', b'2']);
    let buf = v2(0x21, 0x11, &block, &[], None);
    assert_eq!(v2_reason(&buf), "TLV longer than the header");
    // Known as soon as the TLV header arrives, before the rest of the block.
    let mut block = inet4();
    block.extend_from_slice(&[tlv::ALPN, 0, 200]);
    block.extend_from_slice(&[0; 100]);
    let buf = v2(0x21, 0x11, &block, &[], None);
    assert!(is_header_error(&parse(&buf[..16 + 12 + 3], ProxyMode::V2)));
    assert_eq!(parse(&buf[..16 + 12 + 2], ProxyMode::V2), Ok(Parsed::Partial));
}

#[test]
fn v2_tlvs_in_order() {
    let buf = v2(
        0x21,
        0x11,
        &inet4(),
        &[
            (tlv::NOOP, b""),
            (tlv::ALPN, b"h2"),
            (0xE0, b"custom"),
            (tlv::AUTHORITY, b"example.com"),
            (tlv::NETNS, b"blue"),
            (tlv::UNIQUE_ID, b"id-1"),
            (tlv::ALPN, b"second"),
        ],
        None,
    );
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, buf.len());
    let kinds: Vec<u8> = info.tlvs.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [tlv::NOOP, tlv::ALPN, 0xE0, tlv::AUTHORITY, tlv::NETNS, tlv::UNIQUE_ID, tlv::ALPN]
    );
    assert_eq!(info.alpn(), Some(&b"h2"[..]));
    assert_eq!(info.authority(), Some(&b"example.com"[..]));
    assert_eq!(info.netns(), Some(&b"blue"[..]));
    assert_eq!(info.unique_id(), Some(&b"id-1"[..]));
    assert_eq!(info.tlv(0xE0), Some(&b"custom"[..]));
    assert_eq!(info.ssl(), None);
    assert_prefixes_partial(&buf, consumed, ProxyMode::V2);
}

#[test]
fn v2_crc32c() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    for first in [true, false] {
        let buf = v2(0x21, 0x11, &inet4(), &[(tlv::ALPN, b"h2")], Some(first));
        let (info, consumed) = complete(&buf, ProxyMode::V2);
        assert_eq!(consumed, buf.len());
        let sent = info.tlv(tlv::CRC32C).unwrap();
        let mut zeroed = buf.clone();
        let at = if first { 16 + 12 + 3 } else { buf.len() - 4 };
        zeroed[at..at + 4].fill(0);
        assert_eq!(sent, crc32c(&zeroed).to_be_bytes());
        assert_prefixes_partial(&buf, consumed, ProxyMode::V2);
        // Any change to the header, checksum included, breaks it.
        for i in [16, 20, 27, at, at + 3, buf.len() - 1] {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert_eq!(v2_reason(&bad), "PROXY v2 CRC32C mismatch", "byte {i}");
        }
    }
    // A known header, checksum by hand: LOCAL would skip it, so PROXY over UNSPEC.
    let mut buf = v2::SIGNATURE.to_vec();
    buf.extend_from_slice(&[0x21, 0x00, 0x00, 0x07, tlv::CRC32C, 0x00, 0x04, 0, 0, 0, 0]);
    let sum = crc32c(&buf);
    buf[19..23].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(complete(&buf, ProxyMode::V2).1, 23);
    // The checksum is 4 bytes; one of them per header.
    let bad = v2(0x21, 0x11, &inet4(), &[(tlv::CRC32C, b"\0\0\0")], None);
    assert_eq!(v2_reason(&bad), "CRC32C TLV is not 4 bytes");
    let two = v2(0x21, 0x11, &inet4(), &[(tlv::CRC32C, b"\0\0\0\0")], Some(false));
    assert_eq!(v2_reason(&two), "more than one CRC32C TLV");
}

#[test]
fn v2_ssl() {
    let mut ssl = vec![tlv::CLIENT_SSL | tlv::CLIENT_CERT_CONN | tlv::CLIENT_CERT_SESS, 0, 0, 0, 0];
    ssl.extend(tlv_bytes(tlv::SSL_VERSION, b"TLSv1.3"));
    ssl.extend(tlv_bytes(tlv::SSL_CN, b"client.example"));
    ssl.extend(tlv_bytes(tlv::SSL_CIPHER, b"TLS_AES_128_GCM_SHA256"));
    ssl.extend(tlv_bytes(tlv::SSL_SIG_ALG, b"RSA-SHA256"));
    ssl.extend(tlv_bytes(tlv::SSL_KEY_ALG, b"RSA2048"));
    ssl.extend(tlv_bytes(0x2F, b""));
    let buf = v2(0x21, 0x11, &inet4(), &[(tlv::SSL, &ssl)], Some(false));
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, buf.len());
    let s = info.ssl().unwrap();
    assert!(s.client_ssl() && s.cert_conn() && s.cert_sess() && s.cert_verified());
    assert_eq!(s.verify, 0);
    assert_eq!(s.version(), Some(&b"TLSv1.3"[..]));
    assert_eq!(s.cn(), Some(&b"client.example"[..]));
    assert_eq!(s.cipher(), Some(&b"TLS_AES_128_GCM_SHA256"[..]));
    assert_eq!(s.sig_alg(), Some(&b"RSA-SHA256"[..]));
    assert_eq!(s.key_alg(), Some(&b"RSA2048"[..]));
    assert_eq!(
        s.sub_tlvs().map(|(k, _)| k).collect::<Vec<_>>(),
        [0x21, 0x22, 0x23, 0x24, 0x25, 0x2F]
    );
    assert_prefixes_partial(&buf, consumed, ProxyMode::V2);

    // TLS without a client certificate: verify non-zero, no sub-TLVs.
    let buf = v2(0x21, 0x11, &inet4(), &[(tlv::SSL, &[0x01, 0, 0, 0, 9])], None);
    let info = complete(&buf, ProxyMode::V2).0;
    let s = info.ssl().unwrap();
    assert!(s.client_ssl() && !s.cert_conn() && !s.cert_verified());
    assert_eq!((s.verify, s.cn()), (9, None));

    // Shorter than its fixed part; sub-TLVs that do not fit.
    let bad = v2(0x21, 0x11, &inet4(), &[(tlv::SSL, &[0x01, 0, 0, 0])], None);
    assert_eq!(v2_reason(&bad), "SSL TLV shorter than 5 bytes");
    let mut ssl = vec![0x01, 0, 0, 0, 0];
    ssl.extend_from_slice(&[tlv::SSL_CN, 0, 9, b'x']);
    let bad = v2(0x21, 0x11, &inet4(), &[(tlv::SSL, &ssl)], None);
    assert_eq!(v2_reason(&bad), "SSL sub-TLVs do not fit");
    let bad = v2(0x21, 0x11, &inet4(), &[(tlv::SSL, &[0x01, 0, 0, 0, 0, tlv::SSL_CN])], None);
    assert_eq!(v2_reason(&bad), "SSL sub-TLVs do not fit");
}

#[test]
fn v2_unique_id_limit() {
    let ok = v2(0x21, 0x11, &inet4(), &[(tlv::UNIQUE_ID, &[b'u'; 128])], None);
    assert_eq!(complete(&ok, ProxyMode::V2).0.unique_id(), Some(&[b'u'; 128][..]));
    let bad = v2(0x21, 0x11, &inet4(), &[(tlv::UNIQUE_ID, &[b'u'; 129])], None);
    assert_eq!(v2_reason(&bad), "UNIQUE_ID TLV longer than 128 bytes");
    // Refused from its length alone.
    assert!(is_header_error(&parse(&bad[..16 + 12 + 3], ProxyMode::V2)));
}

#[test]
fn v2_largest_header() {
    // 16 + 65535 bytes: PROXY over UNSPEC with one NOOP filling the block.
    let buf = v2(0x21, 0x00, &[], &[(tlv::NOOP, &vec![0xAB; 65535 - 3])], None);
    assert_eq!(buf.len(), 16 + 65535);
    let (info, consumed) = complete(&buf, ProxyMode::V2);
    assert_eq!(consumed, 16 + 65535);
    assert_eq!(info.tlvs.len(), 1);
    assert_eq!(parse(&buf[..buf.len() - 1], ProxyMode::V2), Ok(Parsed::Partial));
}

#[test]
fn modes() {
    let line = b"PROXY UNKNOWN\r\n";
    let header = v2(0x20, 0x00, &[], &[], None);
    assert!(complete(line, ProxyMode::Auto).0.version == ProxyVersion::V1);
    assert!(complete(&header, ProxyMode::Auto).0.version == ProxyVersion::V2);
    assert_eq!(parse(b"", ProxyMode::Auto), Ok(Parsed::Partial));
    assert_eq!(parse(b"", ProxyMode::V1), Ok(Parsed::Partial));
    assert_eq!(parse(b"", ProxyMode::V2), Ok(Parsed::Partial));
    // No header: never taken for "no PROXY protocol" (§2).
    assert!(is_line_error(&parse(b"GET / HTTP/1.1\r\n\r\n", ProxyMode::Auto)));
    assert!(is_line_error(&parse(b"G", ProxyMode::Auto)));
    assert!(is_line_error(&parse(b"\x16\x03\x01", ProxyMode::Auto)));
    assert!(is_header_error(&parse(b"GET / HTTP/1.1\r\n\r\n", ProxyMode::V2)));
    // Off: the caller must not ask.
    assert!(parse(line, ProxyMode::Off).is_err());
    assert!(parse(b"", ProxyMode::Off).is_err());
}

// ---------------------------------------------------------------------------------------
// Properties

/// How a generated header should come out.
#[derive(Clone, Debug)]
struct Expect {
    command: ProxyCommand,
    family: AddressFamily,
    transport: Transport,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
    unix: Option<(Vec<u8>, Vec<u8>)>,
    tlvs: Vec<(u8, Vec<u8>)>,
}

/// Formats an IPv6 address in one of several valid styles.
fn ipv6_text(addr: Ipv6Addr, style: u8) -> String {
    let segs = addr.segments();
    let join = |f: &dyn Fn(u16) -> String| segs.iter().map(|&g| f(g)).collect::<Vec<_>>().join(":");
    match style % 4 {
        0 => addr.to_string(),
        1 => join(&|g| format!("{g:x}")),
        2 => join(&|g| format!("{g:04x}")),
        _ => addr.to_string().to_uppercase(),
    }
}

fn v1_header() -> impl Strategy<Value = (Vec<u8>, Expect)> {
    let tcp4 = (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>()).prop_map(
        |(s, d, sp, dp)| {
            let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            let line = format!("PROXY TCP4 {s} {d} {sp} {dp}\r\n");
            let e = Expect {
                command: ProxyCommand::Proxy,
                family: AddressFamily::Inet,
                transport: Transport::Stream,
                source: Some(SocketAddr::new(s.into(), sp)),
                destination: Some(SocketAddr::new(d.into(), dp)),
                unix: None,
                tlvs: vec![],
            };
            (line.into_bytes(), e)
        },
    );
    let v6addr = prop_oneof![
        any::<[u16; 8]>().prop_map(Ipv6Addr::from),
        // Runs of zeros, so `::` turns up in all places.
        (any::<[bool; 8]>(), any::<[u16; 8]>()).prop_map(|(z, g)| Ipv6Addr::from(
            core::array::from_fn::<u16, 8, _>(|i| if z[i] { 0 } else { g[i] })
        )),
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_ipv6_mapped()),
    ];
    let tcp6 = (v6addr.clone(), v6addr, any::<u16>(), any::<u16>(), any::<u8>(), any::<u8>())
        .prop_map(|(s, d, sp, dp, ss, ds)| {
            let line =
                format!("PROXY TCP6 {} {} {sp} {dp}\r\n", ipv6_text(s, ss), ipv6_text(d, ds));
            let e = Expect {
                command: ProxyCommand::Proxy,
                family: AddressFamily::Inet6,
                transport: Transport::Stream,
                source: Some(SocketAddr::new(s.into(), sp)),
                destination: Some(SocketAddr::new(d.into(), dp)),
                unix: None,
                tlvs: vec![],
            };
            (line.into_bytes(), e)
        });
    let junk = proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..=91,
    );
    let unknown = proptest::option::of(junk).prop_map(|junk| {
        let mut line = b"PROXY UNKNOWN".to_vec();
        if let Some(j) = junk {
            line.push(b' ');
            line.extend(j);
        }
        line.extend_from_slice(b"\r\n");
        let e = Expect {
            command: ProxyCommand::Local,
            family: AddressFamily::Unspec,
            transport: Transport::Unspec,
            source: None,
            destination: None,
            unix: None,
            tlvs: vec![],
        };
        (line, e)
    });
    prop_oneof![3 => tcp4, 3 => tcp6, 1 => unknown]
}

fn tlv_list() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    let value = || proptest::collection::vec(any::<u8>(), 0..24);
    let plain = (
        prop_oneof![
            Just(tlv::ALPN),
            Just(tlv::AUTHORITY),
            Just(tlv::NOOP),
            Just(tlv::NETNS),
            0x06u8..=0x1F,
            0x26u8..=0xFF
        ],
        value(),
    );
    let unique = proptest::collection::vec(any::<u8>(), 0..=128).prop_map(|v| (tlv::UNIQUE_ID, v));
    let ssl =
        (any::<u8>(), any::<u32>(), proptest::collection::vec((0x21u8..=0x25, value()), 0..5))
            .prop_map(|(c, v, subs)| {
                let mut bytes = vec![c];
                bytes.extend_from_slice(&v.to_be_bytes());
                for (k, s) in subs {
                    bytes.extend(tlv_bytes(k, &s));
                }
                (tlv::SSL, bytes)
            });
    proptest::collection::vec(prop_oneof![6 => plain, 1 => unique, 1 => ssl], 0..6)
}

fn v2_header() -> impl Strategy<Value = (Vec<u8>, Expect)> {
    let unix_path = proptest::collection::vec(1u8..=255, 0..=108);
    let addrs = prop_oneof![
        Just((0x00u8, vec![], None, None, None)),
        (any::<bool>(), any::<SocketAddrV4>(), any::<SocketAddrV4>()).prop_map(|(dgram, s, d)| {
            (
                if dgram { 0x12 } else { 0x11 },
                inet_block(s, d),
                Some(SocketAddr::V4(s)),
                Some(SocketAddr::V4(d)),
                None,
            )
        }),
        (any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(
            |(dgram, s, d, sp, dp)| {
                let s = SocketAddrV6::new(s.into(), sp, 0, 0);
                let d = SocketAddrV6::new(d.into(), dp, 0, 0);
                (
                    if dgram { 0x22 } else { 0x21 },
                    inet6_block(s, d),
                    Some(SocketAddr::V6(s)),
                    Some(SocketAddr::V6(d)),
                    None,
                )
            }
        ),
        (any::<bool>(), unix_path.clone(), unix_path).prop_map(|(dgram, s, d)| {
            (if dgram { 0x32 } else { 0x31 }, unix_block(&s, &d), None, None, Some((s, d)))
        }),
    ];
    (
        addrs,
        tlv_list(),
        proptest::option::of(any::<bool>()),
        proptest::bool::weighted(0.1),
        any::<u8>(),
    )
        .prop_map(|((fam, block, source, destination, unix), tlvs, crc, local, local_fam)| {
            if local {
                // LOCAL: the block is skipped whatever it holds.
                let buf = v2(0x20, local_fam, &block, &[], None);
                return (
                    buf,
                    Expect {
                        command: ProxyCommand::Local,
                        family: AddressFamily::Unspec,
                        transport: Transport::Unspec,
                        source: None,
                        destination: None,
                        unix: None,
                        tlvs: vec![],
                    },
                );
            }
            let refs: Vec<(u8, &[u8])> = tlvs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            let buf = v2(0x21, fam, &block, &refs, crc);
            // The TLVs the parser should report, the CRC one included where it was put.
            let mut want = tlvs.clone();
            if let Some(first) = crc {
                let at = if first { 16 + block.len() + 3 } else { buf.len() - 4 };
                let crc_tlv = (tlv::CRC32C, buf[at..at + 4].to_vec());
                if first { want.insert(0, crc_tlv) } else { want.push(crc_tlv) }
            }
            let (family, transport) = match fam {
                0x00 => (AddressFamily::Unspec, Transport::Unspec),
                0x11 => (AddressFamily::Inet, Transport::Stream),
                0x12 => (AddressFamily::Inet, Transport::Dgram),
                0x21 => (AddressFamily::Inet6, Transport::Stream),
                0x22 => (AddressFamily::Inet6, Transport::Dgram),
                0x31 => (AddressFamily::Unix, Transport::Stream),
                _ => (AddressFamily::Unix, Transport::Dgram),
            };
            (
                buf,
                Expect {
                    command: ProxyCommand::Proxy,
                    family,
                    transport,
                    source,
                    destination,
                    unix,
                    tlvs: want,
                },
            )
        })
}

fn check_expect(info: &ProxyInfo, want: &Expect) -> Result<(), TestCaseError> {
    prop_assert_eq!(info.command, want.command);
    prop_assert_eq!(info.family, want.family);
    prop_assert_eq!(info.transport, want.transport);
    prop_assert_eq!(info.source, want.source);
    prop_assert_eq!(info.destination, want.destination);
    prop_assert_eq!(&info.unix, &want.unix);
    let got: Vec<(u8, Vec<u8>)> = info.tlvs.iter().map(|t| (t.kind, t.value.clone())).collect();
    prop_assert_eq!(&got, &want.tlvs);
    Ok(())
}

/// Every split point: `Partial` before the end of the header, the same `Complete` at and
/// after it, whatever follows.
fn check_splits(
    buf: &[u8],
    header_len: usize,
    mode: ProxyMode,
) -> Result<ProxyInfo, TestCaseError> {
    let whole = parse(buf, mode);
    let Ok(Parsed::Complete { value, consumed }) = whole else {
        return Err(TestCaseError::fail(format!("not parsed whole: {whole:?}")));
    };
    prop_assert_eq!(consumed, header_len);
    for cut in 0..=buf.len() {
        let got = parse(&buf[..cut], mode);
        if cut < header_len {
            prop_assert_eq!(got, Ok(Parsed::Partial), "cut {}", cut);
        } else {
            prop_assert_eq!(
                got,
                Ok(Parsed::Complete { value: value.clone(), consumed }),
                "cut {}",
                cut
            );
        }
    }
    Ok(value)
}

/// Feeds a result sequence for growing prefixes: once an error, always the same class of
/// error; once complete, always the same value; `Partial` only before either.
fn check_monotone(buf: &[u8], mode: ProxyMode) -> Result<(), TestCaseError> {
    let mut settled: Option<Result<Parsed<ProxyInfo>, RecvError>> = None;
    for cut in 0..=buf.len() {
        let got = parse(&buf[..cut], mode);
        match (&settled, &got) {
            (None, Ok(Parsed::Partial)) => {}
            (None, _) => settled = Some(got),
            (Some(Ok(done)), _) => prop_assert_eq!(&got, &Ok(done.clone()), "cut {}", cut),
            (Some(Err(e)), Err(g)) => {
                prop_assert_eq!(e.gunicorn_class(), g.gunicorn_class(), "cut {}", cut)
            }
            (Some(Err(e)), _) => prop_assert!(false, "cut {}: {:?} after {:?}", cut, got, e),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn v1_splits_and_round_trip((line, want) in v1_header(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut buf = line.clone();
        buf.extend(&tail);
        for mode in [ProxyMode::V1, ProxyMode::Auto] {
            let info = check_splits(&buf, line.len(), mode)?;
            prop_assert_eq!(info.version, ProxyVersion::V1);
            check_expect(&info, &want)?;
        }
        prop_assert!(is_header_error(&parse(&buf, ProxyMode::V2)));
    }

    #[test]
    fn v2_splits_and_round_trip((header, want) in v2_header(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut buf = header.clone();
        buf.extend(&tail);
        for mode in [ProxyMode::V2, ProxyMode::Auto] {
            let info = check_splits(&buf, header.len(), mode)?;
            prop_assert_eq!(info.version, ProxyVersion::V2);
            check_expect(&info, &want)?;
        }
        prop_assert!(is_line_error(&parse(&buf, ProxyMode::V1)));
    }

    /// Damaged headers: one byte changed, or cut and spliced. Whatever the outcome, it
    /// does not depend on how the bytes were split.
    #[test]
    fn damaged_headers_are_judged_alike_at_every_split(
        (header, _) in prop_oneof![v1_header(), v2_header()],
        tail in proptest::collection::vec(any::<u8>(), 0..8),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = header.clone();
        buf.extend(&tail);
        let i = at.index(buf.len());
        buf[i] = byte;
        for mode in [ProxyMode::V1, ProxyMode::V2, ProxyMode::Auto] {
            check_monotone(&buf, mode)?;
        }
        let mut spliced = header.clone();
        spliced.truncate(cut.index(header.len() + 1));
        spliced.extend(&header[..]);
        for mode in [ProxyMode::V1, ProxyMode::V2, ProxyMode::Auto] {
            check_monotone(&spliced, mode)?;
        }
    }
}
