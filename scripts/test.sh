#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, builds once,
# runs every test. This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export FERROCORN_SHARED="${FERROCORN_SHARED:-$(cd .. && pwd)/shared}"
scripts/setup-python.sh  # .venv with gunicorn 27.0.1, the oracle of conformance/tests/oracle.rs

if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

# The ferrocorn Python package (shell/), built once and installed into .venv and into a
# venv of Debian's python3, for the end-to-end tests of tests/e2e/python_package.rs.
scripts/install-ferrocorn.sh
# Real peers for the end-to-end tests (nginx as a reverse proxy, rsyslogd and a StatsD
# daemon as log and metrics receivers).
scripts/setup-peers.sh

# Formatting and lints: the workspace, and the shell with its Python bridge (feature python).
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p ferrocorn --features python --all-targets --quiet -- -D warnings
# The core as a library for other servers: the protocol alone, without its gunicorn
# modules, and as a crate that packages and builds on its own (offline: the builds above
# filled the registry cache; about 10 s).
cargo clippy -p ferrocorn-core --no-default-features --all-targets --quiet -- -D warnings
cargo test -p ferrocorn-core --no-default-features --doc --quiet
cargo package -p ferrocorn-core --allow-dirty --offline --quiet

# The benchmarks must keep compiling (they are run by hand: see bench/README.md).
cargo build --workspace --benches --quiet
# Doc examples (nextest does not run them).
cargo test --workspace --doc --quiet
# Build every test target once, then run them all (unit, property, fuzz replay,
# conformance, end-to-end against the built binaries). Last, so its summary line closes
# the output.
cargo nextest run --workspace --no-fail-fast --failure-output final
