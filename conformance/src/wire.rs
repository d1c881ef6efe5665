//! The conformance runner over the wire: the request corpora replayed over TCP against
//! any running HTTP/1.1 server (`ferrocorn-conformance --target HOST:PORT`).
//!
//! Every case whose settings are the defaults (with `--proxy v1|v2`: those, behind a
//! PROXY header of that version, and the cases that bring their own header under exactly
//! that `proxy_protocol`) is sent on a fresh connection once per [`Send`] way: whole,
//! line by line, in seeded random pieces, and the first byte then the rest, with a short
//! pause between pieces so that the server reads them apart; then the client half-closes
//! and reads until the server closes (or [`WireOptions::timeout`] passes without a byte).
//!
//! What comes back is read as a sequence of HTTP/1.1 responses ([`read_responses`]:
//! interim 1xx answers skipped, bodies delimited by RFC 9112 §6.3 for the method the case
//! sent) and summed up as an **observation** ([`observe`]): the status classes in order
//! (`2xx 2xx`, `4xx`, `none`), then what else was wrong: bytes that are no response
//! (`+garbage`), no close in time (`+timeout`), and, where the server runs the echo app
//! (`tests/apps/echo_app.py`: the body is the JSON of what the application saw),
//! `+app(method|uri|body|header NAME)` when the application saw another request than
//! the case says.
//!
//! The case's **expectation** in the same words ([`expected`]): `2xx` for each request of
//! a valid case up to the first that does not let the connection persist; for an invalid
//! one, `2xx` for each request the core reads whole before its error, then `5xx` for
//! `UnsupportedTransferCoding` (501) and `4xx` for every other class. So a smuggled
//! request (more responses than requests) and a response after a rejection both show as
//! a different observation.
//!
//! Each server has its ledger (`conformance/wire/SERVER.toml`), in the format of the core
//! replay's: `[[divergence]] case, expected, observed, reason`. A case passes when the
//! observation is the expectation on every way of sending; it is a divergence when the
//! ledger lists it with that observation; anything else fails, and so does a ledger entry
//! whose case now passes or now observes something else. The run prints every failure,
//! the ledger diff (the entries to remove, add or change, as TOML) and the summary line
//! of the core replay: `conformance: N passed, N failed, N divergences (ledger)`.
//! [`bless`] writes the ledger from a run, keeping the reasons of entries that stay.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrocorn_core::Peer;
use serde::{Deserialize, Serialize};

use crate::case::{Case, Expectation};
use crate::feed::SplitMix64;
use crate::replay::{self, End};
use crate::settings;

/// The PROXY header the runner sends in front of each default case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary v2 header.
    V2,
}

/// How the runner talks to the server.
#[derive(Clone, Debug)]
pub struct WireOptions {
    /// The server's address.
    pub target: SocketAddr,
    /// A PROXY header in front of every case.
    pub proxy: Option<Proxy>,
    /// How long to wait for the next byte before giving up on a connection.
    pub timeout: Duration,
    /// The pause between two pieces of a split send.
    pub pause: Duration,
}

impl WireOptions {
    /// Options for `target` (`HOST:PORT`), 30 s read timeout (only a server that never
    /// closes meets it: generous for a loaded machine), 2 ms pauses.
    pub fn new(target: &str) -> Result<WireOptions, String> {
        let addr = target
            .to_socket_addrs()
            .map_err(|e| format!("--target {target:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target {target:?}: no address"))?;
        Ok(WireOptions {
            target: addr,
            proxy: None,
            timeout: Duration::from_secs(30),
            pause: Duration::from_millis(2),
        })
    }
}

/// One way of sending a case's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Send {
    /// One write.
    Whole,
    /// One write per line (at most 64 pieces: the rest goes with the last).
    Lines,
    /// Pieces of pseudo-random length from a seed (at most 64).
    Random(u64),
    /// The first byte, then the rest.
    FirstByte,
}

/// Every way, whole first.
pub const SENDS: [Send; 4] = [Send::Whole, Send::Lines, Send::Random(7), Send::FirstByte];

impl std::fmt::Display for Send {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Send::Whole => f.write_str("whole"),
            Send::Lines => f.write_str("lines"),
            Send::Random(s) => write!(f, "random(seed={s})"),
            Send::FirstByte => f.write_str("first-byte"),
        }
    }
}

const MAX_PIECES: usize = 64;

impl Send {
    /// The pieces of `data`, non-empty, concatenating back to it.
    pub fn pieces<'a>(&self, data: &'a [u8]) -> Vec<&'a [u8]> {
        if data.is_empty() {
            return Vec::new();
        }
        let mut pieces: Vec<&[u8]> = match *self {
            Send::Whole => vec![data],
            Send::Lines => data.split_inclusive(|&b| b == b'\n').collect(),
            Send::FirstByte if data.len() > 1 => vec![&data[..1], &data[1..]],
            Send::FirstByte => vec![data],
            Send::Random(seed) => {
                let mut rng = SplitMix64::new(seed);
                let mut out = Vec::new();
                let mut rest = data;
                let max = (data.len() / 6).max(1) as u64;
                while !rest.is_empty() {
                    let n = (1 + rng.next_u64() % max) as usize;
                    let (a, b) = rest.split_at(n.min(rest.len()));
                    out.push(a);
                    rest = b;
                }
                out
            }
        };
        if pieces.len() > MAX_PIECES {
            let cut: usize = pieces[..MAX_PIECES - 1].iter().map(|p| p.len()).sum();
            pieces.truncate(MAX_PIECES - 1);
            pieces.push(&data[cut..]);
        }
        pieces
    }
}

/// What came back on one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// Every byte the server sent.
    pub bytes: Vec<u8>,
    /// The server did not close within the timeout.
    pub timed_out: bool,
}

/// Sends `pieces` on a fresh connection, half-closes, reads until EOF or timeout.
pub fn exchange(opts: &WireOptions, pieces: &[&[u8]]) -> Result<Exchange, String> {
    let mut s = TcpStream::connect_timeout(&opts.target, opts.timeout)
        .map_err(|e| format!("connect to {}: {e}", opts.target))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(opts.timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(opts.timeout)).map_err(|e| e.to_string())?;
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(opts.pause);
        }
        // A server that rejected the request may close before it has everything: what
        // it answered is still to be read.
        if s.write_all(p).is_err() {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Exchange::default();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                out.timed_out = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after the answer (the server closed with unread bytes).
            Err(_) => break,
        }
    }
    Ok(out)
}

/// One final response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The response said `Connection: close`.
    pub close: bool,
}

fn line<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let l = &buf[..end];
    *buf = &buf[end + 1..];
    Some(l.strip_suffix(b"\r").unwrap_or(l))
}

/// Reads the responses in `bytes`; `methods` are the methods of the requests in order
/// (a response to `HEAD` has no body). Returns them and whether bytes were left that are
/// no response.
pub fn read_responses(mut bytes: &[u8], methods: &[Vec<u8>]) -> (Vec<Response>, bool) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(status_line) = line(&mut bytes) else { return (out, true) };
        let code = status_line
            .strip_prefix(b"HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok());
        let Some(status) = code else { return (out, true) };
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            let Some(l) = line(&mut bytes) else { return (out, true) };
            if l.is_empty() {
                break;
            }
            let Some(colon) = l.iter().position(|&b| b == b':') else { return (out, true) };
            let name = &l[..colon];
            let value = String::from_utf8_lossy(&l[colon + 1..]).trim().to_ascii_lowercase();
            if name.eq_ignore_ascii_case(b"content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.ends_with("chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                close = value.split(',').any(|t| t.trim() == "close");
            }
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let head = methods.get(out.len()).is_some_and(|m| m == b"HEAD");
        let mut body = Vec::new();
        if head || status == 204 || status == 304 || status == 101 {
        } else if chunked {
            loop {
                let Some(size) = line(&mut bytes) else { return (out, true) };
                let size = String::from_utf8_lossy(size);
                let size = size.split(';').next().unwrap_or("").trim();
                let Ok(n) = usize::from_str_radix(size, 16) else { return (out, true) };
                if n == 0 {
                    // Trailer fields, then the empty line.
                    while let Some(l) = line(&mut bytes) {
                        if l.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                if bytes.len() < n {
                    return (out, true);
                }
                body.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                let _ = line(&mut bytes);
            }
        } else if let Some(n) = length {
            let n = n.min(bytes.len());
            body.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        } else {
            body.extend_from_slice(bytes);
            bytes = &[];
        }
        out.push(Response { status, body, close });
    }
    (out, false)
}

/// The class word of a status: `2xx`, `4xx`, ...
fn class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// What the echo app says it saw.
#[derive(Deserialize)]
struct Seen {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| u32::from(c).min(255) as u8).collect()
}

/// Where what the echo app saw differs from the expected request (None: the body is not
/// the echo app's JSON, or everything matched).
fn app_difference(body: &[u8], want: &crate::case::ExpectedRequest) -> Option<String> {
    let seen: Seen = serde_json::from_slice(body).ok()?;
    if latin1(&seen.method) != want.method {
        return Some(String::from("method"));
    }
    if latin1(&seen.uri) != want.uri {
        return Some(String::from("uri"));
    }
    if latin1(&seen.body) != want.body {
        return Some(String::from("body"));
    }
    let mut seen_headers: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (n, v) in &seen.headers {
        seen_headers.insert(latin1(&n.to_ascii_uppercase()), latin1(v));
    }
    let mut want_headers: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (n, v) in &want.headers {
        let key: Vec<u8> =
            n.iter().map(|&b| if b == b'_' { b'-' } else { b.to_ascii_uppercase() }).collect();
        // Repeated fields reach the application joined with a comma.
        want_headers
            .entry(key)
            .and_modify(|prev| {
                prev.push(b',');
                prev.extend_from_slice(v);
            })
            .or_insert_with(|| v.clone());
    }
    for (n, v) in &want_headers {
        if n == b"CONTENT-LENGTH" || n == b"TRANSFER-ENCODING" || n == b"CONNECTION" {
            continue;
        }
        match seen_headers.get(n) {
            Some(s) if s == v => {}
            _ => return Some(format!("header {}", String::from_utf8_lossy(n))),
        }
    }
    None
}

/// Sums up an exchange in the words of [`expected`], with the app check against `want`;
/// an observation that falls short of `expected` only because the server closed after a
/// response saying `Connection: close` is given as `expected` (see [`agrees`]).
pub fn observe(
    ex: &Exchange,
    methods: &[Vec<u8>],
    want: Option<&[crate::case::ExpectedRequest]>,
    expected: &str,
) -> String {
    let (responses, garbage) = read_responses(&ex.bytes, methods);
    let closed = responses.last().is_some_and(|r| r.close);
    let mut words: Vec<String> = responses.iter().map(|r| class(r.status)).collect();
    if words.is_empty() {
        words.push(String::from("none"));
    }

    if garbage {
        words.push(String::from("+garbage"));
    }
    if ex.timed_out {
        words.push(String::from("+timeout"));
    }
    if let Some(want) = want {
        for (r, w) in responses.iter().zip(want) {
            if r.status / 100 != 2 {
                continue;
            }
            if let Some(what) = app_difference(&r.body, w) {
                words.push(format!("+app({what})"));
                break;
            }
        }
    }
    let words = words.join(" ");
    if closed && agrees(expected, &words, true) { expected.to_string() } else { words }
}

/// Whether a request lets the connection persist (RFC 9112 §9.3), from its version and
/// `Connection` fields.
fn persists(r: &crate::case::ExpectedRequest) -> bool {
    let tokens: Vec<String> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    if tokens.iter().any(|t| t == "close") {
        return false;
    }
    r.version >= (1, 1) || tokens.iter().any(|t| t == "keep-alive")
}

/// The expected observation of a case, and the requests whose echo is checked.
pub fn expected(case: &Case) -> (String, Vec<crate::case::ExpectedRequest>) {
    match &case.expect {
        Expectation::Requests(reqs) => {
            let n = reqs.iter().position(|r| !persists(r)).map_or(reqs.len(), |i| i + 1);
            let words: Vec<&str> = vec!["2xx"; n];
            let text = if words.is_empty() { String::from("none") } else { words.join(" ") };
            (text, reqs[..n].to_vec())
        }
        Expectation::Error(class) => {
            // The core's reading of the same bytes says how many requests come whole
            // before the error, and whether the error comes after a head was read.
            let (before, head_read, status) = settings::proto_config(&case.settings)
                .ok()
                .map(|cfg| {
                    let o = replay::replay(&Arc::new(cfg), Peer::Unix, &[&case.bytes]);
                    let complete = o.requests.iter().filter(|r| r.complete).count();
                    let head_read = o.requests.len() > complete;
                    match o.end {
                        End::Error { class: c, status, .. } if c == class => {
                            (complete, head_read, Some(status))
                        }
                        End::Error { .. } => (complete, head_read, None),
                        _ => (0, false, None),
                    }
                })
                .unwrap_or((0, false, None));
            let mut words = vec!["2xx"; before];
            words.push(match (class.as_str(), status) {
                // The client went away in the middle of a head: nobody to answer
                // (gunicorn: "Ignored premature client disconnection").
                ("NoMoreData", _) if !head_read => "none",
                // The core's status for the class, where the core agrees with the case
                // (`505` for an unsupported major version, RFC 9110 §15.6.6).
                (_, Some(s)) if s >= 500 => "5xx",
                (_, Some(_)) => "4xx",
                ("UnsupportedTransferCoding", _) => "5xx",
                _ => "4xx",
            });
            if words.len() > 1 && words.last() == Some(&"none") {
                words.pop();
            }
            (words.join(" "), Vec::new())
        }
    }
}

/// The methods of the requests in a case's bytes, as far as the core reads them.
fn methods(case: &Case) -> Vec<Vec<u8>> {
    match &case.expect {
        Expectation::Requests(reqs) => reqs.iter().map(|r| r.method.clone()).collect(),
        Expectation::Error(_) => settings::proto_config(&case.settings)
            .ok()
            .map(|cfg| {
                replay::replay(&Arc::new(cfg), Peer::Unix, &[&case.bytes])
                    .requests
                    .iter()
                    .map(|r| r.method.clone())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The PROXY header sent in front of a case.
fn proxy_header(p: Proxy, opts: &WireOptions) -> Vec<u8> {
    let port = opts.target.port();
    match p {
        Proxy::V1 => format!("PROXY TCP4 192.0.2.10 127.0.0.1 40000 {port}\r\n").into_bytes(),
        Proxy::V2 => {
            let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
            h.extend_from_slice(&[192, 0, 2, 10, 127, 0, 0, 1]);
            h.extend_from_slice(&40000u16.to_be_bytes());
            h.extend_from_slice(&port.to_be_bytes());
            h
        }
    }
}

/// The bytes to send for a case, or None when the case needs settings the server was not
/// started with.
pub fn bytes_for(case: &Case, opts: &WireOptions) -> Option<Vec<u8>> {
    match opts.proxy {
        None => case.settings.is_empty().then(|| case.bytes.clone()),
        Some(p) => {
            if case.settings.is_empty() {
                let mut b = proxy_header(p, opts);
                b.extend_from_slice(&case.bytes);
                return Some(b);
            }
            let want = match p {
                Proxy::V1 => "v1",
                Proxy::V2 => "v2",
            };
            let only_proxy =
                case.settings.keys().all(|k| k == "proxy_protocol" || k == "proxy_allow_ips");
            let mode = case.settings.get("proxy_protocol").and_then(|v| v.as_str());
            (only_proxy && mode == Some(want)).then(|| case.bytes.clone())
        }
    }
}

/// One case over the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireResult {
    /// The case name.
    pub case: String,
    /// What the corpus says should come back.
    pub expected: String,
    /// What came back (whole), or `split: ...` when a way of sending changed it.
    pub observed: String,
}

/// Runs one case with every way of sending.
pub fn run_case(case: &Case, bytes: &[u8], opts: &WireOptions) -> WireResult {
    let (expected, want) = expected(case);
    let methods = methods(case);
    let mut whole = None;
    let mut observed = String::new();
    for send in SENDS {
        let obs = match exchange(opts, &send.pieces(bytes)) {
            Ok(ex) => observe(&ex, &methods, Some(&want), &expected),
            Err(e) => format!("error ({e})"),
        };
        match &whole {
            None => {
                observed = obs.clone();
                whole = Some(obs);
            }
            Some(w) if *w != obs => {
                observed = format!("split: whole {w}, {send} {obs}");
                break;
            }
            Some(_) => {}
        }
    }
    WireResult { case: case.name.clone(), expected, observed }
}

/// Whether an observation is what was expected. A server may close the connection after
/// any response that says `Connection: close` (RFC 9112 §9.6; gunicorn's sync worker does
/// after every one): the requests after it then get no answer, which is not a difference.
pub fn agrees(expected: &str, observed: &str, closed: bool) -> bool {
    if expected == observed {
        return true;
    }
    if !closed {
        return false;
    }
    let (want, got): (Vec<&str>, Vec<&str>) =
        (expected.split(' ').collect(), observed.split(' ').collect());
    got.len() < want.len() && want[..got.len()] == got[..] && got.iter().all(|w| w.len() == 3)
}

/// One entry of a wire ledger.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WireEntry {
    /// The case name.
    pub case: String,
    /// What the corpus expects, in observation words.
    pub expected: String,
    /// What the server does.
    pub observed: String,
    /// Why (for ferrocorn: the RFC section or docs/compat.md row); optional for the
    /// servers we only compare with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct WireLedgerFile {
    #[serde(default)]
    divergence: Vec<WireEntry>,
}

/// Loads a wire ledger (a missing file is empty).
pub fn load_ledger(path: &Path) -> Result<BTreeMap<String, WireEntry>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: WireLedgerFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for e in file.divergence {
        if out.insert(e.case.clone(), e).is_some() {
            return Err(format!("{}: a case listed twice", path.display()));
        }
    }
    Ok(out)
}

/// A whole run.
#[derive(Clone, Debug, Default)]
pub struct WireReport {
    /// Every case that ran, by name.
    pub results: Vec<WireResult>,
    /// Cases not run (settings the server does not have).
    pub skipped: usize,
    /// `(case, what is wrong)`.
    pub failures: Vec<(String, String)>,
    /// Cases that differ as the ledger says.
    pub divergences: usize,
    /// The ledger as it should be after this run (old reasons kept).
    pub ledger: BTreeMap<String, WireEntry>,
    /// The TOML of entries to add or change, and the names of entries to remove.
    pub ledger_diff: String,
}

impl WireReport {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.results.len()
            - self.divergences
            - self
                .failures
                .iter()
                .filter(|(c, _)| self.results.iter().any(|r| &r.case == c))
                .count()
    }

    /// The summary line of the core replay.
    pub fn summary(&self) -> String {
        format!(
            "conformance: {} passed, {} failed, {} divergences (ledger)",
            self.passed(),
            self.failures.len(),
            self.divergences
        )
    }

    /// Whether nothing failed.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the cases against the server and judges them with the ledger at `ledger_path`.
pub fn run(cases: &[Case], opts: &WireOptions, ledger_path: &Path) -> WireReport {
    let mut report = WireReport::default();
    let ledger = match load_ledger(ledger_path) {
        Ok(l) => l,
        Err(e) => {
            report.failures.push((String::from("ledger"), e));
            BTreeMap::new()
        }
    };
    let mut diff = String::new();
    for case in cases {
        let Some(bytes) = bytes_for(case, opts) else {
            report.skipped += 1;
            continue;
        };
        let r = run_case(case, &bytes, opts);
        let listed = ledger.get(&r.case);
        let agrees = r.observed == r.expected;
        match listed {
            None if agrees => {}
            None => report.failures.push((
                r.case.clone(),
                format!("expected {:?}, observed {:?} (not in the ledger)", r.expected, r.observed),
            )),
            Some(e) if agrees => {
                report.failures.push((r.case.clone(), format!("listed as {:?} but now passes", e.observed)));
                let _ = writeln!(diff, "- {} (now passes)", r.case);
            }
            Some(e) if e.observed == r.observed && e.expected == r.expected => report.divergences += 1,
            Some(e) => report.failures.push((
                r.case.clone(),
                format!(
                    "the ledger says expected {:?}, observed {:?}; now expected {:?}, observed {:?}",
                    e.expected, e.observed, r.expected, r.observed
                ),
            )),
        }
        if !agrees {
            let reason = listed.map(|e| e.reason.clone()).unwrap_or_default();
            let entry = WireEntry {
                case: r.case.clone(),
                expected: r.expected.clone(),
                observed: r.observed.clone(),
                reason,
            };
            if listed != Some(&entry) {
                let _ = write!(diff, "+ {}", entry_toml(&entry));
            }
            report.ledger.insert(r.case.clone(), entry);
        }
        report.results.push(r);
    }
    for name in ledger.keys() {
        if !report.results.iter().any(|r| &r.case == name)
            && !cases.iter().any(|c| &c.name == name && bytes_for(c, opts).is_none())
        {
            report
                .failures
                .push((name.clone(), String::from("listed in the ledger but no such case ran")));
            let _ = writeln!(diff, "- {name} (no such case)");
        }
    }
    report.ledger_diff = diff;
    report
}

fn entry_toml(e: &WireEntry) -> String {
    let file = WireLedgerFile { divergence: vec![e.clone()] };
    toml::to_string(&file).unwrap_or_default()
}

/// The comment lines on top of a blessed ledger.
pub fn ledger_header() -> String {
    String::from(
        "# What this server does differently from the request corpora over the wire, written by\n\
         # `ferrocorn-conformance --target HOST:PORT --ledger FILE --bless` (see conformance/README.md,\n\
         # \"Over the wire\"). `expected` and `observed` are status classes in order (`none`: no\n\
         # response), `+garbage`/`+timeout`/`+app(...)` what else was wrong, `split:` a result\n\
         # that changed with the way the bytes were sent. Checked by the wire tests; a reason\n\
         # written here is kept when the file is blessed again.\n\n",
    )
}

/// Writes the ledger of a run to `path`, with `header` (comment lines) on top.
pub fn bless(report: &WireReport, path: &Path, header: &str) -> std::io::Result<()> {
    let file = WireLedgerFile { divergence: report.ledger.values().cloned().collect() };
    let body = toml::to_string(&file).map_err(std::io::Error::other)?;
    std::fs::write(path, format!("{header}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_responses_and_skips_interim_ones() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nHTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbye";
        let (r, garbage) = read_responses(bytes, &[b"GET".to_vec(), b"GET".to_vec()]);
        assert!(!garbage);
        assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 400]);
        assert_eq!(r[1].body, b"ab");
        assert_eq!(r[2].body, b"bye");
        let (r, garbage) = read_responses(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            &[b"HEAD".to_vec()],
        );
        assert_eq!(r.len(), 2, "a HEAD response has no body");
        assert!(!garbage);
        assert!(read_responses(b"junk\r\n", &[]).1);
    }

    #[test]
    fn pieces_concatenate_back() {
        let data: Vec<u8> = (0..2000u32).map(|i| if i % 10 == 9 { b'\n' } else { b'a' }).collect();
        for s in SENDS {
            let p = s.pieces(&data);
            assert!(p.len() <= MAX_PIECES && p.iter().all(|x| !x.is_empty()), "{s}");
            assert_eq!(p.concat(), data, "{s}");
        }
    }
}
