"""Measurements of gantry's control API (see bench/api.sh). Every figure comes from one run on one
machine; the unix-socket and TCP latencies are taken interleaved in rounds.

Usage: python3 bench/api_bench.py GANTRY [--quick]
"""
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
# The load client and the reference server (bench/api_load.rs, bench/hyper_hello.rs), built by
# bench/api.sh next to the binary.
LOAD = os.path.join(os.path.dirname(GANTRY), "examples", "api_load")
HELLO = os.path.join(os.path.dirname(GANTRY), "examples", "hyper_hello")
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


def steal_ms():
    """CPU time the hypervisor took from this machine's CPUs so far (/proc/stat), in ms."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")


def load(target, path, conns, rate, secs, headers=()):
    """bench/api_load.rs: (requests, late, p50 ms, p99 ms, requests/s, steal ms during the round);
    rate 0 is a closed loop."""
    steal = steal_ms()
    out = subprocess.run([LOAD, target, path, str(conns), str(rate), str(secs), *headers],
                         capture_output=True, text=True, timeout=secs + 60)
    if out.returncode != 0:
        raise RuntimeError(f"api_load failed: {out.stderr.strip()}")
    v = dict(kv.split("=") for kv in out.stdout.split())
    return (int(v["n"]), int(v["late"]), float(v["p50"]), float(v["p99"]), float(v["rps"]),
            steal_ms() - steal)


def median_by_p99(rounds):
    """The median round by p99, with the lowest p99 of all rounds appended."""
    by_p99 = sorted(rounds, key=lambda r: r[3])
    return by_p99[len(rounds) // 2] + (by_p99[0][3],)


class Servers:
    """gantry with 20 jobs on a unix socket and on TCP, and the hyper reference on a unix socket,
    all started at once and measured in turns."""

    def __enter__(self):
        d = tempfile.mkdtemp(prefix="gantry-api-lat-")
        self.unix, self.hello = f"{d}/g.sock", f"{d}/h.sock"
        self.port = free_port()
        _, self.p_unix = start_up(JOBS, ["--api", "--api-listen-address", f"unix://{self.unix}"])
        _, self.p_tcp = start_up(JOBS, ["--api", "--api-listen-address", f"tcp://127.0.0.1:{self.port}"])
        wait_socket(self.unix)
        # The reference answers a body as long as gantry's status of j0.
        body = subprocess.run(["curl", "-s", "--unix-socket", self.unix, "http://g" + STATUS],
                              capture_output=True, timeout=30).stdout
        self.p_hello = subprocess.Popen([HELLO, f"unix:{self.hello}", str(len(body))])
        wait_socket(self.hello)
        time.sleep(1.0)
        return self

    def targets(self):
        return [("gantry, unix", f"unix:{self.unix}", STATUS, ()),
                ("hyper hello, unix", f"unix:{self.hello}", "/", ()),
                ("gantry, TCP + token", f"tcp:127.0.0.1:{self.port}", STATUS,
                 ("Authorization: Bearer bench-token",))]

    def __exit__(self, *exc):
        for p in (self.p_unix, self.p_tcp, self.p_hello):
            stop(p)


STATUS = "/v1/job/j0/status"


def bench_latency():
    """Closed loop: 100 connections, each sending its next request when the answer comes."""
    secs, rounds = (3, 3) if QUICK else (5, 5)
    with Servers() as srv:
        res = {name: [] for name, *_ in srv.targets()}
        for _ in range(rounds):
            for name, target, path, headers in srv.targets():
                res[name].append(load(target, path, 100, 0, secs, headers))
    return {name: median_by_p99(r) for name, r in res.items()}


def bench_paced():
    """Open loop: 100 connections sending `rate` requests/s in all, gantry and the reference in turns."""
    secs, rounds = (3, 3) if QUICK else (5, 5)
    rows = []
    with Servers() as srv:
        targets = srv.targets()[:2]
        for rate in (1000, 5000, 10000):
            res = {name: [] for name, *_ in targets}
            for _ in range(rounds):
                for name, target, path, headers in targets:
                    res[name].append(load(target, path, 100, rate, secs, headers))
            rows += [(rate, name, median_by_p99(r)) for name, r in res.items()]
    return rows


JOBS = "".join(f'job "j{i}" {{\n command = "/bin/sleep"\n args = ["1000"]\n controllable = true\n}}\n'
               for i in range(20))


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
        print("## Status request latency: 100 concurrent keep-alive clients, closed loop\n")
        print("`GET /v1/job/j0/status` (20 jobs) from bench/api_load.rs (one thread, one task per")
        print("connection, each sending its next request when the answer comes), next to")
        print("bench/hyper_hello.rs: hyper on one current-thread runtime, as gantry's API, answering a body")
        print("of the same length with no work behind it. Rounds interleaved; the median round by p99.\n")
        print("| server | requests | p50 ms | p99 ms | requests/s | steal ms | lowest p99 ms |\n|---|---|---|---|---|---|---|")
        lat = bench_latency()
        for name, (n, _, p50, p99, rps, steal, best) in lat.items():
            print(f"| {name} | {n} | {p50:.2f} | {p99:.2f} | {rps:.0f} | {steal:.0f} | {best:.2f} |")
        g, h = lat["gantry, unix"], lat["hyper hello, unix"]
        print(f"\nratios gantry / hyper hello (unix): p99 {g[3] / h[3]:.2f}, requests/s {g[4] / h[4]:.2f}\n")
        print("Saturated, latency is the queue: with 100 requests always in flight, the mean latency is")
        print("100 divided by the request rate, for any server (Little's law).\n")
    if part("paced"):
        print("## Status request latency at fixed rates: 100 keep-alive clients on the unix socket\n")
        print("Each connection sends on a schedule from a random phase (open loop), so the figure is the")
        print("latency at that rate, not a queue. `late`: requests whose time came before the previous")
        print("answer; they count from their scheduled time. Rounds interleaved; the median round by p99.\n")
        print("| requests/s | server | requests | late | p50 ms | p99 ms | steal ms | lowest p99 ms |\n|---|---|---|---|---|---|---|---|")
        for rate, name, (n, late, p50, p99, _, steal, best) in bench_paced():
            print(f"| {rate} | {name} | {n} | {late} | {p50:.2f} | {p99:.2f} | {steal:.0f} | {best:.2f} |")
    if part("latency") or part("paced"):
        print("\n`steal ms`: CPU time the hypervisor took from this machine during the median round")
        print("(/proc/stat); a stall of a few ms delays every request in flight and shows in the p99.")
        print("`lowest p99 ms`: the lowest p99 of all rounds.\n")
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
