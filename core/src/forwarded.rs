//! The trust decisions about forwarded headers that are not made inside the parser.
//!
//! The parser already decides, per request, as gunicorn's `Message` does:
//!
//! - whether the peer is trusted ([`RequestHead::peer_trusted`]: the peer is in
//!   `forwarded_allow_ips`; unix-socket peers always are);
//! - the scheme declared by trusted `secure_scheme_headers` ([`RequestHead::scheme`];
//!   headers that disagree are a 400 there);
//! - which header names holding `_` survive (`header_map`, and `forwarder_headers` from a
//!   trusted peer).
//!
//! What is left is how the surviving headers change the WSGI environ:
//!
//! - [`url_scheme`]: `https` on a TLS listener, `http` otherwise, unless a trusted
//!   secure-scheme header said otherwise. A trusted `X-Forwarded-Proto: http` downgrades
//!   even a TLS connection, as in gunicorn.
//! - [`script_name`]: a `SCRIPT_NAME` header replaces the configured `SCRIPT_NAME` when the
//!   peer is trusted and `SCRIPT_NAME` is one of its `forwarder_headers`. gunicorn lets any
//!   *kept* `SCRIPT_NAME` header override it, which under `header_map = dangerous` includes
//!   one from an untrusted peer; here such a header only shows as `HTTP_SCRIPT_NAME`.
//! - A forwarded `PATH_INFO` header never changes `PATH_INFO`: like gunicorn, it only
//!   shows as `HTTP_PATH_INFO`, and `PATH_INFO` always comes from the request-target.
//! - `REMOTE_USER` is never set from a header: gunicorn does not set it at all (nor from
//!   `forwarder_headers`), so a `REMOTE_USER` header a trusted proxy sends, if listed in
//!   `forwarder_headers`, only shows as `HTTP_REMOTE_USER`. Applications that trust it must
//!   read that key, as they must under gunicorn.
//! - `X-Forwarded-For` and `Forwarded` never change `REMOTE_ADDR`, as in gunicorn since
//!   19.x: only a PROXY protocol header does (see [`crate::environ`]).

use crate::config::HeaderPolicy;
use crate::h1::{RequestHead, Scheme};

/// The header (and environ) name a front proxy uses to say where the application is
/// mounted.
pub const SCRIPT_NAME: &[u8] = b"SCRIPT_NAME";

/// `wsgi.url_scheme`: `https` when the connection came in on a TLS listener, `http`
/// otherwise, overridden either way by the scheme trusted secure-scheme headers declared.
pub fn url_scheme(head: &RequestHead, tls_listener: bool) -> Scheme {
    match head.scheme {
        Some(declared) => declared,
        None if tls_listener => Scheme::Https,
        None => Scheme::Http,
    }
}

/// Whether this request may set `SCRIPT_NAME` with a header: the peer is trusted and
/// `SCRIPT_NAME` is one of the `forwarder_headers` (or the list holds `*`).
pub fn may_set_script_name(head: &RequestHead, policy: &HeaderPolicy) -> bool {
    head.peer_trusted && policy.is_forwarder_header(SCRIPT_NAME)
}

/// The `SCRIPT_NAME` of this request: the value of the last `SCRIPT_NAME` header (name
/// compared case-insensitively, with `_`, as gunicorn does after upper-casing names) if
/// [`may_set_script_name`], else `configured` (the `SCRIPT_NAME` environment variable of
/// the server process). An empty header value overrides too, and turns the prefix check
/// off, as in gunicorn.
pub fn script_name<'a>(
    head: &'a RequestHead,
    configured: &'a [u8],
    policy: &HeaderPolicy,
) -> &'a [u8] {
    if !may_set_script_name(head, policy) {
        return configured;
    }
    head.headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case(SCRIPT_NAME))
        .last()
        .map_or(configured, |(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProtoConfig, UnderscoreHeaders};
    use crate::conn::{Connection, Event};
    use crate::net::{AllowList, Peer};
    use alloc::string::String;
    use alloc::sync::Arc;
    use alloc::vec;
    use core::net::SocketAddr;

    const TRUSTED: &str = "127.0.0.1:50000";
    const UNTRUSTED: &str = "203.0.113.9:50000";

    fn parse_with(cfg: ProtoConfig, peer: Peer, raw: &[u8]) -> RequestHead {
        let mut conn = Connection::new(Arc::new(cfg), peer);
        conn.receive(raw);
        match conn.next_event() {
            Ok(Event::Request(head)) => head.clone(),
            other => panic!(
                "expected a request head from {:?}, got {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    fn parse(peer: &str, raw: &[u8]) -> RequestHead {
        parse_with(ProtoConfig::default(), Peer::Tcp(peer.parse::<SocketAddr>().unwrap()), raw)
    }

    #[test]
    fn scheme_from_listener_and_trusted_headers() {
        let plain = parse(TRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(url_scheme(&plain, false), Scheme::Http);
        assert_eq!(url_scheme(&plain, true), Scheme::Https);

        let up = parse(TRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n");
        assert_eq!(url_scheme(&up, false), Scheme::Https);

        // A trusted proxy that terminated TLS elsewhere and speaks plain HTTP to a TLS
        // listener (or says so) wins: gunicorn downgrades too.
        let down = parse(TRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
        assert_eq!(url_scheme(&down, true), Scheme::Http);

        let ssl = parse(TRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Ssl: on\r\n\r\n");
        assert_eq!(url_scheme(&ssl, false), Scheme::Https);

        // An untrusted peer's secure-scheme headers are ignored both ways.
        let spoof =
            parse(UNTRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n");
        assert_eq!(url_scheme(&spoof, false), Scheme::Http);
        let spoof =
            parse(UNTRUSTED, b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n");
        assert_eq!(url_scheme(&spoof, true), Scheme::Https);
    }

    #[test]
    fn script_name_header_needs_trust_and_listing() {
        let policy = HeaderPolicy::default();
        let raw = b"GET /app/x HTTP/1.1\r\nHost: a\r\nSCRIPT_NAME: /app\r\n\r\n";

        let trusted = parse(TRUSTED, raw);
        assert_eq!(script_name(&trusted, b"/env", &policy), b"/app");

        // Unix peers are trusted, as in gunicorn.
        let unix = parse_with(ProtoConfig::default(), Peer::Unix, raw);
        assert_eq!(script_name(&unix, b"", &policy), b"/app");

        // Not listed: the configured value stays.
        let unlisted = HeaderPolicy {
            forwarder_headers: vec![String::from("PATH_INFO")],
            ..HeaderPolicy::default()
        };
        assert_eq!(script_name(&trusted, b"/env", &unlisted), b"/env");
        let star =
            HeaderPolicy { forwarder_headers: vec![String::from("*")], ..HeaderPolicy::default() };
        assert_eq!(script_name(&trusted, b"/env", &star), b"/app");

        // Untrusted: dropped by the parser under the default header_map ...
        let untrusted = parse(UNTRUSTED, raw);
        assert_eq!(script_name(&untrusted, b"/env", &policy), b"/env");
        // ... and kept but ignored here under header_map = dangerous (gunicorn would obey it).
        let mut cfg = ProtoConfig::default();
        cfg.headers.underscore = UnderscoreHeaders::Dangerous;
        cfg.trust.forwarded_allow = AllowList::none();
        let kept = parse_with(cfg, Peer::Tcp(UNTRUSTED.parse().unwrap()), raw);
        assert_eq!(kept.header(b"script_name"), Some(&b"/app"[..]));
        assert_eq!(script_name(&kept, b"/env", &policy), b"/env");
    }

    #[test]
    fn script_name_header_details() {
        let policy = HeaderPolicy::default();
        // Case-insensitive name; the last one wins; a hyphenated name is another header.
        let head = parse(
            TRUSTED,
            b"GET /b/x HTTP/1.1\r\nHost: a\r\nscript_name: /a\r\nScript-Name: /c\r\nSCRIPT_NAME: /b\r\n\r\n",
        );
        assert_eq!(script_name(&head, b"", &policy), b"/b");
        // An empty value overrides the configured one.
        let head = parse(TRUSTED, b"GET /x HTTP/1.1\r\nHost: a\r\nSCRIPT_NAME:\r\n\r\n");
        assert_eq!(script_name(&head, b"/env", &policy), b"");
        // No header: the configured value.
        let head = parse(TRUSTED, b"GET /env/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(script_name(&head, b"/env", &policy), b"/env");
    }
}
