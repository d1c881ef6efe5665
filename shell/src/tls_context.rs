//! The listeners' TLS acceptor when the `ssl_context` hook is set: the plan the Python
//! bridge read from the hook's `ssl.SSLContext` ([`TlsContextPlan`]) as a rustls
//! `ServerConfig`; without the hook, [`crate::tls::acceptor`]'s configuration from the
//! files. Also what the bridge needs to fill a plan: a `load_cert_chain` call's files as
//! a [`CertKey`], an encrypted key (PKCS#8, or OpenSSL's legacy PEM form) decrypted with
//! the call's `password`.
//!
//! The `sni_callback` is called at each handshake, in the worker, through rustls'
//! `ResolvesServerCert` ([`SniResolver`]): the certificate of the context it chose is
//! served.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};

use crate::settings::tls_plan::{
    CertKey, ClientAuth, KeyForm, SniChoice, SniChosen, TlsContextPlan,
};
use crate::transport::TlsAcceptor;

/// The acceptor the configuration asks for: [`crate::tls::acceptor`]'s, or with
/// `ssl_context` set, the one its context's plan describes (`Err` when the hook was set
/// but its plan is missing: it never runs silently without it).
pub fn acceptor(config: &crate::settings::ServerConfig) -> Result<Option<TlsAcceptor>, String> {
    let Some(tls) = &config.listen.tls else {
        return Ok(None);
    };
    if !tls.hook {
        return crate::tls::acceptor(config);
    }
    let Some(plan) = &tls.context else {
        return Err("ssl_context is set, but its context was not read (only the ferrocorn \
                    command runs the hook)"
            .to_owned());
    };
    let rustls_config = server_config(plan)?;
    let acceptor = TlsAcceptor::new(Arc::new(rustls_config), tls.suppress_ragged_eofs);
    Ok(Some(acceptor.with_proxy(config.proto.proxy.clone())))
}

/// The rustls configuration of a plan, or why there is none (one line).
pub fn server_config(plan: &TlsContextPlan) -> Result<ServerConfig, String> {
    let mut provider = crate::tls::crypto::default_provider();
    if let Some(spec) = plan.ciphers.as_deref() {
        provider.cipher_suites = crate::tls::cipher_suites(spec)
            .map_err(|e| format!("ssl_context: set_ciphers: {e}"))?;
    }
    if let Some(curve) = plan.ecdh_curve.as_deref() {
        use crate::tls::crypto::kx_group;
        let group = match curve {
            "prime256v1" | "secp256r1" | "P-256" => kx_group::SECP256R1,
            "secp384r1" | "P-384" => kx_group::SECP384R1,
            "X25519" | "x25519" => kx_group::X25519,
            other => {
                return Err(format!(
                    "ssl_context: set_ecdh_curve({other:?}): rustls has the groups X25519, \
                     prime256v1 and secp384r1 only"
                ));
            }
        };
        provider.kx_groups = vec![group];
    }
    let provider = Arc::new(provider);
    let mut versions = Vec::new();
    if plan.tls13 {
        versions.push(&version::TLS13);
    }
    if plan.tls12 {
        versions.push(&version::TLS12);
    }
    if versions.is_empty() {
        return Err("ssl_context: the context allows no TLS version rustls has (1.2, 1.3)".into());
    }
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl_context: {e}"))?;
    let what = "ssl_context: load_verify_locations";
    let builder = match &plan.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(cas) | ClientAuth::Required(cas) => {
            let required = matches!(plan.client_auth, ClientAuth::Required(_));
            if cas.is_empty() {
                let mode = if required { "CERT_REQUIRED" } else { "CERT_OPTIONAL" };
                return Err(format!(
                    "ssl_context: verify_mode is {mode} but the context has no CA certificate \
                     to verify clients with (load_verify_locations, or the ca_certs setting)"
                ));
            }
            let listed = cas.iter().map(|c| CertificateDer::from(c.clone())).collect();
            builder.with_client_cert_verifier(crate::tls::client_verifier_of(
                listed, what, required, &provider,
            )?)
        }
    };
    let default = plan.cert.as_ref().map(|c| certified(c, &provider)).transpose()?;
    let resolver: Arc<dyn ResolvesServerCert> = match (&plan.sni, default) {
        (Some(sni), default) => {
            let contexts =
                sni.contexts.iter().map(|c| certified(c, &provider)).collect::<Result<_, _>>()?;
            Arc::new(SniResolver { default, contexts, choice: Arc::clone(&sni.choice) })
        }
        (None, Some(key)) => Arc::new(OneCert(key)),
        (None, None) => {
            return Err("ssl_context: the context has no certificate (load_cert_chain was not \
                        called on it) and no sni_callback"
                .into());
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = match &plan.alpn {
        Some(list) => list.clone(),
        None => vec![crate::tls::ALPN_HTTP11.to_vec()],
    };
    if let Some(path) = plan.keylog.as_deref() {
        let file =
            std::fs::OpenOptions::new().append(true).create(true).open(path).map_err(|e| {
                format!("ssl_context: keylog_filename {path:?} cannot be opened: {e}")
            })?;
        config.key_log = Arc::new(KeyLogTo(std::sync::Mutex::new(file)));
    }
    config.ignore_client_order = plan.server_preference;
    config.send_tls13_tickets = plan.tls13_tickets;
    Ok(config)
}

/// A chain and key as rustls signs with them; the key must match the certificate.
fn certified(
    c: &CertKey,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = c.chain.iter().map(|d| CertificateDer::from(d.clone())).collect();
    let key: PrivateKeyDer<'static> = match c.key_form {
        KeyForm::Pkcs1 => PrivatePkcs1KeyDer::from(c.key.clone()).into(),
        KeyForm::Pkcs8 => PrivatePkcs8KeyDer::from(c.key.clone()).into(),
        KeyForm::Sec1 => PrivateSec1KeyDer::from(c.key.clone()).into(),
    };
    CertifiedKey::from_der(chain, key, provider).map(Arc::new).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            format!("ssl_context: {}: the private key does not match the certificate", c.source)
        }
        e => format!("ssl_context: {}: {e}", c.source),
    })
}

/// The type of a chain's key (`RSA`, `ECDSA`, `ED25519`), or why rustls cannot use it.
pub fn key_algorithm(c: &CertKey) -> Result<String, String> {
    let provider = crate::tls::crypto::default_provider();
    let key = certified(c, &provider)?;
    Ok(format!("{:?}", key.key.algorithm()))
}

/// `keylog_filename`: each secret appended as a line of the NSS key log format, as
/// OpenSSL writes them (what Wireshark reads).
#[derive(Debug)]
struct KeyLogTo(std::sync::Mutex<std::fs::File>);

impl rustls::KeyLog for KeyLogTo {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::fmt::Write as _;
        let mut line =
            String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        for part in [client_random, secret] {
            line.push(' ');
            for b in part {
                let _ = write!(line, "{b:02x}");
            }
        }
        line.push('\n');
        if let Ok(mut f) = self.0.lock() {
            let _ = std::io::Write::write_all(&mut *f, line.as_bytes());
        }
    }
}

/// The one certificate of a context without `sni_callback`.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// `sni_callback`: the callback chooses, at each handshake, which context's certificate
/// is served; none (it raised, returned an alert, or the context it chose has no
/// certificate) fails the handshake, as OpenSSL's does.
#[derive(Debug)]
struct SniResolver {
    default: Option<Arc<CertifiedKey>>,
    contexts: Vec<Arc<CertifiedKey>>,
    choice: Arc<dyn SniChoice>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.choice.choose(hello.server_name()) {
            SniChosen::Own => self.default.clone(),
            SniChosen::Context(i) => self.contexts.get(i).cloned(),
            SniChosen::Refused => None,
        }
    }
}

/// What `load_cert_chain(certfile, keyfile, password)` loaded, read again from the files
/// (after Python's own call accepted them): the chain in order and the private key,
/// decrypted with `password` when it is encrypted.
pub fn cert_key(
    certfile: &str,
    keyfile: Option<&str>,
    password: Option<&[u8]>,
) -> Result<CertKey, String> {
    let source = match keyfile {
        Some(k) => format!("load_cert_chain({certfile:?}, {k:?})"),
        None => format!("load_cert_chain({certfile:?})"),
    };
    let chain = crate::tls::certificates("load_cert_chain certfile", certfile)?;
    if let Some(v) = crate::tls::validity(&chain[0]) {
        if crate::tls::unix_now() > v.not_after.secs {
            return Err(format!("{source}: the certificate expired on {}", v.not_after.text));
        }
    }
    let keypath = keyfile.unwrap_or(certfile);
    let pem =
        std::fs::read(keypath).map_err(|e| format!("{source}: {keypath:?} cannot be read: {e}"))?;
    let (key, key_form) = private_key(&pem, password).map_err(|e| format!("{source}: {e}"))?;
    Ok(CertKey { chain: chain.into_iter().map(|c| c.to_vec()).collect(), key, key_form, source })
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The first private key of a PEM text, its DER and form; an `ENCRYPTED PRIVATE KEY`
/// (PKCS#8 `EncryptedPrivateKeyInfo`) or a legacy `Proc-Type: 4,ENCRYPTED` block is
/// decrypted with `password`.
fn private_key(pem: &[u8], password: Option<&[u8]>) -> Result<(Vec<u8>, KeyForm), String> {
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(ENCRYPTED_BEGIN) {
        let Some(len) = text[start..].find(ENCRYPTED_END) else {
            return Err("the encrypted private key has no END line".into());
        };
        let block = &text[start..start + len + ENCRYPTED_END.len()];
        let Some(password) = password else {
            return Err("the private key is encrypted and load_cert_chain got no password".into());
        };
        return decrypt_pkcs8(block, password).map(|der| (der, KeyForm::Pkcs8));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        let Some(password) = password else {
            return Err("the private key is encrypted and load_cert_chain got no password".into());
        };
        return decrypt_legacy(&text, password);
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs1(k)) => Ok((k.secret_pkcs1_der().to_vec(), KeyForm::Pkcs1)),
        Ok(PrivateKeyDer::Pkcs8(k)) => Ok((k.secret_pkcs8_der().to_vec(), KeyForm::Pkcs8)),
        Ok(PrivateKeyDer::Sec1(k)) => Ok((k.secret_sec1_der().to_vec(), KeyForm::Sec1)),
        Ok(_) => Err("the private key is of a form rustls does not know".into()),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err("no private key (PEM PKCS#1, \
            PKCS#8, SEC1 or encrypted PKCS#8: \"BEGIN RSA PRIVATE KEY\", \"BEGIN PRIVATE KEY\", \
            \"BEGIN EC PRIVATE KEY\", \"BEGIN ENCRYPTED PRIVATE KEY\")"
            .into()),
        Err(e) => Err(format!("not a PEM file: {e}")),
    }
}

/// An `ENCRYPTED PRIVATE KEY` PEM block decrypted: PKCS#5 PBES2 (PBKDF2 or scrypt, then
/// AES-CBC; OpenSSL's form since 1.1) and PBES1-style 3DES, as the `pkcs8` crate reads them.
fn decrypt_pkcs8(block: &str, password: &[u8]) -> Result<Vec<u8>, String> {
    use pkcs8::der::Decode;
    let (_, doc) = pkcs8::der::Document::from_pem(block)
        .map_err(|e| format!("the encrypted private key is not valid PEM: {e}"))?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).map_err(
            |e| match algorithm_of(doc.as_bytes()) {
                Some(oid) => format!(
                    "the private key is encrypted with {oid}{}, which ferrocorn cannot decrypt: \
                 convert it to PBES2 (openssl pkcs8 -topk8 -in KEY -out KEY8 -v2 aes-256-cbc)",
                    pkcs12_pbe_name(&oid.to_string())
                        .map(|n| format!(" ({n}, a PKCS#12 scheme)"))
                        .unwrap_or_default()
                ),
                None => format!("the encrypted private key does not parse: {e}"),
            },
        )?;
    let plain = info.decrypt(password).map_err(|e| {
        format!(
            "the private key is encrypted with {} ({}), which ferrocorn cannot decrypt with \
             this password: {e}",
            info.encryption_algorithm.oid(),
            scheme_name(&info.encryption_algorithm)
        )
    })?;
    Ok(plain.as_bytes().to_vec())
}

/// A key in OpenSSL's legacy encrypted PEM form (`Proc-Type: 4,ENCRYPTED`, `DEK-Info:
/// CIPHER,IV`, what `openssl genrsa -aes256` wrote before OpenSSL 3): the key is
/// `EVP_BytesToKey` (MD5, one round, the IV's first 8 bytes as salt) of the password,
/// the cipher AES-128/192/256-CBC or DES-EDE3-CBC; inside, PKCS#1 or SEC1 DER.
fn decrypt_legacy(text: &str, password: &[u8]) -> Result<(Vec<u8>, KeyForm), String> {
    let bad = |what: &str| format!("the legacy encrypted PEM key is malformed ({what})");
    let at = text.find("Proc-Type: 4,ENCRYPTED").unwrap_or(0);
    let begin = text[..at].rfind("-----BEGIN ").ok_or_else(|| bad("no BEGIN line"))? + 11;
    let label_len = text[begin..].find("-----").ok_or_else(|| bad("BEGIN line"))?;
    let label = &text[begin..begin + label_len];
    let form = match label {
        "RSA PRIVATE KEY" => KeyForm::Pkcs1,
        "EC PRIVATE KEY" => KeyForm::Sec1,
        other => return Err(format!("an encrypted PEM block \"{other}\" is not a private key")),
    };
    let body = begin + label_len + 5;
    let end =
        text[body..].find(&format!("-----END {label}-----")).ok_or_else(|| bad("no END line"))?;
    let (mut dek, mut b64) = (None, String::new());
    for line in text[body..body + end].lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("DEK-Info:") {
            dek = Some(v.trim());
        } else if !line.contains(':') {
            b64.push_str(line);
        }
    }
    let (cipher, iv_hex) = dek.and_then(|d| d.split_once(',')).ok_or_else(|| bad("DEK-Info"))?;
    let iv = (0..iv_hex.len() / 2)
        .map(|i| u8::from_str_radix(iv_hex.get(2 * i..2 * i + 2).unwrap_or("?"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad("the IV"))?;
    use base64ct::Encoding as _;
    let data = base64ct::Base64::decode_vec(&b64).map_err(|_| bad("base64"))?;
    let key_len = match cipher {
        "AES-128-CBC" => 16,
        "AES-192-CBC" | "DES-EDE3-CBC" => 24,
        "AES-256-CBC" => 32,
        other => {
            return Err(format!(
                "the private key is encrypted with {other} in OpenSSL's legacy PEM form, which \
                 ferrocorn cannot decrypt (AES-CBC and DES-EDE3-CBC only): convert it to \
                 encrypted PKCS#8 (openssl pkcs8 -topk8 -in KEY -out KEY8 -v2 aes-256-cbc)"
            ));
        }
    };
    if iv.len() < 8 {
        return Err(bad("the IV"));
    }
    let key = bytes_to_key(password, &iv[..8], key_len);
    let plain = match cipher {
        "AES-128-CBC" => cbc_decrypt::<aes::Aes128>(&key, &iv, &data),
        "AES-192-CBC" => cbc_decrypt::<aes::Aes192>(&key, &iv, &data),
        "AES-256-CBC" => cbc_decrypt::<aes::Aes256>(&key, &iv, &data),
        _ => cbc_decrypt::<des::TdesEde3>(&key, &iv, &data),
    };
    match plain {
        Some(der) => Ok((der, form)),
        None => Err(format!("the password does not decrypt the private key ({cipher})")),
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round.
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    use md5::Digest as _;
    let (mut out, mut prev) = (Vec::new(), Vec::new());
    while out.len() < len {
        let mut h = md5::Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

/// CBC decryption with PKCS#7 padding; `None` when the padding is wrong (a wrong key).
fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    use cbc::cipher::{BlockDecryptMut as _, KeyIvInit as _};
    let mut buf = data.to_vec();
    let n = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_mut::<cbc::cipher::block_padding::Pkcs7>(&mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// The `encryptionAlgorithm` OID of an `EncryptedPrivateKeyInfo` whose scheme the
/// `pkcs8` crate does not know.
fn algorithm_of(der: &[u8]) -> Option<pkcs8::ObjectIdentifier> {
    use pkcs8::der::{Decode, Reader, SliceReader};
    let mut reader = SliceReader::new(der).ok()?;
    reader
        .sequence(|r| {
            let alg = pkcs8::spki::AlgorithmIdentifierRef::decode(r)?;
            let _data = pkcs8::der::asn1::AnyRef::decode(r)?;
            Ok(alg.oid)
        })
        .ok()
}

/// PKCS#12's password-based encryption schemes (RFC 7292 appendix C), by OID.
fn pkcs12_pbe_name(oid: &str) -> Option<&'static str> {
    Some(match oid.strip_prefix("1.2.840.113549.1.12.1.")? {
        "1" => "pbeWithSHAAnd128BitRC4",
        "2" => "pbeWithSHAAnd40BitRC4",
        "3" => "pbeWithSHAAnd3-KeyTripleDES-CBC",
        "4" => "pbeWithSHAAnd2-KeyTripleDES-CBC",
        "5" => "pbeWithSHAAnd128BitRC2-CBC",
        "6" => "pbewithSHAAnd40BitRC2-CBC",
        _ => return None,
    })
}

fn scheme_name(scheme: &pkcs8::pkcs5::EncryptionScheme<'_>) -> &'static str {
    match scheme {
        pkcs8::pkcs5::EncryptionScheme::Pbes2(_) => "PBES2",
        _ => "PBES1",
    }
}
