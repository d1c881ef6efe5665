#!/usr/bin/env bash
# Real peers the end-to-end tests talk to: nginx (Debian's package) as a reverse proxy,
# rsyslog (Debian's package) as a syslog receiver. Installs what is missing; the packages'
# own services are stopped at once (the tests start their own nginx and rsyslogd on
# 127.0.0.1 and in temporary directories, with their own configs).
set -euo pipefail
if [ ! -x /usr/sbin/nginx ]; then
    echo "setup-peers: installing nginx" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq nginx-light) >/dev/null 2>&1 \
        || (apt-get update -qq && apt-get install -y -qq nginx) >/dev/null
    service nginx stop >/dev/null 2>&1 || true
fi
echo "setup-peers: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')" >&2
# haproxy (Debian's package): the PROXY protocol sender in front of the TLS listener
# (tests/e2e/tls_ops.rs starts its own, with a config in a temporary directory).
if [ ! -x /usr/sbin/haproxy ]; then
    echo "setup-peers: installing haproxy" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq haproxy) >/dev/null
    service haproxy stop >/dev/null 2>&1 || true
fi
echo "setup-peers: $(/usr/sbin/haproxy -v 2>&1 | head -1)" >&2
if [ ! -x /usr/sbin/rsyslogd ]; then
    echo "setup-peers: installing rsyslog" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq rsyslog) >/dev/null
    service rsyslog stop >/dev/null 2>&1 || true
fi
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
