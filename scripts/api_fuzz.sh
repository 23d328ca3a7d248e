#!/usr/bin/env bash
# Fuzzes the HTTP API of `stepstone serve` with schemathesis (PyPI) against the API's own
# OpenAPI description (/v1/openapi.json): no answer may be a 5xx, and every answer must have
# the content type and schema the description gives (every error a JSON body). The server runs
# the demo pipeline on 127.0.0.1 in a temporary directory; the run is bounded in examples per
# operation (default 25; `scripts/api_fuzz.sh 200` for more) and in time, and stops the server
# when it ends. The subscriptions are left out: they stream until the client leaves, which
# tests/ exercises. Usage: scripts/api_fuzz.sh [EXAMPLES] (STEPSTONE_BIN picks the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-25}"
bin="${STEPSTONE_BIN:-target/debug/stepstone}"
[[ -x "$bin" ]] || cargo build --locked --bin stepstone
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port="$(free_port)"
flight_port="$(free_port)"
"$bin" serve --config data/pipelines/demo.toml --out "$work/out" --quiet \
  --listen "127.0.0.1:$http_port" --flight-listen "127.0.0.1:$flight_port" 2>"$work/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
base="http://127.0.0.1:$http_port"
for _ in $(seq 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done
timeout 300 schemathesis run "$base/v1/openapi.json" \
  --checks not_a_server_error,content_type_conformance,response_schema_conformance \
  --exclude-path-regex '^/v1/subscribe' \
  --max-examples "$examples" --seed 42 --workers 2 \
  --request-timeout 10 --max-time 90 --warnings off
kill -0 "$server" 2>/dev/null || { echo "the server stopped during the run:"; cat "$work/serve.log"; exit 1; }
