#!/usr/bin/env python3
"""How fast a job's readiness releases the job that waits for it, and what notify sockets cost idle.

Latency. `gantry up` runs two jobs: "svc", which becomes ready when the benchmark tells it to (a
byte on a FIFO), and "dep" (`after = ["svc"]`), a `dash -c 'echo > FIFO'` whose write the benchmark
times. svc takes the instant just before it signals readiness, in one of three ways: `READY=1` to
$NOTIFY_SOCKET (notify = "systemd"), a line on fd 5 (notify = "fd:5"), or starting to answer HTTP
(a `ready { url = ... }` probe polled with the probe backoff). The figure is dep's write minus that
instant. In the same trial, the common entrypoint idiom runs next to gantry: a shell loop that checks
every second (`until [ -e MARKER ]` / `until curl -sf URL`; sleep 1) and then starts the same dash;
svc creates MARKER at the same instant. `floor` is spawning that dash straight from Python, the part
of every figure that is process start-up, not waiting.

Idle cost. gantry with 20 jobs (`notify = "systemd"`, each a `sleep`), left alone for a period:
the context switches of all of gantry's threads (voluntary + involuntary, /proc/PID/task/*/status)
and its CPU time, next to the same 20 jobs without notify.

Usage: readiness_bench.py GANTRY_BINARY OUT_DIR [--quick]
"""
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SVC = r'''
import os, socket, sys, time, http.server, threading
mode, trigger, marker = sys.argv[1], sys.argv[2], sys.argv[3]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
with open(trigger, "rb") as f:
    f.read(1)
if mode == "http":
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        def log_message(self, *a): pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
t = time.time_ns()
if mode == "notify":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
elif mode == "fd":
    os.write(5, b"ready\n")
open(marker, "w").write(str(t))
if mode == "http":
    server.serve_forever()
while True:
    time.sleep(3600)
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_fifo(path, timeout=30.0):
    """Opens FIFO `path` for reading, returns the instant (ns) its first byte arrived."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        end = time.time() + timeout
        import select
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while time.time() < end:
            for _, ev in poller.poll(100):
                if ev & select.POLLIN:
                    t = time.time_ns()
                    if os.read(fd, 64):
                        return t
        raise SystemExit(f"bench: nothing arrived on {path}")
    finally:
        os.close(fd)


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def trial(gantry, mode, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    trigger, marker = f"{d}/trigger", f"{d}/marker"
    dep_fifo, loop_fifo = f"{d}/dep", f"{d}/loop"
    for p in (trigger, dep_fifo, loop_fifo):
        os.mkfifo(p)
    svc_py = f"{d}/svc.py"
    with open(svc_py, "w") as f:
        f.write(SVC)
    port = free_port()
    how = {
        "notify": 'notify = "systemd"',
        "fd": 'notify = "fd:5"',
        "http": f'ready {{ url = "http://127.0.0.1:{port}/" }}',
    }[mode]
    with open(f"{d}/jobs.hcl", "w") as f:
        f.write(f'''
job "svc" {{
  command = "python3"
  args = ["{svc_py}", "{mode}", "{trigger}", "{marker}", "{port}"]
  {how}
}}
job "dep" {{
  command = "dash"
  args = ["-c", "echo > {dep_fifo}; exec sleep 3600"]
  after = ["svc"]
}}
''')
    conf = f"{d}/conf"
    os.mkdir(conf)
    os.rename(f"{d}/jobs.hcl", f"{conf}/jobs.hcl")
    check = (f"until curl -sf -o /dev/null http://127.0.0.1:{port}/; do sleep 1; done"
             if mode == "http" else f"until [ -e {marker} ]; do sleep 1; done")
    g = subprocess.Popen([gantry, "up", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    loop = subprocess.Popen(["sh", "-c", f"{check}; exec dash -c 'echo > {loop_fifo}'"])
    try:
        time.sleep(random.uniform(0.5, 1.5))
        # Tell svc to become ready (opening the FIFO for writing waits for svc to open it).
        with open(trigger, "wb") as f:
            f.write(b"x")
        t_dep = read_fifo(dep_fifo)
        t_loop = read_fifo(loop_fifo)
        with open(marker) as f:
            t_ready = int(f.read())
        return (t_dep - t_ready) / 1e6, (t_loop - t_ready) / 1e6
    finally:
        g.send_signal(signal.SIGTERM)
        loop.kill()
        try:
            g.wait(timeout=20)
        except subprocess.TimeoutExpired:
            g.kill()
        loop.wait()


def floor(tmp, n):
    out = []
    for _ in range(n):
        p = f"{tmp}/floor-{random.random()}"
        os.mkfifo(p)
        t0 = time.time_ns()
        proc = subprocess.Popen(["dash", "-c", f"echo > {p}"])
        t = read_fifo(p)
        proc.wait()
        out.append((t - t0) / 1e6)
        os.unlink(p)
    return out


def switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def idle(gantry, tmp, notify, seconds):
    d = tempfile.mkdtemp(dir=tmp)
    with open(f"{d}/jobs.hcl", "w") as f:
        for i in range(20):
            extra = 'notify = "systemd"' if notify else ""
            f.write(f'job "j{i}" {{\n  command = "sleep"\n  args = ["3600"]\n  {extra}\n}}\n')
    g = subprocess.Popen([gantry, "up", "-c", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # every job started, start-up work done
        s0, c0 = switches(g.pid), cpu_ms(g.pid)
        time.sleep(seconds)
        return switches(g.pid) - s0, cpu_ms(g.pid) - c0
    finally:
        g.send_signal(signal.SIGTERM)
        g.wait(timeout=20)


def main():
    gantry, out_dir = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    n = 8 if quick else 30
    idle_s = 10
    tmp = tempfile.mkdtemp(prefix="gantry-readiness-bench-")
    rows = []
    fl = floor(tmp, n)
    for mode in ("notify", "fd", "http"):
        gd, ld = [], []
        for _ in range(n):
            a, b = trial(gantry, mode, tmp)
            gd.append(a)
            ld.append(b)
        rows.append((mode, gd, ld))
        print(f"{mode}: gantry p50 {percentile(gd, 50):.2f} ms p99 {percentile(gd, 99):.2f} ms; "
              f"1 s loop p50 {percentile(ld, 50):.1f} ms", file=sys.stderr)
    idle_rows = [(label, *idle(gantry, tmp, notify, idle_s))
                 for label, notify in (("20 jobs, notify = \"systemd\"", True),
                                       ("20 jobs, no readiness check", False))]
    lines = [
        f"readiness → dependent's process started ({n} trials per mode; floor = spawning the same "
        f"dash from Python: p50 {percentile(fl, 50):.2f} ms, p99 {percentile(fl, 99):.2f} ms)",
        "",
        "| ready by | gantry p50 | gantry p99 | 1 s shell loop p50 | loop p99 | ratio p50 |",
        "|---|---|---|---|---|---|",
    ]
    names = {"notify": "`READY=1` (notify = \"systemd\")", "fd": "fd line (notify = \"fd:5\")",
             "http": "HTTP answering (`ready { url }`)"}
    for mode, gd, ld in rows:
        g50, l50 = percentile(gd, 50), percentile(ld, 50)
        lines.append(f"| {names[mode]} | {g50:.2f} ms | {percentile(gd, 99):.2f} ms | "
                     f"{l50:.0f} ms | {percentile(ld, 99):.0f} ms | {g50 / l50:.3f}x |")
    lines += ["", f"idle, {idle_s} s after start-up:", "",
              "| gantry with | context switches (all threads) | CPU |", "|---|---|---|"]
    for label, sw, cpu in idle_rows:
        lines.append(f"| {label} | {sw} | {cpu:.0f} ms |")
    text = "\n".join(lines) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "readiness.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
