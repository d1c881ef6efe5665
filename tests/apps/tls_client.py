"""HTTPS client of shell/tests/tls_e2e.rs: the requests a user's Python clients make over
TLS to `wsgi_app:app`, checked against the CA of the test. Prints one JSON object:

    tls_client.py PORT CA_FILE EXPECTED_FILE

- `keepalive`: two GETs on one `http.client.HTTPSConnection`, whether the second went
  over the same TLS connection, and the `Connection` header of the first answer;
- `close`: a GET with `Connection: close` (status, body);
- `post`: 300 KB POSTed to /echo came back whole;
- `stream`: the chunked /stream body;
- `file`: /file (a `wsgi.file_wrapper` over TLS) equals EXPECTED_FILE;
- `env`: the environ's string values (/env);
- `requests`: `requests.get` with `verify=CA_FILE` (status, body);
- `alpn`, `version`: what the handshake negotiated.
"""

import http.client
import json
import ssl
import sys

import requests

port, ca, expected = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2", "http/1.1"])
out = {}

conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
conn.connect()
sock = conn.sock
out["alpn"] = sock.selected_alpn_protocol()
out["version"] = sock.version()
conn.request("GET", "/")
r = conn.getresponse()
first = (r.status, r.read().decode(), r.getheader("Connection"))
conn.request("GET", "/")
r = conn.getresponse()
second = (r.status, r.read().decode())
out["keepalive"] = {
    "first": first,
    "second": second,
    "same_connection": sock is not None and conn.sock is sock,
}

conn.request("GET", "/", headers={"Connection": "close"})
r = conn.getresponse()
out["close"] = (r.status, r.read().decode(), r.getheader("Connection"))

body = bytes(range(256)) * 1200
conn.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
r = conn.getresponse()
echoed = r.read()
out["post"] = (r.status, echoed == body, len(echoed))

conn.request("GET", "/stream")
r = conn.getresponse()
out["stream"] = (r.status, r.getheader("Transfer-Encoding"), r.read().decode())

conn.request("GET", "/file")
r = conn.getresponse()
data = r.read()
with open(expected, "rb") as f:
    want = f.read()
out["file"] = (r.status, data == want, len(data))

conn.request("GET", "/env")
r = conn.getresponse()
out["env"] = json.loads(r.read())
conn.close()

r = requests.get("https://127.0.0.1:%d/" % port, verify=ca, timeout=30)
out["requests"] = (r.status_code, r.text)

print(json.dumps(out))
