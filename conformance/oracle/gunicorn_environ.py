"""Builds WSGI environs with gunicorn 27.0.1's own code, for conformance/tests/environ_oracle.rs.

Reads a JSON list of cases on stdin: {"name", "data" (latin-1 text of the raw request
bytes), "settings" (gunicorn settings), "peer" ([ip, port] or a unix path string),
"server" ([ip, port] or a unix path string), "script_name" (the SCRIPT_NAME environment
variable, or null)}. Each request is parsed by gunicorn.http.parser.RequestParser with that
peer and turned into an environ by gunicorn.http.wsgi.create, as its workers do. Prints one
JSON object per case: {"name", "environ": {key: value} with every str-valued variable (the
wsgi.* objects, SERVER_SOFTWARE and gunicorn.socket left out), or "error": class name}.
"""

import json
import os
import sys

from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser


class NullSocket:
    def send(self, data):
        return len(data)

    def sendall(self, data):
        return None


SKIP = {"SERVER_SOFTWARE"}


def run(case):
    cfg = Config()
    for key, value in case["settings"].items():
        cfg.set(key, value)
    peer = case["peer"]
    peer = tuple(peer) if isinstance(peer, list) else peer
    server = case["server"]
    server = tuple(server) if isinstance(server, list) else server
    if case["script_name"] is None:
        os.environ.pop("SCRIPT_NAME", None)
    else:
        os.environ["SCRIPT_NAME"] = case["script_name"]
    data = case["data"].encode("latin-1")
    try:
        parser = RequestParser(cfg, iter([data]), peer)
        req = next(parser)
        _resp, environ = wsgi.create(req, NullSocket(), peer, server, cfg)
    except Exception as exc:  # noqa: BLE001 - the class name is the answer
        return {"name": case["name"], "error": type(exc).__name__}
    out = {}
    for key, value in environ.items():
        if key in SKIP or (key.startswith("wsgi.") and key != "wsgi.url_scheme") or key.startswith("gunicorn."):
            continue
        if isinstance(value, str):
            out[key] = value
    return {"name": case["name"], "environ": out}


def main():
    cases = json.load(sys.stdin)
    print(json.dumps([run(c) for c in cases]))


if __name__ == "__main__":
    main()
