//! The `ssl_context` hook: run in the master (at start, after `chdir`, and on each HUP)
//! by `ferrocorn/_ssl_context.py` as gunicorn 27's `sock.ssl_context` runs it, then the
//! `ssl.SSLContext` it returned read into a [`TlsContextPlan`], which the listeners'
//! acceptor is built from ([`crate::tls_context`]) in the master and in every worker of
//! that generation.
//!
//! What is read: the files each `load_cert_chain` call loaded (an encrypted key
//! decrypted with the call's `password`), the CA certificates (`get_ca_certs`, and the
//! files of a `capath`), `verify_mode`, `minimum_version` / `maximum_version`, `options`,
//! `verify_flags`, `num_tickets`, `keylog_filename`, `set_ciphers`, `set_alpn_protocols`,
//! `set_ecdh_curve` and `sni_callback` (called at each handshake in the worker,
//! [`PySni`]). Whatever else was asked of the context that rustls cannot do is refused
//! with one line naming it.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::convert::{exc_str, handle};
use crate::settings::tls_plan::{
    CertKey, ClientAuth, SniChoice, SniChosen, SniPlan, TlsContextPlan,
};
use crate::settings::{ServerConfig, Settings, Value};

/// `config` with the plan of the `ssl_context` hook's context, when TLS is on and the
/// hook is set; `Err` is the line to print (or log, on HUP).
pub fn with_context(
    py: Python<'_>,
    settings: &Settings,
    mut config: ServerConfig,
) -> Result<ServerConfig, String> {
    let Some(tls) = config.listen.tls.as_mut() else {
        return Ok(config);
    };
    if !tls.hook {
        return Ok(config);
    }
    crate::tls::files_exist(tls)?;
    let Value::Object(obj) = settings.get("ssl_context") else {
        return Err("ssl_context is not a callable".into());
    };
    let Some(hook) = handle(obj) else {
        return Err("ssl_context is not a callable of this interpreter".into());
    };
    let cfg = super::config_object::cfg_object(py, settings).map_err(|e| exc_str(py, &e))?;
    let module = PyModule::import(py, "ferrocorn._ssl_context").map_err(|e| exc_str(py, &e))?;
    let desc = module.call_method1("run", (hook.clone_ref(py), cfg)).map_err(|e| {
        let class = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_default();
        format!("the ssl_context hook failed: {class}: {}", exc_str(py, &e))
    })?;
    let desc = desc.cast_into::<PyDict>().map_err(|e| e.to_string())?;
    let plan = plan(py, &module, &desc).map_err(|e| match e {
        Refused::Text(t) => format!("ssl_context: {t}"),
        Refused::Py(e) => format!("ssl_context: {}", exc_str(py, &e)),
    })?;
    // Built once here, so anything rustls refuses stops the start (or the HUP) now.
    crate::tls_context::server_config(&plan)?;
    tls.context = Some(plan);
    Ok(config)
}

/// A noted `load_cert_chain` call: `certfile`, `keyfile`, the password it took.
type Chain = (String, Option<String>, Option<Vec<u8>>);

/// Why a context cannot be translated.
enum Refused {
    Text(String),
    Py(PyErr),
}

impl From<PyErr> for Refused {
    fn from(e: PyErr) -> Refused {
        Refused::Py(e)
    }
}

impl From<String> for Refused {
    fn from(t: String) -> Refused {
        Refused::Text(t)
    }
}

// `ssl` constants (OpenSSL 3, CPython 3.10+).
const PROTOCOL_TLS: i64 = 2;
const PROTOCOL_TLSV1_2: i64 = 5;
const PROTOCOL_TLS_CLIENT: i64 = 16;
const PROTOCOL_TLS_SERVER: i64 = 17;
const TLS1_2: i64 = 0x303;
const TLS1_3: i64 = 0x304;

const OP_NO_SSLV3: i64 = 0x0200_0000;
const OP_NO_TLSV1: i64 = 0x0400_0000;
const OP_NO_TLSV1_1: i64 = 0x1000_0000;
const OP_NO_TLSV1_2: i64 = 0x0800_0000;
const OP_NO_TLSV1_3: i64 = 0x2000_0000;
const OP_NO_COMPRESSION: i64 = 0x0002_0000;
const OP_CIPHER_SERVER_PREFERENCE: i64 = 0x0040_0000;
const OP_NO_RENEGOTIATION: i64 = 0x4000_0000;
const OP_NO_TICKET: i64 = 0x4000;
const OP_ENABLE_MIDDLEBOX_COMPAT: i64 = 0x0010_0000;
/// `create_default_context`'s options: `OP_ALL`, `OP_NO_SSLv3`, `OP_NO_COMPRESSION`,
/// `OP_CIPHER_SERVER_PREFERENCE`, `OP_ENABLE_MIDDLEBOX_COMPAT` (and the `OP_SINGLE_*`
/// options, 0 in OpenSSL 3).
const DEFAULT_OPTIONS: i64 = 0x8252_0050;
/// Options that may be set beyond the defaults, each with its rustls meaning: rustls has
/// no SSL 3, TLS 1.0 or 1.1, no compression, no renegotiation and no stateless tickets;
/// `OP_NO_TLSv1_2` / `_3` remove the version; the server's suite order is rustls'
/// `ignore_client_order`.
const MAPPED_OPTIONS: i64 = OP_NO_SSLV3
    | OP_NO_TLSV1
    | OP_NO_TLSV1_1
    | OP_NO_TLSV1_2
    | OP_NO_TLSV1_3
    | OP_NO_COMPRESSION
    | OP_CIPHER_SERVER_PREFERENCE
    | OP_NO_RENEGOTIATION
    | OP_NO_TICKET
    | OP_ENABLE_MIDDLEBOX_COMPAT;

const VERIFY_X509_TRUSTED_FIRST: i64 = 0x8000;
const VERIFY_X509_STRICT: i64 = 0x20;
const VERIFY_X509_PARTIAL_CHAIN: i64 = 0x8_0000;

fn item<'py, T: for<'a> FromPyObject<'a, 'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T>
where
    for<'a> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
{
    match d.get_item(key)? {
        Some(v) => v.extract::<T>().map_err(Into::into),
        None => Err(pyo3::exceptions::PyKeyError::new_err(key.to_owned())),
    }
}

/// Python's name of a value or a set of flags (`ssl.Options(x).name`), for messages.
fn flag_names(py: Python<'_>, class: &str, bits: i64) -> String {
    PyModule::import(py, "ssl")
        .and_then(|m| m.getattr(class)?.call1((bits,))?.getattr("name")?.extract::<String>())
        .unwrap_or_else(|_| format!("{class}({bits:#x})"))
}

fn plan(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    d: &Bound<'_, PyDict>,
) -> Result<TlsContextPlan, Refused> {
    if !item::<bool>(d, "watched")? {
        return Err("the context it returned was made before ferrocorn watched (outside the \
                    config file and the hook), so what was loaded into it cannot be read"
            .to_owned()
            .into());
    }
    let protocol: i64 = item(d, "protocol")?;
    match protocol {
        PROTOCOL_TLS | PROTOCOL_TLS_SERVER | PROTOCOL_TLSV1_2 => {}
        PROTOCOL_TLS_CLIENT => {
            return Err("the context is a client's (PROTOCOL_TLS_CLIENT, as \
                        create_default_context(Purpose.SERVER_AUTH) makes): a server needs \
                        Purpose.CLIENT_AUTH or PROTOCOL_TLS_SERVER"
                .to_owned()
                .into());
        }
        p => {
            return Err(format!(
                "the context's protocol {} allows only TLS 1.0 or 1.1, which rustls does not have",
                flag_names(py, "_SSLMethod", p)
            )
            .into());
        }
    }
    let verify_mode: i64 = item(d, "verify_mode")?;
    if item::<bool>(d, "check_hostname")? {
        return Err("check_hostname = True is a client's check (a server has no host name to \
                    check a client certificate against)"
            .to_owned()
            .into());
    }
    if item::<bool>(d, "post_handshake_auth")? {
        return Err("post_handshake_auth = True: rustls has no TLS 1.3 post-handshake \
                    authentication"
            .to_owned()
            .into());
    }
    // Versions.
    let options: i64 = item(d, "options")?;
    let added = options & !DEFAULT_OPTIONS;
    let unknown = added & !MAPPED_OPTIONS;
    if unknown != 0 {
        return Err(format!(
            "options |= {} cannot be translated to rustls",
            flag_names(py, "Options", unknown)
        )
        .into());
    }
    let bound = |v: i64| match v {
        -2 => 0,
        -1 => 0xffff,
        v => v,
    };
    let (min, max): (i64, i64) = (item(d, "minimum_version")?, item(d, "maximum_version")?);
    let (lo, hi) = (bound(min), bound(max));
    let mut tls12 = lo <= TLS1_2 && TLS1_2 <= hi && options & OP_NO_TLSV1_2 == 0;
    let tls13 = lo <= TLS1_3
        && TLS1_3 <= hi
        && options & OP_NO_TLSV1_3 == 0
        && protocol != PROTOCOL_TLSV1_2;
    if protocol == PROTOCOL_TLSV1_2 {
        tls12 = options & OP_NO_TLSV1_2 == 0;
    }
    if !tls12 && !tls13 {
        return Err(format!(
            "minimum_version {}, maximum_version {}{} leave no TLS version rustls has (1.2, \
             1.3; rustls has no TLS 1.0 or 1.1)",
            flag_names(py, "TLSVersion", min),
            flag_names(py, "TLSVersion", max),
            match options & (OP_NO_TLSV1_2 | OP_NO_TLSV1_3) {
                0 => String::new(),
                no => format!(" and options {}", flag_names(py, "Options", no)),
            }
        )
        .into());
    }
    // Client certificates.
    let verify_flags: i64 = item(d, "verify_flags")?;
    let odd_flags = verify_flags
        & !(VERIFY_X509_TRUSTED_FIRST | VERIFY_X509_STRICT | VERIFY_X509_PARTIAL_CHAIN);
    if verify_mode != 0 && odd_flags != 0 {
        return Err(format!(
            "verify_flags {} cannot be translated to rustls (CRL checks need CRLs ferrocorn \
             does not load)",
            flag_names(py, "VerifyFlags", odd_flags)
        )
        .into());
    }
    let other: Vec<String> = item(d, "other")?;
    for call in &other {
        let harmless = matches!(call.as_str(), "load_default_certs" | "set_default_verify_paths")
            && verify_mode == 0;
        if !harmless {
            let why = match call.as_str() {
                "load_default_certs" | "set_default_verify_paths" => {
                    "the system's CA store is not loaded to verify clients; list the CAs with \
                     load_verify_locations"
                }
                "load_dh_params" => "rustls has no finite-field Diffie-Hellman suites",
                _ => "rustls has no counterpart",
            };
            return Err(format!("{call}() cannot be translated to rustls ({why})").into());
        }
    }
    let client_auth = match verify_mode {
        0 => ClientAuth::None,
        m @ (1 | 2) => {
            let mut cas: Vec<Vec<u8>> = item(d, "ca_der")?;
            for dir in item::<Vec<String>>(d, "capaths")? {
                cas.extend(capath_certs(&dir)?);
            }
            if m == 1 { ClientAuth::Optional(cas) } else { ClientAuth::Required(cas) }
        }
        m => return Err(format!("verify_mode {m} is not a CERT_* value").into()),
    };
    // Certificates.
    let chains: Vec<Chain> = item(d, "chains")?;
    let cert = last_cert(&chains)?;
    let alpn: Option<Vec<Vec<u8>>> = item(d, "alpn")?;
    if let Some(list) = &alpn {
        for p in list {
            if p != b"http/1.1" && p != b"http/1.0" {
                return Err(format!(
                    "set_alpn_protocols offers {:?}: ferrocorn speaks HTTP/1.1 and 1.0 only",
                    String::from_utf8_lossy(p)
                )
                .into());
            }
        }
    }
    let sni = match d.get_item("sni_callback")? {
        Some(cb) if !cb.is_none() => {
            let candidates: Vec<(Py<PyAny>, Chain, bool)> = item(d, "candidates")?;
            let mut contexts = Vec::new();
            let objs = PyList::empty(py);
            for (ctx, (certfile, keyfile, password), current) in candidates {
                match crate::tls_context::cert_key(
                    &certfile,
                    keyfile.as_deref(),
                    password.as_deref(),
                ) {
                    Ok(c) => contexts.push(c),
                    // A context of an earlier run of the config file whose files are gone:
                    // left out (the callback choosing it fails that handshake, saying so).
                    Err(_) if !current => continue,
                    Err(e) => return Err(e.into()),
                }
                objs.append(ctx)?;
            }
            let context: Py<PyAny> = item(d, "context")?;
            let choice = PySni {
                choose: module.getattr("choose")?.unbind(),
                callback: cb.unbind(),
                context,
                candidates: objs.unbind(),
            };
            Some(SniPlan { contexts, choice: Arc::new(choice) })
        }
        _ => None,
    };
    Ok(TlsContextPlan {
        cert,
        client_auth,
        tls12,
        tls13,
        ciphers: item(d, "ciphers")?,
        server_preference: options & OP_CIPHER_SERVER_PREFERENCE != 0,
        alpn,
        tls13_tickets: item::<i64>(d, "num_tickets")?.try_into().unwrap_or(0),
        keylog: item(d, "keylog_filename")?,
        ecdh_curve: item(d, "ecdh_curve")?,
        sni,
    })
}

/// The certificate of a context's `load_cert_chain` calls: the last one, as OpenSSL
/// replaces a certificate with the next of its key type; calls with keys of different
/// types (OpenSSL keeps one of each and picks per client) are refused.
fn last_cert(chains: &[Chain]) -> Result<Option<CertKey>, Refused> {
    let mut read = Vec::new();
    for (certfile, keyfile, password) in chains {
        read.push(crate::tls_context::cert_key(certfile, keyfile.as_deref(), password.as_deref())?);
    }
    let kinds: Vec<String> =
        read.iter().map(crate::tls_context::key_algorithm).collect::<Result<_, _>>()?;
    if kinds.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!(
            "load_cert_chain loaded keys of {} types ({}): OpenSSL keeps one certificate per \
             key type and picks one per client, ferrocorn serves one; load one",
            kinds.len(),
            kinds.join(", ")
        )
        .into());
    }
    Ok(read.pop())
}

/// The CA certificates of a `capath` directory, as OpenSSL looks them up: the files
/// named by subject hash (`HASH.N`).
fn capath_certs(dir: &str) -> Result<Vec<Vec<u8>>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("load_verify_locations capath {dir:?} cannot be read: {e}"))?;
    let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hashed = name.split_once('.').is_some_and(|(h, n)| {
            h.len() == 8
                && h.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        if hashed {
            let certs =
                crate::tls::certificates("load_verify_locations capath", &path.to_string_lossy())?;
            out.extend(certs.into_iter().map(|c| c.to_vec()));
        }
    }
    Ok(out)
}

/// `sni_callback`, called at each handshake in the worker with a stand-in of the
/// `ssl.SSLObject` (`ferrocorn._ssl_context.SNIObject`): the context it sets is looked up
/// among the contexts ferrocorn watched. An exception is printed as CPython prints an
/// exception in a servername callback (`sys.unraisablehook`) and fails the handshake.
#[derive(Debug)]
struct PySni {
    choose: Py<PyAny>,
    callback: Py<PyAny>,
    context: Py<PyAny>,
    candidates: Py<PyList>,
}

impl SniChoice for PySni {
    fn choose(&self, server_name: Option<&str>) -> SniChosen {
        Python::attach(|py| {
            let result = self.choose.bind(py).call1((
                self.callback.bind(py),
                self.context.bind(py),
                self.candidates.bind(py),
                server_name,
            ));
            match result {
                Ok(r) if r.is_none() => SniChosen::Own,
                Ok(r) => match r.extract::<usize>() {
                    Ok(i) => SniChosen::Context(i),
                    Err(_) => SniChosen::Refused,
                },
                Err(e) => {
                    e.write_unraisable(py, Some(self.callback.bind(py)));
                    SniChosen::Refused
                }
            }
        })
    }
}
