"""Measurements of gantry's control API (see bench/api.sh). Every figure comes from one run on one
machine; the unix-socket and TCP latencies are taken interleaved in rounds.

Usage: python3 bench/api_bench.py GANTRY [--quick]
"""
import asyncio
import json
import shutil
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from pagecache import evict

GANTRY = sys.argv[1]
QUICK = "--quick" in sys.argv
# Parts: --only=wrk,rss,latency,paced,follow (default: all).
ONLY = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")), None)


def part(name):
    return ONLY is None or name in ONLY
ENV = dict(os.environ, GANTRY_LOG="error", GANTRY_API_TOKEN="bench-token")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_up(cfg_text, extra, stdout=subprocess.DEVNULL):
    d = tempfile.mkdtemp(prefix="gantry-api-bench-")
    os.makedirs(f"{d}/cfg")
    with open(f"{d}/cfg/a.hcl", "w") as f:
        f.write(cfg_text)
    p = subprocess.Popen([GANTRY, "up", "-c", f"{d}/cfg"] + extra, env=ENV, cwd=d,
                         stdout=stdout, stderr=subprocess.DEVNULL)
    return d, p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wait_socket(path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise RuntimeError(f"no socket at {path}")


async def read_response(reader):
    """Reads one HTTP response (headers and a Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


async def one_client(open_conn, path, n, lat, headers=""):
    reader, writer = await open_conn()
    req = f"GET {path} HTTP/1.1\r\nHost: gantry\r\n{headers}\r\n".encode()
    for _ in range(n):
        t = time.perf_counter()
        writer.write(req)
        await read_response(reader)
        lat.append(time.perf_counter() - t)
    writer.close()


def latency(open_conn, path, clients, per_client, headers=""):
    lat = []

    async def main():
        await asyncio.gather(*(one_client(open_conn, path, per_client, lat, headers)
                               for _ in range(clients)))
    t = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t
    lat.sort()
    return lat, wall


def pct(lat, q):
    return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3


async def paced_client(open_conn, path, period, until, lat, late, headers=""):
    """One keep-alive client that sends a request every `period` seconds (from a random phase) until
    `until`, whether or not the server kept up: an open-loop load, so the latency measured is the
    server's at that rate, not the queue a saturating closed loop builds. A request whose send time
    had already passed when the previous answer came counts from its scheduled time."""
    import random
    reader, writer = await open_conn()
    req = f"GET {path} HTTP/1.1\r\nHost: gantry\r\n{headers}\r\n".encode()
    due = time.perf_counter() + random.random() * period
    while due < until:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            late[0] += 1
        writer.write(req)
        await read_response(reader)
        lat.append(time.perf_counter() - due)
        due += period
    writer.close()


def paced_latency(open_conn, path, clients, rate, secs, headers=""):
    """Latencies of `clients` connections sending `rate` requests/s in all, for `secs` seconds."""
    lat, late = [], [0]

    async def main():
        until = time.perf_counter() + secs
        await asyncio.gather(*(paced_client(open_conn, path, clients / rate, until, lat, late, headers)
                               for _ in range(clients)))
    asyncio.run(main())
    lat.sort()
    return lat, late[0]


def bench_paced():
    """Status latency at fixed request rates, 100 clients on the unix socket and over TCP."""
    port = free_port()
    sock = tempfile.mkdtemp(prefix="gantry-api-sock-") + "/g.sock"
    _, p_unix = start_up(JOBS, ["--api", "--api-listen-address", f"unix://{sock}"])
    _, p_tcp = start_up(JOBS, ["--api", "--api-listen-address", f"tcp://127.0.0.1:{port}"])
    wait_socket(sock)
    time.sleep(1.0)
    secs = 3 if QUICK else 10
    rows = []
    for rate in (1000, 5000, 10000):
        for name in ("unix", "tcp"):
            if name == "unix":
                lat, late = paced_latency(lambda: asyncio.open_unix_connection(sock),
                                          "/v1/job/j0/status", 100, rate, secs)
            else:
                lat, late = paced_latency(lambda: asyncio.open_connection("127.0.0.1", port),
                                          "/v1/job/j0/status", 100, rate, secs,
                                          "Authorization: Bearer bench-token\r\n")
            rows.append((rate, name, len(lat), pct(lat, 0.5), pct(lat, 0.99), late))
    stop(p_unix)
    stop(p_tcp)
    return rows


JOBS = "".join(f'job "j{i}" {{\n command = "/bin/sleep"\n args = ["1000"]\n controllable = true\n}}\n'
               for i in range(20))


def bench_latency():
    port = free_port()
    sock = tempfile.mkdtemp(prefix="gantry-api-sock-") + "/g.sock"
    d2, p_unix = start_up(JOBS, ["--api", "--api-listen-address", f"unix://{sock}"])
    d3, p_tcp = start_up(JOBS, ["--api", "--api-listen-address", f"tcp://127.0.0.1:{port}"])
    wait_socket(sock)
    time.sleep(1.0)
    clients, per = 100, (20 if QUICK else 100)
    rounds = 2 if QUICK else 5
    res = {"unix": ([], 0.0), "tcp": ([], 0.0)}
    for _ in range(rounds):
        for name in ("unix", "tcp"):
            if name == "unix":
                lat, wall = latency(lambda: asyncio.open_unix_connection(sock),
                                    "/v1/job/j0/status", clients, per)
            else:
                lat, wall = latency(lambda: asyncio.open_connection("127.0.0.1", port),
                                    "/v1/job/j0/status", clients, per,
                                    "Authorization: Bearer bench-token\r\n")
            res[name] = (res[name][0] + lat, res[name][1] + wall)
    stop(p_unix)
    stop(p_tcp)
    out = []
    for name, (lat, wall) in res.items():
        lat.sort()
        out.append((name, len(lat), pct(lat, 0.5), pct(lat, 0.99), len(lat) / wall))
    return out


WRK_LATENCY = r"""
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %.3f %.3f %.3f\n", summary.requests, summary.errors.status
    + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6)))
end
"""


def wrk(url, seconds, headers=()):
    """wrk with 100 connections on 2 threads: (requests, errors, p50 ms, p99 ms, requests/s)."""
    script = tempfile.mktemp(prefix="gantry-wrk-", suffix=".lua")
    with open(script, "w") as f:
        f.write(WRK_LATENCY)
    cmd = ["wrk", "-t2", "-c100", f"-d{seconds}s", "--latency", "-s", script]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    os.unlink(script)
    for line in out.splitlines():
        if line.startswith("WRK "):
            n, err, p50, p99, rps = line.split()[1:]
            return int(n), int(err), float(p50), float(p99), float(rps)
    raise RuntimeError(f"wrk printed no result: {out}")


HAPROXY = """global
  maxconn 4000
defaults
  mode http
  timeout client 60s
  timeout connect 5s
  timeout server 60s
frontend f
  bind 127.0.0.1:{port}
  http-request return status 200 content-type application/json string "{{\"pid\":1,\"running\":true}}"
"""


def bench_wrk():
    """Status requests over TCP (wrk needs TCP) to gantry's API, next to haproxy answering a fixed
    JSON body of its own (a C reference server with no work behind the answer), interleaved."""
    if not shutil.which("wrk") or not shutil.which("haproxy"):
        return None
    port, hport = free_port(), free_port()
    d, p = start_up(JOBS, ["--api", "--api-listen-address", f"tcp://127.0.0.1:{port}"])
    hcfg = tempfile.mktemp(prefix="gantry-haproxy-", suffix=".cfg")
    with open(hcfg, "w") as f:
        f.write(HAPROXY.format(port=hport))
    h = subprocess.Popen(["haproxy", "-f", hcfg, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    secs = 3 if QUICK else 5
    rows = {"gantry": [], "haproxy": []}
    for _ in range(2 if QUICK else 3):
        rows["gantry"].append(wrk(f"http://127.0.0.1:{port}/v1/job/j0/status", secs,
                                  ["Authorization: Bearer bench-token"]))
        rows["haproxy"].append(wrk(f"http://127.0.0.1:{hport}/", secs))
    stop(p)
    stop(h)
    os.unlink(hcfg)
    # The median round by p99.
    return {k: sorted(v, key=lambda r: r[3])[len(v) // 2] for k, v in rows.items()}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def bench_rss():
    samples = {"off": [], "on": []}
    for _ in range(2 if QUICK else 4):
        for mode in ("off", "on"):
            evict(GANTRY)
            d = tempfile.mkdtemp(prefix="gantry-api-rss-")
            extra = ["--api", "--api-listen-address", f"unix://{d}/g.sock"] if mode == "on" else []
            _, p = start_up(JOBS, extra)
            time.sleep(1.5)
            samples[mode].append(rss_kib(p.pid))
            stop(p)
    return {m: statistics.median(v) for m, v in samples.items()}


WRITER = r"""
import sys, time, os
rate, total = int(sys.argv[1]), int(sys.argv[2])
while not os.path.exists("go"):
    time.sleep(0.02)
out = sys.stdout.buffer
batch = 1000
start = time.perf_counter()
i = 0
while i < total:
    out.write(b"".join(b"%d\n" % (i + k + 1) for k in range(batch)))
    out.flush()
    i += batch
    if rate:
        ahead = i / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
sys.stderr.write("wrote %d in %.3f s\n" % (total, time.perf_counter() - start))
time.sleep(1000)
"""


def bench_follow(rate, total):
    d = tempfile.mkdtemp(prefix="gantry-api-follow-")
    with open(f"{d}/writer.py", "w") as f:
        f.write(WRITER)
    cfg = (f'job "w" {{\n command = "python3"\n args = ["{d}/writer.py", "{rate}", "{total}"]\n'
           f' controllable = true\n}}\n')
    sock = f"{d}/g.sock"
    os.makedirs(f"{d}/cfg")
    with open(f"{d}/cfg/a.hcl", "w") as f:
        f.write(cfg)
    p = subprocess.Popen([GANTRY, "up", "-c", f"{d}/cfg", "--api", "--api-listen-address",
                          f"unix://{sock}"], env=ENV, cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock)
    time.sleep(0.5)
    follower = subprocess.Popen(["curl", "-s", "-N", "--unix-socket", sock,
                                 "http://g/v2/jobs/w/logs?follow=true"], stdout=subprocess.PIPE)
    time.sleep(0.3)
    open(f"{d}/go", "w").close()
    t0 = time.perf_counter()
    got, skipped, last = 0, 0, 0
    for line in follower.stdout:
        v = json.loads(line)
        if "skipped" in v:
            skipped += v["skipped"]
            continue
        got += 1
        last = v["seq"] + 1
        if last >= total:
            break
    wall = time.perf_counter() - t0
    follower.kill()
    follower.wait()
    stop(p)
    return {"written": total, "delivered": got, "skipped": skipped, "seconds": wall,
            "delivered_per_s": got / wall}


def main():
    print("# gantry API benchmark\n")
    print(f"binary: `{GANTRY}`, {os.cpu_count()} cores{' (quick)' if QUICK else ''}\n")
    if part("latency"):
        print("## Status request latency: 100 concurrent keep-alive clients, `GET /v1/job/j0/status`, 20 jobs\n")
        print("| transport | requests | p50 ms | p99 ms | requests/s |\n|---|---|---|---|---|")
        for name, n, p50, p99, rps in bench_latency():
            print(f"| {name} | {n} | {p50:.2f} | {p99:.2f} | {rps:.0f} |")
        print("\n(The client is Python asyncio on the same cores; its own time is in every figure.)\n")
    if part("paced"):
        print("## Status request latency at a fixed rate: 100 keep-alive clients, `GET /v1/job/j0/status`\n")
        print("Each client sends on a schedule (open loop), so the figure is the latency at that rate, not")
        print("the queue a saturating client builds. `late`: requests whose time had come before the")
        print("previous answer (their latency counts from the scheduled time).\n")
        print("| requests/s | transport | requests | p50 ms | p99 ms | late |\n|---|---|---|---|---|---|")
        for rate, name, n, p50, p99, late in bench_paced():
            print(f"| {rate} | {name} | {n} | {p50:.2f} | {p99:.2f} | {late} |")
        print("\n(The client is Python asyncio on the same cores; its own time is in every figure.)\n")
    w = bench_wrk() if part("wrk") else None
    if w:
        print("## Status request latency with wrk (2 threads, 100 connections, TCP), next to haproxy\n")
        print("`GET /v1/job/j0/status` with a bearer token against gantry; haproxy answers a fixed body with")
        print("`http-request return` (no work behind it). Median of the rounds by p99, interleaved.\n")
        print("| server | requests | errors | p50 ms | p99 ms | requests/s |\n|---|---|---|---|---|---|")
        for name, (n, err, p50, p99, rps) in w.items():
            print(f"| {name} | {n} | {err} | {p50:.2f} | {p99:.2f} | {rps:.0f} |")
        g, hh = w["gantry"], w["haproxy"]
        print(f"\nratios gantry / haproxy: p99 {g[3] / hh[3]:.2f}, requests/s {g[4] / hh[4]:.2f}\n")
    if part("follow"):
        print("## Log follow (NDJSON over the unix socket, default 1 MiB ring)\n")
        print("| job writes | lines | delivered | skipped | lines/s delivered |\n|---|---|---|---|---|")
        total = 300_000 if QUICK else 1_000_000
        for label, rate in (("100,000 lines/s", 100_000), ("as fast as it can", 0)):
            r = bench_follow(rate, total)
            print(f"| {label} | {r['written']} | {r['delivered']} | {r['skipped']} | {r['delivered_per_s']:.0f} |")
    if part("rss"):
        print("\n## RSS of `up` with 20 jobs (median, KiB)\n")
        rss = bench_rss()
        print("| API off | API on | difference |\n|---|---|---|")
        print(f"| {rss['off']:.0f} | {rss['on']:.0f} | {rss['on'] - rss['off']:+.0f} |")

main()
