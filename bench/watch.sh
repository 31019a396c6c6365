#!/usr/bin/env bash
# Change-to-signal latency and idle/polling cost of gantry's watches, measured end to end through
# `gantry sidecar` (the same engine `watch` blocks and `--watch` use):
#   - latency p50/p99 from a file rewrite to the SIGHUP arriving, with inotify and with polling at 1 s;
#   - idle cost while watching 1000 files for 10 s (target: no wakeups at all in inotify mode);
#   - CPU cost of polling 10,000 files at a 1 s interval.
# go-init-sentinel (the reference: stat polling every 10 s by default) is not installable here; its
# latency follows from its design: a change lands uniformly within a 10 s interval, so p50 ≈ 5 s and
# p99 ≈ 9.9 s, and a same-size rewrite within the same second is never seen.
# Results go to bench/out/ (gitignored). Usage: bench/watch.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
OUT=bench/out
mkdir -p "$OUT"
cargo build --release --quiet
G=$PWD/target/release/gantry
H="python3 bench/watch_helper.py"

echo "latency: inotify, default debounce (150ms), $N changes" >&2
$H latency "$G" "$N" > "$OUT/latency-inotify.json"
echo "latency: inotify, --debounce 0, $N changes" >&2
$H latency "$G" "$N" --debounce 0 > "$OUT/latency-inotify-nodebounce.json"
NP=$(( N < 30 ? N : 30 ))
echo "latency: --poll 1s, $NP changes" >&2
$H latency "$G" "$NP" --poll 1s > "$OUT/latency-poll1s.json"
echo "cost: idle, 1000 files, inotify, 10 s" >&2
$H cost "$G" 1000 10 > "$OUT/idle-inotify-1000.json"
echo "cost: 1000 files, --poll 1s, 10 s" >&2
$H cost "$G" 1000 10 --poll 1s > "$OUT/poll1s-1000.json"
echo "cost: 10000 files, --poll 1s, 10 s" >&2
$H cost "$G" 10000 10 --poll 1s > "$OUT/poll1s-10000.json"

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
j = lambda n: json.load(open(os.path.join(out, n)))
print("| change → SIGHUP latency | p50 | p99 | changes | signals | extra |")
print("|---|---|---|---|---|---|")
for name, label in [("latency-inotify.json", "gantry, inotify, debounce 150ms (default)"),
                    ("latency-inotify-nodebounce.json", "gantry, inotify, debounce 0"),
                    ("latency-poll1s.json", "gantry, --poll 1s")]:
    r = j(name)
    print(f"| {label} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['n']} | {r['received']} | {r['extra_signals']} |")
print("| go-init-sentinel, -interval 10s (default; analytic: uniform in [0, 10 s]) | ≈5000 ms | ≈9900 ms | – | – | – |")
print()
print("| cost over 10 s | files | wakeups (all threads) | CPU time | CPU % |")
print("|---|---|---|---|---|")
for name, label in [("idle-inotify-1000.json", "idle, inotify"),
                    ("poll1s-1000.json", "polling every 1 s"),
                    ("poll1s-10000.json", "polling every 1 s")]:
    r = j(name)
    print(f"| {label} | {r['files']} | {r['wakeups']} | {r['cpu_ms']} ms | {r['cpu_percent']} % |")
PY
