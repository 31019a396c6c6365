#!/usr/bin/env bash
# Benchmarks gantry's flags-only mode side by side with tini, tini-static, dumb-init and no init, in
# one run: both gantry builds, the static musl binary meant for container images and the glibc one.
# Usage: bash bench/init.sh [--quick]    (writes bench/out/init.md and prints it)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v tini >/dev/null || need+=(tini)
command -v dumb-init >/dev/null || need+=(dumb-init)
command -v musl-gcc >/dev/null || need+=(musl-tools)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
musl=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$musl" || rustup target add "$musl"
cargo build --release --quiet --bin gantry
cargo build --release --quiet --bin gantry --target "$musl"
mkdir -p bench/out
python3 bench/init_bench.py "$PWD/target/$musl/release/gantry" "$PWD/target/release/gantry" "$@" \
  | tee bench/out/init.md
