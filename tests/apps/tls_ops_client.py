"""Clients of tests/e2e/tls_ops.rs over TLS (Python's ``ssl``).

    tls_ops_client.py ragged PORT OUT
        POSTs /read with ``Content-Length: 100000`` and 70000 bytes of it, then ends the
        TCP connection (FIN) without ``close_notify``; waits (at most 60 s) for the
        application to write OUT and prints it.

    tls_ops_client.py garbage PORT
        One keep-alive request over TLS 1.2, then a record the session cannot decrypt
        (an application-data record of zeros) where the next request would be; prints
        the status of the first answer.

    tls_ops_client.py load PORT CA STOP PROGRESS
        Four threads, two keep-alive clients (``http.client.HTTPSConnection`` reused
        until the server closes it) and two with ``Connection: close``, send ``GET /``
        until the file STOP exists (at most 120 s, at most 20000 requests). Every 50
        answers PROGRESS is rewritten with the count of answers and the subjects of the server
        certificates seen (``commonName=localhost``). At the end prints ``{"ok": N, "failures": [...],
        "subjects": [...]}``. A request that gets no whole ``200 Hello, World!`` is a
        failure, and so is one on a kept-alive connection the server closed without
        answering (``http.client`` raises ``RemoteDisconnected``).
"""

import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time


def ragged(port, out):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    head = b"POST /read HTTP/1.1\r\nHost: x\r\nX-Out: %s\r\nContent-Length: 100000\r\n\r\n" % out.encode()
    tls.sendall(head + b"x" * 70000)
    # The TCP connection ends under the TLS session: FIN, no close_notify.
    raw = socket.socket(fileno=tls.detach())
    raw.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 60
    while not os.path.exists(out) and time.monotonic() < deadline:
        time.sleep(0.01)
    raw.close()
    print(open(out).read() if os.path.exists(out) else '{"err": "the application wrote nothing"}')


def garbage(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    conn = http.client.HTTPConnection("localhost")
    conn.sock = tls
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    raw = socket.socket(fileno=tls.detach())
    raw.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
    raw.settimeout(60)
    try:
        while raw.recv(4096):
            pass
    except OSError:
        pass
    raw.close()
    print(r.status)


def load(port, ca, stop, progress):
    ctx = ssl.create_default_context(cafile=ca)
    lock = threading.Lock()
    state = {"ok": 0, "failures": [], "subjects": []}
    end = time.monotonic() + 120

    def seen(conn):
        cert = conn.sock.getpeercert()
        subject = ",".join(f"{k}={v}" for rdn in cert["subject"] for k, v in rdn)
        with lock:
            if subject not in state["subjects"]:
                state["subjects"].append(subject)

    def done():
        return os.path.exists(stop) or time.monotonic() > end or state["ok"] >= 20000

    def answered():
        with lock:
            state["ok"] += 1
            if state["ok"] % 50 == 0:
                with open(progress + ".tmp", "w") as f:
                    json.dump({"ok": state["ok"], "subjects": state["subjects"]}, f)
                os.replace(progress + ".tmp", progress)

    def client(keep_alive):
        conn = None
        n = 0
        while not done():
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
                    conn.connect()
                    seen(conn)
                    n = 0
                headers = {} if keep_alive else {"Connection": "close"}
                conn.request("GET", "/", headers=headers)
                r = conn.getresponse()
                body = r.read()
                n += 1
                if r.status != 200 or body != b"Hello, World!":
                    raise RuntimeError(f"bad answer {r.status} {body[:80]!r}")
                answered()
                if not keep_alive or r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                with lock:
                    state["failures"].append(f"{'keep-alive' if keep_alive else 'close'} request {n + 1} of its connection: {type(e).__name__}: {e}")
                if conn is not None:
                    conn.close()
                conn = None

    threads = [threading.Thread(target=client, args=(k,)) for k in (True, True, False, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(state))


if sys.argv[1] == "ragged":
    ragged(int(sys.argv[2]), sys.argv[3])
elif sys.argv[1] == "garbage":
    garbage(int(sys.argv[2]))
else:
    load(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
