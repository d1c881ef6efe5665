//! What the error log says of a TLS connection that ends before a request head was read
//! whole, in gunicorn 27's words (`workers/sync.py` and `workers/gthread.py`, `except
//! ssl.SSLError`), for both workers:
//!
//! - a TLS error (a failed handshake: plain HTTP sent to the TLS port, a client
//!   certificate nobody in `ca_certs` vouches for, none when `cert_reqs` is 2, a client
//!   that refuses ours, no protocol version or cipher in common; or a bad record or a
//!   fatal alert between requests): `DEBUG Error processing SSL request.`, then `WARNING
//!   Invalid request from ip=<ip>: <why>` (gunicorn's `handle_error` for an `SSLError`).
//!   gunicorn then writes a plaintext `403 Forbidden` page into the TLS socket, which
//!   fails (`DEBUG Failed to send error message.`), so no client sees it: here nothing is
//!   written but the TLS alert rustls chose, which the client's TLS stack reports;
//! - the peer closed the connection during the handshake (or before it, a bare TCP
//!   connect): `DEBUG ssl connection closed` (gunicorn's `SSL_ERROR_EOF`).
//!
//! A reset, a timeout and the quick stop are not TLS matters and say what they say on
//! a plain connection (nothing).

use std::io;

use ferrocorn_core::Peer;

use crate::log::Logger;
use crate::transport::Stream;

/// A read of `stream` failed with `error`, or it ended (`None`), before a request head.
/// Logs the lines above when this is a TLS connection.
pub fn before_request(log: &Logger, peer: &Peer, stream: &Stream, error: Option<&io::Error>) {
    if !stream.is_tls() {
        return;
    }
    let handshaking = stream.handshaking();
    let tls_error = error.and_then(|e| e.get_ref()).and_then(|r| r.downcast_ref::<rustls::Error>());
    match (tls_error, error) {
        (Some(e), _) => {
            log.debug("Error processing SSL request.");
            let ip = peer.ip().map(|ip| ip.to_string()).unwrap_or_default();
            log.warning(format_args!("Invalid request from ip={ip}: {}", why(e, handshaking)));
        }
        (None, None) if handshaking => log.debug("ssl connection closed"),
        (None, Some(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            log.debug("ssl connection closed");
        }
        _ => {}
    }
}

/// What went wrong, for the `Invalid request` line.
fn why(e: &rustls::Error, handshaking: bool) -> String {
    use rustls::{Error, InvalidMessage};
    let what = if handshaking { "TLS handshake failed" } else { "TLS error" };
    match e {
        Error::InvalidMessage(InvalidMessage::InvalidContentType) if handshaking => {
            format!("{what}: not a TLS record (plain HTTP sent to the HTTPS port?): {e}")
        }
        _ => format!("{what}: {e}"),
    }
}
