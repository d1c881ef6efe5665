"""The application of the operations tests (tests/e2e/python_ops.rs): a plain WSGI app,
prometheus_client in multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set, and the
pid a post_fork hook stored (tracing set up per worker)."""

import os
import time

TRACER_PID = None  # set by post_fork in ops_hooks.conf.py

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

    REQUESTS = Counter("ops_requests", "Requests served", ["path"])
    IN_WORKER = Gauge("ops_worker_up", "1 per live worker", multiprocess_mode="livesum")
    IN_WORKER.set(1)
else:
    REQUESTS = None


def _text(start_response, body, status="200 OK"):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if REQUESTS is not None and path != "/metrics":
        REQUESTS.labels(path).inc()
    if path == "/":
        return _text(start_response, b"Hello, World!")
    if path == "/pid":
        return _text(start_response, ("%d %s" % (os.getpid(), TRACER_PID)).encode())
    if path == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return _text(start_response, generate_latest(registry))
    if path == "/sleep":
        marker = os.environ.get("OPS_MARKER")
        if marker:
            open(marker, "w").close()
        time.sleep(float(environ["QUERY_STRING"] or 5))
        return _text(start_response, b"slept")
    return _text(start_response, b"not found", "404 Not Found")
