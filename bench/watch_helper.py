#!/usr/bin/env python3
"""Measurement helper for bench/watch.sh (see there). Two subcommands:

latency GANTRY N [sidecar flags...]
    Starts `GANTRY sidecar --pidfile <own pid>` on a temp directory, then N times: rewrites the watched file
    (temp file + rename, as editors and renderers do), waits for SIGHUP with sigtimedwait and records the
    delay from just before the write to the signal's arrival (CLOCK_MONOTONIC on both ends, one process).
    A random pause between iterations decorrelates changes from a poll interval's phase.

cost GANTRY FILES SECONDS [sidecar flags...]
    Starts the sidecar watching FILES files, lets it settle, then samples every thread's context switches
    (/proc/PID/task/*/status) and CPU time (/proc/PID/task/*/schedstat, ns) over SECONDS seconds.

Both print one JSON object on stdout.
"""
import json, os, random, signal, subprocess, sys, tempfile, time


def start_sidecar(gantry, watch_dir, extra, log):
    pidfile = os.path.join(os.path.dirname(watch_dir), "bench.pid")
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    proc = subprocess.Popen(
        [gantry, "sidecar", "--config-dir", watch_dir, "--pidfile", pidfile, *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    deadline = time.monotonic() + 60
    while "watching" not in open(log).read():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit(f"sidecar did not start; see {log}")
        time.sleep(0.02)
    return proc


def pct(sorted_ms, p):
    i = min(len(sorted_ms) - 1, max(0, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[i]


def latency(gantry, n, extra):
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP])
    base = tempfile.mkdtemp(prefix="gantry-bench-")
    d = os.path.join(base, "conf")
    os.mkdir(d)
    target = os.path.join(d, "app.conf")
    with open(target, "w") as f:
        f.write("v0\n")
    proc = start_sidecar(gantry, d, extra, os.path.join(base, "sidecar.log"))
    poll = "--poll" in extra
    samples, missed = [], 0
    try:
        time.sleep(0.5)
        for i in range(1, n + 1):
            time.sleep(random.uniform(0, 1.0) if poll else random.uniform(0.2, 0.4))
            tmp = os.path.join(base, "app.conf.tmp")  # same filesystem, outside the watched directory
            t0 = time.monotonic_ns()
            with open(tmp, "w") as f:
                f.write(f"v{i}\n")
            os.rename(tmp, target)
            got = signal.sigtimedwait([signal.SIGHUP], 15)
            t1 = time.monotonic_ns()
            if got is None:
                missed += 1
            else:
                samples.append((t1 - t0) / 1e6)
        # Nothing more may arrive: exactly one signal per change.
        extra_signals = 0
        while signal.sigtimedwait([signal.SIGHUP], 1.5) is not None:
            extra_signals += 1
    finally:
        proc.terminate()
        proc.wait()
    s = sorted(samples)
    print(json.dumps({
        "n": n, "received": len(samples), "missed": missed, "extra_signals": extra_signals,
        "p50_ms": round(pct(s, 50), 1), "p99_ms": round(pct(s, 99), 1),
        "min_ms": round(s[0], 1), "max_ms": round(s[-1], 1),
    }))


def sample(pid):
    switches, cpu_ns, threads = 0, 0, 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = open(f"/proc/{pid}/task/{tid}/status").read()
            sched = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
        except FileNotFoundError:
            continue
        threads += 1
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
        cpu_ns += int(sched[0])
    return switches, cpu_ns, threads


def cost(gantry, files, seconds, extra):
    base = tempfile.mkdtemp(prefix="gantry-bench-")
    d = os.path.join(base, "conf")
    for i in range(files):
        sub = os.path.join(d, f"d{i // 1000}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i}.conf"), "w") as f:
            f.write(f"key{i} = {'x' * 200}\n")
    # Files older than the trust age take the stat fast path; let them age like a real config would.
    time.sleep(2.5)
    proc = start_sidecar(gantry, d, extra, os.path.join(base, "sidecar.log"))
    try:
        time.sleep(2.0)
        s0, c0, threads = sample(proc.pid)
        time.sleep(seconds)
        s1, c1, _ = sample(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    print(json.dumps({
        "files": files, "seconds": seconds, "threads": threads,
        "wakeups": s1 - s0, "cpu_ms": round((c1 - c0) / 1e6, 2),
        "cpu_percent": round((c1 - c0) / 1e7 / seconds, 3),
    }))


if __name__ == "__main__":
    cmd, gantry = sys.argv[1], sys.argv[2]
    if cmd == "latency":
        latency(gantry, int(sys.argv[3]), sys.argv[4:])
    elif cmd == "cost":
        cost(gantry, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(f"unknown subcommand {cmd}")
