"""A small upstream for tests/lazy.rs and bench/proxy.sh: the server a lazy job starts.

usage: lazy_upstream.py MODE ADDR DELAY OUTDIR

ADDR is HOST:PORT or a unix socket path. The server sleeps DELAY seconds before it listens (a slow
spin-up), then appends its pid to OUTDIR/pids. Each connection is served by a thread:

  hello      send "pid=N\\n", then echo until the client closes
  echo-all   read until the client half-closes, then reply "pid=N n=BYTES sha=HEX" and close
  crash      send "pid=N\\n", close, and exit 1 (a crash after serving)
  reset      read a little, then close with a TCP reset
  proxyline  read the first line (a PROXY v1 header) and send it back
  blast      send BLAST_BYTES random bytes while reading to end of input; the sha256 of what was
             sent and of what was received go to OUTDIR/sent.N and OUTDIR/received.N
  endless    send data until the client goes away
  pong       answer each 1-byte read with 1 byte (connection-rate benchmark)

UP_IGNORE_TERM=1 makes the server ignore SIGTERM (so only SIGKILL stops it).
"""

import hashlib
import os
import signal
import socket
import struct
import sys
import threading
import time

mode, addr, delay, outdir = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if os.environ.get("UP_IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
pid = os.getpid()
time.sleep(delay)

if addr.startswith("/"):
    srv = socket.socket(socket.AF_UNIX)
    try:
        os.unlink(addr)
    except FileNotFoundError:
        pass
    srv.bind(addr)
else:
    host, port = addr.rsplit(":", 1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
srv.listen(1024)
with open(os.path.join(outdir, "pids"), "a") as f:
    f.write(f"{pid}\n")

counter = [0]
lock = threading.Lock()


def read_all(c):
    h = hashlib.sha256()
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            return n, h.hexdigest()
        n += len(b)
        h.update(b)


def handle(c):
    try:
        if mode == "hello":
            c.sendall(b"pid=%d\n" % pid)
            while True:
                b = c.recv(4096)
                if not b:
                    break
                c.sendall(b)
        elif mode == "echo-all":
            n, sha = read_all(c)
            c.sendall(b"pid=%d n=%d sha=%s" % (pid, n, sha.encode()))
        elif mode == "crash":
            c.sendall(b"pid=%d\n" % pid)
            c.close()
            os._exit(1)
        elif mode == "reset":
            c.recv(16)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "proxyline":
            line = b""
            while not line.endswith(b"\n"):
                b = c.recv(1)
                if not b:
                    break
                line += b
            c.sendall(line)
        elif mode == "blast":
            with lock:
                counter[0] += 1
                k = counter[0]
            total = int(os.environ.get("BLAST_BYTES", "1048576"))
            block = os.urandom(1 << 20)

            def send():
                h = hashlib.sha256()
                left = total
                i = 0
                while left > 0:
                    # Vary each block so a stuck or repeated buffer changes the checksum.
                    chunk = struct.pack("<Q", i) + block[8 : min(len(block), left)]
                    chunk = chunk[: min(len(chunk), left)]
                    c.sendall(chunk)
                    h.update(chunk)
                    left -= len(chunk)
                    i += 1
                with open(os.path.join(outdir, f"sent.{k}"), "w") as f:
                    f.write(h.hexdigest())
                c.shutdown(socket.SHUT_WR)

            t = threading.Thread(target=send)
            t.start()
            n, sha = read_all(c)
            with open(os.path.join(outdir, f"received.{k}"), "w") as f:
                f.write(f"{n} {sha}")
            t.join()
        elif mode == "endless":
            block = b"x" * (1 << 16)
            while True:
                c.sendall(block)
        elif mode == "pong":
            while True:
                b = c.recv(1)
                if not b:
                    break
                c.sendall(b)
    except OSError:
        pass
    finally:
        try:
            c.close()
        except OSError:
            pass


while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
