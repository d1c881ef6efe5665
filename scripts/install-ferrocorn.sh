#!/usr/bin/env bash
# Builds the ferrocorn Python package (shell/: maturin, PyO3 extension module) once and
# installs it, with the shell's pinned test requirements, into the two virtualenvs the
# end-to-end tests use:
#   .venv                 the project's venv (scripts/setup-python.sh; the machine's python3,
#                         pyenv CPython with a shared libpython)
#   target/debian-venv    a venv made from Debian's /usr/bin/python3 (apt; static libpython)
# The wheel is built with the dev profile (no optimisation: a release build takes minutes
# on 2 cores) and stripped; cargo makes the rebuild a no-op when nothing changed. One
# wheel serves both venvs when their Python minor versions match.
# Override the venvs with FERROCORN_VENV / FERROCORN_DEBIAN_VENV; set
# FERROCORN_SKIP_DEBIAN=1 to skip the Debian venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FERROCORN_VENV:-.venv}"
DEBIAN_VENV="${FERROCORN_DEBIAN_VENV:-target/debian-venv}"
DEBIAN_PYTHON=/usr/bin/python3
WHEELS=target/wheels/ferrocorn-dev
PIP_FLAGS=(--quiet --disable-pip-version-check)
start=$SECONDS

say() { echo "install-ferrocorn: $*" >&2; }

# The project venv: scripts/setup-python.sh makes it (idempotent, quick); without that
# script, a bare venv of the machine's python3 will do.
if [ "$VENV" = .venv ] && [ -x scripts/setup-python.sh ]; then
    scripts/setup-python.sh >&2
elif ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi

# Installs the pinned requirements files into a venv unless every pin is already there.
install_pins() {
    local py="$1"
    shift
    local pins
    pins="$(sed -n 's/^\([A-Za-z0-9._-]*\)==\([^ ;\\]*\).*/\1 \2/p' "$@")"
    if ! echo "$pins" | "$py" -c '
import sys
from importlib import metadata
bad = []
for line in sys.stdin:
    name, want = line.split()
    try:
        ok = metadata.version(name) == want
    except metadata.PackageNotFoundError:
        ok = False
    if not ok:
        bad.append(name)
sys.exit(1 if bad else 0)
'; then
        local args=()
        for f in "$@"; do args+=(-r "$f"); done
        "$py" -m pip install "${PIP_FLAGS[@]}" --require-hashes --only-binary :all: "${args[@]}"
    fi
}

install_pins "$VENV/bin/python" shell/requirements-build.txt shell/requirements-test.txt

# Debian's python3 with venv support (and headers, for packages that compile).
debian=""
if [ "${FERROCORN_SKIP_DEBIAN:-0}" != 1 ]; then
    if ! dpkg -s python3-venv python3-dev >/dev/null 2>&1 || [ ! -x "$DEBIAN_PYTHON" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3-venv and python3-dev with apt-get"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev >/dev/null
        else
            say "Debian's python3-venv is missing and apt-get cannot run here; skipping $DEBIAN_VENV"
        fi
    fi
    if [ -x "$DEBIAN_PYTHON" ] && "$DEBIAN_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        if ! "$DEBIAN_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
            rm -rf "$DEBIAN_VENV"
            "$DEBIAN_PYTHON" -m venv "$DEBIAN_VENV"
        fi
        install_pins "$DEBIAN_VENV/bin/python" shell/requirements-test.txt
        debian=1
    fi
fi

# One build per distinct Python minor version.
version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
interpreters=("$VENV/bin/python")
if [ -n "$debian" ] && [ "$(version "$DEBIAN_VENV/bin/python")" != "$(version "$VENV/bin/python")" ]; then
    interpreters+=("$DEBIAN_VENV/bin/python")
fi
rm -rf "$WHEELS"
build_start=$SECONDS
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for py in "${interpreters[@]}"; do
    if ! "$VENV/bin/maturin" build --profile dev --strip --compatibility linux \
            -m shell/Cargo.toml -i "$py" -o "$WHEELS" >"$log" 2>&1; then
        cat "$log" >&2
        say "maturin build failed"
        exit 1
    fi
done
build_secs=$((SECONDS - build_start))

# Installs the wheel that matches a venv's interpreter.
install_wheel() {
    local py="$1" tag
    tag="$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    local wheel
    wheel="$(ls "$WHEELS"/ferrocorn-*-"$tag"-*.whl)"
    "$py" -m pip install "${PIP_FLAGS[@]}" --no-deps --force-reinstall "$wheel"
}
install_wheel "$VENV/bin/python"
where="$VENV"
if [ -n "$debian" ]; then
    install_wheel "$DEBIAN_VENV/bin/python"
    where="$where and $DEBIAN_VENV"
fi
say "built in ${build_secs}s, installed into $where ($((SECONDS - start))s in all)"
