//! Table tests of the connection: raw bytes in, a one-line-per-event log out.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::config::{Limits, ProtoConfig, UnderscoreHeaders};
use crate::conn::{Connection, Event};
use crate::net::{AllowList, Peer};

fn esc(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) { format!("{}", c as char) } else { format!("\\x{c:02x}") }
        })
        .collect()
}

/// Runs `input` whole, then EOF; renders every event.
fn log_with(cfg: ProtoConfig, peer: Peer, input: &[u8]) -> String {
    let mut conn = Connection::new(Arc::new(cfg), peer);
    conn.receive(input);
    conn.receive_eof();
    let mut out = Vec::new();
    loop {
        match conn.next_event() {
            Ok(Event::Request(h)) => {
                let mut line = format!(
                    "{} {} {}.{}",
                    esc(h.method()),
                    esc(h.target()),
                    h.version.major,
                    h.version.minor
                );
                for (n, v) in h.headers() {
                    line += &format!(" [{}={}]", esc(n), esc(v));
                }
                line +=
                    &format!(" body={:?} ka={} 100={}", h.body, h.keep_alive, h.expect_continue);
                if let Some(s) = h.scheme {
                    line += &format!(" scheme={}", s.as_str());
                }
                out.push(line);
            }
            Ok(Event::Data(d)) => out.push(format!("data {}", esc(d))),
            Ok(Event::EndOfMessage(t)) => {
                let mut line = String::from("end");
                for (n, v) in t.fields() {
                    line += &format!(" [{}={}]", esc(n), esc(v));
                }
                out.push(line);
            }
            Ok(Event::Paused) => {
                if conn.start_next_cycle().is_err() {
                    out.push("must-close".into());
                    break;
                }
            }
            Ok(Event::ConnectionClosed) => {
                out.push("closed".into());
                break;
            }
            Ok(Event::NeedData) => unreachable!("NeedData after EOF"),
            Err(e) => {
                out.push(format!("error {} {}", e.gunicorn_class(), e.status()));
                break;
            }
        }
    }
    out.join("\n")
}

fn log(input: &[u8]) -> String {
    log_with(ProtoConfig::default(), Peer::Unix, input)
}

fn err(input: &[u8]) -> String {
    let l = log(input);
    l.lines().last().unwrap_or_default().into()
}

#[test]
fn simple_get_and_pipelining() {
    assert_eq!(
        log(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /d HTTP/1.1\r\n\r\n"),
        "GET /a?b 1.1 [Host=x] body=Empty ka=true 100=false\nend\n\
         GET /c 1.1 [Host=x] [Connection=close] body=Empty ka=false 100=false\nend\nmust-close"
    );
}

#[test]
fn bodies() {
    assert_eq!(
        log(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n"),
        "POST / 1.1 [Host=x] [Content-Length=5] body=Length(5) ka=true 100=false\ndata hello\nend\n\
         GET / 1.0 body=Empty ka=false 100=false\nend\nmust-close"
    );
    assert_eq!(
        log(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\"\r\nhello\r\n0\r\nVary: *\r\n\r\n"),
        "POST / 1.1 [Host=x] [Transfer-Encoding=chunked] body=Chunked ka=true 100=false\ndata hello\nend [Vary=*]\nclosed"
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nhello"),
        "error NoMoreData 400"
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"),
        "error ChunkMissingTerminator 400"
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"),
        "error ChunkMissingTerminator 400"
    );
    assert_eq!(err(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n"), "error InvalidHeaderName 400");
}

#[test]
fn framing_rules() {
    let te = |v: &str| {
        err(format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n\r\n0\r\n\r\n")
            .as_bytes())
    };
    assert_eq!(te("chunked"), "closed");
    assert_eq!(te(",chunked"), "closed");
    assert_eq!(te("gzip, chunked"), "error UnsupportedTransferCoding 501");
    assert_eq!(te("chunked, gzip"), "error InvalidHeader 400");
    assert_eq!(te("chunked, chunked"), "error InvalidHeader 400");
    assert_eq!(te("gzip"), "error InvalidHeader 400");
    assert_eq!(te("foo, chunked"), "error UnsupportedTransferCoding 501");
    assert_eq!(te("\x0bchunked"), "error InvalidHeader 400");
    let cl = |v: &str| {
        err(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\n").as_bytes())
    };
    for bad in ["+1", "-1", "0x1", "1 1", "1, 1", "", "18446744073709551616"] {
        assert_eq!(cl(bad), "error InvalidHeader 400", "{bad}");
    }
    assert_eq!(cl("000"), "closed");
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"),
        "error InvalidHeader 400"
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "error InvalidHeader 400"
    );
    assert_eq!(
        err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "error InvalidHeader 400"
    );
}

#[test]
fn request_line_rules() {
    assert_eq!(err(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), "closed");
    assert_eq!(err(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), "error InvalidRequestLine 400");
    for bad in [
        &b"GET  / HTTP/1.1"[..],
        b"GET /",
        b"GET /\tHTTP/1.1",
        b"GET /#f HTTP/1.1",
        b"GET /\x80 HTTP/1.1",
        b"GET * HTTP/1.1",
        b"GET x:80 HTTP/1.1",
        b"CONNECT / HTTP/1.1",
        b"GET http://u@h/ HTTP/1.1",
        b"GET \n/ HTTP/1.1",
        b"GET /\rx HTTP/1.1",
    ] {
        let mut req = bad.to_vec();
        req.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        assert_eq!(err(&req), "error InvalidRequestLine 400", "{}", esc(bad));
    }
    for bad in [&b"get"[..], b"G", b"GE#T", b"G(T", b""] {
        let mut req = bad.to_vec();
        req.extend_from_slice(b" / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(err(&req), "error InvalidRequestMethod 400", "{}", esc(bad));
    }
    // A bare CR is not a line end: it stays in the element that holds it, which rejects it.
    assert_eq!(err(b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n"), "error InvalidHTTPVersion 400");
    assert_eq!(err(b"G\rET / HTTP/1.1\r\nHost: x\r\n\r\n"), "error InvalidRequestMethod 400");
    for bad in ["http/1.1", "HTTP/1.10", "HTTP/1", "HTTP/1.x", "HTTP/11", "HTTP /1.1"] {
        assert_eq!(
            err(format!("GET / {bad}\r\nHost: x\r\n\r\n").as_bytes()),
            "error InvalidHTTPVersion 400",
            "{bad}"
        );
    }
}

#[test]
fn higher_minor_versions_are_http_11_and_other_majors_505() {
    // RFC 9110 §2.5: HTTP/1.2 ... HTTP/1.9 are processed as HTTP/1.1: Host required,
    // persistent unless `Connection: close`, chunked bodies, 100-continue. The head keeps
    // the version sent (SERVER_PROTOCOL is the client's, PEP 3333).
    for minor in 2..=9 {
        assert_eq!(
            log(format!(
                "GET / HTTP/1.{minor}\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            .as_bytes()),
            format!(
                "GET / 1.{minor} [Host=x] body=Empty ka=true 100=false\nend\n\
                 GET /b 1.1 [Host=x] body=Empty ka=true 100=false\nend\nclosed"
            )
        );
        assert_eq!(
            err(format!("GET / HTTP/1.{minor}\r\n\r\n").as_bytes()),
            "error InvalidHeader 400",
            "1.{minor} needs Host as 1.1 does"
        );
    }
    assert_eq!(
        log(b"POST / HTTP/1.2\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        "POST / 1.2 [Host=x] [Transfer-Encoding=chunked] [Expect=100-continue] [Connection=close] \
         body=Chunked ka=false 100=true\ndata hi\nend\nmust-close"
    );
    // RFC 9110 §15.6.6: another major version is 505 (gunicorn: 400 InvalidHTTPVersion).
    for other in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/0.0", "HTTP/9.9"] {
        assert_eq!(
            err(format!("GET / {other}\r\nHost: x\r\n\r\n").as_bytes()),
            "error InvalidHTTPVersion 505",
            "{other}"
        );
    }
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    let e = conn.next_event().unwrap_err();
    let mut out = Vec::new();
    crate::response::error_response(&e, &mut out);
    let page = String::from_utf8(out).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\n"),
        "{page}"
    );
    // permit_unconventional_http_version serves them, as gunicorn's setting does.
    let permit = || ProtoConfig {
        parser: crate::config::ParserPolicy {
            permit_unconventional_version: true,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        log_with(permit(), Peer::Unix, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        "GET / 2.0 [Host=x] body=Empty ka=true 100=false\nend\nclosed"
    );
    assert_eq!(
        log_with(permit(), Peer::Unix, b"GET / HTTP/0.9\r\n\r\n"),
        "GET / 0.9 body=Empty ka=false 100=false\nend\nmust-close"
    );
    assert_eq!(err(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), "closed");
    assert_eq!(err(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), "must-close");
    assert_eq!(err(b"GET http://h:8/p?q HTTP/1.1\r\nHost: x\r\n\r\n"), "closed");
    assert_eq!(
        err(&[b"GET /".as_slice(), &[b'a'; 4080], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat()),
        "closed"
    );
    assert_eq!(
        err(&[b"GET /".as_slice(), &[b'a'; 4081], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat()),
        "error LimitRequestLine 414"
    );
}

#[test]
fn field_rules() {
    let f = |line: &[u8]| {
        err(&[b"GET / HTTP/1.1\r\nHost: x\r\n".as_slice(), line, b"\r\n\r\n"].concat())
    };
    assert_eq!(f(b"A: b"), "closed");
    assert_eq!(f(b"A:"), "closed");
    assert_eq!(f(b"A: \x80\xff"), "closed");
    assert_eq!(f(b"A : b"), "error InvalidHeaderName 400");
    assert_eq!(f(b": b"), "error InvalidHeader 400");
    assert_eq!(f(b"A b"), "error InvalidHeader 400");
    assert_eq!(f(b"A\x85: b"), "error InvalidHeaderName 400");
    for ctl in [0u8, 1, 0x0b, 0x0c, 0x1f, 0x7f] {
        assert_eq!(
            f(&[b"A: x".as_slice(), &[ctl], b"y"].concat()),
            "error InvalidHeader 400",
            "{ctl}"
        );
    }
    assert_eq!(f(b"A: b\nB: c"), "error InvalidHeader 400");
    assert_eq!(f(b"A: b\rB: c"), "error InvalidHeader 400");
    assert_eq!(f(b"A: b\r\n c"), "error ObsoleteFolding 400");
    assert_eq!(f(b"Host: y"), "error InvalidHeader 400");
    assert_eq!(f(b"Content-Type: a\r\nContent-Type: b"), "error InvalidHeader 400");
    assert_eq!(f(b"Expect: 100-continue"), "closed");
    assert_eq!(f(b"Expect: 100-continuex"), "error ExpectationFailed 417");
    assert_eq!(
        log(b"GET / HTTP/1.1\r\nHost: x\r\nX_Y: 1\r\nA: 2\r\n\r\n").lines().next().unwrap(),
        "GET / 1.1 [Host=x] [A=2] body=Empty ka=true 100=false"
    );
    assert_eq!(
        log(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n").lines().next().unwrap(),
        "GET / 1.1 [Host=x] [Expect=100-Continue] body=Empty ka=true 100=true"
    );
}

#[test]
fn host_rules() {
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), "error InvalidHeader 400");
    assert_eq!(err(b"GET / HTTP/1.0\r\n\r\n"), "must-close");
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), "closed");
    for bad in ["a b", "a/b", "u@h", "h:x", "[::1"] {
        assert_eq!(
            err(format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n").as_bytes()),
            "error InvalidHeader 400",
            "{bad}"
        );
    }
}

#[test]
fn policies() {
    let folding = ProtoConfig {
        parser: crate::config::ParserPolicy { permit_obsolete_folding: true, ..Default::default() },
        ..Default::default()
    };
    assert_eq!(
        log_with(
            folding,
            Peer::Unix,
            b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n  c \r\n\td\r\nB: e\r\n\r\n"
        )
        .lines()
        .next()
        .unwrap(),
        "GET / 1.1 [Host=x] [A=b c d] [B=e] body=Empty ka=true 100=false"
    );
    let refuse = ProtoConfig {
        headers: crate::config::HeaderPolicy {
            underscore: UnderscoreHeaders::Refuse,
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        log_with(refuse, Peer::Unix, b"GET / HTTP/1.1\r\nHost: x\r\nX_Y: 1\r\n\r\n"),
        "error InvalidHeaderName 400"
    );
    let limits = ProtoConfig { limits: Limits::from_gunicorn(4094, 2, 8190), ..Default::default() };
    assert_eq!(
        log_with(limits, Peer::Unix, b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"),
        "error LimitRequestHeaders 431"
    );
    // Secure-scheme headers count only from trusted peers.
    let untrusted = Peer::Tcp("10.1.1.1:5000".parse().unwrap());
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n";
    assert!(!log_with(ProtoConfig::default(), untrusted, req).contains("scheme="));
    assert!(
        log_with(ProtoConfig::default(), Peer::Tcp("127.0.0.1:5000".parse().unwrap()), req)
            .contains("scheme=https")
    );
    let all = ProtoConfig {
        trust: crate::config::TrustPolicy {
            forwarded_allow: AllowList::any(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        log_with(all, untrusted, b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n"),
        "error InvalidSchemeHeaders 400"
    );
}

#[test]
fn error_page_for_a_bad_request_line_matches_gunicorn() {
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(b"GET\r\n\r\n");
    let e = conn.next_event().unwrap_err();
    let mut out = Vec::new();
    crate::response::error_response(&e, &mut out);
    let body = "<html>\n  <head>\n    <title>Bad Request</title>\n  </head>\n  <body>\n    <h1><p>Bad Request</p></h1>\n    \
                Invalid Request Line &#x27;Invalid HTTP request line: &#x27;GET&#x27;&#x27;\n  </body>\n</html>\n";
    let expected = format!(
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn proxy_header_only_from_allowed_peers() {
    use crate::config::{ProxyMode, ProxyPolicy};
    let cfg = || ProtoConfig {
        proxy: ProxyPolicy { mode: ProxyMode::V1, allow: AllowList::localhost() },
        ..Default::default()
    };
    let req = b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        log_with(cfg(), Peer::Tcp("192.0.2.7:5000".parse().unwrap()), req),
        "error ForbiddenProxyRequest 403"
    );
    // From an allowed peer the addresses apply to every request of the connection.
    let mut conn = Connection::new(Arc::new(cfg()), Peer::Tcp("127.0.0.1:5000".parse().unwrap()));
    conn.receive(req);
    for _ in 0..2 {
        let Ok(Event::Request(h)) = conn.next_event() else { panic!() };
        assert_eq!(h.proxy.as_ref().and_then(|p| p.source), Some("10.0.0.1:1000".parse().unwrap()));
        assert!(matches!(conn.next_event(), Ok(Event::EndOfMessage(_))));
        assert!(matches!(conn.next_event(), Ok(Event::Paused)));
        conn.start_next_cycle().unwrap();
    }
}

#[test]
fn unread_bodies_are_skipped_within_a_budget_never_parsed() {
    use crate::conn::Discard;
    let body_then_next = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 24\r\n\r\nGET /smuggled HTTP/1.1\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(body_then_next);
    assert!(matches!(conn.next_event(), Ok(Event::Request(_))));
    // The body was not read: the next request cannot start yet.
    assert_eq!(conn.start_next_cycle(), Err(crate::conn::UsageError::NotDone));
    let mut budget = 64;
    assert_eq!(conn.discard_body(&mut budget), Ok(Discard::Done));
    assert_eq!(budget, 40);
    assert!(matches!(conn.next_event(), Ok(Event::Paused)));
    conn.start_next_cycle().unwrap();
    let Ok(Event::Request(h)) = conn.next_event() else { panic!() };
    assert_eq!(h.target(), b"/next");

    // Chunked, partly received, over budget: the connection must close.
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n");
    assert!(matches!(conn.next_event(), Ok(Event::Request(_))));
    let mut budget = 10;
    assert_eq!(conn.discard_body(&mut budget), Ok(Discard::NeedData));
    conn.receive(b"10\r\n0123456789abcdef\r\n0\r\n\r\n");
    assert_eq!(conn.discard_body(&mut budget), Ok(Discard::OverBudget));
    assert!(!conn.keep_alive());
}

// ---- the send side

fn response(status: &[u8], headers: &[(&[u8], &[u8])]) -> crate::response::ResponseHead {
    crate::response::ResponseHead::from_app(status, headers.iter().copied()).unwrap()
}

/// Reads one whole request from `conn` (its bytes already received).
fn read_request(conn: &mut Connection) {
    assert!(matches!(conn.next_event(), Ok(Event::Request(_))));
    loop {
        match conn.next_event() {
            Ok(Event::Data(_)) => {}
            Ok(Event::EndOfMessage(_)) => break,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_connection_frames_the_response_and_answers_reuse() {
    use crate::conn::UsageError;
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Vec::new();
    let head = response(b"200 OK", &[]);
    // Nothing to answer before the request head.
    assert_eq!(conn.send_response(&head, b"", b"", &mut out), Err(UsageError::NoRequest));
    assert_eq!(conn.send_data(1), Err(UsageError::NoResponse));
    read_request(&mut conn);
    let f = conn.send_response(&head, b"", b"", &mut out).unwrap();
    assert_eq!(f.body, crate::response::BodyFraming::Chunked);
    assert_eq!(conn.send_response(&head, b"", b"", &mut out), Err(UsageError::ResponseStarted));
    conn.write_data(b"hello", &mut out).unwrap();
    // The request was read whole, the response was not ended.
    assert_eq!(conn.start_next_cycle(), Err(UsageError::ResponseNotEnded));
    out.extend_from_slice(conn.end_response().unwrap().last);
    assert_eq!(conn.end_response().unwrap().last, b"");
    assert_eq!(
        esc(&out),
        "HTTP/1.1 200 OK\\x0d\\x0aConnection: keep-alive\\x0d\\x0aTransfer-Encoding: chunked\\x0d\\x0a\\x0d\\x0a5\\x0d\\x0ahello\\x0d\\x0a0\\x0d\\x0a\\x0d\\x0a"
    );
    assert_eq!(conn.body_sent(), 5);
    assert!(conn.keep_alive());
    conn.start_next_cycle().unwrap();
    assert!(!conn.response_started());
    let Ok(Event::Request(h)) = conn.next_event() else { panic!() };
    assert_eq!(h.target(), b"/b");
}

#[test]
fn a_short_body_or_the_servers_wish_ends_the_connection() {
    use crate::conn::UsageError;
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Content-Length 5, 3 bytes sent: the client would read the next response as body.
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(req);
    read_request(&mut conn);
    let mut out = Vec::new();
    conn.send_response(&response(b"200 OK", &[(b"Content-Length", b"5")]), b"", b"", &mut out)
        .unwrap();
    assert_eq!(conn.send_data(3).unwrap().take, 3);
    assert_eq!(conn.body_remaining(), Some(2));
    assert!(conn.keep_alive());
    assert!(conn.end_response().unwrap().must_close());
    assert!(!conn.keep_alive());
    assert_eq!(conn.start_next_cycle(), Err(UsageError::MustClose));

    // The server's wish before the response: the head says close.
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(req);
    read_request(&mut conn);
    conn.close_after_response();
    let mut out = Vec::new();
    let f = conn.send_response(&response(b"204 No Content", &[]), b"", b"", &mut out).unwrap();
    assert!(!f.keep_alive);
    assert!(esc(&out).contains("Connection: close"));
    conn.end_response().unwrap();
    assert_eq!(conn.start_next_cycle(), Err(UsageError::MustClose));

    // ... after the head went out (a stop, a failed write): the head said keep-alive,
    // the connection closes all the same.
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(req);
    read_request(&mut conn);
    let mut out = Vec::new();
    let f = conn.send_response(&response(b"204 No Content", &[]), b"", b"", &mut out).unwrap();
    assert!(f.keep_alive);
    conn.end_response().unwrap();
    conn.close_after_response();
    assert_eq!(conn.start_next_cycle(), Err(UsageError::MustClose));
}

#[test]
fn a_request_whose_body_failed_is_answered_and_closes() {
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert!(matches!(conn.next_event(), Ok(Event::Request(_))));
    assert!(conn.next_event().is_err());
    let mut out = Vec::new();
    let f = conn.send_response(&response(b"200 OK", &[]), b"", b"", &mut out).unwrap();
    assert!(!f.keep_alive);
    assert!(!conn.keep_alive());
}
