"""Answers every request with its WSGI environ as ``KEY=value`` lines (the ``str`` values,
sorted), for the end-to-end tests of the parsing settings, HTTP versions and PROXY.

A variable that is absent is simply not listed; ``REMOTE_PORT`` is listed as ``None`` when
a server puts a non-``str`` there.
"""


def app(environ, start_response):
    lines = []
    for key in sorted(environ):
        value = environ[key]
        if isinstance(value, str):
            lines.append("%s=%s" % (key, value))
        elif key in ("REMOTE_ADDR", "REMOTE_PORT"):
            lines.append("%s=%r" % (key, value))
    body = ("\n".join(lines) + "\n").encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
