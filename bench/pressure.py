#!/usr/bin/env python3
"""Servers under pressure, side by side: what a client sees when the server is overloaded
or when other clients are slow, stalled or vanish. Each scenario starts each server fresh
on 127.0.0.1, drives it with asyncio clients for a bounded time, and reports what happened
(answered or not, how long it took, whether a worker was killed, how many log lines).

Scenarios (see the `SCENARIOS` table):
  queued       -w 1 --threads 2, 3 requests at once to an app that sleeps 6 s: are all
               three answered, and when?
  unread-big   POST Content-Length 1 MiB, body never sent, to an app that answers 401
               without reading it: when does the 401 come? (and with Expect: 100-continue)
  unread-small the same with Content-Length 1000
  trickle      -w 1 -t 10: a head trickled one byte every 5 s; is the worker killed, when
               is the client closed, and is a second client served after it?
  trickle-after-close  the same just after a connection was opened and closed
  aborted      200 uploads of 1 MiB abandoned after 64 KiB: how many error-log lines?
  slow-uploads 200 clients uploading 1 MiB at 1 byte/s, while a normal client sends GET /
               for 10 s (2 s per attempt): share of normal requests answered, p50/p99
  slow-uploads-spooled, unread-big-spooled
               the same with tmp_upload_dir set (bench/apps/pressure_spool.conf.py)

Usage: bench/pressure.sh [--only NAME,...] [--scenarios NAME,...]
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import APPS, free_port, wait_ready  # noqa: E402

APP = "pressure:application"
HEAD_LIMIT = 40.0  # no client waits longer than this for anything


def commands(venv):
    b = os.path.join(venv, "bin")
    out = {}
    for prog in ("gunicorn", "ferrocorn"):
        if os.path.exists(f"{b}/{prog}"):
            out[f"{prog}-sync"] = lambda extra, port, p=prog: [f"{b}/{p}", "-k", "sync", "-b", f"127.0.0.1:{port}", *extra, APP]
            out[f"{prog}-gthread"] = lambda extra, port, p=prog: [f"{b}/{p}", "-k", "gthread", "-b", f"127.0.0.1:{port}", *extra, APP]
    return out


class Server:
    def __init__(self, cmd, port):
        self.log = tempfile.NamedTemporaryFile(prefix="pressure-", suffix=".log", delete=False)
        self.port = port
        self.proc = subprocess.Popen(cmd, cwd=APPS, stdout=self.log, stderr=self.log, start_new_session=True)
        if not wait_ready(port, self.proc):
            self.stop()
            raise RuntimeError(f"{cmd[0]} did not start: {self.text()}")

    def text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.unlink(self.log.name)


async def read_status(reader, limit=HEAD_LIMIT):
    """The first status line (after any 1xx), its arrival time, and whether a 100 came."""
    start = time.monotonic()
    got_100 = None
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), limit)
            if not line:
                return "closed", time.monotonic() - start, got_100
            status = line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "?"
            while (await asyncio.wait_for(reader.readline(), limit)) not in (b"\r\n", b""):
                pass
            if status == "100":
                got_100 = time.monotonic() - start
                continue
            return status, time.monotonic() - start, got_100
    except asyncio.TimeoutError:
        return "nothing", time.monotonic() - start, got_100
    except OSError as e:
        return type(e).__name__, time.monotonic() - start, got_100


async def request(port, raw, limit=HEAD_LIMIT):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        return type(e).__name__, 0.0, None
    writer.write(raw)
    out = await read_status(reader, limit)
    writer.close()
    return out


def fmt(status, secs, got_100=None):
    s = f"{status} in {secs:.2f}s"
    return s + (f" (100 after {got_100:.2f}s)" if got_100 is not None else "")


# ---- scenarios: each returns a one-line result ----

async def queued(srv):
    raw = b"GET /sleep?6 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    res = await asyncio.gather(*(request(srv.port, raw, 30) for _ in range(3)))
    ok = sum(1 for s, _, _ in res if s == "200")
    return f"{ok}/3 answered; " + ", ".join(fmt(s, t) for s, t, _ in sorted(res, key=lambda r: r[1]))


async def unread(srv, length):
    head = f"POST /early HTTP/1.1\r\nHost: p\r\nContent-Length: {length}\r\n".encode()
    plain = await request(srv.port, head + b"\r\n")
    expect = await request(srv.port, head + b"Expect: 100-continue\r\n\r\n")
    return f"plain: {fmt(*plain)}; expect: {fmt(*expect)}"


async def unread_big(srv):
    return await unread(srv, 1 << 20)


async def unread_small(srv):
    return await unread(srv, 1000)


async def trickle(srv, opened_before=False):
    if opened_before:
        # A connection opened and closed just before the trickler.
        _, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    start = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    closed_at = None
    for byte in b"X-Slow: abcdefgh":
        await asyncio.sleep(5)
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except OSError:
            closed_at = time.monotonic() - start
            break
        if reader.at_eof() or writer.is_closing():
            closed_at = time.monotonic() - start
            break
        try:
            data = await asyncio.wait_for(reader.read(1), 0.01)
            if not data:
                closed_at = time.monotonic() - start
                break
        except asyncio.TimeoutError:
            pass
        except OSError:
            closed_at = time.monotonic() - start
            break
    writer.close()
    after = await request(srv.port, b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", 15)
    killed = "WORKER TIMEOUT" in srv.text()
    closed = f"closed after {closed_at:.1f}s" if closed_at else "never closed (80 s)"
    return f"trickler {closed}; worker killed: {'yes' if killed else 'no'}; next client: {fmt(*after[:2])}"


async def trickle_after_close(srv):
    return await trickle(srv, opened_before=True)


async def aborted(srv):
    before = len(srv.text().splitlines())

    async def one():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 65536)
            await writer.drain()
            writer.transport.abort()
        except OSError:
            pass

    await asyncio.gather(*(one() for _ in range(200)))
    # Let the server notice every abandoned upload: a normal request after them.
    for _ in range(20):
        await request(srv.port, b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", 10)
    await asyncio.sleep(1)
    lines = srv.text().splitlines()[before:]
    tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
    return f"{len(lines)} log lines, {tracebacks} tracebacks"


async def slow_uploads(srv):
    stop = asyncio.Event()

    async def slow():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 1048576\r\n\r\n")
            while not stop.is_set():
                writer.write(b"x")
                await writer.drain()
                try:
                    await asyncio.wait_for(stop.wait(), 1)
                except asyncio.TimeoutError:
                    pass
            writer.transport.abort()
        except OSError:
            pass

    slows = [asyncio.create_task(slow()) for _ in range(200)]
    await asyncio.sleep(2)
    lat, failed = [], 0
    end = time.monotonic() + 10
    while time.monotonic() < end:
        t = time.monotonic()
        s, _, _ = await request(srv.port, b"GET / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", 2)
        if s == "200":
            lat.append((time.monotonic() - t) * 1000)
        else:
            failed += 1
    stop.set()
    await asyncio.gather(*slows)
    total = len(lat) + failed
    if not lat:
        return f"normal clients: 0/{total} answered"
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return f"normal clients: {len(lat)}/{total} answered ({100 * len(lat) / total:.0f}%), p50 {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms"


# (name, function, server arguments, which worker classes)
SCENARIOS = [
    ("queued", queued, ["-w", "1", "--threads", "2"], ("gthread",)),
    ("unread-big", unread_big, ["-w", "1", "--threads", "2"], ("sync", "gthread")),
    ("unread-small", unread_small, ["-w", "1", "--threads", "2"], ("sync", "gthread")),
    ("trickle", trickle, ["-w", "1", "-t", "10"], ("sync",)),
    ("trickle-after-close", trickle_after_close, ["-w", "1", "-t", "10"], ("sync",)),
    ("aborted", aborted, ["-w", "2", "--threads", "4"], ("sync", "gthread")),
    ("slow-uploads", slow_uploads, ["-w", "2", "--threads", "4"], ("sync", "gthread")),
    # The same with tmp_upload_dir set (bench/apps/pressure_spool.conf.py): ferrocorn's
    # gthread worker then reads such bodies in its poller before calling the application.
    ("slow-uploads-spooled", slow_uploads, ["-w", "2", "--threads", "4", "-c", "pressure_spool.conf.py"], ("gthread",)),
    ("unread-big-spooled", unread_big, ["-w", "1", "--threads", "2", "-c", "pressure_spool.conf.py"], ("gthread",)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))))
    ap.add_argument("--only", help="servers, comma-separated (e.g. ferrocorn-gthread)")
    ap.add_argument("--scenarios", help="scenario names, comma-separated")
    args = ap.parse_args()
    servers = commands(os.path.abspath(args.venv))
    if args.only:
        servers = {k: v for k, v in servers.items() if k in args.only.split(",")}
    wanted = args.scenarios.split(",") if args.scenarios else [s[0] for s in SCENARIOS]
    print("| scenario | server | result |")
    print("|---|---|---|")
    for name, func, extra, classes in SCENARIOS:
        if name not in wanted:
            continue
        for server, cmd in servers.items():
            if server.rsplit("-", 1)[1] not in classes:
                continue
            args = extra
            if server.endswith("-sync"):
                # `--threads` > 1 turns `-k sync` into the gthread worker in both servers:
                # the sync rows would measure gthread.
                args = [a for i, a in enumerate(extra) if a != "--threads" and (i == 0 or extra[i - 1] != "--threads")]
            port = free_port()
            srv = Server(cmd(args, port), port)
            try:
                result = asyncio.run(func(srv))
            finally:
                srv.stop()
            print(f"| {name} | {server} | {result} |", flush=True)


if __name__ == "__main__":
    main()
