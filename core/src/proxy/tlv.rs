//! PROXY v2 type-length-value fields (§2.2.1 to §2.2.8): the type numbers, the walk that
//! checks that TLVs tile a block exactly, and the view of a `PP2_TYPE_SSL` value.

use alloc::vec::Vec;

/// `PP2_TYPE_ALPN` (§2.2.1): the application protocol, as in a TLS ALPN extension.
pub const ALPN: u8 = 0x01;
/// `PP2_TYPE_AUTHORITY` (§2.2.2): the host name the client asked for (e.g. TLS SNI).
pub const AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_CRC32C` (§2.2.3): CRC-32C of the whole header, this field zeroed.
pub const CRC32C: u8 = 0x03;
/// `PP2_TYPE_NOOP` (§2.2.4): padding, to be ignored.
pub const NOOP: u8 = 0x04;
/// `PP2_TYPE_UNIQUE_ID` (§2.2.5): an opaque connection id, at most 128 bytes.
pub const UNIQUE_ID: u8 = 0x05;
/// `PP2_TYPE_SSL` (§2.2.6): the client's TLS session: 1 byte of client flags, a 4-byte
/// verify result, then sub-TLVs.
pub const SSL: u8 = 0x20;
/// `PP2_SUBTYPE_SSL_VERSION` (§2.2.6): the TLS version, as text (`TLSv1.3`).
pub const SSL_VERSION: u8 = 0x21;
/// `PP2_SUBTYPE_SSL_CN` (§2.2.6): the Common Name of the client certificate's subject.
pub const SSL_CN: u8 = 0x22;
/// `PP2_SUBTYPE_SSL_CIPHER` (§2.2.6): the cipher name (`ECDHE-RSA-AES128-GCM-SHA256`).
pub const SSL_CIPHER: u8 = 0x23;
/// `PP2_SUBTYPE_SSL_SIG_ALG` (§2.2.6): the client certificate's signature algorithm.
pub const SSL_SIG_ALG: u8 = 0x24;
/// `PP2_SUBTYPE_SSL_KEY_ALG` (§2.2.6): the client certificate's key algorithm.
pub const SSL_KEY_ALG: u8 = 0x25;
/// `PP2_TYPE_NETNS` (§2.2.7): the name of the network namespace.
pub const NETNS: u8 = 0x30;

/// `PP2_CLIENT_SSL`: the client connected over TLS.
pub const CLIENT_SSL: u8 = 0x01;
/// `PP2_CLIENT_CERT_CONN`: the client sent a certificate on this connection.
pub const CLIENT_CERT_CONN: u8 = 0x02;
/// `PP2_CLIENT_CERT_SESS`: the client sent a certificate at least once in this TLS session.
pub const CLIENT_CERT_SESS: u8 = 0x04;

/// §2.2.5: "The value ... is an opaque byte sequence of up to 128 bytes".
pub const UNIQUE_ID_MAX: usize = 128;

/// The fixed part of a `PP2_TYPE_SSL` value: `client` (1 byte) and `verify` (4 bytes).
const SSL_FIXED: usize = 5;

/// One TLV of a v2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// The type byte (`PP2_TYPE_*`; see the constants of this module).
    pub kind: u8,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// A view of a `PP2_TYPE_SSL` value (§2.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SslInfo<'a> {
    /// The `PP2_CLIENT_*` bit field ([`CLIENT_SSL`], [`CLIENT_CERT_CONN`], [`CLIENT_CERT_SESS`]).
    pub client: u8,
    /// Zero when the client presented a certificate and it was verified, non-zero otherwise.
    pub verify: u32,
    /// The sub-TLVs, still encoded (checked when the header was parsed).
    sub_tlvs: &'a [u8],
}

impl<'a> SslInfo<'a> {
    /// Reads an SSL TLV value; `None` if it is shorter than its 5 fixed bytes or its
    /// sub-TLVs do not tile the rest (which [`super::parse`] never lets through).
    pub(crate) fn from_value(value: &'a [u8]) -> Option<Self> {
        if value.len() < SSL_FIXED {
            return None;
        }
        let sub_tlvs = &value[SSL_FIXED..];
        walk(sub_tlvs, sub_tlvs.len(), &mut |_, _, _| Ok(())).ok()?;
        Some(SslInfo {
            client: value[0],
            verify: u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
            sub_tlvs,
        })
    }

    /// The sub-TLVs in order, as `(type, value)`.
    pub fn sub_tlvs(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.sub_tlvs;
        core::iter::from_fn(move || {
            if rest.len() < 3 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            let end = (3 + len).min(rest.len());
            let item = (rest[0], &rest[3..end]);
            rest = &rest[end..];
            Some(item)
        })
    }

    /// The value of the first sub-TLV of type `kind`.
    pub fn get(&self, kind: u8) -> Option<&'a [u8]> {
        self.sub_tlvs().find(|&(k, _)| k == kind).map(|(_, v)| v)
    }

    /// Whether the client connected over TLS ([`CLIENT_SSL`]).
    pub fn client_ssl(&self) -> bool {
        self.client & CLIENT_SSL != 0
    }

    /// Whether the client sent a certificate on this connection ([`CLIENT_CERT_CONN`]).
    pub fn cert_conn(&self) -> bool {
        self.client & CLIENT_CERT_CONN != 0
    }

    /// Whether the client sent a certificate in this TLS session ([`CLIENT_CERT_SESS`]).
    pub fn cert_sess(&self) -> bool {
        self.client & CLIENT_CERT_SESS != 0
    }

    /// Whether a client certificate was presented and verified (`verify == 0`).
    pub fn cert_verified(&self) -> bool {
        self.verify == 0
    }

    /// `PP2_SUBTYPE_SSL_VERSION` (0x21).
    pub fn version(&self) -> Option<&'a [u8]> {
        self.get(SSL_VERSION)
    }

    /// `PP2_SUBTYPE_SSL_CN` (0x22).
    pub fn cn(&self) -> Option<&'a [u8]> {
        self.get(SSL_CN)
    }

    /// `PP2_SUBTYPE_SSL_CIPHER` (0x23).
    pub fn cipher(&self) -> Option<&'a [u8]> {
        self.get(SSL_CIPHER)
    }

    /// `PP2_SUBTYPE_SSL_SIG_ALG` (0x24).
    pub fn sig_alg(&self) -> Option<&'a [u8]> {
        self.get(SSL_SIG_ALG)
    }

    /// `PP2_SUBTYPE_SSL_KEY_ALG` (0x25).
    pub fn key_alg(&self) -> Option<&'a [u8]> {
        self.get(SSL_KEY_ALG)
    }
}

/// Called for each TLV a walk meets, with its type, its declared length and the part of
/// its value received so far (all of it once `value.len() == len`).
pub(crate) type Visit<'v> = dyn FnMut(u8, usize, &[u8]) -> Result<(), &'static str> + 'v;

/// Walks TLVs over `avail`, the received start of a block `block_len` bytes long, and
/// checks that they tile it: each header (type, 16-bit big-endian length) and value must
/// fit in the block (§2.2; a truncated TLV is an error even before
/// the rest of the block arrives, since the block length is already known). Stops
/// quietly at the first TLV whose header or value is not all received.
pub(crate) fn walk(
    avail: &[u8],
    block_len: usize,
    visit: &mut Visit<'_>,
) -> Result<(), &'static str> {
    let mut at = 0;
    while at < block_len {
        if block_len - at < 3 {
            return Err("truncated TLV header");
        }
        if avail.len() < at + 3 {
            return Ok(());
        }
        let kind = avail[at];
        let len = usize::from(u16::from_be_bytes([avail[at + 1], avail[at + 2]]));
        if block_len - at - 3 < len {
            return Err("TLV longer than the header");
        }
        let start = at + 3;
        let end = (start + len).min(avail.len());
        visit(kind, len, &avail[start..end])?;
        if end < start + len {
            return Ok(());
        }
        at = start + len;
    }
    Ok(())
}

/// Checks one top-level TLV: what can be judged from its length as soon as its header
/// is in, its content once `value` holds all `len` bytes (or as much as has arrived).
pub(crate) fn check(kind: u8, len: usize, value: &[u8]) -> Result<(), &'static str> {
    match kind {
        // §2.2.3: a 32-bit checksum.
        CRC32C if len != 4 => Err("CRC32C TLV is not 4 bytes"),
        // §2.2.5: "up to 128 bytes".
        UNIQUE_ID if len > UNIQUE_ID_MAX => Err("UNIQUE_ID TLV longer than 128 bytes"),
        // §2.2.6: `struct pp2_tlv_ssl { uint8_t client; uint32_t verify; struct pp2_tlv
        // sub_tlv[0]; }`: the fixed part, then sub-TLVs that fill the rest exactly.
        SSL if len < SSL_FIXED => Err("SSL TLV shorter than 5 bytes"),
        SSL if value.len() > SSL_FIXED => {
            walk(&value[SSL_FIXED..], len - SSL_FIXED, &mut |_, _, _| Ok(()))
                .map_err(|_| "SSL sub-TLVs do not fit")
        }
        _ => Ok(()),
    }
}
