"""The application of the pressure runs (bench/pressure.py): the same callable for every
server.

/             13 bytes, "Hello, World!"
/sleep?S      sleeps S seconds, then answers
/early        answers 401 at once without reading the request body (an auth check)
/echo         reads the whole request body and returns its length
"""

import time

_HELLO = b"Hello, World!"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or 1))
        body = b"slept"
    elif path == "/early":
        status, body = "401 Unauthorized", b"no"
    elif path == "/echo":
        body = str(len(environ["wsgi.input"].read())).encode()
    else:
        body = _HELLO
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
