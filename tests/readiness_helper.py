#!/usr/bin/env python3
"""Jobs for tests/readiness.rs and bench/readiness.sh: each records what it does, with wall-clock
times in nanoseconds, one line per event, in the log file it is given.

  record NAME LOG               start, then wait; on SIGTERM log "stopping", linger 0.3 s, "stopped"
  http-after DELAY PORT LOG     start, answer 200 on /health from DELAY seconds on ("answering")
  flaky-http PORT LOG TRIGGER   answer 200, or 500 while the file TRIGGER exists (removed at start)
  notify LOG [DELAY]            send READY=1 to $NOTIFY_SOCKET from this process after DELAY
  notify-path FILE              write $NOTIFY_SOCKET into FILE and wait, never ready by itself
  notify-no-watchdog LOG        send READY=1, then never WATCHDOG=1
  fd N LOG [DELAY]              write a line to fd N after DELAY
"""
import os
import signal
import socket
import sys
import threading
import time


def log(path, text):
    with open(path, "a") as f:
        f.write(f"{text} {time.time_ns()}\n")


def on_term(name, path, linger=0.3):
    def handler(signum, frame):
        log(path, f"{name} stopping")
        time.sleep(linger)
        log(path, f"{name} stopped")
        os._exit(0)

    signal.signal(signal.SIGTERM, handler)


def serve(port, handler_status):
    import http.server  # here: slow to import, and most jobs do not serve
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = handler_status()
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    return server


def sd_notify(text):
    path = os.environ["NOTIFY_SOCKET"]
    if path.startswith("@"):
        path = "\0" + path[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(text.encode(), path)
    s.close()


def wait_forever():
    while True:
        time.sleep(3600)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        name, path = args
        on_term(name, path)
        log(path, f"{name} started")
        wait_forever()
    elif cmd == "http-after":
        delay, port, path = float(args[0]), int(args[1]), args[2]
        on_term("api", path)
        log(path, "api started")
        time.sleep(delay)
        server = serve(port, lambda: 200)
        log(path, "api answering")
        server.serve_forever()
    elif cmd == "flaky-http":
        port, path, trigger = int(args[0]), args[1], args[2]
        if os.path.exists(trigger):
            os.unlink(trigger)
        server = serve(port, lambda: 500 if os.path.exists(trigger) else 200)
        log(path, "flaky started")
        server.serve_forever()
    elif cmd == "notify":
        path = args[0]
        delay = float(args[1]) if len(args) > 1 else 0.0
        on_term("notify", path)
        time.sleep(delay)
        log(path, "notify ready")
        sd_notify("STATUS=warming up\nREADY=1")
        wait_forever()
    elif cmd == "notify-path":
        with open(args[0] + ".tmp", "w") as f:
            f.write(os.environ.get("NOTIFY_SOCKET", ""))
        os.rename(args[0] + ".tmp", args[0])
        wait_forever()
    elif cmd == "notify-no-watchdog":
        path = args[0]
        log(path, "watched started")
        sd_notify("READY=1")
        wait_forever()
    elif cmd == "fd":
        n, path = int(args[0]), args[1]
        delay = float(args[2]) if len(args) > 2 else 0.0
        on_term("fd", path)
        time.sleep(delay)
        log(path, "fd ready")
        os.write(n, b"ready\n")
        os.close(n)
        wait_forever()
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
