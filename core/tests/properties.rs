//! Properties of the request parser, over generated inputs:
//! - any split of the input gives the same events;
//! - a generated valid request, serialized, parses back to itself;
//! - no input panics, and the bytes held for a head never exceed what the limits allow.

use std::sync::Arc;

use ferrocorn_core::config::{Limits, ProtoConfig};
use ferrocorn_core::{Connection, Event, Peer};
use proptest::prelude::*;

/// A comparable record of everything the connection produced.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rec {
    Request {
        method: Vec<u8>,
        target: Vec<u8>,
        version: (u8, u8),
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Body(Vec<u8>),
    End(Vec<(Vec<u8>, Vec<u8>)>),
    Closed,
    Error(&'static str),
}

/// Feeds `chunks` one at a time, pulling events until each is consumed, then EOF.
/// Consecutive body bytes are merged, since their split legitimately follows the input's.
fn run(cfg: &Arc<ProtoConfig>, chunks: &[&[u8]]) -> (Vec<Rec>, usize) {
    let mut conn = Connection::new(cfg.clone(), Peer::Unix);
    let mut out = Vec::new();
    let mut max_buffered = 0;
    let mut chunks = chunks.iter();
    let mut eof = false;
    loop {
        let ev = conn.next_event();
        match ev {
            Ok(Event::NeedData) => {
                max_buffered = max_buffered.max(conn.buffered());
                match chunks.next() {
                    Some(c) => conn.receive(c),
                    None if !eof => {
                        eof = true;
                        conn.receive_eof();
                    }
                    None => unreachable!("NeedData after EOF"),
                }
            }
            Ok(Event::Request(h)) => out.push(Rec::Request {
                method: h.method().to_vec(),
                target: h.target().to_vec(),
                version: (h.version.major, h.version.minor),
                headers: h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
            }),
            Ok(Event::Data(d)) => match out.last_mut() {
                Some(Rec::Body(b)) => b.extend_from_slice(d),
                _ => out.push(Rec::Body(d.to_vec())),
            },
            Ok(Event::EndOfMessage(t)) => {
                out.push(Rec::End(t.fields().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()))
            }
            Ok(Event::Paused) => {
                if conn.start_next_cycle().is_err() {
                    break;
                }
            }
            Ok(Event::ConnectionClosed) => {
                out.push(Rec::Closed);
                break;
            }
            Ok(e) => panic!("an event this test does not know: {e:?}"),
            Err(e) => {
                out.push(Rec::Error(e.gunicorn_class()));
                break;
            }
        }
    }
    (out, max_buffered)
}

fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    pts.sort_unstable();
    pts.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for p in pts {
        out.push(&input[last..p]);
        last = p;
    }
    out.push(&input[last..]);
    out
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^`|~-]{1,12}"
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    // VCHAR / obs-text, with inner SP and HTAB; no leading or trailing whitespace.
    prop::collection::vec(prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff, Just(b' '), Just(b'\t')], 0..40)
        .prop_map(|mut v| {
            while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                v.remove(0);
            }
            while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                v.pop();
            }
            v
        })
}

#[derive(Clone, Debug)]
struct GenRequest {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    chunked: Option<Vec<usize>>,
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "M-SEARCH", "PROPFIND",
        ]),
        "(/[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,10}){1,4}(\\?[A-Za-z0-9=&/?%-]{0,20})?",
        0u8..=1,
        prop::collection::vec((token(), header_value()), 0..8),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::of(prop::collection::vec(1usize..64, 0..6)),
    )
        .prop_map(|(method, target, minor, headers, body, chunked)| {
            let headers = headers
                .into_iter()
                .filter(|(n, _)| {
                    let n = n.to_ascii_lowercase();
                    !n.contains('_')
                        && ![
                            "host",
                            "content-length",
                            "transfer-encoding",
                            "expect",
                            "content-type",
                            "connection",
                        ]
                        .contains(&n.as_str())
                        && !n.starts_with("x-forwarded-")
                })
                .collect();
            GenRequest {
                method: method.to_string(),
                target,
                minor,
                headers,
                body,
                chunked: chunked.filter(|_| minor == 1),
            }
        })
}

impl GenRequest {
    fn serialize(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.{}\r\nHost: example.com\r\n",
            self.method, self.target, self.minor
        )
        .into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        match &self.chunked {
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                for s in sizes {
                    let take = (*s).min(rest.len());
                    if take == 0 {
                        break;
                    }
                    out.extend_from_slice(format!("{take:x};ext=\"v\"\r\n").as_bytes());
                    out.extend_from_slice(&rest[..take]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[take..];
                }
                if !rest.is_empty() {
                    out.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
            }
            None => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
        }
        out
    }

    fn expected(&self) -> Vec<Rec> {
        let mut headers = vec![(b"Host".to_vec(), b"example.com".to_vec())];
        headers.extend(self.headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.clone())));
        let trailers = match self.chunked {
            Some(_) => {
                headers.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
                vec![(b"X-Trailer".to_vec(), b"yes".to_vec())]
            }
            None => {
                headers
                    .push((b"Content-Length".to_vec(), self.body.len().to_string().into_bytes()));
                vec![]
            }
        };
        let mut out = vec![Rec::Request {
            method: self.method.clone().into_bytes(),
            target: self.target.clone().into_bytes(),
            version: (1, self.minor),
            headers,
        }];
        if !self.body.is_empty() {
            out.push(Rec::Body(self.body.clone()));
        }
        out.push(Rec::End(trailers));
        out
    }
}

/// Bytes that look like requests, with the bytes that matter to HTTP parsing over-represented.
fn noisy_input() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        4 => any::<u8>().prop_map(|b| vec![b]),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b" ".to_vec()),
        1 => Just(b":".to_vec()),
        1 => Just(b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec()),
        1 => Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        1 => Just(b"Content-Length: 3\r\n".to_vec()),
        1 => Just(b"\r\n\r\n".to_vec()),
        1 => Just(b"5;a=b\r\nhello\r\n0\r\n\r\n".to_vec()),
    ];
    prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
}

fn small_limits() -> Arc<ProtoConfig> {
    let mut cfg = ProtoConfig::default();
    cfg.limits = Limits::from_gunicorn(64, 4, 48);
    Arc::new(cfg)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_round_trip(reqs in prop::collection::vec(request(), 1..4), points in prop::collection::vec(any::<usize>(), 0..8)) {
        let cfg = Arc::new(ProtoConfig::default());
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            bytes.extend(r.serialize());
            expected.extend(r.expected());
            if r.minor == 0 {
                // HTTP/1.0 without keep-alive ends the connection after this request.
                break;
            }
            if i == reqs.len() - 1 {
                expected.push(Rec::Closed);
            }
        }
        let (whole, _) = run(&cfg, &[&bytes]);
        prop_assert_eq!(&whole, &expected);
        let (split, _) = run(&cfg, &split_at_points(&bytes, &points));
        prop_assert_eq!(&split, &expected);
    }

    #[test]
    fn any_split_gives_the_same_events(input in noisy_input(), points in prop::collection::vec(any::<usize>(), 0..12)) {
        for cfg in [Arc::new(ProtoConfig::default()), small_limits()] {
            let (whole, _) = run(&cfg, &[&input]);
            let (split, _) = run(&cfg, &split_at_points(&input, &points));
            prop_assert_eq!(&whole, &split);
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            let (by_byte, _) = run(&cfg, &bytes);
            prop_assert_eq!(&whole, &by_byte);
        }
    }

    #[test]
    fn memory_is_bounded_by_the_limits(input in prop::collection::vec(prop_oneof![Just(b'a'), Just(b':'), Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'/')], 0..800), chunk in 1usize..200) {
        let cfg = small_limits();
        let mut input = input;
        input.splice(0..0, b"GET / HTTP/1.1\r\n".iter().copied());
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let (_, max_buffered) = run(&cfg, &chunks);
        // A head never waits for more bytes once the request line and header section
        // limits are passed: the buffer holds at most those plus one read.
        let l = cfg.limits;
        prop_assert!(max_buffered <= l.request_line + 2 + l.head_buffer() + chunk, "{max_buffered}");
    }
}

#[test]
fn a_full_size_head_trickled_byte_by_byte_parses() {
    // 150 KB of header fields fed one byte at a time (a rescan per byte would take minutes).
    let cfg = Arc::new(ProtoConfig::default());
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..99 {
        head.extend_from_slice(format!("X-F{i}: {}\r\n", "v".repeat(1500)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let mut conn = Connection::new(cfg, Peer::Unix);
    let mut requests = 0;
    for (i, b) in head.iter().enumerate() {
        conn.receive(std::slice::from_ref(b));
        match conn.next_event() {
            Ok(Event::NeedData) => {}
            Ok(Event::Request(h)) => {
                // Only the last byte (the final LF) completes the head.
                assert_eq!(i, head.len() - 1, "a Request before the end of the head");
                assert_eq!(
                    (h.header_count(), h.header(b"x-f98").map(<[u8]>::len)),
                    (100, Some(1500))
                );
                requests += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(requests, 1, "the head never gave a Request event");
}
