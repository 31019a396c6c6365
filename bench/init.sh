#!/usr/bin/env bash
# Benchmarks gantry's flags-only mode side by side with tini, dumb-init and no init, in one run.
# Usage: bash bench/init.sh [--quick]    (writes bench/out/init.md and prints it)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v tini >/dev/null || need+=(tini)
command -v dumb-init >/dev/null || need+=(dumb-init)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet --bin gantry
mkdir -p bench/out
python3 bench/init_bench.py "$PWD/target/release/gantry" "$@" | tee bench/out/init.md
