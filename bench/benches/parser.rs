//! Request parsing throughput: ferrocorn-core (full validation, framing and body decoding)
//! against httparse (head syntax only, plus its chunk-size helper) on the same inputs.
//!
//! `cargo bench -p ferrocorn-bench --bench parser` runs criterion per input, then an
//! interleaved side-by-side run over the whole mix and prints both throughputs and the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ferrocorn_bench::mix;
use ferrocorn_core::{Connection, Event, Peer, ProtoConfig};

/// Parses one request on a kept-alive connection; returns body bytes seen.
fn ferrocorn_parse(conn: &mut Connection, input: &[u8]) -> usize {
    conn.receive(input);
    let mut body = 0;
    loop {
        match conn.next_event() {
            Ok(Event::Request(head)) => {
                black_box(head.header_count());
            }
            Ok(Event::Data(d)) => body += black_box(d).len(),
            Ok(Event::EndOfMessage(_)) => {}
            Ok(Event::Paused) => {
                conn.start_next_cycle().expect("keep-alive");
                return body;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// httparse: the head, then Content-Length or the chunks (with its chunk-size parser).
fn httparse_parse(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(input).expect("valid") else { panic!("partial") };
    let mut chunked = false;
    let mut length = 0usize;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    let mut rest = &input[n..];
    if !chunked {
        return black_box(&rest[..length]).len();
    }
    let mut body = 0;
    loop {
        let httparse::Status::Complete((used, size)) =
            httparse::parse_chunk_size(rest).expect("chunk")
        else {
            panic!()
        };
        rest = &rest[used..];
        if size == 0 {
            return body;
        }
        body += black_box(&rest[..size as usize]).len();
        rest = &rest[size as usize + 2..];
    }
}

fn main() {
    let inputs = mix();
    let names = ["small_get", "browser_get", "post_json", "chunked_upload"];
    let cfg = Arc::new(ProtoConfig::default());
    let mut conn = Connection::new(cfg.clone(), Peer::Unix);
    for input in &inputs {
        assert_eq!(
            ferrocorn_parse(&mut conn, input),
            httparse_parse(input),
            "both parsers see the same body"
        );
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, input) in names.iter().zip(&inputs) {
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function("ferrocorn-core", |b| {
            b.iter(|| ferrocorn_parse(&mut conn, black_box(input)))
        });
        group.bench_function("httparse", |b| b.iter(|| httparse_parse(black_box(input))));
        group.finish();
    }
    c.final_summary();

    // Side by side over the whole mix, interleaved so that machine noise hits both alike.
    let mix_bytes: usize = inputs.iter().map(Vec::len).sum();
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let rounds = 200;
    let per_round = 500;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            for input in &inputs {
                black_box(ferrocorn_parse(&mut conn, black_box(input)));
            }
        }
        ours += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_round {
            for input in &inputs {
                black_box(httparse_parse(black_box(input)));
            }
        }
        theirs += t.elapsed();
    }
    let total = (mix_bytes * rounds * per_round) as f64;
    let mbps = |d: Duration| total / d.as_secs_f64() / 1e6;
    println!(
        "mix ({mix_bytes} bytes: small GET, browser GET, JSON POST, chunked upload), {} passes:",
        rounds * per_round
    );
    println!("  ferrocorn-core {:8.1} MB/s", mbps(ours));
    println!("  httparse       {:8.1} MB/s", mbps(theirs));
    println!("  ratio ferrocorn-core / httparse = {:.2}", mbps(ours) / mbps(theirs));
}
