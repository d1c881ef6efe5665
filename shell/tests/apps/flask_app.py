"""A Flask application for the sync worker's end-to-end tests."""

import hashlib
import os
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
