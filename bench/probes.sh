#!/usr/bin/env bash
# Readiness-latency and idle-CPU benchmark for gantry's probes (issue 4).
#
#   bench/probes.sh [--quick]
#
# Builds the release binary, makes sure the servers answer (.ci/services.sh), then runs
# bench/probes_bench.py: per backend, the time from a dependency starting to accept connections to a
# command gated by `gantry wait URL -- CMD` starting, next to a fixed 1 s poll loop (mittnite's
# behaviour) in the same run, as medians and a ratio; and the CPU time used while waiting 60 s
# (--quick: 10 s, 3 trials) on a dependency that is down. Results go to bench/out/ and stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/services.sh >&2
cargo build --release --quiet --bin gantry
mkdir -p bench/out
exec python3 bench/probes_bench.py "$PWD/target/release/gantry" "$PWD/bench/out" "$@"
