//! The request head (RFC 9112 §2-§6): an incremental, line-at-a-time parser.
//!
//! The parser keeps offsets into the caller's buffer (the bytes of the head received so
//! far, starting at its first byte), never the bytes themselves, until the head is
//! complete; then [`HeadParser::finish`] copies the head once into a [`RequestHead`].
//!
//! **Every verdict depends only on the bytes, never on how they were split.** A line is
//! judged once it is complete (its CRLF seen), or as soon as it can no longer fit in its
//! limit; limits are positional ("the line is longer than N"), not "the buffer is larger
//! than N". Searching for a line's end resumes where it stopped, so a head trickled in one
//! byte at a time costs time linear in its size.
//!
//! Error precedence follows gunicorn's within a line (count, colon, name, value) and
//! across the head (all fields first, then framing, then Host).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::chars::{
    common_token_prefix, find_eol, is_ows, is_token, is_token_str, target_run, trim_ows, value_run,
};
use super::host::{is_valid_authority, is_valid_host};
use super::{BodyKind, HeaderField, RequestHead, Scheme, Span, TargetForm, Version};
use crate::config::{ProtoConfig, UnderscoreHeaders};
use crate::error::{Detail, HeadLimit, RecvError};
use crate::proxy::ProxyInfo;

/// What a search for the end of the current line found.
pub(crate) enum LineEnd {
    /// The line's content ends here (a CRLF follows).
    Found(usize),
    /// Not yet complete and still within its limit.
    NeedData,
    /// The line cannot end within its limit.
    TooLong,
    /// A LF without CR at this offset (RFC 9112 §2.2).
    BareLf(usize),
}

/// Finds the end of the line starting at `start`, whose content may hold at most
/// `max_content` bytes. `searched` remembers how far an earlier call looked.
///
/// Only CRLF ends a line. A bare LF is an error at once (RFC 9112 §2.2); a bare CR is
/// left in the line, where the validation of whatever element holds it rejects it (RFC
/// 9112 §2.2 allows "invalid" as the treatment), so the error class is the one gunicorn
/// gives: `GET / HTTP/1.1\r\r\n` is an invalid version, `A: b\rc` an invalid value.
pub(crate) fn line_end(
    buf: &[u8],
    start: usize,
    searched: &mut usize,
    max_content: usize,
) -> LineEnd {
    // The CR may sit at most at start + max_content.
    let window_end = start.saturating_add(max_content).saturating_add(1);
    let scan_to = buf.len().min(window_end);
    let mut from = (*searched).max(start);
    while from < scan_to {
        let Some(i) = find_eol(&buf[from..scan_to]) else {
            from = scan_to;
            break;
        };
        let p = from + i;
        if buf[p] == b'\n' {
            return LineEnd::BareLf(p);
        }
        match buf.get(p + 1) {
            None => {
                *searched = p;
                return LineEnd::NeedData;
            }
            Some(b'\n') => return LineEnd::Found(p),
            Some(_) => from = p + 1,
        }
    }
    *searched = from;
    if buf.len() >= window_end { LineEnd::TooLong } else { LineEnd::NeedData }
}

/// The request line, as spans into the head.
#[derive(Clone, Copy, Debug)]
struct RequestLine {
    method: Span,
    target: Span,
    version: Version,
    form: TargetForm,
}

/// Where a field's value lives: in the head, or (obs-fold joined) in `folded`.
#[derive(Clone, Copy, Debug)]
enum ValueLoc {
    Head(Span),
    Folded(Span),
}

/// A field line whose policy waits until we know no continuation line follows.
#[derive(Clone, Copy, Debug)]
struct Pending {
    name: Span,
    value: ValueLoc,
    /// Bytes of the field so far, with the CRLF of each of its lines.
    size: usize,
    /// Whether the name holds `_` (found while the name was scanned).
    underscore: bool,
}

/// The fields that decide framing, routing and persistence, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Host,
    ContentLength,
    TransferEncoding,
    ContentType,
    Connection,
    Expect,
    Other,
}

fn classify(name: &[u8]) -> Known {
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    match name.len() {
        4 if is(b"host") => Known::Host,
        6 if is(b"expect") => Known::Expect,
        10 if is(b"connection") => Known::Connection,
        12 if is(b"content-type") => Known::ContentType,
        14 if is(b"content-length") => Known::ContentLength,
        17 if is(b"transfer-encoding") => Known::TransferEncoding,
        _ => Known::Other,
    }
}

/// Fields that must not appear in a trailer section: framing, routing, authentication and
/// request modifiers (RFC 9110 §6.5.1). gunicorn refuses the first six.
const FORBIDDEN_TRAILERS: [&[u8]; 10] = [
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"trailer",
    b"authorization",
    b"te",
    b"proxy-authorization",
    b"connection",
    b"expect",
    b"upgrade",
];

/// Whether a field section is a request head or the trailer section of a chunked body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Head,
    Trailers,
}

/// Parses field lines (`field-name ":" OWS field-value OWS`) one at a time, for a head or a
/// trailer section, applying the header policy.
#[derive(Debug)]
pub(crate) struct FieldParser {
    section: Section,
    pub(crate) fields: Vec<HeaderField>,
    pub(crate) folded: Vec<u8>,
    /// Indexes into `fields` whose value span points into `folded`.
    pub(crate) folded_fields: Vec<usize>,
    pending: Option<Pending>,
    field_lines: usize,
    sem: Semantics,
}

/// The first framing problem seen in the fields, reported once the head is complete (as
/// gunicorn decides framing after reading every field).
#[derive(Clone, Copy, Debug)]
enum FramingFault {
    /// A second Content-Length field.
    RepeatedLength,
    /// A coding after chunked, or chunked twice.
    BadTransferEncoding,
    /// A coding nobody knows (501), with the field value that named it.
    UnknownCoding(ValueLoc),
}

/// What the fields said, gathered while they are read.
#[derive(Clone, Copy, Debug, Default)]
struct Semantics {
    host: Option<ValueLoc>,
    content_type: bool,
    content_length: Option<ValueLoc>,
    transfer_encoding: TeState,
    framing_fault: Option<FramingFault>,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    scheme: Option<Scheme>,
}

/// The Transfer-Encoding list across all its fields (RFC 9112 §6.1).
#[derive(Clone, Copy, Debug, Default)]
struct TeState {
    present: bool,
    chunked: bool,
    /// A coding other than chunked came before chunked (we decode none of them).
    other_coding: bool,
}

impl Semantics {
    /// The header policy for one request-head field, in gunicorn's order.
    fn apply(
        &mut self,
        name: &[u8],
        value: &[u8],
        loc: ValueLoc,
        cfg: &ProtoConfig,
        trusted: bool,
        version: Version,
    ) -> Result<(), RecvError> {
        match classify(name) {
            // Singleton fields (RFC 9110 §5.3, §7.2): a second one is ambiguous.
            Known::Host => {
                if self.host.is_some() {
                    return Err(RecvError::InvalidHeader(Detail::new(b"HOST")));
                }
                self.host = Some(loc);
            }
            Known::ContentType => {
                if self.content_type {
                    return Err(RecvError::InvalidHeader(Detail::new(b"CONTENT-TYPE")));
                }
                self.content_type = true;
            }
            Known::Expect => {
                // Only 100-continue is defined (RFC 9110 §10.1.1); on HTTP/1.0 it is ignored.
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(RecvError::ExpectationFailed(Detail::new(value)));
                }
                self.expect_continue = version.at_least_11();
            }
            Known::ContentLength => {
                if self.content_length.is_some() && self.framing_fault.is_none() {
                    self.framing_fault = Some(FramingFault::RepeatedLength);
                }
                self.content_length = Some(loc);
            }
            Known::TransferEncoding => {
                let fault = self.transfer_encoding(value, loc);
                if self.framing_fault.is_none() {
                    self.framing_fault = fault;
                }
            }
            Known::Connection => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
            Known::Other => {}
        }
        if trusted {
            for (scheme_name, secure_value) in &cfg.trust.secure_scheme_headers {
                if name.eq_ignore_ascii_case(scheme_name.as_bytes()) {
                    let scheme =
                        if value == secure_value.as_bytes() { Scheme::Https } else { Scheme::Http };
                    match self.scheme {
                        Some(s) if s != scheme => return Err(RecvError::InvalidSchemeHeaders),
                        _ => self.scheme = Some(scheme),
                    }
                }
            }
        }
        Ok(())
    }

    /// One Transfer-Encoding field value: a list of codings, chunked last and once
    /// (RFC 9112 §6.1, §7). Empty list elements are ignored (RFC 9110 §5.6.1).
    fn transfer_encoding(&mut self, value: &[u8], loc: ValueLoc) -> Option<FramingFault> {
        let te = &mut self.transfer_encoding;
        te.present = true;
        let invalid = || Some(FramingFault::BadTransferEncoding);
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                continue;
            }
            if te.chunked {
                // Anything after chunked, including a second chunked.
                return invalid();
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                te.chunked = true;
            } else if is_known_coding(coding) {
                te.other_coding = true;
            } else {
                return Some(FramingFault::UnknownCoding(loc));
            }
        }
        None
    }
}

/// Codings registered for Transfer-Encoding besides chunked (RFC 9112 §7). gunicorn
/// passes them through undecoded; we refuse them with 501 rather than hand the
/// application bytes it cannot tell are encoded.
fn is_known_coding(c: &[u8]) -> bool {
    [&b"gzip"[..], b"deflate", b"compress", b"x-gzip", b"x-compress", b"identity"]
        .iter()
        .any(|k| c.eq_ignore_ascii_case(k))
}

impl FieldParser {
    pub(crate) fn new(section: Section) -> Self {
        FieldParser {
            section,
            fields: Vec::new(),
            folded: Vec::new(),
            folded_fields: Vec::new(),
            pending: None,
            field_lines: 0,
            sem: Semantics::default(),
        }
    }

    /// Handles one complete, non-empty line `buf[start..end]`.
    pub(crate) fn line(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        cfg: &ProtoConfig,
        trusted: bool,
        version: Version,
    ) -> Result<(), RecvError> {
        let line = &buf[start..end];
        if is_ows(line[0]) {
            if let Some(p) = self.pending {
                return self.continuation(buf, p, line, cfg);
            }
        }
        self.flush(buf, cfg, trusted, version)?;
        if self.field_lines >= cfg.limits.fields {
            return Err(RecvError::LimitRequestHeaders(HeadLimit::Fields));
        }
        self.field_lines += 1;

        // field-name ":" : no colon (or an empty name) is InvalidHeader, anything else
        // before the colon that is not a token is InvalidHeaderName (RFC 9110 §5.1, 9112 §5.1).
        let name_len = line.iter().position(|&b| !is_token(b)).unwrap_or(line.len());
        let colon = if line.get(name_len) == Some(&b':') {
            name_len
        } else {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(RecvError::InvalidHeader(Detail::new(line)));
            };
            let mut name = &line[..colon];
            if cfg.parser.strip_header_spaces {
                while let [rest @ .., last] = name {
                    if is_ows(*last) { name = rest } else { break }
                }
            }
            if colon == 0 || !is_token_str(name) {
                return Err(if colon == 0 {
                    RecvError::InvalidHeader(Detail::new(line))
                } else {
                    RecvError::InvalidHeaderName(Detail::new(name))
                });
            }
            colon
        };
        if name_len == 0 {
            return Err(RecvError::InvalidHeader(Detail::new(line)));
        }
        let name = &line[..name_len];
        if self.section == Section::Trailers
            && FORBIDDEN_TRAILERS.iter().any(|f| name.eq_ignore_ascii_case(f))
        {
            return Err(RecvError::InvalidHeaderName(Detail::new(name)));
        }
        // OWS field-value OWS: only SP and HTAB are trimmed (RFC 9110 §5.5).
        let raw_value = &line[colon + 1..];
        if value_run(raw_value) != raw_value.len() {
            return Err(RecvError::InvalidHeader(Detail::new(name)));
        }
        let lead = raw_value.len() - trim_start(raw_value).len();
        let trimmed = trim_ows(raw_value);
        let vstart = start + colon + 1 + lead;
        self.pending = Some(Pending {
            name: Span::new(start..start + name_len),
            value: ValueLoc::Head(Span::new(vstart..vstart + trimmed.len())),
            size: line.len() + 2,
            underscore: name.contains(&b'_'),
        });
        Ok(())
    }

    /// The common case in one pass: a complete, valid `name: value CRLF` line starting at
    /// `start` whose content fits in `max_content`. Returns the offset after its CRLF, or
    /// `None` for anything else (incomplete, too long, a continuation, any invalid byte),
    /// which the careful path [`FieldParser::line`] then judges. For a line this accepts,
    /// the careful path would produce exactly the same field.
    #[inline]
    pub(crate) fn quick_line(
        &mut self,
        buf: &[u8],
        start: usize,
        max_content: usize,
        cfg: &ProtoConfig,
        trusted: bool,
        version: Version,
    ) -> Option<Result<usize, RecvError>> {
        let rest = &buf[start..];
        // The usual name bytes 16 at a time, then the rest of the token set (`_` among it).
        let mut i = common_token_prefix(rest);
        let mut underscore = false;
        while i < rest.len() && is_token(rest[i]) {
            underscore |= rest[i] == b'_';
            i += 1;
        }
        if i == 0 || rest.get(i) != Some(&b':') {
            return None;
        }
        let name_end = i;
        i += 1;
        while i < rest.len() && is_ows(rest[i]) {
            i += 1;
        }
        let vstart = i;
        i += value_run(&rest[i..]);
        if i > max_content || rest.get(i) != Some(&b'\r') || rest.get(i + 1) != Some(&b'\n') {
            return None;
        }
        let mut vend = i;
        while vend > vstart && is_ows(rest[vend - 1]) {
            vend -= 1;
        }
        if self.section == Section::Trailers {
            // Forbidden trailer names take the careful path to get their error.
            let name = &rest[..name_end];
            if FORBIDDEN_TRAILERS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                return None;
            }
        }
        let r = self.flush(buf, cfg, trusted, version).and_then(|()| {
            if self.field_lines >= cfg.limits.fields {
                return Err(RecvError::LimitRequestHeaders(HeadLimit::Fields));
            }
            self.field_lines += 1;
            self.pending = Some(Pending {
                name: Span::new(start..start + name_end),
                value: ValueLoc::Head(Span::new(start + vstart..start + vend)),
                size: i + 2,
                underscore,
            });
            Ok(start + i + 2)
        });
        Some(r)
    }

    /// An obs-fold line (RFC 9112 §5.2): refused unless folding is permitted, then joined
    /// to the field it continues with one SP.
    fn continuation(
        &mut self,
        buf: &[u8],
        p: Pending,
        line: &[u8],
        cfg: &ProtoConfig,
    ) -> Result<(), RecvError> {
        let name = p.name.get(buf);
        if !cfg.parser.permit_obsolete_folding {
            return Err(RecvError::ObsoleteFolding(Detail::new(name)));
        }
        let size = p.size + line.len() + 2;
        if size > cfg.limits.field_size {
            return Err(RecvError::LimitRequestHeaders(HeadLimit::FieldSize));
        }
        if value_run(line) != line.len() {
            return Err(RecvError::InvalidHeader(Detail::new(name)));
        }
        let start = match p.value {
            ValueLoc::Head(s) => {
                let start = self.folded.len();
                self.folded.extend_from_slice(s.get(buf));
                start
            }
            // A folded value is always the last run of `folded`: extend it in place.
            ValueLoc::Folded(s) => s.start as usize,
        };
        let piece = trim_ows(line);
        if !piece.is_empty() {
            if self.folded.len() > start {
                self.folded.push(b' ');
            }
            self.folded.extend_from_slice(piece);
        }
        self.pending = Some(Pending {
            value: ValueLoc::Folded(Span::new(start..self.folded.len())),
            size,
            ..p
        });
        Ok(())
    }

    /// Applies the header policy to the pending field and keeps it (or drops it).
    pub(crate) fn flush(
        &mut self,
        buf: &[u8],
        cfg: &ProtoConfig,
        trusted: bool,
        version: Version,
    ) -> Result<(), RecvError> {
        let Some(p) = self.pending.take() else { return Ok(()) };
        let name = p.name.get(buf);
        if p.underscore && !(trusted && cfg.headers.is_forwarder_header(name)) {
            match cfg.headers.underscore {
                UnderscoreHeaders::Drop => return Ok(()),
                UnderscoreHeaders::Refuse => {
                    return Err(RecvError::InvalidHeaderName(Detail::new(name)));
                }
                UnderscoreHeaders::Dangerous => {}
            }
        }
        if self.section == Section::Head {
            let value = match p.value {
                ValueLoc::Head(s) => s.get(buf),
                ValueLoc::Folded(s) => s.get(&self.folded),
            };
            self.sem.apply(name, value, p.value, cfg, trusted, version)?;
        }
        if let ValueLoc::Folded(_) = p.value {
            self.folded_fields.push(self.fields.len());
        }
        let value = match p.value {
            ValueLoc::Head(s) | ValueLoc::Folded(s) => s,
        };
        self.fields.push(HeaderField { name: p.name, value });
        Ok(())
    }

    /// Ends the section: applies the last field's policy.
    pub(crate) fn end(
        &mut self,
        buf: &[u8],
        cfg: &ProtoConfig,
        trusted: bool,
        version: Version,
    ) -> Result<(), RecvError> {
        self.flush(buf, cfg, trusted, version)
    }
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ows(*first) { s = rest } else { break }
    }
    s
}

/// Where the head parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before anything: one leading CRLF may be skipped (RFC 9112 §2.2).
    Start,
    RequestLine,
    Fields,
}

/// The incremental request-head parser.
#[derive(Debug)]
pub(crate) struct HeadParser {
    phase: Phase,
    line_start: usize,
    searched: usize,
    headers_start: usize,
    line: Option<RequestLine>,
    fields: FieldParser,
}

/// Progress of a head (or trailer section) parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    NeedData,
    /// The section ended; it took this many bytes of the buffer.
    Done(usize),
}

impl HeadParser {
    pub(crate) fn new() -> Self {
        HeadParser {
            phase: Phase::Start,
            line_start: 0,
            searched: 0,
            headers_start: 0,
            line: None,
            fields: FieldParser::new(Section::Head),
        }
    }

    /// Gets ready for the next head, keeping the field storage `fields` (emptied).
    pub(crate) fn reset(&mut self, mut fields: Vec<HeaderField>) {
        fields.clear();
        self.phase = Phase::Start;
        self.line_start = 0;
        self.searched = 0;
        self.headers_start = 0;
        self.line = None;
        let f = &mut self.fields;
        f.fields = fields;
        f.folded.clear();
        f.folded_fields.clear();
        f.pending = None;
        f.field_lines = 0;
        f.sem = Semantics::default();
    }

    /// Whether no byte of the head has been consumed by the parser yet.
    pub(crate) fn at_start(&self) -> bool {
        self.phase == Phase::Start
    }

    /// Reads as far as `buf` (the head's bytes so far, from its first byte) allows.
    pub(crate) fn advance(
        &mut self,
        buf: &[u8],
        cfg: &ProtoConfig,
        trusted: bool,
    ) -> Result<Progress, RecvError> {
        loop {
            match self.phase {
                Phase::Start => {
                    match buf {
                        [] | [b'\r'] => return Ok(Progress::NeedData),
                        [b'\r', b'\n', ..] => self.line_start = 2,
                        _ => self.line_start = 0,
                    }
                    self.searched = self.line_start;
                    self.phase = Phase::RequestLine;
                }
                Phase::RequestLine => {
                    let limit = cfg.limits.request_line;
                    let start = self.line_start;
                    let end = match line_end(buf, start, &mut self.searched, limit) {
                        LineEnd::Found(end) => end,
                        LineEnd::NeedData => return Ok(Progress::NeedData),
                        LineEnd::TooLong => {
                            return Err(RecvError::LimitRequestLine {
                                size: buf.len() - start,
                                limit,
                            });
                        }
                        LineEnd::BareLf(p) => {
                            return Err(RecvError::InvalidRequestLine(Detail::new(&buf[start..p])));
                        }
                    };
                    self.line = Some(parse_request_line(buf, start, end, cfg)?);
                    self.line_start = end + 2;
                    self.searched = self.line_start;
                    self.headers_start = self.line_start;
                    self.phase = Phase::Fields;
                }
                Phase::Fields => {
                    let version = self.line.map_or(Version::HTTP_11, |l| l.version);
                    let start = self.line_start;
                    let cap = cfg.limits.head_buffer();
                    let used = start - self.headers_start;
                    // The section, its final CRLF included, fits in `cap`; a field line, with
                    // its CRLF, in `field_size`.
                    let by_cap = cap.saturating_sub(used).saturating_sub(2);
                    let by_field = cfg.limits.field_size.saturating_sub(2);
                    if let Some(next) = self.fields.quick_line(
                        buf,
                        start,
                        by_cap.min(by_field),
                        cfg,
                        trusted,
                        version,
                    ) {
                        self.line_start = next?;
                        self.searched = self.line_start;
                        continue;
                    }
                    match line_end(buf, start, &mut self.searched, by_cap.min(by_field)) {
                        LineEnd::Found(end) if end == start => {
                            self.fields.end(buf, cfg, trusted, version)?;
                            return Ok(Progress::Done(end + 2));
                        }
                        LineEnd::Found(end) => {
                            self.fields.line(buf, start, end, cfg, trusted, version)?;
                            self.line_start = end + 2;
                            self.searched = self.line_start;
                        }
                        LineEnd::NeedData => return Ok(Progress::NeedData),
                        LineEnd::TooLong => {
                            let which = if by_field <= by_cap {
                                HeadLimit::FieldSize
                            } else {
                                HeadLimit::Buffer
                            };
                            return Err(RecvError::LimitRequestHeaders(which));
                        }
                        LineEnd::BareLf(p) => {
                            return Err(RecvError::InvalidHeader(Detail::new(&buf[start..p])));
                        }
                    }
                }
            }
        }
    }

    /// Builds the request head from the complete head `buf[..len]`: decides framing,
    /// persistence and Host, then copies the bytes once.
    ///
    /// The head is written into `head`, whose buffers are reused (no allocation once they
    /// have grown to the connection's usual head size).
    pub(crate) fn finish(
        &mut self,
        buf: &[u8],
        len: usize,
        cfg: &ProtoConfig,
        trusted: bool,
        proxy: Option<Arc<ProxyInfo>>,
        head: &mut RequestHead,
    ) -> Result<(), RecvError> {
        let Some(line) = self.line else {
            return Err(RecvError::InvalidRequestLine(Detail::new(b"")));
        };
        let f = &mut self.fields;
        let sem = &f.sem;
        let value = |loc: ValueLoc| match loc {
            ValueLoc::Head(s) => s.get(buf),
            ValueLoc::Folded(s) => s.get(&f.folded),
        };

        // Framing (RFC 9112 §6.1, §6.3).
        match sem.framing_fault {
            None => {}
            Some(FramingFault::RepeatedLength) => {
                return Err(RecvError::InvalidHeader(Detail::new(b"CONTENT-LENGTH")));
            }
            Some(FramingFault::BadTransferEncoding) => {
                return Err(RecvError::InvalidHeader(Detail::new(b"TRANSFER-ENCODING")));
            }
            Some(FramingFault::UnknownCoding(loc)) => {
                return Err(RecvError::UnsupportedTransferCoding(Detail::new(value(loc))));
            }
        }
        let te = sem.transfer_encoding;
        let body = if te.present {
            if !te.chunked {
                // Chunked must be the final coding of a request (RFC 9112 §6.3 (4)).
                return Err(RecvError::InvalidHeader(Detail::new(b"TRANSFER-ENCODING")));
            }
            if te.other_coding {
                return Err(RecvError::UnsupportedTransferCoding(Detail::new(
                    b"a transfer coding other than chunked",
                )));
            }
            if !line.version.at_least_11() {
                return Err(RecvError::InvalidHeader(Detail::new(b"TRANSFER-ENCODING")));
            }
            if sem.content_length.is_some() {
                return Err(RecvError::InvalidHeader(Detail::new(b"CONTENT-LENGTH")));
            }
            BodyKind::Chunked
        } else if let Some(loc) = sem.content_length {
            match parse_content_length(value(loc)) {
                Some(0) => BodyKind::Empty,
                Some(n) => BodyKind::Length(n),
                None => return Err(RecvError::InvalidHeader(Detail::new(b"CONTENT-LENGTH"))),
            }
        } else {
            BodyKind::Empty
        };

        // Host (RFC 9112 §3.2, RFC 9110 §7.2).
        match sem.host {
            Some(loc) if !is_valid_host(value(loc)) => {
                return Err(RecvError::InvalidHost(Detail::new(value(loc))));
            }
            None if line.version.at_least_11() => {
                return Err(RecvError::InvalidHost(Detail::new(b"missing")));
            }
            _ => {}
        }

        let is_connect = line.form == TargetForm::Authority;
        let keep_alive =
            !sem.close && !is_connect && (line.version.at_least_11() || sem.keep_alive);

        let expect_continue = sem.expect_continue;
        let scheme = sem.scheme;
        head.raw.clear();
        head.raw.extend_from_slice(&buf[..len]);
        core::mem::swap(&mut head.fields, &mut f.fields);
        if !f.folded_fields.is_empty() {
            let base = len as u32;
            head.raw.extend_from_slice(&f.folded);
            for &i in &f.folded_fields {
                head.fields[i].value.start += base;
                head.fields[i].value.end += base;
            }
        }
        if cfg.parser.casefold_method {
            head.raw[line.method.start as usize..line.method.end as usize].make_ascii_uppercase();
        }
        head.method = line.method;
        head.target = line.target;
        head.version = line.version;
        head.target_form = line.form;
        head.body = body;
        head.expect_continue = expect_continue;
        head.keep_alive = keep_alive;
        head.scheme = scheme;
        head.peer_trusted = trusted;
        head.proxy = proxy;
        Ok(())
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no spaces, no list; leading zeros
/// are fine; a value that does not fit in 64 bits is invalid.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), judged in gunicorn's order:
/// shape, method, target, version.
fn parse_request_line(
    buf: &[u8],
    start: usize,
    end: usize,
    cfg: &ProtoConfig,
) -> Result<RequestLine, RecvError> {
    let line = &buf[start..end];
    let bad_line = || RecvError::InvalidRequestLine(Detail::new(line));
    // Common case in one pass: a token, SP, target bytes, SP. Anything else is split
    // the slow way, which finds the same spaces and then names the fault.
    let method_len = line.iter().position(|&b| !is_token(b)).unwrap_or(line.len());
    let target_len =
        if line.get(method_len) == Some(&b' ') { target_run(&line[method_len + 1..]) } else { 0 };
    let (sp1, sp2) =
        if method_len > 0 && target_len > 0 && line.get(method_len + 1 + target_len) == Some(&b' ')
        {
            (method_len, method_len + 1 + target_len)
        } else {
            let sp1 = line.iter().position(|&b| b == b' ').ok_or_else(bad_line)?;
            (sp1, sp1 + 1 + line[sp1 + 1..].iter().position(|&b| b == b' ').ok_or_else(bad_line)?)
        };
    let method = &line[..sp1];
    let target = &line[sp1 + 1..sp2];
    let version = &line[sp2 + 1..];

    // Method: a token (RFC 9110 §9.1); by default also 3-20 bytes without lowercase or `#`.
    let conventional = || {
        (3..=20).contains(&method.len())
            && !method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#')
    };
    if !is_token_str(method) || (!cfg.parser.permit_unconventional_method && !conventional()) {
        return Err(RecvError::InvalidRequestMethod(Detail::new(method)));
    }

    // Request-target (RFC 9112 §3.2): visible ASCII only, no fragment, a form the method allows.
    if target.is_empty() || target_run(target) != target.len() {
        return Err(bad_line());
    }
    let form = if method == b"CONNECT" {
        if !is_valid_authority(target, true) {
            return Err(bad_line());
        }
        TargetForm::Authority
    } else if target == b"*" {
        if method != b"OPTIONS" {
            return Err(bad_line());
        }
        TargetForm::Asterisk
    } else if target[0] == b'/' {
        TargetForm::Origin
    } else if is_absolute_form(target) {
        TargetForm::Absolute
    } else {
        return Err(bad_line());
    };

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
    let v = match version {
        [b'H', b'T', b'T', b'P', b'/', major @ b'0'..=b'9', b'.', minor @ b'0'..=b'9'] => {
            Version { major: major - b'0', minor: minor - b'0' }
        }
        _ => return Err(RecvError::InvalidHttpVersion(Detail::new(version))),
    };
    // A higher minor version of HTTP/1 (`HTTP/1.2` ... `HTTP/1.9`) is processed as HTTP/1.1,
    // the highest minor version we implement (RFC 9110 §2.5); `at_least_11` gives it the
    // HTTP/1.1 rules and the response says `HTTP/1.1`. Another major version is answered
    // 505 (RFC 9110 §15.6.6) unless `permit_unconventional_http_version`.
    if v.major != 1 && !cfg.parser.permit_unconventional_version {
        return Err(RecvError::UnsupportedHttpVersion(Detail::new(version)));
    }

    let base = start;
    Ok(RequestLine {
        method: Span::new(base..base + sp1),
        target: Span::new(base + sp1 + 1..base + sp2),
        version: v,
        form,
    })
}

/// `absolute-form = absolute-URI` with an authority (RFC 9112 §3.2.2): `scheme "://"
/// authority path-abempty [ "?" query ]`, no userinfo.
fn is_absolute_form(t: &[u8]) -> bool {
    let Some(colon) = t.iter().position(|&b| b == b':') else { return false };
    let scheme = &t[..colon];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let Some(rest) = t[colon + 1..].strip_prefix(b"//") else { return false };
    let auth_end = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
    scheme_ok && is_valid_authority(&rest[..auth_end], false)
}
