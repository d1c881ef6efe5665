"""Every server hook, recording what hook code reads from its arguments, one line per call
into $OPS_HOOKS (tests/e2e/python_ops.rs runs it under ferrocorn and gunicorn and
compares). Pids are written relative to the caller: `self`, `master`, `booting`, `other`."""

import os
import sys

timeout = 2
graceful_timeout = 5


def _pid(p, master):
    if p == "[booting]":
        return "booting"
    if p == os.getpid():
        return "self"
    if p == master:
        return "master"
    return "other" if isinstance(p, int) else repr(p)


def _out(name, *parts):
    with open(os.environ["OPS_HOOKS"], "a") as f:
        f.write(" ".join([name, *parts]) + "\n")


def _log_ok(log):
    return all(callable(getattr(log, m, None)) for m in ("debug", "info", "warning", "error", "exception", "critical"))


def _server(s):
    return "server.pid=%s num_workers=%s workers=%d log=%s cfg.timeout=%s proc_name=%s" % (
        _pid(s.pid, s.pid), s.num_workers, len(s.WORKERS), _log_ok(s.log), s.cfg.timeout, s.proc_name)


def _worker(w, master):
    return "worker.pid=%s ppid=%s age=%d alive=%s booted=%s nr=%d log=%s cfg.timeout=%s" % (
        _pid(w.pid, master), _pid(w.ppid, master), w.age, w.alive, w.booted, w.nr, _log_ok(w.log), w.cfg.timeout)


def on_starting(server):
    _out("on_starting", _server(server))


def on_reload(server):
    _out("on_reload", _server(server))


def when_ready(server):
    _out("when_ready", _server(server), "listeners=%d" % len(server.LISTENERS))


def pre_fork(server, worker):
    _out("pre_fork", _server(server), _worker(worker, server.pid))


def post_fork(server, worker):
    import ops_app
    ops_app.TRACER_PID = os.getpid()
    worker.tracer = "set in post_fork"
    _out("post_fork", _server(server), _worker(worker, server.pid))


def post_worker_init(worker):
    _out("post_worker_init", _worker(worker, worker.ppid), "tracer=%s" % getattr(worker, "tracer", None))


def worker_int(worker):
    _out("worker_int", _worker(worker, worker.ppid))


def worker_abort(worker):
    _out("worker_abort", _worker(worker, worker.ppid))


def pre_exec(server):
    _out("pre_exec", _server(server))


def child_exit(server, worker):
    _out("child_exit", _server(server), _worker(worker, server.pid))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    _out("worker_exit", _server(server), _worker(worker, server.pid))


def nworkers_changed(server, new, old):
    # The first call comes from gunicorn's Arbiter.setup, before server.pid exists.
    _out("nworkers_changed", "new=%s old=%s num_workers=%s" % (new, old, server.num_workers))


def on_exit(server):
    _out("on_exit", _server(server))
