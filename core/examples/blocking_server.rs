//! A complete HTTP/1.1 server on `std::net` and ferrocorn-core alone: one thread per
//! connection, keep-alive and pipelining, `Content-Length` and chunked request bodies,
//! `Expect: 100-continue`, the core's error pages, and the PROXY protocol behind a flag.
//! It answers every request with a small JSON of what the core parsed.
//!
//! ```text
//! cargo run -p ferrocorn-core --example blocking_server -- 127.0.0.1:8000 [--proxy v1|v2|auto]
//! curl -s localhost:8000/hello?x=1 -d 'some body'
//! ```
//!
//! The core does the protocol; this file does the sockets. The `Connection` reads the
//! request and also frames the response and decides whether the connection is kept: the
//! loop below never looks at a `Connection` header or a version itself.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocorn_core::config::ProxyMode;
use ferrocorn_core::response::{self, ResponseHead};
use ferrocorn_core::{Connection, Event, Peer, ProtoConfig, RecvError, RequestHead};

fn main() {
    let mut addr = String::from("127.0.0.1:8000");
    let mut config = ProtoConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg != "--proxy" {
            addr = arg;
            continue;
        }
        config.proxy.mode = match args.next().as_deref() {
            Some("v1") => ProxyMode::V1,
            Some("v2") => ProxyMode::V2,
            Some("auto") => ProxyMode::Auto,
            other => fail(&format!("--proxy takes v1, v2 or auto, not {other:?}")),
        };
    }
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    println!("listening on {}", listener.local_addr().expect("a bound address"));
    run(listener, Arc::new(config));
}

fn fail(message: &str) -> ! {
    eprintln!("Error: {message}");
    std::process::exit(1)
}

/// Accepts connections for ever, each served on its own thread.
pub(crate) fn run(listener: TcpListener, config: Arc<ProtoConfig>) {
    for stream in listener.incoming().flatten() {
        let config = Arc::clone(&config);
        std::thread::spawn(move || serve(stream, config));
    }
}

/// Serves one connection until the core says it is over.
fn serve(mut stream: TcpStream, config: Arc<ProtoConfig>) -> io::Result<()> {
    let mut conn = Connection::new(config, Peer::Tcp(stream.peer_addr()?));
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    let mut request = String::new();
    let mut body_length = 0u64;
    loop {
        match conn.next_event() {
            Ok(Event::NeedData) => match stream.read(&mut buf)? {
                0 => conn.receive_eof(),
                n => conn.receive(&buf[..n]),
            },
            Ok(Event::Request(head)) => {
                // The client waits for this before it sends the body (RFC 9110 §10.1.1).
                if head.expect_continue {
                    stream.write_all(response::CONTINUE)?;
                }
                request = describe(head);
                body_length = 0;
            }
            Ok(Event::Data(data)) => body_length += data.len() as u64,
            Ok(Event::EndOfMessage(_)) => {
                let json = format!("{{{request},\"body_length\":{body_length}}}\n");
                respond(&mut conn, json.as_bytes(), &mut out);
                stream.write_all(&out)?;
                out.clear();
            }
            // The request and its response are done; the core decides whether the next
            // one may follow (pipelined bytes are already buffered in `conn`).
            Ok(Event::Paused) => {
                if conn.start_next_cycle().is_err() {
                    return Ok(());
                }
            }
            Ok(_) => return Ok(()), // ConnectionClosed (or an event of a later version)
            // The client went away in the middle of a request: nobody to answer.
            Err(RecvError::NoMoreData) => return Ok(()),
            // A request the core refused: its error page (400, 431, 501, ...), then close.
            Err(e) => {
                response::error_response(&e, &mut out);
                return stream.write_all(&out);
            }
        }
    }
}

/// Sends `body` as the response to the current request, through the connection.
fn respond(conn: &mut Connection, body: &[u8], out: &mut Vec<u8>) {
    let length = body.len().to_string();
    let headers: [(&[u8], &[u8]); 2] =
        [(b"Content-Type", b"application/json"), (b"Content-Length", length.as_bytes())];
    let head = ResponseHead::from_app(b"200 OK", headers.into_iter()).expect("a valid head");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let date = ferrocorn_core::date::http_date(now);
    conn.send_response(&head, b"blocking_server", &date, out).expect("a request to answer");
    conn.write_data(body, out).expect("a started response");
    out.extend_from_slice(conn.end_response().expect("a started response").last);
}

/// The JSON members for what the core parsed of a request head.
fn describe(head: &RequestHead) -> String {
    let headers: Vec<String> =
        head.headers().map(|(n, v)| format!("[{},{}]", json(n), json(v))).collect();
    let version = head.version.as_bytes();
    let proxy = head.proxy.as_ref().and_then(|p| p.source).map(|s| s.to_string());
    format!(
        "\"method\":{},\"target\":{},\"version\":{},\"headers\":[{}],\"proxy_source\":{}",
        json(head.method()),
        json(head.target()),
        json(&version),
        headers.join(","),
        proxy.map_or_else(|| String::from("null"), |s| json(s.as_bytes())),
    )
}

/// A JSON string of bytes read as latin-1 (header values may hold any byte above 0x7F).
fn json(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\u{b:04x}")),
        }
    }
    s.push('"');
    s
}
