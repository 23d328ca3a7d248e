#!/usr/bin/env bash
# Soaks the live service: builds the release binary, then runs `stepstone-bench --soak` for a
# bounded time (default 10m) at a fixed rate (default 20000 events/s) over 100,000 returning
# customers with 2 WebSocket subscribers, `stepstone serve` a child process on 127.0.0.1 with its
# durable log on and compacting every 8 MiB. Every 10 s it prints a row (events, delta lines,
# p50/p99/max latency, the server's RSS and peak RSS, the log's size), then a verdict on whether
# memory stayed flat. The rows go to target/soak/soak-TIMESTAMP.json and .csv. Further arguments
# are passed on, e.g. `scripts/soak.sh 5m 10000 --soak-subscribers 4`. It fails only on real
# errors (the server died, a subscriber was lost), not on the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10m}"
rate="${2:-20000}"
shift $(($# < 2 ? $# : 2))
cargo build --release --locked --workspace
mkdir -p target/soak
out="target/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).json"
echo "== soaking for $duration at $rate events/s; rows in ${out%.json}.{json,csv}"
./target/release/stepstone-bench --soak "$duration" --soak-rate "$rate" --out "$out" "$@"
