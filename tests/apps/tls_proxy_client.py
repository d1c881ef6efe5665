"""PROXY protocol before TLS, for shell/tests/tls_e2e.rs: a v1 line and a v2 header sent in
the clear, then the TLS handshake on the same connection (haproxy's `send-proxy` and
`send-proxy-v2` in front of a TLS listener), then `GET /env`. Prints a JSON list of
`[REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme]`, one per header.

    tls_proxy_client.py PORT CA_FILE
"""

import json
import socket
import ssl
import struct
import sys

port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
v1 = b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 443\r\n"
v2 = (
    b"\r\n\r\n\x00\r\nQUIT\n"
    + bytes([0x21, 0x11])
    + struct.pack("!H", 12)
    + socket.inet_aton("198.51.100.7")
    + socket.inet_aton("127.0.0.1")
    + struct.pack("!HH", 6666, 443)
)
out = []
for header in (v1, v2):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    raw.sendall(header)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(b"GET /env HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            break
        data += chunk
    env = json.loads(data.partition(b"\r\n\r\n")[2])
    out.append([env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]])
print(json.dumps(out))
