#!/usr/bin/env bash
# Serves the example application (examples/app.py) with ferrocorn, from a fresh clone:
# builds the ferrocorn Python package and installs it into .venv
# (scripts/install-ferrocorn.sh), then runs the installed command in the foreground:
#
#   .venv/bin/ferrocorn examples.app:app -w 2 -b 127.0.0.1:8000
#
# Try `curl http://127.0.0.1:8000/`, `/env`, `/stream`, `curl --data hi .../echo`;
# Ctrl-C (or SIGTERM) stops it. Extra arguments are passed to ferrocorn
# (e.g. `scripts/run-example.sh --access-logfile -`).
set -euo pipefail
cd "$(dirname "$0")/.."
FERROCORN_SKIP_DEBIAN="${FERROCORN_SKIP_DEBIAN:-1}" scripts/install-ferrocorn.sh
exec .venv/bin/ferrocorn examples.app:app -w 2 -b 127.0.0.1:8000 "$@"
