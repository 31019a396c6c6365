#!/usr/bin/env python3
"""Readiness latency and idle CPU of `gantry wait`, next to a fixed 1 s poll loop (mittnite's way).

Latency: for each backend, a real server sits behind bench/gate.py, which opens its port after a
random 1-2 s delay and records the instant. `gantry wait URL -- CMD` and a shell loop that tries a
TCP connect every second, then starts CMD, run side by side against the same gate; CMD records the
instant it starts. The figure is CMD start minus gate open. The poll loop's check is a bare TCP
connect (cheaper than gantry's full handshake), which only flatters the baseline.

CPU: user+system time of `gantry wait` while a dependency stays down for the whole period (nothing
listening; a MySQL that refuses the password), next to the 1 s poll loop for the same period.

Usage: probes_bench.py GANTRY_BINARY OUT_DIR [--quick] [--only tcp,mysql,...] [--no-cpu]
"""
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.environ.get("GANTRY_TEST_VENV", "/opt/gantry-test-venv")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing came up on port {port}")


def start_helpers(tmp):
    """Servers the machine does not run itself: HTTP, SMTP, MongoDB (wire-compatible nx-27017)."""
    procs, ports = [], {}
    ports["http"] = free_port()
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "http.server", str(ports["http"]), "--bind", "127.0.0.1",
         "--directory", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    ports["smtp"] = free_port()
    procs.append(subprocess.Popen(
        [f"{VENV}/bin/python", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{ports['smtp']}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    ports["mongodb"] = free_port()
    procs.append(subprocess.Popen(
        [f"{VENV}/bin/nx-27017", "--db", "memory", "--host", "127.0.0.1", "-p",
         str(ports["mongodb"]), "--pid-file", os.path.join(tmp, "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for p in ports.values():
        wait_port(p)
    return procs, ports


def backends(helper_ports):
    """(name, URL template with {port}, the real server behind the gate)."""
    return [
        ("tcp", "tcp://127.0.0.1:{port}", f"127.0.0.1:{helper_ports['http']}"),
        ("http", "http://127.0.0.1:{port}/", f"127.0.0.1:{helper_ports['http']}"),
        ("mysql", "mysql://root@127.0.0.1:{port}/test", "127.0.0.1:3306"),
        ("postgres", "postgres://postgres@127.0.0.1:{port}/test", "127.0.0.1:5432"),
        ("redis", "redis://127.0.0.1:{port}/0", "127.0.0.1:6379"),
        ("amqp", "amqp://guest:guest@127.0.0.1:{port}/%2f", "127.0.0.1:5672"),
        ("mongodb", "mongodb://127.0.0.1:{port}/", f"127.0.0.1:{helper_ports['mongodb']}"),
        ("smtp", "smtp://127.0.0.1:{port}", f"127.0.0.1:{helper_ports['smtp']}"),
    ]


def read_time(path):
    with open(path) as f:
        return float(f.read().strip())


def trial(gantry, url_t, upstream, tmp):
    port = free_port()
    url = url_t.format(port=port)
    stamp = os.path.join(tmp, "gate")
    g_out = os.path.join(tmp, "gantry-started")
    p_out = os.path.join(tmp, "poll-started")
    for f in (stamp, g_out, p_out):
        if os.path.exists(f):
            os.remove(f)
    delay = random.uniform(1.0, 2.0)
    gate = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "gate.py"), "--listen", str(port), "--to", upstream,
         "--delay", str(delay), "--stamp", stamp, "--lifetime", "15"])
    # CMD records its own start: bash's $EPOCHREALTIME, no extra process.
    record = 'echo "${EPOCHREALTIME}" > "$0"'
    g = subprocess.Popen(
        [gantry, "wait", "--timeout", "20s", url, "--", "bash", "-c", record, g_out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    poll = ('until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 1; done; '
            'exec bash -c \'echo "${EPOCHREALTIME}" > "$0"\' "$0"')
    p = subprocess.Popen(["bash", "-c", poll, p_out, str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    g_rc, p_rc = g.wait(timeout=30), p.wait(timeout=30)
    gate.kill()
    gate.wait()
    if g_rc != 0 or p_rc != 0:
        raise SystemExit(f"bench: {url}: gantry exited {g_rc}, poll loop {p_rc}")
    opened = read_time(stamp)
    return (read_time(g_out) - opened) * 1000.0, (read_time(p_out) - opened) * 1000.0


def cpu_seconds(argv, env=None):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, ru = os.wait4(proc.pid, 0)
    return ru.ru_utime + ru.ru_stime


def cpu_table(emit, gantry, idle):
    emit()
    emit(f"CPU time (user+system) while waiting {idle} s on a dependency that stays down")
    emit()
    emit("| what | CPU time | CPU per minute |")
    emit("|------|---------:|---------------:|")
    closed = free_port()
    rows = [
        ("gantry wait tcp:// (nothing listening)",
         [gantry, "wait", "--timeout", f"{idle}s", f"tcp://127.0.0.1:{closed}"]),
        ("gantry wait mysql:// (nothing listening)",
         [gantry, "wait", "--timeout", f"{idle}s", f"mysql://root@127.0.0.1:{closed}/x"]),
        ("gantry wait mongodb:// (nothing listening)",
         [gantry, "wait", "--timeout", f"{idle}s", f"mongodb://127.0.0.1:{closed}/"]),
        ("gantry wait mysql:// (wrong password)",
         [gantry, "wait", "--timeout", f"{idle}s", "mysql://root:wrong@127.0.0.1:3306/test"]),
        ("1 s poll loop (bash, /dev/tcp)",
         ["timeout", f"{idle}s", "bash", "-c",
          'until (exec 3<>"/dev/tcp/127.0.0.1/$0") 2>/dev/null; do sleep 1; done',
          str(closed)]),
    ]
    for label, argv in rows:
        secs = cpu_seconds(argv)
        emit(f"| {label} | {secs * 1000:.0f} ms | {secs * 1000 * 60 / idle:.0f} ms |")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    gantry, out_dir = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    quick = "--quick" in rest
    only = None
    if "--only" in rest and rest.index("--only") + 1 < len(rest):
        only = set(rest[rest.index("--only") + 1].split(","))
    cpu = "--no-cpu" not in rest
    trials = 3 if quick else 11
    idle = 10 if quick else 60
    os.makedirs(out_dir, exist_ok=True)
    random.seed(4)
    lines = []

    def emit(line=""):
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory() as tmp:
        procs, helper_ports = start_helpers(tmp)
        try:
            emit(f"readiness latency: dependency accepts connections -> gated command starts "
                 f"({trials} trials each, gate opens 1-2 s after the wait starts)")
            emit()
            emit(f"| backend  | gantry wait median | gantry max | 1 s poll median | poll max | ratio |")
            emit(f"|----------|-------------------:|-----------:|----------------:|---------:|------:|")
            raw = []
            for name, url_t, upstream in backends(helper_ports):
                if only is not None and name not in only:
                    continue
                gs, ps = [], []
                for _ in range(trials):
                    g, p = trial(gantry, url_t, upstream, tmp)
                    gs.append(g)
                    ps.append(p)
                    raw.append(f"{name} gantry_ms={g:.1f} poll_ms={p:.1f}")
                gm, pm = statistics.median(gs), statistics.median(ps)
                emit(f"| {name:<8} | {gm:>15.0f} ms | {max(gs):>7.0f} ms | {pm:>12.0f} ms "
                     f"| {max(ps):>5.0f} ms | {pm / gm:>4.1f}x |")
            with open(os.path.join(out_dir, "latency-raw.txt"), "w") as f:
                f.write("\n".join(raw) + "\n")

            if cpu:
                cpu_table(emit, gantry, idle)
        finally:
            for p in procs:
                p.kill()
                p.wait()

    with open(os.path.join(out_dir, "probes.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"\nwritten to {os.path.join(out_dir, 'probes.md')}")


if __name__ == "__main__":
    main()
