#!/usr/bin/env bash
# Side-by-side benchmark of the servers on one app (see bench/compare.py). Installs what it
# needs: wrk (Debian) and a virtualenv .venv-bench with gunicorn and granian (pinned in
# bench/requirements-bench.txt), plus ferrocorn when it can serve.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
fi
.venv-bench/bin/pip install -q -r bench/requirements-bench.txt
exec .venv-bench/bin/python bench/compare.py "$@"
