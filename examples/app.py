"""A small WSGI application to try ferrocorn with (no dependencies).

    .venv/bin/ferrocorn examples.app:app -w 2 -b 127.0.0.1:8000

/            a greeting
/env         the WSGI environ the server built, as JSON
/echo        the request body, back (POST something)
/stream      a streamed (chunked) answer
"""

import json
import os


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/env":
        env = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
        body = json.dumps(env, indent=2, sort_keys=True).encode() + b"\n"
        ctype = "application/json"
    elif path == "/echo":
        body = environ["wsgi.input"].read()
        ctype = environ.get("CONTENT_TYPE") or "application/octet-stream"
    elif path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (("line %d from worker %d\n" % (i, os.getpid())).encode() for i in range(10))
    else:
        body = ("Hello from ferrocorn worker %d!\n" % os.getpid()).encode()
        ctype = "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
