//! The example server (`examples/blocking_server.rs`, compiled in here as a module) over
//! real TCP on 127.0.0.1: keep-alive, pipelining, chunked bodies, `Expect: 100-continue`,
//! HTTP/1.0 closing, the core's error page for a malformed request, and PROXY v1/v2.

#[allow(dead_code)]
#[path = "../examples/blocking_server.rs"]
mod blocking_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use ferrocorn_core::ProtoConfig;
use ferrocorn_core::config::ProxyMode;

fn start(mode: ProxyMode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ProtoConfig::default();
    config.proxy.mode = mode;
    std::thread::spawn(move || blocking_server::run(listener, Arc::new(config)));
    addr
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A response: status line, headers (names lower-cased), body.
#[derive(Debug)]
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let writer = TcpStream::connect(addr).unwrap();
        Client { reader: BufReader::new(writer.try_clone().unwrap()), writer }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads one response framed by its Content-Length.
    fn response(&mut self) -> Response {
        let status = self.line().trim_end().to_string();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut r = Response { status, headers, body: String::new() };
        let n: usize = r.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0u8; n];
        self.reader.read_exact(&mut body).unwrap();
        r.body = String::from_utf8(body).unwrap();
        r
    }

    /// Whether the server closed the connection (EOF with nothing more).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).unwrap();
        rest.is_empty()
    }
}

#[test]
fn keep_alive_then_close_on_request() {
    let mut c = Client::connect(start(ProxyMode::Off));
    c.send(b"GET /one?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing: caf\xe9\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(r.header("server"), Some("blocking_server"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(
        r.body,
        "{\"method\":\"GET\",\"target\":\"/one?x=1\",\"version\":\"HTTP/1.1\",\"headers\":\
         [[\"Host\",\"a\"],[\"X-Thing\",\"caf\\u00e9\"]],\"proxy_source\":null,\"body_length\":0}\n"
    );
    c.send(b"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    let r = c.response();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.body.contains("\"target\":\"/two\""), "{}", r.body);
    assert!(r.body.ends_with("\"body_length\":5}\n"), "{}", r.body);
    assert!(c.closed());
}

#[test]
fn pipelined_requests_and_a_chunked_body() {
    let mut c = Client::connect(start(ProxyMode::Off));
    c.send(
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;ext=1\r\nabcd\r\n6\r\nefghij\r\n0\r\nX-Checksum: 1\r\n\r\n\
          GET /b HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let a = c.response();
    assert!(a.body.contains("\"target\":\"/a\""), "{}", a.body);
    assert!(a.body.ends_with("\"body_length\":10}\n"), "{}", a.body);
    assert!(c.response().body.contains("\"target\":\"/b\""));
    let last = c.response();
    assert!(last.body.contains("\"target\":\"/c\""));
    assert_eq!(last.header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn expect_100_continue_comes_before_the_body() {
    let mut c = Client::connect(start(ProxyMode::Off));
    c.send(b"PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    // The interim response arrives while the body is still unsent.
    assert_eq!(c.line(), "HTTP/1.1 100 Continue\r\n");
    assert_eq!(c.line(), "\r\n");
    c.send(b"xyz");
    let r = c.response();
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert!(r.body.ends_with("\"body_length\":3}\n"), "{}", r.body);
}

#[test]
fn http_10_closes_unless_asked_to_keep_alive() {
    let addr = start(ProxyMode::Off);
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status.as_str(), r.header("connection")), ("HTTP/1.0 200 OK", Some("close")));
    assert!(c.closed());
    let mut c = Client::connect(addr);
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response().header("connection"), Some("keep-alive"));
    c.send(b"GET /again HTTP/1.0\r\n\r\n");
    assert!(c.response().body.contains("/again"));
    assert!(c.closed());
}

#[test]
fn a_malformed_request_gets_the_core_error_page_and_a_close() {
    let mut c = Client::connect(start(ProxyMode::Off));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n");
    assert!(c.response().body.contains("\"method\":\"GET\""));
    let r = c.response();
    assert_eq!(r.status, "HTTP/1.1 400 Bad Request");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.body.contains("<h1><p>Bad Request</p></h1>"), "{}", r.body);
    assert!(c.closed());
    // A smuggling attempt: both framings at once is refused, not guessed.
    let mut c = Client::connect(start(ProxyMode::Off));
    c.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(c.response().status, "HTTP/1.1 400 Bad Request");
    assert!(c.closed());
}

#[test]
fn proxy_v1_and_v2_behind_the_flag() {
    let mut c = Client::connect(start(ProxyMode::V1));
    c.send(b"PROXY TCP4 192.0.2.1 198.51.100.2 4242 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(c.response().body.contains("\"proxy_source\":\"192.0.2.1:4242\""));

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12, 203, 0, 113, 9, 127, 0, 0, 1, 0x1f, 0x90, 0, 80]);
    v2.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut c = Client::connect(start(ProxyMode::V2));
    c.send(&v2);
    assert!(c.response().body.contains("\"proxy_source\":\"203.0.113.9:8080\""));

    // Without its header, a v1 listener refuses the request with the core's page.
    let mut c = Client::connect(start(ProxyMode::V1));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response().status, "HTTP/1.1 400 Bad Request");
    assert!(c.closed());
}
