"""The application of tests/e2e/pressure_sync.rs (clients that do not send what they
announce, trickle, or go away).

/              "pid N": the worker that answered
/early         401 at once, without reading the request body (an auth check)
/echo          reads the whole body, answers its length
/echo-marked   writes "reading the body" to wsgi.errors first (the test then knows the
               application waits for the body), then as /echo
"""

import os


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path == "/early":
        status, body = "401 Unauthorized", b"no"
    elif path in ("/echo", "/echo-marked"):
        if path == "/echo-marked":
            environ["wsgi.errors"].write("reading the body\n")
            environ["wsgi.errors"].flush()
        body = str(len(environ["wsgi.input"].read())).encode()
    else:
        body = f"pid {os.getpid()}".encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
