//! The one error enum of the receiving side. Every variant is terminal for the connection:
//! the shell answers [`RecvError::status`] (when nothing was sent yet) and closes.
//!
//! Variants are named after gunicorn's exceptions (`gunicorn/http/errors.py`) so the
//! conformance runner can compare rejections one to one ([`RecvError::gunicorn_class`]).

use alloc::string::String;
use core::fmt;

use crate::pyrepr::push_repr;

/// How much of an offending input an error keeps for its message.
const DETAIL_CAP: usize = 128;

/// A short, latin-1 decoded copy of the bytes an error is about (capped, so an error never
/// holds a whole 8 KB line).
#[derive(Clone, PartialEq, Eq)]
pub struct Detail(String);

impl Detail {
    /// Copies at most 128 bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let cut = &bytes[..bytes.len().min(DETAIL_CAP)];
        Detail(cut.iter().map(|&b| char::from(b)).collect())
    }

    /// The latin-1 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn latin1(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.chars().map(|c| c as u32 as u8)
    }

    fn push_repr(&self, out: &mut String) {
        let bytes: alloc::vec::Vec<u8> = self.latin1().collect();
        push_repr(out, &bytes);
    }
}

impl fmt::Debug for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.push_repr(&mut s);
        f.write_str(&s)
    }
}

/// Which limit of the request head was exceeded (gunicorn's `LimitRequestHeaders` text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadLimit {
    /// The head as a whole outgrew `fields * (field_size + 2) + 4` bytes.
    Buffer,
    /// More than `limit_request_fields` fields.
    Fields,
    /// A field line longer than `limit_request_field_size`.
    FieldSize,
    /// A trailer section larger than the head buffer.
    Trailers,
}

impl HeadLimit {
    fn text(self) -> &'static str {
        match self {
            HeadLimit::Buffer => "max buffer headers",
            HeadLimit::Fields => "limit request headers fields",
            HeadLimit::FieldSize => "limit request headers fields size",
            HeadLimit::Trailers => "trailer section too large",
        }
    }
}

/// Why a request (or the connection it came on) was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The request line is not `method SP request-target SP HTTP-version CRLF`, or the
    /// request-target is empty, holds bytes outside `0x21..=0x7E`, holds a fragment, or has
    /// a form the method does not allow (RFC 9112 §3, §3.2). Also: a bare CR or bare LF
    /// in the request line (RFC 9112 §2.2).
    InvalidRequestLine(Detail),
    /// The method is not a token, or (by default) not 3-20 upper-case letters (RFC 9110 §9.1).
    InvalidRequestMethod(Detail),
    /// The version is not `HTTP/` DIGIT `.` DIGIT (RFC 9112 §2.3).
    InvalidHttpVersion(Detail),
    /// A well-formed version whose major version is not 1 (`HTTP/2.0`, `HTTP/0.9`, ...)
    /// without `permit_unconventional_http_version`: 505 (RFC 9110 §15.6.6). gunicorn raises
    /// its `InvalidHTTPVersion` for these and answers 400.
    UnsupportedHttpVersion(Detail),
    /// A field line or field value is malformed: no colon, a control byte in the value,
    /// a bare CR or LF, an invalid or repeated `Content-Length`, a bad `Transfer-Encoding`
    /// list, a repeated `Host` or `Content-Type` (RFC 9110 §5.5, §8.6, RFC 9112 §6).
    InvalidHeader(Detail),
    /// A field name is not a token, is followed by whitespace before the colon, holds `_`
    /// under `header_map = refuse`, or is forbidden in a trailer section (RFC 9110 §5.1, §6.5.1).
    InvalidHeaderName(Detail),
    /// An obs-fold continuation line without `permit_obsolete_folding` (RFC 9112 §5.2).
    ObsoleteFolding(Detail),
    /// An HTTP/1.1 request without `Host`, or a `Host` that is not `uri-host [":" port]`
    /// (RFC 9112 §3.2, RFC 9110 §7.2).
    InvalidHost(Detail),
    /// The request line is longer than `limit_request_line`.
    LimitRequestLine {
        /// How many bytes had been seen when the limit was hit.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A limit of the head (or of a chunk line or trailer section) was exceeded.
    LimitRequestHeaders(HeadLimit),
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: SHOULD 501).
    UnsupportedTransferCoding(Detail),
    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1: MAY 417).
    ExpectationFailed(Detail),
    /// Trusted secure-scheme headers disagree about the scheme.
    InvalidSchemeHeaders,
    /// A chunk-size that is not 1*HEXDIG or does not fit in 64 bits (RFC 9112 §7.1).
    InvalidChunkSize(Detail),
    /// A chunk extension that does not follow the RFC grammar (RFC 9112 §7.1.1).
    InvalidChunkExtension(Detail),
    /// Chunk data not followed by CRLF, or the chunked body ended (EOF) before the last
    /// chunk and the final CRLF (RFC 9112 §7.1, §8).
    ChunkMissingTerminator(Detail),
    /// The peer closed the connection in the middle of a request head or a body with a
    /// Content-Length (RFC 9112 §8: an incomplete message).
    NoMoreData,
    /// A malformed PROXY protocol v1 line.
    InvalidProxyLine(Detail),
    /// A malformed PROXY protocol v2 header.
    InvalidProxyHeader(Detail),
    /// A PROXY header (or a listener requiring one) from a peer not in `proxy_allow_ips`.
    ForbiddenProxyRequest(Detail),
}

impl RecvError {
    /// The HTTP status to answer with, if anything can still be sent.
    pub fn status(&self) -> u16 {
        match self {
            RecvError::InvalidRequestLine(_)
            | RecvError::InvalidRequestMethod(_)
            | RecvError::InvalidHttpVersion(_)
            | RecvError::InvalidHeader(_)
            | RecvError::InvalidHeaderName(_)
            | RecvError::ObsoleteFolding(_)
            | RecvError::InvalidHost(_)
            | RecvError::InvalidSchemeHeaders
            | RecvError::InvalidChunkSize(_)
            | RecvError::InvalidChunkExtension(_)
            | RecvError::ChunkMissingTerminator(_)
            | RecvError::NoMoreData
            | RecvError::InvalidProxyLine(_)
            | RecvError::InvalidProxyHeader(_) => 400,
            RecvError::LimitRequestLine { .. } => 414,
            RecvError::LimitRequestHeaders(_) => 431,
            RecvError::UnsupportedTransferCoding(_) => 501,
            RecvError::ExpectationFailed(_) => 417,
            RecvError::ForbiddenProxyRequest(_) => 403,
            RecvError::UnsupportedHttpVersion(_) => 505,
        }
    }

    /// The standard reason phrase of [`RecvError::status`].
    pub fn reason(&self) -> &'static str {
        match self.status() {
            403 => "Forbidden",
            414 => "URI Too Long",
            417 => "Expectation Failed",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "Bad Request",
        }
    }

    /// The name of the gunicorn exception for the same rejection.
    pub fn gunicorn_class(&self) -> &'static str {
        match self {
            RecvError::InvalidRequestLine(_) => "InvalidRequestLine",
            RecvError::InvalidRequestMethod(_) => "InvalidRequestMethod",
            RecvError::InvalidHttpVersion(_) | RecvError::UnsupportedHttpVersion(_) => {
                "InvalidHTTPVersion"
            }
            // gunicorn has no Host check of its own; a repeated Host is its InvalidHeader.
            RecvError::InvalidHeader(_) | RecvError::InvalidHost(_) => "InvalidHeader",
            RecvError::InvalidHeaderName(_) => "InvalidHeaderName",
            RecvError::ObsoleteFolding(_) => "ObsoleteFolding",
            RecvError::LimitRequestLine { .. } => "LimitRequestLine",
            RecvError::LimitRequestHeaders(_) => "LimitRequestHeaders",
            RecvError::UnsupportedTransferCoding(_) => "UnsupportedTransferCoding",
            RecvError::ExpectationFailed(_) => "ExpectationFailed",
            RecvError::InvalidSchemeHeaders => "InvalidSchemeHeaders",
            RecvError::InvalidChunkSize(_) => "InvalidChunkSize",
            RecvError::InvalidChunkExtension(_) => "InvalidChunkExtension",
            RecvError::ChunkMissingTerminator(_) => "ChunkMissingTerminator",
            RecvError::NoMoreData => "NoMoreData",
            RecvError::InvalidProxyLine(_) => "InvalidProxyLine",
            RecvError::InvalidProxyHeader(_) => "InvalidProxyHeader",
            RecvError::ForbiddenProxyRequest(_) => "ForbiddenProxyRequest",
        }
    }

    /// Whether the error belongs to the request body (raised while the application may
    /// already be running), rather than to the head or the connection preamble.
    pub fn is_body_error(&self) -> bool {
        matches!(
            self,
            RecvError::InvalidChunkSize(_)
                | RecvError::InvalidChunkExtension(_)
                | RecvError::ChunkMissingTerminator(_)
                | RecvError::NoMoreData
        ) || matches!(self, RecvError::LimitRequestHeaders(HeadLimit::Trailers))
    }

    /// The text gunicorn puts in its error page for this error (before HTML escaping):
    /// `Invalid Request Line '...'`, `Error parsing headers: '...'`, ...
    pub fn page_message(&self) -> String {
        // gunicorn wraps `str(exc)` in literal quotes here, not in `repr()`.
        match self {
            RecvError::InvalidRequestLine(_) => alloc::format!("Invalid Request Line '{self}'"),
            RecvError::InvalidRequestMethod(_) => alloc::format!("Invalid Method '{self}'"),
            RecvError::InvalidHttpVersion(_) | RecvError::UnsupportedHttpVersion(_) => {
                alloc::format!("Invalid HTTP Version '{self}'")
            }
            RecvError::LimitRequestHeaders(_) => alloc::format!("Error parsing headers: '{self}'"),
            RecvError::InvalidProxyLine(_) | RecvError::InvalidProxyHeader(_) => {
                alloc::format!("'{self}'")
            }
            RecvError::ForbiddenProxyRequest(_) => String::from("Request forbidden"),
            _ => alloc::format!("{self}"),
        }
    }
}

/// `str(exc)` of the matching gunicorn exception.
impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::InvalidRequestLine(d) => write!(f, "Invalid HTTP request line: {d:?}"),
            RecvError::InvalidRequestMethod(d) => write!(f, "Invalid HTTP method: {d:?}"),
            RecvError::InvalidHttpVersion(d) | RecvError::UnsupportedHttpVersion(d) => {
                write!(f, "Invalid HTTP Version: {d:?}")
            }
            RecvError::InvalidHeader(d) => write!(f, "Invalid HTTP Header: {d:?}"),
            RecvError::InvalidHeaderName(d) => write!(f, "Invalid HTTP header name: {d:?}"),
            RecvError::ObsoleteFolding(d) => {
                write!(f, "Obsolete line folding is unacceptable: {d:?}")
            }
            RecvError::InvalidHost(d) => write!(f, "Invalid Host header: {d:?}"),
            RecvError::LimitRequestLine { size, limit } => {
                write!(f, "Request Line is too large ({size} > {limit})")
            }
            RecvError::LimitRequestHeaders(which) => f.write_str(which.text()),
            RecvError::UnsupportedTransferCoding(d) => {
                write!(f, "Unsupported transfer coding: {d:?}")
            }
            RecvError::ExpectationFailed(d) => {
                write!(f, "Unable to comply with expectation: {d:?}")
            }
            RecvError::InvalidSchemeHeaders => f.write_str("Contradictory scheme headers"),
            RecvError::InvalidChunkSize(d) => write!(f, "Invalid chunk size: {d:?}"),
            RecvError::InvalidChunkExtension(d) => write!(f, "Invalid chunk extension: {d:?}"),
            RecvError::ChunkMissingTerminator(d) => {
                write!(f, "Invalid chunk terminator is not '\\r\\n': {d:?}")
            }
            RecvError::NoMoreData => f.write_str("No more data after: ''"),
            RecvError::InvalidProxyLine(d) => write!(f, "Invalid PROXY line: {d:?}"),
            RecvError::InvalidProxyHeader(d) => write!(f, "Invalid PROXY header: {d:?}"),
            RecvError::ForbiddenProxyRequest(d) => {
                write!(f, "Proxy request from {d:?} not allowed")
            }
        }
    }
}

impl core::error::Error for RecvError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_gunicorn_texts() {
        let e = RecvError::InvalidRequestMethod(Detail::new(b"get"));
        assert_eq!(e.to_string(), "Invalid HTTP method: 'get'");
        assert_eq!(e.page_message(), "Invalid Method 'Invalid HTTP method: 'get''");
        let e = RecvError::LimitRequestHeaders(HeadLimit::Fields);
        assert_eq!(e.page_message(), "Error parsing headers: 'limit request headers fields'");
        assert_eq!(e.status(), 431);
        let e = RecvError::LimitRequestLine { size: 5000, limit: 4094 };
        assert_eq!(e.to_string(), "Request Line is too large (5000 > 4094)");
    }

    #[test]
    fn detail_is_capped() {
        let d = Detail::new(&[b'a'; 1000]);
        assert_eq!(d.as_str().len(), 128);
    }
}
