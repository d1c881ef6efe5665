//! What an `ssl.SSLContext` returned by the `ssl_context` hook asks for, as plain data:
//! the plan [`crate::tls_context`] turns into a rustls `ServerConfig`.
//!
//! The Python bridge (`python/ssl_context.rs`) runs the hook in the master, at start and
//! on each HUP, reads what was done to the contexts it made (the files loaded, the
//! properties set), reads the files and fills a [`TlsContextPlan`]. The plan travels with
//! the [`super::ServerConfig`] of its generation into the workers forked for it; a
//! context's features that have no rustls counterpart never reach a plan: the bridge
//! refuses them with a line naming them.

use std::fmt;
use std::sync::Arc;

/// A certificate chain and its private key, from one `load_cert_chain` call (its
/// `Debug` leaves the key out).
#[derive(Clone, PartialEq, Eq)]
pub struct CertKey {
    /// The chain in order, DER (the server's certificate first).
    pub chain: Vec<Vec<u8>>,
    /// The private key, decrypted, DER.
    pub key: Vec<u8>,
    /// Its form.
    pub key_form: KeyForm,
    /// Where it came from, for messages (`load_cert_chain("a.pem", "a.key")`).
    pub source: String,
}

impl fmt::Debug for CertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKey")
            .field("chain", &format_args!("{} certificate(s)", self.chain.len()))
            .field("key", &format_args!("{:?} (not shown)", self.key_form))
            .field("source", &self.source)
            .finish()
    }
}

/// The DER form of a private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyForm {
    /// PKCS#1 (`RSA PRIVATE KEY`).
    Pkcs1,
    /// PKCS#8 (`PRIVATE KEY`, and what an `ENCRYPTED PRIVATE KEY` decrypts to).
    Pkcs8,
    /// SEC1 (`EC PRIVATE KEY`).
    Sec1,
}

/// Client certificates (`verify_mode` and the CA certificates loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `CERT_NONE`: none asked for.
    None,
    /// `CERT_OPTIONAL`: asked for; verified when sent.
    Optional(Vec<Vec<u8>>),
    /// `CERT_REQUIRED`: asked for, and the handshake fails without one.
    Required(Vec<Vec<u8>>),
}

/// What the context's `sni_callback` chose for one handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SniChosen {
    /// The context's own certificate (the callback set no other context).
    Own,
    /// The certificate of [`SniPlan::contexts`]`[i]`.
    Context(usize),
    /// None: the handshake fails (the callback raised, returned an alert, or chose a
    /// context whose certificate ferrocorn did not read).
    Refused,
}

/// The context's `sni_callback`, called for each handshake.
pub trait SniChoice: Send + Sync + fmt::Debug {
    /// Calls the callback for `server_name` (`None`: the client sent none).
    fn choose(&self, server_name: Option<&str>) -> SniChosen;
}

/// `sni_callback`: the callback, and the certificates of the contexts it may choose.
#[derive(Clone, Debug)]
pub struct SniPlan {
    /// The certificate of each context the callback may switch to.
    pub contexts: Vec<CertKey>,
    /// The callback.
    pub choice: Arc<dyn SniChoice>,
}

impl PartialEq for SniPlan {
    fn eq(&self, other: &SniPlan) -> bool {
        self.contexts == other.contexts && Arc::ptr_eq(&self.choice, &other.choice)
    }
}

impl Eq for SniPlan {}

/// The TLS configuration the hook's context describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsContextPlan {
    /// The certificate served (`None` when only the `sni_callback` chooses one).
    pub cert: Option<CertKey>,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// TLS 1.2 allowed (`minimum_version`, `maximum_version`, `OP_NO_TLSv1_2`).
    pub tls12: bool,
    /// TLS 1.3 allowed.
    pub tls13: bool,
    /// The last `set_ciphers` string, if any.
    pub ciphers: Option<String>,
    /// `OP_CIPHER_SERVER_PREFERENCE`: the server's suite order wins.
    pub server_preference: bool,
    /// `set_alpn_protocols` (`None`: never called: ALPN offers `http/1.1`).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// `num_tickets`: TLS 1.3 session tickets sent after a handshake.
    pub tls13_tickets: usize,
    /// `keylog_filename`: where TLS secrets are appended (NSS key log format).
    pub keylog: Option<String>,
    /// `set_ecdh_curve`: the one key exchange group allowed.
    pub ecdh_curve: Option<String>,
    /// `sni_callback`.
    pub sni: Option<SniPlan>,
}
