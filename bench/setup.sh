#!/usr/bin/env bash
# What the benchmarks need (bench/run.sh, bench/pressure.sh): wrk and openssl (Debian),
# target/release/tls-close-load, a virtualenv .venv-bench with gunicorn, granian and Flask (pinned in
# bench/requirements-bench.txt) and ferrocorn built in release mode from shell/
# (FERROCORN_BENCH_SKIP_BUILD=1 reuses the last build). Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install -q --disable-pip-version-check -r bench/requirements-bench.txt
# The TLS scenarios: certificates made by the openssl command, and the client that does a
# full handshake per request (bench/src/bin/tls-close-load.rs).
if ! command -v openssl >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq openssl) >/dev/null
fi
cargo build -q --release -p ferrocorn-bench --bin tls-close-load
if [ "${FERROCORN_BENCH_SKIP_BUILD:-}" != 1 ]; then
    # A release build of the package (maturin's default profile), as users install it.
    .venv-bench/bin/pip install -q --disable-pip-version-check ./shell
fi
