#!/usr/bin/env python3
"""Writes an adversarial CSV for the DuckDB peer's equality check: few customers, times on a
minute grid (many equal times and gaps of exactly 30 min), conversions mid-session, empty and
blank channels and kinds, out-of-order rows and every kind of malformed row.

    python3 benches/peers/fuzz_csv.py target/peers/fuzz.csv
    benches/peers/run.sh --input target/peers/fuzz.csv --reps 1 --batches 0 --bench-json none
"""

import datetime as dt
import random
import sys

EVENTS = 20_000
CUSTOMERS = 300
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def fmt(ms):
    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def main(path, seed=7):
    rng = random.Random(seed)
    cps = ["home", "pricing", "checkout", "help", "search", "cart"]
    channels = ["web", "app", "email", "", " "]
    kinds = ["view", "view", "view", "click", "purchase", "signup", ""]
    lines = ["customer,time,channel,contact_point,kind,value,intent,device"]
    for _ in range(EVENTS):
        c = f"c{rng.randint(1, CUSTOMERS):03d}"
        # Whole, half and quarter minutes over ~2 days, in random order.
        t = START_MS + int(rng.randint(0, 3000) * 60_000 * rng.choice([1, 1, 1, 0.5, 0.25]))
        value = "" if rng.random() < 0.7 else f"{rng.randint(0, 99999) / 100:.2f}"
        r = rng.random()
        if r < 0.003:
            lines.append(f",{fmt(t)},web,home,view,,x,y")  # no customer
        elif r < 0.006:
            lines.append(f"{c},2026-13-45 99:00,web,home,view,,x,y")  # bad time
        elif r < 0.009:
            lines.append(f"{c},{fmt(t)},web,home,view,abc,x,y")  # bad value
        elif r < 0.012:
            lines.append(f"{c},{fmt(t)},web,home,view")  # 5 of 8 fields
        elif r < 0.014:
            lines.append(f"{c},{fmt(t)},web,,view,,x,y")  # no contact point
        else:
            lines.append(f"{c},{fmt(t)},{rng.choice(channels)},{rng.choice(cps)},{rng.choice(kinds)},{value},x,y")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} rows to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/peers/fuzz.csv")
