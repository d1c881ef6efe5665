//! Fuzz target for the request parser entry point (`Connection::receive` + `next_event`).
//!
//! Runs as an ordinary test (bolero replays `tests/__fuzz__/request_parser/corpus`, the
//! minimised regression corpus of the campaigns, then random inputs up to 4096 bytes);
//! `scripts/fuzz.sh request SECONDS` fuzzes it for real with libfuzzer.
//!
//! The input is read as choices (`ferrocorn_fuzz::request`): generated requests of up to
//! a few hundred kilobytes (fields near every limit, chunked bodies with extensions and
//! trailers, pipelined requests, PROXY headers in front, then mutations), a corpus case
//! with mutations, or raw bytes.
//!
//! Invariants, under three configurations (the defaults, small limits with the
//! leniencies on, PROXY `auto`): no panic; the same outcome whether the bytes arrive
//! whole, in 4 KiB reads, or cut at two places chosen from the bytes; the connection
//! never asks for data after EOF; the bytes buffered stay within the limits plus one
//! read; every error is a 4xx, 501 or 505.

use std::sync::Arc;

use ferrocorn_core::config::{Limits, ProtoConfig, ProxyMode};
use ferrocorn_core::{AllowList, Peer};
use ferrocorn_fuzz::{Choices, drive, request};

// Fields set one by one: the config types are to become #[non_exhaustive] (issue 17,
// part 1), which forbids struct expressions outside the core.
#[allow(clippy::field_reassign_with_default)]
fn configs() -> [Arc<ProtoConfig>; 3] {
    let mut lax = ProtoConfig::default();
    lax.limits = Limits::from_gunicorn(40, 3, 30);
    lax.parser.permit_obsolete_folding = true;
    lax.parser.strip_header_spaces = true;
    let mut proxy = ProtoConfig::default();
    proxy.proxy.mode = ProxyMode::Auto;
    proxy.proxy.allow = AllowList::any();
    [Arc::new(ProtoConfig::default()), Arc::new(lax), Arc::new(proxy)]
}

/// FNV-1a, to pick cut points from the bytes themselves.
fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[test]
fn request_parser() {
    let configs = configs();
    let check = |input: &[u8]| {
        let bytes = request(&mut Choices::new(input));
        let h = fnv(&bytes);
        let len = bytes.len();
        let (a, b) = {
            let x = (h as usize) % (len + 1);
            let y = ((h >> 32) as usize) % (len + 1);
            (x.min(y), x.max(y))
        };
        let reads: Vec<&[u8]> = bytes.chunks(4096).collect();
        for cfg in &configs {
            let whole = drive(cfg, Peer::Unix, &[&bytes]);
            let cut = drive(cfg, Peer::Unix, &[&bytes[..a], &bytes[a..b], &bytes[b..]]);
            assert_eq!(whole, cut, "cut at {a} and {b}");
            let read = drive(cfg, Peer::Unix, &reads);
            assert_eq!(whole, read, "4 KiB reads");
        }
    };
    // Every input of the regression corpus, whatever bolero's time budget leaves.
    if !cfg!(fuzzing) {
        assert!(
            ferrocorn_fuzz::replay_corpus("request_parser", &check) > 0,
            "the regression corpus is empty"
        );
    }
    bolero::check!().for_each(check);
}
