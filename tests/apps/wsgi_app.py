"""A plain WSGI application for the sync worker's end-to-end tests.

``app`` is wrapped in ``wsgiref.validate.validator``, which asserts PEP 3333 on both
sides (the server's environ, input and start_response, and the application's answers);
``raw`` is the same application unwrapped.
"""

import json
import os
import sys
import time
from wsgiref.validate import validator


def _read_all(stream):
    chunks = []
    while True:
        chunk = stream.read(8192)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ["QUERY_STRING"]
    if path == "/":
        return _text(start_response, b"Hello, World!")
    if path == "/echo":
        body = _read_all(environ["wsgi.input"])
        return _text(start_response, body)
    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(3)
        rest = [line for line in stream]
        out = json.dumps({"first": first.decode(), "limited": limited.decode(), "rest": [l.decode() for l in rest]})
        return _text(start_response, out.encode())
    if path == "/readlines":
        lines = environ["wsgi.input"].readlines()
        return _text(start_response, json.dumps([l.decode() for l in lines]).encode())
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"chunk %d\n" % i for i in range(5))
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]
    if path == "/file":
        f = open(os.environ.get("FERROCORN_TEST_FILE", __file__), "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/env":
        env = {k: v for k, v in environ.items() if isinstance(v, str)}
        for k in ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
            env[k] = environ[k]
        return _text(start_response, json.dumps(env).encode())
    if path == "/errors":
        environ["wsgi.errors"].write("a line for wsgi.errors\n")
        environ["wsgi.errors"].flush()
        return _text(start_response, b"logged")
    if path == "/sleep":
        marker = os.environ.get("FERROCORN_TEST_MARKER")
        if marker:
            with open(marker, "a") as f:
                f.write("sleep\n")
        time.sleep(float(query or 5))
        return _text(start_response, b"slept")
    if path == "/hold":
        # Appends "hold" to the marker, then waits until MARKER.release exists (at most
        # 60 s): tests release the request instead of guessing how long to sleep.
        marker = os.environ["FERROCORN_TEST_MARKER"]
        with open(marker, "a") as f:
            f.write("hold\n")
        release = marker + ".release"
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.005)
        return _text(start_response, b"released")
    if path == "/exit":
        os._exit(1)
    if path == "/boom":
        raise RuntimeError("boom in view")
    if path == "/cl-short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return [b"only nine"]
    if path == "/cl-long":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"abc", b"defgh"]
    if path == "/headers":
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-B", "2"), ("X-A", "1"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            start_response("201 Created", [("Content-Type", "text/plain")])
            second = b"second call accepted"
        except AssertionError as e:
            second = str(e).encode()
        try:
            raise ValueError("replaced")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("X-Replaced", "1")], sys.exc_info())
        return [second]
    if path == "/closing":
        marker = os.environ["FERROCORN_TEST_MARKER"]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Closing(marker, int(query or 1))
    return _text(start_response, b"not found", "404 Not Found")


class _Closing:
    """An iterable whose close() leaves a marker file (the server must always call it)."""

    def __init__(self, marker, chunks):
        self.marker, self.chunks = marker, chunks

    def __iter__(self):
        for _ in range(self.chunks):
            yield b"z" * 65536

    def close(self):
        with open(self.marker, "a") as f:
            f.write("closed\n")


app = validator(raw)
