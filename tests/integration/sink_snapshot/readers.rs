//! The snapshot files read back: the same bytes whatever order the names were interned in, and,
//! when Python has them, pyarrow, duckdb and polars reading the files.

use std::process::Command;
use std::sync::Arc;

use stepstone::sink::arrow_tables::SnapshotBatches;
use stepstone::sink::update::Update;
use stepstone::sink::{DeltaWriter, SnapshotWriter, Tables};
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::symbols::Symbols;

use super::*;

/// Every name that [`updates`] and [`later_updates`] use, sorted.
const NAMES: [&str; 14] =
    ["browsers", "buyers", "c1", "c2", "cart", "checkout", "email", "faq", "home", "idle", "k1", "k2", "search", "web"];

/// Changes after [`updates`]: rows of `c1` and `c2` change, `c1`/`k2` leaves, memberships end
/// and begin (one of a keyed journey), an edge appears and one disappears.
fn later_updates(s: &Symbols) -> Vec<Update> {
    let member = |segment: &str, customer: &str, key: Option<&str>, diff: i64| {
        Update::Membership(
            (
                s.intern(segment),
                JourneyId { customer: s.intern(customer), anonymous: false, key: key.map(|k| s.intern(k)) },
            ),
            diff,
        )
    };
    vec![
        member("browsers", "c2", None, 1),
        Update::journey(row(s, "c2", None, &["home", "search", "cart", "checkout", "home"], 1, 42_500_000), 1),
        Update::journey(row(s, "c1", None, &["home", "search", "faq"], 0, 0), 1),
        member("browsers", "c1", Some("k1"), 1),
        member("browsers", "c1", None, 1),
        Update::journey(row(s, "c2", None, &["home", "search", "cart", "checkout"], 1, 42_500_000), -1),
        Update::journey(row(s, "c1", Some("k2"), &["home"], 0, 0), -1),
        Update::journey(row(s, "c1", None, &["home", "search"], 0, 0), -1),
        member("buyers", "c2", None, -1),
        member("buyers", "c1", None, -1),
        Update::Transition(pair(s, "search", "faq"), (1, 4_000)),
        Update::Transition(pair(s, "cart", "checkout"), (-1, -60_000)),
        Update::SegmentChannel(pair(s, "browsers", "email"), 2),
        Update::Segment(s.intern("browsers"), (2, 0, 0)),
    ]
}

#[test]
fn output_does_not_depend_on_the_interning_order() {
    // The same names interned in opposite orders, so that their ids order oppositely.
    let (forward, backward) = (symbols(), symbols());
    for name in NAMES {
        forward.intern(name);
    }
    for name in NAMES.iter().rev() {
        backward.intern(name);
    }
    for (a, b) in [("c1", "c2"), ("k1", "k2"), ("email", "web"), ("browsers", "buyers"), ("cart", "home")] {
        assert!(forward.get(a) < forward.get(b) && backward.get(a) > backward.get(b), "{a} {b}");
    }

    // Applies both times, writing deltas, then builds the snapshot batches.
    let dir = tempfile::tempdir().unwrap();
    let run = |s: &Arc<Symbols>, file: &str| {
        let path = dir.path().join(file);
        let mut tables = Tables::new(vec![s.intern("idle"), s.intern("buyers")]);
        let mut deltas = DeltaWriter::create(&path, s.clone()).unwrap();
        for (time, updates) in [(7, updates(s)), (8, later_updates(s))] {
            deltas.write(&tables.apply(time, &updates)).unwrap();
        }
        deltas.flush().unwrap();
        let batches = SnapshotBatches::build(&tables, s, "2026-01-01T00:00:00.000Z").unwrap();
        (batches, std::fs::read_to_string(&path).unwrap())
    };
    let (forward_batches, forward_lines) = run(&forward, "forward.jsonl");
    let (backward_batches, backward_lines) = run(&backward, "backward.jsonl");

    for ((table, a), (_, b)) in forward_batches.named().into_iter().zip(backward_batches.named()) {
        assert!(a.num_rows() > 1, "{table}");
        assert_eq!(a, b, "{table}");
    }
    assert_eq!(forward_lines, backward_lines);

    // And the order is the names': at time 8, removals (journeys, then memberships), then
    // insertions, each sorted by segment, customer and journey key names.
    let lines: Vec<serde_json::Value> = forward_lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let text = |l: &serde_json::Value, key: &str| l[key].as_str().map(str::to_owned);
    let at_8: Vec<_> = lines
        .iter()
        .filter(|l| l["time"] == 8)
        .map(|l| {
            (l["diff"].as_i64().unwrap(), text(l, "segment"), text(l, "customer").unwrap(), text(l, "journey_key"))
        })
        .collect();
    let line = |diff: i64, segment: Option<&str>, customer: &str, key: Option<&str>| {
        (diff, segment.map(str::to_owned), customer.to_owned(), key.map(str::to_owned))
    };
    assert_eq!(
        at_8,
        [
            line(-1, None, "c1", None),
            line(-1, None, "c1", Some("k2")),
            line(-1, None, "c2", None),
            line(-1, Some("buyers"), "c1", None),
            line(-1, Some("buyers"), "c2", None),
            line(1, None, "c1", None),
            line(1, None, "c2", None),
            line(1, Some("browsers"), "c1", None),
            line(1, Some("browsers"), "c1", Some("k1")),
            line(1, Some("browsers"), "c2", None),
        ]
    );
    assert_eq!(lines[0]["channels"], serde_json::json!(["email", "web"]));
    assert_eq!(string_lists(&forward_batches.journeys, "channels")[0], ["email", "web"]);
}

/// Reads a snapshot with pyarrow, duckdb and polars and prints what they see as JSON.
const PYTHON_CHECK: &str = r#"
import json, sys
import duckdb, polars as pl, pyarrow.ipc as ipc, pyarrow.parquet as pq

d = sys.argv[1]
out = {"tables": {}}
for t in ["journeys", "transitions", "channel_transitions", "segments", "segment_channels"]:
    table = ipc.open_file(f"{d}/{t}.arrow").read_all()
    parquet = pq.read_table(f"{d}/{t}.parquet")
    out["tables"][t] = {
        "rows": table.num_rows,
        "columns": table.column_names,
        "time": table.schema.metadata[b"stepstone.logical_time"].decode(),
        "parquet_equal": parquet.equals(table),
    }
transitions = ipc.open_file(f"{d}/transitions.arrow").read_all()
out["sums"] = duckdb.sql(
    'select "from", sum(probability), sum("count") from transitions group by 1 order by 1'
).fetchall()
out["parquet_members"] = duckdb.sql(f"select sum(members) from '{d}/segments.parquet'").fetchall()[0][0]
out["parquet_kv"] = duckdb.sql(
    f"select decode(key), decode(value) from parquet_kv_metadata('{d}/journeys.parquet') "
    "where decode(key) like 'stepstone.%' order by 1"
).fetchall()
journeys = pl.read_ipc(f"{d}/journeys.arrow")
out["customers"] = journeys["customer"].to_list()
out["paths"] = journeys["path"].to_list()
out["value"] = journeys["value"].sum()
out["first_time_is_utc_ms"] = journeys["first_time"].dtype == pl.Datetime("ms", "UTC")
out["converted"] = pl.read_parquet(f"{d}/journeys.parquet")["converted"].to_list()
print(json.dumps(out))
"#;

#[test]
fn python_tools_read_the_snapshot() {
    let available = Command::new("python3").args(["-c", "import duckdb, polars, pyarrow"]).output();
    if !available.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 with duckdb, polars and pyarrow is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    SnapshotWriter::new(dir.path(), true, s.clone()).write(&tables(&s)).unwrap();
    let output = Command::new("python3").args(["-c", PYTHON_CHECK]).arg(dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    for table in TABLES {
        let batch = read_arrow(dir.path(), table);
        let t = &seen["tables"][table];
        assert_eq!(t["rows"], batch.num_rows(), "{table}");
        let columns: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(t["columns"], serde_json::json!(columns), "{table}");
        assert_eq!(t["time"], "7", "{table}");
        assert_eq!(t["parquet_equal"], true, "{table}");
    }
    assert_eq!(seen["sums"], serde_json::json!([["cart", 1.0, 1], ["home", 1.0, 4], ["search", 1.0, 2]]));
    assert_eq!(seen["parquet_members"], 5);
    assert_eq!(seen["parquet_kv"][0], serde_json::json!(["stepstone.logical_time", "7"]));
    assert_eq!(seen["customers"], serde_json::json!(["c1", "c1", "c1", "c2"]));
    assert_eq!(seen["paths"][3], serde_json::json!(["home", "search", "cart", "checkout"]));
    assert_eq!(seen["value"], 52.5);
    assert_eq!(seen["first_time_is_utc_ms"], true);
    assert_eq!(seen["converted"], serde_json::json!([false, true, false, true]));
}
