//! Differential fuzz target: ferrocorn-core against gunicorn 27.0.1's own parser on the
//! same bytes.
//!
//! One Python process (`conformance/oracle/gunicorn_batch.py`, run with the `.venv` of
//! scripts/setup-python.sh) lives as long as the test; every fuzz input becomes a batch
//! of eight connections' worth of bytes (`ferrocorn_fuzz::request`, then seven small
//! mutations of it) sent to it in one line and answered in one line, so the process
//! round trip is paid once per batch.
//!
//! Both sides use the default settings and a trusted peer (`Peer::Unix`, gunicorn's
//! `None`). Every difference must be one gunicorn 27 and ferrocorn already differ on in
//! the ledger of `conformance/oracle/divergences-gunicorn27.toml` (the same pair of
//! verdicts: gunicorn's and ours, each `accept` or an error class); anything else is a
//! finding and fails. Some kinds more are the same on the wire and pass: both refuse the
//! same request but name different errors (bytes wrong in several places: each parser
//! names the fault it meets first; both answer with an error and close); and
//! `NoMoreData` (the bytes end in the middle of a head: neither server answers), judged as
//! an accept of the whole requests before it; and where the core refused a head that had
//! not ended yet (gunicorn looks at the fields once the head is whole), both are asked
//! again with the head finished by an empty line; and where gunicorn failed in the body
//! of a request whose head the core refused, the pair judged is gunicorn's `accept`.
//! Findings: two different verdicts no ledger entry has, both accepting
//! different requests, or the same error after a different number of whole requests.
//! Inputs on which gunicorn itself crashes (an exception that is not one of
//! `gunicorn.http.errors`) say nothing about ferrocorn and are skipped.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use ferrocorn_core::Peer;
use ferrocorn_core::config::ProtoConfig;
use ferrocorn_fuzz::{Choices, Outcome, Parsed, drive, mutate, request, workspace_root};
use serde_json::Value;

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let root = workspace_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-python.sh (gunicorn 27.0.1 is the oracle)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("conformance/oracle/gunicorn_batch.py"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start gunicorn_batch.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Mutex::new(Oracle { _child: child, stdin, stdout })
    })
}

/// The (gunicorn27, ours) verdict pairs of the ledger.
fn ledger_pairs() -> &'static BTreeSet<(String, String)> {
    static PAIRS: OnceLock<BTreeSet<(String, String)>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        let path = workspace_root().join("conformance/oracle/divergences-gunicorn27.toml");
        let text = std::fs::read_to_string(&path).expect("read the gunicorn 27 ledger");
        let doc: toml::Table = text.parse().expect("the ledger is TOML");
        doc["divergence"]
            .as_array()
            .expect("[[divergence]] entries")
            .iter()
            .map(|d| {
                let s = |k: &str| d[k].as_str().expect("a string").to_string();
                (s("gunicorn27"), s("ours"))
            })
            .collect()
    })
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn unlatin1(v: &Value) -> Vec<u8> {
    v.as_str().expect("a string").chars().map(|c| c as u32 as u8).collect()
}

fn pairs(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    v.as_array().expect("pairs").iter().map(|p| (unlatin1(&p[0]), unlatin1(&p[1]))).collect()
}

/// What gunicorn made of one input.
struct Gunicorn {
    verdict: String,
    requests: Vec<Parsed>,
    complete_before_error: usize,
    /// With an error: the heads read before it, the one it came in included.
    heads_read: usize,
    crash: bool,
}

fn ask(batch: &[Vec<u8>]) -> Vec<Gunicorn> {
    let line = Value::Array(batch.iter().map(|b| Value::String(latin1(b))).collect()).to_string();
    let mut o = oracle().lock().unwrap_or_else(|e| e.into_inner());
    writeln!(o.stdin, "{line}").expect("write a batch to the oracle");
    o.stdin.flush().expect("flush");
    let mut answer = String::new();
    o.stdout.read_line(&mut answer).expect("read the oracle's answer");
    let answers: Vec<Value> = serde_json::from_str(&answer).expect("the oracle's JSON");
    assert_eq!(answers.len(), batch.len());
    answers
        .iter()
        .map(|a| {
            let outcome = &a["outcome"];
            let (verdict, requests) = match outcome.get("error") {
                Some(e) => (e.as_str().unwrap().to_string(), Vec::new()),
                None => {
                    let reqs = outcome["requests"]
                        .as_array()
                        .expect("requests")
                        .iter()
                        .map(|r| Parsed {
                            method: unlatin1(&r["method"]),
                            uri: unlatin1(&r["uri"]),
                            version: (
                                r["version"][0].as_u64().unwrap() as u8,
                                r["version"][1].as_u64().unwrap() as u8,
                            ),
                            headers: pairs(&r["headers"]),
                            body: unlatin1(&r["body"]),
                            trailers: pairs(&r["trailers"]),
                        })
                        .collect();
                    (String::from("accept"), reqs)
                }
            };
            Gunicorn {
                verdict,
                requests,
                complete_before_error: a["complete_before_error"].as_u64().unwrap_or(0) as usize,
                heads_read: a["heads_read"].as_u64().unwrap_or(0) as usize,
                crash: a["crash"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// SplitMix64 bytes, to derive the batch's mutations from the first input.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// Why ours and gunicorn's outcomes differ in a way no ledger entry explains.
fn finding(ours: &Outcome, g: &Gunicorn) -> Option<String> {
    let v = ours.verdict();
    let g_whole = if g.verdict == "accept" { g.requests.len() } else { g.complete_before_error };
    let o_whole = ours.requests.len();
    // The requests both read whole are the same requests (gunicorn reports them when it
    // accepts everything).
    let common = o_whole.min(g.requests.len());
    if ours.requests[..common] != g.requests[..common] {
        return Some(format!(
            "different requests:\nours     {:?}\ngunicorn {:?}",
            ours.requests, g.requests
        ));
    }
    let pair = |a: &str, b: &str| ledger_pairs().contains(&(a.to_string(), b.to_string()));
    if o_whole < g_whole {
        // The core stopped earlier: after a request that does not let the connection
        // persist (gunicorn's parser reads on, its workers do not), or refusing a
        // request gunicorn accepts, as the ledger allows.
        if ours.stopped || (v != "accept" && pair("accept", v)) {
            return None;
        }
        return Some(format!(
            "gunicorn 27 reads {g_whole} whole requests, ferrocorn {o_whole} then {v}: no ledger entry has (accept, {v})"
        ));
    }
    if o_whole > g_whole {
        // gunicorn refused a request the core accepts: a pair of the ledger, or the bytes
        // ended in the middle of its head (NoMoreData: nobody answers).
        if g.verdict == "NoMoreData" || pair(&g.verdict, "accept") {
            return None;
        }
        return Some(format!(
            "ferrocorn reads {o_whole} whole requests, gunicorn 27 {g_whole} then {}: no ledger entry has ({}, accept)",
            g.verdict, g.verdict
        ));
    }
    if g.verdict == v {
        return None;
    }
    if pair(&g.verdict, v) {
        return None;
    }
    // Both refuse the same request. Which error is named (and so 400 or 501) depends on
    // which fault each parser meets first on bytes that are wrong in several places (the
    // core checks the request line before the fields, gunicorn some fields before others);
    // both answer with an error and close, nothing is served.
    let refusal = |x: &str| x != "accept" && x != "NoMoreData";
    if refusal(&g.verdict) && refusal(v) {
        return None;
    }
    // The bytes end in the middle of a head on one side (NoMoreData: nobody answers),
    // after the same whole requests: judged as an accept.
    fn calm(x: &str) -> &str {
        if x == "NoMoreData" { "accept" } else { x }
    }
    let (gc, oc) = (calm(&g.verdict), calm(v));
    if gc == oc || pair(gc, oc) {
        return None;
    }
    // gunicorn read the head of the request it failed in (the error is in its body), the
    // core refused that head: what counts is gunicorn accepting the head.
    if g.heads_read > g.complete_before_error && !ours.incomplete && refusal(v) && pair("accept", v)
    {
        return None;
    }
    Some(format!("gunicorn 27 {} but ferrocorn {v}: no ledger entry has this pair", g.verdict))
}

#[test]
fn differential_gunicorn() {
    let cfg = Arc::new(ProtoConfig::default());
    let check = |input: &[u8]| {
        let first = request(&mut Choices::new(input));
        let mut batch = vec![first.clone()];
        for i in 1..8u64 {
            let mut b = first.clone();
            let seed = noise(i ^ (input.len() as u64) << 8, 1)[0];
            let n = noise(u64::from(seed) + i, 64);
            mutate(&mut Choices::new(&n), &mut b, 1 + usize::from(seed % 3));
            batch.push(b);
        }
        let answers = ask(&batch);
        for (bytes, g) in batch.iter().zip(&answers) {
            if g.crash {
                continue;
            }
            let ours = drive(&cfg, Peer::Unix, &[bytes]);
            let Some(why) = finding(&ours, g) else { continue };
            // gunicorn reads a head whole before it looks at its fields, the core refuses
            // a bad line as soon as it has it: when the bytes end in the middle of a head
            // that the core already refused, the head is finished (an empty line) and
            // both are asked again.
            if g.verdict == "NoMoreData" && ours.error.is_some() {
                let mut done = bytes.clone();
                done.extend_from_slice(b"\r\n\r\n");
                let g2 = &ask(std::slice::from_ref(&done))[0];
                let ours2 = drive(&cfg, Peer::Unix, &[&done]);
                if g2.crash || finding(&ours2, g2).is_none() {
                    continue;
                }
            }
            panic!("differential finding on {:?}:\n{why}", latin1(bytes));
        }
    };
    // Every input of the regression corpus, whatever bolero's time budget leaves.
    if !cfg!(fuzzing) {
        assert!(
            ferrocorn_fuzz::replay_corpus("differential_gunicorn", &check) > 0,
            "the regression corpus is empty"
        );
    }
    bolero::check!().for_each(check);
}
