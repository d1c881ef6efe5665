"""Hooks of the quick-stop tests (tests/e2e/quick_stop.rs): one line per call into
$QUICK_HOOKS, under ferrocorn and gunicorn alike."""

import os


def _out(line):
    with open(os.environ["QUICK_HOOKS"], "a") as f:
        f.write(line + "\n")


def post_worker_init(worker):
    _out("post_worker_init")


def worker_int(worker):
    _out("worker_int alive=%s" % worker.alive)


def worker_abort(worker):
    _out("worker_abort")


def worker_exit(server, worker):
    _out("worker_exit")
