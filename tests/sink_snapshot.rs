//! Tests of the snapshot writer: the Arrow IPC and Parquet files it writes from hand-made
//! tables (contract column names and types, values, derived columns, the logical time in every
//! schema, row order), the atomic replacement of a previous snapshot, and, when Python has
//! pyarrow, duckdb and polars, that those tools read the files.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use arrow::ipc::reader::FileReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stepstone::sink::arrow_tables::SnapshotBatches;
use stepstone::sink::update::Update;
use stepstone::sink::{DeltaWriter, SnapshotWriter, Tables};
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::symbols::{Sym, Symbols};

/// 2026-01-01T00:00:00Z in ms.
const T0: i64 = 1_767_225_600_000;

/// The table names, in writing order.
const TABLES: [&str; 5] = ["journeys", "transitions", "channel_transitions", "segments", "segment_channels"];

/// A journey row of `customer` (with journey key `key`) over `path`, one event per minute,
/// with `conversions` conversions worth `value_micros` in total. The channel `web` is interned
/// before `email`, so that the id order of the channels is not their name order.
fn row(
    s: &Symbols,
    customer: &str,
    key: Option<&str>,
    path: &[&str],
    conversions: u64,
    value_micros: i64,
) -> JourneyRow {
    let events = path.len() as u64;
    let last_time = T0 + (events as i64 - 1) * 60_000;
    let web = s.intern("web");
    JourneyRow {
        journey: JourneyId { customer: s.intern(customer), anonymous: false, key: key.map(|k| s.intern(k)) },
        first_time: T0,
        last_time,
        events,
        sessions: 1,
        session_start: T0,
        session_events: events,
        path: path.iter().map(|&p| s.intern(p)).collect(),
        channel_events: vec![(web, events - 1), (s.intern("email"), 1)],
        conversions,
        last_conversion_time: (conversions > 0).then_some(last_time),
        value: value_micros,
    }
}

/// The interned pair `(a, b)`.
fn pair(s: &Symbols, a: &str, b: &str) -> (Sym, Sym) {
    (s.intern(a), s.intern(b))
}

/// The pair `(a, b)` of names, as read back.
fn names(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

/// A fresh symbol table (shared with the writers).
fn symbols() -> Arc<Symbols> {
    Arc::new(Symbols::new())
}

/// The updates of a small world at one time, in a scrambled order.
fn updates(s: &Symbols) -> Vec<Update> {
    let journey = |r: JourneyRow| Update::journey(r, 1);
    let member = |segment: &str, customer: &str| {
        Update::Membership((s.intern(segment), JourneyId::customer(s.intern(customer))), 1)
    };
    vec![
        Update::Transition(pair(s, "search", "cart"), (2, 10_000)),
        journey(row(s, "c2", None, &["home", "search", "cart", "checkout"], 1, 42_500_000)),
        Update::Transition(pair(s, "home", "search"), (3, 3_000)),
        journey(row(s, "c1", Some("k2"), &["home"], 0, 0)),
        Update::Transition(pair(s, "home", "cart"), (1, 500)),
        journey(row(s, "c1", None, &["home", "search"], 0, 0)),
        Update::Transition(pair(s, "cart", "checkout"), (1, 60_000)),
        journey(row(s, "c1", Some("k1"), &["search", "cart"], 2, 10_000_000)),
        Update::ChannelTransition(pair(s, "web", "email"), (1, 250)),
        Update::ChannelTransition(pair(s, "email", "web"), (3, 900)),
        member("buyers", "c2"),
        member("buyers", "c1"),
        Update::Segment(s.intern("buyers"), (2, 52_500_000, 1)),
        Update::Segment(s.intern("browsers"), (3, 0, 0)),
        Update::SegmentChannel(pair(s, "buyers", "web"), 2),
        Update::SegmentChannel(pair(s, "buyers", "email"), 1),
        Update::SegmentChannel(pair(s, "browsers", "web"), 3),
    ]
}

/// Tables with [`updates`] applied at logical time 7; `idle` is declared but has no members.
fn tables(s: &Symbols) -> Tables {
    let mut tables = Tables::new(vec![s.intern("idle"), s.intern("buyers")]);
    tables.apply(7, &updates(s));
    tables
}

/// The single record batch of the Arrow IPC file `dir/name.arrow`.
fn read_arrow(dir: &Path, name: &str) -> RecordBatch {
    let reader = FileReader::try_new(File::open(dir.join(format!("{name}.arrow"))).unwrap(), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "{name}.arrow");
    batches.into_iter().next().unwrap()
}

/// The record batches of the Parquet file `dir/name.parquet` as one, under the Arrow schema
/// stored in the file (the reader's batches carry no schema metadata), and the file's Parquet
/// key-value metadata.
fn read_parquet(dir: &Path, name: &str) -> (RecordBatch, BTreeMap<String, String>) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join(format!("{name}.parquet"))).unwrap()).unwrap();
    let key_values = builder.metadata().file_metadata().key_value_metadata().into_iter().flatten();
    let key_values = key_values.map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default())).collect();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    (concat_batches(&schema, &batches).unwrap(), key_values)
}

/// The logical time in the schema metadata of `batch`.
fn logical_time(batch: &RecordBatch) -> Option<&str> {
    batch.schema_ref().metadata().get("stepstone.logical_time").map(String::as_str)
}

/// The column `name` of `batch`.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}")).as_ref()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    column(batch, name).as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect()
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<i64> {
    column(batch, name).as_primitive::<Int64Type>().values().to_vec()
}

fn floats(batch: &RecordBatch, name: &str) -> Vec<f64> {
    column(batch, name).as_primitive::<Float64Type>().values().to_vec()
}

fn times(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    column(batch, name).as_primitive::<TimestampMillisecondType>().iter().collect()
}

fn string_lists(batch: &RecordBatch, name: &str) -> Vec<Vec<String>> {
    let lists = column(batch, name).as_list::<i32>();
    lists.iter().map(|list| list.unwrap().as_string::<i32>().iter().map(|s| s.unwrap().to_owned()).collect()).collect()
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The sorted names of the snapshot files with the given extensions.
fn file_names(extensions: &[&str]) -> Vec<String> {
    let mut names: Vec<String> =
        extensions.iter().flat_map(|ext| TABLES.map(|table| format!("{table}.{ext}"))).collect();
    names.sort();
    names
}

/// The contract columns of each table, with their types; other columns may be present.
fn contract(table: &str) -> Vec<(&'static str, DataType)> {
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let utf8_list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false)));
    match table {
        "journeys" => vec![
            ("customer", DataType::Utf8),
            ("first_time", timestamp.clone()),
            ("last_time", timestamp.clone()),
            ("events", DataType::Int64),
            ("sessions", DataType::Int64),
            ("session_start", timestamp.clone()),
            ("path", utf8_list.clone()),
            ("channels", utf8_list),
            ("converted", DataType::Boolean),
            ("conversions", DataType::Int64),
            ("last_conversion_time", timestamp),
            ("value", DataType::Float64),
        ],
        "transitions" | "channel_transitions" => vec![
            ("from", DataType::Utf8),
            ("to", DataType::Utf8),
            ("count", DataType::Int64),
            ("dwell_ms_total", DataType::Int64),
            ("dwell_ms_mean", DataType::Float64),
            ("probability", DataType::Float64),
        ],
        "segments" => vec![
            ("segment", DataType::Utf8),
            ("members", DataType::Int64),
            ("value", DataType::Float64),
            ("conversion_rate", DataType::Float64),
        ],
        _ => vec![("segment", DataType::Utf8), ("channel", DataType::Utf8), ("members", DataType::Int64)],
    }
}

/// Checks the contract columns of `batch` (the table `table`, read from `file`).
fn check_contract(table: &str, file: &str, batch: &RecordBatch) {
    for (name, expected) in contract(table) {
        let field = batch.schema().field_with_name(name).unwrap_or_else(|_| panic!("{file}: no column {name}")).clone();
        assert_eq!(field.data_type(), &expected, "{file}: type of {name}");
    }
}

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
