"""Config file for the server-hook test: each call appends a line to $FERROCORN_TEST_HOOKS."""

import os


def _out(line):
    with open(os.environ["FERROCORN_TEST_HOOKS"], "a") as f:
        f.write(line + "\n")


def on_starting(server):
    _out("on_starting pid=%s master=%s" % (server.pid == os.getpid(), server.master_name))


def when_ready(server):
    _out("when_ready listeners=%d workers=%d" % (len(server.LISTENERS), server.num_workers))
    server.log.info("when_ready ran in %s", server.proc_name)


def pre_fork(server, worker):
    _out("pre_fork age=%d" % worker.age)


def post_fork(server, worker):
    _out("post_fork pid=%s ppid=%s" % (worker.pid == os.getpid(), worker.ppid == server.pid))


def post_worker_init(worker):
    _out("post_worker_init pid=%s" % (worker.pid == os.getpid()))


def worker_exit(server, worker):
    _out("worker_exit pid=%s" % (worker.pid == os.getpid()))


def nworkers_changed(server, new, old):
    _out("nworkers_changed %s %s" % (new, old))


def on_exit(server):
    _out("on_exit workers=%d" % len(server.WORKERS))


def child_exit(server, worker):
    _out("child_exit")
