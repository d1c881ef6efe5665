"""TLS client of the settings probes (tests/e2e/setting_probes.rs): one request over TLS,
the way a user's client would see the effect of a TLS setting. Prints one line:
`status BODY` after an answer, `handshake-failed REASON` when the handshake fails.

    probe_client.py get PORT [--cert C --key K] [--verify CA] [--tls12-cipher NAME]
    probe_client.py ragged PORT   POST with Content-Length 10, 5 bytes sent, then the TCP
                                  connection shut without a TLS close_notify
"""

import os
import socket
import ssl
import sys


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if "--verify" in args:
        # Succeeds only if the server presents exactly this (self-signed) certificate.
        ctx.load_verify_locations(args[args.index("--verify") + 1])
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if "--cert" in args:
        ctx.load_cert_chain(args[args.index("--cert") + 1], args[args.index("--key") + 1])
    if "--tls12-cipher" in args:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(args[args.index("--tls12-cipher") + 1])
    return ctx


def connect(port, args):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        return context(args).wrap_socket(raw)
    except (ssl.SSLError, OSError) as e:
        print("handshake-failed", type(e).__name__, e)
        sys.exit(0)


def read_all(tls):
    data = b""
    try:
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, OSError) as e:
        if not data:
            print("handshake-failed", type(e).__name__, e)
            sys.exit(0)
    return data


def main():
    cmd, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    tls = connect(port, args)
    if cmd == "get":
        tls.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        data = read_all(tls)
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split(b" ")[1:2]
        print((status[0] if status else b"-").decode(), body.decode(errors="replace"))
    elif cmd == "ragged":
        tls.sendall(b"POST /body HTTP/1.1\r\nHost: probe\r\nContent-Length: 10\r\n\r\n12345")
        # The TCP connection ends with no close_notify: a truncation attack, or a client
        # that just went away.
        socket.socket(fileno=os.dup(tls.fileno())).shutdown(socket.SHUT_RDWR)
        print("sent")


main()
