//! The snapshot files: the tables under the contract schema in Arrow IPC and Parquet, dwell
//! means and probabilities per `from`, row order independent of update order, the atomic
//! replacement of a previous snapshot, and empty tables without a logical time.

use std::collections::BTreeMap;
use std::fs::File;

use arrow::array::AsArray;
use arrow::ipc::reader::FileReader;
use stepstone::sink::update::Update;
use stepstone::sink::{SnapshotWriter, Tables};

use super::*;

#[test]
fn arrow_files_hold_the_tables_under_the_contract_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    let info = SnapshotWriter::new(dir.path(), false, s.clone()).write(&tables(&s)).unwrap();
    assert_eq!(info.time, Some(7));
    assert_eq!(
        (info.journeys, info.transitions, info.channel_transitions, info.segments, info.segment_channels),
        (4, 4, 2, 3, 3)
    );
    let expected_files: Vec<_> = TABLES.iter().map(|t| dir.path().join(format!("{t}.arrow"))).collect();
    assert_eq!(info.files, expected_files);
    assert_eq!(listing(dir.path()), file_names(&["arrow"]));

    for table in TABLES {
        let batch = read_arrow(dir.path(), table);
        check_contract(table, &format!("{table}.arrow"), &batch);
        assert_eq!(logical_time(&batch), Some("7"), "{table}");
        assert_eq!(batch.schema().metadata().get("stepstone.snapshot_wall_time"), Some(&info.wall_time), "{table}");
    }

    // Journeys: sorted by customer, then journey key (none first).
    let journeys = read_arrow(dir.path(), "journeys");
    let ids: Vec<(Option<String>, Option<String>)> =
        strings(&journeys, "customer").into_iter().zip(strings(&journeys, "journey_key")).collect();
    let id = |c: &str, k: Option<&str>| (Some(c.to_owned()), k.map(str::to_owned));
    assert_eq!(ids, [id("c1", None), id("c1", Some("k1")), id("c1", Some("k2")), id("c2", None)]);
    assert_eq!(ints(&journeys, "events"), [2, 2, 1, 4]);
    assert_eq!(ints(&journeys, "sessions"), [1, 1, 1, 1]);
    assert_eq!(times(&journeys, "first_time"), [Some(T0); 4]);
    assert_eq!(times(&journeys, "last_time"), [Some(T0 + 60_000), Some(T0 + 60_000), Some(T0), Some(T0 + 180_000)]);
    assert_eq!(times(&journeys, "session_start"), [Some(T0); 4]);
    assert_eq!(
        string_lists(&journeys, "path"),
        [vec!["home", "search"], vec!["search", "cart"], vec!["home"], vec!["home", "search", "cart", "checkout"]]
    );
    assert_eq!(string_lists(&journeys, "channels"), [["email", "web"]; 4]);
    let converted: Vec<bool> = column(&journeys, "converted").as_boolean().iter().map(Option::unwrap).collect();
    assert_eq!(converted, [false, true, false, true]);
    assert_eq!(ints(&journeys, "conversions"), [0, 2, 0, 1]);
    assert_eq!(times(&journeys, "last_conversion_time"), [None, Some(T0 + 60_000), None, Some(T0 + 180_000)]);
    assert_eq!(floats(&journeys, "value"), [0.0, 10.0, 0.0, 42.5]);

    let segments = read_arrow(dir.path(), "segments");
    assert_eq!(strings(&segments, "segment"), [Some("browsers".into()), Some("buyers".into()), Some("idle".into())]);
    assert_eq!(ints(&segments, "members"), [3, 2, 0]);
    assert_eq!(floats(&segments, "value"), [0.0, 52.5, 0.0]);
    assert_eq!(floats(&segments, "conversion_rate"), [0.0, 0.5, 0.0]);

    let segment_channels = read_arrow(dir.path(), "segment_channels");
    let rows: Vec<(String, String, i64)> = strings(&segment_channels, "segment")
        .into_iter()
        .zip(strings(&segment_channels, "channel"))
        .zip(ints(&segment_channels, "members"))
        .map(|((s, c), n)| (s.unwrap(), c.unwrap(), n))
        .collect();
    let expected = [("browsers", "web", 3), ("buyers", "email", 1), ("buyers", "web", 2)];
    assert_eq!(rows, expected.map(|(s, c, n)| (s.to_owned(), c.to_owned(), n)));
}

#[test]
fn transitions_carry_dwell_means_and_probabilities_per_from() {
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    SnapshotWriter::new(dir.path(), false, s.clone()).write(&tables(&s)).unwrap();

    let transitions = read_arrow(dir.path(), "transitions");
    let edges: Vec<(String, String)> = strings(&transitions, "from")
        .into_iter()
        .zip(strings(&transitions, "to"))
        .map(|(from, to)| (from.unwrap(), to.unwrap()))
        .collect();
    assert_eq!(
        edges,
        [names("cart", "checkout"), names("home", "cart"), names("home", "search"), names("search", "cart")]
    );
    assert_eq!(ints(&transitions, "count"), [1, 1, 3, 2]);
    assert_eq!(ints(&transitions, "dwell_ms_total"), [60_000, 500, 3_000, 10_000]);
    assert_eq!(floats(&transitions, "dwell_ms_mean"), [60_000.0, 500.0, 1_000.0, 5_000.0]);
    assert_eq!(floats(&transitions, "probability"), [1.0, 0.25, 0.75, 1.0]);

    let channels = read_arrow(dir.path(), "channel_transitions");
    assert_eq!(strings(&channels, "from"), [Some("email".into()), Some("web".into())]);
    assert_eq!(floats(&channels, "dwell_ms_mean"), [300.0, 250.0]);
    assert_eq!(floats(&channels, "probability"), [1.0, 1.0]);

    // On a larger graph: probability = count / total count out of the same `from`, summing to 1.
    let mut big = Tables::new(vec![]);
    let updates: Vec<Update> = (0..12)
        .flat_map(|from| (0..7).map(move |to| (from, to)))
        .filter(|(from, to)| (from * 7 + to) % 5 != 0)
        .map(|(from, to)| {
            Update::Transition(pair(&s, &format!("p{from}"), &format!("p{to}")), (from + to + 1, 1_000 * to))
        })
        .collect();
    big.apply(1, &updates);
    SnapshotWriter::new(dir.path(), false, s.clone()).write(&big).unwrap();
    let transitions = read_arrow(dir.path(), "transitions");
    let from = strings(&transitions, "from");
    let (count, dwell) = (ints(&transitions, "count"), ints(&transitions, "dwell_ms_total"));
    let (mean, probability) = (floats(&transitions, "dwell_ms_mean"), floats(&transitions, "probability"));
    let mut totals: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for i in 0..transitions.num_rows() {
        let total = totals.entry(from[i].as_deref().unwrap()).or_default();
        total.0 += count[i];
        total.1 += probability[i];
        assert_eq!(mean[i], dwell[i] as f64 / count[i] as f64);
    }
    assert_eq!(totals.len(), 12);
    for (from, (_, sum)) in &totals {
        assert!((sum - 1.0).abs() < 1e-12, "probabilities out of {from} sum to {sum}");
    }
    for i in 0..transitions.num_rows() {
        assert_eq!(probability[i], count[i] as f64 / totals[from[i].as_deref().unwrap()].0 as f64);
    }
}

#[test]
fn parquet_files_hold_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    let info = SnapshotWriter::new(dir.path(), true, s.clone()).write(&tables(&s)).unwrap();
    assert_eq!(info.files.len(), 10);
    assert_eq!(listing(dir.path()), file_names(&["arrow", "parquet"]));
    for table in TABLES {
        let arrow = read_arrow(dir.path(), table);
        let (parquet, key_values) = read_parquet(dir.path(), table);
        check_contract(table, &format!("{table}.parquet"), &parquet);
        assert_eq!(parquet.schema(), arrow.schema(), "{table}");
        assert_eq!(parquet.columns(), arrow.columns(), "{table}");
        // The times are also plain Parquet key-value metadata, beside the embedded Arrow schema.
        assert_eq!(logical_time(&parquet), Some("7"), "{table}.parquet");
        assert_eq!(key_values.get("stepstone.logical_time").map(String::as_str), Some("7"), "{table}.parquet");
        assert_eq!(key_values.get("stepstone.snapshot_wall_time"), Some(&info.wall_time), "{table}.parquet");
    }
}

#[test]
fn row_order_does_not_depend_on_update_order() {
    // Enough rows that hash-map iteration orders differ between the two tables.
    let s = symbols();
    let many = |reverse: bool| {
        let mut updates: Vec<Update> = (0..40)
            .flat_map(|i| {
                let customer = format!("c{:02}", i % 13);
                let key = (i % 3 != 0).then(|| format!("k{i}"));
                [
                    Update::journey(row(&s, &customer, key.as_deref(), &["home", "search"], (i % 2) as u64, i), 1),
                    Update::Transition(pair(&s, &format!("p{}", i % 7), &format!("p{}", i % 5)), (1, i)),
                    Update::ChannelTransition(pair(&s, &format!("ch{}", i % 4), &format!("ch{}", i % 3)), (1, i)),
                    Update::Segment(s.intern(&format!("s{}", i % 6)), (1, i, i % 2)),
                    Update::SegmentChannel(pair(&s, &format!("s{}", i % 6), &format!("ch{}", i % 4)), 1),
                ]
            })
            .collect();
        if reverse {
            updates.reverse();
        }
        let mut tables = Tables::new(vec![s.intern("s9")]);
        tables.apply(3, &updates);
        tables
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    SnapshotWriter::new(a.path(), false, s.clone()).write(&many(false)).unwrap();
    SnapshotWriter::new(b.path(), false, s.clone()).write(&many(true)).unwrap();
    for table in TABLES {
        let (first, second) = (read_arrow(a.path(), table), read_arrow(b.path(), table));
        assert!(first.num_rows() > 3, "{table}");
        assert_eq!(first.columns(), second.columns(), "{table}");
    }
    // Sorted by the leading key columns.
    let journeys = read_arrow(a.path(), "journeys");
    let ids: Vec<_> = strings(&journeys, "customer").into_iter().zip(strings(&journeys, "journey_key")).collect();
    assert!(ids.is_sorted(), "{ids:?}");
    for (table, keys) in [("transitions", ["from", "to"]), ("segment_channels", ["segment", "channel"])] {
        let batch = read_arrow(a.path(), table);
        let rows: Vec<_> = strings(&batch, keys[0]).into_iter().zip(strings(&batch, keys[1])).collect();
        assert!(rows.is_sorted(), "{table}: {rows:?}");
    }
    assert!(strings(&read_arrow(a.path(), "segments"), "segment").is_sorted());
}

#[test]
fn a_second_write_replaces_the_first_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    let writer = SnapshotWriter::new(dir.path().join("snapshots"), true, s.clone());
    assert_eq!(writer.dir(), dir.path().join("snapshots"));
    let mut tables = tables(&s);
    writer.write(&tables).unwrap();
    // A reader holding the first file keeps reading it whole while it is replaced.
    let held = File::open(writer.dir().join("journeys.arrow")).unwrap();

    let old = row(&s, "c2", None, &["home", "search", "cart", "checkout"], 1, 42_500_000);
    let new = row(&s, "c2", None, &["home", "search", "cart", "checkout", "home"], 1, 42_500_000);
    tables.apply(
        8,
        &[
            Update::journey(old, -1),
            Update::journey(new, 1),
            Update::journey(row(&s, "c1", Some("k2"), &["home"], 0, 0), -1),
            Update::Transition(pair(&s, "checkout", "home"), (1, 2_000)),
            Update::Transition(pair(&s, "cart", "checkout"), (-1, -60_000)),
        ],
    );
    let info = writer.write(&tables).unwrap();
    assert_eq!(info.time, Some(8));
    assert_eq!(listing(writer.dir()), file_names(&["arrow", "parquet"]), "leftover files");
    for table in TABLES {
        let (parquet, key_values) = read_parquet(writer.dir(), table);
        assert_eq!(logical_time(&read_arrow(writer.dir(), table)), Some("8"), "{table}.arrow");
        assert_eq!(logical_time(&parquet), Some("8"), "{table}.parquet");
        assert_eq!(key_values.get("stepstone.logical_time").map(String::as_str), Some("8"), "{table}.parquet");
    }
    let journeys = read_arrow(writer.dir(), "journeys");
    assert_eq!(ints(&journeys, "events"), [2, 2, 5]);
    assert_eq!(string_lists(&journeys, "path")[2], ["home", "search", "cart", "checkout", "home"]);
    let (transitions, _) = read_parquet(writer.dir(), "transitions");
    assert_eq!(strings(&transitions, "from"), ["checkout", "home", "home", "search"].map(|s| Some(s.to_owned())));

    let before = FileReader::try_new(held, None).unwrap();
    assert_eq!(before.schema().metadata()["stepstone.logical_time"], "7");
    assert_eq!(before.map(|b| b.unwrap().num_rows()).sum::<usize>(), 4);
}

#[test]
fn empty_tables_write_empty_snapshots_without_a_logical_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = symbols();
    let info = SnapshotWriter::new(dir.path(), true, s.clone()).write(&Tables::new(vec![s.intern("idle")])).unwrap();
    assert_eq!(info.time, None);
    for table in TABLES {
        let (parquet, key_values) = read_parquet(dir.path(), table);
        assert!(!key_values.contains_key("stepstone.logical_time"), "{table}.parquet");
        for batch in [read_arrow(dir.path(), table), parquet] {
            check_contract(table, table, &batch);
            assert_eq!(logical_time(&batch), None, "{table}");
            assert_eq!(batch.num_rows(), usize::from(table == "segments"), "{table}");
        }
    }
}
