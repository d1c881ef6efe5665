//! `ferrocorn-conformance [--corpus [LABEL=]DIR ...] [--ledger FILE] [--filter TEXT] [--show]`
//! `ferrocorn-conformance --target HOST:PORT [--proxy v1|v2] [--ledger FILE] [--bless] [--filter TEXT] [--show]`
//!
//! With `--target`, the cases go over TCP to a running server instead of through the core
//! (`ferrocorn_conformance::wire`): the ledger is then the server's wire ledger (no
//! default), `--bless` rewrites it from the run, `--show` prints each case's observation.
//!
//! Replays the gunicorn request corpus (`$FERROCORN_SHARED/corpus/gunicorn-requests`,
//! default `../shared` next to the workspace root) and `conformance/corpus` through the
//! core, prints every failure and the summary line, and exits 1 when anything failed
//! (2 on a usage error). `--corpus` replaces the default corpora; a case is named
//! `LABEL/...` where LABEL defaults to the directory name.

use std::path::PathBuf;
use std::process::ExitCode;

use ferrocorn_conformance::case;
use ferrocorn_conformance::runner::{self, Corpus};
use ferrocorn_conformance::wire::{self, Proxy, WireOptions};

const USAGE: &str = "usage: ferrocorn-conformance [--corpus [LABEL=]DIR ...] [--ledger FILE] [--filter TEXT] [--show]\n\
       ferrocorn-conformance --target HOST:PORT [--proxy v1|v2] [--ledger FILE] [--bless] [--filter TEXT] [--show]\n\
  --target  replay the cases over TCP against the HTTP/1.1 server at HOST:PORT\n\
  --proxy   send a PROXY header of this version in front of each case (the server expects one)\n\
  --bless   with --target: write the ledger from this run (reasons of kept entries stay)\n\
  --corpus  a directory of NAME.http + NAME.json cases (repeatable; replaces the defaults)\n\
  --ledger  the divergence ledger (default conformance/divergences.toml)\n\
  --filter  only the cases whose name contains TEXT\n\
  --show    print the event log of every case that ran";

fn corpus_arg(arg: &str) -> Corpus {
    match arg.split_once('=') {
        Some((label, dir)) if !label.is_empty() && !label.contains('/') => {
            Corpus { label: label.to_string(), dir: PathBuf::from(dir) }
        }
        _ => {
            let dir = PathBuf::from(arg);
            let label = dir
                .file_name()
                .map_or_else(|| arg.to_string(), |n| n.to_string_lossy().into_owned());
            Corpus { label, dir }
        }
    }
}

fn main() -> ExitCode {
    let mut corpora = Vec::new();
    let mut ledger = ferrocorn_conformance::ledger_path();
    let mut filter = None;
    let mut show = false;
    let mut target = None;
    let mut proxy = None;
    let mut ledger_given = false;
    let mut bless = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed = match arg.as_str() {
            "--corpus" => value("--corpus").map(|v| corpora.push(corpus_arg(&v))),
            "--ledger" => value("--ledger").map(|v| {
                ledger = PathBuf::from(v);
                ledger_given = true;
            }),
            "--target" => value("--target").map(|v| target = Some(v)),
            "--proxy" => value("--proxy").and_then(|v| {
                proxy = Some(match v.as_str() {
                    "v1" => Proxy::V1,
                    "v2" => Proxy::V2,
                    other => return Err(format!("--proxy must be v1 or v2, not {other:?}")),
                });
                Ok(())
            }),
            "--bless" => {
                bless = true;
                Ok(())
            }
            "--filter" => value("--filter").map(|v| filter = Some(v)),
            "--show" => {
                show = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("ferrocorn-conformance: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if corpora.is_empty() {
        corpora = ferrocorn_conformance::default_corpora();
    }
    if let Some(target) = target {
        if !ledger_given {
            ledger = PathBuf::from("/dev/null");
        }
        return run_wire(&target, proxy, &corpora, &ledger, filter.as_deref(), show, bless);
    }
    if proxy.is_some() || bless {
        eprintln!("ferrocorn-conformance: --proxy and --bless need --target\n{USAGE}");
        return ExitCode::from(2);
    }
    let report = runner::run(&corpora, &ledger, filter.as_deref());
    if show {
        for case in &report.cases {
            println!("=== {} ({:?})\n{}", case.name, case.status, case.log);
        }
    }
    print!("{}", report.failure_text());
    println!("{}", report.summary());
    if report.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn run_wire(
    target: &str,
    proxy: Option<Proxy>,
    corpora: &[Corpus],
    ledger: &std::path::Path,
    filter: Option<&str>,
    show: bool,
    bless: bool,
) -> ExitCode {
    let mut opts = match WireOptions::new(target) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    opts.proxy = proxy;
    let mut cases = Vec::new();
    for corpus in corpora {
        match case::load_dir(&corpus.label, &corpus.dir) {
            Ok(c) => cases.extend(c),
            Err(errors) => {
                for e in errors {
                    eprintln!("Error: corpus {}: {e}", corpus.label);
                }
                return ExitCode::FAILURE;
            }
        }
    }
    cases.retain(|c| filter.is_none_or(|f| c.name.contains(f)));
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let report = wire::run(&cases, &opts, ledger);
    if show {
        for r in &report.results {
            println!("{}: expected {}, observed {}", r.case, r.expected, r.observed);
        }
    }
    for (case, what) in &report.failures {
        println!("FAIL {case}: {what}");
    }
    if !report.ledger_diff.is_empty() {
        println!("ledger diff ({}):\n{}", ledger.display(), report.ledger_diff);
    }
    println!(
        "{} ({} cases skipped: settings the server does not run with)",
        report.summary(),
        report.skipped
    );
    if bless {
        let mut report = report;
        let is_ferrocorn =
            ledger.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ferrocorn"));
        // A ferrocorn ledger borrows the reasons of the core replay's ledger.
        if let Ok(core) =
            ferrocorn_conformance::ledger::Ledger::load(&ferrocorn_conformance::ledger_path())
        {
            for e in report.ledger.values_mut() {
                if e.reason.is_empty()
                    && is_ferrocorn
                    && let Some(c) = core.get(&e.case)
                {
                    e.reason = c.reason.clone();
                }
            }
        }
        let header = wire::ledger_header();
        if let Err(e) = wire::bless(&report, ledger, &header) {
            eprintln!("Error: cannot write {}: {e}", ledger.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} ({} entries)", ledger.display(), report.ledger.len());
        return ExitCode::SUCCESS;
    }
    if report.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
