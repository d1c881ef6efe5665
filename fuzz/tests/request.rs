//! Fuzz target for the request parser entry point (`Connection::receive` + `next_event`).
//!
//! Runs as an ordinary test (bolero replays its corpus and a bounded number of random
//! inputs); `cargo bolero test request` (or cargo-fuzz through bolero) fuzzes it for real.
//!
//! Invariants: no panic; the same events whether the input arrives whole or split at a
//! fuzzer-chosen point; the connection never asks for data after EOF; the bytes buffered
//! while a head is incomplete stay within the limits plus one read.

use std::sync::Arc;

use ferrocorn_core::config::{Limits, ProtoConfig};
use ferrocorn_core::{Connection, Event, Peer};

fn events(cfg: &Arc<ProtoConfig>, parts: &[&[u8]]) -> Vec<String> {
    let mut conn = Connection::new(cfg.clone(), Peer::Unix);
    let mut parts = parts.iter();
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut eof = false;
    loop {
        match conn.next_event() {
            Ok(Event::NeedData) => {
                assert!(!eof, "NeedData after EOF");
                let l = cfg.limits;
                assert!(
                    conn.buffered() <= l.request_line + 4 + l.head_buffer() + 65536,
                    "unbounded buffering"
                );
                match parts.next() {
                    Some(p) => conn.receive(p),
                    None => {
                        eof = true;
                        conn.receive_eof();
                    }
                }
            }
            Ok(Event::Request(h)) => out.push(format!(
                "{:?} {:?} {:?} {:?}",
                h.method(),
                h.target(),
                h.version,
                h.headers().collect::<Vec<_>>()
            )),
            Ok(Event::Data(d)) => {
                assert!(!d.is_empty());
                body.extend_from_slice(d);
            }
            Ok(Event::EndOfMessage(t)) => {
                out.push(format!("body {body:?} trailers {:?}", t.fields().collect::<Vec<_>>()));
                body.clear();
            }
            Ok(Event::Paused) => {
                if conn.start_next_cycle().is_err() {
                    out.push("close".into());
                    break;
                }
            }
            Ok(Event::ConnectionClosed) => {
                out.push("closed".into());
                break;
            }
            Ok(e) => panic!("an event this target does not know: {e:?}"),
            Err(e) => {
                // The body bytes seen before a body error are part of the outcome too.
                out.push(format!("body-so-far {body:?} error {}", e.gunicorn_class()));
                assert!(matches!(e.status(), 400 | 403 | 414 | 417 | 431 | 501));
                break;
            }
        }
    }
    out
}

#[test]
fn request_parser() {
    let configs = [
        Arc::new(ProtoConfig::default()),
        Arc::new({
            let mut c = ProtoConfig::default();
            c.limits = Limits::from_gunicorn(40, 3, 30);
            c.parser.permit_obsolete_folding = true;
            c.parser.strip_header_spaces = true;
            c
        }),
    ];
    bolero::check!().with_type::<(u16, Vec<u8>)>().for_each(|(split, input)| {
        let at = usize::from(*split) % (input.len() + 1);
        for cfg in &configs {
            let whole = events(cfg, &[input]);
            let split = events(cfg, &[&input[..at], &input[at..]]);
            assert_eq!(whole, split);
        }
    });
}
