#!/usr/bin/env bash
# Fuzzes the record decoders (JSON Lines, CSV, HTTP records) and the config parser, each target
# for a bounded time (default 60 s; `scripts/fuzz.sh 600` for longer), seeded with the malformed
# inputs of tests/corpus and the bundled pipeline configs. Needs the nightly toolchain; installs
# cargo-fuzz if missing. A crash stops the script and leaves its input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/decode_jsonl fuzz/corpus/decode_csv fuzz/corpus/config
cp tests/corpus/*.jsonl data/examples/*.jsonl fuzz/corpus/decode_jsonl/
cp tests/corpus/*.csv fuzz/corpus/decode_csv/
cp data/pipelines/*.toml src/config/defaults.toml fuzz/corpus/config/
for target in decode_jsonl decode_csv config; do
  echo "== fuzzing $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
