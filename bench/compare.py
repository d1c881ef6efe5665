#!/usr/bin/env python3
"""Side-by-side server benchmark: ferrocorn, gunicorn 27 and granian, one run.

Every server serves the same apps (bench/apps) on 127.0.0.1 with the same number of worker
processes; wrk drives each scenario against each server in turn, round-robin over several
rounds, so that the noise of this shared machine hits all of them alike. Prints, per
scenario and server: requests/s (median over rounds), p50/p99 latency, errors, the memory
of the server's processes (RSS, summed over the process group), the server's CPU time per request (utime +
stime of its processes from /proc: the figure that does not depend on wrk saturating the
2-core machine first) and the ratios
ferrocorn/gunicorn and ferrocorn/granian. Bounded: every wrk run lasts --duration seconds,
after --warmup seconds of the same load, not measured.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
# The client of the TLS handshake scenarios (bench/src/bin/tls-close-load.rs, built by
# bench/setup.sh).
TLS_CLOSE_LOAD = os.path.join(os.path.dirname(HERE), "target", "release", "tls-close-load")

# (name, app, path, wrk script or None, keep-alive, connections)
SCENARIOS_FULL = [
    (f"{label} c={c}{'' if ka else ' close'}", app, path, script, ka, c)
    for (label, app, path, script) in [
        ("hello", "simple:application", "/", None),
        ("flask", "flask_app:app", "/", None),
        ("post64k", "simple:application", "/echo", "post64k.lua"),
        ("stream1M", "simple:application", "/stream", None),
    ]
    for ka in (True, False)
    for c in (1, 32, 256)
]
# The key types of the TLS scenarios: the arguments of `openssl req -newkey`.
TLS_KEYS = {
    "ec256": ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
    "rsa2048": ["rsa:2048"],
}
# Which servers each TLS scenario runs (with any --ferrocorn-alt builds of the ferrocorn ones).
TLS_SERVERS = {
    "tls-hello": ("ferrocorn-gthread", "granian", "gunicorn-gthread"),
    "tls-handshake": ("ferrocorn-sync", "gunicorn-sync"),
}
# Logging scenarios (issue 15): the hello world with StatsD on (a receiver listening, the
# bench's own UDP socket) and with the access log through a logconfig_dict file handler
# (bench/apps/logdict.conf.py); (name, app, path, script, keep-alive, connections, extra
# server arguments). gunicorn and ferrocorn only: granian has neither setting.
SCENARIOS_LOGGING = [
    (f"{label} c={c}", "simple:application", "/", None, True, c, extra)
    for (label, extra) in [
        ("hello-statsd", ["--statsd-host", "127.0.0.1:{statsd}"]),
        ("hello-logdict", ["-c", os.path.join(APPS, "logdict.conf.py")]),
    ]
    for c in (1, 32)
]
# TLS scenarios (issue 14), one worker, certificates made by the openssl command at bench
# time (EC P-256 and RSA 2048, self-signed): the hello world over keep-alive connections
# (wrk; ferrocorn gthread against granian and gunicorn gthread, 4 threads each) and a full
# handshake per request (`Connection: close`; ferrocorn sync against gunicorn sync) driven by
# tls-close-load, not wrk: wrk resumes the last session of each connection, and its OpenSSL
# 3.0 client costs about 3 ms of CPU per full handshake, more than the servers.
SCENARIOS_TLS = [
    (f"tls-{label}-{key} c={c}{'' if ka else ' close'}", "simple:application", "/", None, ka, c, [])
    for (label, ka, c) in [("hello", True, 32), ("handshake", False, 8)]
    for key in TLS_KEYS
]
SCENARIOS_FULL = [s + ([],) for s in SCENARIOS_FULL] + SCENARIOS_LOGGING + SCENARIOS_TLS
SCENARIOS_QUICK = [s for s in SCENARIOS_FULL
                   if s[5] == 32 or (s[0].startswith("hello ") and s[5] == 256) or s[0].startswith("tls-")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_scenario(sname):
    """(kind, key type) of a TLS scenario ("tls-hello", "ec256"), or None."""
    m = re.match(r"(tls-[a-z]+)-([a-z0-9]+) ", sname)
    return (m.group(1), m.group(2)) if m else None


def make_certificates(directory):
    """A self-signed certificate and its key per key type, made now by the openssl command:
    {key type: (certfile, keyfile)}."""
    out = {}
    for key, newkey in TLS_KEYS.items():
        cert, keyfile = os.path.join(directory, f"{key}.crt"), os.path.join(directory, f"{key}.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", *newkey, "-nodes", "-keyout", keyfile, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        out[key] = (cert, keyfile)
    return out


def tls_arguments(name, cert, key):
    if name.startswith("granian"):
        return ["--ssl-certificate", cert, "--ssl-keyfile", key]
    return ["--certfile", cert, "--keyfile", key]


def wait_ready(port, proc, deadline_s=60.0, tls=False):
    deadline = time.monotonic() + deadline_s
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw, \
                    (context.wrap_socket(raw) if tls else raw) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1."):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def server_commands(venv, workers, threads, alternates=()):
    """{server name: function(app, port, workers) -> argv}; `alternates` are other ferrocorn
    builds, (label, path of their `ferrocorn` command): servers "ferrocorn-sync[label]"..."""
    b = os.path.join(venv, "bin")
    out = {
        "gunicorn-sync": lambda app, port, workers=workers: [f"{b}/gunicorn", "-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{port}", app],
        "gunicorn-gthread": lambda app, port, workers=workers: [f"{b}/gunicorn", "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                                               "-b", f"127.0.0.1:{port}", app],
        "granian": lambda app, port, workers=workers: [f"{b}/granian", "--interface", "wsgi", "--workers", str(workers),
                                      "--blocking-threads", str(threads), "--no-ws", "--host", "127.0.0.1", "--port", str(port), app],
        # granian's own default for the blocking threads: "granian's best configuration" is
        # the better of the two in each scenario.
        "granian-default": lambda app, port, workers=workers: [f"{b}/granian", "--interface", "wsgi", "--workers", str(workers),
                                              "--no-ws", "--host", "127.0.0.1", "--port", str(port), app],
    }
    if os.path.exists(f"{b}/ferrocorn"):
        out["ferrocorn-sync"] = lambda app, port, workers=workers: [f"{b}/ferrocorn", "-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{port}", app]
        out["ferrocorn-gthread"] = lambda app, port, workers=workers: [f"{b}/ferrocorn", "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                                                      "-b", f"127.0.0.1:{port}", app]
    for label, command in alternates:
        out[f"ferrocorn-sync[{label}]"] = lambda app, port, workers=workers, c=command: [
            c, "-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{port}", app]
        out[f"ferrocorn-gthread[{label}]"] = lambda app, port, workers=workers, c=command: [
            c, "-w", str(workers), "-k", "gthread", "--threads", str(threads), "-b", f"127.0.0.1:{port}", app]
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_members(pgid):
    """(pid, fields of /proc/pid/stat after the command name) of every process in the group."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                yield pid, fields
        except (OSError, IndexError, ValueError):
            pass


def cpu_seconds(pgid):
    """utime + stime of every process in the group, including reaped children's."""
    # fields[11..15] = utime stime cutime cstime (after the state field at index 0)
    return sum(sum(int(x) for x in fields[11:15]) for _, fields in group_members(pgid)) / CLK_TCK


def rss_kib(pgid):
    """Resident memory of every process in the group, KiB."""
    total = 0
    for pid, _ in group_members(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.match(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT[m.group(2)] if m else float("nan")


def tls_close_load(port, path, connections, duration):
    """wrk's figures for a full TLS handshake per request (bench/src/bin/tls-close-load.rs)."""
    cmd = [TLS_CLOSE_LOAD, f"127.0.0.1:{port}", path, str(connections), str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout.split()
    r = dict(zip(out[::2], out[1::2]))
    return {
        "requests": int(r.get("requests", 0)),
        "rps": int(r.get("requests", 0)) / float(r.get("seconds", duration)),
        "p50": float(r.get("p50_ms", "nan")),
        "p99": float(r.get("p99_ms", "nan")),
        "errors": int(r.get("errors", 0)),
    }


def wrk(port, path, script, keep_alive, connections, duration, tls=False):
    if tls and not keep_alive:
        return tls_close_load(port, path, connections, duration)
    cmd = ["wrk", "--latency", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{duration}s"]
    if not keep_alive:
        cmd += ["-H", "Connection: close"]
    if script:
        cmd += ["-s", os.path.join(APPS, script)]
    cmd.append(f"{'https' if tls else 'http'}://127.0.0.1:{port}{path}")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    out = res.stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    total = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms(p50.group(1)) if p50 else float("nan"),
        "p99": ms(p99.group(1)) if p99 else float("nan"),
        "errors": errors,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=os.path.join(os.path.dirname(HERE), ".venv-bench"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1,
                    help="seconds of unmeasured load before each run, so that every worker has booted and "
                         "served (a server answers once its first worker is up: measured from there, the "
                         "workers still booting take no connections)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--only", default="", help="comma-separated server names")
    ap.add_argument("--ferrocorn-alt", action="append", default=[], metavar="LABEL=COMMAND",
                    help="another ferrocorn build (its `ferrocorn` command) run beside the installed one as "
                         "ferrocorn-sync[LABEL] and ferrocorn-gthread[LABEL], e.g. another crypto provider")
    ap.add_argument("--scenarios", default="", help="comma-separated substrings of scenario names, or =NAME for one scenario exactly")
    ap.add_argument("--quick", action="store_true", help="c=32 (and hello at c=256) only")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (bench/run.sh installs it)")
    scenarios = SCENARIOS_QUICK if args.quick else SCENARIOS_FULL
    if args.scenarios:
        keys = args.scenarios.split(",")
        scenarios = [s for s in scenarios if any(s[0] == k[1:] if k.startswith("=") else k in s[0] for k in keys)]
    alternates = [(label, os.path.abspath(path)) for label, path in (a.split("=", 1) for a in args.ferrocorn_alt)]
    servers = server_commands(args.venv, args.workers, args.threads, alternates)
    if args.only:
        servers = {k: v for k, v in servers.items() if k in args.only.split(",")}
    logs = tempfile.mkdtemp(prefix="ferrocorn-bench-")
    env = dict(os.environ, PYTHONPATH=APPS, BENCH_ACCESS_LOG=os.path.join(logs, "access.log"))
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    statsd.bind(("127.0.0.1", 0))
    fill = {"statsd": statsd.getsockname()[1]}
    certificates = make_certificates(logs) if any(tls_scenario(s[0]) for s in scenarios) else {}
    results = {}
    for rnd in range(args.rounds):
        for (sname, app, path, script, ka, conns, extra) in scenarios:
            tls = tls_scenario(sname)
            for name, cmd in servers.items():
                if extra and name.startswith("granian"):
                    continue
                if tls and name.split("[")[0] not in TLS_SERVERS[tls[0]]:
                    continue
                port = free_port()
                # TLS: one worker (issue 14's scenarios).
                argv = cmd(app, port, 1) if tls else cmd(app, port)
                argv[-1:-1] = [a.format(**fill) for a in extra]
                if tls:
                    argv[-1:-1] = tls_arguments(name, *certificates[tls[1]])
                proc = subprocess.Popen(argv, cwd=APPS, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                try:
                    if not wait_ready(port, proc, tls=bool(tls)):
                        print(f"{name}: did not start for {sname}", file=sys.stderr)
                        continue
                    rss_rest = rss_kib(proc.pid)
                    if args.warmup > 0:
                        wrk(port, path, script, ka, conns, args.warmup, bool(tls))
                    cpu_before = cpu_seconds(proc.pid)
                    r = wrk(port, path, script, ka, conns, args.duration, bool(tls))
                    cpu = cpu_seconds(proc.pid) - cpu_before
                    r["cpu_us"] = cpu * 1e6 / r["requests"] if r["requests"] else float("nan")
                    r["rss"] = rss_kib(proc.pid)
                    r["rss_rest"] = rss_rest
                    results.setdefault((sname, name), []).append(r)
                    print(f"round {rnd + 1} {sname:26} {name:26} {r['rps']:9.0f} req/s p50 {r['p50']:7.2f} ms "
                          f"p99 {r['p99']:8.2f} ms cpu/req {r['cpu_us']:6.1f} us errors {r['errors']} rss {r['rss_rest'] // 1024}->{r['rss'] // 1024} MiB", file=sys.stderr)
                finally:
                    if os.path.exists(env["BENCH_ACCESS_LOG"]):
                        os.unlink(env["BENCH_ACCESS_LOG"])
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
    print(f"\n{args.workers} workers ({args.threads} threads for gthread/granian), wrk on 127.0.0.1, "
          f"{args.rounds} round(s) of {args.duration}s; req/s is the median over rounds")
    print(f"{'scenario':26} {'server':26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'errors':>7}"
          f" {'RSS rest->load MiB':>18} {'x gunicorn':>10} {'x granian':>10} {'CPU x gunicorn':>14} {'CPU x granian':>13}")
    for (sname, *_rest) in scenarios:
        # TLS scenarios compare with gunicorn's worker of the same kind (gthread for tls-hello).
        tls = tls_scenario(sname)
        base_g = results.get((sname, TLS_SERVERS[tls[0]][-1] if tls else "gunicorn-sync"))
        med = lambda rs: statistics.median(r["rps"] for r in rs) if rs else 0.0
        cpu_med = lambda rs: statistics.median(r["cpu_us"] for r in rs) if rs else float("nan")
        # The better granian configuration of this scenario.
        base_r = max((results.get((sname, g)) for g in ("granian", "granian-default")), key=med, default=None)
        for name in servers:
            rs = results.get((sname, name))
            if not rs:
                continue
            rps = med(rs)
            vs_g = rps / med(base_g) if base_g and med(base_g) else float("nan")
            vs_r = rps / med(base_r) if base_r and med(base_r) else float("nan")
            cpu = cpu_med(rs)
            cpu_g = cpu / cpu_med(base_g) if base_g else float("nan")
            cpu_r = cpu / cpu_med(base_r) if base_r else float("nan")
            p50 = statistics.median(r["p50"] for r in rs)
            p99 = statistics.median(r["p99"] for r in rs)
            rss = f"{statistics.median(r['rss_rest'] for r in rs) / 1024:.0f}->{statistics.median(r['rss'] for r in rs) / 1024:.0f}"
            print(f"{sname:26} {name:26} {rps:9.0f} {p50:8.2f} {p99:8.2f} {cpu:10.1f} {sum(r['errors'] for r in rs):7d}"
                  f" {rss:>18} {vs_g:10.2f} {vs_r:10.2f} {cpu_g:14.2f} {cpu_r:13.2f}")
    print("x gunicorn: req/s ratio to gunicorn-sync (to gunicorn-gthread in tls-hello); x granian: to the better "
          "granian configuration; CPU x: the same ratios of CPU per request (same scenario, same run); "
          "p50/p99/CPU/RSS: medians over rounds; RSS summed over the server's processes; TLS scenarios: one worker")


if __name__ == "__main__":
    main()
