//! The conformance run as tests: everything green, and one insta snapshot of the event log
//! of every case (`tests/snapshots/corpus__<corpus>__<dir>__<name>.snap`).

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use ferrocorn_conformance::case::{self, Expectation};
use ferrocorn_conformance::ledger::Ledger;
use ferrocorn_conformance::runner;

const SNAPSHOT_PREFIX: &str = "corpus__";

/// `gunicorn/valid/025` -> `gunicorn__valid__025`.
fn snapshot_name(case: &str) -> String {
    case.replace('/', "__")
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("snapshots")
}

#[test]
fn every_case_conforms() {
    let report = runner::run(
        &ferrocorn_conformance::default_corpora(),
        &ferrocorn_conformance::ledger_path(),
        None,
    );
    assert!(report.cases.len() > 100, "too few cases ran: {}", report.summary());
    assert!(report.is_success(), "\n{}{}", report.failure_text(), report.summary());
}

#[test]
fn event_logs_match_snapshots() {
    let mut cases = Vec::new();
    for corpus in ferrocorn_conformance::default_corpora() {
        match case::load_dir(&corpus.label, &corpus.dir) {
            Ok(c) => cases.extend(c),
            Err(errors) => panic!("cannot load corpus {}: {errors:?}", corpus.label),
        }
    }
    let ledger = Ledger::load(&ferrocorn_conformance::ledger_path()).unwrap_or_default();
    let results = runner::run_cases(&cases, &ledger);
    let mut mismatched = Vec::new();
    for (case, result) in cases.iter().zip(&results) {
        let expected = match &case.expect {
            Expectation::Requests(r) => format!("{} request(s)", r.len()),
            Expectation::Error(class) => format!("error {class}"),
        };
        let description = format!("{} (expected: {expected})", case.name);
        let name = snapshot_name(&case.name);
        let check = panic::catch_unwind(AssertUnwindSafe(|| {
            insta::with_settings!({
                snapshot_path => snapshot_dir(),
                description => description,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(name.as_str(), &result.log);
            });
        }));
        if check.is_err() {
            mismatched.push(case.name.clone());
        }
    }
    assert!(mismatched.is_empty(), "{} snapshot(s) differ: {mismatched:#?}", mismatched.len());
}

/// A snapshot whose case was removed or renamed would otherwise linger unnoticed
/// (`cargo insta --unreferenced` is not available everywhere).
#[test]
fn no_orphan_snapshots() {
    let mut names = BTreeSet::new();
    for corpus in ferrocorn_conformance::default_corpora() {
        for case in case::load_dir(&corpus.label, &corpus.dir).unwrap_or_default() {
            names.insert(format!("{SNAPSHOT_PREFIX}{}.snap", snapshot_name(&case.name)));
        }
    }
    let Ok(entries) = std::fs::read_dir(snapshot_dir()) else {
        return;
    };
    let orphans: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(SNAPSHOT_PREFIX) && f.ends_with(".snap") && !names.contains(f))
        .collect();
    assert!(orphans.is_empty(), "snapshots without a case (delete them): {orphans:#?}");
}
