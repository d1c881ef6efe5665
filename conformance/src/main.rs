//! `ferrocorn-conformance [--corpus [LABEL=]DIR ...] [--ledger FILE] [--filter TEXT] [--show]`
//!
//! Replays the gunicorn request corpus (`$FERROCORN_SHARED/corpus/gunicorn-requests`,
//! default `../shared` next to the workspace root) and `conformance/corpus` through the
//! core, prints every failure and the summary line, and exits 1 when anything failed
//! (2 on a usage error). `--corpus` replaces the default corpora; a case is named
//! `LABEL/...` where LABEL defaults to the directory name.

use std::path::PathBuf;
use std::process::ExitCode;

use ferrocorn_conformance::runner::{self, Corpus};

const USAGE: &str = "usage: ferrocorn-conformance [--corpus [LABEL=]DIR ...] [--ledger FILE] [--filter TEXT] [--show]\n\
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
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed = match arg.as_str() {
            "--corpus" => value("--corpus").map(|v| corpora.push(corpus_arg(&v))),
            "--ledger" => value("--ledger").map(|v| ledger = PathBuf::from(v)),
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
