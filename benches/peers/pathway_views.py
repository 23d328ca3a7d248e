#!/usr/bin/env python3
"""Pathway peer of Stepstone's views: the same transitions, journeys and segments in Pathway.

Pathway (0.33) is a streaming engine on a differential-dataflow core. On one generated CSV
workload (the DuckDB peer's: same file, same seed, same update batches) this script

1. runs `stepstone run` (2 workers by default) `--reps` times: its `elapsed_seconds` from
   `summary.json`, its peak RSS (`wait4` of the child), its dead letters (`rejected.jsonl`) and
   its snapshots (`*.arrow`);
2. prepares Pathway's input: the CSV with its line number (header = line 1) as a first column and
   Stepstone's rejected lines dropped, as `duckdb_views.py` does in SQL (a line-level pass; a
   generated CSV has one record per line); timed, and counted in Pathway's total;
3. runs each Pathway formulation (`--methods`, below) in a child process (`PATHWAY_THREADS=2` by
   default), `--reps` times interleaved with Stepstone, in STATIC mode: `pw.io.csv.read(mode=
   "static")`, which decodes the fields as Stepstone does (times to ms, values to integer
   micro-units, blank channel as none), the views, `pw.io.jsonlines.write` of each; the time is
   `pw.run()` (the whole file read, every view computed and written); peak RSS is the child's
   (`wait4`), Python and Pathway included;
4. checks that Pathway's views are EQUAL to Stepstone's snapshot: every transition's count and
   dwell total (exact), dwell mean and probability (1e-9 relative; bit-identity is counted too);
   every journeys.arrow column (customer, journey_key, first_time, last_time, events, sessions,
   session_start, session_events, session_duration_ms, path, last_contact_point, channels,
   channel_events, converted, conversions, last_conversion_time, value); every segment's members,
   value, converted members and conversion rate; and the event count. Differences are printed and
   the script exits non-zero: a peer's time only counts when the outputs match.
   `--semantics-bug gap>=` (sessions split at a gap equal to the session gap) and
   `--semantics-bug ties` (equal times not in input order: by row id, or reversed) show that the
   check catches a wrong rule: both fail on `fuzz_csv.py`'s CSV (minute grid: equal times, gaps
   of exactly 30 min) and `ties` fails on the generated workload too; `gap>=` passes there (ms
   times: no gap of exactly 30 min);
5. incremental (`--batches` of `--batch-size`): per formulation, one more child runs the same
   pipeline in STREAMING mode: the prepared CSV (static reader) plus a `pw.io.python.
   ConnectorSubject` for the updates (the continuation `duckdb_views.py` and `stepstone-bench`
   use: the next seed, from an hour after the last event, 5% moved to random times inside the
   loaded span). Once the CSV is fully processed the subject pushes one batch (`next()` per event,
   then `commit()`) and waits until Pathway closes the batch's time on a probe sink fed by all three
   views (so every view's update for the batch is computed), then pushes the next one: closed loop,
   as the DuckDB peer's recompute, whereas `stepstone-bench` sends at a fixed rate. Latency = the
   batch's first `next()` to the probe's `on_time_end`. The views are kept by `pw.io.subscribe`
   callbacks in memory (`--stream-sink jsonlines`: file sinks instead) and, after the last batch,
   checked against a Stepstone run on the CSV followed by the batches. Stepstone's incremental
   latencies come from `stepstone-bench`, as in the DuckDB peer; `--inc-reps N` repeats the
   measurement, interleaved (`stepstone-bench` with `--bench-json run`, then each method), since
   on a shared machine latencies swing by 10x and more with the other tenants' load.

The per-customer order, two formulations (`--methods sort,tuple`, both by default):

- `sort`, per event: `Table.sort(key=(t, line), instance=customer)` gives each event `prev` and
  `next` pointers, kept up to date by Pathway's sort operator; `ix` through them gives each event
  its neighbours' time, contact point and conversion flag, from which it emits its edges (an
  incoming one, `(start) -> cp` or `prev -> cp` with the dwell, and at most one outgoing,
  `cp -> (conversion)` or `cp -> (exit)`), so an inserted or late event only changes its own and
  its two neighbours' edges. Transitions: a `groupby(from, to)` of the edges. Journeys: a
  `groupby(customer)` of the events, `session_events` from the events joined with their
  customer's `session_start`, the path from `path_length - 1` `ix` steps back along `prev` from
  the last event. Only the path list and the channel lists are built by (deterministic) UDFs.
- `tuple`, per customer: a `sorted_tuple` reducer of each customer's events by (t, line) and one
  deterministic Python UDF that walks the sequence and returns every journey field plus the
  customer's edge counts; the edges are `flatten`ed and summed per (from, to). A change to a
  customer rebuilds that customer's tuple and reruns the UDF on it (customers are small: the
  largest of the 1M workload has 134 events), so it is incremental per customer, not per event.

Both end the same way: out-degrees a `groupby(from)`, probability and mean by `ix_ref`; each
segment a `filter` and `reduce` of the journeys. Semantics (SEMANTICS.md): per customer, events
ordered by time, ties by input order; a new session when the gap to the previous event is strictly
greater than the session gap; paths with the synthetic states `(start)`, `(conversion)` and
`(exit)`; dwell in ms, 0 to or from a synthetic state. Everything runs on local files only.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONVERSION_KINDS = ("purchase", "signup")
# (name, Stepstone rule, predicate over the Pathway journeys table)
SEGMENTS = (
    ("engaged", "events >= 5", lambda j: j.events >= 5),
    ("converted", "converted", lambda j: j.conversions > 0),
)
CSV_COLUMNS = ("customer", "time", "channel", "contact_point", "kind", "value", "intent", "device")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the generator's (the only one among accepted rows)
METHODS = ("sort", "tuple")
REL_TOL = 1e-9
MIN_MS, MAX_MS = -(2**62), 2**62  # sentinels beyond any representable event time


def parse_args():
    root = HERE.parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stepstone", default=str(root / "target/release/stepstone"))
    p.add_argument("--input", help="a generated CSV; default: generate one from --events/--customers/--seed")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", default=str(root / "target/peers"))
    p.add_argument("--reps", type=int, default=3, help="bulk repetitions of each side (median reported)")
    p.add_argument("--threads", type=int, default=2, help="Pathway worker threads (PATHWAY_THREADS)")
    p.add_argument("--workers", type=int, default=2, help="Stepstone workers")
    p.add_argument("--session-gap-ms", type=int, default=30 * 60 * 1000)
    p.add_argument("--path-length", type=int, default=5)
    p.add_argument("--batches", type=int, default=100, help="update batches for the incremental run; 0 skips it")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--inc-reps", type=int, default=1,
                   help="repetitions of the incremental measurement (each: `stepstone-bench` if --bench-json run, "
                   "then a streaming run per method)")
    p.add_argument("--methods", default="sort,tuple",
                   help="Pathway formulations to run, comma-separated: `sort` (prev/next pointers) and/or `tuple` "
                   "(a sorted_tuple per customer and a Python UDF)")
    p.add_argument("--stream-sink", choices=("memory", "jsonlines"), default="memory",
                   help="where the incremental run's views go: `pw.io.subscribe` callbacks keeping them in memory "
                   "(written out after the run), or `pw.io.jsonlines.write` files (adds file writes to each batch)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each Pathway child")
    p.add_argument(
        "--bench-json", default="auto",
        help="`stepstone-bench` results for the incremental comparison: a path, `auto` (/tmp/bench/bench.json "
        "if it matches the workload, else run the bench), `run` (always run it) or `none`",
    )
    p.add_argument("--semantics-bug", choices=("none", "gap>=", "ties"), default="none",
                   help="a deliberately wrong rule in Pathway, to see the equality check fail: `gap>=` splits "
                   "sessions at a gap equal to the session gap, `ties` ignores input order between equal times "
                   "(sort: by row id; tuple: reversed)")
    p.add_argument("--out-json", help="write the figures here (default: WORK_DIR/pathway-peer-STEM.json)")
    # Internal: the Pathway child process.
    p.add_argument("--child", choices=("bulk", "stream"), help=argparse.SUPPRESS)
    p.add_argument("--method", choices=METHODS, default="sort", help=argparse.SUPPRESS)
    p.add_argument("--prepared", help=argparse.SUPPRESS)
    p.add_argument("--updates", help=argparse.SUPPRESS)
    p.add_argument("--expected-events", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    return p.parse_args()


# =============================================================================================
# The Pathway pipeline (child process)


def input_schema(pw):
    return pw.schema_from_types(line=int, **{c: str for c in CSV_COLUMNS})


def build_views(pw, raw, gap_ms, path_length, method="sort", bug="none"):
    """The three views from the raw events table (strings as in the CSV, plus the line number).
    Returns (transitions, journeys, segments)."""
    this = pw.this
    conv = None
    for kind in CONVERSION_KINDS:
        conv = (this.kind == kind) if conv is None else (conv | (this.kind == kind))
    value = this.value.str.strip()
    ev = raw.select(
        customer=this.customer,
        line=this.line,
        t=(this.time.dt.strptime(TIME_FORMAT) - dt.datetime(1970, 1, 1)).dt.milliseconds(),
        cp=this.contact_point,
        channel=pw.if_else(this.channel.str.strip() == "", None, this.channel),
        conv=conv,
        v=pw.if_else(value == "", 0, pw.cast(int, (value.str.parse_float() * 1_000_000.0).num.round())),
    )
    build = views_by_sort if method == "sort" else views_by_tuple
    grouped, journeys = build(pw, ev, gap_ms, path_length, bug)

    # Transitions from the edge counts per (from, to); out-degrees per from.
    degree = grouped.groupby(this.src).reduce(this.src, out=pw.reducers.sum(this.count))
    transitions = grouped.select(
        this.src, this.dst, this.count, this.dwell_ms_total,
        dwell_ms_mean=this.dwell_ms_total / this.count,
        probability=this.count / degree.ix_ref(this.src).out,
    )
    # Segments: one reduce per rule over the journeys.
    parts = []
    for name, _rule, predicate in SEGMENTS:
        parts.append(journeys.filter(predicate(journeys)).reduce(
            segment=name,
            members=pw.reducers.count(),
            value_micros=pw.reducers.sum(this.value_micros),
            converted_members=pw.reducers.sum(pw.cast(int, this.conversions > 0)),
        ))
    segments = parts[0].concat_reindex(*parts[1:]).select(
        this.segment, this.members,
        value=this.value_micros / 1_000_000,
        converted_members=this.converted_members,
        conversion_rate=pw.if_else(this.members == 0, 0.0, this.converted_members / this.members),
    )
    return transitions, journeys.without(this.value_micros), segments


def udf(pw, fn, return_type):
    return pw.udf(fn, return_type=return_type, deterministic=True)


def views_by_sort(pw, ev, gap_ms, path_length, bug):
    """Per-event logic on prev/next pointers. Returns (edge counts per (src, dst), journeys)."""
    this = pw.this
    # Per-customer order: (time, input line); prev/next pointers kept up to date by Pathway.
    order = ev.t if bug == "ties" else pw.make_tuple(ev.t, ev.line)  # `ties`: equal times by row id
    ev = ev + ev.sort(key=order, instance=ev.customer)
    prev = ev.ix(ev.prev, optional=True)
    nxt = ev.ix(ev.next, optional=True)
    steps = ev.select(
        *this,
        prev_t=prev.t,
        prev_cp=prev.cp,
        prev_conv=pw.coalesce(prev.conv, False),
        next_t=nxt.t,
    )
    if bug == "gap>=":  # deliberately wrong: a gap of exactly the session gap splits the session
        new_session = (this.t - pw.coalesce(this.prev_t, MIN_MS)) >= gap_ms
        session_end = (pw.coalesce(this.next_t, MAX_MS) - this.t) >= gap_ms
    else:
        new_session = (this.t - pw.coalesce(this.prev_t, MIN_MS)) > gap_ms
        session_end = (pw.coalesce(this.next_t, MAX_MS) - this.t) > gap_ms
    steps = steps.with_columns(new_session=new_session, session_end=session_end)
    steps = steps.with_columns(path_start=this.new_session | this.prev_conv)

    # Edges: one incoming per event, at most one outgoing.
    incoming = steps.select(
        src=pw.if_else(this.path_start, "(start)", pw.coalesce(this.prev_cp, "")),
        dst=this.cp,
        dwell=pw.if_else(this.path_start, 0, this.t - pw.coalesce(this.prev_t, 0)),
    )
    outgoing = steps.filter(this.conv | this.session_end).select(
        src=this.cp,
        dst=pw.if_else(this.conv, "(conversion)", "(exit)"),
        dwell=0,
    )
    grouped = incoming.concat_reindex(outgoing).groupby(this.src, this.dst).reduce(
        this.src, this.dst, count=pw.reducers.count(), dwell_ms_total=pw.reducers.sum(this.dwell)
    )

    # Journeys.
    j = steps.groupby(this.customer).reduce(
        this.customer,
        first_time=pw.reducers.min(this.t),
        last_time=pw.reducers.max(this.t),
        events=pw.reducers.count(),
        sessions=pw.reducers.sum(pw.cast(int, this.new_session)),
        session_start=pw.reducers.max(pw.if_else(this.new_session, this.t, MIN_MS)),
        conversions=pw.reducers.sum(pw.cast(int, this.conv)),
        last_conversion=pw.reducers.max(pw.if_else(this.conv, this.t, MIN_MS)),
        value_micros=pw.reducers.sum(this.v),
    )
    # The last session's events: those at or after its start (no earlier event shares its time,
    # since the gap before a session start is > the session gap >= 0).
    in_last = steps.select(this.customer, this.t, start=j.ix_ref(this.customer).session_start)
    session_events = in_last.filter(this.t >= this.start).groupby(this.customer).reduce(
        this.customer, n=pw.reducers.count()
    )
    # The path: the last event and path_length - 1 steps back along prev.
    tail = steps.filter(this.next.is_none()).select(this.customer, c0=this.cp, p=this.prev)
    for k in range(1, path_length):
        back = steps.ix(tail.p, optional=True)
        tail = tail.select(*pw.this.without("p"), **{f"c{k}": back.cp}, p=back.prev)
    cps = [this[f"c{k}"] for k in range(path_length - 1, -1, -1)]  # oldest first
    path = tail.with_id_from(this.customer).select(
        this.customer,
        last_cp=this.c0,
        path=udf(pw, lambda *cs: [c for c in cs if c is not None], list[str])(*cps),
    )
    # Events without a channel count under "" (no channel is blank: a blank one is none) and are
    # dropped by the UDFs below, so that every customer has a row here: `ix_ref(optional=True)`
    # on a table without the customer panicked in Pathway 0.33 when no event had a channel.
    per_channel = (
        steps.select(this.customer, channel_or_blank=pw.coalesce(this.channel, ""))
        .groupby(this.customer, this.channel_or_blank)
        .reduce(this.customer, this.channel_or_blank, n=pw.reducers.count())
    )
    channels = per_channel.groupby(this.customer).reduce(
        this.customer, pairs=pw.reducers.sorted_tuple(pw.make_tuple(this.channel_or_blank, this.n))
    )
    ch = channels.ix_ref(j.customer)
    journeys = j.select(
        this.customer,
        journey_key=None,
        first_time=this.first_time,
        last_time=this.last_time,
        events=this.events,
        sessions=this.sessions,
        session_start=this.session_start,
        session_events=session_events.ix_ref(this.customer).n,
        session_duration_ms=this.last_time - this.session_start,
        path=path.ix_ref(this.customer).path,
        last_contact_point=path.ix_ref(this.customer).last_cp,
        channels=udf(pw, lambda ps: [c for c, _ in ps if c], list[str])(ch.pairs),
        channel_events=udf(pw, lambda ps: [(c, n) for c, n in ps if c], list[tuple[str, int]])(ch.pairs),
        converted=this.conversions > 0,
        conversions=this.conversions,
        last_conversion_time=pw.if_else(this.last_conversion == MIN_MS, None, this.last_conversion),
        value=this.value_micros / 1_000_000,
        value_micros=this.value_micros,
    )
    return grouped, journeys


# The per-customer UDF's result (method `tuple`), in this order.
SEQUENCE_FIELDS = (
    ("first_time", int), ("last_time", int), ("events", int), ("sessions", int), ("session_start", int),
    ("session_events", int), ("session_duration_ms", int), ("path", list[str]), ("last_contact_point", str),
    ("channels", list[str]), ("channel_events", list[tuple[str, int]]), ("conversions", int),
    ("last_conversion_time", int | None), ("value_micros", int), ("edges", list[tuple[str, str, int, int]]),
)


def customer_sequence(events, gap_ms, path_length, bug="none"):
    """One customer's events, sorted by (time, line), to the journey fields and the customer's
    edge counts [(from, to, count, dwell total)] (the `tuple` method's UDF)."""
    edges = {}

    def edge(src, dst, dwell):
        e = edges.get((src, dst))
        if e is None:
            edges[(src, dst)] = [1, dwell]
        else:
            e[0] += 1
            e[1] += dwell

    sessions = session_start = session_events = conversions = value = 0
    last_conversion = prev_t = prev_cp = None
    prev_conv = False
    channels = {}
    for t, _line, cp, conv, channel, v in events:
        gap = None if prev_t is None else t - prev_t
        if gap is None or (gap >= gap_ms if bug == "gap>=" else gap > gap_ms):
            if prev_t is not None and not prev_conv:
                edge(prev_cp, "(exit)", 0)
            sessions += 1
            session_start, session_events = t, 0
            edge("(start)", cp, 0)
        elif prev_conv:
            edge("(start)", cp, 0)
        else:
            edge(prev_cp, cp, gap)
        session_events += 1
        if conv:
            edge(cp, "(conversion)", 0)
            conversions += 1
            last_conversion = t
        value += v
        if channel is not None:
            channels[channel] = channels.get(channel, 0) + 1
        prev_t, prev_cp, prev_conv = t, cp, conv
    if not prev_conv:
        edge(prev_cp, "(exit)", 0)
    names = sorted(channels)
    return (
        events[0][0], prev_t, len(events), sessions, session_start, session_events, prev_t - session_start,
        [e[2] for e in events[-path_length:]], prev_cp, names, [(c, channels[c]) for c in names],
        conversions, last_conversion, value, [(s, d, n, w) for (s, d), (n, w) in edges.items()],
    )


def views_by_tuple(pw, ev, gap_ms, path_length, bug):
    """Per-customer logic: a sorted_tuple of each customer's events and a Python UDF over it.
    Returns (edge counts per (src, dst), journeys)."""
    this = pw.this
    # `ties`: equal times in reverse input order
    line = -ev.line if bug == "ties" else ev.line
    seq = ev.groupby(ev.customer).reduce(
        ev.customer,
        events=pw.reducers.sorted_tuple(pw.make_tuple(ev.t, line, ev.cp, ev.conv, ev.channel, ev.v)),
    )
    result = tuple[tuple(t for _, t in SEQUENCE_FIELDS)]
    fn = udf(pw, lambda events: customer_sequence(events, gap_ms, path_length, bug), result)
    seq = seq.select(this.customer, r=fn(this.events))
    fields = {name: this.r[i] for i, (name, _t) in enumerate(SEQUENCE_FIELDS)}
    edges = fields.pop("edges")
    journeys = seq.select(this.customer, journey_key=None, **fields).select(
        *pw.this.without("conversions", "last_conversion_time", "value_micros"),
        converted=this.conversions > 0,
        conversions=this.conversions,
        last_conversion_time=this.last_conversion_time,
        value=this.value_micros / 1_000_000,
        value_micros=this.value_micros,
    )
    grouped = seq.select(e=edges).flatten(this.e).select(
        src=this.e[0], dst=this.e[1], n=this.e[2], w=this.e[3]
    ).groupby(this.src, this.dst).reduce(
        this.src, this.dst, count=pw.reducers.sum(this.n), dwell_ms_total=pw.reducers.sum(this.w)
    )
    return grouped, journeys


VIEW_NAMES = ("transitions", "journeys", "segments")


def write_views(pw, views, out_dir):
    for name, table in zip(VIEW_NAMES, views):
        pw.io.jsonlines.write(table, str(out_dir / f"{name}.jsonl"))


def child_main(args):
    started = time.perf_counter()
    import logging

    import pathway as pw

    # Pathway logs every connector step at INFO and each source's end at WARNING; keep its errors
    # (a row it cannot parse is logged as an ERROR and dropped, which the equality check catches).
    logging.basicConfig(level=logging.ERROR, format="[%(asctime)s]:%(levelname)s:%(message)s")

    imported = time.perf_counter()
    out_dir = Path(args.child_out)
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = input_schema(pw)
    csv_table = pw.io.csv.read(args.prepared, schema=schema, mode="static")
    figures = {"import_s": imported - started, "pathway": pw.__version__,
               "threads": os.environ.get("PATHWAY_THREADS")}
    if args.child == "bulk":
        views = build_views(pw, csv_table, args.session_gap_ms, args.path_length, args.method, args.semantics_bug)
        write_views(pw, views, out_dir)
        built = time.perf_counter()
        pw.run(monitoring_level=pw.MonitoringLevel.NONE, default_logging=False)
        done = time.perf_counter()
        figures.update(build_s=built - imported, run_s=done - built)
    else:
        figures.update(stream_child(pw, args, schema, csv_table, out_dir, imported))
    (out_dir / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")


def stream_child(pw, args, schema, csv_table, out_dir, imported):
    """Streaming run: the CSV, then --batches batches pushed through a Python connector."""
    with open(args.updates) as f:
        updates = json.load(f)
    batches = [updates[i * args.batch_size:(i + 1) * args.batch_size] for i in range(args.batches)]
    state = {"events": 0, "target": args.expected_events, "target_time": None, "closed": None}
    lock = threading.Lock()
    reached = threading.Event()
    marks = {}  # batch -> (pushed, committed, closed) perf_counter times
    this = pw.this

    class Updates(pw.io.python.ConnectorSubject):
        def run(self):
            # Empty commits until the CSV is processed: a Python source that has never committed
            # holds back the frontier, so the CSV's time would never close.
            deadline = time.perf_counter() + args.timeout
            while not reached.wait(0.01):
                self.commit()
                if time.perf_counter() > deadline:
                    raise SystemExit("the CSV was not processed in time")
            marks[0] = (None, None, state["closed"])
            for b, rows in enumerate(batches, start=1):
                with lock:
                    reached.clear()
                    state["target"] = args.expected_events + sum(len(x) for x in batches[:b])
                    state["target_time"] = None
                pushed = time.perf_counter()
                for row in rows:
                    self.next(**row)
                self.commit()
                committed = time.perf_counter()
                if not reached.wait(args.timeout):
                    raise SystemExit(f"batch {b} was not processed in time")
                marks[b] = (pushed, committed, state["closed"])

    stream_table = pw.io.python.read(Updates(), schema=schema, autocommit_duration_ms=None)
    raw = csv_table.concat_reindex(stream_table)
    views = build_views(pw, raw, args.session_gap_ms, args.path_length, args.method, args.semantics_bug)
    transitions, journeys, segments = views
    if args.stream_sink == "jsonlines":
        write_views(pw, views, out_dir)
    else:  # in memory: each view's rows with their multiplicities, written out after the run
        kept = {name: {} for name in VIEW_NAMES}

        def keeper(rows):
            def on_change(key, row, time, is_addition):
                frozen = json.dumps(row, sort_keys=True)
                rows[frozen] = rows.get(frozen, 0) + (1 if is_addition else -1)
            return on_change

        for name, table in zip(VIEW_NAMES, views):
            pw.io.subscribe(table, on_change=keeper(kept[name]))
    # The probe: each journey row's event count (every batch changes some), plus the other two
    # views through filters that pass nothing: the probe's time only closes once every view has
    # processed it.
    probe = journeys.select(e=this.events).concat_reindex(
        transitions.filter(this.count < 0).select(e=this.count),
        segments.filter(this.members < 0).select(e=this.members),
    )

    def on_change(key, row, time, is_addition):
        with lock:
            state["events"] += row["e"] if is_addition else -row["e"]
            if state["events"] == state["target"]:
                state["target_time"] = time

    def on_time_end(time):
        with lock:
            if state["target_time"] is not None and time >= state["target_time"] and not reached.is_set():
                state["closed"] = time_now()
                reached.set()

    time_now = time.perf_counter
    pw.io.subscribe(probe, on_change=on_change, on_time_end=on_time_end)
    built = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE, default_logging=False)
    done = time.perf_counter()
    if len(marks) != len(batches) + 1:
        raise SystemExit(f"only {len(marks) - 1} of {len(batches)} batches were processed")
    if args.stream_sink != "jsonlines":
        for name in VIEW_NAMES:
            with open(out_dir / f"{name}.jsonl", "w") as f:
                for frozen, n in kept[name].items():
                    if n:
                        f.write(frozen[:-1] + f', "diff": {n}}}\n')
    latencies = [marks[b][2] - marks[b][0] for b in range(1, len(batches) + 1)]
    push = [marks[b][1] - marks[b][0] for b in range(1, len(batches) + 1)]
    return {"build_s": built - imported, "bulk_s": marks[0][2] - built, "run_s": done - built,
            "latencies_s": latencies, "push_s": push, "sink": args.stream_sink}


# =============================================================================================
# Driver


def run_measured(cmd, env=None, timeout=None):
    """Runs a child; returns (wall seconds, peak RSS MiB) from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    deadline = None if timeout is None else started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise SystemExit(f"timed out after {timeout:.0f} s: {' '.join(map(str, cmd))}")
        time.sleep(0.01)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"exit code {proc.returncode}: {' '.join(map(str, cmd))}")
    return wall, usage.ru_maxrss / 1024


def stepstone_cmd(args, csv_path, out_dir, extra_inputs=()):
    cmd = [args.stepstone, "run", "-q", "--input", str(csv_path)]
    for extra in extra_inputs:
        cmd += ["--input", str(extra)]
    gap = args.session_gap_ms
    cmd += ["--conversion", "kind=" + "|".join(CONVERSION_KINDS),
            "--session-gap", f"{gap // 60000}m" if gap % 60000 == 0 else f"{gap}ms",
            "--path-length", str(args.path_length)]
    for name, rule, _predicate in SEGMENTS:
        cmd += ["--segment", f"{name}={rule}"]
    return cmd + ["-w", str(args.workers), "--out", str(out_dir)]


def stepstone_run(args, csv_path, out_dir, extra_inputs=()):
    cmd = stepstone_cmd(args, csv_path, out_dir, extra_inputs)
    wall, rss = run_measured(cmd)
    summary = json.loads((out_dir / "summary.json").read_text())
    return summary, wall, rss, cmd


def prepare(csv_path, rejected_lines, out_path):
    """The CSV with `line,` prepended (header = line 1) and Stepstone's rejected lines dropped.
    Returns (seconds, rows kept, last line kept)."""
    started = time.perf_counter()
    data = Path(csv_path).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    header = lines[0].rstrip(b"\r").decode()
    if tuple(header.split(",")) != CSV_COLUMNS:
        raise SystemExit(f"unexpected header {header!r}; expected {','.join(CSV_COLUMNS)}")
    out = [b"line," + lines[0]]
    last = 0
    for number, line in enumerate(lines[1:], start=2):
        if number not in rejected_lines:
            out.append(b"%d,%s" % (number, line))
            last = number
    out_path.write_bytes(b"\n".join(out) + b"\n")
    return time.perf_counter() - started, len(out) - 1, last


def pathway_child(args, mode, method, prepared, out_dir, extra=()):
    env = dict(os.environ, PATHWAY_THREADS=str(args.threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--method", method,
           "--prepared", str(prepared), "--child-out", str(out_dir),
           "--session-gap-ms", str(args.session_gap_ms), "--path-length", str(args.path_length),
           "--semantics-bug", args.semantics_bug,
           "--timeout", str(args.timeout), "--stream-sink", args.stream_sink, *extra]
    wall, rss = run_measured(cmd, env=env, timeout=args.timeout)
    figures = json.loads((out_dir / "figures.json").read_text())
    return figures, wall, rss


# ---------------------------------------------------------------------------------------------
# Reading and comparing the outputs


def read_jsonl_view(path, key_columns, value_columns):
    """Consolidates a Pathway jsonlines sink (rows with diff) into {key: values}."""
    counts = {}
    with open(path) as f:
        for raw in f:
            d = json.loads(raw)
            diff = d.pop("diff")
            d.pop("time", None)
            row = (tuple(freeze(d[k]) for k in key_columns), tuple(freeze(d[v]) for v in value_columns))
            counts[row] = counts.get(row, 0) + diff
    out = {}
    for (key, values), n in counts.items():
        if n == 0:
            continue
        if n != 1 or key in out:
            raise SystemExit(f"{path}: key {key} present {n} times")
        out[key] = values
    return out


def freeze(x):
    return tuple(freeze(y) for y in x) if isinstance(x, list) else x


def arrow_view(dv, path, key_columns, value_columns):
    rows = dv.table_rows(dv.read_arrow(path), key_columns, value_columns)
    out = {}
    for k, v in rows.items():
        v = list(v)
        for i, name in enumerate(value_columns):
            if name == "channel_events":
                v[i] = tuple((e["channel"], e["events"]) for e in v[i])
            elif isinstance(v[i], list):
                v[i] = tuple(v[i])
        out[k] = tuple(v)
    return out


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return a == b or abs(a - b) <= REL_TOL * max(abs(a), abs(b))
    return a == b


def compare(label, ours, theirs, names, show=10):
    diffs = []
    exact_floats = inexact_floats = 0
    for key in sorted(set(ours) | set(theirs), key=repr):
        a, b = ours.get(key), theirs.get(key)
        if a is None:
            diffs.append(f"  {key}: only in Stepstone: {dict(zip(names, b))}")
        elif b is None:
            diffs.append(f"  {key}: only in Pathway: {dict(zip(names, a))}")
        else:
            bad = [f"{n}: pathway={x!r} stepstone={y!r}" for n, x, y in zip(names, a, b) if not same(x, y)]
            if bad:
                diffs.append(f"  {key}: " + "; ".join(bad))
            for x, y in zip(a, b):
                if isinstance(y, float):
                    exact_floats += x == y
                    inexact_floats += x != y
    status = "EQUAL" if not diffs else f"{len(diffs)} DIFFERENCES"
    n_floats = exact_floats + inexact_floats
    floats = f", floats bit-identical {exact_floats}/{n_floats}" if n_floats else ""
    print(f"  {label:<12} {len(ours):>8} rows (Pathway) {len(theirs):>8} rows (Stepstone)  {status}{floats}")
    for d in diffs[:show]:
        print("   " + d)
    if len(diffs) > show:
        print(f"     … and {len(diffs) - show} more")
    return len(diffs)


def check(dv, pw_dir, out_dir, what):
    print(what)
    total = 0
    names = ["count", "dwell_ms_total", "dwell_ms_mean", "probability"]
    total += compare(
        "transitions",
        read_jsonl_view(pw_dir / "transitions.jsonl", ["src", "dst"], names),
        arrow_view(dv, out_dir / "transitions.arrow", ["from", "to"], names),
        names,
    )
    names = list(dv.JOURNEY_FIELDS)
    ours = read_jsonl_view(pw_dir / "journeys.jsonl", ["customer", "journey_key"], names)
    total += compare("journeys", ours,
                     arrow_view(dv, out_dir / "journeys.arrow", ["customer", "journey_key"], names), names)
    names = ["members", "value", "converted_members", "conversion_rate"]
    total += compare(
        "segments",
        read_jsonl_view(pw_dir / "segments.jsonl", ["segment"], names),
        arrow_view(dv, out_dir / "segments.arrow", ["segment"], names),
        names,
    )
    events = sum(v[dv.JOURNEY_FIELDS.index("events")] for v in ours.values())
    return total, events


# ---------------------------------------------------------------------------------------------
# The update batches (the continuation duckdb_views.py makes)


def update_rows(rows, max_line):
    """The continuation's events (`duckdb_views.continuation`) as rows for Pathway, numbered as
    lines after the workload's."""
    return [{"line": max_line + 1 + i, **{c: r[c] for c in CSV_COLUMNS}} for i, r in enumerate(rows)]


# ---------------------------------------------------------------------------------------------


def fmt(xs, unit="s"):
    m, lo, hi = statistics.median(xs), min(xs), max(xs)
    if unit == "s":
        return f"{m:.3f} s ({lo:.3f}–{hi:.3f})"
    if unit == "ms":
        return f"{m:.1f} ms ({lo:.1f}–{hi:.1f})"
    return f"{m:.0f} {unit} ({lo:.0f}–{hi:.0f})"


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))]


def main():
    args = parse_args()
    if args.child:
        return child_main(args)
    sys.path.insert(0, str(HERE))
    import duckdb_views as dv  # the shared Stepstone helpers (arrow reading, dead letters, bench)
    import pyarrow as pa

    methods = [m for m in args.methods.split(",") if m]
    if not methods or any(m not in METHODS for m in methods):
        raise SystemExit(f"--methods: a comma-separated list of {', '.join(METHODS)}")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    csv_path = dv.workload_csv(args, work)
    out_dir = work / f"stepstone-out-{csv_path.stem}"
    tag = "" if args.semantics_bug == "none" else "-bug-" + args.semantics_bug.replace(">=", "ge")
    prepared = work / f"pathway-input-{csv_path.stem}.csv"
    version = subprocess.run([sys.executable, "-c", "import pathway; print(pathway.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    load_before = os.getloadavg()[0]
    print(f"workload {csv_path} ({csv_path.stat().st_size / 2**20:.1f} MiB); pathway {version}, "
          f"pyarrow {pa.__version__}; Pathway threads {args.threads}, Stepstone workers {args.workers}; "
          f"methods {', '.join(methods)}; {os.cpu_count()} CPUs; load average {load_before:.2f}", flush=True)
    if args.semantics_bug != "none":
        print(f"DELIBERATE SEMANTICS BUG in Pathway: {args.semantics_bug}")

    # Bulk: interleaved repetitions, Stepstone first (its dead letters name the rows to drop).
    step = {"elapsed": [], "wall": [], "rss": []}
    pw_runs = {m: {"prep": [], "run": [], "total": [], "import": [], "wall": [], "rss": []} for m in methods}
    rejected_lines = None
    for rep in range(args.reps):
        summary, wall, rss, cmd = stepstone_run(args, csv_path, out_dir)
        step["elapsed"].append(summary["elapsed_seconds"])
        step["wall"].append(wall)
        step["rss"].append(rss)
        lines = dv.read_rejected(out_dir, csv_path)
        if rejected_lines is not None and lines != rejected_lines:
            raise SystemExit("Stepstone rejected different lines in two runs")
        rejected_lines = lines
        report = [f"rep {rep + 1}/{args.reps}  stepstone {summary['elapsed_seconds']:.3f} s "
                  f"(process {wall:.3f} s, {rss:.0f} MiB)"]
        for m in methods:
            prep_s, kept, max_line = prepare(csv_path, rejected_lines, prepared)
            figures, wall, rss = pathway_child(args, "bulk", m, prepared,
                                               work / f"pathway-out-{m}-{csv_path.stem}{tag}")
            r = pw_runs[m]
            r["prep"].append(prep_s)
            r["run"].append(figures["run_s"])
            r["total"].append(prep_s + figures["run_s"])
            r["import"].append(figures["import_s"])
            r["wall"].append(wall)
            r["rss"].append(rss)
            report.append(f"pathway/{m} prep {prep_s:.3f} + pw.run {figures['run_s']:.3f} = {r['total'][-1]:.3f} s "
                          f"(process {wall:.3f} s, {rss:.0f} MiB)")
        print("   ".join(report), flush=True)
    print(f"events {kept} (Stepstone: {summary['events']}), rejected lines {len(rejected_lines)} "
          f"(Stepstone: {summary['rejected_total']})")

    diffs = 0
    equal = {}
    for m in methods:
        d, pw_events = check(dv, work / f"pathway-out-{m}-{csv_path.stem}{tag}", out_dir,
                             f"equality check (Pathway/{m} vs Stepstone snapshot):")
        if pw_events != summary["events"] or kept != summary["events"]:
            print(f"  event count differs: Pathway journeys {pw_events}, prepared rows {kept}, "
                  f"Stepstone {summary['events']}")
            d += 1
        equal[m] = d == 0
        diffs += d

    result = {
        "workload": {"csv": str(csv_path), "events": summary["events"], "rejected": len(rejected_lines),
                     "customers": summary["customers"]},
        "versions": {"pathway": version, "pyarrow": pa.__version__, "python": sys.version.split()[0]},
        "settings": {"pathway_threads": args.threads, "stepstone_workers": args.workers, "reps": args.reps,
                     "session_gap_ms": args.session_gap_ms, "path_length": args.path_length, "methods": methods,
                     "stepstone_command": cmd, "cpus": os.cpu_count(), "semantics_bug": args.semantics_bug,
                     "load_average_1m_at_start": load_before,
                     "pathway_bulk_mode": "static (pw.io.csv.read mode=static, pw.io.jsonlines.write)"},
        "equal": diffs == 0,
        "equal_by_method": equal,
        "differences": diffs,
        "bulk": {"stepstone_elapsed_s": step["elapsed"], "stepstone_process_s": step["wall"],
                 "stepstone_peak_rss_mib": step["rss"],
                 "pathway": {m: {"prep_s": r["prep"], "run_s": r["run"], "total_s": r["total"],
                                 "import_s": r["import"], "process_s": r["wall"], "peak_rss_mib": r["rss"]}
                             for m, r in pw_runs.items()}},
    }
    m_step = statistics.median(step["elapsed"])
    print()
    print(f"bulk, {summary['events']} events (median of {args.reps}, min–max)")
    print(f"  stepstone run -w {args.workers}            {fmt(step['elapsed'])}  (process wall {fmt(step['wall'])}); "
          f"peak RSS {fmt(step['rss'], 'MiB')}")
    for m, r in pw_runs.items():
        print(f"  pathway/{m:<6} prep + pw.run  {fmt(r['total'])}  (prep {fmt(r['prep'])}, pw.run {fmt(r['run'])}; "
              f"process wall {fmt(r['wall'])} incl. import {fmt(r['import'])}); peak RSS {fmt(r['rss'], 'MiB')}")
        print(f"    ratio pathway/{m} / stepstone: time {statistics.median(r['total']) / m_step:.1f}, process walls "
              f"{statistics.median(r['wall']) / statistics.median(step['wall']):.1f}, peak RSS "
              f"{statistics.median(r['rss']) / statistics.median(step['rss']):.1f}", flush=True)

    if args.batches > 0 and diffs == 0:
        journeys = dv.read_arrow(out_dir / "journeys.arrow")
        first = min(journeys.column("first_time").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist())
        last = max(journeys.column("last_time").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist())
        continued, moved_path = dv.continuation(args, work, csv_path, first, last)
        rows = update_rows(continued, max_line)
        updates_json = work / f"pathway-updates-{csv_path.stem}-{len(rows)}.json"
        updates_json.write_text(json.dumps(rows))
        updated_dir = work / f"stepstone-out-{csv_path.stem}-updated"
        stepstone_run(args, csv_path, updated_dir, [moved_path])
        print()
        print(f"update batches of {args.batch_size} events on top of {kept}: Pathway streaming (CSV static "
              f"reader + Python connector), {args.batches} batches, each pushed once the previous one is out; "
              f"{args.inc_reps} rep(s), each a `stepstone-bench` (if --bench-json run) then every method")
        inc_runs = {m: [] for m in methods}
        bench_runs = []
        for rep in range(args.inc_reps):
            if rep == 0 or args.bench_json == "run":
                inc, source = dv.stepstone_incremental(args, work)
                if inc and args.workers in inc:
                    b = inc[args.workers]
                    bench_runs.append({"source": source, **b})
                    print(f"  rep {rep + 1}/{args.inc_reps}  stepstone incremental w={args.workers} "
                          f"p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms "
                          f"(from {source}; load average {os.getloadavg()[0]:.2f})", flush=True)
            for m in methods:
                stream_dir = work / f"pathway-stream-{m}-{csv_path.stem}{tag}"
                figures, wall, rss = pathway_child(
                    args, "stream", m, prepared, stream_dir,
                    ["--updates", str(updates_json), "--batches", str(args.batches),
                     "--batch-size", str(args.batch_size), "--expected-events", str(kept)],
                )
                lat = [x * 1000 for x in figures["latencies_s"]]
                print(f"  rep {rep + 1}/{args.inc_reps}  pathway/{m:<6} per batch p50 {percentile(lat, 50):.1f} ms, "
                      f"p99 {percentile(lat, 99):.1f} ms (min {min(lat):.1f}, max {max(lat):.1f}); streaming bulk "
                      f"(CSV fully processed) {figures['bulk_s']:.3f} s; process wall {wall:.3f} s, peak RSS "
                      f"{rss:.0f} MiB; load average {os.getloadavg()[0]:.2f}", flush=True)
                after, after_events = check(dv, stream_dir, updated_dir,
                                            f"  equality check after the {args.batches} batches "
                                            f"(Stepstone run on the CSV, then {moved_path.name}):")
                if after_events != kept + len(rows):
                    print(f"  event count differs after the batches: Pathway {after_events}, "
                          f"expected {kept + len(rows)}")
                    after += 1
                inc_runs[m].append({
                    "latency_ms": lat, "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
                    "push_ms": [x * 1000 for x in figures["push_s"]], "stream_bulk_s": figures["bulk_s"],
                    "process_s": wall, "peak_rss_mib": rss, "equal_after_batches": after == 0,
                    "load_average_1m": os.getloadavg()[0],
                })
                equal[m] = equal[m] and after == 0
                diffs += after
        result["equal"], result["differences"] = diffs == 0, diffs
        result["incremental"] = {"batch_size": args.batch_size, "batches": args.batches, "reps": args.inc_reps,
                                 "pathway": inc_runs, "stepstone_bench": bench_runs}
        print(f"\nincremental, batches of {args.batch_size} on top of {kept} events (median of the runs' p50 and "
              f"p99, min–max over runs)")
        if bench_runs:
            s50, s99 = [b["p50_ms"] for b in bench_runs], [b["p99_ms"] for b in bench_runs]
            print(f"  stepstone w={args.workers}  p50 {fmt(s50, 'ms')}, p99 {fmt(s99, 'ms')}  "
                  f"({len(bench_runs)} bench run(s), open loop: a batch every 20 ms)")
        for m, runs in inc_runs.items():
            p50, p99 = [r["p50_ms"] for r in runs], [r["p99_ms"] for r in runs]
            ratio = ""
            if bench_runs:
                ratio = (f";  ratio to stepstone p50 {statistics.median(p50) / statistics.median(s50):.0f}, "
                         f"p99 {statistics.median(p99) / statistics.median(s99):.0f}")
            print(f"  pathway/{m:<6} p50 {fmt(p50, 'ms')}, p99 {fmt(p99, 'ms')}  (closed loop){ratio}")

    result["settings"]["load_average_1m_at_end"] = os.getloadavg()[0]
    print(f"\nload average {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    out_json = Path(args.out_json) if args.out_json else work / f"pathway-peer-{csv_path.stem}{tag}.json"
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out_json}")
    if diffs:
        print(f"NOT EQUAL: {diffs} differences; the timings above do not count", file=sys.stderr)
        sys.exit(1)
    print("outputs EQUAL")


if __name__ == "__main__":
    main()
