"""The plain WSGI benchmark application: the same callable for every server.

/          13 bytes, "Hello, World!" (gunicorn's own benchmark app)
/large     64 KiB in one piece
/stream    1 MiB streamed in 64 KiB chunks, no Content-Length
/echo      reads the whole request body and returns its length
"""

_HELLO = b"Hello, World!"
_LARGE = b"x" * 65536
_CHUNK = b"y" * 65536


def _stream():
    for _ in range(16):
        yield _CHUNK


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _stream()
    if path == "/large":
        body, ctype = _LARGE, "application/octet-stream"
    elif path == "/echo":
        body, ctype = str(len(environ["wsgi.input"].read())).encode(), "text/plain"
    else:
        body, ctype = _HELLO, "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
