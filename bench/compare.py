#!/usr/bin/env python3
"""Side-by-side server benchmark: ferrocorn, gunicorn 27 and granian on one app, one run.

Each server serves bench/apps/simple.py on 127.0.0.1 with the same number of worker
processes; wrk loads each in turn, round-robin, several rounds, so that the noise of this
shared machine hits all of them alike. Prints requests/s per server and scenario (median of
the rounds) and the ratios to gunicorn. Usage: bench/run.sh [--rounds N] [--duration S].
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, deadline_s=30.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1."):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def servers(venv, workers, threads):
    bin_ = os.path.join(venv, "bin")
    app = "simple:application"
    out = {
        "gunicorn-sync": [os.path.join(bin_, "gunicorn"), "-w", str(workers), "-k", "sync", app],
        "gunicorn-gthread": [os.path.join(bin_, "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", str(threads), app],
        "granian": [os.path.join(bin_, "granian"), "--interface", "wsgi", "--workers", str(workers),
                    "--blocking-threads", str(threads), "--no-ws", app],
    }
    ferro = os.path.join(bin_, "ferrocorn")
    if os.path.exists(ferro):
        out["ferrocorn-sync"] = [ferro, "-w", str(workers), "-k", "sync", app]
        out["ferrocorn-gthread"] = [ferro, "-w", str(workers), "-k", "gthread", "--threads", str(threads), app]
    return out


def bind_args(name, port):
    if name.startswith("granian"):
        return ["--host", "127.0.0.1", "--port", str(port)]
    return ["-b", f"127.0.0.1:{port}"]


WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk(port, path, connections, duration):
    threads = min(2, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", f"http://127.0.0.1:{port}{path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    m = WRK_RPS.search(res.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", res.stdout)
    socket_errors = re.search(r"Socket errors: (.*)", res.stdout)
    return (float(m.group(1)) if m else 0.0), (errors.group(1) if errors else "0"), (socket_errors.group(1) if socket_errors else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--venv", default=os.path.join(ROOT, ".venv-bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--only", default="", help="comma-separated server names")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (bench/run.sh installs it)")
    scenarios = [("hello c=50", "/", 50), ("hello c=1", "/", 1), ("large c=50", "/large", 50)]
    table = servers(args.venv, args.workers, args.threads)
    if args.only:
        table = {k: v for k, v in table.items() if k in args.only.split(",")}
    results = {(name, sc[0]): [] for name in table for sc in scenarios}
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "apps"))
    for rnd in range(args.rounds):
        for name, cmd in table.items():
            port = free_port()
            proc = subprocess.Popen(cmd + bind_args(name, port), cwd=os.path.join(HERE, "apps"), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                if not wait_ready(port, proc):
                    print(f"{name}: did not start", file=sys.stderr)
                    continue
                for label, path, conns in scenarios:
                    rps, non2xx, sockerr = wrk(port, path, conns, args.duration)
                    results[(name, label)].append(rps)
                    note = f" (non-2xx {non2xx}{', socket errors ' + sockerr if sockerr else ''})" if non2xx != "0" or sockerr else ""
                    print(f"round {rnd + 1} {name:18} {label:12} {rps:10.0f} req/s{note}", file=sys.stderr)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    print(f"\nmedian req/s over {args.rounds} rounds of {args.duration}s, {args.workers} workers, 127.0.0.1, wrk -t2")
    header = f"{'server':18}" + "".join(f"{sc[0]:>16}" for sc in scenarios)
    print(header)
    base = "gunicorn-sync"
    for name in table:
        row = f"{name:18}"
        for label, _, _ in scenarios:
            vals = results[(name, label)]
            med = statistics.median(vals) if vals else 0.0
            ref = results.get((base, label)) or []
            ratio = med / statistics.median(ref) if ref and statistics.median(ref) else 0.0
            row += f"{med:>9.0f} ({ratio:4.1f}x)"
        print(row)
    print(f"(ratios are to {base})")


if __name__ == "__main__":
    main()
