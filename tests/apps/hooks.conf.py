"""Config file for the hook tests: every hook call appends a line to $FERROCORN_TEST_HOOKS."""

import os

bind = "127.0.0.1:0"


def _out(line):
    with open(os.environ["FERROCORN_TEST_HOOKS"], "a") as f:
        f.write(line + "\n")


def post_fork(server, worker):
    # An attribute set here must reach pre_request and post_request (one worker object).
    worker.tag = "forked-%d" % worker.age


def pre_request(worker, req):
    _out("pre %s %s %s %s nr=%d pid=%s tag=%s" % (req.method, req.uri, req.path, req.query, worker.nr, worker.pid == os.getpid(), getattr(worker, "tag", None)))
    if req.path == "/pre-fail":
        raise RuntimeError("pre_request failed")


def post_request(worker, req, environ, resp):
    _out("post %s %s %s %s tag=%s" % (req.method, req.path, resp.status_code, environ.get("PATH_INFO"), getattr(worker, "tag", None)))
    worker.log.info("post_request saw %s", resp.status)
    if req.path == "/post-fail":
        raise RuntimeError("post_request failed")
