#!/usr/bin/env bash
# The DuckDB peer of Stepstone's views (see BENCHMARKS.md, "How to rerun").
#
#   benches/peers/run.sh                              # 1M events, 100k customers, seed 42, 3 reps
#   benches/peers/run.sh --events 50000 --customers 5000
#   benches/peers/run.sh --input my.csv --reps 1 --batches 0
#
# Makes a local venv under target/peers-venv with pinned duckdb and pyarrow (once), builds the
# release binary if it is missing, then runs benches/peers/duckdb_views.py with the arguments
# given (`--help` lists them). Exits non-zero if DuckDB's views differ from Stepstone's.
set -euo pipefail

DUCKDB_VERSION=2.0.1
PYARROW_VERSION=26.0.1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$ROOT/target/peers-venv"
PY="$VENV/bin/python"

if ! "$PY" -c "import duckdb, pyarrow, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION' or pyarrow.__version__ != '$PYARROW_VERSION')" 2>/dev/null; then
    echo "setting up $VENV (duckdb $DUCKDB_VERSION, pyarrow $PYARROW_VERSION)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION" "pyarrow==$PYARROW_VERSION"
fi

STEPSTONE="${STEPSTONE:-$ROOT/target/release/stepstone}"
if [ ! -x "$STEPSTONE" ]; then
    (cd "$ROOT" && cargo build --release --workspace)
fi

cd "$ROOT"
exec "$PY" "$ROOT/benches/peers/duckdb_views.py" --stepstone "$STEPSTONE" "$@"
