//! Fuzz target for response framing: whatever status, headers and body the application
//! hands to `start_response` and its iterable, the bytes written are exactly one
//! response, as a client reads it.
//!
//! The input is read as choices: a status (a listed code and reason, or fuzz bytes with
//! CR, LF, NUL and obs-text among them), up to 24 headers (hop-by-hop, framing, and fuzz
//! names and values, CR/LF injection attempts, repeated and conflicting Content-Length),
//! the request's method and version, whether the server keeps the connection, and up to
//! six body writes. Then `ResponseHead::from_app`, `choose_framing`, `encode_head` and a
//! `BodyWriter` produce the bytes, and an independent reader (RFC 9112 §4-§7, written
//! here) parses them back.
//!
//! Invariants: a status or header carrying CR, LF or NUL is refused; otherwise the head
//! is a status line, well-formed field lines and the empty line, with one `Connection`
//! field, the application's kept fields in order, and framing fields that agree with
//! each other; the body is delimited as a client would delimit it for that request and
//! status (RFC 9112 §6.3), carries the application's bytes (cut at Content-Length), and
//! nothing follows it: no second response can be smuggled in.

use ferrocorn_core::Version;
use ferrocorn_core::response::{
    BodyFraming, BodyWriter, RequestInfo, ResponseHead, choose_framing, encode_head,
};
use ferrocorn_fuzz::Choices;

const CODES: &[&str] =
    &["200", "204", "304", "100", "101", "301", "404", "500", "999", "099", "2000", "20"];
const REASONS: &[&str] =
    &["OK", "", "Not Found", "Weird\treason", "caf\u{e9}", "A\r\nX-Injected: 1", "B\nC", "D\rE"];
const NAMES: &[&str] = &[
    "Content-Length",
    "content-length",
    "Transfer-Encoding",
    "Connection",
    "Upgrade",
    "Keep-Alive",
    "Server",
    "Date",
    "Set-Cookie",
    "X-A",
    "Trailer",
    "Bad Name",
    "X\r\nInjected",
    "X:Y",
    "",
];
const VALUES: &[&str] = &[
    "5",
    "0",
    "00012",
    "18446744073709551616",
    "-1",
    "1, 1",
    "chunked",
    "close",
    "upgrade",
    "websocket",
    " padded\t",
    "a\r\nX-Injected: 1",
    "a\nb",
    "a\rb",
    "a\0b",
    "caf\u{e9}",
    "",
];

fn bytes_of(ch: &mut Choices<'_>, list: &[&str]) -> Vec<u8> {
    if ch.below(6) == 0 {
        let n = ch.below(24);
        ch.bytes(n).to_vec()
    } else {
        let s = ch.pick(list);
        // Latin-1, as WSGI strings are.
        s.chars().map(|c| c as u32 as u8).collect()
    }
}

fn has_ctl(b: &[u8]) -> bool {
    b.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0)
}

/// Splits off one CRLF-terminated line; a bare CR or LF inside is a failure.
fn line<'a>(buf: &mut &'a [u8]) -> &'a [u8] {
    let end = buf.windows(2).position(|w| w == b"\r\n").expect("an unterminated line");
    let l = &buf[..end];
    assert!(!l.contains(&b'\r') && !l.contains(&b'\n'), "a bare CR or LF in {l:?}");
    *buf = &buf[end + 2..];
    l
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[test]
fn response_framing() {
    let check = |input: &[u8]| {
        let mut ch = Choices::new(input);
        let mut status = bytes_of(&mut ch, CODES);
        if ch.chance(6) {
            status.push(b' ');
            status.extend(bytes_of(&mut ch, REASONS));
        }
        let count = ch.below(25);
        let headers: Vec<(Vec<u8>, Vec<u8>)> =
            (0..count).map(|_| (bytes_of(&mut ch, NAMES), bytes_of(&mut ch, VALUES))).collect();
        let flags = ch.byte();
        let req = RequestInfo {
            is_head: flags & 1 != 0,
            version: if flags & 2 != 0 { Version::HTTP_10 } else { Version::HTTP_11 },
            keep_alive: flags & 4 != 0,
            is_connect: flags & 8 != 0,
        };
        let server_keepalive = flags & 16 != 0;
        let writes: Vec<Vec<u8>> = (0..ch.below(7))
            .map(|_| {
                let n = match ch.below(4) {
                    0 => ch.below(70000),
                    _ => ch.below(20),
                };
                vec![b'x'; n]
            })
            .collect();

        let head = ResponseHead::from_app(
            &status,
            headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
        );
        let Ok(head) = head else { return };
        assert!(!has_ctl(&status), "status {status:?} with CR/LF/NUL accepted");
        for (n, v) in &headers {
            assert!(!has_ctl(n) && !has_ctl(v), "header {n:?}: {v:?} with CR/LF/NUL accepted");
        }
        let framing = choose_framing(&req, &head, server_keepalive);
        let mut out = Vec::new();
        encode_head(&head, &framing, b"ferrocorn", b"Wed, 02 Dec 2026 03:00:00 GMT", &mut out);
        let mut w = BodyWriter::new(framing.body);
        for data in &writes {
            w.write(data, &mut out);
        }
        out.extend_from_slice(w.finish().last);

        // The client's reading.
        let mut buf = out.as_slice();
        let status_line = line(&mut buf);
        assert!(status_line.starts_with(b"HTTP/1.1 ") || status_line.starts_with(b"HTTP/1.0 "));
        let code = &status_line[9..];
        assert!(code.len() >= 4 && code[..3].iter().all(u8::is_ascii_digit) && code[3] == b' ');
        let code: u16 = std::str::from_utf8(&code[..3]).unwrap().parse().unwrap();
        let mut fields = Vec::new();
        loop {
            let l = line(&mut buf);
            if l.is_empty() {
                break;
            }
            let colon = l.iter().position(|&b| b == b':').expect("a field line without a colon");
            let (name, value) = (&l[..colon], &l[colon + 1..]);
            assert!(!name.is_empty() && name.iter().all(|&b| is_tchar(b)), "field name {name:?}");
            let value = value.strip_prefix(b" ").unwrap_or(value);
            fields.push((name.to_ascii_lowercase(), value.to_vec()));
        }
        let named = |n: &str| {
            fields
                .iter()
                .filter(|(k, _)| k == n.as_bytes())
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(named("connection").len(), 1, "one Connection field: {fields:?}");
        let te = named("transfer-encoding");
        let cl = named("content-length");
        assert!(te.len() <= 1 && cl.len() <= 1, "repeated framing fields: {fields:?}");
        assert!(
            te.is_empty() || cl.is_empty(),
            "both Transfer-Encoding and Content-Length: {fields:?}"
        );
        assert!(te.iter().all(|v| v == b"chunked"));
        // The application's kept fields, in order, after the server's own.
        let app: Vec<(Vec<u8>, Vec<u8>)> = head
            .headers()
            .filter(|(n, _)| {
                !(framing.omit_content_length && n.eq_ignore_ascii_case(b"content-length"))
            })
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        assert!(
            fields.ends_with(&app),
            "the application's fields {app:?} are not what was written: {fields:?}"
        );

        // RFC 9112 §6.3: how a client delimits this body.
        let sent: Vec<u8> = writes.concat();
        if req.is_head || code < 200 || code == 204 || code == 304 {
            assert!(buf.is_empty(), "{} bytes after a response without a body", buf.len());
        } else if req.is_connect && (200..300).contains(&code) {
            assert_eq!(buf, &sent[..], "a tunnel's bytes");
            assert!(!framing.keep_alive);
        } else if !te.is_empty() {
            let mut body = Vec::new();
            loop {
                let size_line = line(&mut buf);
                let size = usize::from_str_radix(std::str::from_utf8(size_line).unwrap(), 16)
                    .expect("a chunk size");
                if size == 0 {
                    assert_eq!(line(&mut buf), b"", "no trailer expected");
                    break;
                }
                body.extend_from_slice(&buf[..size]);
                buf = &buf[size..];
                assert_eq!(line(&mut buf), b"", "the CRLF after a chunk");
            }
            assert_eq!(body, sent);
            assert!(buf.is_empty(), "{} bytes after the last chunk", buf.len());
        } else if let Some(n) = cl.first() {
            let n: usize = std::str::from_utf8(n).unwrap().parse().expect("a Content-Length");
            assert!(buf.len() <= n, "{} bytes after a body of Content-Length {n}", buf.len() - n);
            assert_eq!(buf, &sent[..buf.len()]);
            assert_eq!(buf.len(), n.min(sent.len()));
        } else {
            assert_eq!(buf, &sent[..], "a close-delimited body");
            assert!(!framing.keep_alive, "a close-delimited body on a kept connection");
            assert_eq!(framing.body, BodyFraming::CloseDelimited);
        }
        if framing.keep_alive && !head.upgrade() {
            assert_eq!(named("connection"), vec![b"keep-alive".to_vec()]);
        }
    };
    // Every input of the regression corpus, whatever bolero's time budget leaves.
    if !cfg!(fuzzing) {
        assert!(
            ferrocorn_fuzz::replay_corpus("response_framing", &check) > 0,
            "the regression corpus is empty"
        );
    }
    bolero::check!().for_each(check);
}
