"""Proxy benchmark for gantry's listeners (issue 12), run by bench/proxy.sh.

usage: proxy_bench.py GANTRY OUTDIR [--quick]

Side by side in one run, all on loopback, each reported as a ratio to a direct connection:
  - throughput with 1 and with 8 streams (upstream -> client), through gantry, socat and haproxy;
  - connection rate (connect, 1-byte request, 1-byte reply, close) with 8 concurrent clients;
then gantry alone:
  - cold start: connect -> first byte through a lazy job, vs starting the same upstream directly;
  - cool-down accuracy: when the upstream is gone minus coolDownTimeout (p50, p99);
  - idle wakeups: context switches of gantry over 10 s with 100 listeners open and nothing happening;
  - 1 GiB each way through the proxy at once, checksummed on both ends.
The upstream is tests/lazy_upstream.py (forked per stream for throughput).
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GANTRY, OUT = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv
ONLY_THROUGHPUT = "--throughput-only" in sys.argv
ONLY_COLD = "--cold-only" in sys.argv


class Done(Exception):
    """Ends a partial run (--throughput-only) early."""
SECS = 2.0 if QUICK else 5.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = os.path.join(ROOT, "tests", "lazy_upstream.py")
CHILDREN = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def spawn(args, **kw):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    CHILDREN.append(p)
    return p


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"port {port} never answered")


# --- a fast upstream for throughput: one forked process per connection ---------------------------

SOURCE = r"""
import os, socket, sys, signal
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
buf = memoryview(bytearray(1 << 20))
while True:
    c, _ = s.accept()
    if os.fork() == 0:
        s.close()
        mode = c.recv(1)
        try:
            if mode == b"s":          # source: stream until the client goes
                while True:
                    c.sendall(buf)
            else:                     # pong: 1 byte back per byte
                while True:
                    b = c.recv(1)
                    if not b:
                        break
                    c.sendall(b)
        except OSError:
            pass
        os._exit(0)
    c.close()
"""


def stream_client(port, secs, result, idx, start_evt):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"s")
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    start_evt.wait()
    n = 0
    end = time.time() + secs
    while time.time() < end:
        k = s.recv_into(mv)
        if k == 0:
            break
        n += k
    result[idx] = n
    s.close()


def throughput(port, streams, secs):
    """Bytes/s summed over `streams` connections, each in its own process (threads would share the GIL)."""
    r, w = os.pipe()
    pids = []
    go_r, go_w = os.pipe()
    for i in range(streams):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"s")
            buf = bytearray(1 << 20)
            mv = memoryview(buf)
            s.recv_into(mv)  # connected through
            os.read(go_r, 1)
            n = 0
            end = time.time() + secs
            while time.time() < end:
                k = s.recv_into(mv)
                if k == 0:
                    break
                n += k
            os.write(w, f"{n}\n".encode())
            os._exit(0)
        pids.append(pid)
    time.sleep(0.3)
    os.write(go_w, b"g" * streams)
    total = 0
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(w)
    data = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        data += b
    total = sum(int(x) for x in data.split())
    return total / secs


def conn_rate(port, clients, secs):
    r, w = os.pipe()
    pids = []
    for _ in range(clients):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            n = 0
            end = time.time() + secs
            while time.time() < end:
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"p")  # mode byte: pong
                s.sendall(b"x")
                if s.recv(1) != b"x":
                    os._exit(1)
                s.close()
                n += 1
            os.write(w, f"{n}\n".encode())
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(w)
    data = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        data += b
    return sum(int(x) for x in data.split()) / secs


def gantry_conf(tmp, name, body):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "a.hcl"), "w") as f:
        f.write(body)
    return d


def start_gantry(conf, log, env=None):
    p = spawn([GANTRY, "up", "-c", conf], stderr=open(log, "w"), env=env)
    end = time.time() + 10
    while time.time() < end:
        if "listening on" in open(log).read():
            return p
        time.sleep(0.01)
    raise SystemExit("gantry did not listen: " + open(log).read())


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    tmp = tempfile.mkdtemp(prefix="gantry-proxy-bench-")
    results = {}
    try:
        up_port = free_port()
        spawn([sys.executable, "-c", SOURCE, str(up_port)])
        wait_port(up_port)

        if not ONLY_COLD:
            # gantry: a plain forwarder in front of the running source (the same path as a lazy job that runs).
            g_port = free_port()
            conf = gantry_conf(tmp, "fwd", f'job "sleep" {{\n command = "sleep"\n args = ["100000"]\n listen "127.0.0.1:{g_port}" {{ forward = "127.0.0.1:{up_port}" }}\n}}\n')
            g = start_gantry(conf, os.path.join(tmp, "fwd.log"))
            # The same forwarder with the userspace copy instead of splice(2), for the comparison.
            gc_port = free_port()
            conf = gantry_conf(tmp, "fwd-copy", f'job "sleep" {{\n command = "sleep"\n args = ["100000"]\n listen "127.0.0.1:{gc_port}" {{ forward = "127.0.0.1:{up_port}" }}\n}}\n')
            gc = start_gantry(conf, os.path.join(tmp, "fwd-copy.log"), env=dict(os.environ, GANTRY_PROXY_COPY="userspace"))
            s_port = free_port()
            spawn(["socat", f"TCP-LISTEN:{s_port},fork,reuseaddr,bind=127.0.0.1", f"TCP:127.0.0.1:{up_port}"])
            h_port = free_port()
            hcfg = os.path.join(tmp, "haproxy.cfg")
            with open(hcfg, "w") as f:
                f.write(
                    "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
                    f"listen p\n  bind 127.0.0.1:{h_port}\n  server u 127.0.0.1:{up_port}\n"
                )
            spawn(["haproxy", "-f", hcfg, "-db"])
            for p in (g_port, gc_port, s_port, h_port):
                wait_port(p)

            targets = [("direct", up_port), ("gantry", g_port), ("gantry-copy", gc_port), ("socat", s_port), ("haproxy", h_port)]
            for streams in (1, 8):
                row = {}
                for name, port in targets:
                    row[name] = throughput(port, streams, SECS)
                results[f"throughput_{streams}"] = row
            row = {}
            for name, port in targets:
                row[name] = conn_rate(port, 8, SECS)
            results["conn_rate_8"] = row
            stop(g)
            stop(gc)
            if ONLY_THROUGHPUT:
                raise Done

        # Cold start: a lazy job whose upstream answers at once, vs starting that upstream directly.
        trials = 5 if QUICK else 15
        lz_port, lz_up = free_port(), free_port()
        lzdir = os.path.join(tmp, "lz")
        os.makedirs(lzdir)
        conf = gantry_conf(
            tmp,
            "lazy",
            f'job "up" {{\n command = "{sys.executable}"\n args = ["{UPSTREAM}", "hello", "127.0.0.1:{lz_up}", "0", "{lzdir}"]\n'
            f' lazy {{\n  spinUpTimeout = "10s"\n  coolDownTimeout = "500ms"\n }}\n listen "127.0.0.1:{lz_port}" {{ forward = "127.0.0.1:{lz_up}" }}\n}}\n',
        )
        g = start_gantry(conf, os.path.join(tmp, "lazy.log"))
        cold, cool = [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            s = socket.create_connection(("127.0.0.1", lz_port))
            s.recv(1)
            cold.append(time.perf_counter() - t0)
            pid = int(open(os.path.join(lzdir, "pids")).read().split()[-1])
            s.close()
            t1 = time.perf_counter()
            while True:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().split(")", 1)[1][:3] == " Z ":
                            break
                except OSError:  # reaped between two looks
                    break
                time.sleep(0.0005)
            cool.append(time.perf_counter() - t1 - 0.5)
            time.sleep(0.05)
        stop(g)
        direct = []
        for _ in range(trials):
            port = free_port()
            t0 = time.perf_counter()
            p = subprocess.Popen([sys.executable, UPSTREAM, "hello", f"127.0.0.1:{port}", "0", lzdir])
            while True:
                try:
                    s = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    time.sleep(0.002)
            s.recv(1)
            direct.append(time.perf_counter() - t0)
            s.close()
            p.kill()
            p.wait()
        results["cold_start_ms"] = {
            "gantry_p50": statistics.median(cold) * 1e3,
            "direct_p50": statistics.median(direct) * 1e3,
        }
        results["cool_down_error_ms"] = {"p50": pct(cool, 50) * 1e3, "p99": pct(cool, 99) * 1e3, "max": max(cool) * 1e3}
        if ONLY_COLD:
            raise Done

        # Idle wakeups with 100 listeners.
        # 100 distinct ports: every socket stays bound until all are picked (one at a time, the
        # kernel may hand the same free port out twice).
        held = []
        for _ in range(100):
            h = socket.socket()
            h.bind(("127.0.0.1", 0))
            held.append(h)
        ports = [h.getsockname()[1] for h in held]
        for h in held:
            h.close()
        body = ""
        for i, port in enumerate(ports):
            body += (
                f'job "j{i}" {{\n command = "true"\n lazy {{}}\n listen "127.0.0.1:{port}" {{ forward = "127.0.0.1:1" }}\n}}\n'
            )
        conf = gantry_conf(tmp, "idle", body)
        g = start_gantry(conf, os.path.join(tmp, "idle.log"))
        time.sleep(1)

        def switches():
            n = 0
            for t in os.listdir(f"/proc/{g.pid}/task"):
                for line in open(f"/proc/{g.pid}/task/{t}/status"):
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
            return n

        a = switches()
        time.sleep(10)
        results["idle_wakeups_10s_100_listeners"] = switches() - a
        stop(g)

        # 1 GiB each way through a lazy job, checksummed on both ends.
        total = (256 if QUICK else 1024) << 20
        b_port, b_up = free_port(), free_port()
        bdir = os.path.join(tmp, "blast")
        os.makedirs(bdir)
        conf = gantry_conf(
            tmp,
            "blast",
            f'job "up" {{\n command = "{sys.executable}"\n args = ["{UPSTREAM}", "blast", "127.0.0.1:{b_up}", "0", "{bdir}"]\n env = ["BLAST_BYTES={total}"]\n'
            f' lazy {{}}\n listen "127.0.0.1:{b_port}" {{ forward = "127.0.0.1:{b_up}" }}\n}}\n',
        )
        g = start_gantry(conf, os.path.join(tmp, "blast.log"))
        s = socket.create_connection(("127.0.0.1", b_port))
        got = {}

        def receive():
            h = hashlib.sha256()
            n = 0
            buf = bytearray(1 << 20)
            mv = memoryview(buf)
            while True:
                k = s.recv_into(mv)
                if k == 0:
                    break
                h.update(mv[:k])
                n += k
            got["n"], got["sha"] = n, h.hexdigest()

        t = threading.Thread(target=receive)
        t.start()
        block = bytearray(os.urandom(1 << 20))
        h = hashlib.sha256()
        t0 = time.time()
        for i in range(total >> 20):
            block[:8] = i.to_bytes(8, "little")
            s.sendall(block)
            h.update(block)
        s.shutdown(socket.SHUT_WR)
        t.join()
        secs = time.time() - t0
        end = time.time() + 30
        while time.time() < end and not os.path.exists(os.path.join(bdir, "received.1")):
            time.sleep(0.05)
        time.sleep(0.2)
        ok = (
            got["n"] == total
            and open(os.path.join(bdir, "sent.1")).read() == got["sha"]
            and open(os.path.join(bdir, "received.1")).read() == f"{total} {h.hexdigest()}"
        )
        results["integrity"] = {"bytes_each_way": total, "ok": ok, "seconds": secs}
        stop(g)
    except Done:
        pass
    finally:
        for p in CHILDREN:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "proxy.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"proxy benchmark ({'quick, ' if QUICK else ''}{SECS:.0f} s per measurement, loopback, {os.cpu_count()} cores)")
    for key, label, unit, scale in (
        ("throughput_1", "throughput, 1 stream", "MiB/s", 1 / (1 << 20)),
        ("throughput_8", "throughput, 8 streams", "MiB/s", 1 / (1 << 20)),
        ("conn_rate_8", "connections/s, 8 clients", "conn/s", 1),
    ):
        if key not in results:
            continue
        row = results[key]
        d = row["direct"]
        cells = "  ".join(f"{n} {row[n] * scale:8.0f} {unit} ({row[n] / d:.2f})" for n in row)
        print(f"  {label:28s} {cells}")
    if "cold_start_ms" in results:
        c = results["cold_start_ms"]
        print(f"  cold start (connect -> first byte): gantry {c['gantry_p50']:.1f} ms, upstream started directly {c['direct_p50']:.1f} ms (p50); ratio {c['gantry_p50'] / c['direct_p50']:.2f}")
    if "cool_down_error_ms" in results:
        c = results["cool_down_error_ms"]
        print(f"  cool-down: stop time - coolDownTimeout: p50 {c['p50']:.1f} ms, p99 {c['p99']:.1f} ms, max {c['max']:.1f} ms")
    if "idle_wakeups_10s_100_listeners" in results:
        print(f"  idle wakeups over 10 s with 100 listeners: {results['idle_wakeups_10s_100_listeners']}")
    if "integrity" in results:
        i = results["integrity"]
        print(f"  {i['bytes_each_way'] >> 20} MiB each way at once, checksummed: {'ok' if i['ok'] else 'MISMATCH'} ({i['seconds']:.1f} s, {2 * i['bytes_each_way'] / i['seconds'] / (1 << 20):.0f} MiB/s both ways)")

if __name__ == "__main__":
    main()
