#!/usr/bin/env bash
# Runs the conformance runner over the wire against every server of docs/conformance.md
# and rewrites their ledgers (conformance/wire/SERVER.toml: reasons of entries that stay
# are kept), then regenerates docs/conformance.md. Review the diff before committing:
# a new entry in a ferrocorn ledger needs a reason (an RFC section or a docs/compat.md
# row), or a fix. The servers run the echo app (tests/apps/echo_app.py) from .venv
# (scripts/setup-python.sh, scripts/install-ferrocorn.sh) on free ports of 127.0.0.1 and
# are stopped by their PIDs at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=$root/.venv
for tool in ferrocorn gunicorn granian; do
    [ -x "$venv/bin/$tool" ] || { echo "Error: $venv/bin/$tool is missing: run scripts/setup-python.sh and scripts/install-ferrocorn.sh" >&2; exit 1; }
done
cargo build -q -p ferrocorn-conformance
runner=$root/target/debug/ferrocorn-conformance
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ledger stem, then the command (PORT is replaced): as wire_doc::SERVERS lists them.
run() {
    local stem=$1; shift
    local port; port=$(free_port)
    local args=("${@//PORT/$port}")
    (cd tests/apps && exec env PATH="$venv/bin:/usr/bin:/bin" PYTHONDONTWRITEBYTECODE=1 "$venv/bin/${args[0]}" "${args[@]:1}") \
        >"target/wire-$stem.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "target/wire-$stem.log" >&2; echo "Error: $stem did not start" >&2; exit 1; }
        sleep 0.1
    done
    echo "== $stem (${args[*]})"
    "$runner" --target "127.0.0.1:$port" --ledger "conformance/wire/$stem.toml" --bless | tail -2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

run ferrocorn-sync ferrocorn -w 1 -b 127.0.0.1:PORT echo_app:app
run ferrocorn-gthread ferrocorn -w 1 -k gthread --threads 4 -b 127.0.0.1:PORT echo_app:app
run gunicorn-27 gunicorn -w 1 -b 127.0.0.1:PORT echo_app:app
run granian granian --interface wsgi --http 1 --host 127.0.0.1 --port PORT echo_app:app
# The core's example server (core/examples/blocking_server.rs), built here.
cargo build -q -p ferrocorn-core --example blocking_server
ln -sf "$root/target/debug/examples/blocking_server" "$venv/bin/ferrocorn-core-example"
run core-example ferrocorn-core-example 127.0.0.1:PORT

FERROCORN_BLESS=1 cargo test -q -p ferrocorn-conformance --test wire_doc >/dev/null
echo "docs/conformance.md regenerated; review: git diff conformance/wire docs/conformance.md"
