//! Fuzz target for the environ builder: any request the parser accepts, from any peer,
//! on any listener, gives an environ (or a SCRIPT_NAME mismatch) without panicking, and
//! the environ keeps its promises.
//!
//! The input is read as choices (`ferrocorn_fuzz::Choices`): a shape byte (peer, listener,
//! TLS, Host form), a `SCRIPT_NAME` of up to 63 bytes, then the rest shaped into a request
//! line and fields of any length.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrocorn_core::config::ProtoConfig;
use ferrocorn_core::environ::{ConnInfo, EnvironConfig, Key, Local, Name, build};
use ferrocorn_core::{AllowList, Connection, Event, Peer};
use ferrocorn_fuzz::Choices;

#[test]
fn environ_builder() {
    let mut cfg = ProtoConfig::default();
    cfg.trust.forwarded_allow = AllowList::any();
    let cfg = Arc::new(cfg);
    let check = |input: &[u8]| {
        let mut ch = Choices::new(input);
        let shape = &ch.byte();
        let n = usize::from(ch.byte() % 64);
        let script_name = &ch.bytes(n).to_vec();
        let input = ch.rest();
        let peer = match shape & 3 {
            0 => Peer::Unix,
            1 => Peer::Tcp(SocketAddr::from(([10, 0, 0, 1], 40000))),
            _ => Peer::Tcp("[2001:db8::1]:40000".parse().unwrap()),
        };
        let local = if shape & 4 == 0 {
            Local::Tcp(SocketAddr::from(([0, 0, 0, 0], 8000)))
        } else {
            Local::Unix(b"/run/app.sock".to_vec())
        };
        let conn_info = ConnInfo { peer, local, tls: shape & 8 != 0 };
        let env_cfg = {
            let mut c = EnvironConfig::default();
            c.script_name = script_name.clone();
            c
        };
        // Shape the bytes into a request the parser accepts most of the time, so the
        // builder (not the parser) is what gets exercised: a fuzzed path and query
        // (visible ASCII, `%` escapes likely), fuzzed header names and values.
        let half = input.len() / 2;
        let target: Vec<u8> = input[..half]
            .iter()
            .map(|b| if b % 5 == 0 { b'%' } else { 0x21 + b % 0x5e })
            .filter(|b| *b != b'#')
            .collect();
        let mut req = b"GET /".to_vec();
        req.extend_from_slice(&target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(if shape & 16 == 0 { b"example.com:8080" } else { b"[::1]" });
        req.extend_from_slice(b"\r\n");
        for (i, pair) in input[half..].chunks(6).enumerate() {
            let name = [
                "X-A",
                "X_A",
                "Script_Name",
                "X-Forwarded-Proto",
                "Content-Type",
                "Content-Length",
                "Cookie",
            ][i % 7];
            if name == "Content-Length" || (name == "Content-Type" && i >= 7) {
                continue;
            }
            req.extend_from_slice(name.as_bytes());
            req.extend_from_slice(b": ");
            req.extend(pair.iter().map(|b| if *b < 0x20 || *b == 0x7f { b'v' } else { *b }));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        let mut conn = Connection::new(cfg.clone(), peer);
        conn.receive(&req);
        conn.receive_eof();
        let Ok(Event::Request(head)) = conn.next_event() else { return };
        let Ok(env) = build(head, &conn_info, &env_cfg) else { return };
        assert_eq!(env.get(Key::RequestMethod), Some(head.method()));
        assert_eq!(env.get(Key::RawUri), Some(head.target()));
        assert!(env.get(Key::PathInfo).is_some());
        let target = head.target();
        if target.starts_with(b"/") {
            let query =
                target.iter().position(|&b| b == b'?').map_or(&b""[..], |q| &target[q + 1..]);
            assert_eq!(env.get(Key::QueryString), Some(query));
        }
        let scheme = env.url_scheme();
        assert!(scheme.as_str() == "http" || scheme.as_str() == "https");
        for (name, _) in env.iter() {
            if let Name::Http(n) = name {
                assert!(n.starts_with(b"HTTP_"));
                assert!(n.iter().all(|b| !b.is_ascii_lowercase() && *b != b'-'));
                assert!(n != b"HTTP_CONTENT_TYPE" && n != b"HTTP_CONTENT_LENGTH");
            }
        }
    };
    // Every input of the regression corpus, whatever bolero's time budget leaves.
    if !cfg!(fuzzing) {
        assert!(
            ferrocorn_fuzz::replay_corpus("environ_builder", &check) > 0,
            "the regression corpus is empty"
        );
    }
    bolero::check!().for_each(check);
}
