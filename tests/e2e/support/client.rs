//! The one HTTP/1.1 client of the end-to-end tests: connect, send bytes, read one
//! response with its framing (`Content-Length`, chunked, or delimited by the close; `1xx`
//! interim responses kept apart), and send the next request on the same connection.
//! It reads what the server wrote, byte for byte ([`Response::raw`]), so a test can
//! still look at the exact bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long a read waits for the server unless a test says otherwise.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One final response (and the interim ones before it).
#[derive(Debug)]
pub struct Response {
    /// The status code of the final response.
    pub status: u16,
    /// Its headers as sent (names in their case, values trimmed).
    pub headers: Vec<(String, String)>,
    /// Its body, chunked framing removed.
    pub body: Vec<u8>,
    /// The interim (1xx) responses before it, each head as text.
    pub interim: Vec<String>,
    /// The bytes as they came: the interim responses, then the final one (head, blank
    /// line, body as framed).
    pub raw: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the server said `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The response as text (lossy), as it came (interim responses first).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection to a server, over TCP or a unix socket.
#[derive(Debug)]
pub struct Client<S: Read + Write = TcpStream> {
    /// The socket, for what a test does beside HTTP (its address, a read of its own, ...).
    pub s: S,
    buf: Vec<u8>,
}

impl Client<TcpStream> {
    /// Connects to `addr` (panics on failure), reads waiting at most [`READ_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Connects within 5 s, or says why not.
    pub fn try_connect(addr: SocketAddr) -> Result<Client, String> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| format!("connect: {e}"))?;
        Ok(Client::over(s))
    }

    /// Sends no more bytes (the server reads an EOF after what was sent).
    pub fn half_close(&mut self) {
        let _ = self.s.shutdown(Shutdown::Write);
    }

    /// Reads time out after `d` from now on.
    pub fn read_timeout(&mut self, d: Duration) -> &mut Self {
        self.s.set_read_timeout(Some(d)).unwrap();
        self
    }

    /// Sends small writes at once (no Nagle delay).
    pub fn nodelay(&mut self) -> &mut Self {
        let _ = self.s.set_nodelay(true);
        self
    }

    /// Whether the server closes the connection within `secs` (no more bytes come).
    pub fn closed_within(&mut self, secs: f64) -> bool {
        self.s.set_read_timeout(Some(Duration::from_secs_f64(secs))).unwrap();
        let mut tmp = [0u8; 65536];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

impl Client<UnixStream> {
    /// Connects to the unix socket at `path` (panics on failure).
    pub fn connect_unix(path: &std::path::Path) -> Client<UnixStream> {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Client::over(s)
    }
}

impl<S: Read + Write> Client<S> {
    /// A client over a stream the test opened.
    pub fn over(s: S) -> Client<S> {
        Client { s, buf: Vec::new() }
    }

    /// Sends `bytes` (panics on failure).
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.s.write_all(bytes).unwrap();
        self
    }

    /// Sends `bytes`, or says why not.
    pub fn try_send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.s.write_all(bytes).map_err(|e| format!("write: {e}"))
    }

    /// `GET path` (Host `t`, nothing else), and its response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.read().expect("a response")
    }

    /// The next final response, or `None` at the end of the stream before one starts
    /// (panics on anything else).
    pub fn read(&mut self) -> Option<Response> {
        self.try_read().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next final response; `Ok(None)` at the end of the stream before one starts;
    /// `Err` when the stream ends inside a response or a read fails.
    pub fn try_read(&mut self) -> Result<Option<Response>, String> {
        let mut interim = Vec::new();
        let mut raw = Vec::new();
        loop {
            let end = loop {
                if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                if !self.fill()? {
                    if self.buf.is_empty() && interim.is_empty() {
                        return Ok(None);
                    }
                    return Err(format!(
                        "EOF inside a head: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ));
                }
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            raw.extend(self.buf.drain(..end + 4));
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not a status line: {head:?}"))?;
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap_or((l, ""));
                    (n.to_owned(), v.trim().to_owned())
                })
                .collect();
            if status < 200 {
                interim.push(head);
                continue;
            }
            let mut r = Response { status, headers, body: Vec::new(), interim, raw: Vec::new() };
            if let Some(n) = r.header("Content-Length") {
                let n: usize = n.parse().map_err(|_| format!("Content-Length: {n:?}"))?;
                while self.buf.len() < n {
                    if !self.fill()? {
                        return Err("EOF inside a body".to_owned());
                    }
                }
                r.body = self.buf.drain(..n).collect();
                raw.extend_from_slice(&r.body);
            } else if r
                .header("Transfer-Encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
            {
                self.read_chunked(&mut r.body, &mut raw)?;
            } else {
                while self.fill()? {}
                r.body = std::mem::take(&mut self.buf);
                raw.extend_from_slice(&r.body);
            }
            r.raw = std::mem::take(&mut raw);
            return Ok(Some(r));
        }
    }

    /// A chunked body (chunk extensions ignored, no trailers expected) into `body`.
    fn read_chunked(&mut self, body: &mut Vec<u8>, raw: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if !self.fill()? {
                    return Err("EOF inside a chunk line".to_owned());
                }
            };
            let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("not a chunk size: {line:?}"))?;
            raw.extend(self.buf.drain(..line_end + 2));
            while self.buf.len() < size + 2 {
                if !self.fill()? {
                    return Err("EOF inside a chunk".to_owned());
                }
            }
            body.extend_from_slice(&self.buf[..size]);
            raw.extend(self.buf.drain(..size + 2));
            if size == 0 {
                return Ok(());
            }
        }
    }

    /// What was read past the last response (pipelined or unexpected bytes), or by
    /// [`Client::read_until`] and [`Client::read_at_least`].
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the pending bytes.
    pub fn clear_pending(&mut self) {
        self.buf.clear();
    }

    /// Reads as the bytes come until the pending bytes contain `needle` (a response
    /// streamed piece by piece); all pending bytes as text, or what went wrong and what
    /// came (the stream ended, a read failed, or 4 MiB without it).
    pub fn read_until(&mut self, needle: &str) -> Result<String, String> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        while !text(&self.buf).contains(needle) {
            if self.buf.len() >= 1 << 22 {
                return Err(format!("no {needle:?} in 4 MiB"));
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!("closed before {needle:?}; got {:?}", text(&self.buf)));
                }
                Err(e) => return Err(format!("no {needle:?} ({e}); got {:?}", text(&self.buf))),
            }
        }
        Ok(text(&self.buf))
    }

    /// Reads until at least `n` bytes are pending, or says after how many it stopped.
    pub fn read_at_least(&mut self, n: usize) -> Result<(), String> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Err(format!("closed after {} bytes", self.buf.len())),
                Err(e) => return Err(format!("{e} after {} bytes", self.buf.len())),
            }
        }
        Ok(())
    }

    /// Everything the server sends until it closes, after what was already read: its
    /// bytes, and the error that ended the reading early, if one did.
    pub fn read_to_end(&mut self) -> (Vec<u8>, Option<std::io::Error>) {
        let mut out = std::mem::take(&mut self.buf);
        let err = self.s.read_to_end(&mut out).err();
        (out, err)
    }

    /// Reads more bytes: `false` at the end of the stream (or a reset connection).
    fn fill(&mut self) -> Result<bool, String> {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(false),
            Err(e) => Err(format!("read: {e}")),
        }
    }
}
