#!/usr/bin/env bash
# Readiness benchmark (docs/readiness.md): the delay from a job becoming ready (READY=1, its fd line,
# its health endpoint answering) to its dependent's process starting, p50/p99, next to a shell loop
# that checks every second (the common entrypoint idiom) in the same trials; and the idle cost of 20
# jobs with notify sockets.
#
#   bench/readiness.sh [--quick]
#
# Results go to bench/out/readiness.md and stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in dash curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
cargo build --release --quiet --bin gantry
exec python3 bench/readiness_bench.py "$PWD/target/release/gantry" "$PWD/bench/out" "$@"
