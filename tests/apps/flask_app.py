"""A Flask application for the sync worker's end-to-end tests."""

import hashlib
import os
import sys
import tempfile

from flask import Flask, Response, jsonify, request, send_file

app = Flask(__name__)

DATA = bytes(range(256)) * 1024  # 256 KiB
DATA_PATH = os.path.join(tempfile.gettempdir(), "ferrocorn-flask-%d.bin" % os.getpid())
with open(DATA_PATH, "wb") as f:
    f.write(DATA)


@app.route("/")
def index():
    return "Hello from Flask"


@app.route("/json")
def json_view():
    return jsonify(message="hi", items=list(range(5)), q=request.args.get("q"))


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(name=f.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(), field=request.form.get("field"))


@app.route("/download")
def download():
    def generate():
        for i in range(1000):
            yield "line %d\n" % i

    return Response(generate(), mimetype="text/plain")


@app.route("/sendfile")
def sendfile():
    return send_file(DATA_PATH, mimetype="application/octet-stream")


@app.route("/boom")
def boom():
    raise ValueError("flask view failed")


# ---- streaming (tests/e2e/gthread_stream.rs) ----

import stream_sync  # noqa: E402


@app.route("/stepped")
def stepped():
    """Chunk N only after the test read chunk N-1 (it then creates go-N)."""
    directory, n = request.args["dir"], int(request.args.get("n", "5"))

    def generate():
        for i in range(n):
            if not stream_sync.wait_go(directory, i):
                yield "gave up waiting for go-%d\n" % i
                return
            yield "chunk %d\n" % i

    return Response(generate(), mimetype="text/plain")


@app.route("/events")
def events():
    """Server-sent events, each after the test read the one before."""
    directory, n = request.args["dir"], int(request.args.get("n", "4"))

    def generate():
        yield ": stream opened\n\n"
        for i in range(n):
            if not stream_sync.wait_go(directory, i):
                yield "event: gave-up\ndata: %d\n\n" % i
                return
            yield "id: %d\nevent: tick\ndata: tick %d\n\n" % (i, i)

    return Response(generate(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


class _Endless:
    """An endless response that records each chunk it produces and its close()."""

    def __init__(self, directory):
        self.directory = directory
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self):
        import time

        time.sleep(0.005)
        self.n += 1
        stream_sync.record(self.directory, "iterations", str(self.n))
        return b"x" * 1000 + b"\n"

    def close(self):
        stream_sync.record(self.directory, "closed", str(self.n))


@app.route("/endless")
def endless():
    return Response(_Endless(request.args["dir"]), mimetype="application/octet-stream")


@app.route("/upload-size", methods=["POST"])
def upload_size():
    data = request.get_data()
    return jsonify(size=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.route("/upload-refused", methods=["POST"])
def upload_refused():
    """Answers without reading the body (as a size or auth check would)."""
    return "too large\n", 413


if os.environ.get("TEST_APP_ANNOUNCE"):
    # The tests wait for this line before the first request (see support::ANNOUNCE).
    print("test app loaded: flask_app, pid %d" % os.getpid(), file=sys.stderr, flush=True)
