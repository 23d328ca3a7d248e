//! Tests of the snapshot writer: the Arrow IPC and Parquet files it writes from hand-made
//! tables (contract column names and types, values, derived columns, the logical time in every
//! schema, row order), the atomic replacement of a previous snapshot, and, when Python has
//! pyarrow, duckdb and polars, that those tools read the files.
//!
//! The hand-made tables and the readers of the files are in this module; the tests of the files
//! written in [`files`], those of their independence from interning order and of other readers
//! in [`readers`].

mod files;
mod readers;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use arrow::ipc::reader::FileReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stepstone::sink::Tables;
use stepstone::sink::update::Update;
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
