//! The keep-alive rule of `Connection`, against a small reference model written from the
//! RFCs and gunicorn's `should_close`, over generated exchanges: the request's version,
//! method and `Connection` tokens, whether its body was read or abandoned, the response's
//! status, `Content-Length` and body length, and the server's wish to close before or
//! after the response.

use std::sync::Arc;

use ferrocorn_core::response::ResponseHead;
use ferrocorn_core::{Connection, Discard, Event, Peer, ProtoConfig, UsageError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Exchange {
    http10: bool,
    method: &'static str,
    /// One `Connection` header per entry, each a list of tokens.
    connection: Vec<Vec<&'static str>>,
    /// Request body length (`Content-Length`), if any.
    request_body: Option<usize>,
    /// Skip the body with this budget instead of reading it.
    discard_budget: Option<u64>,
    status: u16,
    content_length: Option<u64>,
    /// Body bytes the application writes.
    written: u64,
    close_before: bool,
    close_after: bool,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    let token = prop::sample::select(vec![
        "close",
        "Close",
        "keep-alive",
        "KEEP-ALIVE",
        "upgrade",
        "te",
        "x",
    ]);
    let header = prop::collection::vec(token, 0..3);
    (
        (
            any::<bool>(),
            prop::sample::select(vec!["GET", "HEAD", "POST", "CONNECT", "OPTIONS"]),
            prop::collection::vec(header, 0..3),
            prop::option::of(0usize..40),
            prop::option::of(0u64..40),
        ),
        (
            prop::sample::select(vec![100u16, 101, 103, 200, 201, 204, 206, 304, 404, 500]),
            prop::option::of(0u64..20),
            0u64..25,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (http10, method, connection, request_body, discard_budget),
                (status, content_length, written, close_before, close_after),
            )| Exchange {
                http10,
                method,
                connection,
                request_body,
                discard_budget,
                status,
                content_length,
                written,
                close_before,
                close_after,
            },
        )
}

/// The reference model: may another request follow on this connection?
fn model(x: &Exchange) -> bool {
    let tokens: Vec<String> =
        x.connection.iter().flatten().map(|t| t.to_ascii_lowercase()).collect();
    let has = |t: &str| tokens.iter().any(|k| k == t);
    // RFC 9112 §9.3: close wins; HTTP/1.1 persists by default, HTTP/1.0 only when asked.
    // A CONNECT request never comes back to HTTP (RFC 9110 §9.3.6).
    let request = !has("close") && x.method != "CONNECT" && (!x.http10 || has("keep-alive"));
    // A body left unread past its budget is never parsed as a request: close.
    let abandoned =
        matches!((x.request_body, x.discard_budget), (Some(n), Some(b)) if n as u64 > b);
    let server = !x.close_before && !x.close_after;
    // Framing (gunicorn's is_chunked / _omits_body, and the CONNECT tunnel).
    let no_body = x.method == "HEAD" || x.status < 200 || x.status == 204 || x.status == 304;
    let tunnel = x.method == "CONNECT" && (200..300).contains(&x.status);
    let until_close = !no_body && (tunnel || (x.content_length.is_none() && x.http10));
    let short = !no_body && !tunnel && x.content_length.is_some_and(|n| x.written < n);
    request && !abandoned && server && !until_close && !short
}

fn request_bytes(x: &Exchange) -> Vec<u8> {
    let target = if x.method == "CONNECT" { "example.com:443" } else { "/" };
    let version = if x.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut r = format!("{} {target} {version}\r\nHost: example.com\r\n", x.method);
    for tokens in &x.connection {
        r += &format!("Connection: {}\r\n", tokens.join(", "));
    }
    if let Some(n) = x.request_body {
        r += &format!("Content-Length: {n}\r\n");
    }
    r += "\r\n";
    r += &"b".repeat(x.request_body.unwrap_or(0));
    // A pipelined request, to show the next cycle parses where the last one ended.
    r += "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n";
    r.into_bytes()
}

/// Runs the exchange through the connection; returns whether the next request was read
/// (start_next_cycle said yes), checking the connection's answers on the way.
fn run(x: &Exchange) -> Result<bool, TestCaseError> {
    let mut conn = Connection::new(Arc::new(ProtoConfig::default()), Peer::Unix);
    conn.receive(&request_bytes(x));
    prop_assert!(matches!(conn.next_event(), Ok(Event::Request(_))));
    if let Some(mut budget) = x.discard_budget {
        let d = conn.discard_body(&mut budget).unwrap();
        prop_assert!(matches!(d, Discard::Done | Discard::OverBudget));
    } else {
        loop {
            match conn.next_event().unwrap() {
                Event::Data(_) => {}
                Event::EndOfMessage(_) => break,
                e => return Err(TestCaseError::fail(format!("{e:?}"))),
            }
        }
    }
    if x.close_before {
        conn.close_after_response();
    }
    let status = format!("{} X", x.status);
    let cl = x.content_length.map(|n| n.to_string());
    let headers: Vec<(&[u8], &[u8])> =
        cl.iter().map(|v| (&b"Content-Length"[..], v.as_bytes())).collect();
    let head = ResponseHead::from_app(status.as_bytes(), headers.into_iter()).unwrap();
    let mut out = Vec::new();
    let framing = conn.send_response(&head, b"", b"", &mut out).unwrap();
    // The head says what the connection will do, as far as known before the body.
    let text = String::from_utf8_lossy(&out).into_owned();
    prop_assert_eq!(framing.keep_alive, conn.keep_alive());
    prop_assert_eq!(text.contains("Connection: keep-alive\r\n"), framing.keep_alive, "{}", text);
    let body = vec![b'x'; x.written as usize];
    conn.write_data(&body, &mut out).unwrap();
    conn.end_response().unwrap();
    if x.close_after {
        conn.close_after_response();
    }
    let answer = conn.keep_alive();
    let next = conn.start_next_cycle();
    prop_assert_eq!(next.is_ok(), answer);
    match next {
        Ok(()) => {
            let Ok(Event::Request(h)) = conn.next_event() else {
                return Err(TestCaseError::fail("the pipelined request did not follow"));
            };
            prop_assert_eq!(h.target(), b"/next");
        }
        Err(e) => prop_assert!(matches!(e, UsageError::MustClose | UsageError::NotDone), "{e:?}"),
    }
    Ok(answer)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn keep_alive_follows_the_reference_model(x in exchange()) {
        let got = run(&x)?;
        prop_assert_eq!(got, model(&x), "{:?}", x);
    }
}

/// Each input of the rule, alone, can end the connection (a model that always said
/// "close" would not pass this).
#[test]
fn each_input_can_decide() {
    let base = Exchange {
        http10: false,
        method: "GET",
        connection: vec![],
        request_body: None,
        discard_budget: None,
        status: 200,
        content_length: Some(3),
        written: 3,
        close_before: false,
        close_after: false,
    };
    assert!(run(&base).unwrap());
    let cases = [
        Exchange { http10: true, ..base.clone() },
        Exchange { connection: vec![vec!["x", "Close"]], ..base.clone() },
        Exchange { method: "CONNECT", status: 404, ..base.clone() },
        Exchange { request_body: Some(10), discard_budget: Some(4), ..base.clone() },
        Exchange { close_before: true, ..base.clone() },
        Exchange { close_after: true, ..base.clone() },
        Exchange {
            content_length: None,
            http10: true,
            connection: vec![vec!["keep-alive"]],
            ..base.clone()
        },
        Exchange { written: 2, ..base.clone() },
    ];
    for x in cases {
        assert!(!run(&x).unwrap(), "{x:?}");
        assert!(!model(&x), "{x:?}");
    }
    let kept = [
        Exchange { http10: true, connection: vec![vec!["keep-alive"]], ..base.clone() },
        Exchange { method: "HEAD", written: 0, content_length: Some(10), ..base.clone() },
        Exchange { status: 304, content_length: None, ..base.clone() },
        Exchange { written: 9, ..base.clone() },
        Exchange { request_body: Some(10), discard_budget: Some(10), ..base.clone() },
    ];
    for x in kept {
        assert!(run(&x).unwrap(), "{x:?}");
    }
}
