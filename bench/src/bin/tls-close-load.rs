//! The client of the `tls-handshake` scenarios of bench/compare.py: a full TLS handshake
//! per request.
//!
//! `tls-close-load HOST:PORT PATH CONNECTIONS SECONDS`: CONNECTIONS threads, each a loop of
//! connect, TLS handshake, one `GET PATH` with `Connection: close`, read to the end, close,
//! until SECONDS have passed. rustls' client session cache is off (no resumption, no
//! tickets), so every connection costs the server a full handshake: wrk (OpenSSL) resumes
//! the last session of each connection slot, and OpenSSL 3.0's client spends about 3 ms of
//! CPU on a handshake, which made wrk the bottleneck on this 2-core machine. The server's
//! certificate is not checked against a CA (as wrk does not check it), but the handshake's
//! signature is verified, as any client verifies it.
//!
//! Prints one line: `requests N errors N seconds S p50_ms X p99_ms Y` (latency from connect
//! to the end of the response).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// Accepts any certificate, verifies the handshake signatures made with its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One connection, one request: whether the answer was a complete 200.
fn one(
    config: &Arc<ClientConfig>,
    addr: &str,
    host: &ServerName<'static>,
    request: &[u8],
) -> io::Result<bool> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = ClientConnection::new(Arc::clone(config), host.clone()).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    tls.write_all(request)?;
    let mut answer = Vec::with_capacity(512);
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // A close without close_notify after the whole response is the end too.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok(complete_200(&answer))
}

/// A 200 response whose body is as long as its Content-Length says.
fn complete_200(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return false;
    }
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    length.is_none_or(|n| answer.len() - end - 4 == n)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, connections, seconds] = args.as_slice() else {
        eprintln!("usage: tls-close-load HOST:PORT PATH CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("CONNECTIONS: a number");
    let seconds: f64 = seconds.parse().expect("SECONDS: a number");
    let host_part = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).to_string();
    let host = ServerName::try_from(host_part.clone()).expect("HOST: a name or an address");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host_part}\r\nConnection: close\r\n\r\n")
        .into_bytes();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<Duration>, u64)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                s.spawn(|| {
                    let (mut latencies, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        match one(&config, addr, &host, &request) {
                            Ok(true) if Instant::now() <= deadline => latencies.push(t0.elapsed()),
                            Ok(true) => {}
                            Ok(false) | Err(_) => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a load thread panicked")).collect()
    });
    let mut latencies: Vec<Duration> =
        results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    let errors: u64 = results.iter().map(|(_, e)| e).sum();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "requests {} errors {} seconds {:.3} p50_ms {:.3} p99_ms {:.3}",
        latencies.len(),
        errors,
        seconds,
        pct(0.50),
        pct(0.99)
    );
}
