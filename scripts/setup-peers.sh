#!/usr/bin/env bash
# Real peers the end-to-end tests talk to: nginx (Debian's package) as a reverse proxy,
# rsyslog (Debian's package) as a syslog receiver. Installs what is missing; the packages'
# own services are stopped at once (the tests start their own nginx and rsyslogd on
# 127.0.0.1 and in temporary directories, with their own configs).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# install BINARY PACKAGE...: the first package that installs, unless BINARY is there; the
# package's own service is stopped at once.
install() {
    local bin="$1" pkg
    shift
    [ -x "$bin" ] && return 0
    for pkg in "$@"; do
        echo "setup-peers: installing $pkg" >&2
        if (apt-get update -qq && apt-get install -y -qq "$pkg") >/dev/null 2>&1; then
            service "$(basename "$bin" | sed 's/d$//')" stop >/dev/null 2>&1 || true
            return 0
        fi
    done
    echo "setup-peers: could not install $*" >&2
    return 1
}
install /usr/sbin/nginx nginx-light nginx
echo "setup-peers: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')" >&2
# haproxy (Debian's package): the PROXY protocol sender in front of the TLS listener
# (tests/e2e/tls_ops.rs starts its own, with a config in a temporary directory).
install /usr/sbin/haproxy haproxy
echo "setup-peers: $(/usr/sbin/haproxy -v 2>&1 | head -1)" >&2
install /usr/sbin/rsyslogd rsyslog
echo "setup-peers: $(/usr/sbin/rsyslogd -v 2>&1 | head -1)" >&2
# A StatsD daemon (the npm `statsd` package, Etsy's reference daemon) for the tests that
# check real receivers; node and npm come from Debian's packages.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$ROOT/target/peers/node_modules/statsd/stats.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null
    fi
    echo "setup-peers: installing the npm statsd daemon into target/peers" >&2
    mkdir -p "$ROOT/target/peers"
    npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$ROOT/target/peers" statsd@0.9.0 >/dev/null
fi
echo "setup-peers: statsd $(node -p "require('$ROOT/target/peers/node_modules/statsd/package.json').version")" >&2
