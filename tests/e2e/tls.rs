//! TLS end to end: the installed command with `certfile`/`keyfile` (a chain in order,
//! keys in every PEM form), `ca_certs` and `cert_reqs`, in both workers, against curl,
//! Python's `ssl`/`http.client` and `requests`, and `openssl s_client`; the files
//! gunicorn 27 refuses at start, and those ferrocorn refuses beyond it; a stalled
//! handshake beside other clients. Certificates are made by the openssl command into a
//! temporary directory for each test.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Server, TempDir, apps, oracle_venv, start_installed, venv};

/// Runs openssl in `dir`; panics with its output when it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new private key in `dir/file`: `ec` (P-256) or `rsa` (2048 bits), PKCS#8 PEM.
pub(crate) fn new_key(dir: &Path, kind: &str, file: &str) {
    let opt = if kind == "ec" { "ec_paramgen_curve:P-256" } else { "rsa_keygen_bits:2048" };
    let algorithm = if kind == "ec" { "EC" } else { "RSA" };
    openssl(dir, &["genpkey", "-algorithm", algorithm, "-pkeyopt", opt, "-out", file]);
}

/// A key (`ec` or `rsa`) and a certificate for `cn` signed by `ca` (`None`: self-signed),
/// with the extensions in `ext` (an openssl extfile's lines); `days` may be negative.
pub(crate) fn issue(
    dir: &Path,
    name: &str,
    cn: &str,
    kind: &str,
    ca: Option<&str>,
    ext: &str,
    days: i32,
) {
    let key = format!("{name}_key.pem");
    new_key(dir, kind, &key);
    let csr = format!("{name}.csr");
    openssl(dir, &["req", "-new", "-key", &key, "-subj", &format!("/CN={cn}"), "-out", &csr]);
    let extfile = format!("{name}.ext");
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let days = days.to_string();
    let cert = format!("{name}.pem");
    let mut args =
        vec!["x509", "-req", "-in", &csr, "-days", &days, "-extfile", &extfile, "-out", &cert];
    let (ca_cert, ca_key);
    match ca {
        Some(ca) => {
            ca_cert = format!("{ca}.pem");
            ca_key = format!("{ca}_key.pem");
            args.extend(["-CA", &ca_cert, "-CAkey", &ca_key, "-CAcreateserial"]);
        }
        None => args.extend(["-signkey", &key]),
    }
    openssl(dir, &args);
}

pub(crate) const CA_EXT: &str =
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
pub(crate) const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
pub(crate) const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";

/// The test PKI: a root (`ca.pem`), an intermediate, the server's certificate signed by
/// the intermediate with `chain.pem` = server + intermediate (in order) and its RSA key
/// (`server_key.pem`, PKCS#8); a client CA and a client it signed; a stranger (a client
/// certificate signed by nobody the server trusts).
pub(crate) struct Pki {
    pub(crate) dir: TempDir,
}

impl Pki {
    pub(crate) fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let d = &dir.0;
        issue(d, "ca", "Test Root", "ec", None, CA_EXT, 2);
        issue(d, "int", "Test Intermediate", "ec", Some("ca"), CA_EXT, 2);
        issue(d, "server", "localhost", "rsa", Some("int"), SERVER_EXT, 2);
        let chain = [
            std::fs::read(d.join("server.pem")).unwrap(),
            std::fs::read(d.join("int.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(d.join("chain.pem"), chain).unwrap();
        issue(d, "client_ca", "Test Client CA", "ec", None, CA_EXT, 2);
        issue(d, "client", "alice", "ec", Some("client_ca"), CLIENT_EXT, 2);
        issue(d, "stranger", "mallory", "ec", None, CLIENT_EXT, 2);
        Pki { dir }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path(name).to_str().unwrap().to_owned()
    }
}

/// Starts `program` on `wsgi_app:app` with TLS (`chain.pem`, `server_key.pem`) and
/// `extra` arguments; waits until it listens.
fn start_tls(
    program: &str,
    pki: &Pki,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Server, SocketAddr) {
    let (chain, key) = (pki.path("chain.pem"), pki.path("server_key.pem"));
    let mut args =
        vec!["wsgi_app:app", "-b", "127.0.0.1:0", "--certfile", &chain, "--keyfile", &key];
    args.extend(extra);
    let s = start_installed(program, &args, env);
    let addr = s.addr();
    (s, addr)
}

/// `openssl s_client` to `addr`, trusting the test CA, with `args` (`-quiet` or
/// `-brief`, a protocol, ciphers, a client certificate, a server name...), sending one
/// `GET /` with `Connection: close`: (stdout, stderr).
pub(crate) fn openssl_s_client(addr: SocketAddr, pki: &Pki, args: &[&str]) -> (String, String) {
    let connect = format!("127.0.0.1:{}", addr.port());
    let ca = pki.path("ca.pem");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile", &ca, "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A refused handshake may close the pipe before the request is written.
    let _ = stdin.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The request of a user's HTTPS client over a raw TLS session by `openssl s_client`,
/// with a client certificate or not; its output (the answer, or nothing).
pub(crate) fn s_client(addr: SocketAddr, pki: &Pki, client: Option<&str>) -> String {
    let mut args = vec!["-quiet"];
    let (cert, key);
    if let Some(c) = client {
        cert = pki.path(&format!("{c}.pem"));
        key = pki.path(&format!("{c}_key.pem"));
        args.extend(["-cert", &cert, "-key", &key]);
    }
    openssl_s_client(addr, pki, &args).0
}

pub(crate) fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "60"]).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

pub(crate) fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `tls_client.py` against a server: its JSON answer.
fn python_client(addr: SocketAddr, pki: &Pki, file: &Path) -> serde_json::Value {
    let out = Command::new(venv().join("bin/python"))
        .arg(apps().join("tls_client.py"))
        .args([&addr.port().to_string(), &pki.path("ca.pem"), file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    json_of(&text)
}

/// A file for `wsgi.file_wrapper`: 1 MiB and a bit, not a multiple of a record.
fn big_file(pki: &Pki) -> std::path::PathBuf {
    let path = pki.dir.path("big.bin");
    let data: Vec<u8> =
        (0..(1 << 20) + 777).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

fn serves_https(worker: &[&str], keep_alive: bool) {
    let pki = Pki::new("tls-serve");
    let file = big_file(&pki);
    let file_env = file.to_str().unwrap().to_owned();
    let (server, addr) =
        start_tls("ferrocorn", &pki, worker, &[("FERROCORN_TEST_FILE", &file_env)]);
    let got = python_client(addr, &pki, &file);
    let log = server.log();
    assert_eq!(got["alpn"], "http/1.1", "{got}");
    assert_eq!(got["keepalive"]["first"][0], 200, "{got}");
    assert_eq!(got["keepalive"]["first"][1], "Hello, World!", "{got}");
    assert_eq!(got["keepalive"]["second"][1], "Hello, World!", "{got}");
    assert_eq!(got["keepalive"]["same_connection"], keep_alive, "{got}");
    assert_eq!(got["close"][0], 200, "{got}");
    assert_eq!(got["close"][2], "close", "{got}");
    assert_eq!(got["post"], serde_json::json!([200, true, 307_200]), "{got}");
    assert_eq!(got["stream"][1], "chunked", "{got}");
    assert_eq!(got["stream"][2], "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", "{got}");
    assert_eq!(got["file"], serde_json::json!([200, true, (1 << 20) + 777]), "{got}\n{log}");
    assert_eq!(got["env"]["wsgi.url_scheme"], "https", "{got}");
    assert_eq!(got["requests"], serde_json::json!([200, "Hello, World!"]), "{got}");
    // curl, verifying the chain against the root alone; two URLs on one connection
    // (a second handshake in the sync worker, which closes after each answer).
    let url = format!("https://localhost:{}/", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let (ok, out) = curl(&["--cacert", &pki.path("ca.pem"), "--resolve", &resolve, &url, &url]);
    assert!(ok && out == "Hello, World!Hello, World!", "{out}");
    let (ok, out) = curl(&[
        "--cacert",
        &pki.path("ca.pem"),
        "--resolve",
        &resolve,
        "-d",
        "x=1",
        &format!("{url}echo"),
    ]);
    assert!(ok && out == "x=1", "{out}");
    assert!(!server.log().contains("Traceback"), "{}", server.log());
}

#[test]
fn sync_worker_serves_https() {
    serves_https(&["-k", "sync"], false);
}

#[test]
fn gthread_worker_serves_https() {
    serves_https(&["-k", "gthread", "--threads", "4"], true);
}

#[test]
fn the_environ_over_tls_is_gunicorns() {
    oracle_venv();
    let pki = Pki::new("tls-environ");
    let file = big_file(&pki);
    let env_of = |program: &str| {
        let (_s, addr) = start_tls(program, &pki, &["-k", "gthread"], &[]);
        python_client(addr, &pki, &file)["env"].clone()
    };
    let (ours, theirs) = (env_of("ferrocorn"), env_of("gunicorn"));
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&theirs));
    for k in ["wsgi.url_scheme", "SERVER_NAME", "SERVER_PROTOCOL", "REQUEST_METHOD"] {
        assert_eq!(ours[k], theirs[k], "{k}");
    }
    assert_eq!(ours["wsgi.url_scheme"], "https");
}

#[test]
fn keys_in_every_pem_form() {
    let pki = Pki::new("tls-keys");
    let d = &pki.dir.0;
    // PKCS#1 (RSA PRIVATE KEY), SEC1 (EC PRIVATE KEY), PKCS#8 (PRIVATE KEY), and the
    // key in the certificate file (no keyfile).
    openssl(d, &["rsa", "-in", "server_key.pem", "-traditional", "-out", "pkcs1.pem"]);
    issue(d, "ecserver", "localhost", "ec", Some("int"), SERVER_EXT, 2);
    openssl(d, &["ec", "-in", "ecserver_key.pem", "-out", "sec1.pem"]);
    let combined =
        [std::fs::read(d.join("chain.pem")).unwrap(), std::fs::read(d.join("pkcs1.pem")).unwrap()]
            .concat();
    std::fs::write(d.join("combined.pem"), combined).unwrap();
    assert!(
        std::fs::read_to_string(d.join("pkcs1.pem")).unwrap().contains("BEGIN RSA PRIVATE KEY")
    );
    assert!(std::fs::read_to_string(d.join("sec1.pem")).unwrap().contains("BEGIN EC PRIVATE KEY"));
    assert!(
        std::fs::read_to_string(d.join("server_key.pem")).unwrap().contains("BEGIN PRIVATE KEY")
    );
    let cases: [(&str, Option<&str>); 4] = [
        ("chain.pem", Some("pkcs1.pem")),
        ("chain.pem", Some("server_key.pem")),
        ("ecserver.pem", Some("sec1.pem")),
        ("combined.pem", None),
    ];
    for (cert, key) in cases {
        let cert = pki.path(cert);
        let mut args = vec!["wsgi_app:app", "-b", "127.0.0.1:0", "--certfile", &cert];
        let key = key.map(|k| pki.path(k));
        if let Some(k) = &key {
            args.extend(["--keyfile", k]);
        }
        let s = start_installed("ferrocorn", &args, &[]);
        let url = format!("https://localhost:{}/", s.addr().port());
        let resolve = format!("localhost:{}:127.0.0.1", s.addr().port());
        // The intermediate of chain.pem completes the path; ecserver.pem has none and
        // is verified with the intermediate as an extra CA.
        let ca =
            [std::fs::read(d.join("ca.pem")).unwrap(), std::fs::read(d.join("int.pem")).unwrap()]
                .concat();
        std::fs::write(d.join("cas.pem"), ca).unwrap();
        let (ok, out) = curl(&["--cacert", &pki.path("cas.pem"), "--resolve", &resolve, &url]);
        assert!(ok && out == "Hello, World!", "{cert} {key:?}: {out}\n{}", s.log());
    }
}

fn client_certs(worker: &[&str]) {
    let pki = Pki::new("tls-mtls");
    for reqs in ["1", "2"] {
        let mut extra = vec!["--ca-certs", "", "--cert-reqs", reqs];
        let ca = pki.path("client_ca.pem");
        extra[1] = &ca;
        extra.extend(worker);
        let (server, addr) = start_tls("ferrocorn", &pki, &extra, &[]);
        let served =
            |client: Option<&str>| s_client(addr, &pki, client).contains("HTTP/1.1 200 OK");
        assert!(served(Some("client")), "cert_reqs {reqs}, a good certificate: {}", server.log());
        assert!(!served(Some("stranger")), "cert_reqs {reqs}: a certificate nobody vouches for");
        assert_eq!(served(None), reqs == "1", "cert_reqs {reqs} without a certificate");
    }
}

#[test]
fn client_certificates_optional_and_required_sync() {
    client_certs(&["-k", "sync"]);
}

#[test]
fn client_certificates_optional_and_required_gthread() {
    client_certs(&["-k", "gthread", "--threads", "2"]);
}

/// Runs `program` to its end (at most `secs`): (exit code, output).
pub(crate) fn run_to_end(program: &str, args: &[&str], secs: u64) -> (Option<i32>, String) {
    let mut s = start_installed(program, args, &[]);
    let end = Instant::now() + Duration::from_secs(secs);
    while s.exited().is_none() {
        if Instant::now() > end {
            return (None, s.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (s.wait_exit(10).code(), s.log())
}

pub(crate) fn one_error_line(log: &str) -> String {
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "one Error: line: {log}");
    errors[0].to_owned()
}

#[test]
fn bad_certificate_and_key_files() {
    oracle_venv();
    let pki = Pki::new("tls-bad");
    let d = &pki.dir.0;
    let (chain, key) = (pki.path("chain.pem"), pki.path("server_key.pem"));
    let missing = pki.path("missing.pem");
    // Refused by both at start: a file that does not exist.
    for (flag, cert, key) in [
        ("certfile", missing.as_str(), key.as_str()),
        ("keyfile", chain.as_str(), missing.as_str()),
    ] {
        let args = ["wsgi_app:app", "-b", "127.0.0.1:0", "--certfile", cert, "--keyfile", key];
        let (code, log) = run_to_end("gunicorn", &args, 60);
        let words = format!("{flag} \"{missing}\" does not exist");
        assert!(code == Some(1) && log.contains(&words), "gunicorn: {code:?} {log}");
        let (code, log) = run_to_end("ferrocorn", &args, 60);
        assert_eq!(code, Some(1), "{log}");
        assert_eq!(one_error_line(&log), format!("Error: {words}"));
    }
    // A key that is not the certificate's: gunicorn starts and fails every handshake;
    // ferrocorn refuses to start.
    let other = pki.path("client_key.pem");
    let args = [
        "wsgi_app:app",
        "-b",
        "127.0.0.1:0",
        "--certfile",
        chain.as_str(),
        "--keyfile",
        other.as_str(),
    ];
    {
        let s = start_installed("gunicorn", &args, &[]);
        let url = format!("https://127.0.0.1:{}/", s.addr().port());
        let (ok, out) = curl(&["-k", &url]);
        assert!(!ok, "gunicorn served with a key that does not match: {out}");
    }
    let (code, log) = run_to_end("ferrocorn", &args, 60);
    let line = one_error_line(&log);
    assert!(code == Some(1) && line.contains(&other) && line.contains("does not match"), "{log}");
    // An encrypted key, an expired certificate, a file with no key, a file that is not a
    // certificate: ferrocorn names the file and the problem.
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "server_key.pem",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "encrypted.pem",
        ],
    );
    issue(d, "expired", "localhost", "ec", Some("int"), SERVER_EXT, -1);
    std::fs::write(d.join("junk.pem"), "not a certificate\n").unwrap();
    let cases = [
        ("encrypted.pem", "chain.pem", "encrypted", "encrypted.pem"),
        ("expired_key.pem", "expired.pem", "expired on", "expired.pem"),
        ("chain.pem", "chain.pem", "holds no private key", "chain.pem"),
        ("server_key.pem", "junk.pem", "holds no certificate", "junk.pem"),
    ];
    for (key, cert, words, named) in cases {
        let (key, cert) = (pki.path(key), pki.path(cert));
        let args = ["wsgi_app:app", "-b", "127.0.0.1:0", "--certfile", &cert, "--keyfile", &key];
        let (code, log) = run_to_end("ferrocorn", &args, 60);
        let line = one_error_line(&log);
        assert!(
            code == Some(1) && line.contains(words) && line.contains(&pki.path(named)),
            "{words}: {code:?} {log}"
        );
    }
}

/// Opens a TCP connection that starts a TLS handshake and stalls: a ClientHello's
/// record header and the first bytes of it, nothing more.
pub(crate) fn stalled_handshake(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03]).unwrap();
    s
}

/// Whether the server closed `s` (read gives EOF or a reset), waiting at most `secs`.
pub(crate) fn closed_by_server(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs).max(Duration::from_millis(10)))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_stalled_handshake_does_not_hold_the_gthread_worker() {
    let pki = Pki::new("tls-stall-gthread");
    let (server, addr) =
        start_tls("ferrocorn", &pki, &["-k", "gthread", "--threads", "1", "--timeout", "20"], &[]);
    let mut stalled = stalled_handshake(addr);
    let _silent = TcpStream::connect(addr).unwrap();
    let url = format!("https://localhost:{}/", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    // Served while both wait: the one serving thread is not in their handshakes (had
    // it been, these would wait for the stalled one's deadline, 20 s, and find it
    // closed afterwards).
    for _ in 0..3 {
        let (ok, out) = curl(&["--cacert", &pki.path("ca.pem"), "--resolve", &resolve, &url]);
        assert!(ok && out == "Hello, World!", "{out}\n{}", server.log());
    }
    let mut probe = stalled.try_clone().unwrap();
    assert!(!closed_by_server(&mut probe, 0), "closed before the others were served");
    // The stalled handshake is closed at its deadline (`timeout` after the accept).
    assert!(closed_by_server(&mut stalled, 60), "the stalled handshake was never closed");
    assert!(!server.log().contains("WORKER TIMEOUT"), "{}", server.log());
}

#[test]
fn a_stalled_handshake_ends_at_the_sync_workers_deadline() {
    let pki = Pki::new("tls-stall-sync");
    let (server, addr) = start_tls("ferrocorn", &pki, &["-k", "sync", "--timeout", "3"], &[]);
    let mut stalled = stalled_handshake(addr);
    let url = format!("https://localhost:{}/", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    // One sync worker serves one connection at a time: the next client is served once
    // the stalled handshake's deadline closed it, and the worker was not timed out.
    let (ok, out) = curl(&["--cacert", &pki.path("ca.pem"), "--resolve", &resolve, &url]);
    assert!(ok && out == "Hello, World!", "{out}\n{}", server.log());
    assert!(closed_by_server(&mut stalled, 60), "the stalled handshake was never closed");
    let log = server.log();
    assert!(!log.contains("WORKER TIMEOUT") && server.booted().len() == 1, "{log}");
}

/// The subject of the certificate the server at `addr` presents (`openssl s_client`).
pub(crate) fn served_subject(addr: SocketAddr) -> String {
    let connect = format!("127.0.0.1:{}", addr.port());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {connect} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn hup_loads_new_certificates_and_keeps_serving_through_a_broken_one() {
    let pki = Pki::new("tls-hup");
    let d = &pki.dir.0;
    issue(d, "renewed", "renewed.localhost", "ec", Some("int"), SERVER_EXT, 2);
    let conf = pki.dir.path("tls.conf.py");
    let config = |cert: &str, key: &str| {
        format!("certfile = {:?}\nkeyfile = {:?}\nworkers = 2\n", pki.path(cert), pki.path(key))
    };
    std::fs::write(&conf, config("chain.pem", "server_key.pem")).unwrap();
    let s = start_installed(
        "ferrocorn",
        &["wsgi_app:app", "-b", "127.0.0.1:0", "-c", conf.to_str().unwrap()],
        &[],
    );
    let addr = s.addr();
    s.wait_booted(2);
    assert!(served_subject(addr).contains("CN = localhost"), "{}", served_subject(addr));
    // A key that does not match: the reload fails once, the old workers keep serving.
    std::fs::write(&conf, config("renewed.pem", "server_key.pem")).unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let log = s.wait_log(30, "the failed reload", |l| l.contains("Reload failed"));
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("Reload failed")).collect();
    assert!(failed.len() == 1 && failed[0].contains("does not match"), "{log}");
    assert!(served_subject(addr).contains("CN = localhost"), "{log}");
    // The renewed pair: new workers present the new certificate.
    std::fs::write(&conf, config("renewed.pem", "renewed_key.pem")).unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    support::wait_until(30, "the renewed certificate", || {
        served_subject(addr).contains("CN = renewed.localhost")
    });
    assert_eq!(s.log().matches("Reload failed").count(), 1, "{}", s.log());
}

#[test]
fn cipher_strings_select_what_openssl_selects() {
    let ours: Vec<&str> = ferrocorn::tls::tls12_ciphers("ALL");
    let specs = [
        "ECDHE+AESGCM",
        "HIGH:!aNULL:!MD5",
        "DEFAULT",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305",
        "aRSA",
        "ECDSA+AES256",
        "EECDH+AESGCM:EDH+AESGCM",
        "HIGH:!AES128",
        "ALL:-AES128:+CHACHA20",
        "AES128:CHACHA20:AES256",
        "CHACHA20:@STRENGTH",
        "!ECDSA:ALL",
        "ECDHE+CHACHA20,ECDHE+AES128 AES256",
        "@SECLEVEL=2:ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM",
        "RSA",
        "DHE-RSA-AES256-GCM-SHA384:AES256-SHA",
        "SHA256",
        "NOSUCHWORD:CHACHA20",
    ];
    for spec in specs {
        let out =
            Command::new("openssl").args(["ciphers", "-tls1_2", "-s", spec]).output().unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        let theirs: Vec<&str> = listed.trim().split(':').filter(|n| ours.contains(n)).collect();
        assert_eq!(ferrocorn::tls::tls12_ciphers(spec), theirs, "{spec}");
    }
}

#[test]
fn a_cipher_string_that_selects_nothing_ferrocorn_has_is_refused() {
    let pki = Pki::new("tls-ciphers");
    let (chain, key) = (pki.path("chain.pem"), pki.path("server_key.pem"));
    let args = ["wsgi_app:app", "-b", "127.0.0.1:0", "--certfile", &chain, "--keyfile", &key];
    let mut args = args.to_vec();
    args.extend(["--ciphers", "DHE-RSA-AES256-GCM-SHA384:AES256-SHA"]);
    let (code, log) = run_to_end("ferrocorn", &args, 60);
    let line = one_error_line(&log);
    assert!(
        code == Some(1) && line.contains("ciphers") && line.contains("selects no TLS 1.2"),
        "{log}"
    );
}

/// `tls_proxy_client.py` against a server.
fn proxy_client(addr: SocketAddr, pki: &Pki) -> std::process::Output {
    Command::new(venv().join("bin/python"))
        .arg(apps().join("tls_proxy_client.py"))
        .args([&addr.port().to_string(), &pki.path("ca.pem")])
        .output()
        .unwrap()
}

#[test]
fn a_proxy_header_before_the_handshake() {
    oracle_venv();
    let pki = Pki::new("tls-proxy");
    // gunicorn 27 reads the header inside TLS: haproxy's send-proxy fails its handshakes.
    {
        let (_s, addr) = start_tls("gunicorn", &pki, &["--proxy-protocol", "auto"], &[]);
        let out = proxy_client(addr, &pki);
        assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    for worker in ["sync", "gthread"] {
        let (s, addr) =
            start_tls("ferrocorn", &pki, &["-k", worker, "--proxy-protocol", "auto"], &[]);
        let out = proxy_client(addr, &pki);
        let text = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{worker}: {text}{stderr}\n{}", s.log());
        assert_eq!(
            json_of(&text),
            serde_json::json!([
                ["203.0.113.9", "5555", "https"],
                ["198.51.100.7", "6666", "https"]
            ]),
            "{worker}"
        );
    }
}
