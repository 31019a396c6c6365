#!/usr/bin/env python3
"""A dependency that "comes up" at a known instant.

Waits --delay seconds, then starts listening on 127.0.0.1:--listen and forwards every connection to a
real server at --to HOST:PORT. The moment listen() returned is written to --stamp (Unix seconds,
microseconds), so a benchmark can measure how long after a dependency starts accepting connections
a gated command starts. Exits after --lifetime seconds.
"""
import argparse
import asyncio
import time


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def handle(client_r, client_w, host, port):
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--lifetime", type=float, default=20.0)
    a = ap.parse_args()
    host, port = a.to.rsplit(":", 1)
    await asyncio.sleep(a.delay)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, host, int(port)), "127.0.0.1", a.listen, reuse_address=True
    )
    stamp = time.time()
    with open(a.stamp, "w") as f:
        f.write(f"{stamp:.6f}\n")
    async with server:
        await asyncio.sleep(a.lifetime)


asyncio.run(main())
