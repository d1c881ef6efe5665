//! The `ssl_context` hook end to end: real `gunicorn.conf.py` files that work under
//! gunicorn 27, run by gunicorn 27 and by the installed ferrocorn, each checked from
//! outside with `openssl s_client` and curl the same way: the default factory with
//! tweaks (protocol versions, ALPN, ciphers, options), a context built by hand with an
//! encrypted key and its password, client certificates through `load_verify_locations`
//! and `verify_mode`, an `sni_callback` serving two certificates by name, in both
//! workers where the worker matters (the callback runs in the worker at the handshake).
//! What ferrocorn cannot translate to rustls, and a hook that raises, stop ferrocorn's
//! start with one `Error:` line where gunicorn starts (docs/compat.md); a HUP runs the
//! hook again, and a hook that fails after a HUP keeps the old configuration serving.

use crate::support;
use crate::tls::{
    Pki, SERVER_EXT, curl, issue, new_key, one_error_line, openssl, openssl_s_client, run_to_end,
};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use support::{Server, oracle_venv, start_installed};

const SYNC: &[&str] = &["-k", "sync"];
const GTHREAD: &[&str] = &["-k", "gthread", "--threads", "2"];

/// A config file in the test's directory: TLS on with the test PKI's chain and key (as
/// gunicorn needs `certfile` for TLS at all), then `hook`, the body of `ssl_context`
/// (and whatever else the file defines before it, in `prelude`).
fn conf(pki: &Pki, name: &str, prelude: &str, hook: &str) -> PathBuf {
    let body: String = hook.lines().map(|l| format!("    {l}\n")).collect();
    let text = format!(
        "import ssl\n\ncertfile = {:?}\nkeyfile = {:?}\nworkers = 1\n\n{prelude}\n\n\
         def ssl_context(conf, default_ssl_context_factory):\n{body}",
        pki.path("chain.pem"),
        pki.path("server_key.pem"),
    );
    let path = pki.dir.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `program` on `wsgi_app:app` with the config file and the worker's flags.
fn serve(program: &str, conf: &std::path::Path, worker: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["wsgi_app:app", "-b", "127.0.0.1:0", "-c", conf.to_str().unwrap()];
    args.extend(worker);
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    (s, addr)
}

/// gunicorn 27, then ferrocorn, serving the same config file: `check(program, addr)`.
fn on_both(conf: &std::path::Path, worker: &[&str], check: impl Fn(&str, SocketAddr)) {
    oracle_venv();
    for program in ["gunicorn", "ferrocorn"] {
        let (server, addr) = serve(program, conf, worker);
        check(program, addr);
        drop(server);
    }
}

/// A config file (`name`) whose hook builds a context by hand from `cert` and an
/// encrypted `key`, with `password` (Python source: a str, bytes, a callable).
fn password_conf(pki: &Pki, name: &str, cert: &str, key: &str, password: &str) -> PathBuf {
    let hook = format!(
        "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         context.load_cert_chain({cert:?}, {key:?}, password={password})\n\
         return context"
    );
    conf(pki, name, "", &hook)
}

/// A `GET /` through `openssl s_client` with `args` (protocol, ciphers, client
/// certificate, server name...): whether `Hello, World!` came back.
fn served(addr: SocketAddr, pki: &Pki, args: &[&str]) -> bool {
    let args: Vec<&str> = ["-quiet"].iter().chain(args).copied().collect();
    openssl_s_client(addr, pki, &args).0.contains("Hello, World!")
}

/// The subject of the certificate served for `servername` (none: no SNI).
fn subject(addr: SocketAddr, servername: Option<&str>) -> String {
    let sni = servername.map(|n| format!("-servername {n}")).unwrap_or("-noservername".into());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} {sni} </dev/null 2>/dev/null \
             | openssl x509 -noout -subject",
            addr.port()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// curl `--cacert` against the server, verbose: (served, curl's output).
fn curl_verbose(addr: SocketAddr, pki: &Pki) -> (bool, String) {
    let url = format!("https://127.0.0.1:{}/", addr.port());
    curl(&["-v", "--cacert", &pki.path("ca.pem"), &url])
}

/// What ferrocorn says when it refuses a config file: its one `Error:` line.
fn refused(conf: &std::path::Path) -> String {
    let args = ["wsgi_app:app", "-b", "127.0.0.1:0", "-c", conf.to_str().unwrap()];
    let (code, log) = run_to_end("ferrocorn", &args, 60);
    assert_eq!(code, Some(1), "{log}");
    one_error_line(&log)
}

fn versions(worker: &[&str]) {
    let pki = Pki::new("tlsctx-versions");
    // The docs' own example: the default factory, then TLS 1.3 at least; ALPN set.
    let min13 = conf(
        &pki,
        "min13.conf.py",
        "",
        "context = default_ssl_context_factory()\n\
         context.minimum_version = ssl.TLSVersion.TLSv1_3\n\
         context.set_alpn_protocols(['http/1.1'])\n\
         return context",
    );
    on_both(&min13, worker, |program, addr| {
        assert!(!served(addr, &pki, &["-tls1_2"]), "{program}: TLS 1.2 under minimum TLSv1_3");
        assert!(served(addr, &pki, &["-tls1_3"]), "{program}: TLS 1.3");
        let (ok, out) = curl_verbose(addr, &pki);
        assert!(ok && out.contains("Hello, World!"), "{program}: {out}");
        assert!(out.contains("ALPN: server accepted http/1.1"), "{program}: {out}");
    });
    let no12 = conf(
        &pki,
        "no12.conf.py",
        "",
        "context = default_ssl_context_factory()\n\
         context.options |= ssl.OP_NO_TLSv1_2\n\
         return context",
    );
    on_both(&no12, worker, |program, addr| {
        assert!(!served(addr, &pki, &["-tls1_2"]), "{program}: TLS 1.2 under OP_NO_TLSv1_2");
        assert!(served(addr, &pki, &["-tls1_3"]), "{program}: TLS 1.3");
    });
    let max12 = conf(
        &pki,
        "max12.conf.py",
        "",
        "context = default_ssl_context_factory()\n\
         context.maximum_version = ssl.TLSVersion.TLSv1_2\n\
         return context",
    );
    on_both(&max12, worker, |program, addr| {
        assert!(served(addr, &pki, &["-tls1_2"]), "{program}: TLS 1.2");
        assert!(!served(addr, &pki, &["-tls1_3"]), "{program}: TLS 1.3 over maximum TLSv1_2");
    });
}

#[test]
fn default_factory_with_versions_alpn_and_options_sync() {
    versions(SYNC);
}

#[test]
fn default_factory_with_versions_alpn_and_options_gthread() {
    versions(GTHREAD);
}

#[test]
fn set_ciphers_selects_the_suites() {
    let pki = Pki::new("tlsctx-ciphers");
    let c = conf(
        &pki,
        "ciphers.conf.py",
        "",
        "context = default_ssl_context_factory()\n\
         context.maximum_version = ssl.TLSVersion.TLSv1_2\n\
         context.set_ciphers('ECDHE-RSA-AES128-GCM-SHA256')\n\
         return context",
    );
    on_both(&c, SYNC, |program, addr| {
        let with = |suite: &str| served(addr, &pki, &["-tls1_2", "-cipher", suite]);
        assert!(with("ECDHE-RSA-AES128-GCM-SHA256"), "{program}: the suite set");
        assert!(!with("ECDHE-RSA-AES256-GCM-SHA384"), "{program}: a suite not set");
        assert!(!with("ECDHE-RSA-CHACHA20-POLY1305"), "{program}: a suite not set");
    });
}

#[test]
fn a_hand_built_context_with_an_encrypted_key_and_its_password() {
    let pki = Pki::new("tlsctx-password");
    let d = &pki.dir.0;
    // PKCS#8 with PBES2 (PBKDF2, AES-256-CBC), OpenSSL's form since 1.1.
    openssl(
        d,
        &["pkey", "-in", "server_key.pem", "-aes256", "-passout", "pass:s3cret", "-out", "enc.pem"],
    );
    assert!(std::fs::read_to_string(d.join("enc.pem")).unwrap().contains("ENCRYPTED PRIVATE KEY"));
    let (chain, enc) = (pki.path("chain.pem"), pki.path("enc.pem"));
    // The password as a str, as bytes, and from a callable.
    for (i, password) in ["'s3cret'", "b's3cret'", "lambda: 's3cret'"].iter().enumerate() {
        let c = password_conf(&pki, &format!("password{i}.conf.py"), &chain, &enc, password);
        on_both(&c, SYNC, |program, addr| {
            let (ok, out) = curl_verbose(addr, &pki);
            assert!(ok && out.contains("Hello, World!"), "{program}, password {password}: {out}");
        });
    }
    // The other encrypted PKCS#8 forms OpenSSL makes: PBES2 with HMAC-SHA1, with 3DES,
    // with scrypt (ferrocorn decrypts them all); PKCS#12's PBE, which Python's OpenSSL
    // reads and ferrocorn cannot, refused naming the scheme.
    let forms: [(&str, &[&str]); 4] = [
        ("sha1", &["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"]),
        ("des3", &["-v2", "des3"]),
        ("scrypt", &["-scrypt"]),
        ("pkcs12", &["-v1", "PBE-SHA1-3DES"]),
    ];
    for (name, args) in forms {
        let out = format!("{name}.pem");
        let mut all = vec!["pkcs8", "-topk8", "-in", "server_key.pem", "-passout", "pass:s3cret"];
        all.extend(args);
        all.extend(["-out", &out]);
        openssl(d, &all);
        let key = pki.path(&out);
        let c = password_conf(&pki, &format!("{name}.conf.py"), &chain, &key, "'s3cret'");
        if name == "pkcs12" {
            let line = refused(&c);
            assert!(
                line.contains("pbeWithSHAAnd3-KeyTripleDES-CBC") && line.contains(&key),
                "{line}"
            );
            continue;
        }
        let (s, addr) = serve("ferrocorn", &c, SYNC);
        let (ok, out) = curl_verbose(addr, &pki);
        assert!(ok && out.contains("Hello, World!"), "{name}: {out}\n{}", s.log());
    }
    // A wrong password: Python's own SSLError, in ferrocorn's master at start; gunicorn
    // starts and fails every connection.
    let wrong = password_conf(&pki, "wrong.conf.py", &chain, &enc, "'nope'");
    {
        let (_g, addr) = serve("gunicorn", &wrong, SYNC);
        assert!(!curl_verbose(addr, &pki).0, "gunicorn served with a wrong password");
    }
    let line = refused(&wrong);
    assert!(line.contains("ssl_context") && line.contains("SSLError"), "{line}");
    // OpenSSL's legacy encrypted PEM (Proc-Type / DEK-Info), RSA and EC keys, AES and
    // 3DES: both serve it; with a cipher ferrocorn does not decrypt (Camellia), gunicorn
    // serves and ferrocorn names the cipher.
    new_key(d, "ec", "ec_key.pem");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ec_key.pem",
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-out",
            "ec.pem",
        ],
    );
    let legacy = [
        ("rsa", "server_key.pem", "-aes256", true),
        ("rsa", "server_key.pem", "-aes128", true),
        ("ec", "ec_key.pem", "-des3", true),
        ("rsa", "server_key.pem", "-camellia128", false),
    ];
    for (i, (tool, key, cipher, decrypted)) in legacy.into_iter().enumerate() {
        let out = format!("legacy{i}.pem");
        // (`openssl ec` writes this form by default, `openssl rsa` with `-traditional`)
        let mut args = vec![tool, "-in", key, cipher, "-passout", "pass:s3cret", "-out", &out];
        if tool == "rsa" {
            args.push("-traditional");
        }
        openssl(d, &args);
        let text = std::fs::read_to_string(d.join(&out)).unwrap();
        assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{text}");
        let cert = if tool == "ec" { pki.path("ec.pem") } else { chain.clone() };
        let legacy = pki.path(&out);
        let c = password_conf(&pki, &format!("legacy{i}.conf.py"), &cert, &legacy, "'s3cret'");
        if decrypted {
            on_both(&c, SYNC, |program, addr| {
                let (ok, out) = curl(&["-k", &format!("https://127.0.0.1:{}/", addr.port())]);
                assert!(ok && out == "Hello, World!", "{program}, {tool} {cipher}: {out}");
            });
        } else {
            let (_g, addr) = serve("gunicorn", &c, SYNC);
            assert!(curl_verbose(addr, &pki).0, "gunicorn serves a {cipher} legacy key");
            let line = refused(&c);
            assert!(line.contains("CAMELLIA-128-CBC") && line.contains(&legacy), "{line}");
        }
    }
}

fn client_certificates(worker: &[&str]) {
    let pki = Pki::new("tlsctx-mtls");
    let d = &pki.dir.0;
    let client_ca = pki.path("client_ca.pem");
    // A capath directory as OpenSSL looks it up (files named by subject hash).
    std::fs::create_dir(d.join("capath")).unwrap();
    std::fs::copy(d.join("client_ca.pem"), d.join("capath/client_ca.pem")).unwrap();
    openssl(d, &["rehash", "capath"]);
    let capath = pki.path("capath");
    let cadata = std::fs::read_to_string(d.join("client_ca.pem")).unwrap();
    for (name, load) in [
        ("cafile", format!("cafile={client_ca:?}")),
        ("capath", format!("capath={capath:?}")),
        ("cadata", format!("cadata={cadata:?}")),
    ] {
        let c = conf(
            &pki,
            &format!("{name}.conf.py"),
            "",
            &format!(
                "context = default_ssl_context_factory()\n\
                 context.load_verify_locations({load})\n\
                 context.verify_mode = ssl.CERT_REQUIRED\n\
                 return context"
            ),
        );
        on_both(&c, worker, |program, addr| {
            let cert = |c: &str| [pki.path(&format!("{c}.pem")), pki.path(&format!("{c}_key.pem"))];
            let [alice, alice_key] = cert("client");
            let [mallory, mallory_key] = cert("stranger");
            assert!(
                served(addr, &pki, &["-cert", &alice, "-key", &alice_key]),
                "{program} ({name}): a client certificate the CA signed"
            );
            assert!(
                !served(addr, &pki, &["-cert", &mallory, "-key", &mallory_key]),
                "{program} ({name}): a certificate nobody vouches for"
            );
            assert!(!served(addr, &pki, &[]), "{program} ({name}): no client certificate");
            // curl with the client's certificate, and without.
            let url = format!("https://127.0.0.1:{}/", addr.port());
            let ca = pki.path("ca.pem");
            let (ok, out) = curl(&["--cacert", &ca, "--cert", &alice, "--key", &alice_key, &url]);
            assert!(ok && out == "Hello, World!", "{program} ({name}): curl: {out}");
            assert!(!curl(&["--cacert", &ca, &url]).0, "{program} ({name}): curl without");
        });
    }
}

#[test]
fn client_certificates_through_load_verify_locations_sync() {
    client_certificates(SYNC);
}

#[test]
fn client_certificates_through_load_verify_locations_gthread() {
    client_certificates(GTHREAD);
}

fn sni(worker: &[&str]) {
    let pki = Pki::new("tlsctx-sni");
    let d = &pki.dir.0;
    issue(d, "a", "a.test", "ec", Some("int"), SERVER_EXT, 2);
    issue(d, "b", "b.test", "rsa", Some("int"), SERVER_EXT, 2);
    // The contexts are made when the config file runs; the callback picks one by name
    // and raises for one name (that handshake fails, the others go on).
    let prelude = format!(
        "def _context(cert, key):\n    \
             c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n    \
             c.load_cert_chain(cert, key)\n    \
             return c\n\n\
         BY_NAME = {{'a.test': _context({:?}, {:?}), 'b.test': _context({:?}, {:?})}}\n\n\
         def pick(sslobj, server_name, context):\n    \
             if server_name == 'boom.test':\n        \
                 raise RuntimeError('no such site')\n    \
             if server_name in BY_NAME:\n        \
                 sslobj.context = BY_NAME[server_name]",
        pki.path("a.pem"),
        pki.path("a_key.pem"),
        pki.path("b.pem"),
        pki.path("b_key.pem"),
    );
    let c = conf(
        &pki,
        "sni.conf.py",
        &prelude,
        "context = default_ssl_context_factory()\n\
         context.sni_callback = pick\n\
         return context",
    );
    on_both(&c, worker, |program, addr| {
        assert!(subject(addr, Some("a.test")).ends_with("CN = a.test"), "{program}: a");
        assert!(subject(addr, Some("b.test")).ends_with("CN = b.test"), "{program}: b");
        assert!(subject(addr, None).ends_with("CN = localhost"), "{program}: no name");
        assert!(
            subject(addr, Some("other.test")).ends_with("CN = localhost"),
            "{program}: a name the callback leaves alone"
        );
        assert_eq!(subject(addr, Some("boom.test")), "", "{program}: the callback raised");
        assert!(served(addr, &pki, &["-servername", "b.test"]), "{program}: served after");
    });
}

#[test]
fn an_sni_callback_serves_a_certificate_per_name_sync() {
    sni(SYNC);
}

#[test]
fn an_sni_callback_serves_a_certificate_per_name_gthread() {
    sni(GTHREAD);
}

#[test]
fn keylog_filename_gets_each_handshakes_secrets() {
    let pki = Pki::new("tlsctx-keylog");
    let log = pki.dir.path("keys.log");
    let c = conf(
        &pki,
        "keylog.conf.py",
        "",
        &format!(
            "context = default_ssl_context_factory()\n\
             context.keylog_filename = {:?}\n\
             return context",
            log.to_str().unwrap()
        ),
    );
    on_both(&c, GTHREAD, |program, addr| {
        let _ = std::fs::remove_file(&log);
        assert!(served(addr, &pki, &["-tls1_3"]), "{program}: TLS 1.3");
        assert!(served(addr, &pki, &["-tls1_2"]), "{program}: TLS 1.2");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // The NSS key log format: LABEL CLIENT_RANDOM SECRET, in hex.
        for label in ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0", "CLIENT_RANDOM"]
        {
            let line = text.lines().find(|l| l.starts_with(&format!("{label} ")));
            let fields: Vec<&str> = line.map(|l| l.split(' ').collect()).unwrap_or_default();
            assert!(
                fields.len() == 3
                    && fields[1].len() == 64
                    && fields[1..].iter().all(|f| f.bytes().all(|b| b.is_ascii_hexdigit())),
                "{program}: no {label} line in {text:?}"
            );
        }
    });
}

#[test]
fn what_rustls_cannot_do_is_refused_naming_it() {
    oracle_venv();
    let pki = Pki::new("tlsctx-refused");
    let d = &pki.dir.0;
    openssl(
        d,
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            "dh.pem",
        ],
    );
    let dh = pki.path("dh.pem");
    // Each is accepted by gunicorn 27, which serves with it.
    let cases = [
        ("load_dh_params", format!("context.load_dh_params({dh:?})")),
        (
            "load_default_certs",
            "context.verify_mode = ssl.CERT_REQUIRED\ncontext.load_default_certs(ssl.Purpose.CLIENT_AUTH)".to_owned(),
        ),
        ("OP_IGNORE_UNEXPECTED_EOF", "context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF".to_owned()),
        ("post_handshake_auth", "context.post_handshake_auth = True".to_owned()),
        ("h2", "context.set_alpn_protocols(['h2', 'http/1.1'])".to_owned()),
        ("secp521r1", "context.set_ecdh_curve('secp521r1')".to_owned()),
        ("TLSv1_1", "context.maximum_version = ssl.TLSVersion.TLSv1_1".to_owned()),
    ];
    for (i, (name, tweak)) in cases.iter().enumerate() {
        let c = conf(
            &pki,
            &format!("refused{i}.conf.py"),
            "",
            &format!("context = default_ssl_context_factory()\n{tweak}\nreturn context"),
        );
        let (g, addr) = serve("gunicorn", &c, SYNC);
        // It completes handshakes (with load_default_certs it then wants a client
        // certificate; with TLS 1.1 only, no client of this OpenSSL gets one).
        if *name != "TLSv1_1" {
            let (_, out) = curl_verbose(addr, &pki);
            assert!(out.contains("SSL connection using"), "gunicorn 27 with {name}: {out}");
        }
        drop(g);
        let line = refused(&c);
        assert!(line.contains("ssl_context") && line.contains(name), "{name}: {line}");
    }
}

#[test]
fn a_hook_that_raises_stops_the_start() {
    oracle_venv();
    let pki = Pki::new("tlsctx-raises");
    let c = conf(&pki, "raises.conf.py", "", "raise RuntimeError('no certificates today')");
    // gunicorn 27 starts, and each connection fails (the hook runs per connection).
    {
        let (_g, addr) = serve("gunicorn", &c, SYNC);
        assert!(!curl_verbose(addr, &pki).0, "gunicorn answered over TLS");
    }
    assert_eq!(
        refused(&c),
        "Error: the ssl_context hook failed: RuntimeError: no certificates today"
    );
}

#[test]
fn hup_runs_the_hook_again_and_a_failing_one_keeps_the_old_configuration() {
    let pki = Pki::new("tlsctx-hup");
    let d = &pki.dir.0;
    issue(d, "renewed", "renewed.localhost", "ec", Some("int"), SERVER_EXT, 2);
    // The hook reads which certificate to load from a file an operator edits.
    let which = pki.path("which.txt");
    std::fs::write(&which, "server").unwrap();
    let dir = pki.path("");
    let c = conf(
        &pki,
        "hup.conf.py",
        "",
        &format!(
            "name = open({which:?}).read().strip()\n\
             if name == 'broken':\n    \
                 raise ValueError('half-written certificate')\n\
             context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             cert = {dir:?} + ('chain' if name == 'server' else name) + '.pem'\n\
             context.load_cert_chain(cert, {dir:?} + name + '_key.pem')\n\
             return context"
        ),
    );
    let (s, addr) = serve("ferrocorn", &c, GTHREAD);
    s.wait_booted(1);
    assert!(subject(addr, None).ends_with("CN = localhost"), "{}", s.log());
    std::fs::write(&which, "renewed").unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    support::wait_until(30, "the renewed certificate", || {
        subject(addr, None).ends_with("CN = renewed.localhost")
    });
    // The hook fails after this HUP: logged once, the renewed certificate still served.
    std::fs::write(&which, "broken").unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let log = s.wait_log(30, "the failed reload", |l| l.contains("Reload failed"));
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("Reload failed")).collect();
    assert!(
        failed.len() == 1 && failed[0].contains("ValueError: half-written certificate"),
        "{log}"
    );
    assert!(subject(addr, None).ends_with("CN = renewed.localhost"), "{}", s.log());
    assert!(served(addr, &pki, &[]), "{}", s.log());
}
