"""The benchmark application: the same WSGI callable for every server.

/        13 bytes, "Hello, World!" (gunicorn's own benchmark app)
/json    a small JSON document
/large   64 KiB
/echo    reads the request body and returns its length
"""

import json

_HELLO = b"Hello, World!"
_JSON = json.dumps({"message": "Hello, World!", "items": list(range(20))}).encode()
_LARGE = b"x" * 65536


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/json":
        body, ctype = _JSON, "application/json"
    elif path == "/large":
        body, ctype = _LARGE, "application/octet-stream"
    elif path == "/echo":
        n = len(environ["wsgi.input"].read())
        body, ctype = str(n).encode(), "text/plain"
    else:
        body, ctype = _HELLO, "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
