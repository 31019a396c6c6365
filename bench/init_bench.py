"""Side-by-side measurements of init wrappers: gantry (flags-only), tini, dumb-init, and no init.

Every figure comes from the same run on the same machine; ratios are against tini.
"""
import os, signal, statistics, subprocess, sys, tempfile, time

GANTRY = sys.argv[1]
QUICK = "--quick" in sys.argv
INITS = {
    "gantry": [GANTRY, "--"],
    "tini": ["tini", "-s", "--"],
    "dumb-init": ["dumb-init"],
    "none": [],
}
ENV = dict(os.environ, GANTRY_LOG="error")


def startup(prefix, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(prefix + ["/bin/true"], check=True, env=ENV)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def rss_kib(prefix):
    if not prefix:
        return None
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


def forwarding(prefix, n):
    d = tempfile.mkdtemp()
    fifo = os.path.join(d, "acks")
    os.mkfifo(fifo)
    p = subprocess.Popen(prefix + [sys.executable, "-c", CHILD, fifo], env=ENV)
    acks = open(fifo)
    assert acks.readline().strip() == "ready"
    lat = []
    for _ in range(n):
        t = time.monotonic_ns()
        os.kill(p.pid, signal.SIGUSR1)
        got = int(acks.readline())
        lat.append((got - t) / 1e3)
        time.sleep(0.002)
    # SIGTERM, not SIGKILL: a killed init would leave the child (and this pipe) behind.
    p.terminate()
    p.wait()
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]


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


def reap_storm(prefix):
    if not prefix:
        return None
    t = time.perf_counter()
    subprocess.run(["unshare", "--pid", "--fork", "--mount-proc"] + prefix + [sys.executable, "-c", STORM],
                   check=True, env=ENV, timeout=120)
    return (time.perf_counter() - t) * 1e3


def idle(prefix, secs):
    if not prefix:
        return None, None
    p = subprocess.Popen(prefix + ["sleep", str(secs + 5)], env=ENV)
    time.sleep(0.5)

    def sample():
        with open(f"/proc/{p.pid}/status") as f:
            s = dict(l.split(":", 1) for l in f if ":" in l)
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        switches = int(s["voluntary_ctxt_switches"]) + int(s["nonvoluntary_ctxt_switches"])
        return switches, int(fields[11]) + int(fields[12])

    w0, c0 = sample()
    time.sleep(secs)
    w1, c1 = sample()
    p.terminate()
    p.wait()
    return w1 - w0, (c1 - c0) * 1000 // os.sysconf("SC_CLK_TCK")


def fmt(v, unit=""):
    return "n/a" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")


def ratio(v, base):
    return "" if v is None or not base else f" ({v / base:.2f}x)"


n_start, n_sig, idle_s = (50, 100, 3) if QUICK else (200, 500, 10)
rows = {}
for name, prefix in INITS.items():
    rows[name] = {
        "start": startup(prefix, n_start),
        "rss": rss_kib(prefix),
        "fwd": forwarding(prefix, n_sig),
        "storm": reap_storm(prefix),
        "idle": idle(prefix, idle_s),
    }
t = rows["tini"]
print(f"# init benchmark ({'quick' if QUICK else 'full'}; ratios vs tini)\n")
print(f"| | start-up `-- /bin/true` (median ms) | RSS / PSS while child sleeps (KiB) | signal forwarding p50 / p99 (µs) | reap 5000 orphans as PID 1 (ms) | wakeups / CPU ms while idle {idle_s} s |")
print("|---|---|---|---|---|---|")
for name, r in rows.items():
    p50, p99 = r["fwd"]
    w, c = r["idle"]
    rss, pss = r["rss"] or (None, None)
    mem = "n/a" if rss is None else f"{rss} / {pss}{ratio(rss, t['rss'][0])}"
    print(f"| {name} | {fmt(r['start'])}{ratio(r['start'], t['start'])} | {mem} | "
          f"{p50:.0f} / {p99:.0f}{ratio(p50, t['fwd'][0])} | {fmt(r['storm'])}{ratio(r['storm'], t['storm'])} | {fmt(w)} / {fmt(c)} |")
