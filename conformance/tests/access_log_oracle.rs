//! Access-log lines rendered by `ferrocorn_core::access_log` against the same lines
//! rendered by gunicorn 27.0.1's own `glogging` code (in `.venv`, made by
//! scripts/setup-python.sh), for the default format and every atom.

use ferrocorn_core::access_log::{
    AccessFormat, AccessRecord, DEFAULT_FORMAT, EnvironList, HeaderList,
};
use serde_json::{Value, json};

struct Case {
    format: &'static str,
    environ: Vec<(&'static str, &'static str)>,
    req_headers: Vec<(&'static str, &'static str)>,
    status: &'static str,
    resp_headers: Vec<(&'static str, &'static str)>,
    sent: Option<u64>,
    request_time: (u64, u32),
}

const EVERY_ATOM: &str = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" %(m)s %(U)s %(q)s %(H)s \
%(B)s %(T)s %(M)s %(D)s %(L)s %(p)s %({x-request-id}i)s %({X-REQUEST-ID}i)s %({content-type}o)s \
%({remote_addr}e)s %({missing}i)s %({missing}o)s %({missing}e)s %(nope)s %%";

fn base_environ() -> Vec<(&'static str, &'static str)> {
    vec![
        ("REMOTE_ADDR", "192.0.2.10"),
        ("REQUEST_METHOD", "GET"),
        ("RAW_URI", "/search?q=rust&page=2"),
        ("PATH_INFO", "/search"),
        ("QUERY_STRING", "q=rust&page=2"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("HTTP_REFERER", "https://example.com/start"),
        ("HTTP_USER_AGENT", "curl/8.5.0"),
    ]
}

fn cases() -> Vec<Case> {
    let default = DEFAULT_FORMAT;
    let mut out = vec![
        Case {
            format: default,
            environ: base_environ(),
            req_headers: vec![("HOST", "example.com"), ("X-REQUEST-ID", "abc-123")],
            status: "200 OK",
            resp_headers: vec![("Content-Type", "text/html; charset=utf-8")],
            sent: Some(1234),
            request_time: (0, 5123),
        },
        Case {
            format: EVERY_ATOM,
            environ: base_environ(),
            req_headers: vec![
                ("HOST", "example.com"),
                ("X-REQUEST-ID", "first"),
                ("X-REQUEST-ID", "last-wins"),
            ],
            status: "404 Not Found",
            resp_headers: vec![
                ("Content-Type", "application/json"),
                ("Content-Type", "text/plain"),
            ],
            sent: Some(0),
            request_time: (3, 250),
        },
    ];
    // A user agent with quotes, a Basic-auth user, no body count, a long request.
    let mut env = base_environ();
    env.retain(|(k, _)| *k != "HTTP_USER_AGENT" && *k != "HTTP_REFERER");
    env.push(("HTTP_USER_AGENT", "Mozilla/5.0 \"quoted\" (X11)"));
    env.push(("HTTP_AUTHORIZATION", "Basic YWxpY2U6c2VjcmV0"));
    out.push(Case {
        format: default,
        environ: env.clone(),
        req_headers: vec![],
        status: "500 Internal Server Error",
        resp_headers: vec![],
        sent: None,
        request_time: (61, 999_999),
    });
    out.push(Case {
        // No `%(B)s` here: gunicorn prints `None` for a missing count, which its workers never
        // produce (a response always counts its bytes), and ferrocorn prints `-`.
        format: "%(u)s|%(a)s|%(b)s|%(L)s|%(D)s|%(M)s|%(T)s",
        environ: env,
        req_headers: vec![],
        status: "204 No Content",
        resp_headers: vec![],
        sent: None,
        request_time: (0, 999),
    });
    // A POST without a query string and a unix-socket peer (no REMOTE_ADDR).
    out.push(Case {
        format: "%(h)s \"%(r)s\" %(s)s %(U)s [%(q)s] %({remote_addr}e)s",
        environ: vec![
            ("REQUEST_METHOD", "POST"),
            ("RAW_URI", "/api/v1/items"),
            ("PATH_INFO", "/api/v1/items"),
            ("QUERY_STRING", ""),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
        ],
        req_headers: vec![],
        status: "201 Created",
        resp_headers: vec![],
        sent: Some(17),
        request_time: (0, 0),
    });
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<Value> {
    v.iter().map(|(k, v)| json!([k, v])).collect()
}

#[test]
fn access_lines_match_gunicorn27() {
    let cases = cases();
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "format": c.format,
                "environ": c.environ.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "req_headers": pairs(&c.req_headers),
                "resp": {"status": c.status, "headers": pairs(&c.resp_headers), "sent": c.sent},
                "request_time": [c.request_time.0, c.request_time.1],
            })
        })
        .collect();
    let got = ferrocorn_conformance::run_oracle_script("gunicorn_access", &Value::Array(input));
    let pid = got["pid"].as_u64().unwrap() as u32;
    for (case, theirs) in cases.iter().zip(got["lines"].as_array().unwrap()) {
        let get = |k: &str| case.environ.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_bytes());
        let req: Vec<(&[u8], &[u8])> =
            case.req_headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        let resp: Vec<(&[u8], &[u8])> =
            case.resp_headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        let env: Vec<(&str, &[u8])> =
            case.environ.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let (req_h, resp_h, env_l) = (HeaderList(&req), HeaderList(&resp), EnvironList(&env));
        let rec = AccessRecord {
            remote_addr: get("REMOTE_ADDR"),
            method: get("REQUEST_METHOD").unwrap_or_default(),
            raw_uri: get("RAW_URI").unwrap_or_default(),
            protocol: get("SERVER_PROTOCOL").unwrap_or_default(),
            status: case.status[..3].parse().unwrap(),
            path_info: get("PATH_INFO").unwrap_or_default(),
            query: get("QUERY_STRING").unwrap_or_default(),
            sent: case.sent,
            referer: get("HTTP_REFERER"),
            user_agent: get("HTTP_USER_AGENT"),
            authorization: get("HTTP_AUTHORIZATION"),
            request_time: case.request_time,
            pid,
            time: "[TIME]",
            request_headers: &req_h,
            response_headers: &resp_h,
            environ: &env_l,
        };
        let ours = AccessFormat::parse(case.format).render_to_string(&rec);
        assert_eq!(ours, theirs.as_str().unwrap(), "format {:?}", case.format);
    }
}
