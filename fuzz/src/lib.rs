//! Generators and drivers shared by the fuzz targets in `tests/`.
//!
//! Every target takes the fuzzer's raw bytes (`bolero::check!()` with no type: libfuzzer
//! hands over inputs of any length, bolero's own engine random ones up to 4096 bytes) and
//! reads them as a stream of **choices** ([`Choices`]): which shape of request to build,
//! which field to make long, where to cut, what to mutate. So a short fuzz input already
//! becomes a request of kilobytes whose head is valid where the choices say so, and the
//! mutations land in the structure instead of in random noise:
//!
//! - [`request`]: one input, one to four requests on a connection: valid heads with
//!   mutations, fields near every limit, Content-Length and chunked bodies with chunk
//!   extensions and trailers, pipelined requests, a PROXY v1 or v2 header in front;
//! - mode 0 of [`request`]: the rest of the input as it is, so raw requests (the seed
//!   corpus holds every corpus case prefixed with `0x00`) are mutated byte by byte by
//!   libfuzzer itself;
//! - mode 1: a case of the request corpora ([`seeds`]) with structured mutations.
//!
//! [`drive`] replays bytes through a fresh `Connection` and renders what came out, the
//! way the conformance runner does, for the split-independence and differential checks.

use std::sync::{Arc, OnceLock};

// The library's own test binary needs libfuzzer's symbols when built by cargo-bolero.
extern crate bolero as _;

use ferrocorn_core::config::{ProtoConfig, ProxyMode};
use ferrocorn_core::{Connection, Event, Peer};

/// The fuzz input read as a stream of decisions; zeros once it runs out, so every input
/// decodes to something (short inputs to the simplest shapes).
#[derive(Debug)]
pub struct Choices<'a> {
    rest: &'a [u8],
}

impl<'a> Choices<'a> {
    /// Reads decisions from `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Choices { rest: input }
    }

    /// The next byte (0 after the end).
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// A 16-bit number.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 { usize::from(self.byte()) % n } else { usize::from(self.u16()) % n }
    }

    /// True with probability about `k`/8.
    pub fn chance(&mut self, k: u8) -> bool {
        self.byte() % 8 < k
    }

    /// One of `items`.
    pub fn pick<'t, T: ?Sized>(&mut self, items: &[&'t T]) -> &'t T {
        items[self.below(items.len())]
    }

    /// Up to `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        taken
    }

    /// Everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Whether the input ran out.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The default limits, as the generators aim at them (gunicorn's defaults).
pub const REQUEST_LINE: usize = 4094;
/// `limit_request_field_size` (the field line with its CRLF).
pub const FIELD_SIZE: usize = 8190;
/// `limit_request_fields`.
pub const FIELDS: usize = 100;

/// A length near one of the limits (just under, at, just over), or a small one.
fn near_limit(ch: &mut Choices<'_>, limit: usize) -> usize {
    let delta = ch.below(7) as isize - 3;
    (limit as isize + delta).max(0) as usize
}

/// Bytes that break things when they land in the wrong place.
const SPECIAL: &[u8] = b"\r\n\0 \t:;,=\"\\/%?#\x7f\x80\xff0aAzZ-_.";

const METHODS: &[&str] = &["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"];

/// Methods that are wrong, or right only under some settings or for some targets.
const ODD_METHODS: &[&str] =
    &["CONNECT", "TRACE", "get", "PROPFIND", "M-SEARCH", "G\tET", "GET ", "", "G(E)T"];

const TARGETS: &[&str] = &["/", "/a/b?c=d&e", "/%41%2f?x=%20", "//double/slash", "/?", "/p;q"];

/// Targets that are wrong, or right only for some methods.
const ODD_TARGETS: &[&str] = &[
    "*",
    "http://example.com:8080/p?q",
    "example.com:443",
    "/p#frag",
    "/%00%zz",
    "/\u{e9}",
    "http://user@example.com/",
    "",
];

const VERSIONS: &[&str] = &["HTTP/1.1", "HTTP/1.0"];

const ODD_VERSIONS: &[&str] =
    &["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/1", "HTTP/3.0"];

const NAMES: &[&str] = &[
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Expect",
    "Content-Type",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "Forwarded",
    "Script_Name",
    "X_Under",
    "Cookie",
    "Upgrade",
    "TE",
    "Trailer",
    "Keep-Alive",
    "Accept",
    "X-A",
];

const VALUES: &[&str] = &[
    "example.com",
    "[::1]:8080",
    "0",
    "5",
    "chunked",
    "gzip, chunked",
    "chunked, gzip",
    "identity",
    "close",
    "keep-alive",
    "upgrade",
    "100-continue",
    "https",
    "for=1.2.3.4;proto=https",
    "a=b; c=d",
    "websocket",
    "",
    " padded ",
    "x\u{e9}",
];

/// A field value: a listed one, a run of one byte near the field limit, or fuzz bytes.
fn value(ch: &mut Choices<'_>, name_len: usize, out: &mut Vec<u8>) {
    match ch.below(8) {
        7 => {
            // The whole field line (`name: value\r\n`) near limit_request_field_size.
            let total = near_limit(ch, FIELD_SIZE);
            let n = total.saturating_sub(name_len + 4);
            out.extend(std::iter::repeat_n(b'v', n));
        }
        6 => {
            let n = ch.below(40);
            out.extend_from_slice(ch.bytes(n));
        }
        5 => {
            let n = ch.below(20);
            out.extend_from_slice(
                format!("{}", u64::from(ch.u16()) * 7 % 10u64.pow(n as u32 % 19 + 1)).as_bytes(),
            );
        }
        _ => out.extend_from_slice(ch.pick(VALUES).as_bytes()),
    }
}

/// A field name: a listed one, a fuzz token, or a long one.
fn name(ch: &mut Choices<'_>) -> Vec<u8> {
    match ch.below(10) {
        8 => {
            let n = 1 + ch.below(12);
            ch.bytes(n)
                .iter()
                .map(|b| if b.is_ascii_graphic() && *b != b':' { *b } else { b'n' })
                .collect()
        }
        9 => {
            let n = near_limit(ch, FIELD_SIZE) - 4;
            vec![b'N'; n]
        }
        _ => ch.pick(NAMES).as_bytes().to_vec(),
    }
}

/// How the body of one generated request is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Length,
    Chunked,
}

/// One request: request line, fields, body, possibly near the limits.
fn one_request(ch: &mut Choices<'_>, out: &mut Vec<u8>) {
    // Request line: mostly valid, an odd method, target or version one time in eight.
    let method = if ch.chance(7) { ch.pick(METHODS) } else { ch.pick(ODD_METHODS) };
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    match ch.below(8) {
        7 => {
            // The request line near limit_request_line.
            let total = near_limit(ch, REQUEST_LINE);
            let fixed = method.len() + 1 + 1 + 8;
            out.push(b'/');
            out.extend(std::iter::repeat_n(b'a', total.saturating_sub(fixed + 1)));
        }
        6 => {
            out.push(b'/');
            let n = ch.below(64);
            // Visible ASCII but `#`, `%` likely (escapes, good or bad).
            out.extend(ch.bytes(n).iter().map(|b| match 0x21 + b % 0x5e {
                b'#' => b'%',
                c => c,
            }));
        }
        5 => out.extend_from_slice(ch.pick(ODD_TARGETS).as_bytes()),
        _ => out.extend_from_slice(ch.pick(TARGETS).as_bytes()),
    }
    out.push(b' ');
    let version = if ch.chance(7) { ch.pick(VERSIONS) } else { ch.pick(ODD_VERSIONS) };
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");

    // Fields.
    let mut body = Body::None;
    let mut host = false;
    let count = match ch.below(16) {
        15 => near_limit(ch, FIELDS),
        _ => ch.below(6),
    };
    let host_first = ch.chance(7);
    if host_first {
        out.extend_from_slice(b"Host: example.com\r\n");
        host = true;
    }
    match ch.below(4) {
        0 => {
            body = Body::Length;
        }
        1 => {
            body = Body::Chunked;
        }
        _ => {}
    }
    let len = match ch.below(4) {
        3 => ch.below(70000),
        _ => ch.below(40),
    };
    match body {
        Body::Length => out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes()),
        Body::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Body::None => {}
    }
    for _ in 0..count {
        let n = name(ch);
        if n.eq_ignore_ascii_case(b"host") {
            host = true;
        }
        out.extend_from_slice(&n);
        out.extend_from_slice(match ch.below(12) {
            0 => b":",
            1 => b" : ",
            2 => b":\t",
            _ => b": ",
        });
        value(ch, n.len(), out);
        out.extend_from_slice(if ch.below(20) == 0 { b"\n" } else { b"\r\n" });
        if ch.below(24) == 0 {
            // An obsolete line folding.
            out.extend_from_slice(b" folded\r\n");
        }
    }
    let _ = host;
    out.extend_from_slice(b"\r\n");

    // Body.
    match body {
        Body::None => {}
        Body::Length => {
            // Usually as long as announced; sometimes short or long.
            let n = match ch.below(8) {
                0 => len.saturating_sub(1 + ch.below(4)),
                1 => len + ch.below(4),
                _ => len,
            };
            out.extend(std::iter::repeat_n(b'b', n));
        }
        Body::Chunked => chunked(ch, len, out),
    }
}

/// A chunked body with extensions, odd sizes and trailers.
fn chunked(ch: &mut Choices<'_>, total: usize, out: &mut Vec<u8>) {
    let mut left = total;
    let chunks = 1 + ch.below(4);
    for i in 0..chunks {
        let size = if i + 1 == chunks { left } else { ch.below(left + 1) };
        left -= size;
        if size == 0 {
            continue;
        }
        match ch.below(10) {
            0 => out.extend_from_slice(format!("{size:X}").as_bytes()),
            1 => out.extend_from_slice(format!("000{size:x}").as_bytes()),
            2 => out.extend_from_slice(format!("{size:x} ").as_bytes()),
            3 => out.extend_from_slice(format!("+{size:x}").as_bytes()),
            _ => out.extend_from_slice(format!("{size:x}").as_bytes()),
        }
        extension(ch, out);
        out.extend_from_slice(b"\r\n");
        out.extend(std::iter::repeat_n(b'c', size));
        out.extend_from_slice(match ch.below(16) {
            0 => &b"\n"[..],
            1 => b"",
            _ => b"\r\n",
        });
    }
    match ch.below(8) {
        0 => out.extend_from_slice(b"00"),
        _ => out.push(b'0'),
    }
    extension(ch, out);
    out.extend_from_slice(b"\r\n");
    let trailers = match ch.below(8) {
        7 => near_limit(ch, FIELDS),
        1..=3 => 1 + ch.below(3),
        _ => 0,
    };
    for _ in 0..trailers {
        let n = name(ch);
        out.extend_from_slice(&n);
        out.extend_from_slice(b": ");
        value(ch, n.len(), out);
        out.extend_from_slice(b"\r\n");
    }
    if ch.below(16) != 0 {
        out.extend_from_slice(b"\r\n");
    }
}

/// Nothing, or a chunk extension (sometimes near the chunk-line limit).
fn extension(ch: &mut Choices<'_>, out: &mut Vec<u8>) {
    match ch.below(10) {
        0 => out.extend_from_slice(b";name=value"),
        1 => out.extend_from_slice(b"; spaced = \"quoted ;\\\" value\""),
        2 => out.extend_from_slice(b";bare"),
        3 => {
            let n = near_limit(ch, 8192) - 8;
            out.push(b';');
            out.extend(std::iter::repeat_n(b'e', n));
        }
        4 => {
            let n = ch.below(16);
            out.push(b';');
            out.extend_from_slice(ch.bytes(n));
        }
        _ => {}
    }
}

/// A PROXY header in front of the requests: v1 (sometimes malformed) or v2.
fn proxy_header(ch: &mut Choices<'_>, out: &mut Vec<u8>) {
    match ch.below(6) {
        0 => out.extend_from_slice(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n"),
        1 => out.extend_from_slice(b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
        2 => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
        3 => {
            out.extend_from_slice(b"PROXY ");
            let n = ch.below(110);
            out.extend_from_slice(ch.bytes(n));
            out.extend_from_slice(b"\r\n");
        }
        _ => {
            out.extend_from_slice(b"\r\n\r\n\0\r\nQUIT\n");
            let local = ch.chance(1);
            out.push(if local { 0x20 } else { 0x21 });
            let (fam, addr_len) =
                *ch.pick(&[&(0x11u8, 12usize), &(0x21, 36), &(0x31, 216), &(0x00, 0)]);
            out.push(fam);
            let tlv = if ch.chance(2) { 3 + ch.below(8) } else { 0 };
            let len = addr_len + tlv;
            out.extend_from_slice(&(len as u16).to_be_bytes());
            let addr = ch.bytes(addr_len).to_vec();
            out.extend_from_slice(&addr);
            out.extend(std::iter::repeat_n(0, addr_len - addr.len()));
            if tlv > 0 {
                out.push(*ch.pick(&[&0x01u8, &0x02, &0x04, &0x05, &0x20, &0xee]));
                out.extend_from_slice(&((tlv - 3) as u16).to_be_bytes());
                out.extend(std::iter::repeat_n(b't', tlv - 3));
            }
        }
    }
}

/// Applies up to `n` mutations chosen by `ch` to `bytes`: overwrite, insert or delete at
/// a place (often next to a CR, LF, colon or space, where parsers decide things),
/// duplicate or cut a range, truncate.
pub fn mutate(ch: &mut Choices<'_>, bytes: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        if ch.is_empty() {
            break;
        }
        let len = bytes.len();
        let mut at = ch.below(len + 1);
        if ch.chance(4) && len > 0 {
            // Move to the next delimiter, where the interesting decisions are.
            if let Some(p) = bytes[at.min(len - 1)..].iter().position(|b| b"\r\n: ;,".contains(b)) {
                at = (at + p + usize::from(ch.chance(4))).min(len);
            }
        }
        let special = SPECIAL[ch.below(SPECIAL.len())];
        match ch.below(8) {
            0 | 1 if at < len => bytes[at] = special,
            2 if at < len => bytes[at] = ch.byte(),
            3 | 4 => bytes.insert(at, special),
            5 if at < len => {
                let k = (1 + ch.below(4)).min(len - at);
                bytes.drain(at..at + k);
            }
            6 if at < len => {
                let k = (1 + ch.below(64)).min(len - at);
                let copy = bytes[at..at + k].to_vec();
                let to = ch.below(len + 1);
                bytes.splice(to..to, copy);
            }
            7 => bytes.truncate(at),
            _ => {}
        }
    }
}

/// Builds a connection's worth of bytes from the choices.
///
/// The first choice picks the mode: raw bytes (the rest of the input as it is), a corpus
/// case with mutations, or generated requests (most of the time), optionally behind a
/// PROXY header, then mutated a little.
pub fn request(ch: &mut Choices<'_>) -> Vec<u8> {
    let mode = ch.byte();
    match mode {
        0 => ch.rest().to_vec(),
        1 | 2 => {
            let seeds = seeds();
            if seeds.is_empty() {
                return ch.rest().to_vec();
            }
            let mut bytes = seeds[ch.below(seeds.len())].clone();
            let n = 1 + ch.below(8);
            mutate(ch, &mut bytes, n);
            bytes
        }
        _ => {
            let mut out = Vec::new();
            if mode & 0x70 == 0x70 {
                proxy_header(ch, &mut out);
            }
            let requests = 1 + usize::from(mode >> 6);
            for _ in 0..requests {
                if ch.below(32) == 0 {
                    out.extend_from_slice(b"\r\n");
                }
                one_request(ch, &mut out);
            }
            let n = match mode & 0x0c {
                0 => 0,
                4 => 1,
                8 => 2,
                _ => ch.below(6),
            };
            mutate(ch, &mut out, n);
            out
        }
    }
}

/// The request corpora as seeds: every `.http` of `conformance/corpus` and of the gunicorn
/// corpus (`$FERROCORN_SHARED/corpus/gunicorn-requests`, `../shared` by default) when it is
/// there, read once.
pub fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = workspace_root();
        let shared = match std::env::var_os("FERROCORN_SHARED") {
            Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
            _ => root.join("..").join("shared"),
        };
        let mut files = Vec::new();
        for dir in [root.join("conformance/corpus"), shared.join("corpus/gunicorn-requests")] {
            collect_http(&dir, &mut files);
        }
        files.sort();
        files.into_iter().filter_map(|p| std::fs::read(p).ok()).collect()
    })
}

fn collect_http(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_http(&p, out);
        } else if p.extension().is_some_and(|x| x == "http") {
            out.push(p);
        }
    }
}

/// The workspace root (the fuzz crate's parent directory).
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(std::path::PathBuf::from).unwrap_or(manifest)
}

/// A request as the parser delivered it, in the shape gunicorn's parser reports:
/// header names upper-cased, strings as latin-1 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Method as sent.
    pub method: Vec<u8>,
    /// Raw request-target.
    pub uri: Vec<u8>,
    /// `(major, minor)`.
    pub version: (u8, u8),
    /// Names upper-cased, values as delivered.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Trailer fields, names upper-cased.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What one connection's bytes came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The requests read whole, in order.
    pub requests: Vec<Parsed>,
    /// The gunicorn exception class of the error that ended it, with its status.
    pub error: Option<(&'static str, u16)>,
    /// A request whose head came but whose body did not end (the bytes ran out).
    pub incomplete: bool,
    /// The connection ended after a request that does not let it persist (the bytes
    /// after it, if any, were not read).
    pub stopped: bool,
}

impl Outcome {
    /// `accept` or the error class, as the ledgers name verdicts.
    pub fn verdict(&self) -> &'static str {
        match self.error {
            Some((class, _)) => class,
            None => "accept",
        }
    }
}

/// Replays `parts` (in order, then EOF) through a fresh connection with `peer`, draining
/// events after each piece as a server would. Panics when the connection misbehaves:
/// `NeedData` after EOF, buffering past the limits plus one read, an error status that is
/// not a client error, no progress.
pub fn drive(cfg: &Arc<ProtoConfig>, peer: Peer, parts: &[&[u8]]) -> Outcome {
    let mut conn = Connection::new(cfg.clone(), peer);
    let mut parts = parts.iter();
    let mut out = Outcome { requests: Vec::new(), error: None, incomplete: false, stopped: false };
    let mut current: Option<Parsed> = None;
    let mut eof = false;
    let mut last_piece = 0usize;
    let upper = |pairs: &mut dyn Iterator<Item = (&[u8], &[u8])>| -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs.map(|(n, v)| (n.to_ascii_uppercase(), v.to_vec())).collect()
    };
    for _ in 0..1_000_000 {
        match conn.next_event() {
            Ok(Event::NeedData) => {
                assert!(!eof, "NeedData after EOF");
                let l = cfg.limits;
                let bound = l.request_line + 4 + l.head_buffer() + 65536 + proxy_allowance(cfg);
                assert!(
                    conn.buffered() <= bound + last_piece,
                    "unbounded buffering: {} bytes buffered, bound {bound} plus the last read of {last_piece}",
                    conn.buffered()
                );
                match parts.next() {
                    Some(p) => {
                        last_piece = p.len();
                        conn.receive(p)
                    }
                    None => {
                        eof = true;
                        conn.receive_eof();
                    }
                }
            }
            Ok(Event::Request(h)) => {
                current = Some(Parsed {
                    method: h.method().to_vec(),
                    uri: h.target().to_vec(),
                    version: (h.version.major, h.version.minor),
                    headers: upper(&mut h.headers()),
                    body: Vec::new(),
                    trailers: Vec::new(),
                });
            }
            Ok(Event::Data(d)) => {
                assert!(!d.is_empty(), "an empty Data event");
                current.as_mut().expect("Data before Request").body.extend_from_slice(d);
            }
            Ok(Event::EndOfMessage(t)) => {
                let mut r = current.take().expect("EndOfMessage before Request");
                r.trailers = upper(&mut t.fields());
                out.requests.push(r);
            }
            Ok(Event::Paused) => {
                if conn.start_next_cycle().is_err() {
                    out.stopped = true;
                    return out;
                }
            }
            Ok(Event::ConnectionClosed) => {
                out.incomplete = current.is_some();
                return out;
            }
            Ok(other) => panic!("an event this target does not know: {other:?}"),
            Err(e) => {
                assert!(
                    matches!(e.status(), 400 | 403 | 414 | 417 | 431 | 501 | 505),
                    "error status {} for {e:?}",
                    e.status()
                );
                out.error = Some((e.gunicorn_class(), e.status()));
                out.incomplete = current.is_some();
                return out;
            }
        }
    }
    panic!("no progress after a million events");
}

/// A PROXY v2 header may be read whole before the request starts (up to 16 + 65535).
fn proxy_allowance(cfg: &ProtoConfig) -> usize {
    match cfg.proxy.mode {
        ProxyMode::Off => 0,
        _ => 16 + 65535,
    }
}

/// Runs `check` on every input of a target's regression corpus
/// (`fuzz/tests/__fuzz__/TEST/corpus`, what `scripts/fuzz.sh TARGET merge` keeps), in name
/// order; a failure names the file. Returns how many ran. (bolero's own replay of that
/// directory stops when its one-second budget is spent.)
pub fn replay_corpus(test: &str, check: &dyn Fn(&[u8])) -> usize {
    let dir = workspace_root().join("fuzz/tests/__fuzz__").join(test).join("corpus");
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => return 0,
    };
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path).expect("read a corpus input");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{}: {msg}", path.display());
        }
    }
    files.len()
}
