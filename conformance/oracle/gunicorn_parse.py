"""Runs request cases through gunicorn's own parser and prints what it made of them.

    .venv/bin/python conformance/oracle/gunicorn_parse.py [LABEL=]DIR ...

Each DIR is searched recursively for cases: ``NAME.http`` (the raw bytes a client sends)
and ``NAME.json`` (``settings``, plus an expectation this script ignores), the format of
``shared/corpus/gunicorn-requests/README.md``. A case is named ``LABEL/REL/NAME`` as the
conformance runner names it (LABEL defaults to the directory's name).

Every case goes through ``gunicorn.http.parser.RequestParser(cfg, iter([data]), None)``,
as gunicorn's test-suite drives it (``tests/treq.py``, the "whole" sender; ``None`` is the
peer, which is trusted), with a ``gunicorn.config.Config`` whose settings are the case's
``settings``. Requests are iterated and each body read fully; trailers are read after it.

One JSON object per case is printed per line, sorted by case name:

    {"case": "gunicorn/valid/001", "gunicorn": "27.0.1",
     "outcome": {"requests": [{"method": ..., "uri": ..., "version": [1, 1],
                               "headers": [[NAME, value], ...], "body": ...,
                               "trailers": [[NAME, value], ...]}]},
     "complete_before_error": 0, "message": null}

``outcome`` has the shape of a case's expectation, so the Rust side reads it with the
conformance library's own parser and compares it as the runner compares expectations:
``{"requests": [...]}`` when every request was read and the input ended cleanly, or
``{"error": "ClassName"}`` when the parser raised (``complete_before_error`` then counts
the requests read whole before it, ``message`` is ``str()`` of the exception). Every
string is the bytes read as latin-1. A case that cannot be loaded, or whose settings
gunicorn refuses, is a line with ``"load_error"`` instead of ``outcome``; the script then
exits 1 after printing everything.
"""

import json
import os
import sys
import traceback

import gunicorn
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser


def find_cases(label, root):
    """Lists (name, http_path, json_path, problem) for every case under root."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        names = set(filenames)
        for fname in filenames:
            stem, ext = os.path.splitext(fname)
            if ext not in (".http", ".json"):
                continue
            partner = stem + (".json" if ext == ".http" else ".http")
            rel = os.path.relpath(os.path.join(dirpath, stem), root)
            name = label + "/" + rel.replace(os.sep, "/")
            path = os.path.join(dirpath, fname)
            if partner not in names:
                found.append((name, path, None, partner + " is missing"))
            elif ext == ".http":
                found.append((name, path, os.path.join(dirpath, partner), None))
    return found


def config(settings):
    cfg = Config()
    for key, value in settings.items():
        if key not in cfg.settings:
            raise KeyError("unknown gunicorn setting %r" % key)
        cfg.set(key, value)
    return cfg


def text(data):
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("latin-1")
    return data


def fields(pairs):
    return [[text(n), text(v)] for (n, v) in pairs]


def parse(cfg, data):
    """Runs gunicorn's parser over data; returns the result line's fields."""
    requests = []
    try:
        for req in RequestParser(cfg, iter([data]), None):
            body = req.body.read()
            requests.append({
                "method": text(req.method),
                "uri": text(req.uri),
                "version": list(req.version),
                "headers": fields(req.headers),
                "body": text(body),
                "trailers": fields(req.trailers or []),
            })
    except Exception as exc:  # pylint: disable=broad-except
        message = str(exc)
        if not type(exc).__module__.startswith("gunicorn."):
            # Not a parser verdict but a crash: keep where it happened.
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            message += " at " + traceback.extract_tb(exc.__traceback__)[-1].filename
        return {
            "outcome": {"error": type(exc).__name__},
            "complete_before_error": len(requests),
            "message": message,
        }
    return {"outcome": {"requests": requests}, "complete_before_error": None, "message": None}


def main(argv):
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    cases = []
    for arg in argv:
        label, sep, root = arg.partition("=")
        if not sep:
            root = arg
            label = os.path.basename(os.path.normpath(arg))
        if not os.path.isdir(root):
            sys.stderr.write("gunicorn_parse: %s is not a directory\n" % root)
            return 2
        cases.extend(find_cases(label, root))
    cases.sort()
    failed = False
    out = sys.stdout
    for name, http_path, json_path, problem in cases:
        line = {"case": name, "gunicorn": gunicorn.__version__}
        if problem is None:
            try:
                with open(json_path, encoding="utf-8") as f:
                    settings = json.load(f).get("settings", {})
                with open(http_path, "rb") as f:
                    data = f.read()
                cfg = config(settings)
            except Exception as exc:  # pylint: disable=broad-except
                problem = "%s: %s: %s" % (json_path, type(exc).__name__, exc)
        if problem is None:
            line.update(parse(cfg, data))
        else:
            line["load_error"] = problem
            failed = True
        out.write(json.dumps(line, sort_keys=True) + "\n")
    out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
