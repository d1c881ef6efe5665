//! The PROXY protocol, v1 (text) and v2 (binary), per the HAProxy specification.
//!
//! STUB: the API below is fixed; the implementation is being written.

use crate::config::ProxyMode;
use crate::error::{Detail, RecvError};

/// Result of parsing a possibly incomplete input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A whole header was parsed from the first `consumed` bytes.
    Complete {
        /// The parsed value.
        value: T,
        /// How many input bytes it took.
        consumed: usize,
    },
    /// More bytes are needed.
    Partial,
}

/// What a PROXY header said about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyInfo {}

/// Parses the PROXY header a listener in `mode` requires at the start of `buf`.
pub fn parse(_buf: &[u8], _mode: ProxyMode) -> Result<Parsed<ProxyInfo>, RecvError> {
    Err(RecvError::InvalidProxyLine(Detail::new(b"")))
}
