"""The application of the quick-stop and gunicorn-27-gap tests (tests/e2e/quick_stop.rs,
tests/e2e/early_hints_debug.rs), run under ferrocorn and gunicorn alike.

Progress goes to the file $QUICK_MARKER, one line per event, so a test can wait for a
state and tell what the application did after a signal."""

import os
import time

# Larger than any socket buffers of a loopback connection: a client that reads slowly
# holds the worker in its write for as long as it reads.
BIG = 32 * 1024 * 1024
STREAM_LINES = 2000


def _mark(text):
    marker = os.environ.get("QUICK_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(text + "\n")


def _stream():
    try:
        for i in range(STREAM_LINES):
            _mark("yield %d" % i)
            yield b"line %d\n" % i
            time.sleep(0.05)
        _mark("end")
    finally:
        _mark("closed")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    hints = environ.get("wsgi.early_hints")
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(BIG))])
        _mark("big")
        return [b"x" * BIG]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    if path == "/hints":
        hints([("Link", "</style.css>; rel=preload; as=style"), ("Link", " \t</app.js>; rel=preload; as=script\t")])
        hints([(b"X-Bytes", b"caf\xe9"), ["X-List", "pair"]])
        hints([])
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hints"]
    if path == "/hints-then-body":
        # The 103 must reach the client before the application goes on: the client sends
        # the body only once it has read it.
        hints([("Link", "</early.css>; rel=preload; as=style")])
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/hints-late":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"started;")
        hints([("Link", "</late.css>; rel=preload")])
        return [b"done"]
    if path == "/hints-bad-value":
        try:
            hints([("Link", "</a.css>"), ("X-Bad", "a\r\nSet-Cookie: x=1")])
            outcome = b"accepted"
        except Exception as e:
            outcome = b"refused"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(outcome)))])
        return [outcome]
    if path == "/hints-bad-name":
        try:
            hints([("Bad Name", "x")])
            outcome = b"accepted"
        except Exception:
            outcome = b"refused"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(outcome)))])
        return [outcome]
    if path == "/head-body":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"0123456789"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
