//! # ferrocorn-conformance: replays request corpora through `ferrocorn-core`
//!
//! A **case** ([`case::Case`]) is a pair of files in a corpus directory: `NAME.http`, the
//! exact bytes a client sends, and `NAME.json`, the settings the case runs under and what
//! must come out (a list of requests, or the name of the gunicorn exception). The format is
//! the one of `shared/corpus/gunicorn-requests/README.md`; our own cases under
//! `conformance/corpus/` use it too.
//!
//! Every case is replayed ([`replay`]) through a fresh [`ferrocorn_core::Connection`] by
//! several **feeders** ([`feed::Feeder`]): the same bytes cut into different pieces (whole,
//! line by line, byte by byte, seeded random chunks, first byte then the rest). Whatever
//! the cut, the core must produce the same [`replay::Outcome`]: a split-dependent result
//! is always a failure. The outcome is rendered as a plain-text event log ([`render`]),
//! which is what the insta snapshots hold and what failures print.
//!
//! The outcome is then compared with the case's expectation ([`check`]). A difference is
//! a failure unless the **ledger** (`conformance/divergences.toml`, [`ledger`]) lists the
//! case with what ferrocorn does instead and why (an RFC reason). The ledger is checked
//! both ways: an entry whose `ours` is no longer what the core does, or whose case now
//! agrees with the expectation, is a failure too, so the ledger never goes stale.
//!
//! [`runner`] ties it together: [`runner::run`] loads corpora and the ledger and returns a
//! [`runner::Report`] with one result per case and the summary line.

pub mod case;
pub mod check;
pub mod feed;
pub mod ledger;
pub mod render;
pub mod replay;
pub mod runner;
pub mod settings;
pub mod wire;
pub mod wire_doc;

use std::path::PathBuf;

/// The workspace root, as seen from this package's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The shared directory: `$FERROCORN_SHARED` when set, else `../shared` next to the
/// workspace root.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FERROCORN_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("..").join("shared"),
    }
}

/// The gunicorn request corpus (`<shared>/corpus/gunicorn-requests`).
pub fn gunicorn_corpus_dir() -> PathBuf {
    shared_dir().join("corpus").join("gunicorn-requests")
}

/// Our own corpus (`conformance/corpus`).
pub fn own_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The ledger of known divergences (`conformance/divergences.toml`).
pub fn ledger_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("divergences.toml")
}

/// The default corpora, labelled as case names start: `gunicorn/...` and `ferrocorn/...`.
pub fn default_corpora() -> Vec<runner::Corpus> {
    vec![
        runner::Corpus { label: String::from("gunicorn"), dir: gunicorn_corpus_dir() },
        runner::Corpus { label: String::from("ferrocorn"), dir: own_corpus_dir() },
    ]
}

/// Runs one of the oracle scripts (`conformance/oracle/NAME.py`) with the project venv's
/// Python (where scripts/setup-python.sh installed gunicorn 27.0.1), `input` as JSON on its
/// stdin; its stdout parsed as JSON. Panics (the caller is a test) with the script's
/// stderr when it fails, and with a pointer to setup-python.sh when the venv is missing.
pub fn run_oracle_script(name: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = workspace_root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup-python.sh", python.display());
    let mut child = Command::new(&python)
        .arg(workspace_root().join("conformance/oracle").join(format!("{name}.py")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the oracle script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the cases");
    let out = child.wait_with_output().expect("wait for the oracle script");
    assert!(out.status.success(), "{name}.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the oracle's JSON")
}
