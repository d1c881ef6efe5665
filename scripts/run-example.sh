#!/usr/bin/env bash
# Runs ferrocorn on the example app, as far as ferrocorn can today (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export FERROCORN_SHARED="${FERROCORN_SHARED:-$(cd .. && pwd)/shared}"
cargo build --quiet -p ferrocorn -p ferrocorn-conformance
echo "== settings for: ferrocorn example.app:app -w 2 -b 127.0.0.1:8000"
target/debug/ferrocorn example.app:app -w 2 -b 127.0.0.1:8000 --print-config
echo "== request corpora through the protocol core"
target/debug/ferrocorn-conformance
