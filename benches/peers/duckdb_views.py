#!/usr/bin/env python3
"""DuckDB peer of Stepstone's views: the same transitions, journeys and segments in SQL.

On one generated CSV workload this script

1. runs `stepstone run` (2 workers by default) `--reps` times and reads its elapsed time from
   `summary.json`, its dead letters from `rejected.jsonl` and its snapshots from the `*.arrow`
   files;
2. loads the CSV into an in-memory DuckDB (2 threads by default), drops the rows Stepstone
   rejected (by line number: the header is line 1) and computes the views in SQL, `--reps`
   times, each in a fresh database (load + compute);
3. checks that DuckDB's views are EQUAL to Stepstone's: every transition's count, dwell total,
   dwell mean and probability; every journey field; every segment's members, value and converted
   members. Any difference is printed and the script exits non-zero (a peer's time only counts
   when the outputs match);
4. appends `--batches` batches of `--batch-size` further events (a continuation of the workload,
   5% of it moved to random times inside the loaded span, as `stepstone-bench` does) and times a
   full recompute of every view after each: what a BI team does today without an incremental
   engine; compared with Stepstone's incremental latency for batches of the same size, taken from
   `stepstone-bench` (its JSON). The views after the last batch are checked too, against a
   Stepstone run on the CSV followed by the batches (written as a second CSV input).

Semantics (SEMANTICS.md): per customer, events ordered by time, ties by input order; a new
session when the gap to the previous event is strictly greater than the session gap; paths with
the synthetic states `(start)`, `(conversion)` and `(exit)`; dwell in ms, 0 to or from a synthetic
state. Everything runs on local files only.
"""

import argparse
import csv
import datetime as dt
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc

CONVERSION_KINDS = ("purchase", "signup")
# (name, Stepstone rule, the same predicate in SQL over the journeys table)
SEGMENTS = (
    ("engaged", "events >= 5", "events >= 5"),
    ("converted", "converted", "conversions > 0"),
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
LATE_SHARE = 0.05  # share of the update events moved inside the loaded span (as `stepstone-bench`)


def parse_args():
    root = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stepstone", default=str(root / "target/release/stepstone"))
    p.add_argument("--input", help="a generated CSV; default: generate one from --events/--customers/--seed")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", default=str(root / "target/peers"))
    p.add_argument("--reps", type=int, default=3, help="bulk repetitions of each side (median reported)")
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    p.add_argument("--workers", type=int, default=2, help="Stepstone workers")
    p.add_argument("--session-gap-ms", type=int, default=30 * 60 * 1000)
    p.add_argument("--path-length", type=int, default=5)
    p.add_argument("--batches", type=int, default=10, help="update batches for the recompute measurement; 0 skips it")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--bench-json",
        default="auto",
        help="`stepstone-bench` results for the incremental comparison: a path, `auto` "
        "(/tmp/bench/bench.json if it matches the workload, else run the bench), `run` (always run it) "
        "or `none`",
    )
    p.add_argument("--out-json", help="write the figures here (default: WORK_DIR/duckdb-peer-N-M-S.json)")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# SQL


def load_sql(csv_path):
    """Reads the CSV as text, numbers the lines (header = 1), drops Stepstone's rejected lines
    (table `rejected(line)`) and decodes the fields as Stepstone does.

    DuckDB's CSV reader has no row-number column; `row_number() OVER ()` numbers the rows in file
    order (insertion order is preserved), and a generated CSV has one record per line. The
    equality check and `cross_check_rejections` would both catch a misnumbering."""
    columns = "{" + ", ".join(
        f"'{c}': 'VARCHAR'" for c in ("customer", "time", "channel", "contact_point", "kind", "value", "intent", "device")
    ) + "}"
    kinds = ", ".join(f"'{k}'" for k in CONVERSION_KINDS)
    path = str(csv_path).replace("'", "''")
    return f"""
    CREATE OR REPLACE TABLE ev AS
    SELECT line,
           customer,
           epoch_ms(CAST(time AS TIMESTAMPTZ)) AS t,
           contact_point AS cp,
           CASE WHEN trim(channel) = '' THEN NULL ELSE channel END AS channel,
           coalesce(kind IN ({kinds}), false) AS conv,
           coalesce(CAST(round(CAST(trim(value) AS DOUBLE) * CAST(1000000 AS DOUBLE)) AS BIGINT), 0) AS v
    FROM (
        SELECT row_number() OVER () + 1 AS line, *
        FROM read_csv('{path}', header = true, delim = ',', quote = '"', escape = '"',
                      columns = {columns}, null_padding = true, auto_detect = false)
    )
    WHERE line NOT IN (SELECT line FROM rejected)
    """


def views_sql(gap_ms, path_length, segments):
    """The statements that (re)compute every view from `ev`."""
    lags = ", ".join(f"lag(cp, {k}) OVER w" for k in range(path_length - 1, 0, -1))
    tail = f"list_value({lags}, cp)" if path_length > 1 else "list_value(cp)"
    new_session = f"(prev_t IS NULL OR t - prev_t > {gap_ms})"
    path_start = f"({new_session[1:-1]} OR prev_conv)"
    session_end = f"(next_t IS NULL OR next_t - t > {gap_ms})"
    segment_rows = "\n        UNION ALL\n".join(
        f"""        SELECT '{name}' AS segment, count(*) AS members,
               coalesce(sum(value_micros), 0) AS value_micros,
               count(*) FILTER (WHERE conversions > 0) AS converted_members
        FROM journeys WHERE {predicate}"""
        for name, _rule, predicate in segments
    )
    return [
        # One ordered pass per customer: the neighbours of each event, its rank, and on the last
        # event the last `path_length` contact points.
        f"""
        CREATE OR REPLACE TEMP TABLE steps AS
        SELECT customer, t, cp, channel, conv, v,
               lag(t) OVER w AS prev_t,
               lag(cp) OVER w AS prev_cp,
               lag(conv) OVER w AS prev_conv,
               lead(t) OVER w AS next_t,
               row_number() OVER w AS rn,
               CASE WHEN lead(t) OVER w IS NULL THEN {tail} END AS tail
        FROM ev
        WINDOW w AS (PARTITION BY customer ORDER BY t, line)
        """,
        f"""
        CREATE OR REPLACE TABLE transitions AS
        WITH edges AS (
            SELECT '(start)' AS "from", cp AS "to", 0 AS dwell FROM steps WHERE {path_start}
            UNION ALL
            SELECT prev_cp, cp, t - prev_t FROM steps WHERE NOT {path_start}
            UNION ALL
            SELECT cp, '(conversion)', 0 FROM steps WHERE conv
            UNION ALL
            SELECT cp, '(exit)', 0 FROM steps WHERE NOT conv AND {session_end}
        ), grouped AS (
            SELECT "from", "to", count(*) AS count, CAST(sum(dwell) AS BIGINT) AS dwell_ms_total
            FROM edges GROUP BY "from", "to"
        )
        SELECT "from", "to", count, dwell_ms_total,
               CAST(dwell_ms_total AS DOUBLE) / CAST(count AS DOUBLE) AS dwell_ms_mean,
               CAST(count AS DOUBLE) / CAST(sum(count) OVER (PARTITION BY "from") AS DOUBLE) AS probability
        FROM grouped
        """,
        f"""
        CREATE OR REPLACE TABLE journeys AS
        WITH j AS (
            SELECT customer,
                   min(t) AS first_time,
                   max(t) AS last_time,
                   count(*) AS events,
                   count(*) FILTER (WHERE {new_session}) AS sessions,
                   max(t) FILTER (WHERE {new_session}) AS session_start,
                   count(*) - max(rn) FILTER (WHERE {new_session}) + 1 AS session_events,
                   list_filter(any_value(tail) FILTER (WHERE tail IS NOT NULL), lambda x: x IS NOT NULL) AS path,
                   histogram(channel) AS channel_map,
                   count(*) FILTER (WHERE conv) AS conversions,
                   max(t) FILTER (WHERE conv) AS last_conversion_time,
                   CAST(sum(v) AS BIGINT) AS value_micros
            FROM steps GROUP BY customer
        )
        SELECT customer, CAST(NULL AS VARCHAR) AS journey_key, first_time, last_time, events, sessions,
               session_start, session_events, last_time - session_start AS session_duration_ms,
               path, path[-1] AS last_contact_point,
               coalesce(list_sort(map_keys(channel_map)), []) AS channels,
               coalesce(list_transform(list_sort(map_entries(channel_map)),
                                       lambda e: {{'channel': e.key, 'events': CAST(e.value AS BIGINT)}}), [])
                   AS channel_events,
               conversions > 0 AS converted, conversions, last_conversion_time,
               CAST(value_micros AS DOUBLE) / CAST(1000000 AS DOUBLE) AS value, value_micros
        FROM j
        """,
        f"""
        CREATE OR REPLACE TABLE segments AS
        SELECT segment, members, CAST(value_micros AS DOUBLE) / CAST(1000000 AS DOUBLE) AS value,
               converted_members,
               CASE WHEN members = 0 THEN 0.0 ELSE CAST(converted_members AS DOUBLE) / CAST(members AS DOUBLE) END
                   AS conversion_rate
        FROM (
{segment_rows}
        )
        """,
    ]


def connect(threads):
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    return con


def duckdb_bulk(args, csv_path, rejected_lines):
    """One bulk run in a fresh database: load + compute. Returns (con, load_s, compute_s)."""
    con = connect(args.threads)
    started = time.perf_counter()
    rejected = pa.table({"line": pa.array(sorted(rejected_lines), type=pa.int64())})
    con.register("rejected_arrow", rejected)
    con.execute("CREATE TABLE rejected AS SELECT * FROM rejected_arrow")
    con.unregister("rejected_arrow")
    con.execute(load_sql(csv_path))
    loaded = time.perf_counter()
    for statement in views_sql(args.session_gap_ms, args.path_length, SEGMENTS):
        con.execute(statement)
    done = time.perf_counter()
    return con, loaded - started, done - loaded


def recompute(con, args):
    for statement in views_sql(args.session_gap_ms, args.path_length, SEGMENTS):
        con.execute(statement)


# ---------------------------------------------------------------------------------------------
# Stepstone


def stepstone_run(args, csv_path, out_dir, extra_inputs=()):
    cmd = [args.stepstone, "run", "-q", "--input", str(csv_path)]
    for extra in extra_inputs:
        cmd += ["--input", str(extra)]
    cmd += [
        "--conversion", "kind=" + "|".join(CONVERSION_KINDS),
        "--session-gap", f"{args.session_gap_ms // 60000}m" if args.session_gap_ms % 60000 == 0 else f"{args.session_gap_ms}ms",
        "--path-length", str(args.path_length),
    ]
    for name, rule, _sql in SEGMENTS:
        cmd += ["--segment", f"{name}={rule}"]
    cmd += ["-w", str(args.workers), "--out", str(out_dir)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    summary = json.loads((out_dir / "summary.json").read_text())
    return summary, wall, cmd


def read_rejected(out_dir, csv_path):
    lines = set()
    other = 0
    with open(out_dir / "rejected.jsonl") as f:
        for raw in f:
            d = json.loads(raw)
            if Path(d["source"]).resolve() == Path(csv_path).resolve():
                lines.add(int(d["line"]))
            else:
                other += 1
    if other:
        raise SystemExit(f"rejected.jsonl names {other} records of another source")
    return lines


def read_arrow(path):
    with ipc.open_file(path) as f:
        return f.read_all()


# ---------------------------------------------------------------------------------------------
# Equality check

JOURNEY_FIELDS = (
    "first_time", "last_time", "events", "sessions", "session_start", "session_events",
    "session_duration_ms", "path", "last_contact_point", "channels", "channel_events", "converted",
    "conversions", "last_conversion_time", "value",
)


def table_rows(table, key_columns, value_columns):
    """{key: values} of a pyarrow table, timestamps as int ms."""
    cols = {}
    for name in key_columns + value_columns:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        cols[name] = col.to_pylist()
    out = {}
    for i in range(table.num_rows):
        key = tuple(cols[k][i] for k in key_columns)
        if key in out:
            raise SystemExit(f"duplicate key {key}")
        out[key] = tuple(cols[v][i] for v in value_columns)
    return out


def duck_rows(con, table, key_columns, value_columns):
    cols = ", ".join(f'"{c}"' for c in key_columns + value_columns)
    out = {}
    for row in con.execute(f"SELECT {cols} FROM {table}").fetchall():
        key = tuple(row[: len(key_columns)])
        if key in out:
            raise SystemExit(f"duplicate key {key} in DuckDB's {table}")
        out[key] = tuple(row[len(key_columns):])
    return out


def normalize_channel_events(values, names):
    i = names.index("channel_events")
    fixed = list(values)
    fixed[i] = [(e["channel"], e["events"]) for e in values[i]]
    return tuple(fixed)


def differences(ours, theirs, names):
    """The differences between {key: values} maps, one line each."""
    diffs = []
    for key in sorted(set(ours) | set(theirs), key=repr):
        a, b = ours.get(key), theirs.get(key)
        if a is None:
            diffs.append(f"  {key}: only in Stepstone: {dict(zip(names, b))}")
        elif b is None:
            diffs.append(f"  {key}: only in DuckDB: {dict(zip(names, a))}")
        elif a != b:
            fields = [f"{n}: duckdb={x!r} stepstone={y!r}" for n, x, y in zip(names, a, b) if x != y]
            diffs.append(f"  {key}: " + "; ".join(fields))
    return diffs


def report(label, ours, theirs, diffs, show=10):
    """Prints the row counts of both sides and the first differences; returns their number."""
    status = "EQUAL" if not diffs else f"{len(diffs)} DIFFERENCES"
    print(f"  {label:<12} {ours:>8} rows (DuckDB) {theirs:>8} rows (Stepstone)  {status}")
    for d in diffs[:show]:
        print("   " + d)
    if len(diffs) > show:
        print(f"     … and {len(diffs) - show} more")
    return len(diffs)


def compare(label, ours, theirs, names, show=10):
    """Prints the differences between {key: values} maps; returns their number."""
    return report(label, len(ours), len(theirs), differences(ours, theirs, names), show)


# Journeys are compared a share of the customers (by hash) at a time, so that only one share's
# rows are Python objects at once: 50M events make 5M journeys, too many to hold as tuples.
JOURNEYS_PER_SHARE = 500_000


def compare_journeys(con, out_dir):
    """Compares DuckDB's journeys with Stepstone's journeys.arrow, share by share; returns the
    number of differences."""
    names = list(JOURNEY_FIELDS)
    keys = ["customer", "journey_key"]
    table = read_arrow(out_dir / "journeys.arrow")
    con.register("stepstone_journeys", table)
    times = {c for c in keys + names if pa.types.is_timestamp(table.column(c).type)}
    theirs_columns = ", ".join(f'epoch_ms("{c}") AS "{c}"' if c in times else f'"{c}"' for c in keys + names)
    rows = con.execute("SELECT count(*) FROM journeys").fetchall()[0][0]
    shares = max(1, rows // JOURNEYS_PER_SHARE)
    diffs, n_ours, n_theirs = [], 0, 0
    for share in range(shares):
        where = f"WHERE hash(customer) % {shares} = {share}"
        ours = duck_rows(con, f"(SELECT * FROM journeys {where})", keys, names)
        ours = {k: normalize_channel_events(v, names) for k, v in ours.items()}
        theirs = duck_rows(con, f"(SELECT {theirs_columns} FROM stepstone_journeys {where})", keys, names)
        theirs = {k: normalize_channel_events(v, names) for k, v in theirs.items()}
        diffs += differences(ours, theirs, names)
        n_ours, n_theirs = n_ours + len(ours), n_theirs + len(theirs)
    con.unregister("stepstone_journeys")
    return report("journeys", n_ours, n_theirs, diffs)


def check(con, out_dir, what="equality check (DuckDB vs Stepstone snapshot)"):
    print(f"{what}:")
    total = 0
    names = ["count", "dwell_ms_total", "dwell_ms_mean", "probability"]
    total += compare(
        "transitions",
        duck_rows(con, "transitions", ["from", "to"], names),
        table_rows(read_arrow(out_dir / "transitions.arrow"), ["from", "to"], names),
        names,
    )
    total += compare_journeys(con, out_dir)
    names = ["members", "value", "converted_members", "conversion_rate"]
    total += compare(
        "segments",
        duck_rows(con, "segments", ["segment"], names),
        table_rows(read_arrow(out_dir / "segments.arrow"), ["segment"], names),
        names,
    )
    return total


def cross_check_rejections(con, csv_path, rejected_lines):
    """Informational: which lines a plain SQL validation of the CSV would reject, against
    Stepstone's dead letters (a 5-field row shows up as a NULL `device` with null padding; with
    `nullstr` a sequence no file holds, an empty field is '' and not NULL, so an empty `device`, as
    in a converted real log, is no short row)."""
    path = str(csv_path).replace("'", "''")
    columns = "{" + ", ".join(
        f"'{c}': 'VARCHAR'" for c in ("customer", "time", "channel", "contact_point", "kind", "value", "intent", "device")
    ) + "}"
    rows = con.execute(f"""
        SELECT line FROM (
            SELECT row_number() OVER () + 1 AS line, *
            FROM read_csv('{path}', header = true, columns = {columns}, null_padding = true, auto_detect = false,
                           nullstr = '\\N')
        )
        WHERE coalesce(trim(customer), '') = '' OR coalesce(trim(contact_point), '') = ''
           OR try_cast(time AS TIMESTAMPTZ) IS NULL
           OR (coalesce(trim(value), '') <> '' AND try_cast(trim(value) AS DOUBLE) IS NULL)
           OR device IS NULL
    """).fetchall()
    sql_lines = {r[0] for r in rows}
    only_sql, only_stepstone = sql_lines - rejected_lines, rejected_lines - sql_lines
    agree = not only_sql and not only_stepstone
    print(
        f"  rejected     {len(rejected_lines):>8} lines (Stepstone) {len(sql_lines):>8} lines (SQL validation)  "
        + ("SAME LINES" if agree else f"differ: only SQL {sorted(only_sql)[:10]}, only Stepstone {sorted(only_stepstone)[:10]}")
    )
    return agree


# ---------------------------------------------------------------------------------------------
# Update batches


def continuation(args, work, csv_path, first, last):
    """The continuation of the workload as `stepstone-bench` makes it: `stepstone generate` with
    the next seed, starting an hour after the last event (`last`, ms), no malformed records; then
    5% of the events moved to random times in [first, last]. Returns the events as dicts of the
    CSV's text fields (times moved) with their time in ms under "t", and the path of a CSV holding
    them for Stepstone. The random draws are the same for every peer."""
    wanted = args.batches * args.batch_size
    start = dt.datetime.fromtimestamp((last + 3_600_000) / 1000, tz=dt.timezone.utc)
    start_text = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
    path = work / f"updates-{Path(csv_path).stem}-{wanted}-{args.customers}-{args.seed + 1}.csv"
    if not path.exists():
        subprocess.run(
            [args.stepstone, "generate", "--events", str(wanted), "--customers", str(args.customers),
             "--seed", str(args.seed + 1), "--malformed", "0", "--start", start_text, "--out", str(path)],
            check=True, capture_output=True,
        )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != wanted:
        raise SystemExit(f"{path} holds {len(rows)} events, not {wanted}")
    rng = random.Random(args.seed)
    moved_path = path.with_name(path.stem + "-moved.csv")
    out = []
    with open(moved_path, "w", newline="") as moved:
        writer = csv.DictWriter(moved, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            t = (dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00")) - EPOCH) // dt.timedelta(milliseconds=1)
            if rng.random() < LATE_SHARE:
                t = rng.randint(first, last)
            when = EPOCH + dt.timedelta(milliseconds=t)
            r = {**r, "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z"}
            writer.writerow(r)
            out.append({**r, "t": t})
    return out, moved_path


def update_events(args, work, csv_path, con):
    """The workload's continuation (see `continuation`) as a pyarrow table shaped like `ev`, and
    the path of the CSV holding the same events for Stepstone."""
    first, last, max_line = con.execute("SELECT min(t), max(t), max(line) FROM ev").fetchall()[0]
    rows, moved_path = continuation(args, work, csv_path, first, last)
    out = {"line": [], "customer": [], "t": [], "cp": [], "channel": [], "conv": [], "v": []}
    for i, r in enumerate(rows):
        out["line"].append(max_line + 1 + i)
        out["customer"].append(r["customer"])
        out["t"].append(r["t"])
        out["cp"].append(r["contact_point"])
        out["channel"].append(r["channel"] if r["channel"] and r["channel"].strip() else None)
        out["conv"].append(r["kind"] in CONVERSION_KINDS)
        out["v"].append(round(float(r["value"]) * 1_000_000) if r["value"] else 0)
    return pa.table({
        "line": pa.array(out["line"], pa.int64()), "customer": pa.array(out["customer"], pa.string()),
        "t": pa.array(out["t"], pa.int64()), "cp": pa.array(out["cp"], pa.string()),
        "channel": pa.array(out["channel"], pa.string()), "conv": pa.array(out["conv"], pa.bool_()),
        "v": pa.array(out["v"], pa.int64()),
    }), moved_path


def workload_csv(args, work):
    """The workload CSV: --input, or the generated file of --events/--customers/--seed (made once)."""
    if args.input:
        return Path(args.input).resolve()
    csv_path = work / f"events-{args.events}-{args.customers}-{args.seed}.csv"
    if not csv_path.exists():
        print(f"generating {csv_path} …", flush=True)
        subprocess.run(
            [args.stepstone, "generate", "--events", str(args.events), "--customers", str(args.customers),
             "--seed", str(args.seed), "--out", str(csv_path)],
            check=True,
        )
    return csv_path


def update_recompute(args, con, updates):
    """Appends each batch and recomputes every view; returns the seconds per batch."""
    seconds = []
    for b in range(args.batches):
        batch = updates.slice(b * args.batch_size, args.batch_size)
        con.register("batch", batch)
        started = time.perf_counter()
        con.execute("INSERT INTO ev SELECT line, customer, t, cp, channel, conv, v FROM batch")
        recompute(con, args)
        seconds.append(time.perf_counter() - started)
        con.unregister("batch")
    return seconds


def stepstone_incremental(args, work):
    """Stepstone's incremental latencies for batches of `--batch-size` from `stepstone-bench`."""
    source = args.bench_json
    path = None
    if source == "none":
        return None, None
    if source == "auto":
        candidate = Path("/tmp/bench/bench.json")
        if candidate.exists():
            s = json.loads(candidate.read_text()).get("settings", {})
            if (s.get("events"), s.get("customers"), s.get("seed")) == (args.events, args.customers, args.seed):
                path = candidate
        source = "run" if path is None else str(path)
    if source == "run":
        path = work / f"bench-{args.events}-{args.customers}-{args.seed}.json"
        print(f"running stepstone-bench (reps 1, workers {args.workers}) → {path}", flush=True)
        subprocess.run(
            [str(Path(args.stepstone).with_name("stepstone-bench")), "--events", str(args.events), "--customers", str(args.customers),
             "--seed", str(args.seed), "--reps", "1", "--workers", str(args.workers), "--out", str(path),
             "--data-dir", str(work / "bench-data")],
            check=True, stdout=subprocess.DEVNULL,
        )
    elif path is None:
        path = Path(source)
    bench = json.loads(Path(path).read_text())
    found = {}
    for run in bench.get("incremental", []):
        for b in run["batches"]:
            if b["size"] == args.batch_size:
                found[run["workers"]] = b
    return found, str(path)


# ---------------------------------------------------------------------------------------------


def median_spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, unit="s", scale=1.0):
    m, lo, hi = median_spread([x * scale for x in xs])
    return f"{m:.3f} {unit} ({lo:.3f}–{hi:.3f})" if unit == "s" else f"{m:.1f} {unit} ({lo:.1f}–{hi:.1f})"


def main():
    args = parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    csv_path = workload_csv(args, work)
    out_dir = work / f"stepstone-out-{csv_path.stem}"
    print(f"workload {csv_path} ({csv_path.stat().st_size / 2**20:.1f} MiB); duckdb {duckdb.__version__}, "
          f"pyarrow {pa.__version__}; DuckDB threads {args.threads}, Stepstone workers {args.workers}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
    load_before = os.getloadavg()[0]

    # Bulk: interleaved repetitions, Stepstone first (its dead letters name the rows to drop).
    step_elapsed, step_wall, duck_load, duck_compute = [], [], [], []
    rejected_lines = None
    con = None
    for rep in range(args.reps):
        summary, wall, cmd = stepstone_run(args, csv_path, out_dir)
        step_elapsed.append(summary["elapsed_seconds"])
        step_wall.append(wall)
        lines = read_rejected(out_dir, csv_path)
        if rejected_lines is not None and lines != rejected_lines:
            raise SystemExit("Stepstone rejected different lines in two runs")
        rejected_lines = lines
        if con is not None:
            con.close()
        con, load_s, compute_s = duckdb_bulk(args, csv_path, rejected_lines)
        duck_load.append(load_s)
        duck_compute.append(compute_s)
        print(f"rep {rep + 1}/{args.reps}  stepstone {summary['elapsed_seconds']:.3f} s (process {wall:.3f} s)   "
              f"duckdb load {load_s:.3f} s + views {compute_s:.3f} s = {load_s + compute_s:.3f} s", flush=True)
    # Peak RSS of this process so far: the DuckDB bulk runs (and the interpreter), before the check.
    duck_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    events = con.execute("SELECT count(*) FROM ev").fetchall()[0][0]
    print(f"events {events} (Stepstone: {summary['events']}), rejected lines {len(rejected_lines)} "
          f"(Stepstone: {summary['rejected_total']})")

    diffs = check(con, out_dir)
    if events != summary["events"]:
        print(f"  event count differs: DuckDB {events}, Stepstone {summary['events']}")
        diffs += 1
    rejections_agree = cross_check_rejections(con, csv_path, rejected_lines)

    duck_total = [a + b for a, b in zip(duck_load, duck_compute)]
    result = {
        "workload": {"csv": str(csv_path), "events": events, "rejected": len(rejected_lines),
                     "customers": con.execute("SELECT count(*) FROM journeys").fetchall()[0][0]},
        "versions": {"duckdb": duckdb.__version__, "pyarrow": pa.__version__, "python": sys.version.split()[0]},
        "settings": {"duckdb_threads": args.threads, "stepstone_workers": args.workers, "reps": args.reps,
                     "session_gap_ms": args.session_gap_ms, "path_length": args.path_length,
                     "stepstone_command": cmd, "cpus": os.cpu_count(),
                     "load_average_1m_at_start": load_before},
        "equal": diffs == 0,
        "differences": diffs,
        "rejections_agree_with_sql_validation": rejections_agree,
        "bulk": {
            "stepstone_elapsed_s": step_elapsed, "stepstone_process_s": step_wall,
            "duckdb_load_s": duck_load, "duckdb_views_s": duck_compute, "duckdb_total_s": duck_total,
            "duckdb_process_peak_rss_mib": duck_peak_mib,
        },
    }
    m_step, m_duck = statistics.median(step_elapsed), statistics.median(duck_total)
    print()
    print(f"bulk, {events} events (median of {args.reps}, min–max)")
    print(f"  stepstone run -w {args.workers}      {fmt(step_elapsed)}  (process wall {fmt(step_wall)})")
    print(f"  duckdb load + views    {fmt(duck_total)}  (load {fmt(duck_load)}, views {fmt(duck_compute)}); "
          f"process peak RSS {duck_peak_mib:.0f} MiB")
    print(f"  ratio duckdb / stepstone  {m_duck / m_step:.2f}", flush=True)

    if args.batches > 0:
        updates, moved_path = update_events(args, work, csv_path, con)
        seconds = update_recompute(args, con, updates)
        med = statistics.median(seconds)
        result["recompute"] = {"batch_size": args.batch_size, "batches": args.batches, "duckdb_s": seconds}
        print()
        print(f"update batches of {args.batch_size} events on top of {events}: DuckDB full recompute "
              f"(insert + all views), {args.batches} batches")
        print(f"  duckdb recompute       median {med * 1000:.0f} ms (min {min(seconds) * 1000:.0f}, "
              f"max {max(seconds) * 1000:.0f})", flush=True)
        # The views after the batches must match too: Stepstone on the CSV followed by the batches.
        updated_dir = work / f"stepstone-out-{csv_path.stem}-updated"
        stepstone_run(args, csv_path, updated_dir, [moved_path])
        after = check(con, updated_dir, f"  equality check after the {args.batches} batches "
                                        f"(Stepstone run on the CSV, then {moved_path.name})")
        result["recompute"]["equal_after_batches"] = after == 0
        diffs += after
        result["equal"], result["differences"] = diffs == 0, diffs
        inc, source = stepstone_incremental(args, work)
        if inc:
            result["recompute"]["stepstone_bench"] = {"source": source, "by_workers": {str(k): v for k, v in inc.items()}}
            for workers, b in sorted(inc.items()):
                print(f"  stepstone incremental w={workers}  p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms "
                      f"(from {source})   ratio duckdb median / p50 {med * 1000 / b['p50_ms']:.0f}, "
                      f"/ p99 {med * 1000 / b['p99_ms']:.0f}")

    result["settings"]["load_average_1m_at_end"] = os.getloadavg()[0]
    print(f"\nload average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    out_json = Path(args.out_json) if args.out_json else work / f"duckdb-peer-{csv_path.stem}.json"
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out_json}")
    if diffs:
        print(f"NOT EQUAL: {diffs} differences; the timings above do not count", file=sys.stderr)
        sys.exit(1)
    print("outputs EQUAL")


if __name__ == "__main__":
    main()
