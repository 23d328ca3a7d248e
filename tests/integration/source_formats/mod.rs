//! Tests of the input side's happy path (`stepstone::source`): one event set written as JSON
//! Lines, CSV, Parquet and Arrow IPC (file and stream), plain and gzip/zstd-compressed, decodes
//! to the same records in file order; column mappings with `:` and spaces; missing optional and
//! required columns; every accepted time form and value form; journey keys and conversion rules;
//! and the public event logs beside the repository decode completely.
//!
//! The event set, its writers in each format and the decoding helpers are in this module; the
//! tests, by topic, in the others.

mod columns;
mod formats;
mod public_logs;
mod times_values;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::Int32Type;
use arrow::ipc::MetadataVersion;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use parquet::arrow::ArrowWriter;
use serde_json::{Value, json};
use stepstone::source::{Conversion, DecodeOptions, Format, Mapping, Record, Rejection, open};
use tempfile::TempDir;

/// One input event, with the cell text each format writes and the record it must decode to.
struct Event {
    customer: &'static str,
    /// The time as written in text formats.
    ts: &'static str,
    /// The same time in ms since the epoch, UTC.
    ms: i64,
    page_type: &'static str,
    source: Option<&'static str>,
    kind: Option<&'static str>,
    value: Option<f64>,
    micros: i64,
    session: Option<&'static str>,
}

const EVENTS: [Event; 6] = [
    Event {
        customer: "alice",
        ts: "2024-03-01T09:00:00Z",
        ms: 1_709_283_600_000,
        page_type: "home",
        source: Some("email"),
        kind: Some("view"),
        value: None,
        micros: 0,
        session: Some("s1"),
    },
    Event {
        customer: "alice",
        ts: "2024-03-01T09:00:05.250Z",
        ms: 1_709_283_605_250,
        page_type: "pricing, annual",
        source: Some("email"),
        kind: Some("view"),
        value: None,
        micros: 0,
        session: Some("s1"),
    },
    Event {
        customer: "bob",
        ts: "2024-03-01 10:15:00.5+02:00",
        ms: 1_709_280_900_500,
        page_type: "home",
        source: Some("search"),
        kind: Some("view"),
        value: None,
        micros: 0,
        session: None,
    },
    Event {
        customer: "alice",
        ts: "2024-03-01T09:07:30Z",
        ms: 1_709_284_050_000,
        page_type: "checkout",
        source: Some("email"),
        kind: Some("purchase"),
        value: Some(49.99),
        micros: 49_990_000,
        session: Some("s1"),
    },
    Event {
        customer: "carol",
        ts: "2024-02-29 23:59:59.999",
        ms: 1_709_251_199_999,
        page_type: "produits/été \"neuf\"",
        source: None,
        kind: None,
        value: None,
        micros: 0,
        session: None,
    },
    Event {
        customer: "bob",
        ts: "2024-03-02T00:00:00-05:00",
        ms: 1_709_355_600_000,
        page_type: "signup",
        source: Some("search"),
        kind: Some("signup"),
        value: Some(12.0),
        micros: 12_000_000,
        session: Some("s9"),
    },
];

/// The mapping of the spec's example export, with the remaining fields under their own names.
const EXPORT_MAPPING: &str = "customer=user_id,time=ts,contact_point=page_type,channel=source";

fn export_options() -> DecodeOptions {
    DecodeOptions {
        mapping: Mapping::parse(EXPORT_MAPPING).unwrap(),
        conversion: Some(Conversion::parse("kind=purchase|signup").unwrap()),
        ..DecodeOptions::default()
    }
}

fn expected_records() -> Vec<Record> {
    EVENTS
        .iter()
        .map(|e| Record {
            customer: e.customer.to_string(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: e.ms,
            contact_point: e.page_type.to_string(),
            channel: e.source.map(str::to_string),
            kind: e.kind.map(str::to_string),
            session: e.session.map(str::to_string),
            converting: matches!(e.kind, Some("purchase" | "signup")),
            value: e.micros,
        })
        .collect()
}

/// The events as JSON Lines: absent optional fields alternate between a missing key and null.
fn jsonl_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in EVENTS.iter().enumerate() {
        let mut object = serde_json::Map::new();
        object.insert("user_id".into(), json!(e.customer));
        object.insert("ts".into(), json!(e.ts));
        object.insert("page_type".into(), json!(e.page_type));
        for (key, cell) in [
            ("source", e.source.map(Value::from)),
            ("kind", e.kind.map(Value::from)),
            ("value", e.value.map(Value::from)),
            ("session", e.session.map(Value::from)),
        ] {
            match cell {
                Some(v) => {
                    object.insert(key.into(), v);
                }
                None if i % 2 == 0 => {
                    object.insert(key.into(), Value::Null);
                }
                None => {}
            }
        }
        object.insert("unmapped".into(), json!({"nested": [1, 2, {"x": null}]}));
        serde_json::to_writer(&mut out, &Value::Object(object)).unwrap();
        out.push(b'\n');
    }
    out
}

/// The events as CSV (absent cells empty, quoted where needed), with an unmapped column.
fn csv_bytes() -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["extra", "user_id", "ts", "page_type", "source", "kind", "value", "session"]).unwrap();
    for e in &EVENTS {
        let value = e.value.map(|v| v.to_string()).unwrap_or_default();
        writer
            .write_record([
                "x",
                e.customer,
                e.ts,
                e.page_type,
                e.source.unwrap_or(""),
                e.kind.unwrap_or(""),
                &value,
                e.session.unwrap_or(""),
            ])
            .unwrap();
    }
    writer.into_inner().unwrap()
}

fn strings(cells: impl Fn(&Event) -> Option<&'static str>) -> ArrayRef {
    Arc::new(EVENTS.iter().map(cells).collect::<StringArray>())
}

fn values() -> ArrayRef {
    Arc::new(EVENTS.iter().map(|e| e.value).collect::<Float64Array>())
}

/// The events as one record batch, with time as text, large-string sessions and float values.
fn text_time_batch() -> RecordBatch {
    RecordBatch::try_from_iter([
        ("user_id", strings(|e| Some(e.customer))),
        ("ts", strings(|e| Some(e.ts))),
        ("page_type", strings(|e| Some(e.page_type))),
        ("source", strings(|e| e.source)),
        ("kind", strings(|e| e.kind)),
        ("value", values()),
        ("session", Arc::new(EVENTS.iter().map(|e| e.session).collect::<LargeStringArray>()) as ArrayRef),
    ])
    .unwrap()
}

/// The events as native-typed columns: time as a UTC microsecond timestamp (Parquet) or as
/// epoch-ms integers (Arrow stream), contact points dictionary-encoded.
fn native_batch(time: ArrayRef) -> RecordBatch {
    let pages: DictionaryArray<Int32Type> = EVENTS.iter().map(|e| e.page_type).collect();
    RecordBatch::try_from_iter([
        ("user_id", strings(|e| Some(e.customer))),
        ("ts", time),
        ("page_type", Arc::new(pages) as ArrayRef),
        ("source", strings(|e| e.source)),
        ("kind", strings(|e| e.kind)),
        ("value", values()),
        ("session", strings(|e| e.session)),
    ])
    .unwrap()
}

fn timestamp_micros() -> ArrayRef {
    let micros: Vec<i64> = EVENTS.iter().map(|e| e.ms * 1000).collect();
    Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"))
}

fn epoch_ms() -> ArrayRef {
    Arc::new(EVENTS.iter().map(|e| e.ms).collect::<Int64Array>())
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), batches[0].schema(), None).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}

fn arrow_file_bytes(batches: &[RecordBatch]) -> Vec<u8> {
    arrow_file_bytes_with(batches, IpcWriteOptions::default())
}

fn arrow_file_bytes_with(batches: &[RecordBatch], options: IpcWriteOptions) -> Vec<u8> {
    let mut writer = FileWriter::try_new_with_options(Vec::new(), &batches[0].schema(), options).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    writer.into_inner().unwrap()
}

/// IPC options: the file's header is padded to `alignment`; legacy messages lack the
/// continuation marker.
fn ipc_options(alignment: usize, legacy: bool) -> IpcWriteOptions {
    let version = if legacy { MetadataVersion::V4 } else { MetadataVersion::V5 };
    IpcWriteOptions::try_new(alignment, legacy, version).unwrap()
}

fn arrow_stream_bytes(batches: &[RecordBatch]) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    writer.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Decodes a whole input into its records and rejections.
fn decode(path: &Path, format: Option<Format>, options: &DecodeOptions) -> (Vec<Record>, Vec<Rejection>) {
    let mut records = Vec::new();
    let mut rejections = Vec::new();
    for item in open(path_str(path), format, options).unwrap() {
        match item {
            Ok(record) => records.push(record),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (records, rejections)
}

/// Decodes an input that must have no rejections.
fn records(path: &Path, options: &DecodeOptions) -> Vec<Record> {
    let (records, rejections) = decode(path, None, options);
    assert!(rejections.is_empty(), "{}: unexpected rejections {rejections:#?}", path.display());
    records
}

fn open_error(path: &Path, options: &DecodeOptions) -> String {
    match open(path_str(path), None, options) {
        Ok(_) => panic!("{}: opened despite a missing required column", path.display()),
        Err(e) => format!("{e:#}"),
    }
}
