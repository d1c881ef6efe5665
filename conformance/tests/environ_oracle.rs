//! The WSGI environ built by `ferrocorn_core::environ` against the environ gunicorn 27.0.1
//! builds (its parser and `gunicorn.http.wsgi.create`, run in `.venv`) for the same
//! request, peer and listener: every valid request of both corpora on a TCP listener, and
//! hand-made cases for what the corpora do not cover (unix sockets and Host, forwarded
//! SCRIPT_NAME, trusted scheme headers, percent-decoding, repeated headers).
//!
//! Deliberate differences are listed in `conformance/oracle/environ-divergences.toml` with
//! their reasons; the test fails on any other difference and on a listed one that no
//! longer differs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ferrocorn_conformance::case::latin1_bytes;
use ferrocorn_conformance::settings::proto_config;
use ferrocorn_core::config::HeaderPolicy;
use ferrocorn_core::environ::{ConnInfo, EnvironConfig, Local, build};
use ferrocorn_core::{Connection, Event, Peer};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

struct Case {
    name: String,
    data: Vec<u8>,
    settings: serde_json::Map<String, Value>,
    peer: Option<SocketAddr>,
    unix_server: Option<&'static str>,
    script_name: Option<&'static str>,
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn corpus_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (label, dir) in [
        ("gunicorn", ferrocorn_conformance::gunicorn_corpus_dir()),
        ("ferrocorn", ferrocorn_conformance::own_corpus_dir()),
    ] {
        let valid = dir.join("valid");
        let mut names: Vec<_> =
            std::fs::read_dir(&valid).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for http in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "http")) {
            let spec: Value =
                serde_json::from_slice(&std::fs::read(http.with_extension("json")).unwrap())
                    .unwrap();
            let settings = spec["settings"].as_object().cloned().unwrap_or_default();
            out.push(Case {
                name: format!("{label}/valid/{}", http.file_stem().unwrap().to_string_lossy()),
                data: std::fs::read(&http).unwrap(),
                settings,
                peer: Some("127.0.0.1:40123".parse().unwrap()),
                unix_server: None,
                script_name: None,
            });
        }
    }
    out
}

fn handmade() -> Vec<Case> {
    let req = |head: &str| head.replace('\n', "\r\n").into_bytes();
    let mut out = Vec::new();
    let mut add = |name: &str,
                   data: Vec<u8>,
                   peer: Option<&str>,
                   unix: Option<&'static str>,
                   script: Option<&'static str>,
                   settings: Value| {
        out.push(Case {
            name: format!("handmade/{name}"),
            data,
            settings: settings.as_object().cloned().unwrap_or_default(),
            peer: peer.map(|p| p.parse().unwrap()),
            unix_server: unix,
            script_name: script,
        })
    };
    let get = req(
        "GET /a%20b/c%2Fd?x=1&y=%41 HTTP/1.1\nHost: example.com:8080\nX-Many: 1\nx-many: 2\nContent-Type: text/plain\nContent-Length: 0\n\n",
    );
    add("tcp_basic", get.clone(), Some("127.0.0.1:5000"), None, None, json!({}));
    add("tcp_untrusted_peer", get.clone(), Some("192.0.2.9:5000"), None, None, json!({}));
    add("unix_with_host_port", get.clone(), None, Some("/run/app.sock"), None, json!({}));
    add(
        "unix_with_host",
        req("GET / HTTP/1.1\nHost: example.com\n\n"),
        None,
        Some("/run/app.sock"),
        None,
        json!({}),
    );
    add(
        "unix_without_host_http10",
        req("GET / HTTP/1.0\n\n"),
        None,
        Some("/run/app.sock"),
        None,
        json!({}),
    );
    add(
        "unix_https_default_port",
        req("GET / HTTP/1.1\nHost: example.com\nX-Forwarded-Proto: https\n\n"),
        None,
        Some("/run/app.sock"),
        None,
        json!({}),
    );
    add(
        "script_name_env",
        req("GET /app/x/y HTTP/1.1\nHost: h\n\n"),
        Some("127.0.0.1:5000"),
        None,
        Some("/app"),
        json!({}),
    );
    add(
        "script_name_header_trusted",
        req("GET /mount/x HTTP/1.1\nHost: h\nSCRIPT_NAME: /mount\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "script_name_header_untrusted",
        req("GET /mount/x HTTP/1.1\nHost: h\nSCRIPT_NAME: /mount\n\n"),
        Some("192.0.2.9:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "forwarded_proto_trusted",
        req("GET / HTTP/1.1\nHost: h\nX-Forwarded-Proto: https\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "forwarded_proto_untrusted",
        req("GET / HTTP/1.1\nHost: h\nX-Forwarded-Proto: https\n\n"),
        Some("192.0.2.9:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "forwarded_allow_star",
        req("GET / HTTP/1.1\nHost: h\nX-Forwarded-Ssl: on\n\n"),
        Some("192.0.2.9:5000"),
        None,
        None,
        json!({"forwarded_allow_ips": "*"}),
    );
    add(
        "latin1_path",
        b"GET /caf%E9/%C3%A9 HTTP/1.1\r\nHost: h\r\nX-Obs: \xe9t\xe9\r\n\r\n".to_vec(),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "absolute_form",
        req("GET http://other.example:81/p?q=1 HTTP/1.1\nHost: h\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "options_star",
        req("OPTIONS * HTTP/1.1\nHost: h\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "ipv6_peer",
        req("GET / HTTP/1.1\nHost: [::1]:8000\n\n"),
        Some("[::1]:5000"),
        None,
        None,
        json!({}),
    );
    add(
        "proxy_v1",
        req("PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\nGET / HTTP/1.1\nHost: h\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({"proxy_protocol": true}),
    );
    add(
        "unix_with_ipv6_host",
        req("GET / HTTP/1.1\nHost: [::1]:8080\n\n"),
        None,
        Some("/run/app.sock"),
        None,
        json!({}),
    );
    add(
        "script_name_header_untrusted_dangerous",
        req("GET /mount/x HTTP/1.1\nHost: h\nSCRIPT_NAME: /mount\n\n"),
        Some("192.0.2.9:5000"),
        None,
        None,
        json!({"header_map": "dangerous"}),
    );
    let mut local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00".to_vec();
    local.extend_from_slice(&req("GET / HTTP/1.1\nHost: h\n\n"));
    add(
        "proxy_v2_local",
        local,
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({"proxy_protocol": true}),
    );
    add(
        "underscore_dropped",
        req("GET / HTTP/1.1\nHost: h\nX_Auth: 1\nX-Auth: 2\n\n"),
        Some("127.0.0.1:5000"),
        None,
        None,
        json!({}),
    );
    out
}

fn server_addr() -> SocketAddr {
    "127.0.0.1:8000".parse().unwrap()
}

fn ours(case: &Case) -> Result<BTreeMap<String, String>, String> {
    let cfg = proto_config(&case.settings)?;
    let headers: HeaderPolicy = cfg.headers.clone();
    let peer = case.peer.map_or(Peer::Unix, Peer::Tcp);
    let mut conn = Connection::new(Arc::new(cfg), peer);
    conn.receive(&case.data);
    conn.receive_eof();
    let head = match conn.next_event() {
        Ok(Event::Request(h)) => h.clone(),
        Ok(other) => return Err(format!("{other:?}")),
        Err(e) => return Err(e.gunicorn_class().to_string()),
    };
    let local = match case.unix_server {
        Some(path) => Local::Unix(path.as_bytes().to_vec()),
        None => Local::Tcp(server_addr()),
    };
    let mut env_cfg = EnvironConfig::default();
    env_cfg.script_name = case.script_name.unwrap_or("").as_bytes().to_vec();
    env_cfg.headers = headers;
    let env = build(&head, &ConnInfo { peer, local, tls: false }, &env_cfg)
        .map_err(|e| e.gunicorn_class().to_string())?;
    Ok(env
        .iter()
        .filter(|(name, _)| name.as_bytes() != b"SERVER_SOFTWARE")
        .map(|(name, value)| (latin1(name.as_bytes()), latin1(value)))
        .collect())
}

#[test]
fn environ_matches_gunicorn27_or_the_ledger() {
    let mut cases = corpus_cases();
    cases.extend(handmade());
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            let peer = match (c.peer, c.unix_server) {
                (Some(p), _) => json!([p.ip().to_string(), p.port()]),
                (None, Some(_)) => json!(""),
                (None, None) => json!(""),
            };
            let server = match c.unix_server {
                Some(path) => json!(path),
                None => json!([server_addr().ip().to_string(), server_addr().port()]),
            };
            json!({"name": c.name, "data": latin1(&c.data), "settings": c.settings, "peer": peer, "server": server, "script_name": c.script_name})
        })
        .collect();
    let theirs: Vec<Value> = serde_json::from_value(ferrocorn_conformance::run_oracle_script(
        "gunicorn_environ",
        &Value::Array(input),
    ))
    .unwrap();

    let ledger: Value = toml::from_str::<toml::Value>(
        &std::fs::read_to_string(root().join("conformance/oracle/environ-divergences.toml"))
            .unwrap(),
    )
    .map(|t| serde_json::to_value(t).unwrap())
    .unwrap();
    // (case, key) -> (gunicorn, ours); key "*" for a whole-case difference.
    let mut listed: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for d in ledger["divergence"].as_array().into_iter().flatten() {
        let key = (d["case"].as_str().unwrap().to_string(), d["key"].as_str().unwrap().to_string());
        assert!(
            d["reason"].as_str().is_some_and(|r| r.contains('§') || r.contains("compat.md")),
            "{key:?}: a reason must cite a section or docs/compat.md"
        );
        listed.insert(
            key,
            (
                d["gunicorn27"].as_str().unwrap().to_string(),
                d["ours"].as_str().unwrap().to_string(),
            ),
        );
    }

    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut compared = 0;
    for (case, theirs) in cases.iter().zip(&theirs) {
        assert_eq!(theirs["name"].as_str().unwrap(), case.name);
        let _ = latin1_bytes; // the corpus strings are latin-1 like ours
        let mine = ours(case);
        let (their_env, mine) = match (&theirs["environ"], mine) {
            (Value::Object(env), Ok(mine)) => (env, mine),
            // A request one side refuses is the parser's business (conformance/oracle tests it).
            _ => continue,
        };
        compared += 1;
        let keys: BTreeSet<&str> =
            their_env.keys().map(String::as_str).chain(mine.keys().map(String::as_str)).collect();
        for key in keys {
            let g = their_env
                .get(key)
                .and_then(Value::as_str)
                .map_or("<absent>".to_string(), str::to_string);
            let o = mine.get(key).cloned().unwrap_or_else(|| "<absent>".to_string());
            let id = (case.name.clone(), key.to_string());
            match listed.get(&id) {
                Some((lg, lo)) => {
                    seen.insert(id.clone());
                    if g == o {
                        failures.push(format!(
                            "{} {key}: listed but no longer differs ({g:?})",
                            case.name
                        ));
                    } else if (lg, lo) != (&g, &o) {
                        failures.push(format!("{} {key}: listed as gunicorn {lg:?} / ours {lo:?}, now gunicorn {g:?} / ours {o:?}", case.name));
                    }
                }
                None if g != o => failures
                    .push(format!("{} {key}: gunicorn 27.0.1 {g:?}, ferrocorn {o:?}", case.name)),
                None => {}
            }
        }
    }
    for id in listed.keys() {
        if !seen.contains(id) {
            failures.push(format!("{} {}: listed but not compared", id.0, id.1));
        }
    }
    eprintln!("environ oracle: {compared} requests compared, {} listed differences", listed.len());
    assert!(compared >= 80, "only {compared} requests compared");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
