#!/usr/bin/env bash
# Creates (or refreshes) the Python environment the tests use: .venv at the repository
# root, made with the machine's python3, holding exactly the pinned packages of
# requirements-test.txt. Idempotent and quick when nothing changed: pip only runs when an
# installed version differs from its pin. Prints one line saying what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
REQS=requirements-test.txt
VPY="$VENV/bin/python"

# `name==version` pins of the requirements file (continuation lines hold the hashes).
pins() {
    sed -n 's/^\([A-Za-z0-9._-]*\)==\([^ ;\\]*\).*/\1 \2/p' "$REQS"
}

# Lists the pins that the venv does not satisfy (nothing when all match).
missing() {
    pins | "$VPY" -c '
import sys
from importlib import metadata
for line in sys.stdin:
    name, want = line.split()
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        print(f"{name}=={want} (have {have})")
'
}

created=""
if ! "$VPY" -c 'import sys' >/dev/null 2>&1; then
    command -v "$PYTHON" >/dev/null 2>&1 || {
        echo "setup-python: $PYTHON not found (set PYTHON=/path/to/python3)" >&2
        exit 1
    }
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || {
        echo "setup-python: '$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    }
    created="created $VENV with $("$VPY" -c 'import sys; print("Python", sys.version.split()[0])'); "
fi

todo="$(missing)"
if [ -z "$todo" ]; then
    echo "setup-python: ${created}$VENV is up to date ($(pins | tr ' ' '=' | sed 's/=/==/' | paste -sd, -))"
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$VPY" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --only-binary :all: -r "$REQS" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python: pip install -r $REQS failed" >&2
    exit 1
fi
left="$(missing)"
if [ -n "$left" ]; then
    echo "setup-python: still not as pinned after pip install: $left" >&2
    exit 1
fi
echo "setup-python: ${created}installed $(echo "$todo" | sed 's/ (have .*)//' | paste -sd, -) into $VENV"
