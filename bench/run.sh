#!/usr/bin/env bash
# Side-by-side benchmark of the servers on the same apps (see bench/compare.py and
# bench/README.md), after bench/setup.sh. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec .venv-bench/bin/python bench/compare.py "$@"
