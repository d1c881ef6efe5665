#!/usr/bin/env bash
# A fuzzing campaign on one target of fuzz/tests, with cargo-bolero and libfuzzer on the
# nightly toolchain (coverage-guided, release build with debug assertions, profile fuzz).
#
#   scripts/fuzz.sh TARGET SECONDS     fuzz for SECONDS; exit 1 on a finding
#   scripts/fuzz.sh TARGET merge       minimise the campaign's corpus into the committed
#                                      regression corpus (what the ordinary tests replay)
#
# TARGET: request, differential, proxy, environ, response (fuzz/tests/TARGET.rs).
#
# The working corpus is target/fuzz/corpus/TARGET; it starts from the committed seeds
# (fuzz/seeds/http for request and differential: every case of the request corpora
# as a raw input, 0x00 then the bytes) and the regression corpus
# (fuzz/tests/__fuzz__/TEST/corpus). A finding is written to target/fuzz/crashes/TARGET
# and printed with its size; the script then exits 1. Run it under `nice -n 19` on a
# shared machine. libfuzzer's status lines (cov: edges, ft: features, exec/s) are in
# target/fuzz/TARGET.log; the last one is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/fuzz.sh request|differential|proxy|environ|response SECONDS|merge" >&2
    exit 2
}
[ $# -eq 2 ] || usage
target="$1"
what="$2"
case "$target" in
    request) test_fn=request_parser ;;
    differential) test_fn=differential_gunicorn ;;
    proxy) test_fn=proxy ;;
    environ) test_fn=environ_builder ;;
    response) test_fn=response_framing ;;
    *) echo "Error: unknown fuzz target '$target' (request, differential, proxy, environ, response)" >&2; exit 1 ;;
esac
if [ "$what" != merge ] && ! [[ "$what" =~ ^[1-9][0-9]*$ ]]; then
    echo "Error: SECONDS must be a positive number of seconds, not '$what'" >&2
    exit 1
fi

# The nightly toolchain (sanitizer-coverage flags) and cargo-bolero.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! cargo bolero --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-bolero 0.13.5" >&2
    cargo install --locked cargo-bolero --version 0.13.5
fi
if [ "$target" = differential ]; then
    scripts/setup-python.sh >&2  # gunicorn 27.0.1, the oracle
fi

work=target/fuzz/corpus/$target
crashes=target/fuzz/crashes/$target
regression=fuzz/tests/__fuzz__/$test_fn/corpus
mkdir -p "$work" "$crashes" "$regression"
bolero() {
    cargo +nightly bolero test -p ferrocorn-fuzz "$test_fn" \
        --engine libfuzzer --sanitizer NONE "$@"
}

if [ "$what" = merge ]; then
    # Keep the smallest set of inputs that covers what the campaign's corpus covers.
    rm -f "$regression"/*
    bolero --corpus-dir "$regression" --crashes-dir "$work" --engine-args=-set_cover_merge=1 >target/fuzz/$target.merge.log 2>&1 || {
        tail -20 target/fuzz/$target.merge.log >&2
        echo "Error: the merge failed (target/fuzz/$target.merge.log)" >&2
        exit 1
    }
    echo "fuzz: $target: $(ls "$regression" | wc -l) inputs in $regression (from $(ls "$work" | wc -l))"
    exit 0
fi

seeds=fuzz/seeds/$target
case "$target" in request | differential) seeds=fuzz/seeds/http ;; esac
for dir in "$seeds" "$regression"; do
    [ -d "$dir" ] && find "$dir" -maxdepth 1 -type f -exec cp -n -t "$work" {} +
done
# libfuzzer's findings (crash-, timeout-, oom-, leak-); slow-unit- files only say that
# an input took long on a loaded machine.
findings() { find "$crashes" -type f ! -name 'slow-unit-*' | wc -l; }
before=$(findings)
log=target/fuzz/$target.log
echo "fuzz: $target for ${what}s, corpus $work ($(ls "$work" | wc -l) inputs), log $log" >&2
touch "$log.start"
status=0
bolero -T "${what}s" -l 16384 --corpus-dir "$work" --crashes-dir "$crashes" >"$log" 2>&1 || status=$?
grep -E '^#[0-9]+' "$log" | tail -1 || true
after=$(findings)
if [ "$status" -ne 0 ] && ! grep -q 'libFuzzer' "$log"; then
    grep -E '^error' -A8 "$log" | head -30 >&2
    echo "Error: $target: the fuzz build or the run failed before fuzzing (exit $status, log $log)" >&2
    exit 1
fi
if [ "$after" -gt "$before" ] || [ "$status" -ne 0 ]; then
    grep -E 'panicked|Test Failure|Input:|SUMMARY|deadly signal' "$log" | head -20 >&2 || true
    find "$crashes" -type f ! -name 'slow-unit-*' -newer "$log.start" -printf 'fuzz: finding %p (%s bytes)\n' 2>/dev/null >&2 || true
    echo "Error: $target: a finding (exit $status, $((after - before)) new input(s) in $crashes, log $log)" >&2
    exit 1
fi
echo "fuzz: $target: no finding in ${what}s"
