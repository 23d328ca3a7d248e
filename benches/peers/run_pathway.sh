#!/usr/bin/env bash
# The Pathway peer of Stepstone's views (benches/peers/pathway_views.py; see its docstring).
#
#   benches/peers/run_pathway.sh                              # 1M events, 100k customers, seed 42, 3 reps, 100 batches
#   benches/peers/run_pathway.sh --events 50000 --customers 5000
#   benches/peers/run_pathway.sh --methods tuple --reps 1 --batches 0
#   STEPSTONE=/tmp/stepstone-peer benches/peers/run_pathway.sh --bench-json run
#   python3 benches/peers/fuzz_csv.py target/peers/fuzz.csv && \
#     benches/peers/run_pathway.sh --input target/peers/fuzz.csv --reps 1 --batches 0 --bench-json none
#
# Makes a local venv under target/peers-venv-pathway with pinned pathway, pyarrow (Pathway 0.33
# needs pyarrow < 26, hence not the DuckDB peer's venv) and duckdb (pathway_views.py reuses
# duckdb_views.py's Stepstone helpers), once; builds the release binary if it is missing; then runs
# benches/peers/pathway_views.py with the arguments given (`--help` lists them). Exits non-zero if
# Pathway's views differ from Stepstone's.
set -euo pipefail

PATHWAY_VERSION=0.33.0
PYARROW_VERSION=25.0.1
DUCKDB_VERSION=2.0.1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$ROOT/target/peers-venv-pathway"
PY="$VENV/bin/python"

if ! "$PY" -c "import pathway, duckdb, pyarrow, sys; sys.exit(pathway.__version__ != '$PATHWAY_VERSION' or pyarrow.__version__ != '$PYARROW_VERSION' or duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    echo "setting up $VENV (pathway $PATHWAY_VERSION, pyarrow $PYARROW_VERSION, duckdb $DUCKDB_VERSION)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "pathway==$PATHWAY_VERSION" "pyarrow==$PYARROW_VERSION" "duckdb==$DUCKDB_VERSION"
fi

STEPSTONE="${STEPSTONE:-$ROOT/target/release/stepstone}"
if [ ! -x "$STEPSTONE" ]; then
    (cd "$ROOT" && cargo build --release --workspace)
fi

cd "$ROOT"
exec "$PY" -u "$ROOT/benches/peers/pathway_views.py" --stepstone "$STEPSTONE" "$@"
