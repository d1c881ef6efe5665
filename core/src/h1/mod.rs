//! HTTP/1.x request heads and bodies (RFC 9112), as data and as incremental parsers.
//!
//! [`RequestHead`] owns one copy of the head's bytes; the method, target and fields are
//! spans into it, so a parsed head costs two allocations whatever its field count.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

use crate::proxy::ProxyInfo;

pub(crate) mod chars;
pub(crate) mod chunked;
pub(crate) mod head;
pub(crate) mod host;

/// A byte range inside a [`RequestHead`]'s or [`Trailers`]' buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(r: Range<usize>) -> Self {
        Span { start: r.start as u32, end: r.end as u32 }
    }

    /// Appends `bytes` to `buf` and returns their span.
    pub(crate) fn push(buf: &mut Vec<u8>, bytes: &[u8]) -> Self {
        let start = buf.len();
        buf.extend_from_slice(bytes);
        Span::new(start..buf.len())
    }

    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// One header (or trailer) field: spans of its name (as sent) and its value (SP/HTAB
/// trimmed; obs-fold continuations joined with SP when folding is permitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderField {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// An HTTP version `HTTP/major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The major digit.
    pub major: u8,
    /// The minor digit.
    pub minor: u8,
}

impl Version {
    /// HTTP/1.0.
    pub const HTTP_10: Version = Version { major: 1, minor: 0 };
    /// HTTP/1.1.
    pub const HTTP_11: Version = Version { major: 1, minor: 1 };

    /// `HTTP/1.0`, `HTTP/1.1`, ... as bytes for `SERVER_PROTOCOL` and the access log.
    pub fn as_bytes(self) -> [u8; 8] {
        [b'H', b'T', b'T', b'P', b'/', b'0' + self.major, b'.', b'0' + self.minor]
    }

    /// Whether this version is at least HTTP/1.1 (persistent by default, chunked allowed).
    pub fn at_least_11(self) -> bool {
        self >= Version::HTTP_11
    }
}

/// How the request's body is framed (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: neither Content-Length nor Transfer-Encoding (never read-until-close).
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The form of the request-target (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `scheme://authority/path?query`
    Absolute,
    /// `host:port`, only with CONNECT.
    Authority,
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// `https` or `http`, as trusted secure-scheme headers declared it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed, validated request head.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub(crate) raw: Vec<u8>,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) fields: Vec<HeaderField>,
    /// The protocol version.
    pub version: Version,
    /// The form of the request-target.
    pub target_form: TargetForm,
    /// How the body is framed.
    pub body: BodyKind,
    /// `Expect: 100-continue` on an HTTP/1.1 request: the caller should send
    /// `100 Continue` before reading the body (gunicorn sends it before calling the app).
    pub expect_continue: bool,
    /// Whether the request allows the connection to persist after it (RFC 9112 §9.3):
    /// `Connection: close` and HTTP/1.0 without `keep-alive` say no, and so does CONNECT.
    pub keep_alive: bool,
    /// The scheme declared by trusted secure-scheme headers, if any.
    pub scheme: Option<Scheme>,
    /// Whether the peer is in `forwarded_allow_ips` (forwarder headers may be honoured).
    pub peer_trusted: bool,
    /// The PROXY protocol header of the connection, on every request of it.
    pub proxy: Option<Arc<ProxyInfo>>,
}

impl RequestHead {
    /// An empty head, storage for the connection to fill.
    pub(crate) fn empty() -> Self {
        RequestHead {
            raw: Vec::new(),
            method: Span::default(),
            target: Span::default(),
            fields: Vec::new(),
            version: Version::HTTP_11,
            target_form: TargetForm::Origin,
            body: BodyKind::Empty,
            expect_continue: false,
            keep_alive: false,
            scheme: None,
            peer_trusted: false,
            proxy: None,
        }
    }

    /// The method, as sent (upper-cased when `casefold_method` is on).
    pub fn method(&self) -> &[u8] {
        self.method.get(&self.raw)
    }

    /// The request-target, verbatim (`RAW_URI`).
    pub fn target(&self) -> &[u8] {
        self.target.get(&self.raw)
    }

    /// The path part of an origin-form or absolute-form target, without the query;
    /// empty for the other forms.
    pub fn path(&self) -> &[u8] {
        let t = self.target();
        let rest = match self.target_form {
            TargetForm::Origin => t,
            TargetForm::Absolute => {
                let after = &t[find(t, b"://").map_or(0, |i| i + 3)..];
                let end = after.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after.len());
                &after[end..]
            }
            TargetForm::Authority | TargetForm::Asterisk => return &[],
        };
        let end = rest.iter().position(|&b| b == b'?').unwrap_or(rest.len());
        &rest[..end]
    }

    /// The query (after the first `?`), empty when there is none.
    pub fn query(&self) -> &[u8] {
        let t = self.target();
        match t.iter().position(|&b| b == b'?') {
            Some(i) if matches!(self.target_form, TargetForm::Origin | TargetForm::Absolute) => {
                &t[i + 1..]
            }
            _ => &[],
        }
    }

    /// The fields in order, names as sent. Dropped fields (`header_map = drop`) are absent.
    pub fn headers(&self) -> Fields<'_> {
        Fields { raw: &self.raw, iter: self.fields.iter() }
    }

    /// How many fields the head kept.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// The value of the first field called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// Trailer fields of a chunked body: validated, kept apart, never merged into the head
/// (RFC 9112 §7.1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailers {
    pub(crate) raw: Vec<u8>,
    pub(crate) fields: Vec<HeaderField>,
}

impl Trailers {
    /// The trailer fields in order.
    pub fn fields(&self) -> Fields<'_> {
        Fields { raw: &self.raw, iter: self.fields.iter() }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Iterator over `(name, value)` pairs of a head or a trailer section.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    raw: &'a [u8],
    iter: core::slice::Iter<'a, HeaderField>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next().map(|f| (f.name.get(self.raw), f.value.get(self.raw)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Fields<'_> {}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
