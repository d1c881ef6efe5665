//! The event log: a plain-text rendering of an [`Outcome`] (or of an expectation).
//!
//! One block per request, then one line for how the connection ended:
//!
//! ```text
//! request "POST" "/chunked" HTTP/1.1
//!   header "Transfer-Encoding" "chunked"
//!   body "hello world"
//!   trailer "Vary" "*"
//!   framing Chunked, keep-alive yes, expect-continue no
//! closed
//! ```
//!
//! or `error InvalidHeader 400 "Invalid HTTP Header: 'CONTENT-LENGTH'"`. Byte strings are
//! quoted with `\" \\ \r \n \t \0 \xHH` escapes; a string longer than 200 bytes shows its
//! first 48 bytes, its length and an FNV-1a hash, so a snapshot stays readable and still
//! changes when any byte does.
//!
//! [`Style::Full`] is what snapshots hold (names as sent, the framing line, the PROXY
//! information, error status and message). [`Style::Compare`] is the shape of
//! gunicorn's expectation (names upper-cased, only what gunicorn's corpus records), used
//! to print an expectation and an outcome side by side.

use std::fmt::Write;

use crate::case::{Expectation, ExpectedRequest};
use crate::replay::{End, Outcome, Request};

/// What a rendering includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Everything the outcome holds.
    Full,
    /// What an expectation can state: names upper-cased, no framing/proxy lines, errors
    /// by class only.
    Compare,
}

const LONG: usize = 200;
const SHOWN: usize = 48;

/// Quotes bytes (see the module docs).
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(LONG) + 2);
    out.push('"');
    let shown = if bytes.len() > LONG { &bytes[..SHOWN] } else { bytes };
    for &b in shown {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0 => out.push_str("\\0"),
            0x20..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > LONG {
        let _ = write!(out, "... [{} bytes, fnv1a {:016x}]", bytes.len(), fnv1a(bytes));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn name(bytes: &[u8], style: Style) -> String {
    match style {
        Style::Full => quote(bytes),
        Style::Compare => quote(&bytes.to_ascii_uppercase()),
    }
}

struct Block<'a> {
    method: &'a [u8],
    target: &'a [u8],
    version: (u8, u8),
    headers: &'a [(Vec<u8>, Vec<u8>)],
    body: &'a [u8],
    trailers: &'a [(Vec<u8>, Vec<u8>)],
}

fn push_block(out: &mut String, b: &Block<'_>, style: Style) {
    let _ = writeln!(
        out,
        "request {} {} HTTP/{}.{}",
        quote(b.method),
        quote(b.target),
        b.version.0,
        b.version.1
    );
    for (n, v) in b.headers {
        let _ = writeln!(out, "  header {} {}", name(n, style), quote(v));
    }
    let _ = writeln!(out, "  body {}", quote(b.body));
    for (n, v) in b.trailers {
        let _ = writeln!(out, "  trailer {} {}", name(n, style), quote(v));
    }
}

fn push_request(out: &mut String, r: &Request, style: Style) {
    let block = Block {
        method: &r.method,
        target: &r.target,
        version: r.version,
        headers: &r.headers,
        body: &r.body,
        trailers: &r.trailers,
    };
    push_block(out, &block, style);
    if style == Style::Full {
        let _ = writeln!(
            out,
            "  framing {}, keep-alive {}, expect-continue {}",
            r.framing,
            yes_no(r.keep_alive),
            yes_no(r.expect_continue)
        );
        if let Some(p) = &r.proxy {
            let _ = writeln!(out, "  proxy {p}");
        }
    }
    if !r.complete {
        out.push_str("  incomplete (no EndOfMessage)\n");
    }
}

/// Renders an outcome.
pub fn outcome(o: &Outcome, style: Style) -> String {
    let mut out = String::new();
    for r in &o.requests {
        push_request(&mut out, r, style);
    }
    match (&o.end, style) {
        (End::Closed, _) | (End::NotPersistent, Style::Compare) => out.push_str("closed\n"),
        (End::NotPersistent, Style::Full) => {
            out.push_str("closed (the request does not allow the connection to persist)\n")
        }
        (End::Error { class, status, message }, Style::Full) => {
            let _ = writeln!(out, "error {class} {status} {}", quote(message.as_bytes()));
        }
        (End::Error { class, .. }, Style::Compare) => {
            let _ = writeln!(out, "error {class}");
        }
        (End::Stalled, _) => out.push_str("stalled: NeedData after EOF\n"),
        (End::Usage(what), _) => {
            let _ = writeln!(out, "usage error: {what}");
        }
        (End::Runaway, _) => out.push_str("runaway: events without progress\n"),
    }
    out
}

/// Renders an expectation in [`Style::Compare`].
pub fn expectation(e: &Expectation) -> String {
    let mut out = String::new();
    match e {
        Expectation::Requests(reqs) => {
            for r in reqs {
                push_expected(&mut out, r);
            }
            out.push_str("closed\n");
        }
        Expectation::Error(class) => {
            let _ = writeln!(out, "error {class}");
        }
    }
    out
}

fn push_expected(out: &mut String, r: &ExpectedRequest) {
    let block = Block {
        method: &r.method,
        target: &r.uri,
        version: r.version,
        headers: &r.headers,
        body: &r.body,
        trailers: &r.trailers,
    };
    push_block(out, &block, Style::Compare);
}

/// A line diff of two logs: ` ` common, `-` only in `a`, `+` only in `b`.
pub fn diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Longest common subsequence table, from the ends (logs are short).
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] =
                if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote(b"a\"b\\c\r\n\t\0\x7f\xe9 ~"), r#""a\"b\\c\r\n\t\0\x7f\xe9 ~""#);
        let long = vec![b'x'; 300];
        let q = quote(&long);
        assert!(q.starts_with(&format!("\"{}\"...", "x".repeat(48))), "{q}");
        assert!(q.contains("[300 bytes, fnv1a "), "{q}");
        let mut other = long.clone();
        other[299] = b'y';
        assert_ne!(quote(&other), q);
    }

    #[test]
    fn request_and_error_logs() {
        let req = Request {
            method: b"GET".to_vec(),
            target: b"/".to_vec(),
            version: (1, 1),
            headers: vec![(b"Host".to_vec(), b"a".to_vec())],
            body: Vec::new(),
            trailers: Vec::new(),
            complete: true,
            framing: String::from("Empty"),
            keep_alive: true,
            expect_continue: false,
            proxy: None,
        };
        let ok = Outcome { requests: vec![req], end: End::Closed };
        assert_eq!(
            outcome(&ok, Style::Full),
            "request \"GET\" \"/\" HTTP/1.1\n  header \"Host\" \"a\"\n  body \"\"\n  \
             framing Empty, keep-alive yes, expect-continue no\nclosed\n"
        );
        assert_eq!(
            outcome(&ok, Style::Compare),
            "request \"GET\" \"/\" HTTP/1.1\n  header \"HOST\" \"a\"\n  body \"\"\nclosed\n"
        );
        let bad = Outcome {
            requests: Vec::new(),
            end: End::Error { class: "InvalidHeader", status: 400, message: String::from("m") },
        };
        assert_eq!(outcome(&bad, Style::Full), "error InvalidHeader 400 \"m\"\n");
        assert_eq!(outcome(&bad, Style::Compare), "error InvalidHeader\n");
    }

    #[test]
    fn line_diff() {
        assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
        assert_eq!(diff("", "a\n"), "+ a\n");
    }
}
