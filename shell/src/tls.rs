//! The TLS settings as a rustls server configuration: `certfile`, `keyfile`, `ca_certs`,
//! `cert_reqs`, `ciphers`, `suppress_ragged_eofs` ([`acceptor`]). The connections themselves are a
//! transport ([`crate::transport::Tls`]).
//!
//! gunicorn builds an `ssl.SSLContext` for every connection in the worker and refuses at
//! start only a `certfile` or `keyfile` that does not exist; a key that does not match,
//! an encrypted key or a file that is not PEM then fail each handshake (a `WARNING
//! Invalid request` line per connection). Here the master builds the configuration at
//! start and on HUP and refuses all of these with one line naming the file, and so does
//! an expired certificate; each worker builds its own from the same files when it boots.
//!
//! The crypto provider is aws-lc-rs (ring with the `ring` feature), built with a C compiler,
//! no cmake: its full RSA 2048 handshake costs the server a third less CPU than ring's, ECDSA
//! P-256 the same (bench/README.md); the same handshakes (ECDSA P-256/P-384, RSA, Ed25519;
//! TLS 1.2 and 1.3).

use std::sync::Arc;

use crypto::cipher_suite as suite;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
/// The crypto provider's module (rustls' `aws_lc_rs`, or `ring` with the `ring` feature):
/// every use of a provider in the shell goes through it.
#[cfg(not(feature = "ring"))]
pub(crate) use rustls::crypto::aws_lc_rs as crypto;
#[cfg(feature = "ring")]
pub(crate) use rustls::crypto::ring as crypto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite,
};

use crate::settings::config::TlsConfig;
use crate::transport::TlsAcceptor;

/// The acceptor the configuration asks for: `None` without `certfile` and `keyfile`, else
/// the rustls configuration, or why it cannot be built (one line, naming the file). The
/// files are read now: call it after `chdir`, so relative paths resolve as gunicorn's do.
pub fn acceptor(config: &crate::settings::ServerConfig) -> Result<Option<TlsAcceptor>, String> {
    let Some(tls) = &config.listen.tls else {
        return Ok(None);
    };
    let rustls_config = server_config(tls)?;
    let acceptor = TlsAcceptor::new(Arc::new(rustls_config), tls.suppress_ragged_eofs);
    // A PROXY header comes before the handshake, in the clear.
    let acceptor = acceptor.with_client_auth(tls.cert_reqs != 0);
    Ok(Some(acceptor.with_proxy(config.proto.proxy.clone())))
}

/// The protocol ALPN names: HTTP/1.1 only.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

fn server_config(tls: &TlsConfig) -> Result<ServerConfig, String> {
    let certfile = tls.certfile.as_deref();
    let keyfile = tls.keyfile.as_deref();
    files_exist(tls)?;
    let Some(certfile) = certfile else {
        return Err("keyfile is set without certfile: the certificate is missing".into());
    };
    // The key may be in the certificate file (gunicorn: "only the certfile is needed
    // since it can contain the keyfile").
    let (key_setting, keyfile) = match keyfile {
        Some(k) => ("keyfile", k),
        None => ("certfile", certfile),
    };
    let chain = certificates("certfile", certfile)?;
    let key = private_key(key_setting, keyfile)?;
    let now = unix_now();
    if let Some(v) = validity(&chain[0]) {
        if now > v.not_after.secs {
            return Err(format!(
                "certfile \"{certfile}\": the certificate expired on {}",
                v.not_after.text
            ));
        }
    }
    let mut provider = crypto::default_provider();
    if let Some(spec) = tls.ciphers.as_deref() {
        provider.cipher_suites = cipher_suites(spec)?;
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match tls.cert_reqs {
        0 => {
            if let Some(ca) = tls.ca_certs.as_deref() {
                // Loaded as gunicorn's context loads it (and refused as it would be), but
                // no client certificate is asked for.
                certificates("ca_certs", ca)?;
            }
            builder.with_no_client_auth()
        }
        reqs @ (1 | 2) => {
            let Some(ca) = tls.ca_certs.as_deref() else {
                return Err(format!(
                    "cert_reqs {reqs} needs ca_certs: client certificates are verified against \
                     the CA certificates of ca_certs only (not the system's store)"
                ));
            };
            let verifier = client_verifier(ca, reqs == 2, &provider)?;
            builder.with_client_cert_verifier(verifier)
        }
        other => {
            return Err(format!(
                "cert_reqs {other} is not one of 0 (none), 1 (optional) or 2 (required)"
            ));
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "{key_setting} \"{keyfile}\": the private key does not match the certificate of \
             certfile \"{certfile}\""
        ),
        e => format!("certfile \"{certfile}\" / {key_setting} \"{keyfile}\": {e}"),
    })?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// gunicorn's checks at start, in its order and words: `certfile` and `keyfile` exist.
pub(crate) fn files_exist(tls: &TlsConfig) -> Result<(), String> {
    for (name, file) in [("certfile", &tls.certfile), ("keyfile", &tls.keyfile)] {
        if let Some(f) = file {
            if !std::path::Path::new(f).exists() {
                return Err(format!("{name} \"{f}\" does not exist"));
            }
        }
    }
    Ok(())
}

/// The TLS 1.2 suites of rustls by their OpenSSL names, in the order OpenSSL's
/// `ALL` lists them.
const TLS12: [(&str, SupportedCipherSuite); 6] = [
    ("ECDHE-ECDSA-AES256-GCM-SHA384", suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-RSA-AES256-GCM-SHA384", suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ("ECDHE-RSA-CHACHA20-POLY1305", suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ("ECDHE-RSA-AES128-GCM-SHA256", suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
];

/// The suites for `ciphers`: the TLS 1.2 suites the OpenSSL cipher string selects, after
/// every TLS 1.3 suite (`SSLContext.set_ciphers` leaves TLS 1.3's alone), or an error
/// when it selects none that rustls has.
pub(crate) fn cipher_suites(spec: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let chosen = tls12_ciphers(spec);
    if chosen.is_empty() {
        let names: Vec<&str> = TLS12.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "ciphers {spec:?} selects no TLS 1.2 cipher suite ferrocorn has (rustls: {})",
            names.join(", ")
        ));
    }
    let tls13 = crypto::DEFAULT_CIPHER_SUITES.iter().filter(|s| s.tls13().is_some());
    let tls12 = chosen.iter().filter_map(|n| TLS12.iter().find(|(name, _)| name == n));
    Ok(tls13.copied().chain(tls12.map(|(_, s)| *s)).collect())
}

/// Whether the suite OpenSSL calls `name` is in the set of one word of a cipher string
/// (a suite's name, or one of OpenSSL's keywords; unknown words and the keywords of
/// what rustls does not have, such as `DHE`, `kRSA` (`RSA`), `SHA1`, `aNULL` or
/// `CAMELLIA`, select nothing here, as they select none of these suites in OpenSSL).
fn in_keyword(word: &str, name: &str) -> bool {
    let aes128 = name.contains("AES128");
    let aes256 = name.contains("AES256");
    match word {
        "ALL" | "DEFAULT" | "HIGH" | "TLSv1.2" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH"
        | "ECDH" | "kECDH" => true,
        "ECDSA" | "aECDSA" => name.contains("-ECDSA-"),
        "aRSA" => name.contains("-RSA-"),
        "AES" | "AESGCM" => aes128 || aes256,
        "AES128" => aes128,
        "AES256" => aes256,
        "CHACHA20" => name.contains("CHACHA20"),
        w => w == name,
    }
}

/// The TLS 1.2 suites (OpenSSL names) an OpenSSL cipher string selects, in its order:
/// elements separated by `:`, `,` or spaces; `A+B` the suites in both; `!X` removes
/// for good, `-X` removes, `+X` moves to the end, `X` appends what is not listed yet;
/// `@STRENGTH` sorts by key length, `@SECLEVEL=N` changes nothing here.
pub fn tls12_ciphers(spec: &str) -> Vec<&'static str> {
    let mut list: Vec<&'static str> = Vec::new();
    let mut banned: Vec<&'static str> = Vec::new();
    for elem in spec.split([':', ',', ' ']).filter(|e| !e.is_empty()) {
        if let Some(cmd) = elem.strip_prefix('@') {
            if cmd == "STRENGTH" {
                list.sort_by_key(|n| std::cmp::Reverse(!n.contains("AES128")));
            }
            continue;
        }
        let (op, body) = match elem.as_bytes()[0] {
            op @ (b'!' | b'-' | b'+') => (op, &elem[1..]),
            _ => (b' ', elem),
        };
        let matched: Vec<&'static str> = TLS12
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| body.split('+').all(|w| in_keyword(w, n)))
            .collect();
        match op {
            b'!' => {
                list.retain(|n| !matched.contains(n));
                banned.extend(matched);
            }
            b'-' => list.retain(|n| !matched.contains(n)),
            b'+' => {
                let (moved, kept): (Vec<_>, Vec<_>) =
                    list.iter().partition(|n| matched.contains(n));
                list = kept.into_iter().chain(moved).collect();
            }
            _ => {
                for n in matched {
                    if !banned.contains(&n) && !list.contains(&n) {
                        list.push(n);
                    }
                }
            }
        }
    }
    list
}

fn read(setting: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{setting} \"{path}\" cannot be read: {e}"))
}

/// The certificates of a PEM file, in order (a chain: the server's first).
pub(crate) fn certificates(
    setting: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting} \"{path}\" is not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} \"{path}\" holds no certificate (no PEM \"BEGIN CERTIFICATE\" block)"
        ));
    }
    Ok(certs)
}

/// The first private key of a PEM file: PKCS#1 (`RSA PRIVATE KEY`), PKCS#8 (`PRIVATE
/// KEY`) or SEC1 (`EC PRIVATE KEY`).
fn private_key(setting: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(setting, path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(format!(
            "{setting} \"{path}\": the private key is encrypted and ferrocorn cannot ask for \
             its passphrase (decrypt it: openssl pkey -in KEY -out PLAIN)"
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{setting} \"{path}\" holds no private key (PEM PKCS#1, PKCS#8 or SEC1: \"BEGIN \
             RSA PRIVATE KEY\", \"BEGIN PRIVATE KEY\", \"BEGIN EC PRIVATE KEY\")"
        ),
        e => format!("{setting} \"{path}\" is not a PEM file: {e}"),
    })
}

/// Client certificates verified against `ca_certs` (webpki), and also accepted when the
/// certificate presented is itself one of `ca_certs` and within its validity (OpenSSL
/// trusts a certificate of its store as presented, which is how a self-signed client
/// certificate is usually pinned; webpki refuses a CA certificate as a client's).
fn client_verifier(
    path: &str,
    required: bool,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    client_verifier_of(
        certificates("ca_certs", path)?,
        &format!("ca_certs \"{path}\""),
        required,
        provider,
    )
}

/// [`client_verifier`] over certificates already read (`what` names them in messages).
pub(crate) fn client_verifier_of(
    listed: Vec<CertificateDer<'static>>,
    what: &str,
    required: bool,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in &listed {
        roots
            .add(cert.clone())
            .map_err(|e| format!("{what}: a certificate cannot be trusted: {e}"))?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if required { builder } else { builder.allow_unauthenticated() };
    let inner = builder.build().map_err(|e| format!("{what}: {e}"))?;
    Ok(Arc::new(ClientVerifier { inner, listed }))
}

/// See [`client_verifier`].
#[derive(Debug)]
struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    listed: Vec<CertificateDer<'static>>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            let now = now.as_secs() as i64;
            return match validity(end_entity) {
                Some(v) if v.not_before.secs <= now && now <= v.not_after.secs => {
                    Ok(ClientCertVerified::assertion())
                }
                Some(_) => {
                    Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
                }
                None => {
                    Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
                }
            };
        }
        self.inner.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A time of a certificate: seconds since the epoch, and as a text for messages.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CertTime {
    pub(crate) secs: i64,
    pub(crate) text: String,
}

/// A certificate's validity period.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Validity {
    pub(crate) not_before: CertTime,
    pub(crate) not_after: CertTime,
}

/// One DER element: its tag, its contents and what follows it (`tls_peer`'s reader).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    crate::tls_peer::der(b).map(|(tag, content, _, rest)| (tag, content, rest))
}

/// The validity of an X.509 certificate (RFC 5280 4.1: `Certificate` is a SEQUENCE whose
/// `tbsCertificate` holds `[0] version`, `serialNumber`, `signature`, `issuer`, then
/// `validity`), or `None` if it does not parse that far.
pub(crate) fn validity(cert: &[u8]) -> Option<Validity> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, tbs, _) = der(cert)? else { return None };
    let (tag, _, mut rest) = der(tbs)?;
    if tag == 0xa0 {
        // The explicit version came first; the serial number follows.
        rest = der(rest)?.2;
    }
    let rest = der(rest)?.2; // signature algorithm
    let rest = der(rest)?.2; // issuer
    let (0x30, validity, _) = der(rest)? else { return None };
    let (t1, not_before, rest) = der(validity)?;
    let (t2, not_after, _) = der(rest)?;
    Some(Validity { not_before: cert_time(t1, not_before)?, not_after: cert_time(t2, not_after)? })
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, 1950-2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`).
fn cert_time(tag: u8, text: &[u8]) -> Option<CertTime> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    let days = days_from_civil(year, month, day);
    Some(CertTime {
        secs: days * 86400 + hour * 3600 + min * 60 + sec,
        text: format!("{year:04}-{month:02}-{day:02} {hour:02}:{min:02}:{sec:02} UTC"),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_both_der_time_forms() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let t = cert_time(0x17, b"491231235959Z").unwrap();
        assert_eq!(t.text, "2049-12-31 23:59:59 UTC");
        assert_eq!(t.secs, 2_524_607_999);
        assert_eq!(cert_time(0x17, b"500101000000Z").unwrap().text, "1950-01-01 00:00:00 UTC");
        assert_eq!(cert_time(0x18, b"20500101000000Z").unwrap().secs, 2_524_608_000);
        assert_eq!(cert_time(0x18, b"2050010100000Z"), None);
        assert_eq!(cert_time(0x17, b"49123123595aZ"), None);
    }
}
