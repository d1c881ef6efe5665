//! Running cases: every feeder, the split-independence check, the comparison with the
//! expectation, and the ledger, in parallel over cases.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use ferrocorn_core::Peer;

use crate::case::{self, Case};
use crate::check::{self, Comparison, Verdict};
use crate::feed::{self, Feeder};
use crate::ledger::Ledger;
use crate::render::{self, Style};
use crate::replay::{self, Outcome};
use crate::settings;

/// A directory of cases and the label its case names start with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corpus {
    /// `gunicorn`, `ferrocorn`, ...
    pub label: String,
    /// The directory (searched recursively).
    pub dir: PathBuf,
}

/// Something that fails the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A corpus, case or ledger could not be loaded, or a case's settings are not understood.
    Load(String),
    /// A feeder gave another outcome than [`Feeder::Whole`]. Never excusable.
    SplitDependent {
        /// The feeder that disagreed.
        feeder: Feeder,
        /// The log of the whole feed.
        whole: String,
        /// The log of this feeder.
        got: String,
    },
    /// The verdict differs from the expectation and the ledger does not list the case.
    Unlisted {
        /// What we did.
        ours: Verdict,
        /// The expectation, rendered.
        expected: String,
        /// The outcome, rendered in the same style.
        actual: String,
    },
    /// Accepted as expected, but the requests are not the expected ones. Never excusable.
    ContentDiffers {
        /// The expectation, rendered.
        expected: String,
        /// The outcome, rendered in the same style.
        actual: String,
    },
    /// The core stalled, looped or misused its API. Never excusable.
    Broken {
        /// What happened.
        what: String,
        /// The full log.
        log: String,
    },
    /// The ledger lists the case with another `ours` than what we now do.
    LedgerMismatch {
        /// `ours` in the ledger.
        listed: String,
        /// What we do.
        ours: Verdict,
        /// The expectation, rendered.
        expected: String,
        /// The outcome, rendered.
        actual: String,
    },
    /// The ledger lists a case that now agrees with its expectation: remove the entry.
    LedgerStale,
    /// The ledger lists a case whose failure is not a verdict difference.
    LedgerNotExcusable,
    /// The ledger lists a case that does not exist.
    LedgerUnknownCase,
}

impl Failure {
    /// Whether this failure is about one feeder rather than the whole feed.
    fn feeder(&self) -> Feeder {
        match self {
            Failure::SplitDependent { feeder, .. } => *feeder,
            _ => Feeder::Whole,
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Load(msg) => writeln!(f, "cannot load: {msg}"),
            Failure::SplitDependent { feeder, whole, got } => write!(
                f,
                "outcome depends on how the input is split (never ledger-able)\n  --- whole\n{}  --- {feeder}\n{}  --- diff\n{}",
                indent(whole),
                indent(got),
                indent(&render::diff(whole, got))
            ),
            Failure::Unlisted { ours, expected, actual } => write!(
                f,
                "differs from the expectation (ours: {ours}) and is not in the ledger\n  --- expected\n{}  --- actual\n{}",
                indent(expected),
                indent(actual)
            ),
            Failure::ContentDiffers { expected, actual } => write!(
                f,
                "accepted, but the requests differ (never ledger-able)\n  --- diff (- expected, + actual)\n{}",
                indent(&render::diff(expected, actual))
            ),
            Failure::Broken { what, log } => {
                write!(f, "core misbehaved: {what}\n  --- log\n{}", indent(log))
            }
            Failure::LedgerMismatch { listed, ours, expected, actual } => write!(
                f,
                "the ledger says ours = {listed:?}, but we now do {ours}\n  --- expected\n{}  --- actual\n{}",
                indent(expected),
                indent(actual)
            ),
            Failure::LedgerStale => writeln!(
                f,
                "listed in the ledger but agrees with the expectation now: remove the entry"
            ),
            Failure::LedgerNotExcusable => {
                writeln!(
                    f,
                    "listed in the ledger, but only verdict differences can be (see the other failure)"
                )
            }
            Failure::LedgerUnknownCase => {
                writeln!(f, "listed in the ledger but no such case exists")
            }
        }
    }
}

/// How a case came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Agrees with its expectation on every feeder.
    Pass,
    /// Differs as the ledger says, on every feeder.
    Divergence,
    /// At least one failure.
    Fail,
}

/// The result of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Pass, divergence or fail.
    pub status: Status,
    /// The event log of the whole feed ([`Style::Full`]): what snapshots hold.
    pub log: String,
    /// The verdict of the whole feed, when the case could run.
    pub verdict: Option<Verdict>,
    /// Everything wrong with it.
    pub failures: Vec<Failure>,
}

/// Replays a case with every feeder; returns the outcome per feeder, whole first.
pub fn replay_all(case: &Case) -> Result<Vec<(Feeder, Outcome)>, String> {
    let config = Arc::new(settings::proto_config(&case.settings)?);
    Ok(feed::all()
        .into_iter()
        .map(|feeder| {
            let chunks = feeder.chunks(&case.bytes);
            (feeder, replay::replay(&config, Peer::Unix, &chunks))
        })
        .collect())
}

/// Runs one case against the ledger.
pub fn run_case(case: &Case, ledger: &Ledger) -> CaseResult {
    let outcomes = match replay_all(case) {
        Ok(o) => o,
        Err(e) => {
            return CaseResult {
                name: case.name.clone(),
                status: Status::Fail,
                log: String::new(),
                verdict: None,
                failures: vec![Failure::Load(format!(
                    "{}: {e}",
                    case.path.with_extension("json").display()
                ))],
            };
        }
    };
    let (_, whole) = &outcomes[0];
    let log = render::outcome(whole, Style::Full);
    let mut failures = Vec::new();
    for (feeder, outcome) in &outcomes[1..] {
        if !outcome.same_but_message(whole) {
            failures.push(Failure::SplitDependent {
                feeder: *feeder,
                whole: log.clone(),
                got: render::outcome(outcome, Style::Full),
            });
        }
    }
    let expected = || render::expectation(&case.expect);
    let actual = || render::outcome(whole, Style::Full);
    let actual_compare = || render::outcome(whole, Style::Compare);
    let entry = ledger.get(&case.name);
    let mut diverges = false;
    match (check::compare(&case.expect, whole), entry) {
        (Comparison::Agree, None) => {}
        (Comparison::Agree, Some(_)) => failures.push(Failure::LedgerStale),
        (Comparison::Differs(ours), None) => {
            failures.push(Failure::Unlisted { ours, expected: expected(), actual: actual() })
        }
        (Comparison::Differs(ours), Some(e)) if e.ours == ours.to_string() => diverges = true,
        (Comparison::Differs(ours), Some(e)) => failures.push(Failure::LedgerMismatch {
            listed: e.ours.clone(),
            ours,
            expected: expected(),
            actual: actual(),
        }),
        (other, e) => {
            failures.push(match other {
                Comparison::Broken(what) => Failure::Broken { what, log: log.clone() },
                _ => Failure::ContentDiffers { expected: expected(), actual: actual_compare() },
            });
            if e.is_some() {
                failures.push(Failure::LedgerNotExcusable);
            }
        }
    }
    let status = if !failures.is_empty() {
        Status::Fail
    } else if diverges {
        Status::Divergence
    } else {
        Status::Pass
    };
    CaseResult {
        name: case.name.clone(),
        status,
        log,
        verdict: Some(check::verdict(whole)),
        failures,
    }
}

/// Runs cases on every available core; results come back in the order of `cases`.
pub fn run_cases(cases: &[Case], ledger: &Ledger) -> Vec<CaseResult> {
    let workers =
        thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16).min(cases.len().max(1));
    let mut results: Vec<(usize, CaseResult)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    cases
                        .iter()
                        .enumerate()
                        .skip(w)
                        .step_by(workers)
                        .map(|(i, case)| (i, run_case(case, ledger)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Everything a run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One result per case, sorted by name.
    pub cases: Vec<CaseResult>,
    /// Failures that belong to no single case that ran: load errors, ledger entries for
    /// missing cases (`(name, failure)`).
    pub other: Vec<(String, Failure)>,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.status == Status::Pass).count()
    }

    /// Cases that failed, plus failures outside any case.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| c.status == Status::Fail).count() + self.other.len()
    }

    /// Cases that differ as the ledger says.
    pub fn divergences(&self) -> usize {
        self.cases.iter().filter(|c| c.status == Status::Divergence).count()
    }

    /// Whether nothing failed.
    pub fn is_success(&self) -> bool {
        self.failed() == 0
    }

    /// `conformance: N passed, N failed, N divergences (ledger)`.
    pub fn summary(&self) -> String {
        format!(
            "conformance: {} passed, {} failed, {} divergences (ledger)",
            self.passed(),
            self.failed(),
            self.divergences()
        )
    }

    /// Every failure, with its case name, feeder and logs.
    pub fn failure_text(&self) -> String {
        let mut out = String::new();
        for (name, failure) in &self.other {
            out.push_str(&format!("FAIL {name}: {failure}\n"));
        }
        for case in &self.cases {
            for failure in &case.failures {
                out.push_str(&format!(
                    "FAIL {} [feeder {}]: {failure}\n",
                    case.name,
                    failure.feeder()
                ));
            }
        }
        out
    }
}

/// Loads the corpora and the ledger and runs every case whose name contains `filter`.
pub fn run(corpora: &[Corpus], ledger_path: &Path, filter: Option<&str>) -> Report {
    let mut report = Report::default();
    let ledger = match Ledger::load(ledger_path) {
        Ok(l) => l,
        Err(errors) => {
            report
                .other
                .extend(errors.into_iter().map(|e| (String::from("ledger"), Failure::Load(e))));
            Ledger::default()
        }
    };
    let mut cases = Vec::new();
    let mut loaded = Vec::new();
    for corpus in corpora {
        match case::load_dir(&corpus.label, &corpus.dir) {
            Ok(c) => {
                cases.extend(c);
                loaded.push(corpus.label.as_str());
            }
            Err(errors) => report.other.extend(
                errors
                    .into_iter()
                    .map(|e| (format!("corpus {}", corpus.label), Failure::Load(e.to_string()))),
            ),
        }
    }
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    cases.retain(|c| selected(&c.name));
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in cases.windows(2) {
        if pair[0].name == pair[1].name {
            report.other.push((
                pair[0].name.clone(),
                Failure::Load(String::from("two cases with this name")),
            ));
        }
    }
    // Ledger entries of a corpus that loaded must name a case of it.
    for name in ledger.entries.keys() {
        let label = name.split('/').next().unwrap_or_default();
        if loaded.contains(&label) && selected(name) && !cases.iter().any(|c| &c.name == name) {
            report.other.push((name.clone(), Failure::LedgerUnknownCase));
        }
    }
    report.cases = run_cases(&cases, &ledger);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts() {
        let result = |status| CaseResult {
            name: String::from("x/y"),
            status,
            log: String::new(),
            verdict: None,
            failures: Vec::new(),
        };
        let report = Report {
            cases: vec![
                result(Status::Pass),
                result(Status::Pass),
                result(Status::Divergence),
                result(Status::Fail),
            ],
            other: vec![(String::from("a/b"), Failure::LedgerUnknownCase)],
        };
        assert_eq!(report.summary(), "conformance: 2 passed, 2 failed, 1 divergences (ledger)");
        assert!(!report.is_success());
        assert!(
            report
                .failure_text()
                .contains("FAIL a/b: listed in the ledger but no such case exists")
        );
    }
}
