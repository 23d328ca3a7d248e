#!/usr/bin/env python3
"""The BPI Challenge 2012 log as a benchmark workload: the real log, in the generated columns.

`stepstone-bench --input FILE` and the peers (`benches/peers/run.sh --input FILE`,
`benches/peers/run_pathway.sh --input FILE`) read a CSV with the columns `stepstone generate`
writes. This writes the BPI Challenge 2012 log (`../shared/data/eventlogs/bpic2012.csv.gz`:
262,200 events of 13,087 loan applications, many of one case at the same millisecond) in those
columns, one line per event, in the log's order (which decides ties):

    customer       case:concept:name (the application)
    time           time:timestamp, as 2011-09-30T22:38:44.546Z (the log is all in UTC, with ms)
    channel        empty (the log has none)
    contact_point  concept:name (the activity, as process-mining tools read the log)
    kind           `signup` for A_APPROVED (the application approved: the conversion of the
                   benchmark pipeline, `kind=purchase|signup`), else lifecycle:transition
                   (COMPLETE, START, SCHEDULE)
    value, intent, device   empty

Usage: scripts/bpic2012_csv.py [LOG.csv.gz] [OUT.csv]   (defaults: the shared log,
target/bench-data/bpic2012.csv). Standard library only. Fails on a row it cannot convert.
"""

import csv
import datetime as dt
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOG = ROOT.parent / "shared/data/eventlogs/bpic2012.csv.gz"
DEFAULT_OUT = ROOT / "target/bench-data/bpic2012.csv"
COLUMNS = ("customer", "time", "channel", "contact_point", "kind", "value", "intent", "device")
CONVERSION_ACTIVITY = "A_APPROVED"


def iso_ms(text, line):
    """`text` (an ISO 8601 time with an offset) as UTC with milliseconds and a Z."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise SystemExit(f"line {line}: time:timestamp {text!r}: {error}")
    if when.tzinfo is None:
        raise SystemExit(f"line {line}: time:timestamp {text!r} has no offset")
    when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def main():
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_LOG
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"partial-{out.name}")
    events, cases = 0, set()
    with gzip.open(log, "rt", newline="") as source, open(partial, "w", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(COLUMNS)
        for line, row in enumerate(csv.DictReader(source), start=2):
            case, activity = row["case:concept:name"], row["concept:name"]
            if not case or not activity:
                raise SystemExit(f"line {line}: no case or no activity")
            kind = "signup" if activity == CONVERSION_ACTIVITY else row["lifecycle:transition"]
            writer.writerow((case, iso_ms(row["time:timestamp"], line), "", activity, kind, "", "", ""))
            events += 1
            cases.add(case)
    partial.rename(out)
    print(f"wrote {events} events of {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
