"""The echo application of the conformance runner over the wire
(``ferrocorn-conformance --target``): answers every request with a JSON object of what
the application saw, so that the runner can compare it with what the case says the
request was.

    {"method": REQUEST_METHOD, "uri": the raw request-target, "version": SERVER_PROTOCOL,
     "headers": [[NAME, value], ...], "body": the whole body read from wsgi.input}

``uri`` is ``RAW_URI`` (gunicorn, ferrocorn), else ``REQUEST_URI``, else rebuilt from
``PATH_INFO`` and ``QUERY_STRING``; ``headers`` are the ``HTTP_*`` variables with
``CONTENT_TYPE`` and ``CONTENT_LENGTH`` as ``CONTENT-TYPE`` and ``CONTENT-LENGTH``, names
as the environ has them with ``_`` turned into ``-``, sorted. Every string is the
environ's latin-1 text, the body decoded as latin-1. The answer is ``200 OK`` with a
``Content-Length``.
"""

import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri is None:
        uri = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            uri += "?" + environ["QUERY_STRING"]
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append([key[5:].replace("_", "-"), value])
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
            headers.append([key.replace("_", "-"), value])
    headers.sort()
    seen = {
        "method": environ.get("REQUEST_METHOD"),
        "uri": uri,
        "version": environ.get("SERVER_PROTOCOL"),
        "headers": headers,
        "body": body.decode("latin-1"),
    }
    out = json.dumps(seen, sort_keys=True).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
