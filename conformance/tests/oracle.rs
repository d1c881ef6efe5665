//! The differential test: ferrocorn-core against gunicorn 27.0.1's own parser.
//!
//! `conformance/oracle/gunicorn_parse.py`, run once with `.venv/bin/python` (made by
//! `scripts/setup-python.sh`), feeds every case of both corpora (the gunicorn corpus and
//! `conformance/corpus`) to `gunicorn.http.parser.RequestParser` and prints what gunicorn
//! made of it, in the shape of a case's expectation. The same cases are replayed through
//! the core (whole feed; the split-independence check is the conformance runner's job)
//! and compared as the runner compares an expectation: the same verdict (accept or error
//! class) and, when both accept, the same requests. When both raise the same class, the
//! number of requests read whole before the error must match too.
//!
//! Every difference must be listed in `conformance/oracle/divergences-gunicorn27.toml`
//! (`[[divergence]]`: `case`, `gunicorn27`, `ours`, `reason` citing an RFC section or a
//! docs/compat.md row). The test fails on an unlisted difference, on a listed case that
//! no longer differs, and on a listed case whose recorded behaviours changed. The same
//! file lists (`[[corpus_drift]]`) the gunicorn corpus cases where gunicorn 27.0.1 does
//! not do what the corpus JSON (recorded from gunicorn 26.1) says; that list is exact too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use ferrocorn_conformance::case::{self, Case, Expectation};
use ferrocorn_conformance::check::{self, Comparison};
use ferrocorn_conformance::render::{self, Style};
use ferrocorn_conformance::replay::{self, Outcome};
use ferrocorn_conformance::settings;
use ferrocorn_core::Peer;
use serde::Deserialize;

const GUNICORN_VERSION: &str = "27.0.1";

fn oracle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oracle")
}

fn ledger_path() -> PathBuf {
    oracle_dir().join("divergences-gunicorn27.toml")
}

/// What gunicorn did with one case.
#[derive(Clone, Debug)]
struct Gunicorn {
    /// The outcome, in the shape of an expectation.
    outcome: Expectation,
    /// With an error: how many requests were read whole before it.
    complete_before_error: Option<usize>,
    /// With an error: `str()` of the exception.
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    case: String,
    gunicorn: String,
    #[serde(default)]
    outcome: Option<serde_json::Value>,
    #[serde(default)]
    complete_before_error: Option<usize>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    load_error: Option<String>,
}

/// Runs the oracle script once over both corpora.
fn run_gunicorn() -> Result<BTreeMap<String, Gunicorn>, String> {
    let root = ferrocorn_conformance::workspace_root();
    let python = root.join(".venv").join("bin").join("python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run scripts/setup-python.sh (it creates .venv with gunicorn {GUNICORN_VERSION}; scripts/test.sh runs it)",
            python.display()
        ));
    }
    let script = oracle_dir().join("gunicorn_parse.py");
    let corpus_arg = |label: &str, dir: &Path| format!("{label}={}", dir.display());
    let output = Command::new(&python)
        .arg(&script)
        .arg(corpus_arg("gunicorn", &ferrocorn_conformance::gunicorn_corpus_dir()))
        .arg(corpus_arg("ferrocorn", &ferrocorn_conformance::own_corpus_dir()))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut results = BTreeMap::new();
    let mut problems = Vec::new();
    for text in stdout.lines() {
        let line: Line = match serde_json::from_str(text) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("unreadable line {text:?}: {e}"));
                continue;
            }
        };
        if line.gunicorn != GUNICORN_VERSION {
            problems.push(format!(
                "{}: ran gunicorn {}, not {GUNICORN_VERSION}: run scripts/setup-python.sh",
                line.case, line.gunicorn
            ));
            continue;
        }
        if let Some(e) = line.load_error {
            problems.push(format!("{}: {e}", line.case));
            continue;
        }
        let Some(outcome) = line.outcome else {
            problems.push(format!("{}: no outcome", line.case));
            continue;
        };
        match case::parse_spec(&outcome.to_string()) {
            Ok((_, outcome)) => {
                results.insert(
                    line.case,
                    Gunicorn {
                        outcome,
                        complete_before_error: line.complete_before_error,
                        message: line.message,
                    },
                );
            }
            Err(e) => problems.push(format!("{}: bad outcome {outcome}: {e}", line.case)),
        }
    }
    if !output.status.success() || !problems.is_empty() || results.is_empty() {
        return Err(format!(
            "{} {} failed ({}):\n{}\n--- stderr\n{}",
            python.display(),
            script.display(),
            output.status,
            problems.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(results)
}

fn gunicorn() -> &'static BTreeMap<String, Gunicorn> {
    static RESULTS: OnceLock<Result<BTreeMap<String, Gunicorn>, String>> = OnceLock::new();
    match RESULTS.get_or_init(run_gunicorn) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for corpus in ferrocorn_conformance::default_corpora() {
        match case::load_dir(&corpus.label, &corpus.dir) {
            Ok(c) => cases.extend(c),
            Err(errors) => panic!("cannot load corpus {}: {errors:?}", corpus.label),
        }
    }
    cases
}

/// The core's outcome for a case, fed whole.
fn ours(case: &Case) -> Outcome {
    let config = match settings::proto_config(&case.settings) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{}: {e}", case.name),
    };
    replay::replay(&config, Peer::Unix, &[&case.bytes])
}

fn verdict_of(e: &Expectation) -> String {
    match e {
        Expectation::Requests(_) => String::from("accept"),
        Expectation::Error(class) => class.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// The ledger.

/// One known difference between gunicorn 27.0.1 and ferrocorn.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Divergence {
    case: String,
    /// What gunicorn 27.0.1 does: `accept` or an error class.
    gunicorn27: String,
    /// What ferrocorn does: `accept` or an error class.
    ours: String,
    /// Why; cites an RFC section (`§`) or a docs/compat.md row.
    reason: String,
}

/// A gunicorn corpus case whose recorded expectation (gunicorn 26.1) is not what
/// gunicorn 27.0.1 does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Drift {
    case: String,
    /// The corpus JSON's verdict: `accept` or an error class.
    corpus: String,
    /// gunicorn 27.0.1's verdict.
    gunicorn27: String,
    /// What changed in gunicorn.
    note: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ledger {
    #[serde(default)]
    divergence: Vec<Divergence>,
    #[serde(default)]
    corpus_drift: Vec<Drift>,
}

fn ledger() -> Ledger {
    let path = ledger_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let ledger: Ledger =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for d in &ledger.divergence {
        if !seen.insert(&d.case) {
            errors.push(format!("{}: listed twice", d.case));
        }
        if !d.reason.contains('§') && !d.reason.contains("compat.md") {
            errors.push(format!(
                "{}: the reason must cite an RFC section (§) or a docs/compat.md row",
                d.case
            ));
        }
        if d.gunicorn27 == d.ours {
            errors.push(format!(
                "{}: gunicorn27 and ours are both {:?}: only verdict differences can be listed",
                d.case, d.ours
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for d in &ledger.corpus_drift {
        if !seen.insert(&d.case) {
            errors.push(format!("corpus_drift {}: listed twice", d.case));
        }
    }
    assert!(errors.is_empty(), "{}:\n{}", path.display(), errors.join("\n"));
    ledger
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn ferrocorn_matches_gunicorn27_or_the_ledger() {
    let gunicorn = gunicorn();
    let ledger = ledger();
    let listed: BTreeMap<&str, &Divergence> =
        ledger.divergence.iter().map(|d| (d.case.as_str(), d)).collect();
    let cases = cases();
    let mut failures = Vec::new();
    let (mut same, mut ledgered) = (0, 0);
    let mut names = BTreeSet::new();
    for case in &cases {
        names.insert(case.name.as_str());
        let Some(g) = gunicorn.get(&case.name) else {
            failures.push(format!("{}: gunicorn_parse.py did not report it", case.name));
            continue;
        };
        let outcome = ours(case);
        let theirs = verdict_of(&g.outcome);
        let expected = render::expectation(&g.outcome);
        let actual = render::outcome(&outcome, Style::Compare);
        let shown = || {
            let message =
                g.message.as_ref().map(|m| format!("    (gunicorn: {m:?})\n")).unwrap_or_default();
            format!(
                "  --- gunicorn {GUNICORN_VERSION}\n{}{message}  --- ferrocorn\n{}",
                indent(&expected),
                indent(&render::outcome(&outcome, Style::Full))
            )
        };
        let entry = listed.get(case.name.as_str());
        match (check::compare(&g.outcome, &outcome), entry) {
            (Comparison::Agree, None) => {
                // Same class: the requests served before the error must match as well.
                let complete = outcome.requests.iter().filter(|r| r.complete).count();
                match g.complete_before_error {
                    Some(n) if n != complete => failures.push(format!(
                        "{}: both raise {theirs}, but gunicorn read {n} request(s) whole before it and ferrocorn {complete}\n{}",
                        case.name,
                        shown()
                    )),
                    _ => same += 1,
                }
            }
            (Comparison::Agree, Some(_)) => failures.push(format!(
                "{}: listed in {}, but ferrocorn now does what gunicorn {GUNICORN_VERSION} does ({theirs}): remove the entry",
                case.name,
                ledger_path().display()
            )),
            (Comparison::Differs(v), Some(d)) if d.ours == v.to_string() && d.gunicorn27 == theirs => {
                ledgered += 1;
            }
            (Comparison::Differs(v), Some(d)) => failures.push(format!(
                "{}: the ledger says gunicorn27 = {:?}, ours = {:?}, but now gunicorn {GUNICORN_VERSION} does {theirs} and ferrocorn {v}\n{}",
                case.name,
                d.gunicorn27,
                d.ours,
                shown()
            )),
            (Comparison::Differs(v), None) => failures.push(format!(
                "{}: gunicorn {GUNICORN_VERSION} does {theirs}, ferrocorn {v}, and {} does not list it\n{}",
                case.name,
                ledger_path().display(),
                shown()
            )),
            (Comparison::ContentDiffers, _) => failures.push(format!(
                "{}: both accept, but the requests differ (never ledger-able)\n  --- diff (- gunicorn {GUNICORN_VERSION}, + ferrocorn)\n{}",
                case.name,
                indent(&render::diff(&expected, &actual))
            )),
            (Comparison::Broken(what), _) => failures.push(format!(
                "{}: the core misbehaved ({what})\n{}",
                case.name,
                shown()
            )),
        }
    }
    for name in listed.keys() {
        if !names.contains(name) {
            failures.push(format!("{name}: listed in the ledger but no such case exists"));
        }
    }
    for name in gunicorn.keys() {
        if !names.contains(name.as_str()) {
            failures.push(format!(
                "{name}: reported by gunicorn_parse.py but not loaded by the conformance library"
            ));
        }
    }
    let summary = format!(
        "oracle: {} cases, {same} same as gunicorn {GUNICORN_VERSION}, {ledgered} ledgered, {} failing",
        cases.len(),
        failures.len()
    );
    eprintln!("{summary}");
    assert!(cases.len() > 100, "too few cases: {summary}");
    assert!(failures.is_empty(), "\n{}\n{summary}", failures.join("\n"));
}

#[test]
fn gunicorn27_drift_from_the_recorded_corpus_is_listed() {
    let gunicorn = gunicorn();
    let ledger = ledger();
    let listed: BTreeMap<&str, &Drift> =
        ledger.corpus_drift.iter().map(|d| (d.case.as_str(), d)).collect();
    let mut failures = Vec::new();
    let cases: Vec<Case> =
        cases().into_iter().filter(|c| c.name.starts_with("gunicorn/")).collect();
    for case in &cases {
        let Some(g) = gunicorn.get(&case.name) else {
            failures.push(format!("{}: gunicorn_parse.py did not report it", case.name));
            continue;
        };
        let recorded = verdict_of(&case.expect);
        let now = verdict_of(&g.outcome);
        let entry = listed.get(case.name.as_str());
        if case.expect == g.outcome {
            if entry.is_some() {
                failures.push(format!(
                    "{}: listed as corpus_drift, but gunicorn {GUNICORN_VERSION} does what the corpus says: remove the entry",
                    case.name
                ));
            }
            continue;
        }
        match entry {
            Some(d) if d.corpus == recorded && d.gunicorn27 == now => {}
            Some(d) => failures.push(format!(
                "{}: corpus_drift says corpus = {:?}, gunicorn27 = {:?} ({}); now corpus = {recorded:?}, gunicorn27 = {now:?}",
                case.name, d.corpus, d.gunicorn27, d.note
            )),
            None => {
                let mut text = format!(
                    "{}: the corpus says {recorded}, gunicorn {GUNICORN_VERSION} does {now}, and no corpus_drift entry lists it\n",
                    case.name
                );
                let _ = write!(
                    text,
                    "  --- diff (- corpus, + gunicorn {GUNICORN_VERSION})\n{}",
                    indent(&render::diff(
                        &render::expectation(&case.expect),
                        &render::expectation(&g.outcome)
                    ))
                );
                failures.push(text);
            }
        }
    }
    for name in listed.keys() {
        if !cases.iter().any(|c| c.name == *name) {
            failures.push(format!(
                "{name}: listed as corpus_drift but no such gunicorn corpus case exists"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn ledger_verdicts_are_ones_the_core_can_give() {
    let known = ferrocorn_conformance::ledger::KNOWN_CLASSES;
    let bad: Vec<String> = ledger()
        .divergence
        .iter()
        .filter(|d| d.ours != "accept" && !known.contains(&d.ours.as_str()))
        .map(|d| {
            format!(
                "{}: ours = {:?} is neither accept nor a class the core reports",
                d.case, d.ours
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
