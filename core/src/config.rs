//! Policy as data. The shell builds a [`ProtoConfig`] from gunicorn settings once; the
//! parser only ever reads these fields, never a setting.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::net::AllowList;

/// Everything that changes how the core reads a connection.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ProtoConfig {
    /// Size limits of the request head.
    pub limits: Limits,
    /// Leniencies of the request line and field parser.
    pub parser: ParserPolicy,
    /// What to do with header names that hold `_`, and which of them a trusted peer may send.
    pub headers: HeaderPolicy,
    /// Whom to believe about the client's scheme and path.
    pub trust: TrustPolicy,
    /// The PROXY protocol.
    pub proxy: ProxyPolicy,
}

/// Size limits of the request head, already normalised (see [`Limits::from_gunicorn`]).
///
/// Memory held for one request head is bounded by these numbers, never by the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest request line, without its CRLF (`limit_request_line`).
    pub request_line: usize,
    /// Most header fields (`limit_request_fields`).
    pub fields: usize,
    /// Longest header field line, counting its CRLF (`limit_request_field_size`); also caps
    /// a chunk-size line (with its extensions) and a trailer field.
    pub field_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_gunicorn(4094, 100, 8190)
    }
}

impl Limits {
    /// The largest value gunicorn accepts for `limit_request_line` and `limit_request_field_size`.
    pub const MAX_LINE: usize = 8190;
    /// The largest value gunicorn accepts for `limit_request_fields`.
    pub const MAX_FIELDS: usize = 32768;

    /// Applies gunicorn's rules to the raw setting values:
    /// - `limit_request_line`: `0` means "unlimited", which here means the size of the whole
    ///   head buffer (so memory stays bounded); a negative value or one above 8190 is 8190.
    /// - `limit_request_fields`: `0`, negative or above 32768 is 32768.
    /// - `limit_request_field_size`: `0` or negative is 8190 (gunicorn since 25.2); there
    ///   is no upper clamp.
    pub fn from_gunicorn(request_line: i64, fields: i64, field_size: i64) -> Self {
        let fields = if fields <= 0 || fields > Self::MAX_FIELDS as i64 {
            Self::MAX_FIELDS
        } else {
            fields as usize
        };
        let field_size = if field_size <= 0 { Self::MAX_LINE } else { field_size as usize };
        let mut limits = Limits { request_line: 0, fields, field_size };
        limits.request_line = match request_line {
            0 => limits.head_buffer(),
            n if n < 0 || n > Self::MAX_LINE as i64 => Self::MAX_LINE,
            n => n as usize,
        };
        limits
    }

    /// The most bytes a request head (after the request line) may take while it is being
    /// read: gunicorn's `max_buffer_headers`, `fields * (field_size + 2) + 4`.
    pub fn head_buffer(&self) -> usize {
        self.fields.saturating_mul(self.field_size.saturating_add(2)).saturating_add(4)
    }
}

/// Leniencies of the request line and header parser. All default to strict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParserPolicy {
    /// `permit_obsolete_folding`: join obs-fold continuation lines with a single SP instead
    /// of answering 400 (RFC 9112 §5.2 allows either).
    pub permit_obsolete_folding: bool,
    /// `strip_header_spaces`: **dangerous**. Accept whitespace between a field name and
    /// its colon by stripping it, which RFC 9112 §5.1 forbids and which lets a
    /// `Transfer-Encoding : chunked` that a front proxy ignored reach the framing logic.
    pub strip_header_spaces: bool,
    /// `permit_unconventional_http_method`: allow lowercase methods, `#`, and methods
    /// shorter than 3 or longer than 20 bytes (still a token).
    pub permit_unconventional_method: bool,
    /// `permit_unconventional_http_version`: serve a request whose major version is not 1
    /// (`HTTP/0.9`, `HTTP/2.0`, ...) instead of answering 505. `HTTP/1.2` ... `HTTP/1.9`
    /// are served as HTTP/1.1 either way (RFC 9110 §2.5).
    pub permit_unconventional_version: bool,
    /// `casefold_http_method`: upper-case the method after it was validated.
    pub casefold_method: bool,
}

/// `header_map`: what happens to a header whose name holds `_`, which a WSGI environ
/// cannot tell apart from the same name with `-`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnderscoreHeaders {
    /// Silently drop the field (gunicorn's default).
    #[default]
    Drop,
    /// Answer 400 (`InvalidHeaderName`).
    Refuse,
    /// **Dangerous**: keep it, so `X-Auth_Token` lands in the environ as `HTTP_X_AUTH_TOKEN`.
    Dangerous,
}

/// Header-name policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderPolicy {
    /// `header_map`.
    pub underscore: UnderscoreHeaders,
    /// `forwarder_headers`, upper-cased: header names with `_` that a trusted peer may send
    /// and that are then kept whatever `underscore` says (`*` keeps all of them).
    pub forwarder_headers: Vec<String>,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy {
            underscore: UnderscoreHeaders::Drop,
            forwarder_headers: vec![String::from("SCRIPT_NAME"), String::from("PATH_INFO")],
        }
    }
}

impl HeaderPolicy {
    /// Whether a trusted peer may send the field `name` (any case) although it holds `_`.
    pub fn is_forwarder_header(&self, name: &[u8]) -> bool {
        self.forwarder_headers.iter().any(|h| h == "*" || h.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Whom to believe about what a front proxy says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustPolicy {
    /// `forwarded_allow_ips`.
    pub forwarded_allow: AllowList,
    /// `secure_scheme_headers`: `(NAME, value)`; a trusted request whose header `NAME`
    /// equals `value` (case-sensitive) is `https`, any other value makes it `http`.
    pub secure_scheme_headers: Vec<(String, String)>,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            forwarded_allow: AllowList::localhost(),
            secure_scheme_headers: vec![
                (String::from("X-FORWARDED-PROTOCOL"), String::from("ssl")),
                (String::from("X-FORWARDED-PROTO"), String::from("https")),
                (String::from("X-FORWARDED-SSL"), String::from("on")),
            ],
        }
    }
}

/// Which PROXY protocol header a listener requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// No PROXY header; a `PROXY ...` line is an invalid request line.
    #[default]
    Off,
    /// A v1 (text) header is required.
    V1,
    /// A v2 (binary) header is required.
    V2,
    /// A v1 or a v2 header is required (gunicorn 23's `--proxy-protocol` flag).
    Auto,
}

/// The PROXY protocol policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyPolicy {
    /// `proxy_protocol`.
    pub mode: ProxyMode,
    /// `proxy_allow_ips`: peers allowed to send a PROXY header.
    pub allow: AllowList,
}

impl Default for ProxyPolicy {
    fn default() -> Self {
        ProxyPolicy { mode: ProxyMode::Off, allow: AllowList::localhost() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorn_limit_normalisation() {
        let d = Limits::default();
        assert_eq!((d.request_line, d.fields, d.field_size), (4094, 100, 8190));
        assert_eq!(d.head_buffer(), 819_204);
        let l = Limits::from_gunicorn(8200, 0, 0);
        assert_eq!((l.request_line, l.fields, l.field_size), (8190, 32768, 8190));
        let l = Limits::from_gunicorn(-1, 40000, 8210);
        assert_eq!((l.request_line, l.fields, l.field_size), (8190, 32768, 8210));
        let l = Limits::from_gunicorn(0, 2, 98);
        assert_eq!(l.request_line, l.head_buffer());
    }
}
