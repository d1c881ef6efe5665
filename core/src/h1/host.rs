//! `Host` values and authorities: `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2).

use core::net::Ipv6Addr;

const fn reg_name_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    t
}

static REG_NAME: [bool; 256] = reg_name_table();

/// `unreserved / sub-delims` of RFC 3986 (the bytes of a reg-name besides pct-encoded).
#[inline]
fn is_reg_name_byte(b: u8) -> bool {
    REG_NAME[usize::from(b)]
}

fn is_reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                if i + 2 >= s.len() {
                    return false;
                }
                if !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
            }
            b if is_reg_name_byte(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`.
fn is_ip_literal(s: &[u8]) -> bool {
    let [b'[', inner @ .., b']'] = s else { return false };
    if let [b'v' | b'V', rest @ ..] = inner {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|&b| b == b'.') else { return false };
        let (ver, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !ver.is_empty()
            && ver.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail.iter().all(|&b| b == b':' || is_reg_name_byte(b));
    }
    core::str::from_utf8(inner).is_ok_and(|t| t.parse::<Ipv6Addr>().is_ok())
}

/// Splits `host[:port]`; `None` when it is not of that shape. The port may be empty
/// (RFC 3986 `port = *DIGIT`).
pub(crate) fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (host, port) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']')?;
        let (h, rest) = s.split_at(close + 1);
        match rest {
            [] => (h, None),
            [b':', port @ ..] => (h, Some(port)),
            _ => return None,
        }
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let host_ok = if host.first() == Some(&b'[') { is_ip_literal(host) } else { is_reg_name(host) };
    let port_ok = port.is_none_or(|p| p.iter().all(u8::is_ascii_digit));
    (host_ok && port_ok).then_some((host, port))
}

/// A valid `Host` field value: `uri-host [":" port]`, possibly empty (RFC 9110 §7.2).
pub(crate) fn is_valid_host(s: &[u8]) -> bool {
    split_host_port(s).is_some()
}

/// A valid authority for authority-form (CONNECT) and absolute-form targets: a non-empty
/// host and, when `need_port`, a non-empty port. Userinfo is refused (RFC 9110 §4.2.4).
pub(crate) fn is_valid_authority(s: &[u8], need_port: bool) -> bool {
    match split_host_port(s) {
        Some((host, port)) => {
            !host.is_empty() && (!need_port || port.is_some_and(|p| !p.is_empty()))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values() {
        for ok in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"EXAMPLE.com:",
            b"[::1]",
            b"[::1]:80",
            b"127.0.0.1:1",
            b"a%20b",
            b"[v1.x:y]",
            b"xn--bcher-kva.example",
        ] {
            assert!(is_valid_host(ok), "{:?}", core::str::from_utf8(ok));
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"user@host",
            b"host:8o",
            b"[::1",
            b"[::g]",
            b"[::1]x",
            b"a%2",
            b"a%zz",
            b"h:1:2",
            b"\xff",
        ] {
            assert!(!is_valid_host(bad), "{:?}", bad);
        }
    }

    #[test]
    fn authorities() {
        assert!(is_valid_authority(b"example.com:443", true));
        assert!(is_valid_authority(b"[::1]:443", true));
        assert!(!is_valid_authority(b"example.com", true));
        assert!(!is_valid_authority(b"example.com:", true));
        assert!(!is_valid_authority(b":443", true));
        assert!(is_valid_authority(b"example.com", false));
    }
}
