//! The client certificate of a TLS connection, as the environ variables Apache's mod_ssl
//! names (`SSLOptions +StdEnvVars +ExportCertData`) and nginx has as `$ssl_client_*`.
//!
//! gunicorn gives the application no client certificate (only `gunicorn.socket`, from
//! which `getpeercert()` can be called). Here, when `cert_reqs` is 1 or 2 (the server asks
//! for a certificate and verifies it against `ca_certs`), every request of the connection
//! carries:
//!
//! | Variable | Value |
//! |---|---|
//! | `SSL_CLIENT_VERIFY` | `SUCCESS` (a certificate was presented and verified) or `NONE` (none was presented, `cert_reqs` 1); a certificate that fails verification fails the handshake, so there is no `FAILED` |
//! | `SSL_CLIENT_S_DN` | the subject's distinguished name, RFC 2253 (below) |
//! | `SSL_CLIENT_I_DN` | the issuer's distinguished name, same format |
//! | `SSL_CLIENT_M_SERIAL` | the serial number in upper-case hex, two digits a byte (`openssl x509 -serial`) |
//! | `SSL_CLIENT_CERT` | the certificate in PEM (`-----BEGIN CERTIFICATE-----`, 64-column base64) |
//!
//! With `cert_reqs` 0 (the default) none of these is set. The distinguished names are
//! formatted as OpenSSL's `XN_FLAG_RFC2253` formats them, which is nginx's
//! `$ssl_client_s_dn` and what `openssl x509 -noout -subject -nameopt RFC2253` prints:
//! the RDNs most specific first (`CN=alice,O=Acme,C=DE`), `+` between the values of a
//! multi-valued RDN, OpenSSL's short names (`CN`, `O`, `OU`, `emailAddress`, `UID`, `DC`,
//! ...) and the dotted OID for the others, `,+"\<>;` escaped with a backslash, a leading
//! `#` or space and a trailing space too, control bytes and every byte of a non-ASCII
//! character as `\XX` (so the value is ASCII), and a value of an unknown attribute or of
//! a string type that is not text as `#` and the hex of its DER encoding. (Apache's
//! mod_ssl with `LegacyDNStringFormat` off is the same but keeps UTF-8 unescaped.)
//!
//! The variables are made once per connection, after the handshake, and shared by its
//! requests.

use std::fmt::Write as _;

use rustls::pki_types::CertificateDer;

/// The environ variables of a connection's client certificate ([module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientVars {
    /// `(name, value)` in the order the environ gets them.
    pub vars: Vec<(&'static str, String)>,
}

impl ClientVars {
    /// The variables for a connection whose server asked for a client certificate:
    /// `certs` is what the client presented (and rustls verified), leaf first.
    pub fn of(certs: Option<&[CertificateDer<'_>]>) -> ClientVars {
        let Some(leaf) = certs.and_then(|c| c.first()) else {
            return ClientVars { vars: vec![("SSL_CLIENT_VERIFY", "NONE".into())] };
        };
        let mut vars = vec![("SSL_CLIENT_VERIFY", "SUCCESS".to_owned())];
        if let Some(fields) = Fields::of(leaf.as_ref()) {
            vars.push(("SSL_CLIENT_S_DN", rfc2253(fields.subject).unwrap_or_default()));
            vars.push(("SSL_CLIENT_I_DN", rfc2253(fields.issuer).unwrap_or_default()));
            vars.push(("SSL_CLIENT_M_SERIAL", serial_hex(fields.serial)));
        }
        vars.push(("SSL_CLIENT_CERT", pem(leaf.as_ref())));
        ClientVars { vars }
    }
}

/// One DER element: its tag, its contents, the whole element and what follows it.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// See [`Element`].
pub(crate) fn der(b: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = b.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &x| acc << 8 | usize::from(x));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = b.len() - rest.len();
    Some((tag, &rest[..len], &b[..header + len], &rest[len..]))
}

/// The parts of a certificate the variables need (RFC 5280 4.1: `tbsCertificate` holds
/// `[0] version`, `serialNumber`, `signature`, `issuer`, `validity`, `subject`).
struct Fields<'a> {
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
}

impl<'a> Fields<'a> {
    fn of(cert: &'a [u8]) -> Option<Fields<'a>> {
        let (0x30, cert, _, _) = der(cert)? else { return None };
        let (0x30, tbs, _, _) = der(cert)? else { return None };
        let (mut tag, mut serial, _, mut rest) = der(tbs)?;
        if tag == 0xa0 {
            (tag, serial, _, rest) = der(rest)?;
        }
        if tag != 0x02 {
            return None;
        }
        let rest = der(rest)?.3; // signature algorithm
        let (0x30, issuer, _, rest) = der(rest)? else { return None };
        let rest = der(rest)?.3; // validity
        let (0x30, subject, _, _) = der(rest)? else { return None };
        Some(Fields { serial, issuer, subject })
    }
}

/// The contents of a `Name` (a SEQUENCE of RDNs, each a SET of `AttributeTypeAndValue`)
/// as OpenSSL's `XN_FLAG_RFC2253` prints it; `None` if it does not parse.
pub fn rfc2253(name: &[u8]) -> Option<String> {
    // Every attribute with the number of its RDN, in the encoded order.
    let mut avas: Vec<Ava<'_>> = Vec::new();
    let mut rdns = name;
    let mut set = 0;
    while !rdns.is_empty() {
        let (0x31, mut rdn, _, rest) = der(rdns)? else { return None };
        while !rdn.is_empty() {
            let (0x30, ava, _, next) = der(rdn)? else { return None };
            let (0x06, oid, _, value) = der(ava)? else { return None };
            let (tag, content, whole, _) = der(value)?;
            avas.push(Ava { set, oid, tag, content, whole });
            rdn = next;
        }
        set += 1;
        rdns = rest;
    }
    // Most specific first: the attributes in reverse (OpenSSL reverses the flat list,
    // so the values of one RDN come in reverse too).
    let mut out = String::new();
    let mut prev = None;
    for &Ava { set, oid, tag, content, whole } in avas.iter().rev() {
        if let Some(p) = prev {
            out.push(if p == set { '+' } else { ',' });
        }
        prev = Some(set);
        let short = short_name(oid);
        match short {
            Some(sn) => out.push_str(sn),
            None => out.push_str(&dotted(oid)?),
        }
        out.push('=');
        match short.and_then(|_| text_of(tag, content)) {
            Some(chars) => escape_into(&chars, &mut out),
            None => {
                out.push('#');
                for b in whole {
                    let _ = write!(out, "{b:02X}");
                }
            }
        }
    }
    Some(out)
}

/// An `AttributeTypeAndValue` of a name, with the number of its RDN.
#[derive(Clone, Copy)]
struct Ava<'a> {
    set: usize,
    oid: &'a [u8],
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// OpenSSL's short name of an attribute type (its `OBJ_nid2sn`), by the DER contents of
/// its OID.
fn short_name(oid: &[u8]) -> Option<&'static str> {
    const X520: [(u8, &str); 21] = [
        (3, "CN"),
        (4, "SN"),
        (5, "serialNumber"),
        (6, "C"),
        (7, "L"),
        (8, "ST"),
        (9, "street"),
        (10, "O"),
        (11, "OU"),
        (12, "title"),
        (13, "description"),
        (15, "businessCategory"),
        (17, "postalCode"),
        (41, "name"),
        (42, "GN"),
        (43, "initials"),
        (44, "generationQualifier"),
        (45, "x500UniqueIdentifier"),
        (46, "dnQualifier"),
        (65, "pseudonym"),
        (97, "organizationIdentifier"),
    ];
    if let [0x55, 0x04, n] = oid {
        return X520.iter().find(|(k, _)| k == n).map(|(_, s)| *s);
    }
    match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => Some("emailAddress"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => Some("DC"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => Some("UID"),
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, n] => match n {
            1 => Some("jurisdictionL"),
            2 => Some("jurisdictionST"),
            3 => Some("jurisdictionC"),
            _ => None,
        },
        _ => None,
    }
}

/// An OID's dotted text (`1.2.3.4`).
fn dotted(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let (&first, rest) = arcs.split_first()?;
    let (x, y) = if first < 80 { (first / 40, first % 40) } else { (2, first - 80) };
    let mut s = format!("{x}.{y}");
    for a in rest {
        let _ = write!(s, ".{a}");
    }
    Some(s)
}

/// The characters of a string value, for the types OpenSSL prints as text (its
/// `tag2nbyte`): UTF8String; one byte a character (NumericString, PrintableString,
/// T61String, IA5String, the times, VisibleString); BMPString (two); UniversalString
/// (four). `None` for the others (dumped as DER).
fn text_of(tag: u8, content: &[u8]) -> Option<Vec<char>> {
    match tag {
        0x0c => std::str::from_utf8(content).ok().map(|s| s.chars().collect()),
        0x12 | 0x13 | 0x14 | 0x16 | 0x17 | 0x18 | 0x1a => {
            Some(content.iter().map(|&b| char::from(b)).collect())
        }
        0x1e if content.len() % 2 == 0 => content
            .chunks(2)
            .map(|c| char::from_u32(u32::from(u16::from_be_bytes([c[0], c[1]]))))
            .collect(),
        0x1c if content.len() % 4 == 0 => content
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// Appends `chars` escaped as `ASN1_STRFLGS_RFC2253` escapes them (see the module docs).
fn escape_into(chars: &[char], out: &mut String) {
    let last = chars.len().saturating_sub(1);
    for (i, &c) in chars.iter().enumerate() {
        let mut utf8 = [0u8; 4];
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            match b {
                b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                b' ' if i == 0 || i == last => out.push_str("\\ "),
                b'#' if i == 0 => out.push_str("\\#"),
                0..=0x1f | 0x7f..=0xff => {
                    let _ = write!(out, "\\{b:02X}");
                }
                _ => out.push(char::from(b)),
            }
        }
    }
}

/// A serial number's contents (a DER INTEGER) as OpenSSL's `i2a_ASN1_INTEGER` prints
/// it: the magnitude, two upper-case hex digits a byte, `-` before a negative one.
pub fn serial_hex(content: &[u8]) -> String {
    let negative = content.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = content.to_vec();
    if negative {
        // Two's complement: invert and add one.
        for b in magnitude.iter_mut() {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let magnitude = &magnitude[start..];
    let mut s = String::from(if negative { "-" } else { "" });
    if magnitude.is_empty() {
        s.push_str("00");
    }
    for b in magnitude {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// A certificate in PEM, as `PEM_write_X509` writes it.
pub fn pem(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n =
            chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element of `tag` around `content` (short lengths only).
    fn el(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        el(0x30, &[el(0x06, oid), el(tag, value)].concat())
    }

    #[test]
    fn names_are_printed_most_specific_first_and_escaped() {
        let cn = ava(&[0x55, 4, 3], 0x0c, "  a,b+c\"d\\e<f>g;h# ".as_bytes());
        let o = ava(&[0x55, 4, 10], 0x13, b"Acme");
        let ou = ava(&[0x55, 4, 11], 0x0c, "Bücher".as_bytes());
        let c = ava(&[0x55, 4, 6], 0x13, b"DE");
        let name = [el(0x31, &c), el(0x31, &[ou, o].concat()), el(0x31, &cn)].concat();
        assert_eq!(
            rfc2253(&name).unwrap(),
            r#"CN=\  a\,b\+c\"d\\e\<f\>g\;h#\ ,O=Acme+OU=B\C3\BCcher,C=DE"#
        );
    }

    #[test]
    fn unknown_attributes_and_types_are_dumped_as_der() {
        let odd = ava(&[0x2a, 0x03, 0x04], 0x0c, b"x");
        let bits = ava(&[0x55, 4, 3], 0x03, &[0x00, 0xff]);
        let ctl = ava(&[0x55, 4, 3], 0x1e, &[0x00, 0x01, 0x00, 0x23]);
        let name = [el(0x31, &odd), el(0x31, &bits), el(0x31, &ctl)].concat();
        assert_eq!(rfc2253(&name).unwrap(), r"CN=\01#,CN=#030200FF,1.2.3.4=#0C0178");
        assert_eq!(rfc2253(&[0x31, 0x05, 0x30]), None);
    }

    #[test]
    fn serials_as_openssl_prints_them() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8F01");
        assert_eq!(serial_hex(&[0x01]), "01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0xff]), "-01");
        assert_eq!(serial_hex(&[0xff, 0x00]), "-0100");
    }

    #[test]
    fn pem_has_64_column_lines() {
        let der: Vec<u8> = (0..100u8).collect();
        let p = pem(&der);
        let expected = "-----BEGIN CERTIFICATE-----\n\
            AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n\
            MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n\
            YGFiYw==\n-----END CERTIFICATE-----\n";
        assert_eq!(p, expected);
        assert_eq!(pem(b"ab"), "-----BEGIN CERTIFICATE-----\nYWI=\n-----END CERTIFICATE-----\n");
    }
}
