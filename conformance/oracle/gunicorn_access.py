"""Renders access-log lines with gunicorn 27.0.1's own code (glogging.Logger.atoms and
SafeAtoms), for conformance/tests/access_log_oracle.rs.

Reads a JSON list of cases on stdin; each case has `format`, `environ` (str -> str),
`req_headers` ([[NAME, value]]), `resp` ({status, headers, sent}), `request_time`
([seconds, microseconds]). Prints a JSON object: {"pid": <this process's pid>, "lines": [...]}.
`%(t)s` is pinned to "[TIME]" so that both sides render the same text.
"""

import datetime
import json
import os
import sys
import types

from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms


def main():
    cases = json.load(sys.stdin)
    lines = []
    for case in cases:
        cfg = Config()
        cfg.set("access_log_format", case["format"])
        logger = Logger(cfg)
        logger.now = lambda: "[TIME]"
        resp = types.SimpleNamespace(status=case["resp"]["status"], headers=[tuple(h) for h in case["resp"]["headers"]],
                                     sent=case["resp"]["sent"])
        req = types.SimpleNamespace(headers=[tuple(h) for h in case["req_headers"]])
        secs, micros = case["request_time"]
        delta = datetime.timedelta(seconds=secs, microseconds=micros)
        atoms = SafeAtoms(logger.atoms(resp, req, case["environ"], delta))
        lines.append(cfg.access_log_format % atoms)
    json.dump({"pid": os.getpid(), "lines": lines}, sys.stdout)


if __name__ == "__main__":
    main()
