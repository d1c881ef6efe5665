"""The application of the settings probes (tests/e2e/setting_probes.rs), copied into each
probe's own directory (the reload probes edit the copy). Answers `VERSION EXTRA`, where
EXTRA is extra.txt of its directory as read at import."""

import os

VERSION = "v1"
HERE = os.path.dirname(os.path.abspath(__file__))
try:
    with open(os.path.join(HERE, "extra.txt")) as f:
        EXTRA = f.read().strip()
except OSError:
    EXTRA = "-"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/print":
        print("probe-printed-line", flush=True)
    if path == "/body":
        try:
            got = "ok:%d" % len(environ["wsgi.input"].read())
        except Exception as e:  # what the application sees of a truncated body
            got = "error:%s" % type(e).__name__
        with open(os.path.join(HERE, "body.txt"), "w") as f:
            f.write(got)
    if path == "/multithread":
        body = repr(environ["wsgi.multithread"]).encode()
    else:
        body = ("%s %s" % (VERSION, EXTRA)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
