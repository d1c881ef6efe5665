#!/usr/bin/env bash
# The servers under pressure, side by side (see bench/pressure.py and bench/README.md),
# after bench/setup.sh. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec .venv-bench/bin/python bench/pressure.py "$@"
