#!/usr/bin/env bash
# Benchmarks `gantry up --api`: status-request latency p50/p99 with 100 concurrent clients on the unix
# socket, closed loop and at fixed rates, next to a plain hyper server on the same client
# (bench/api_load.rs, bench/hyper_hello.rs) and the same request over TCP (same run), status p99 with
# wrk over TCP next to haproxy answering a fixed body (same run), log-follow throughput (lines/s delivered vs
# written, and whether a follower keeps up with a job writing 100,000 lines/s), and the RSS of `up`
# with 20 jobs with the API on vs off.
# Usage: bash bench/api.sh [--quick]    (writes bench/out/api.md and prints it)
set -euo pipefail
cd "$(dirname "$0")/.."
# wrk (latency percentiles over TCP) and haproxy (the reference server) are Debian packages; the
# wrk section is skipped without them. Install: apt-get install -y curl wrk haproxy
for tool in curl wrk haproxy; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl wrk haproxy; break; }
done
cargo build --release --quiet --bin gantry --example api_load --example hyper_hello
mkdir -p bench/out
python3 bench/api_bench.py "$PWD/target/release/gantry" "$@" | tee bench/out/api.md
