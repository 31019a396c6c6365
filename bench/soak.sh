#!/usr/bin/env bash
# Soak: gantry up as PID 1 under restarts, orphans, reloads and output at once (bench/soak.py says
# what runs); prints gantry's RSS, fds, threads and zombies at the start and the end.
# Usage: bash bench/soak.sh [SECONDS]   (default 120; needs root for the PID namespace)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin gantry
mkdir -p bench/out
python3 bench/soak.py "$PWD/target/release/gantry" "${1:-120}" | tee bench/out/soak.md
