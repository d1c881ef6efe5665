//! The core's example server (`core/examples/blocking_server.rs`, compiled in here as a
//! module and run on a thread) under the conformance runner over the wire: every case of
//! the request corpora with default settings, four ways split, judged against its ledger
//! (`conformance/wire/core-example.toml`, both ways: no unlisted difference, no stale
//! entry). The example answers with its own JSON, not the echo app's, so what the
//! application saw is not compared; the status classes, nothing after a rejection and
//! never more responses than requests are.

#[allow(dead_code)]
#[path = "../../core/examples/blocking_server.rs"]
mod blocking_server;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use ferrocorn_conformance::wire::{self, WireOptions};
use ferrocorn_conformance::{case, default_corpora};
use ferrocorn_core::ProtoConfig;

#[test]
fn wire_core_example() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || blocking_server::run(listener, Arc::new(ProtoConfig::default())));
    let mut cases = Vec::new();
    for corpus in default_corpora() {
        cases.extend(case::load_dir(&corpus.label, &corpus.dir).expect("the corpora load"));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let opts = WireOptions::new(&addr.to_string()).expect("the address");
    let ledger = Path::new(env!("CARGO_MANIFEST_DIR")).join("wire/core-example.toml");
    let report = wire::run(&cases, &opts, &ledger);
    let failures: Vec<String> =
        report.failures.iter().map(|(c, w)| format!("FAIL {c}: {w}")).collect();
    assert!(
        report.is_success(),
        "the core example over the wire:\n{}\nledger diff:\n{}\nIf the change is deliberate: scripts/conformance-ledgers.sh",
        failures.join("\n"),
        report.ledger_diff,
    );
    // The run judged something: the corpora's accepted requests were served.
    assert!(report.results.len() > 200, "{} cases ran", report.results.len());
}
