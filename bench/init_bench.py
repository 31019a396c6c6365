"""Side-by-side measurements of init wrappers: gantry's flags-only mode (the static musl build and the
glibc build), tini, tini-static, dumb-init, and no init.

Every figure comes from the same run on the same machine, and the time-sensitive ones are taken
interleaved (one sample of each wrapper in turn) so that drift in the machine's speed during the
run affects all of them alike. Ratios are against tini.

Usage: python3 bench/init_bench.py GANTRY_STATIC GANTRY_GLIBC|none [--quick] [--also LABEL=BINARY]...

`--also` adds another gantry binary (say, the static build of an older commit, to compare a change
against its base in the same run); `none` leaves the glibc build out.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from pagecache import evict

STATIC, GLIBC = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv
ALSO = [sys.argv[i + 1].split("=", 1) for i, a in enumerate(sys.argv) if a == "--also"]
INITS = {
    "gantry (static musl)": [STATIC, "--"],
    **({} if GLIBC == "none" else {"gantry (glibc)": [GLIBC, "--"]}),
    **{f"gantry {label}": [path, "--"] for label, path in ALSO},
    "tini": ["tini", "-s", "--"],
    "tini-static": ["tini-static", "-s", "--"],
    "dumb-init": ["dumb-init"],
    "none": [],
}
ENV = dict(os.environ, GANTRY_LOG="error")


def startup(n):
    """Median wall time of `INIT /bin/true`, samples interleaved across the wrappers."""
    times = {name: [] for name in INITS}
    items = list(INITS.items())
    for i in range(n):
        for name, prefix in items[i % len(items):] + items[:i % len(items)]:
            t = time.perf_counter()
            subprocess.run(prefix + ["/bin/true"], check=True, env=ENV)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) * 1e3 for name, v in times.items()}


def rss_kib(prefix):
    if not prefix:
        return None
    evict(prefix[0])
    p = subprocess.Popen(prefix + ["sleep", "30"], env=ENV)
    time.sleep(0.5)
    with open(f"/proc/{p.pid}/smaps_rollup") as f:
        fields = {l.split(":")[0]: int(l.split()[1]) for l in f if l.endswith("kB\n")}
    p.terminate()
    p.wait()
    # RSS, and PSS (shared pages such as libc's divided among the processes that map them).
    return fields["Rss"], fields["Pss"]


CHILD = r"""
import os, signal, sys, time
fifo = open(sys.argv[1], "w", buffering=1)
def on(sig, frame):
    fifo.write("%d\n" % time.monotonic_ns())
signal.signal(signal.SIGUSR1, on)
fifo.write("ready\n")
while True:
    signal.pause()
"""


def forwarding(n):
    """p50/p99 latency from kill(init, SIGUSR1) to the child's handler, signals interleaved."""
    d = tempfile.mkdtemp()
    runs = {}
    for i, (name, prefix) in enumerate(INITS.items()):
        fifo = os.path.join(d, f"acks{i}")
        os.mkfifo(fifo)
        p = subprocess.Popen(prefix + [sys.executable, "-c", CHILD, fifo], env=ENV)
        acks = open(fifo)
        assert acks.readline().strip() == "ready"
        runs[name] = (p, acks, [])
    order = list(runs.values())
    for i in range(n):
        # Each round starts with the next wrapper, so that none always follows the same one.
        for p, acks, lat in order[i % len(order):] + order[:i % len(order)]:
            t = time.monotonic_ns()
            os.kill(p.pid, signal.SIGUSR1)
            got = int(acks.readline())
            lat.append((got - t) / 1e3)
            time.sleep(0.002)
    out = {}
    for name, (p, acks, lat) in runs.items():
        # SIGTERM, not SIGKILL: a killed init would leave the child (and this pipe) behind.
        p.terminate()
        p.wait()
        lat.sort()
        out[name] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1])
    return out


STORM = r"""
import os, sys, time
if os.fork() == 0:
    for i in range(5000):
        if os.fork() == 0:
            os._exit(0)
    os._exit(0)
os.wait()
me = os.getpid()
while any(p.isdigit() and int(p) not in (1, me) for p in os.listdir('/proc')):
    time.sleep(0.001)
"""


def reap_storm(prefix, runs):
    """Median wall time of a child that leaves 5000 orphans, the wrapper being PID 1."""
    if not prefix:
        return None
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(["unshare", "--pid", "--fork", "--mount-proc"] + prefix + [sys.executable, "-c", STORM],
                       check=True, env=ENV, timeout=120)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def idle(secs):
    """Context switches and CPU time of each wrapper over the same `secs` while its child sleeps."""
    procs = {name: subprocess.Popen(prefix + ["sleep", str(secs + 5)], env=ENV)
             for name, prefix in INITS.items() if prefix}
    time.sleep(0.5)

    def sample(p):
        with open(f"/proc/{p.pid}/status") as f:
            s = dict(l.split(":", 1) for l in f if ":" in l)
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        switches = int(s["voluntary_ctxt_switches"]) + int(s["nonvoluntary_ctxt_switches"])
        return switches, int(fields[11]) + int(fields[12])

    before = {name: sample(p) for name, p in procs.items()}
    time.sleep(secs)
    after = {name: sample(p) for name, p in procs.items()}
    for p in procs.values():
        p.terminate()
        p.wait()
    tick = 1000 // os.sysconf("SC_CLK_TCK")
    return {name: (after[name][0] - before[name][0], (after[name][1] - before[name][1]) * tick)
            for name in procs}


def fmt(v):
    return "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else f"{v}")


def ratio(v, base):
    return "" if v is None or not base else f" ({v / base:.2f}x)"


n_start, n_sig, idle_s, n_storm = (50, 100, 3, 1) if QUICK else (300, 1000, 10, 3)
start = startup(n_start)
fwd = forwarding(n_sig)
quiet = idle(idle_s)
rows = {name: {"rss": rss_kib(prefix), "storm": reap_storm(prefix, n_storm),
               "idle": quiet.get(name, (None, None))}
        for name, prefix in INITS.items()}
t = rows["tini"]
print(f"# init benchmark ({'quick' if QUICK else 'full'}: {n_start} starts and {n_sig} signals each, "
      f"interleaved; median of {n_storm} orphan storms; ratios vs tini)\n")
print(f"| | start-up `-- /bin/true` (median ms) | RSS / PSS while child sleeps (KiB) | signal forwarding p50 / p99 (µs) | reap 5000 orphans as PID 1 (ms) | wakeups / CPU ms while idle {idle_s} s |")
print("|---|---|---|---|---|---|")
for name, r in rows.items():
    p50, p99 = fwd[name]
    w, c = r["idle"]
    rss, pss = r["rss"] or (None, None)
    mem = "n/a" if rss is None else f"{rss} / {pss}{ratio(rss, t['rss'][0])}"
    print(f"| {name} | {fmt(start[name])}{ratio(start[name], start['tini'])} | {mem} | "
          f"{p50:.0f} / {p99:.0f}{ratio(p50, fwd['tini'][0])} | {fmt(r['storm'])}{ratio(r['storm'], t['storm'])} | {fmt(w)} / {fmt(c)} |")
