"""gunicorn 27's request parser as a long-running oracle, fed in batches.

    .venv/bin/python conformance/oracle/gunicorn_batch.py

Reads one JSON array per line on stdin: the inputs of a batch, each a string of the bytes
read as latin-1. Answers one JSON array per line on stdout, in the same order: for each
input what ``gunicorn_parse.parse`` makes of it under gunicorn's default settings
(``outcome``, ``complete_before_error``, ``message``; with an error ``heads_read``, the
request heads parsed before it, the one it was raised in included), plus ``crash``: true when the
parser raised something that is not one of gunicorn's own exceptions (a bug of gunicorn,
not a verdict). Stops at the end of stdin. Used by the differential fuzz target
(fuzz/tests/differential.rs), which keeps one process for a whole campaign.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gunicorn.config import Config  # noqa: E402

from gunicorn_parse import parse  # noqa: E402

import gunicorn.http.errors as errors  # noqa: E402
from gunicorn.http.parser import RequestParser  # noqa: E402


def heads_read(cfg, data):
    """How many request heads gunicorn's parser returns before it raises (the request it
    raises in, if its head was read, counts): tells an error in a body from one in a head."""
    n = 0
    try:
        for req in RequestParser(cfg, iter([data]), None):
            n += 1
            req.body.read()
    except Exception:  # pylint: disable=broad-except
        pass
    return n


def main():
    cfg = Config()
    out = sys.stdout
    for line in sys.stdin:
        batch = json.loads(line)
        answers = []
        for text in batch:
            result = parse(cfg, text.encode("latin-1"))
            outcome = result["outcome"]
            crash = False
            if "error" in outcome:
                crash = not hasattr(errors, outcome["error"])
                result["heads_read"] = heads_read(cfg, text.encode("latin-1"))
            result["crash"] = crash
            answers.append(result)
        out.write(json.dumps(answers) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
