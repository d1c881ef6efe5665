//! The conformance runner over the wire (`ferrocorn_conformance::wire`, the library of
//! `ferrocorn-conformance --target`) against real servers running the echo application
//! (tests/apps/echo_app.py): the INSTALLED `ferrocorn` (sync and gthread workers,
//! from `.venv`, built by scripts/install-ferrocorn.sh) and gunicorn 27.0.1 (the oracle).
//!
//! Every case of the request corpora with default settings goes over TCP four ways
//! (whole, line by line, random pieces, first byte then the rest), each on a fresh
//! connection with a half-close; the run must agree with the server's committed ledger
//! (`conformance/wire/SERVER.toml`) both ways: no unlisted difference, no stale entry.
//! After a deliberate change: `scripts/conformance-ledgers.sh` (runs every server again,
//! rewrites the ledgers and docs/conformance.md), then review the diff.
//!
//! granian's ledger is not checked here: granian closes the connection when the client
//! half-closes, answered or not, so its outcomes depend on timing (docs/conformance.md,
//! "depends on how the bytes were sent").

use crate::support;

use ferrocorn_conformance::wire::{self, WireEntry, WireOptions};
use ferrocorn_conformance::{case, default_corpora};
use support::{oracle_venv, repo_root, start_installed};

fn cases() -> Vec<case::Case> {
    let mut cases = Vec::new();
    for corpus in default_corpora() {
        cases.extend(case::load_dir(&corpus.label, &corpus.dir).expect("the corpora load"));
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// Runs every case against `program ARGS echo_app:app` and checks it with the ledger.
fn check(program: &str, args: &[&str], ledger: &str) -> wire::WireReport {
    check_with(program, args, ledger, None)
}

/// [`check`], with a PROXY header of `proxy`'s version in front of every case.
fn check_with(
    program: &str,
    args: &[&str],
    ledger: &str,
    proxy: Option<wire::Proxy>,
) -> wire::WireReport {
    let mut argv: Vec<&str> = vec!["-w", "1", "-b", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    argv.push("echo_app:app");
    let server = start_installed(program, &argv, &[]);
    let addr = server.addr();
    let mut opts = WireOptions::new(&addr.to_string()).expect("the address");
    opts.proxy = proxy;
    let path = repo_root().join("conformance/wire").join(ledger);
    let report = wire::run(&cases(), &opts, &path);
    let failures: Vec<String> =
        report.failures.iter().map(|(c, w)| format!("FAIL {c}: {w}")).collect();
    assert!(
        report.is_success(),
        "{program} {args:?} over the wire:\n{}\nledger diff ({}):\n{}\n{}\nIf the change is deliberate: scripts/conformance-ledgers.sh",
        failures.join("\n"),
        path.display(),
        report.ledger_diff,
        report.summary()
    );
    // Every default-settings case ran: nothing was skipped that could run.
    assert!(report.results.len() > 200, "{} cases ran", report.results.len());
    report
}

/// ferrocorn never smuggles, never answers after a rejection, and its application sees
/// what the case says (its ledger holds only refusals and the one known gthread finding).
fn no_unsafe_kind(report: &wire::WireReport) {
    for e in report.ledger.values() {
        let kind = ferrocorn_conformance::wire_doc::kind(e);
        assert!(
            !matches!(
                kind,
                "more responses than requests (smuggling)"
                    | "a response after a rejection"
                    | "the application saw another request"
                    | "laxer: serves a request the case refuses"
                    | "depends on how the bytes were sent"
            ),
            "{}: {kind} ({:?})",
            e.case,
            WireEntry::clone(e)
        );
    }
}

#[test]
fn wire_ferrocorn_sync() {
    let report = check("ferrocorn", &[], "ferrocorn-sync.toml");
    no_unsafe_kind(&report);
}

#[test]
fn wire_ferrocorn_gthread() {
    let report = check("ferrocorn", &["-k", "gthread", "--threads", "4"], "ferrocorn-gthread.toml");
    no_unsafe_kind(&report);
}

#[test]
fn wire_gunicorn_27() {
    oracle_venv();
    check("gunicorn", &[], "gunicorn-27.toml");
}

/// With `--proxy-protocol v1`, every case behind a PROXY v1 header (and the corpus's own
/// v1 cases as they are): the same ledger as without.
#[test]
fn wire_ferrocorn_sync_proxy_v1() {
    let report = check_with(
        "ferrocorn",
        &["--proxy-protocol", "v1"],
        "ferrocorn-sync.toml",
        Some(wire::Proxy::V1),
    );
    assert!(report.results.iter().any(|r| r.case.contains("proxy_v1")), "the v1 cases ran");
    no_unsafe_kind(&report);
}

/// The same with `--proxy-protocol v2` and binary headers.
#[test]
fn wire_ferrocorn_sync_proxy_v2() {
    let report = check_with(
        "ferrocorn",
        &["--proxy-protocol", "v2"],
        "ferrocorn-sync.toml",
        Some(wire::Proxy::V2),
    );
    assert!(report.results.iter().any(|r| r.case.contains("proxy_v2")), "the v2 cases ran");
    no_unsafe_kind(&report);
}
