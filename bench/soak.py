"""Soak test: `gantry up` as PID 1 of a new PID namespace under everything at once, for a set time.

- a restart-forever job (restartDelay 10ms) killed with SIGKILL 1,000 times;
- a job that forks orphans continuously (double fork: they are re-parented to gantry, PID 1);
- a job whose watch file is rewritten every 100 ms (each change a validated SIGHUP reload), and a
  second job whose `restart = true` watch file changes every second;
- a job writing timestamped output continuously (gantry copies every line).

gantry's RSS, open descriptors, threads and the zombies among its children are sampled once the
workload runs (start) and at the end; all four should be flat.

Usage: python3 bench/soak.py GANTRY [SECONDS]   (bench/soak.sh builds and runs it)
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

GANTRY = sys.argv[1]
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
KILLS = 1000


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rfind(")") + 2:].split()
    except OSError:
        return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def sample(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    zombies = sum(1 for c in children(pid) if (stat(c) or ["?"])[0] == "Z")
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
        "zombies": zombies,
        "children": len(children(pid)),
    }


def main():
    d = tempfile.mkdtemp(prefix="gantry-soak-")
    conf = os.path.join(d, "conf")
    os.mkdir(conf)
    watched = os.path.join(d, "app.conf")
    restart_file = os.path.join(d, "restart.conf")
    hups = os.path.join(d, "hups")
    for p in (watched, restart_file):
        with open(p, "w") as f:
            f.write("ok 0\n")
    with open(os.path.join(conf, "soak.hcl"), "w") as f:
        f.write(f'''
job "crasher" {{
  command = "sleep"
  args = ["3600"]
  maxAttempts = -1
  restartDelay = "10ms"
  maxRestartDelay = "10ms"
}}
job "orphans" {{
  command = "sh"
  args = ["-c", "while :; do (sleep 0.2 &); sleep 0.01; done"]
}}
job "reloaded" {{
  command = "sh"
  args = ["-c", "trap 'echo hup >> {hups}' HUP; while :; do sleep 1 & wait $!; done"]
  watch "{watched}" {{
    signal = "HUP"
    debounce = "20ms"
    validate {{
      command = "grep"
      args = ["-q", "^ok", "{watched}"]
    }}
  }}
}}
job "restarted" {{
  command = "sleep"
  args = ["7200"]
  watch "{restart_file}" {{
    restart = true
    debounce = "20ms"
  }}
}}
job "talker" {{
  command = "sh"
  args = ["-c", "while :; do echo soak-line; sleep 0.001; done"]
  enableTimestamps = true
}}
''')
    env = dict(os.environ, GANTRY_LOG="warn")
    outer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", GANTRY, "up", "-c", conf],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "gantry.log"), "w"), env=env)
    try:
        deadline = time.time() + 10
        while not children(outer.pid):
            if time.time() > deadline:
                sys.exit("gantry did not start")
            time.sleep(0.01)
        gantry = children(outer.pid)[0]

        def crasher_pid():
            for c in children(gantry):
                if cmdline(c).startswith("sleep 3600"):
                    return c
            return None

        time.sleep(3)
        start = sample(gantry)
        began = time.time()
        kills, last_write, last_restart, n = 0, 0.0, 0.0, 0
        next_kill = began
        while time.time() - began < SECONDS:
            now = time.time()
            if kills < KILLS and now >= next_kill:
                pid = crasher_pid()
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
                # Spread the kills over the first 80% of the run.
                next_kill = now + SECONDS * 0.8 / KILLS
            if now - last_write >= 0.1:
                n += 1
                with open(watched + ".tmp", "w") as f:
                    f.write(f"ok {n}\n")
                os.rename(watched + ".tmp", watched)
                last_write = now
            if now - last_restart >= 1.0:
                with open(restart_file, "w") as f:
                    f.write(f"ok {n}\n")
                last_restart = now
            time.sleep(0.005)
        end = sample(gantry)
        with open(hups) as f:
            reloads = sum(1 for _ in f)
        os.kill(gantry, signal.SIGTERM)
        code = outer.wait(timeout=60)
    finally:
        if outer.poll() is None:
            outer.kill()
    print(f"| soak, {SECONDS:.0f} s as PID 1 | RSS KiB | fds | threads | zombies | children |")
    print("|---|---|---|---|---|---|")
    for label, s in (("after 3 s of workload", start), ("at the end", end)):
        print(f"| {label} | {s['rss_kib']} | {s['fds']} | {s['threads']} | {s['zombies']} | {s['children']} |")
    print()
    print(f"SIGKILLs of the restart-forever job: {kills}; watch changes: {n} "
          f"(HUP reloads received: {reloads}); gantry exited {code} after SIGTERM")


main()
