#!/usr/bin/env bash
# Real peers the end-to-end tests talk to: nginx (Debian's package) as a reverse proxy.
# Installs what is missing; the package's own service is stopped at once (the tests start
# their own nginx on 127.0.0.1 with their own config).
set -euo pipefail
if [ ! -x /usr/sbin/nginx ]; then
    echo "setup-peers: installing nginx" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq nginx-light) >/dev/null 2>&1 \
        || (apt-get update -qq && apt-get install -y -qq nginx) >/dev/null
    service nginx stop >/dev/null 2>&1 || true
fi
echo "setup-peers: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')" >&2
