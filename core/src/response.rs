//! The response side, as plain functions over plain data: what the application gave
//! `start_response` ([`ResponseHead::from_app`]), how the body is framed
//! ([`choose_framing`]), the head bytes ([`encode_head`]), the body bytes ([`BodyWriter`]),
//! the interim `100 Continue` ([`CONTINUE`]) and `103 Early Hints` ([`encode_early_hints`]),
//! and gunicorn's error pages ([`error_page`]).
//!
//! Everything here follows gunicorn's `gunicorn/http/wsgi.py` `Response` class and
//! `gunicorn/util.py` `write_error`, except where a doc comment says otherwise (each such
//! place is marked **Divergence**). Nothing here reads a clock: the `Date` value is an
//! input, formatted by [`crate::date::http_date`] from unix seconds the caller supplies.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{Detail, RecvError};
use crate::h1::chars::{is_token_str, is_value, trim_ows};
use crate::h1::head::parse_content_length;
use crate::h1::{RequestHead, Span, Version};

/// The interim response gunicorn writes before calling the application when an HTTP/1.1
/// request carries `Expect: 100-continue` (at most once per request).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The status line of the interim response of `wsgi.early_hints` (RFC 8297), always
/// `HTTP/1.1` as gunicorn writes it.
pub const EARLY_HINTS_LINE: &[u8] = b"HTTP/1.1 103 Early Hints\r\n";

/// Encodes the interim `103 Early Hints` response of one `wsgi.early_hints(headers)` call
/// into `out`, as gunicorn 27's `send_early_hints` (`gunicorn/http/wsgi.py`): nothing for
/// a request older than HTTP/1.1 (`Ok(false)`, headers not even looked at), else the
/// status line, each `name: value` line in order (values trimmed of SP/HTAB; no header is
/// dropped, `Link` or any other) and the empty line. Names must be tokens and values
/// `*( SP / HTAB / %x21-7E / %x80-FF )`; on the first bad one nothing is written and the
/// error says which: [`ResponseError::InvalidHeaderName`] with the name, or
/// [`ResponseError::InvalidHeader`] with **the name, not the value** (gunicorn keeps the
/// value out of the exception, it may be sensitive). Whether the final response already
/// started (then gunicorn sends nothing) is the caller's to check.
pub fn encode_early_hints<'h>(
    version: Version,
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    out: &mut Vec<u8>,
) -> Result<bool, ResponseError> {
    if !version.at_least_11() {
        return Ok(false);
    }
    let start = out.len();
    out.extend_from_slice(EARLY_HINTS_LINE);
    for (name, value) in headers {
        let bad = if !is_token_str(name) {
            Some(ResponseError::InvalidHeaderName(Detail::new(name)))
        } else if !value.iter().all(|&b| is_value(b)) {
            Some(ResponseError::InvalidHeader(Detail::new(name)))
        } else {
            None
        };
        if let Some(e) = bad {
            out.truncate(start);
            return Err(e);
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(trim_ows(value));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(true)
}

/// Header names gunicorn never passes through from the application (`util.hop_headers`):
/// hop-by-hop fields plus `Server` and `Date`, which the server writes itself.
pub const HOP_HEADERS: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "server",
    "date",
];

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why the status or headers the application passed to `start_response` were refused.
///
/// **Divergence.** gunicorn answers `400 Bad Request` when the application emits an
/// invalid header (its `InvalidHeader`/`InvalidHeaderName` go through the same table as
/// request errors); the fault is the application's, so [`ResponseError::status`] is always
/// `500 Internal Server Error`, like any other application exception in gunicorn.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status is not `3DIGIT [SP reason-phrase]`, or the reason phrase holds a byte
    /// outside `HTAB / SP / VCHAR / obs-text` (a CR or LF would split the response).
    /// gunicorn does not validate the status at all (its quirk #25: response splitting);
    /// a status whose first word is not an integer makes it fail with `ValueError` (500).
    InvalidStatus(Detail),
    /// A header name is not a token (RFC 9110 §5.1). gunicorn: `InvalidHeaderName`.
    InvalidHeaderName(Detail),
    /// A header value holds a byte outside `SP / HTAB / 0x21-0x7E / 0x80-0xFF`, e.g. a CR
    /// or LF (RFC 9110 §5.5). gunicorn: `InvalidHeader`.
    InvalidHeader(Detail),
    /// A `Content-Length` value is not `1*DIGIT` or does not fit in 64 bits. gunicorn
    /// calls `int(value)`, which accepts `+5` or `1_0` and fails on the rest with
    /// `ValueError` (500).
    InvalidContentLength(Detail),
    /// Two `Content-Length` headers with different values. gunicorn keeps the last value
    /// for its own framing and sends both headers (a desynchronisation hazard); here it is
    /// an error. Repeats of the same value are accepted and sent once.
    ConflictingContentLength(Detail),
}

impl ResponseError {
    /// The status to answer with (always 500, see the type's documentation).
    pub fn status(&self) -> u16 {
        match self {
            ResponseError::InvalidStatus(_)
            | ResponseError::InvalidHeaderName(_)
            | ResponseError::InvalidHeader(_)
            | ResponseError::InvalidContentLength(_)
            | ResponseError::ConflictingContentLength(_) => 500,
        }
    }

    /// The reason phrase of [`ResponseError::status`].
    pub fn reason(&self) -> &'static str {
        "Internal Server Error"
    }

    /// The name of the exception gunicorn raises for the same input, or `None` when
    /// gunicorn accepts it.
    pub fn gunicorn_class(&self) -> Option<&'static str> {
        match self {
            ResponseError::InvalidStatus(_) | ResponseError::ConflictingContentLength(_) => None,
            ResponseError::InvalidHeaderName(_) => Some("InvalidHeaderName"),
            ResponseError::InvalidHeader(_) => Some("InvalidHeader"),
            ResponseError::InvalidContentLength(_) => Some("ValueError"),
        }
    }

    /// The status gunicorn answers for the same input (`None` when it accepts it).
    pub fn gunicorn_status(&self) -> Option<u16> {
        match self {
            ResponseError::InvalidStatus(_) | ResponseError::ConflictingContentLength(_) => None,
            ResponseError::InvalidHeaderName(_) | ResponseError::InvalidHeader(_) => Some(400),
            ResponseError::InvalidContentLength(_) => Some(500),
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::InvalidStatus(d) => write!(f, "Invalid response status: {d:?}"),
            ResponseError::InvalidHeaderName(d) => write!(f, "Invalid HTTP header name: {d:?}"),
            ResponseError::InvalidHeader(d) => write!(f, "Invalid HTTP Header: {d:?}"),
            ResponseError::InvalidContentLength(d) => write!(f, "Invalid Content-Length: {d:?}"),
            ResponseError::ConflictingContentLength(d) => {
                write!(f, "Conflicting Content-Length: {d:?}")
            }
        }
    }
}

impl core::error::Error for ResponseError {}

// ---------------------------------------------------------------------------------------
// The response head as the application gave it
// ---------------------------------------------------------------------------------------

/// The validated status and headers of a response, after gunicorn's `process_headers`:
/// hop-by-hop headers removed, values SP/HTAB-trimmed, `Content-Length` parsed.
///
/// One buffer holds the status and every kept name and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    buf: Vec<u8>,
    status: Span,
    code: u16,
    headers: Vec<(Span, Span)>,
    content_length: Option<u64>,
    upgrade: bool,
}

impl ResponseHead {
    /// Validates what the application passed to `start_response` (status and headers as
    /// latin-1 bytes) and applies gunicorn's header processing:
    ///
    /// - the status must be `3DIGIT SP reason-phrase` (reason may be empty; a bare `3DIGIT`
    ///   is accepted and written with the SP that RFC 9112 §4 requires);
    /// - names must be tokens; values `*( SP / HTAB / %x21-7E / %x80-FF )`, then trimmed of
    ///   SP/HTAB;
    /// - `Content-Length` is parsed (`1*DIGIT`, overflow-safe);
    /// - `Connection`, `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`,
    ///   `Trailers`, `Transfer-Encoding`, `Upgrade`, `Server` and `Date` are dropped, except
    ///   that `Connection: upgrade` sets [`ResponseHead::upgrade`] and `Upgrade: websocket`
    ///   is kept (values compared case-insensitively, as gunicorn).
    ///
    /// ```
    /// use ferrocorn_core::response::{ResponseError, ResponseHead};
    ///
    /// let fields: [(&[u8], &[u8]); 3] =
    ///     [(b"Content-Length", b" 12 "), (b"Connection", b"close"), (b"X-A", b"1")];
    /// let head = ResponseHead::from_app(b"200 OK", fields.into_iter())?;
    /// assert_eq!((head.code(), head.content_length()), (200, Some(12)));
    /// // `Connection` is the server's to write: dropped.
    /// assert_eq!(head.headers().count(), 2);
    ///
    /// // A CR or LF would split the response: refused.
    /// let evil: [(&[u8], &[u8]); 1] = [(b"X-A", b"1\r\nSet-Cookie: x=1")];
    /// let err = ResponseHead::from_app(b"200 OK", evil.into_iter()).unwrap_err();
    /// assert!(matches!(err, ResponseError::InvalidHeader(_)));
    /// assert_eq!(err.status(), 500);
    /// # Ok::<(), ResponseError>(())
    /// ```
    pub fn from_app<'h>(
        status: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    ) -> Result<ResponseHead, ResponseError> {
        let code = parse_status(status)
            .ok_or_else(|| ResponseError::InvalidStatus(Detail::new(status)))?;
        let (lower, _) = headers.size_hint();
        let mut head = ResponseHead {
            buf: Vec::with_capacity(status.len() + lower * 32),
            status: Span::default(),
            code,
            headers: Vec::with_capacity(lower),
            content_length: None,
            upgrade: false,
        };
        head.status = Span::push(&mut head.buf, status);
        for (name, value) in headers {
            head.push_header(name, value)?;
        }
        Ok(head)
    }

    fn push_header(&mut self, name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
        if !is_token_str(name) {
            return Err(ResponseError::InvalidHeaderName(Detail::new(name)));
        }
        if !value.iter().all(|&b| is_value(b)) {
            return Err(ResponseError::InvalidHeader(Detail::new(value)));
        }
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)
                .ok_or_else(|| ResponseError::InvalidContentLength(Detail::new(value)))?;
            match self.content_length {
                Some(prev) if prev == n => return Ok(()),
                Some(_) => return Err(ResponseError::ConflictingContentLength(Detail::new(value))),
                None => self.content_length = Some(n),
            }
        } else if HOP_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes())) {
            if name.eq_ignore_ascii_case(b"connection") {
                if value.eq_ignore_ascii_case(b"upgrade") {
                    self.upgrade = true;
                }
                return Ok(());
            }
            if !(name.eq_ignore_ascii_case(b"upgrade") && value.eq_ignore_ascii_case(b"websocket"))
            {
                return Ok(());
            }
        }
        let n = Span::push(&mut self.buf, name);
        let v = Span::push(&mut self.buf, value);
        self.headers.push((n, v));
        Ok(())
    }

    /// The status as the application gave it (`200 OK`).
    pub fn status(&self) -> &[u8] {
        self.status.get(&self.buf)
    }

    /// The status code (`200`).
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase (`OK`), possibly empty.
    pub fn reason(&self) -> &[u8] {
        self.status().get(4..).unwrap_or(&[])
    }

    /// The parsed `Content-Length`, if the application sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Whether the application sent `Connection: upgrade` (the head then says
    /// `Connection: upgrade`).
    pub fn upgrade(&self) -> bool {
        self.upgrade
    }

    /// The kept headers, in the application's order (names as given, values trimmed).
    pub fn headers(&self) -> ResponseFields<'_> {
        ResponseFields { buf: &self.buf, iter: self.headers.iter() }
    }

    /// The value of the first kept header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// `3DIGIT [SP reason]`, reason = `*( HTAB / SP / VCHAR / obs-text )`.
fn parse_status(status: &[u8]) -> Option<u16> {
    let (digits, rest) = status.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match rest {
        [] => {}
        [b' ', reason @ ..] if reason.iter().all(|&b| is_value(b)) => {}
        _ => return None,
    }
    Some(digits.iter().fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0')))
}

/// Iterator over the `(name, value)` pairs of a [`ResponseHead`].
#[derive(Clone, Debug)]
pub struct ResponseFields<'a> {
    buf: &'a [u8],
    iter: core::slice::Iter<'a, (Span, Span)>,
}

impl<'a> Iterator for ResponseFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next().map(|&(n, v)| (n.get(self.buf), v.get(self.buf)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl DoubleEndedIterator for ResponseFields<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.iter.next_back().map(|&(n, v)| (n.get(self.buf), v.get(self.buf)))
    }
}

impl ExactSizeIterator for ResponseFields<'_> {}

// ---------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------

/// What the framing decision needs to know about the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// The method is `HEAD`.
    pub is_head: bool,
    /// The request's HTTP version.
    pub version: Version,
    /// The request allows the connection to persist (`RequestHead::keep_alive`, i.e. not
    /// gunicorn's `req.should_close()`).
    pub keep_alive: bool,
    /// The method is `CONNECT`.
    pub is_connect: bool,
}

impl RequestInfo {
    /// The facts of a parsed request head (methods compared case-sensitively, as gunicorn).
    pub fn from_head(head: &RequestHead) -> Self {
        RequestInfo {
            is_head: head.method() == b"HEAD",
            version: head.version,
            keep_alive: head.keep_alive,
            is_connect: head.method() == b"CONNECT",
        }
    }
}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body may be sent (HEAD, 1xx, 204, 304): body bytes are dropped.
    NoBody,
    /// `Content-Length`: exactly this many bytes; more are cut off.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Raw bytes until the connection closes (HTTP/1.0 without Content-Length, and 2xx
    /// answers to CONNECT).
    CloseDelimited,
}

/// The value of the `Connection` header gunicorn always writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// `Connection: close`
    Close,
    /// `Connection: keep-alive`
    KeepAlive,
    /// `Connection: upgrade` (the application sent `Connection: upgrade`).
    Upgrade,
}

impl ConnectionHeader {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionHeader::Close => "close",
            ConnectionHeader::KeepAlive => "keep-alive",
            ConnectionHeader::Upgrade => "upgrade",
        }
    }
}

/// The framing decision for one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Framing {
    /// The version written in the status line.
    pub version: Version,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// The `Connection` header value.
    pub connection: ConnectionHeader,
    /// Whether the connection may carry another request after this response
    /// (gunicorn's `not resp.should_close()`).
    pub keep_alive: bool,
    /// Whether the application's `Content-Length` header must not be written (1xx, 204,
    /// and 2xx answers to CONNECT).
    pub omit_content_length: bool,
}

/// Decides how the response is framed and whether the connection persists, as gunicorn's
/// `Response.is_chunked`, `_omits_body` and `should_close`:
///
/// - no body for HEAD, 1xx, 204 and 304; for 1xx and 204 the `Content-Length` header is
///   removed, HEAD and 304 keep it;
/// - otherwise `Content-Length` when the application gave one; chunked when it did not and
///   the request is HTTP/1.1 or later; else the body runs until the connection closes;
/// - the connection persists only if `server_keepalive` (the shell passes `false` for the
///   sync worker, or when the worker is shutting down or reached `max_requests`), the
///   request allows it, and the body is not close-delimited.
///
/// The status line echoes the request's version when it is `HTTP/1.0`; any other version
/// is answered as `HTTP/1.1`: `HTTP/1.2` ... `HTTP/1.9` are processed as HTTP/1.1 and a
/// server answers in the highest version it implements (RFC 9110 §2.5; gunicorn echoes
/// e.g. `HTTP/1.2`). Other major versions only get here under
/// `permit_unconventional_http_version`.
///
/// **Divergence.** A 2xx answer to CONNECT is a tunnel (RFC 9110 §9.3.6): it is never
/// chunked, its `Content-Length` header is not written, and the connection closes after
/// it. gunicorn treats CONNECT like any other method.
pub fn choose_framing(req: &RequestInfo, resp: &ResponseHead, server_keepalive: bool) -> Framing {
    let code = resp.code();
    let version = if req.version == Version::HTTP_10 { Version::HTTP_10 } else { Version::HTTP_11 };
    let tunnel = req.is_connect && (200..300).contains(&code);
    let no_body = req.is_head || code < 200 || code == 204 || code == 304;
    let omit_content_length = code < 200 || code == 204 || tunnel;
    let body = if no_body {
        BodyFraming::NoBody
    } else if tunnel {
        BodyFraming::CloseDelimited
    } else if let Some(n) = resp.content_length() {
        BodyFraming::Length(n)
    } else if req.version.at_least_11() {
        BodyFraming::Chunked
    } else {
        BodyFraming::CloseDelimited
    };
    let keep_alive = crate::conn::persists(req.keep_alive, server_keepalive, body);
    let connection = if resp.upgrade() {
        ConnectionHeader::Upgrade
    } else if keep_alive {
        ConnectionHeader::KeepAlive
    } else {
        ConnectionHeader::Close
    };
    Framing { version, body, connection, keep_alive, omit_content_length }
}

// ---------------------------------------------------------------------------------------
// Head encoding
// ---------------------------------------------------------------------------------------

/// Pushes `bytes` without its control bytes (other than HTAB): the caller's server name
/// and date are trusted, but a CR/LF in them must never split the head.
fn push_field_value(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(bytes.iter().copied().filter(|&b| is_value(b)));
}

/// Writes the response head into `out`, in gunicorn's order: the status line with the
/// version from `framing`, `Server: <server>`, `Date: <date>`, `Connection: ...`,
/// `Transfer-Encoding: chunked` when chunked, then the application's kept headers in order
/// (without `Content-Length` when `framing.omit_content_length`), then the empty line.
///
/// `date` is an IMF-fixdate, e.g. from [`crate::date::http_date`] (cached per second by the caller).
/// An empty `server` or `date` omits that header (gunicorn always writes both;
/// `Server: gunicorn`). Control bytes in `server` and `date` are dropped.
pub fn encode_head(
    resp: &ResponseHead,
    framing: &Framing,
    server: &[u8],
    date: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&framing.version.as_bytes());
    out.push(b' ');
    out.extend_from_slice(resp.status());
    if resp.status().len() == 3 {
        out.push(b' ');
    }
    out.extend_from_slice(b"\r\n");
    if !server.is_empty() {
        out.extend_from_slice(b"Server: ");
        push_field_value(out, server);
        out.extend_from_slice(b"\r\n");
    }
    if !date.is_empty() {
        out.extend_from_slice(b"Date: ");
        push_field_value(out, date);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: ");
    out.extend_from_slice(framing.connection.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    if framing.body == BodyFraming::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    for (name, value) in resp.headers() {
        if framing.omit_content_length && name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------------------
// Body
// ---------------------------------------------------------------------------------------

/// Longest chunk-size line: 16 hex digits and CRLF.
const PREFIX_CAP: usize = 18;

/// What to write for one body chunk of the application: `prefix`, then the first `take`
/// bytes of the chunk (which the caller may write straight from the application's buffer,
/// e.g. with `writev` or `sendfile`), then `suffix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    prefix: [u8; PREFIX_CAP],
    prefix_len: u8,
    /// How many bytes of the chunk to write, from its start.
    pub take: usize,
    /// What to write after those bytes: `\r\n` for a chunk, else nothing.
    pub suffix: &'static [u8],
    /// How many bytes of the chunk are not written (past `Content-Length`, or on a no-body
    /// response).
    pub dropped: usize,
    /// `true` the first time body bytes are dropped on a no-body response (HEAD, 1xx, 204,
    /// 304): the caller logs gunicorn's warning ("WSGI app sent body bytes on a no-body
    /// response ...; dropping per RFC 9110.") once per request.
    pub warn_no_body: bool,
}

impl Frame {
    fn empty() -> Frame {
        Frame {
            prefix: [0; PREFIX_CAP],
            prefix_len: 0,
            take: 0,
            suffix: b"",
            dropped: 0,
            warn_no_body: false,
        }
    }

    /// What to write before the chunk's bytes (a chunk-size line, or nothing).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..usize::from(self.prefix_len)]
    }

    /// Whether nothing at all is to be written.
    pub fn is_empty(&self) -> bool {
        self.prefix_len == 0 && self.take == 0 && self.suffix.is_empty()
    }
}

/// How a body ended, from [`BodyWriter::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finish {
    /// What to write last: `0\r\n\r\n` for a chunked body (gunicorn sends no trailers),
    /// else nothing.
    pub last: &'static [u8],
    /// How many bytes short of `Content-Length` the application stopped (0 when complete).
    ///
    /// **Divergence.** gunicorn does not notice a short body; the client then waits for
    /// bytes that never come, or reads the next response as body. When this is non-zero
    /// the caller must close the connection.
    pub missing: u64,
}

impl Finish {
    /// Whether the connection must be closed because the body is incomplete.
    pub fn must_close(&self) -> bool {
        self.missing > 0
    }
}

/// Frames the body chunks of one response (gunicorn's `Response.write` and `close`).
///
/// Empty chunks write nothing (so they never end a chunked body early); a
/// `Content-Length` body is cut at that length; bytes on a no-body response are dropped.
/// [`BodyWriter::sent`] counts body bytes written, excluding chunk framing: the access log's
/// `%(b)s`. (gunicorn's sendfile path forgets to count and logs 0; calling
/// [`BodyWriter::frame`] for sendfile counts those bytes too.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyWriter {
    framing: BodyFraming,
    remaining: u64,
    sent: u64,
    dropped: u64,
    warned: bool,
    finished: bool,
}

impl BodyWriter {
    /// A writer for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        let remaining = if let BodyFraming::Length(n) = framing { n } else { 0 };
        BodyWriter { framing, remaining, sent: 0, dropped: 0, warned: false, finished: false }
    }

    /// The framing this writer applies.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Frames the next `len` bytes of the application's body without touching them.
    /// Calls after [`BodyWriter::finish`] drop everything.
    pub fn frame(&mut self, len: usize) -> Frame {
        let mut f = Frame::empty();
        if len == 0 {
            return f;
        }
        if self.finished {
            f.dropped = len;
            self.dropped = self.dropped.saturating_add(len as u64);
            return f;
        }
        match self.framing {
            BodyFraming::NoBody => {
                f.dropped = len;
                if !self.warned {
                    self.warned = true;
                    f.warn_no_body = true;
                }
            }
            BodyFraming::Length(_) => {
                let take = (len as u64).min(self.remaining);
                self.remaining -= take;
                f.take = take as usize;
                f.dropped = len - f.take;
            }
            BodyFraming::CloseDelimited => f.take = len,
            BodyFraming::Chunked => {
                f.take = len;
                f.suffix = b"\r\n";
                let digits = (usize::BITS - len.leading_zeros()).div_ceil(4) as usize;
                for i in 0..digits {
                    let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
                    f.prefix[i] = b"0123456789ABCDEF"[nibble];
                }
                f.prefix[digits] = b'\r';
                f.prefix[digits + 1] = b'\n';
                f.prefix_len = (digits + 2) as u8;
            }
        }
        self.sent = self.sent.saturating_add(f.take as u64);
        self.dropped = self.dropped.saturating_add(f.dropped as u64);
        f
    }

    /// Frames `data` and appends the bytes to write to `out` (the copying path).
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Frame {
        let f = self.frame(data.len());
        out.extend_from_slice(f.prefix());
        out.extend_from_slice(&data[..f.take]);
        out.extend_from_slice(f.suffix);
        f
    }

    /// Ends the body. Later calls return an empty [`Finish`] (the last chunk is written
    /// once).
    pub fn finish(&mut self) -> Finish {
        if self.finished {
            return Finish { last: b"", missing: 0 };
        }
        self.finished = true;
        match self.framing {
            BodyFraming::Chunked => Finish { last: b"0\r\n\r\n", missing: 0 },
            BodyFraming::Length(_) => Finish { last: b"", missing: self.remaining },
            BodyFraming::NoBody | BodyFraming::CloseDelimited => Finish { last: b"", missing: 0 },
        }
    }

    /// Body bytes written so far (without chunk framing).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Body bytes dropped so far (past `Content-Length`, on a no-body response, or after
    /// [`BodyWriter::finish`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes still expected by `Content-Length` (`None` for other framings).
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            BodyFraming::Length(_) => Some(self.remaining),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Error pages
// ---------------------------------------------------------------------------------------

/// Appends Python's `html.escape(s, quote=True)` of `s`.
fn push_html_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
}

/// Appends `s` encoded as latin-1; characters above U+00FF (which gunicorn cannot encode
/// and so fails to send at all) become `?`.
fn push_latin1(out: &mut Vec<u8>, s: &str) {
    out.extend(s.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')));
}

/// Writes gunicorn's error response (`util.write_error`) into `out`:
///
/// ```text
/// HTTP/1.1 <status> <reason>\r\nConnection: close\r\nContent-Type: text/html\r\n
/// Content-Length: <n>\r\n\r\n<html>\n  <head>\n    <title><reason></title>\n  </head>\n
///   <body>\n    <h1><p><reason></p></h1>\n    <message>\n  </body>\n</html>\n
/// ```
///
/// The message is HTML-escaped like Python's `html.escape` (`&<>"'`); the reason is not
/// (as gunicorn). Always HTTP/1.1, no `Server` or `Date`; the caller closes the connection
/// after writing it.
pub fn error_page(status: u16, reason: &str, message: &str, out: &mut Vec<u8>) {
    let mut html = String::with_capacity(128 + 2 * reason.len() + message.len());
    html.push_str("<html>\n  <head>\n    <title>");
    html.push_str(reason);
    html.push_str("</title>\n  </head>\n  <body>\n    <h1><p>");
    html.push_str(reason);
    html.push_str("</p></h1>\n    ");
    push_html_escaped(&mut html, message);
    html.push_str("\n  </body>\n</html>\n");
    let mut body = Vec::with_capacity(html.len());
    push_latin1(&mut body, &html);
    let head = alloc::format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    push_latin1(out, &head);
    out.extend_from_slice(&body);
}

/// The error response for a request that could not be read: [`error_page`] with
/// [`RecvError::status`], [`RecvError::reason`] and [`RecvError::page_message`].
pub fn error_response(err: &RecvError, out: &mut Vec<u8>) {
    error_page(err.status(), err.reason(), &err.page_message(), out);
}

/// gunicorn's answer to an application failure (an exception, or a [`ResponseError`]) when
/// no byte of the response was sent yet: `500 Internal Server Error` with an empty message.
pub fn internal_error_page(out: &mut Vec<u8>) {
    error_page(500, "Internal Server Error", "", out);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(
        version: Version,
        headers: &[(&[u8], &[u8])],
    ) -> (Result<bool, ResponseError>, Vec<u8>) {
        let mut out = b"kept".to_vec();
        let r = encode_early_hints(version, headers.iter().copied(), &mut out);
        (r, out)
    }

    #[test]
    fn early_hints_as_gunicorn_writes_them() {
        let (r, out) = hints(
            Version::HTTP_11,
            &[
                (b"Link", b"</style.css>; rel=preload; as=style"),
                (b"Link", b" \t</app.js>; rel=preload; as=script\t "),
                (b"X-Any", b"caf\xe9"),
            ],
        );
        assert_eq!(r, Ok(true));
        assert_eq!(
            out,
            b"keptHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\
              Link: </app.js>; rel=preload; as=script\r\nX-Any: caf\xe9\r\n\r\n"
        );
        // No headers: the bare interim response.
        assert_eq!(hints(Version::HTTP_11, &[]).1, b"keptHTTP/1.1 103 Early Hints\r\n\r\n");
        // Hop-by-hop names are not filtered (gunicorn writes them as given).
        assert_eq!(
            hints(Version::HTTP_11, &[(b"Connection", b"x")]).1,
            b"keptHTTP/1.1 103 Early Hints\r\nConnection: x\r\n\r\n"
        );
    }

    #[test]
    fn early_hints_do_nothing_before_http_11() {
        // Not even validated: gunicorn returns before looking at the headers.
        let (r, out) = hints(Version::HTTP_10, &[(b"Bad Name", b"\r\n")]);
        assert_eq!((r, out.as_slice()), (Ok(false), b"kept".as_slice()));
    }

    #[test]
    fn bad_early_hints_write_nothing_and_name_the_header() {
        let (r, out) = hints(Version::HTTP_11, &[(b"Link", b"ok"), (b"Li nk", b"v")]);
        assert_eq!(r, Err(ResponseError::InvalidHeaderName(Detail::new(b"Li nk"))));
        assert_eq!(out, b"kept");
        let (r, out) = hints(Version::HTTP_11, &[(b"Link", b"a\r\nSet-Cookie: x=1")]);
        assert_eq!(r, Err(ResponseError::InvalidHeader(Detail::new(b"Link"))));
        assert_eq!(out, b"kept");
        assert!(matches!(
            hints(Version::HTTP_11, &[(b"", b"v")]).0,
            Err(ResponseError::InvalidHeaderName(_))
        ));
    }

    fn head(status: &str, headers: &[(&str, &str)]) -> Result<ResponseHead, ResponseError> {
        ResponseHead::from_app(
            status.as_bytes(),
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        )
    }

    fn kept(h: &ResponseHead) -> Vec<(String, String)> {
        h.headers()
            .map(|(n, v)| {
                (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap())
            })
            .collect()
    }

    fn req(method: &str, version: Version, keep_alive: bool) -> RequestInfo {
        RequestInfo {
            is_head: method == "HEAD",
            version,
            keep_alive,
            is_connect: method == "CONNECT",
        }
    }

    fn s(v: &[u8]) -> &str {
        core::str::from_utf8(v).unwrap()
    }

    // ---- ResponseHead::from_app

    #[test]
    fn status_forms() {
        let h = head("200 OK", &[]).unwrap();
        assert_eq!((h.code(), h.status(), h.reason()), (200, &b"200 OK"[..], &b"OK"[..]));
        let h = head("404 ", &[]).unwrap();
        assert_eq!((h.code(), h.reason()), (404, &b""[..]));
        let h = head("204", &[]).unwrap();
        assert_eq!((h.code(), h.reason()), (204, &b""[..]));
        let h = head("599 Weird\tbut fine", &[]).unwrap();
        assert_eq!((h.code(), h.reason()), (599, &b"Weird\tbut fine"[..]));
        let h = ResponseHead::from_app(b"200 Caf\xe9 \t ok", core::iter::empty()).unwrap();
        assert_eq!(h.reason(), b"Caf\xe9 \t ok");
    }

    #[test]
    fn status_rejections() {
        for bad in [
            "",
            "20",
            "2000 OK",
            "20x OK",
            " 200 OK",
            "200\tOK",
            "200  \r\nX-Injected: 1",
            "200 OK\r\n",
            "200 OK\n",
            "200 O\x00K",
            "200 O\x7fK",
            "OK 200",
            "200-OK",
        ] {
            let e = head(bad, &[]).unwrap_err();
            assert!(matches!(e, ResponseError::InvalidStatus(_)), "{bad:?}");
            assert_eq!(e.status(), 500);
            assert_eq!(e.gunicorn_class(), None);
        }
    }

    #[test]
    fn header_name_and_value_validation() {
        let e = head("200 OK", &[("Bad Name", "x")]).unwrap_err();
        assert!(matches!(e, ResponseError::InvalidHeaderName(_)));
        assert_eq!(
            (e.status(), e.gunicorn_class(), e.gunicorn_status()),
            (500, Some("InvalidHeaderName"), Some(400))
        );
        for name in ["", "X:Y", "X\r\nY", "Ä", "X(", "X\"", "X/"] {
            assert!(
                matches!(head("200 OK", &[(name, "v")]), Err(ResponseError::InvalidHeaderName(_))),
                "{name:?}"
            );
        }
        for value in ["a\r\nSet-Cookie: x=1", "a\n", "a\r", "\x00", "a\x7f", "a\x0bb"] {
            let e = head("200 OK", &[("X-Ok", value)]).unwrap_err();
            assert!(matches!(e, ResponseError::InvalidHeader(_)), "{value:?}");
            assert_eq!(
                (e.status(), e.gunicorn_class(), e.gunicorn_status()),
                (500, Some("InvalidHeader"), Some(400))
            );
        }
        // hop-by-hop headers are validated before being dropped
        assert!(head("200 OK", &[("Server", "x\r\ny")]).is_err());
        let h = ResponseHead::from_app(
            b"200 OK",
            [(&b"X-A"[..], &b" \t caf\xe9 !~ \t"[..])].into_iter(),
        )
        .unwrap();
        assert_eq!(h.header(b"x-a"), Some(&b"caf\xe9 !~"[..]));
        let h = head("200 OK", &[("!#$%&'*+-.^_`|~09azAZ", "")]).unwrap();
        assert_eq!(kept(&h), [("!#$%&'*+-.^_`|~09azAZ".into(), "".into())]);
    }

    #[test]
    fn content_length_parsing() {
        let h = head("200 OK", &[("Content-Length", " 42 ")]).unwrap();
        assert_eq!(h.content_length(), Some(42));
        assert_eq!(kept(&h), [("Content-Length".into(), "42".into())]);
        let h = head("200 OK", &[("content-length", "18446744073709551615")]).unwrap();
        assert_eq!(h.content_length(), Some(u64::MAX));
        for bad in [
            "",
            "-1",
            "+1",
            "1_0",
            "0x10",
            "1 2",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let e = head("200 OK", &[("Content-Length", bad)]).unwrap_err();
            assert!(matches!(e, ResponseError::InvalidContentLength(_)), "{bad:?}");
            assert_eq!(e.gunicorn_status(), Some(500));
        }
        // same value twice: accepted, written once
        let h = head("200 OK", &[("Content-Length", "5"), ("X", "y"), ("CONTENT-LENGTH", "005")])
            .unwrap();
        assert_eq!(h.content_length(), Some(5));
        assert_eq!(kept(&h), [("Content-Length".into(), "5".into()), ("X".into(), "y".into())]);
        let e = head("200 OK", &[("Content-Length", "5"), ("Content-Length", "6")]).unwrap_err();
        assert!(matches!(e, ResponseError::ConflictingContentLength(_)));
    }

    #[test]
    fn hop_by_hop_headers_dropped() {
        let hs = [
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Authorization", "Basic x"),
            ("TE", "trailers"),
            ("Trailers", "X"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Server", "evil"),
            ("Date", "yesterday"),
            ("X-Kept", "1"),
            ("Content-Type", "text/plain"),
        ];
        let h = head("200 OK", &hs).unwrap();
        assert_eq!(
            kept(&h),
            [("X-Kept".into(), "1".into()), ("Content-Type".into(), "text/plain".into())]
        );
        assert!(!h.upgrade());
    }

    #[test]
    fn websocket_upgrade_kept() {
        let h = head(
            "101 Switching Protocols",
            &[("Upgrade", "WebSocket"), ("Connection", " Upgrade "), ("Sec-WebSocket-Accept", "x")],
        )
        .unwrap();
        assert!(h.upgrade());
        assert_eq!(
            kept(&h),
            [("Upgrade".into(), "WebSocket".into()), ("Sec-WebSocket-Accept".into(), "x".into())]
        );
        // "keep-alive, Upgrade" is not exactly "upgrade"
        let h = head(
            "101 Switching Protocols",
            &[("Connection", "keep-alive, Upgrade"), ("Upgrade", "h2c")],
        )
        .unwrap();
        assert!(!h.upgrade());
        assert!(kept(&h).is_empty());
    }

    // ---- framing

    #[test]
    fn framing_table() {
        use BodyFraming::*;
        use ConnectionHeader as C;
        let v10 = Version::HTTP_10;
        let v11 = Version::HTTP_11;
        let cl = [("Content-Length", "5")];
        #[rustfmt::skip]
        type Case<'a> = (&'a str, Version, bool, &'a str, &'a [(&'a str, &'a str)], bool, BodyFraming, bool, C, bool);
        let cases: &[Case<'_>] = &[
            // method, version, req keep-alive, status, headers, server keepalive => body, keep, conn, omit CL
            ("GET", v11, true, "200 OK", &[], true, Chunked, true, C::KeepAlive, false),
            ("GET", v11, true, "200 OK", &cl, true, Length(5), true, C::KeepAlive, false),
            ("GET", v10, true, "200 OK", &[], true, CloseDelimited, false, C::Close, false),
            ("GET", v10, false, "200 OK", &cl, true, Length(5), false, C::Close, false),
            ("GET", v10, true, "200 OK", &cl, true, Length(5), true, C::KeepAlive, false),
            ("GET", v11, false, "200 OK", &[], true, Chunked, false, C::Close, false),
            ("GET", v11, true, "200 OK", &[], false, Chunked, false, C::Close, false),
            ("HEAD", v11, true, "200 OK", &[], true, NoBody, true, C::KeepAlive, false),
            ("HEAD", v11, true, "200 OK", &cl, true, NoBody, true, C::KeepAlive, false),
            ("HEAD", v10, true, "200 OK", &[], true, NoBody, true, C::KeepAlive, false),
            ("GET", v11, true, "204 No Content", &cl, true, NoBody, true, C::KeepAlive, true),
            ("GET", v10, true, "204 No Content", &[], true, NoBody, true, C::KeepAlive, true),
            ("GET", v11, true, "304 Not Modified", &cl, true, NoBody, true, C::KeepAlive, false),
            ("GET", v11, true, "100 Continue", &cl, true, NoBody, true, C::KeepAlive, true),
            ("GET", v11, true, "103 Early Hints", &[], true, NoBody, true, C::KeepAlive, true),
            ("GET", v11, true, "199 X", &[], true, NoBody, true, C::KeepAlive, true),
            ("GET", v11, true, "205 Reset Content", &[], true, Chunked, true, C::KeepAlive, false),
            ("CONNECT", v11, false, "200 OK", &cl, true, CloseDelimited, false, C::Close, true),
            ("CONNECT", v11, true, "200 OK", &[], true, CloseDelimited, false, C::Close, true),
            ("CONNECT", v11, false, "407 Auth", &cl, true, Length(5), false, C::Close, false),
        ];
        for (i, &(m, v, ka, st, hs, srv, body, keep, conn, omit)) in cases.iter().enumerate() {
            let f = choose_framing(&req(m, v, ka), &head(st, hs).unwrap(), srv);
            assert_eq!(
                (f.body, f.keep_alive, f.connection, f.omit_content_length),
                (body, keep, conn, omit),
                "case {i}"
            );
            assert_eq!(f.version, v, "case {i}");
        }
    }

    #[test]
    fn upgrade_connection_header_and_odd_versions() {
        let h =
            head("101 Switching Protocols", &[("Connection", "upgrade"), ("Upgrade", "websocket")])
                .unwrap();
        let f = choose_framing(&req("GET", Version::HTTP_11, true), &h, false);
        assert_eq!(
            (f.connection, f.keep_alive, f.body),
            (ConnectionHeader::Upgrade, false, BodyFraming::NoBody)
        );
        let f = choose_framing(
            &req("GET", Version { major: 1, minor: 2 }, true),
            &head("200 OK", &[]).unwrap(),
            true,
        );
        assert_eq!((f.version, f.body), (Version::HTTP_11, BodyFraming::Chunked));
        let f = choose_framing(
            &req("GET", Version { major: 0, minor: 9 }, true),
            &head("200 OK", &[]).unwrap(),
            true,
        );
        assert_eq!(f.version, Version::HTTP_11);
    }

    // ---- head encoding

    fn encoded(m: &str, v: Version, ka: bool, st: &str, hs: &[(&str, &str)], srv: bool) -> String {
        let h = head(st, hs).unwrap();
        let f = choose_framing(&req(m, v, ka), &h, srv);
        let mut out = Vec::new();
        encode_head(&h, &f, b"ferrocorn", b"Sun, 06 Nov 1994 08:49:37 GMT", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn head_bytes() {
        assert_eq!(
            encoded(
                "GET",
                Version::HTTP_11,
                true,
                "200 OK",
                &[("Content-Type", "text/plain"), ("Date", "x"), ("X-B", "2")],
                true
            ),
            "HTTP/1.1 200 OK\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\
             Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\nX-B: 2\r\n\r\n"
        );
        assert_eq!(
            encoded("GET", Version::HTTP_10, true, "200 OK", &[("Content-Length", "3")], true),
            "HTTP/1.0 200 OK\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\
             Content-Length: 3\r\n\r\n"
        );
        assert_eq!(
            encoded("GET", Version::HTTP_10, true, "200 OK", &[], true),
            "HTTP/1.0 200 OK\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n"
        );
        // sync worker: always close
        assert_eq!(
            encoded(
                "GET",
                Version::HTTP_11,
                true,
                "404 Not Found",
                &[("Content-Length", "0")],
                false
            ),
            "HTTP/1.1 404 Not Found\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\
             Content-Length: 0\r\n\r\n"
        );
        // 204: Content-Length removed; HEAD keeps it
        assert_eq!(
            encoded(
                "GET",
                Version::HTTP_11,
                true,
                "204",
                &[("Content-Length", "3"), ("X", "y")],
                true
            ),
            "HTTP/1.1 204 \r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\nX: y\r\n\r\n"
        );
        assert_eq!(
            encoded("HEAD", Version::HTTP_11, true, "200 OK", &[("Content-Length", "3")], true),
            "HTTP/1.1 200 OK\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\
             Content-Length: 3\r\n\r\n"
        );
        assert_eq!(
            encoded(
                "GET",
                Version::HTTP_11,
                true,
                "101 Switching Protocols",
                &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
                true
            ),
            "HTTP/1.1 101 Switching Protocols\r\nServer: ferrocorn\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn head_server_and_date_inputs() {
        let h = head("200 OK", &[("Content-Length", "0")]).unwrap();
        let f = choose_framing(&req("GET", Version::HTTP_11, true), &h, true);
        let mut out = Vec::new();
        encode_head(&h, &f, b"", b"", &mut out);
        assert_eq!(
            s(&out),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
        out.clear();
        encode_head(&h, &f, b"evil\r\nX-Injected: 1", b"d\r\n", &mut out);
        assert_eq!(
            s(&out),
            "HTTP/1.1 200 OK\r\nServer: evilX-Injected: 1\r\nDate: d\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
    }

    // ---- body

    fn run(framing: BodyFraming, chunks: &[&[u8]]) -> (Vec<u8>, BodyWriter, Finish) {
        let mut w = BodyWriter::new(framing);
        let mut out = Vec::new();
        for c in chunks {
            w.write(c, &mut out);
        }
        let fin = w.finish();
        out.extend_from_slice(fin.last);
        (out, w, fin)
    }

    #[test]
    fn chunk_framing() {
        let big = [b'x'; 300];
        let (out, w, fin) = run(BodyFraming::Chunked, &[b"hello", b"", b" world!!!!!", &big]);
        let mut want = b"5\r\nhello\r\nB\r\n world!!!!!\r\n12C\r\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, want);
        assert_eq!((w.sent(), w.dropped(), fin.missing), (316, 0, 0));
        let (out, _, _) = run(BodyFraming::Chunked, &[]);
        assert_eq!(out, b"0\r\n\r\n");
        let (out, _, _) = run(BodyFraming::Chunked, &[b"", b""]);
        assert_eq!(out, b"0\r\n\r\n");
    }

    #[test]
    fn chunk_prefix_sizes() {
        let mut w = BodyWriter::new(BodyFraming::Chunked);
        for (len, want) in [
            (1usize, "1\r\n"),
            (15, "F\r\n"),
            (16, "10\r\n"),
            (255, "FF\r\n"),
            (4096, "1000\r\n"),
            (usize::MAX, "FFFFFFFFFFFFFFFF\r\n"),
        ] {
            let f = w.frame(len);
            assert_eq!(s(f.prefix()), want);
            assert_eq!((f.take, f.suffix, f.dropped), (len, &b"\r\n"[..], 0));
        }
        let f = w.frame(0);
        assert!(f.is_empty());
    }

    #[test]
    fn content_length_truncation() {
        let (out, w, fin) = run(BodyFraming::Length(8), &[b"hello", b" world", b"!"]);
        assert_eq!(out, b"hello wo");
        assert_eq!((w.sent(), w.dropped(), fin.missing, fin.must_close()), (8, 4, 0, false));
        let mut w = BodyWriter::new(BodyFraming::Length(8));
        let f = w.frame(5);
        assert_eq!((f.prefix(), f.take, f.suffix, f.dropped), (&b""[..], 5, &b""[..], 0));
        assert_eq!(w.remaining(), Some(3));
        let f = w.frame(6);
        assert_eq!((f.take, f.dropped, f.warn_no_body), (3, 3, false));
        assert_eq!(w.frame(1).dropped, 1);
        // too few
        let (out, w, fin) = run(BodyFraming::Length(10), &[b"abc"]);
        assert_eq!(out, b"abc");
        assert_eq!((w.sent(), fin.missing, fin.must_close()), (3, 7, true));
        let (out, _, fin) = run(BodyFraming::Length(0), &[b"abc"]);
        assert_eq!((out.len(), fin.missing), (0, 0));
    }

    #[test]
    fn close_delimited_passthrough() {
        let (out, w, fin) = run(BodyFraming::CloseDelimited, &[b"abc", b"", b"def"]);
        assert_eq!(out, b"abcdef");
        assert_eq!((w.sent(), fin.last, fin.missing), (6, &b""[..], 0));
        assert_eq!(w.remaining(), None);
    }

    #[test]
    fn no_body_drops_and_warns_once() {
        let mut w = BodyWriter::new(BodyFraming::NoBody);
        let mut out = Vec::new();
        assert!(!w.write(b"", &mut out).warn_no_body);
        let f = w.write(b"abc", &mut out);
        assert!(f.warn_no_body);
        assert_eq!((f.take, f.dropped), (0, 3));
        assert!(!w.write(b"def", &mut out).warn_no_body);
        assert!(out.is_empty());
        assert_eq!((w.sent(), w.dropped()), (0, 6));
        assert_eq!(w.finish(), Finish { last: b"", missing: 0 });
    }

    #[test]
    fn finish_is_once() {
        let mut w = BodyWriter::new(BodyFraming::Chunked);
        assert_eq!(w.finish().last, b"0\r\n\r\n");
        assert_eq!(w.finish().last, b"");
        let f = w.frame(3);
        assert_eq!((f.take, f.dropped), (0, 3));
        assert!(f.prefix().is_empty());
    }

    // ---- error pages

    #[test]
    fn continue_bytes() {
        assert_eq!(CONTINUE, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn error_page_exact_bytes() {
        let mut out = Vec::new();
        error_page(
            400,
            "Bad Request",
            "Invalid Request Line 'Invalid HTTP request line: 'GET''",
            &mut out,
        );
        let body = "<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n    \
                    <h1><p>Bad Request</p></h1>\n    Invalid Request Line &#x27;Invalid HTTP request line: \
                    &#x27;GET&#x27;&#x27;\n  </body>\n</html>\n";
        let want = alloc::format!(
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(s(&out), want);
        assert_eq!(body.len(), 196);
    }

    #[test]
    fn error_page_escaping_and_latin1() {
        let mut out = Vec::new();
        error_page(400, "Bad Request", "<a href=\"x\">&'\u{e9}\u{263a}", &mut out);
        let text: String = out.iter().map(|&b| char::from(b)).collect();
        assert!(text.contains("\n    &lt;a href=&quot;x&quot;&gt;&amp;&#x27;\u{e9}?\n"), "{text}");
        let body_start = text.find("\r\n\r\n").unwrap() + 4;
        let n = out.len() - body_start;
        assert!(text.contains(&alloc::format!("Content-Length: {n}\r\n")));
        assert!(out.contains(&0xe9));
    }

    #[test]
    fn error_page_empty_500() {
        let mut out = Vec::new();
        internal_error_page(&mut out);
        let body = "<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n  <body>\n    \
                    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n";
        assert_eq!(
            s(&out),
            alloc::format!(
                "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn error_response_uses_recv_error() {
        let err = RecvError::ForbiddenProxyRequest(Detail::new(b"10.0.0.1"));
        let mut out = Vec::new();
        error_response(&err, &mut out);
        let text = s(&out);
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n"), "{text}");
        assert!(text.contains("<title>Forbidden</title>"));
        assert!(text.contains("\n    Request forbidden\n"));
        let mut want = Vec::new();
        error_page(err.status(), err.reason(), &err.page_message(), &mut want);
        assert_eq!(out, want);
    }
}
