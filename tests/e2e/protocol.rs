//! End to end through the INSTALLED `ferrocorn` (`-k sync` and `-k gthread`), with
//! gunicorn 27.0.1 on the same command as the oracle: the parsing settings at non-default
//! values change what real requests do (and the defaults refuse the same requests); HTTP/1.x
//! minor versions are served as HTTP/1.1 and other major versions answered 505; a PROXY v2
//! header with `AF_UNIX` addresses leaves the connection's own endpoints in the environ and
//! the access log.
//!
//! The application (`tests/apps/environ_app.py`) answers with its environ as
//! `KEY=value` lines. Servers bind 127.0.0.1:0; every wait polls with a deadline.

use crate::support;

use std::net::SocketAddr;

use support::{Client, Server, TempDir, raw, start_installed, wait_until};

const WORKERS: [&str; 2] = ["sync", "gthread"];

/// `program` (`ferrocorn` or `gunicorn`) serving environ_app with one worker of `worker`.
fn serve(program: &str, worker: &str, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["environ_app:app", "-b", "127.0.0.1:0", "-w", "1", "-k", worker];
    args.extend_from_slice(extra);
    let s = start_installed(program, &args, &[]);
    let addr = s.addr();
    s.wait_booted(1);
    (s, addr)
}

/// One response: its status line, head and body.
#[derive(Debug)]
struct Answer {
    status_line: String,
    head: String,
    body: String,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Answer {
            status_line: head.lines().next().unwrap_or("").to_owned(),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// The status code.
    fn code(&self) -> u16 {
        self.status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// The value of environ variable `key` in the application's answer.
    fn var(&self, key: &str) -> Option<&str> {
        self.body.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `bytes` on a new connection, half-closes it, and reads the answer.
fn ask(addr: SocketAddr, bytes: &[u8]) -> Answer {
    Answer::parse(&raw(addr, bytes))
}

/// Reads one response from a kept-alive connection; `None` once the server closed it.
fn read_one(c: &mut Client) -> Option<Answer> {
    c.try_read().ok().flatten().map(|r| Answer::parse(&r.raw))
}

// ---------------------------------------------------------------------------------------
// Parsing settings
// ---------------------------------------------------------------------------------------

/// Every non-default parsing setting at once.
const LENIENT: &[&str] = &[
    "--strip-header-spaces",
    "--permit-unconventional-http-method",
    "--casefold-http-method",
    "--permit-unconventional-http-version",
    "--permit-obsolete-folding",
    "--header-map",
    "dangerous",
    "--limit-request-fields",
    "6",
    "--limit-request-line",
    "100",
];

/// A request that one of [`LENIENT`]'s settings changes, and what it does.
struct Case {
    what: &'static str,
    request: Vec<u8>,
    /// The variable that shows the setting's effect, and its value under [`LENIENT`].
    var: &'static str,
    lenient: Result<&'static str, u16>,
    /// Under the defaults: the status (and the variable's value when served).
    strict: Result<Option<&'static str>, u16>,
}

fn cases() -> Vec<Case> {
    let fields: String = (0..7).map(|i| format!("X-F{i}: {i}\r\n")).collect();
    vec![
        Case {
            what: "casefold_http_method + permit_unconventional_http_method: 'get'",
            request: b"get /m HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            var: "REQUEST_METHOD",
            lenient: Ok("GET"),
            strict: Err(400),
        },
        Case {
            what: "permit_unconventional_http_method: '-blargh' (casefolded)",
            request: b"-blargh /m HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            var: "REQUEST_METHOD",
            lenient: Ok("-BLARGH"),
            strict: Err(400),
        },
        Case {
            what: "permit_unconventional_http_version: HTTP/2.0",
            request: b"GET /v HTTP/2.0\r\nHost: h\r\n\r\n".to_vec(),
            var: "SERVER_PROTOCOL",
            lenient: Ok("HTTP/2.0"),
            strict: Err(505),
        },
        Case {
            what: "strip_header_spaces: 'X-Spaced : yes'",
            request: b"GET /s HTTP/1.1\r\nHost: h\r\nX-Spaced : yes\r\n\r\n".to_vec(),
            var: "HTTP_X_SPACED",
            lenient: Ok("yes"),
            strict: Err(400),
        },
        Case {
            what: "permit_obsolete_folding",
            request: b"GET /f HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n  b\r\n\r\n".to_vec(),
            var: "HTTP_X_FOLD",
            lenient: Ok("a b"),
            strict: Err(400),
        },
        Case {
            what: "header_map dangerous (default drop)",
            request: b"GET /u HTTP/1.1\r\nHost: h\r\nX_Under: 1\r\n\r\n".to_vec(),
            var: "HTTP_X_UNDER",
            lenient: Ok("1"),
            strict: Ok(None),
        },
        Case {
            what: "limit_request_fields 6 (default 100)",
            request: format!("GET /n HTTP/1.1\r\nHost: h\r\n{fields}\r\n").into_bytes(),
            var: "HTTP_X_F6",
            lenient: Err(431),
            strict: Ok(Some("6")),
        },
        Case {
            what: "limit_request_line 100 (default 4094)",
            request: format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(120)).into_bytes(),
            var: "REQUEST_METHOD",
            lenient: Err(414),
            strict: Ok(Some("GET")),
        },
    ]
}

/// What `program` answers to every case, in the order of [`cases`].
fn answers(program: &str, worker: &str, extra: &[&str]) -> Vec<Answer> {
    let (_s, addr) = serve(program, worker, extra);
    cases().iter().map(|c| ask(addr, &c.request)).collect()
}

#[test]
fn parsing_settings_change_real_requests_on_both_workers() {
    // The oracle: gunicorn's parser is the same for both of its workers.
    let g_lenient = answers("gunicorn", "sync", LENIENT);
    let g_strict = answers("gunicorn", "sync", &[]);
    for worker in WORKERS {
        let lenient = answers("ferrocorn", worker, LENIENT);
        let strict = answers("ferrocorn", worker, &[]);
        for (i, c) in cases().iter().enumerate() {
            let (what, l, s, gl, gs) =
                (c.what, &lenient[i], &strict[i], &g_lenient[i], &g_strict[i]);
            match c.lenient {
                Ok(v) => {
                    assert_eq!((l.code(), l.var(c.var)), (200, Some(v)), "{worker} {what}: {l:?}");
                    assert_eq!(gl.var(c.var), Some(v), "gunicorn {what}: {gl:?}");
                }
                Err(code) => {
                    assert_eq!(l.code(), code, "{worker} {what}: {l:?}");
                    assert_eq!(gl.code(), code, "gunicorn {what}: {gl:?}");
                }
            }
            match c.strict {
                Ok(v) => {
                    assert_eq!((s.code(), s.var(c.var)), (200, v), "{worker} {what}: {s:?}");
                    assert_eq!((gs.code(), gs.var(c.var)), (200, v), "gunicorn {what}: {gs:?}");
                }
                Err(code) => {
                    assert_eq!(s.code(), code, "{worker} {what} under the defaults: {s:?}");
                    // gunicorn answers 400 to a major version other than 1 (docs/compat.md).
                    assert_eq!(gs.code(), 400, "gunicorn {what} under the defaults: {gs:?}");
                }
            }
            // ferrocorn answers in its own version whatever the request's (RFC 9110 §2.5).
            assert!(l.status_line.starts_with("HTTP/1.1 "), "{worker} {what}: {l:?}");
        }
        // gunicorn echoes the request's version in the status line.
        assert!(g_lenient[2].status_line.starts_with("HTTP/2.0 200"), "{:?}", g_lenient[2]);
    }
}

#[test]
fn header_map_refuse_answers_400_to_underscores() {
    let req = b"GET /u HTTP/1.1\r\nHost: h\r\nX_Under: 1\r\n\r\n";
    for worker in WORKERS {
        let (_s, addr) = serve("ferrocorn", worker, &["--header-map", "refuse"]);
        let a = ask(addr, req);
        assert_eq!(a.code(), 400, "{worker}: {a:?}");
        assert!(a.body.contains("X_Under"), "{worker}: {a:?}");
        let a = ask(addr, b"GET /ok HTTP/1.1\r\nHost: h\r\nX-Under: 1\r\n\r\n");
        assert_eq!((a.code(), a.var("HTTP_X_UNDER")), (200, Some("1")), "{worker}: {a:?}");
    }
    let (_g, addr) = serve("gunicorn", "sync", &["--header-map", "refuse"]);
    assert_eq!(ask(addr, req).code(), 400);
}

// ---------------------------------------------------------------------------------------
// HTTP versions
// ---------------------------------------------------------------------------------------

#[test]
fn http_1x_minor_versions_are_served_as_http_11() {
    let (_g, gaddr) = serve("gunicorn", "gthread", &[]);
    for worker in WORKERS {
        let (_s, addr) = serve("ferrocorn", worker, &[]);
        for minor in [2, 9] {
            let req = format!("GET /v HTTP/1.{minor}\r\nHost: h\r\n\r\n");
            let a = ask(addr, req.as_bytes());
            assert_eq!(a.status_line, "HTTP/1.1 200 OK", "{worker} 1.{minor}: {a:?}");
            // SERVER_PROTOCOL is the version the client sent (PEP 3333), as in gunicorn.
            let g = ask(gaddr, req.as_bytes());
            let sent = format!("HTTP/1.{minor}");
            assert_eq!(a.var("SERVER_PROTOCOL"), Some(sent.as_str()), "{worker}: {a:?}");
            assert_eq!(g.var("SERVER_PROTOCOL"), Some(sent.as_str()), "gunicorn: {g:?}");
            assert_eq!(g.status_line, format!("HTTP/1.{minor} 200 OK"), "gunicorn echoes it");
            // As HTTP/1.1: Host is required (gunicorn serves it without).
            let a = ask(addr, format!("GET /v HTTP/1.{minor}\r\n\r\n").as_bytes());
            assert_eq!(a.status_line, "HTTP/1.1 400 Bad Request", "{worker}: {a:?}");
        }
        // As HTTP/1.1: a chunked body.
        let a = ask(
            addr,
            b"POST /c HTTP/1.2\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
        assert_eq!((a.code(), a.var("HTTP_TRANSFER_ENCODING")), (200, Some("chunked")), "{a:?}");

        // Keep-alive as HTTP/1.1: persistent by default on gthread (the sync worker closes
        // every connection, as gunicorn's does), closed on `Connection: close`.
        let mut s = Client::connect(addr);
        s.send(b"GET /1 HTTP/1.2\r\nHost: h\r\n\r\n");
        let first = read_one(&mut s).expect("an answer");
        assert_eq!(first.status_line, "HTTP/1.1 200 OK", "{worker}: {first:?}");
        if worker == "gthread" {
            assert_eq!(first.header("Connection"), Some("keep-alive"), "{first:?}");
            s.send(b"GET /2 HTTP/1.2\r\nHost: h\r\nConnection: close\r\n\r\n");
            let second = read_one(&mut s).expect("a second answer on the connection");
            assert_eq!(
                (second.code(), second.var("PATH_INFO"), second.header("Connection")),
                (200, Some("/2"), Some("close")),
                "{second:?}"
            );
        } else {
            assert_eq!(first.header("Connection"), Some("close"), "{first:?}");
        }
        assert!(read_one(&mut s).is_none(), "{worker}: the connection is closed");
    }
}

#[test]
fn other_major_versions_are_505() {
    let (_g, gaddr) = serve("gunicorn", "sync", &[]);
    for worker in WORKERS {
        let (_s, addr) = serve("ferrocorn", worker, &[]);
        for v in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
            let req = format!("GET / {v}\r\nHost: h\r\n\r\n");
            let a = ask(addr, req.as_bytes());
            assert_eq!(a.status_line, "HTTP/1.1 505 HTTP Version Not Supported", "{worker} {v}");
            assert_eq!(a.header("Connection"), Some("close"), "{a:?}");
            // gunicorn: 400 with the same InvalidHTTPVersion message.
            let g = ask(gaddr, req.as_bytes());
            assert_eq!(g.status_line, "HTTP/1.1 400 Bad Request", "gunicorn {v}");
            assert!(
                a.body.contains("Invalid HTTP Version") && g.body.contains("Invalid HTTP Version")
            );
        }
        // A malformed version stays a 400.
        assert_eq!(ask(addr, b"GET / HTTP/1.10\r\nHost: h\r\n\r\n").code(), 400);
    }
}

// ---------------------------------------------------------------------------------------
// PROXY v2 AF_UNIX
// ---------------------------------------------------------------------------------------

/// A PROXY v2 PROXY header of family `AF_UNIX` over a stream.
fn v2_unix(src: &[u8], dst: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x31, 0, 216]);
    for path in [src, dst] {
        let mut p = path.to_vec();
        p.resize(108, 0);
        h.extend_from_slice(&p);
    }
    h
}

#[test]
fn proxy_v2_af_unix_leaves_the_connection_endpoints() {
    let dir = TempDir::new("proxy-unix");
    for worker in WORKERS {
        let log = dir.path(&format!("access-{worker}.log"));
        let (_s, addr) = serve(
            "ferrocorn",
            worker,
            &[
                "--proxy-protocol",
                "v2",
                "--access-logfile",
                log.to_str().unwrap(),
                "--access-logformat",
                "%(h)s \"%(r)s\" %(s)s",
            ],
        );
        let mut s = Client::connect(addr);
        let local = s.s.local_addr().unwrap();
        let mut req = v2_unix(b"/run/client.sock", b"/run/haproxy.sock");
        req.extend_from_slice(b"GET /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let out = s.send(&req).read_to_end().0;
        let a = Answer::parse(&out);
        let port = local.port().to_string();
        assert_eq!(
            (a.code(), a.var("REMOTE_ADDR"), a.var("REMOTE_PORT"), a.var("PROXY_PROTOCOL")),
            (200, Some("127.0.0.1"), Some(port.as_str()), Some("UNIX")),
            "{worker}: {a:?}"
        );
        assert_eq!((a.var("PROXY_ADDR"), a.var("PROXY_PORT")), (None, None), "{worker}: {a:?}");
        // The access log's %(h)s is REMOTE_ADDR: the real peer, not the socket path.
        wait_until(10, "the access line", || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("/p HTTP/1.1"))
        });
        let line = std::fs::read_to_string(&log).unwrap();
        assert_eq!(line.trim_end(), "127.0.0.1 \"GET /p HTTP/1.1\" 200", "{worker}");
    }
    // gunicorn 27 refuses the family ("unsupported address family"): a 500.
    let (_g, gaddr) = serve("gunicorn", "sync", &["--proxy-protocol", "v2"]);
    let mut req = v2_unix(b"/run/client.sock", b"/run/haproxy.sock");
    req.extend_from_slice(b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(ask(gaddr, &req).code(), 500);
}
