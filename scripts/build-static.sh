#!/usr/bin/env bash
# Builds gantry as one static executable (x86_64-unknown-linux-musl, stripped): the binary meant for
# container images. CI (.ci/run) and the Dockerfile both build it with this script, so an image holds
# the binary CI tested, built the same way.
#
# Usage: scripts/build-static.sh [--out FILE]
#   --out FILE         copy the finished binary to FILE as well
#   GANTRY_FEATURES    unset or empty: every probe driver (the default features); otherwise a
#                      comma-separated list of probe drivers to keep (http,mysql,postgres,redis,amqp,
#                      mongodb,smtp), or "none" for none (tcp, exec and file probes are always in)
# Prints the binary's path on stdout when done. Installs the musl target and musl-tools when missing
# (rustup; apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

out=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a file}"; shift 2 ;;
    *) echo "build-static.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

musl=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$musl" || rustup target add "$musl" >&2
# ring (rustls' crypto) compiles C for the musl target with musl-gcc.
if ! command -v musl-gcc >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >&2
fi

features=()
case "${GANTRY_FEATURES:-}" in
  "") ;;
  none) features=(--no-default-features) ;;
  *) features=(--no-default-features --features "$GANTRY_FEATURES") ;;
esac

cargo build --release --locked --bin gantry --target "$musl" "${features[@]}" >&2
bin="$PWD/target/$musl/release/gantry"

# Static means no program interpreter and no shared library: refuse to hand on anything else.
if readelf -lW "$bin" 2>/dev/null | grep -q 'Requesting program interpreter' \
  || readelf -dW "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
  echo "build-static.sh: $bin is not a static executable" >&2
  exit 1
fi

# The image's copy has no symbol table. It is stripped here rather than by the release profile:
# the start-up link order (link/) is generated from this same build, which needs its symbols, and a
# profile that differs (in `strip` too) compiles to different code. Stripping leaves the loaded
# segments as they are.
command -v strip >/dev/null || {
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >&2
}
mkdir -p "$PWD/target/static"
strip --strip-all -o "$PWD/target/static/gantry" "$bin"
bin="$PWD/target/static/gantry"

if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  cp "$bin" "$out"
  bin="$out"
fi
echo "$bin"
