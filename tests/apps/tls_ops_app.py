"""The application of tests/e2e/tls_ops.rs.

- ``/env``: the environ's string values as JSON (the client certificate's ``SSL_CLIENT_*``
  among them);
- ``/read``: reads ``wsgi.input`` to its end and writes what that gave (``{"ok": N}``
  bytes, or ``{"err": "Class: text"}``) to the file named by the ``X-Out`` header (the
  client of a ragged-EOF test is gone before any answer);
- anything else: ``Hello, World!``.
"""

import json
import os


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env":
        body = json.dumps({k: v for k, v in environ.items() if isinstance(v, str)}).encode()
    elif path == "/read":
        try:
            out = {"ok": len(environ["wsgi.input"].read())}
        except Exception as e:  # what the application sees is the point
            out = {"err": f"{type(e).__name__}: {e}"}
        with open(environ["HTTP_X_OUT"] + ".tmp", "w") as f:
            f.write(json.dumps(out))
        os.rename(environ["HTTP_X_OUT"] + ".tmp", environ["HTTP_X_OUT"])
        body = json.dumps(out).encode()
    else:
        body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
