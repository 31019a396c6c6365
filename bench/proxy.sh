#!/usr/bin/env bash
# Proxy benchmark for gantry's listeners (issue 12).
#
#   bench/proxy.sh [--quick]
#
# Builds the release binary, installs socat and haproxy if they are missing (apt-get), then runs
# bench/proxy_bench.py: throughput with 1 and 8 streams and the connection rate through gantry's
# proxy, socat and haproxy, each as a ratio to a direct connection, all in one run on loopback; then
# gantry's cold-start latency next to starting the upstream directly, cool-down accuracy (p50/p99),
# idle wakeups with 100 listeners, and 1 GiB each way checksummed (--quick: 2 s per measurement,
# 256 MiB). Results go to bench/out/proxy.json and stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v socat >/dev/null || ! command -v haproxy >/dev/null; then
    apt-get install -y socat haproxy >&2
fi
cargo build --release --quiet --bin gantry
mkdir -p bench/out
exec timeout 900 python3 bench/proxy_bench.py "$PWD/target/release/gantry" "$PWD/bench/out" "$@"
