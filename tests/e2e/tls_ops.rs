//! TLS in operation, through the installed command and beside gunicorn 27 where it has an
//! answer: the verified client certificate in the environ (against `openssl x509
//! -nameopt RFC2253`), what the error log says of failed handshakes, the protocol
//! versions `openssl s_client` can ask for, a client that ends without `close_notify` in
//! the middle of a body, haproxy's `send-proxy-v2` in front of the TLS listener, a flood
//! of half-open handshakes, and certificates rotated by HUP under load. The certificates
//! come from the helpers of [`crate::tls`].

use crate::support;
use crate::tls::{
    CLIENT_EXT, Pki, SERVER_EXT, closed_by_server, curl, issue, json_of, new_key, openssl,
    openssl_s_client, served_subject, stalled_handshake,
};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use support::{Server, apps, oracle_venv, start_installed, venv};

/// Starts `program` on `tls_ops_app:app` with TLS (`chain.pem`, `server_key.pem`) and
/// `extra` arguments; waits until it listens.
fn start(program: &str, pki: &Pki, extra: &[&str]) -> (Server, SocketAddr) {
    let (chain, key) = (pki.path("chain.pem"), pki.path("server_key.pem"));
    let mut args =
        vec!["tls_ops_app:app", "-b", "127.0.0.1:0", "--certfile", &chain, "--keyfile", &key];
    args.extend(extra);
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    (s, addr)
}

/// curl's arguments for `path` on `localhost` at `addr`, verified against the test root.
fn https(pki: &Pki, addr: SocketAddr, path: &str) -> Vec<String> {
    vec![
        "--cacert".into(),
        pki.path("ca.pem"),
        "--resolve".into(),
        format!("localhost:{}:127.0.0.1", addr.port()),
        format!("https://localhost:{}{path}", addr.port()),
    ]
}

fn curl_json(args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = curl(&args);
    assert!(ok, "curl {args:?}: {out}");
    json_of(&out)
}

// ---------------------------------------------------------------------------------------
// The client certificate in the environ
// ---------------------------------------------------------------------------------------

/// A subject with several RDNs, a multi-valued one, UTF-8, and each character RFC 2253
/// escapes (`,+"\<>;`, a leading `#`, a trailing space).
const ODD_SUBJECT: &str = r#"/C=DE/ST=Baden-Württemberg/O=Acme\, Inc.+OU=R\+D/CN=alice "a" <x>;y\\z/OU=#hash /emailAddress=alice@example.com/UID=a1/DC=example"#;

/// `odd.pem` (and `odd_key.pem`): a client certificate for [`ODD_SUBJECT`] signed by the
/// client CA.
fn odd_client(pki: &Pki) {
    let d = &pki.dir.0;
    new_key(d, "ec", "odd_key.pem");
    openssl(
        d,
        &["req", "-new", "-utf8", "-key", "odd_key.pem", "-subj", ODD_SUBJECT, "-out", "odd.csr"],
    );
    std::fs::write(d.join("odd.ext"), CLIENT_EXT).unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "odd.csr",
            "-days",
            "2",
            "-extfile",
            "odd.ext",
            "-CA",
            "client_ca.pem",
            "-CAkey",
            "client_ca_key.pem",
            "-CAcreateserial",
            "-out",
            "odd.pem",
        ],
    );
}

/// What `openssl x509 -noout -<what> -nameopt RFC2253` says of `cert`, without its
/// `what=` prefix.
fn x509_field(pki: &Pki, cert: &str, what: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "x509",
            "-in",
            &pki.path(cert),
            "-noout",
            &format!("-{what}"),
            "-nameopt",
            "RFC2253",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim_end().strip_prefix(&format!("{what}=")).unwrap_or_else(|| panic!("{text}")).to_owned()
}

/// The environ's `SSL_*` names, sorted.
fn ssl_keys(env: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> =
        env.as_object().unwrap().keys().filter(|k| k.starts_with("SSL_")).cloned().collect();
    k.sort();
    k
}

fn client_cert_in_environ(worker: &[&str]) {
    let pki = Pki::new("tlsops-env");
    odd_client(&pki);
    let ca = pki.path("client_ca.pem");
    let mut extra = vec!["--ca-certs", &ca, "--cert-reqs", "1"];
    extra.extend(worker);
    let (s, addr) = start("ferrocorn", &pki, &extra);
    let mut args = https(&pki, addr, "/env");
    args.extend(["--cert".into(), pki.path("odd.pem"), "--key".into(), pki.path("odd_key.pem")]);
    let env = curl_json(&args);
    let subject = x509_field(&pki, "odd.pem", "subject");
    // The oracle escaped what it had to: the test covers every rule.
    for escaped in [r"\,", r"\+", r#"\""#, r"\<", r"\>", r"\;", r"\\", r"\#", r"\ ", r"\C3\BC"] {
        assert!(subject.contains(escaped), "{escaped} in {subject}");
    }
    assert!(subject.contains("+OU=") && subject.starts_with("DC=example,UID=a1,"), "{subject}");
    assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS", "{env}\n{}", s.log());
    assert_eq!(env["SSL_CLIENT_S_DN"], subject.as_str());
    assert_eq!(env["SSL_CLIENT_I_DN"], x509_field(&pki, "odd.pem", "issuer").as_str());
    assert_eq!(env["SSL_CLIENT_M_SERIAL"], x509_field(&pki, "odd.pem", "serial").as_str());
    let pem = std::fs::read_to_string(pki.path("odd.pem")).unwrap();
    assert_eq!(env["SSL_CLIENT_CERT"], pem.as_str());
    assert_eq!(
        ssl_keys(&env),
        [
            "SSL_CLIENT_CERT",
            "SSL_CLIENT_I_DN",
            "SSL_CLIENT_M_SERIAL",
            "SSL_CLIENT_S_DN",
            "SSL_CLIENT_VERIFY"
        ]
    );
    // The plain client certificate of the PKI: its own subject, not the last one's.
    let mut args = https(&pki, addr, "/env");
    args.extend([
        "--cert".into(),
        pki.path("client.pem"),
        "--key".into(),
        pki.path("client_key.pem"),
    ]);
    let env = curl_json(&args);
    assert_eq!(env["SSL_CLIENT_S_DN"], "CN=alice");
    assert_eq!(env["SSL_CLIENT_I_DN"], "CN=Test Client CA");
    // No certificate (cert_reqs 1 allows that): only the verification's outcome.
    let env = curl_json(&https(&pki, addr, "/env"));
    assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
    assert_eq!(ssl_keys(&env), ["SSL_CLIENT_VERIFY"]);
    drop(s);
    // cert_reqs 0: no certificate is asked for, and the environ has no SSL_ variable.
    let (_s, addr) = start("ferrocorn", &pki, worker);
    let env = curl_json(&https(&pki, addr, "/env"));
    assert!(ssl_keys(&env).is_empty(), "{env}");
}

#[test]
fn the_client_certificate_reaches_the_environ_sync() {
    client_cert_in_environ(&["-k", "sync"]);
}

#[test]
fn the_client_certificate_reaches_the_environ_gthread() {
    client_cert_in_environ(&["-k", "gthread", "--threads", "2"]);
}

// ---------------------------------------------------------------------------------------
// Failed handshakes in the error log
// ---------------------------------------------------------------------------------------

/// Sends `bytes` on a plain TCP connection and reads until the server closes it.
fn plain(addr: SocketAddr, bytes: &[u8], read: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    if read {
        s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        let _ = s.read_to_end(&mut out);
    }
    out
}

/// `openssl s_client -brief` with `args`, sending a request: (stdout, stderr).
fn s_client(addr: SocketAddr, pki: &Pki, args: &[&str]) -> (String, String) {
    let args: Vec<&str> = ["-brief"].iter().chain(args).copied().collect();
    openssl_s_client(addr, pki, &args)
}

/// The lines of `log` that carry `level` and `words`.
fn lines_with(log: &str, level: &str, words: &str) -> usize {
    log.lines().filter(|l| l.contains(&format!("[{level}]")) && l.contains(words)).count()
}

/// Plain HTTP to the TLS port, a client certificate nobody vouches for, and a handshake
/// the client abandons, against `program` with `worker`: (what the plain HTTP client
/// read, the error log).
fn failed_handshakes(program: &str, worker: &str, pki: &Pki) -> (Vec<u8>, String) {
    let ca = pki.path("client_ca.pem");
    let extra = ["-k", worker, "--ca-certs", &ca, "--cert-reqs", "1", "--log-level", "debug"];
    let (s, addr) = start(program, pki, &extra);
    let answer = plain(addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", true);
    s.wait_log(60, "the plain HTTP request's line", |l| {
        lines_with(l, "WARNING", "Invalid request") == 1
    });
    let (out, _) = s_client(
        addr,
        pki,
        &["-cert", &pki.path("stranger.pem"), "-key", &pki.path("stranger_key.pem")],
    );
    assert!(!out.contains("200 OK"), "{program} {worker} served a stranger");
    s.wait_log(60, "the stranger's line", |l| lines_with(l, "WARNING", "Invalid request") == 2);
    // Part of a ClientHello, then the end.
    plain(addr, &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03], false);
    s.wait_log(60, "the abandoned handshake's line", |l| {
        l.contains("ssl connection closed") || l.contains("Closing connection.")
    });
    if worker == "gthread" {
        // A record that does not decrypt where a kept-alive connection's next request
        // would be.
        let out = Command::new(venv().join("bin/python"))
            .arg(apps().join("tls_ops_client.py"))
            .args(["garbage", &addr.port().to_string()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200", "{out:?}");
        s.wait_log(60, "the bad record's line", |l| {
            lines_with(l, "WARNING", "Invalid request") == 3
        });
    }
    (answer, s.log())
}

fn handshake_failures_logged_as_gunicorn_logs_them(worker: &str) {
    oracle_venv();
    let pki = Pki::new("tlsops-fail");
    let (theirs_answer, theirs) = failed_handshakes("gunicorn", worker, &pki);
    let (ours_answer, ours) = failed_handshakes("ferrocorn", worker, &pki);
    // gthread: also a bad record between two requests of a kept-alive connection.
    let n = if worker == "gthread" { 3 } else { 2 };
    for (who, log) in [("gunicorn", &theirs), ("ferrocorn", &ours)] {
        assert_eq!(lines_with(log, "DEBUG", "Error processing SSL request."), n, "{who}: {log}");
        assert_eq!(
            lines_with(log, "WARNING", "Invalid request from ip=127.0.0.1: "),
            n,
            "{who}: {log}"
        );
        assert_eq!(lines_with(log, "ERROR", ""), 0, "{who}: {log}");
        assert!(!log.contains("Traceback"), "{who}: {log}");
    }
    // gunicorn's words are OpenSSL's, ours rustls': each names the problem.
    assert_eq!(lines_with(&theirs, "WARNING", "HTTP_REQUEST"), 1, "{theirs}");
    assert_eq!(lines_with(&ours, "WARNING", "plain HTTP sent to the HTTPS port"), 1, "{ours}");
    assert_eq!(lines_with(&theirs, "WARNING", "CERTIFICATE_VERIFY_FAILED"), 1, "{theirs}");
    assert_eq!(lines_with(&ours, "WARNING", "invalid peer certificate"), 1, "{ours}");
    if worker == "gthread" {
        assert_eq!(lines_with(&theirs, "WARNING", "BAD_RECORD_MAC"), 1, "{theirs}");
        assert_eq!(lines_with(&ours, "WARNING", "TLS error: cannot decrypt"), 1, "{ours}");
    }
    // The abandoned handshake: a debug line (gunicorn's sync worker says `Closing
    // connection.`, its gthread worker and ferrocorn `ssl connection closed`).
    assert_eq!(lines_with(&ours, "DEBUG", "ssl connection closed"), 1, "{ours}");
    // gunicorn tries to write a plaintext 403 into the TLS socket and fails, so the
    // client reads nothing; ferrocorn sends the TLS alert rustls chose (a record header
    // of type 21, an alert), and no HTTP.
    assert!(theirs_answer.is_empty(), "{theirs_answer:?}");
    assert_eq!(lines_with(&theirs, "DEBUG", "Failed to send error message."), n, "{theirs}");
    assert_eq!(ours_answer.first(), Some(&0x15), "{ours_answer:?}");
    assert!(!String::from_utf8_lossy(&ours_answer).contains("HTTP/"));
}

#[test]
fn failed_handshakes_are_logged_as_gunicorn_logs_them_sync() {
    handshake_failures_logged_as_gunicorn_logs_them("sync");
}

#[test]
fn failed_handshakes_are_logged_as_gunicorn_logs_them_gthread() {
    handshake_failures_logged_as_gunicorn_logs_them("gthread");
}

// ---------------------------------------------------------------------------------------
// Protocol versions
// ---------------------------------------------------------------------------------------

const VERSIONS: [&str; 4] = ["tls1", "tls1_1", "tls1_2", "tls1_3"];

/// For each of [`VERSIONS`] that `s_client` offered alone: `Some(served)`, or `None` when
/// the local openssl could not even offer it (no alert from the server came back).
fn versions(program: &str, worker: &str, pki: &Pki) -> Vec<Option<bool>> {
    let (_s, addr) = start(program, pki, &["-k", worker]);
    VERSIONS
        .iter()
        .map(|v| {
            // SECLEVEL 0 lets OpenSSL 3 offer TLS 1.0 and 1.1 at all.
            let (out, err) =
                s_client(addr, pki, &[&format!("-{v}"), "-cipher", "DEFAULT:@SECLEVEL=0"]);
            if out.contains("HTTP/1.1 200 OK") {
                let want = match *v {
                    "tls1_3" => "TLSv1.3",
                    _ => "TLSv1.2",
                };
                assert!(err.contains(&format!("Protocol version: {want}")), "{program} {v}: {err}");
                Some(true)
            } else if err.contains("alert") {
                Some(false)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn protocol_versions_as_gunicorn_accepts_them() {
    oracle_venv();
    let pki = Pki::new("tlsops-versions");
    let theirs = versions("gunicorn", "sync", &pki);
    // TLS 1.2 and 1.3 only; where the local openssl can offer 1.0 and 1.1, gunicorn's
    // refusal is the oracle.
    assert_eq!(theirs[2..], [Some(true), Some(true)], "{theirs:?}");
    for worker in ["sync", "gthread"] {
        let ours = versions("ferrocorn", worker, &pki);
        assert_eq!(ours[2..], [Some(true), Some(true)], "{worker}: {ours:?}");
        for (i, v) in VERSIONS[..2].iter().enumerate() {
            assert_ne!(ours[i], Some(true), "{worker} accepted {v}");
            if theirs[i].is_some() {
                assert_eq!(ours[i], theirs[i], "{worker} {v}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ragged EOF
// ---------------------------------------------------------------------------------------

/// What the application's `wsgi.input.read()` saw when the client ended the TCP
/// connection without `close_notify` 70000 bytes into a 100000-byte body.
fn ragged(program: &str, worker: &str, suppress: bool, pki: &Pki) -> serde_json::Value {
    let conf = pki.dir.path(&format!("ragged_{suppress}.conf.py"));
    let py = if suppress { "True" } else { "False" };
    std::fs::write(&conf, format!("suppress_ragged_eofs = {py}\n")).unwrap();
    let out_file = pki.dir.path(&format!("ragged_{program}_{worker}_{suppress}.json"));
    let (s, addr) = start(program, pki, &["-k", worker, "-c", conf.to_str().unwrap()]);
    let out = Command::new(venv().join("bin/python"))
        .arg(apps().join("tls_ops_client.py"))
        .args(["ragged", &addr.port().to_string(), out_file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}\n{}", String::from_utf8_lossy(&out.stderr), s.log());
    json_of(&text)
}

#[test]
fn a_ragged_eof_in_a_body_as_gunicorn_reports_it() {
    oracle_venv();
    let pki = Pki::new("tlsops-ragged");
    for worker in ["sync", "gthread"] {
        // suppress_ragged_eofs = False: the read fails, in both, naming the EOF.
        for program in ["gunicorn", "ferrocorn"] {
            let got = ragged(program, worker, false, &pki);
            let err = got["err"].as_str().unwrap_or_else(|| panic!("{program} {worker}: {got}"));
            assert!(
                err.contains("EOF occurred in violation of protocol"),
                "{program} {worker}: {got}"
            );
        }
        // True (the default): the end of the stream, as on a plain connection. gunicorn
        // hands over the 70000 bytes as the whole body; ferrocorn says the body ended
        // early, as it does without TLS (docs/compat.md).
        let theirs = ragged("gunicorn", worker, true, &pki);
        assert_eq!(theirs, serde_json::json!({"ok": 70000}), "{worker}");
        let ours = ragged("ferrocorn", worker, true, &pki);
        let err = ours["err"].as_str().unwrap_or_else(|| panic!("{worker}: {ours}"));
        assert!(err.contains("No more data") && !err.contains("violation"), "{worker}: {ours}");
    }
}

// ---------------------------------------------------------------------------------------
// haproxy send-proxy-v2
// ---------------------------------------------------------------------------------------

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// haproxy (Debian's, installed by scripts/setup-peers.sh) with its config in a
/// temporary directory; ended by its PID on drop.
struct Haproxy {
    child: Child,
}

impl Haproxy {
    fn start(dir: &support::TempDir, config: &str, ports: &[u16]) -> Haproxy {
        let path = dir.path("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("/usr/sbin/haproxy")
            .args(["-db", "-f", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (scripts/setup-peers.sh installs it)");
        for &port in ports {
            support::wait_until(30, "haproxy listening", || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
        Haproxy { child }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl from 127.0.0.2 with `args`: the JSON environ and curl's local port.
fn curl_from_127_0_0_2(args: &[String]) -> (serde_json::Value, String) {
    let mut all: Vec<&str> = vec!["--interface", "127.0.0.2", "-w", "\n%{local_port}"];
    all.extend(args.iter().map(String::as_str));
    let (ok, out) = curl(&all);
    assert!(ok, "{out}");
    let (body, port) = out.trim_end().rsplit_once('\n').unwrap();
    (json_of(body), port.to_owned())
}

fn haproxy_send_proxy_v2(worker: &str) {
    let pki = Pki::new("tlsops-haproxy");
    let (s, addr) = start("ferrocorn", &pki, &["-k", worker, "--proxy-protocol", "v2"]);
    let (passthrough, terminating) = (free_port(), free_port());
    let backend = addr.port();
    let config = format!(
        "global\n  maxconn 64\n\
         defaults\n  mode tcp\n  timeout connect 10s\n  timeout client 60s\n  timeout server 60s\n\
         listen passthrough\n  bind 127.0.0.1:{passthrough}\n  server s1 127.0.0.1:{backend} send-proxy-v2\n\
         listen terminating\n  bind 127.0.0.1:{terminating}\n  server s1 127.0.0.1:{backend} send-proxy-v2 ssl verify none\n"
    );
    let _haproxy = Haproxy::start(&pki.dir, &config, &[passthrough, terminating]);
    // TLS end to end, haproxy in TCP mode: the header, then the client's handshake.
    let through = SocketAddr::from(([127, 0, 0, 1], passthrough));
    let (env, port) = curl_from_127_0_0_2(&https(&pki, through, "/env"));
    let checks = |env: &serde_json::Value, port: &str, front: u16| {
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.2", "{worker}: {env}\n{}", s.log());
        assert_eq!(env["REMOTE_PORT"], port, "{worker}: {env}");
        assert_eq!(env["PROXY_PROTOCOL"], "TCP4", "{worker}: {env}");
        assert_eq!(env["PROXY_ADDR"], "127.0.0.1", "{worker}: {env}");
        assert_eq!(env["PROXY_PORT"], front.to_string(), "{worker}: {env}");
        assert_eq!(env["wsgi.url_scheme"], "https", "{worker}: {env}");
    };
    checks(&env, &port, passthrough);
    // haproxy as the TLS client (`ssl verify none`), the client speaking plain HTTP to it.
    let url = vec![format!("http://127.0.0.1:{terminating}/env")];
    let (env, port) = curl_from_127_0_0_2(&url);
    checks(&env, &port, terminating);
    assert!(!s.log().contains("Invalid request"), "{}", s.log());
}

#[test]
fn haproxy_send_proxy_v2_in_front_of_tls_sync() {
    haproxy_send_proxy_v2("sync");
}

#[test]
fn haproxy_send_proxy_v2_in_front_of_tls_gthread() {
    haproxy_send_proxy_v2("gthread");
}

// ---------------------------------------------------------------------------------------
// A flood of half-open handshakes
// ---------------------------------------------------------------------------------------

/// `n` connections held open: half send part of a ClientHello, half nothing.
fn flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(
            |i| {
                if i % 2 == 0 { stalled_handshake(addr) } else { TcpStream::connect(addr).unwrap() }
            },
        )
        .collect()
}

/// `while_held`: the normal clients are served while every connection of the flood is
/// still open (not after their deadlines).
fn served_through_a_flood(worker: &[&str], n: usize, while_held: bool) {
    let pki = Pki::new("tlsops-flood");
    let (s, addr) = start("ferrocorn", &pki, worker);
    let mut held = flood(addr, n);
    // Normal clients are served while the flood is held open.
    for _ in 0..3 {
        let (ok, out) =
            curl(&https(&pki, addr, "/").iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok && out == "Hello, World!", "{out}\n{}", s.log());
    }
    if while_held {
        for (i, c) in held.iter().enumerate() {
            let mut probe = c.try_clone().unwrap();
            assert!(
                !closed_by_server(&mut probe, 0),
                "connection {i} closed before the clients were served"
            );
        }
    }
    // Every connection of the flood is closed by its deadline.
    for (i, c) in held.iter_mut().enumerate() {
        assert!(closed_by_server(c, 120), "connection {i} of the flood was never closed");
    }
    let log = s.log();
    assert!(!log.contains("WORKER TIMEOUT") && !log.contains("Traceback"), "{log}");
}

#[test]
fn a_flood_of_half_open_handshakes_gthread() {
    // 200 at once: they wait in the poller, none holds one of the 2 threads, and the
    // clients are served long before the flood's deadline (20 s after the accept).
    served_through_a_flood(&["-k", "gthread", "--threads", "2", "--timeout", "20"], 200, true);
}

#[test]
fn a_flood_of_half_open_handshakes_sync() {
    // A sync worker is held by a handshake until the client's deadline (`timeout`), as
    // gunicorn's is: a flood delays the clients queued behind it, bounded by the deadlines.
    served_through_a_flood(&["-k", "sync", "--workers", "2", "--timeout", "1"], 16, false);
}

// ---------------------------------------------------------------------------------------
// Certificate rotation on HUP under load
// ---------------------------------------------------------------------------------------

/// What the load client's progress file says: answers so far, server subjects seen.
fn progress(path: &std::path::Path) -> (u64, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(path) else { return (0, Vec::new()) };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let subjects = v["subjects"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    (v["ok"].as_u64().unwrap_or(0), subjects)
}

fn rotation_under_load(worker: &[&str]) {
    let pki = Pki::new("tlsops-hup");
    let d = &pki.dir.0;
    issue(d, "renewed", "localhost", "ec", Some("int"), SERVER_EXT, 2);
    // The renewed certificate is told apart by its organisation.
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "renewed_key.pem",
            "-subj",
            "/O=Renewed/CN=localhost",
            "-out",
            "renewed.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "renewed.csr",
            "-days",
            "2",
            "-extfile",
            "renewed.ext",
            "-CA",
            "int.pem",
            "-CAkey",
            "int_key.pem",
            "-CAcreateserial",
            "-out",
            "renewed_leaf.pem",
        ],
    );
    let renewed = [
        std::fs::read(d.join("renewed_leaf.pem")).unwrap(),
        std::fs::read(d.join("int.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(d.join("renewed_chain.pem"), renewed).unwrap();
    let conf = pki.dir.path("tls.conf.py");
    let config = |cert: &str, key: &str| {
        format!("certfile = {:?}\nkeyfile = {:?}\nworkers = 2\n", pki.path(cert), pki.path(key))
    };
    std::fs::write(&conf, config("chain.pem", "server_key.pem")).unwrap();
    let mut args = vec!["tls_ops_app:app", "-b", "127.0.0.1:0", "-c", conf.to_str().unwrap()];
    args.extend(worker);
    let s = start_installed("ferrocorn", &args, &[]);
    let addr = s.addr();
    s.wait_booted(2);
    let (stop, prog) = (pki.dir.path("stop"), pki.dir.path("progress.json"));
    let load = Command::new(venv().join("bin/python"))
        .arg(apps().join("tls_ops_client.py"))
        .args(["load", &addr.port().to_string(), &pki.path("ca.pem")])
        .args([stop.to_str().unwrap(), prog.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut load = Ended(Some(load));
    support::wait_until(60, "answers before the HUP", || progress(&prog).0 >= 200);
    std::fs::write(&conf, config("renewed_chain.pem", "renewed_key.pem")).unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    // The load's new connections meet the renewed certificate, and so does s_client.
    let renewed = "organizationName=Renewed,commonName=localhost";
    support::wait_until(60, "the renewed certificate in the load", || {
        progress(&prog).1.iter().any(|s| s == renewed)
    });
    // Old workers may accept until they are stopped; then only the renewed one is served.
    support::wait_until(60, "the renewed certificate only", || {
        (0..3).all(|_| served_subject(addr).contains("O = Renewed"))
    });
    let after = progress(&prog).0;
    support::wait_until(60, "answers after the HUP", || progress(&prog).0 >= after + 200);
    std::fs::write(&stop, "").unwrap();
    let out = load.0.take().unwrap().wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let got = json_of(&text);
    assert_eq!(got["failures"], serde_json::json!([]), "{got}\n{}", s.log());
    assert!(got["ok"].as_u64().unwrap() >= after + 200, "{got}");
    assert_eq!(got["subjects"], serde_json::json!(["commonName=localhost", renewed]), "{got}");
    assert!(!s.log().contains("Reload failed"), "{}", s.log());
}

/// A child process ended (killed, by its PID) when the test fails before it does.
struct Ended(Option<Child>);

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn certificates_rotated_by_hup_under_load_gthread() {
    rotation_under_load(&["-k", "gthread", "--threads", "4"]);
}

#[test]
fn certificates_rotated_by_hup_under_load_sync() {
    rotation_under_load(&["-k", "sync"]);
}
