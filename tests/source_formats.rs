//! Tests of the input side's happy path (`stepstone::source`): one event set written as JSON
//! Lines, CSV, Parquet and Arrow IPC (file and stream), plain and gzip/zstd-compressed, decodes
//! to the same records in file order; column mappings with `:` and spaces; missing optional and
//! required columns; every accepted time form and value form; journey keys and conversion rules;
//! and the public event logs beside the repository decode completely.

mod common;

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
use stepstone::source::{Conversion, DecodeOptions, Format, Mapping, Record, Rejection, TimeFormat, open};
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

#[test]
fn every_format_decodes_to_the_same_records() {
    let dir = TempDir::new().unwrap();
    let jsonl = jsonl_bytes();
    let csv = csv_bytes();
    let arrow_file = arrow_file_bytes(&[text_time_batch()]);
    let (head, tail) = jsonl.split_at(jsonl.iter().position(|&b| b == b'\n').unwrap() + 1);
    let two_member_gzip = [gzip(head), gzip(tail)].concat();
    let stream_batches = [native_batch(epoch_ms()).slice(0, 4), native_batch(epoch_ms()).slice(4, 2)];
    let parquet = dir.path().join("events.parquet");
    write_parquet(&parquet, &[native_batch(timestamp_micros())]);
    let inputs = [
        write(&dir, "events.jsonl", &jsonl),
        write(&dir, "events.ndjson", &jsonl),
        write(&dir, "events.csv", &csv),
        parquet,
        write(&dir, "events.arrow", &arrow_file),
        write(&dir, "events.8.arrow", &arrow_file_bytes_with(&[text_time_batch()], ipc_options(8, false))),
        write(&dir, "events.16.arrow", &arrow_file_bytes_with(&[text_time_batch()], ipc_options(16, false))),
        write(&dir, "events.legacy.arrow", &arrow_file_bytes_with(&[text_time_batch()], ipc_options(8, true))),
        write(&dir, "events.legacy64.arrow", &arrow_file_bytes_with(&[text_time_batch()], ipc_options(64, true))),
        write(&dir, "events.arrows", &arrow_stream_bytes(&stream_batches)),
        write(&dir, "events.jsonl.gz", &gzip(&jsonl)),
        write(&dir, "events.members.jsonl.gz", &two_member_gzip),
        write(&dir, "events.jsonl.zst", &zstd(&jsonl)),
        write(&dir, "events.csv.gz", &gzip(&csv)),
        write(&dir, "events.csv.zst", &zstd(&csv)),
        write(&dir, "events.arrow.zst", &zstd(&arrow_file)),
        write(&dir, "events.arrows.gz", &gzip(&arrow_stream_bytes(&stream_batches))),
    ];
    let expected = expected_records();
    for path in &inputs {
        assert_eq!(records(path, &export_options()), expected, "{}", path.display());
    }
}

#[test]
fn format_comes_from_the_extension_or_is_given() {
    for (path, format) in [
        ("a.jsonl", Some(Format::Jsonl)),
        ("a.ndjson.zst", Some(Format::Jsonl)),
        ("dir.v2/a.CSV.gz", Some(Format::Csv)),
        ("a.parquet", Some(Format::Parquet)),
        ("a.arrow.gz", Some(Format::Arrow)),
        ("a.feather", Some(Format::Arrow)),
        ("a.txt", None),
        ("a.gz", None),
        ("jsonl", None),
    ] {
        assert_eq!(Format::from_path(path), format, "{path}");
    }
    assert_eq!("Parquet".parse::<Format>(), Ok(Format::Parquet));
    assert!("xlsx".parse::<Format>().is_err());

    let dir = TempDir::new().unwrap();
    let path = write(&dir, "export.txt", &csv_bytes());
    let error = open_error(&path, &export_options());
    assert!(error.contains("export.txt"), "{error}");
    let (records, rejections) = decode(&path, Some(Format::Csv), &export_options());
    assert!(rejections.is_empty());
    assert_eq!(records, expected_records());

    let parquet = dir.path().join("events.parquet.gz");
    write_parquet(&parquet, &[native_batch(timestamp_micros())]);
    assert!(open(path_str(&parquet), None, &export_options()).is_err());
}

#[test]
fn sizes_are_reported_for_progress() {
    let dir = TempDir::new().unwrap();
    let compressed = gzip(&jsonl_bytes());
    let path = write(&dir, "events.jsonl.gz", &compressed);
    let mut source = open(path_str(&path), None, &export_options()).unwrap();
    assert_eq!(source.total_bytes(), Some(compressed.len() as u64));
    let bytes_read = source.bytes_read();
    assert_eq!(source.by_ref().count(), EVENTS.len());
    assert_eq!(bytes_read.load(std::sync::atomic::Ordering::Relaxed), compressed.len() as u64);
}

/// Stdin ("-") is read as JSON Lines. The test runs itself as a child process with the input
/// piped in; the child prints what it decoded.
#[test]
fn stdin_is_read_as_jsonl() {
    if std::env::var_os("STEPSTONE_STDIN_CHILD").is_some() {
        let source = open("-", None, &export_options()).unwrap();
        assert_eq!(source.total_bytes(), None);
        for item in source {
            match item {
                Ok(record) => println!("@record {}", record.customer),
                Err(r) => println!("@rejection {}:{} {}", r.source, r.line, r.reason_kind()),
            }
        }
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_is_read_as_jsonl", "--nocapture", "--test-threads=1"])
        .env("STEPSTONE_STDIN_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = jsonl_bytes();
    input.extend_from_slice(b"{oops\n");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The harness's own output may share a line with the child's first.
    let seen: Vec<&str> = stdout.split('@').skip(1).map(|item| item.lines().next().unwrap()).collect();
    let mut expected: Vec<String> = EVENTS.iter().map(|e| format!("record {}", e.customer)).collect();
    expected.push(format!("rejection stdin:{} malformed", EVENTS.len() + 1));
    assert_eq!(seen, expected);
}

/// Column names with `:` and spaces, in every format that has columns.
#[test]
fn mapping_accepts_columns_with_colons_and_spaces() {
    let mapping = Mapping::parse(
        "customer=case:concept:name, time = time:timestamp,contact_point=concept:name,\
         channel=org:resource,kind=Event Type,value=order total,session=session id",
    )
    .unwrap();
    let options = DecodeOptions { mapping, ..DecodeOptions::default() };
    let expected = vec![
        Record {
            customer: "case 7".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_715_920_000,
            contact_point: "register request".into(),
            channel: Some("Pete".into()),
            kind: Some("start".into()),
            session: Some("a b".into()),
            converting: false,
            value: 50_000_000,
        },
        Record {
            customer: "case 7".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_717_960_000,
            contact_point: "examine casually".into(),
            channel: None,
            kind: None,
            session: None,
            converting: false,
            value: 0,
        },
    ];
    let dir = TempDir::new().unwrap();
    let jsonl = concat!(
        r#"{"case:concept:name":"case 7","time:timestamp":"2010-12-30 14:32:00+01:00","concept:name":"register request","org:resource":"Pete","Event Type":"start","order total":50,"session id":"a b"}"#,
        "\n",
        r#"{"concept:name":"examine casually","time:timestamp":"2010-12-30 15:06:00+01:00","case:concept:name":"case 7"}"#,
        "\n",
    );
    let csv = "session id,concept:name,time:timestamp,case:concept:name,org:resource,Event Type,order total\n\
               a b,register request,2010-12-30 14:32:00+01:00,case 7,Pete,start,50\n\
               ,examine casually,2010-12-30 15:06:00+01:00,case 7,,,\n";
    let batch = RecordBatch::try_from_iter([
        ("case:concept:name", Arc::new(StringArray::from(vec!["case 7", "case 7"])) as ArrayRef),
        ("time:timestamp", Arc::new(StringArray::from(vec!["2010-12-30T13:32:00Z", "2010-12-30T14:06:00Z"]))),
        ("concept:name", Arc::new(StringArray::from(vec!["register request", "examine casually"]))),
        ("org:resource", Arc::new(StringArray::from(vec![Some("Pete"), None]))),
        ("Event Type", Arc::new(StringArray::from(vec![Some("start"), None]))),
        ("order total", Arc::new(Int64Array::from(vec![Some(50), None]))),
        ("session id", Arc::new(StringArray::from(vec![Some("a b"), None]))),
    ])
    .unwrap();
    let parquet = dir.path().join("log.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    for path in [
        write(&dir, "log.jsonl", jsonl.as_bytes()),
        write(&dir, "log.csv", csv.as_bytes()),
        write(&dir, "log.arrow", &arrow_file_bytes(&[batch])),
        parquet,
    ] {
        assert_eq!(records(&path, &options), expected, "{}", path.display());
    }
}

#[test]
fn missing_optional_columns_are_fine() {
    let dir = TempDir::new().unwrap();
    let csv = write(&dir, "minimal.csv", b"customer,time,contact_point\nann,2024-03-01T09:00:00Z,home\n");
    let jsonl =
        write(&dir, "minimal.jsonl", br#"{"customer":"ann","time":"2024-03-01T09:00:00Z","contact_point":"home"}"#);
    let batch = RecordBatch::try_from_iter([
        ("customer", Arc::new(StringArray::from(vec!["ann"])) as ArrayRef),
        ("time", Arc::new(StringArray::from(vec!["2024-03-01T09:00:00Z"]))),
        ("contact_point", Arc::new(StringArray::from(vec!["home"]))),
    ])
    .unwrap();
    let parquet = dir.path().join("minimal.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    let arrow = write(&dir, "minimal.arrows", &arrow_stream_bytes(&[batch]));
    let options = DecodeOptions {
        journey_key: Some("order_id".into()),
        conversion: Some(Conversion::parse("kind=purchase").unwrap()),
        ..DecodeOptions::default()
    };
    let expected = vec![Record {
        customer: "ann".into(),
        anonymous: false,
        consent: true,
        link: None,
        interaction: true,
        journey_key: None,
        time: 1_709_283_600_000,
        contact_point: "home".into(),
        channel: None,
        kind: None,
        session: None,
        converting: false,
        value: 0,
    }];
    for path in [csv, jsonl, parquet, arrow] {
        assert_eq!(records(&path, &options), expected, "{}", path.display());
    }
}

#[test]
fn missing_required_column_is_an_open_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let options = DecodeOptions {
        mapping: Mapping::parse("customer=case:concept:name,time=time:timestamp,contact_point=concept:name").unwrap(),
        ..DecodeOptions::default()
    };
    let no_time = write(&dir, "no_time.csv", b"case:concept:name,concept:name,timestamp\n1,register,2024-03-01\n");
    let no_time_gz =
        write(&dir, "no_time.csv.gz", &gzip(b"case:concept:name,concept:name,timestamp\n1,register,2024-03-01\n"));
    let batch = RecordBatch::try_from_iter([
        ("case:concept:name", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("time:timestamp", Arc::new(StringArray::from(vec!["2024-03-01"]))),
        ("activity", Arc::new(StringArray::from(vec!["register"]))),
    ])
    .unwrap();
    let no_activity_parquet = dir.path().join("no_activity.parquet");
    write_parquet(&no_activity_parquet, std::slice::from_ref(&batch));
    let no_activity_arrow = write(&dir, "no_activity.arrow", &arrow_file_bytes(&[batch]));
    for (path, column) in [
        (no_time, "time:timestamp"),
        (no_time_gz, "time:timestamp"),
        (no_activity_parquet, "concept:name"),
        (no_activity_arrow, "concept:name"),
    ] {
        let error = open_error(&path, &options);
        assert!(error.contains(&format!("{column:?}")), "{}: {error}", path.display());
    }
    let empty = write(&dir, "empty.csv", b"");
    assert!(open_error(&empty, &DecodeOptions::default()).contains("\"customer\""));
}

/// Decodes one time cell per JSON line (the cell given as raw JSON) with `format`: `Ok(ms)` or
/// the rejection reason.
fn decode_times(cells: &[&str], format: TimeFormat) -> Vec<Result<i64, String>> {
    let dir = TempDir::new().unwrap();
    let lines: String =
        cells.iter().map(|cell| format!("{{\"customer\":\"c\",\"contact_point\":\"p\",\"time\":{cell}}}\n")).collect();
    let path = write(&dir, "times.jsonl", lines.as_bytes());
    let options = DecodeOptions { time_format: format, ..DecodeOptions::default() };
    open(path_str(&path), None, &options)
        .unwrap()
        .map(|item| item.map(|record| record.time).map_err(|rejection| rejection.reason))
        .collect()
}

fn assert_times(format: TimeFormat, cases: &[(&str, Option<i64>)]) {
    let cells: Vec<&str> = cases.iter().map(|(cell, _)| *cell).collect();
    let decoded = decode_times(&cells, format);
    assert_eq!(decoded.len(), cases.len());
    for ((cell, expected), got) in cases.iter().zip(decoded) {
        match (expected, got) {
            (Some(ms), Ok(got)) => assert_eq!(got, *ms, "{format:?} {cell}"),
            (None, Err(reason)) => assert!(
                reason.starts_with("time: cannot parse") || reason.contains("outside the years"),
                "{format:?} {cell}: {reason}"
            ),
            (expected, got) => panic!("{format:?} {cell}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn time_forms_in_auto_mode() {
    let nine = 1_709_283_600_000;
    assert_times(
        TimeFormat::Auto,
        &[
            (r#""2024-03-01T09:00:00Z""#, Some(nine)),
            (r#""2024-03-01t09:00:00z""#, Some(nine)),
            (r#""2024-03-01T09:00:00.25Z""#, Some(nine + 250)),
            (r#""2024-03-01T09:00:00.123456Z""#, Some(nine + 123)),
            (r#""2024-03-01T11:00:00+02:00""#, Some(nine)),
            (r#""2024-03-01 09:00:00""#, Some(nine)),
            (r#""2024-03-01 09:00:00.5""#, Some(nine + 500)),
            (r#""2024-03-01 09:00:00.999999""#, Some(nine + 999)),
            (r#""2024-03-01 04:30:00-04:30""#, Some(nine)),
            (r#""2024-03-01 14:30:00.000001+05:30""#, Some(nine)),
            (r#""2024-03-01 10:00:00+0100""#, Some(nine)),
            (r#""2024-03-01 00:00:00-09""#, Some(nine)),
            (r#""2024-03-01 09:00""#, Some(nine)),
            (r#""2024-03-01""#, Some(nine - 9 * 3_600_000)),
            (r#"" 2024-03-01T09:00:00Z ""#, Some(nine)),
            (r#""2010-12-30 14:32:00+01:00""#, Some(1_293_715_920_000)),
            (r#""2011-10-11 13:45:40.276000+02:00""#, Some(1_318_333_540_276)),
            (r#""1969-12-31T23:59:59.999Z""#, Some(-1)),
            (r#""2024-02-29 12:00:00""#, Some(1_709_208_000_000)),
            // Numbers below 1e11 are seconds, others milliseconds, as JSON numbers or strings.
            ("1709283600", Some(nine)),
            ("1709283600000", Some(nine)),
            (r#""1709283600""#, Some(nine)),
            (r#""1709283600000""#, Some(nine)),
            ("1709283600.25", Some(nine + 250)),
            (r#""1709283600.25""#, Some(nine + 250)),
            ("1709283600000.75", Some(nine)),
            ("99999999999", Some(99_999_999_999_000)),
            ("100000000000", Some(100_000_000_000)),
            ("0", Some(0)),
            ("-86400", Some(-86_400_000)),
            // Decimal fractions that f64 cannot hold exactly keep their millisecond.
            ("1076801537.222", Some(1_076_801_537_222)),
            (r#""1076801537.222""#, Some(1_076_801_537_222)),
            ("269154683.951", Some(269_154_683_951)),
            (r#""2024-13-01 09:00:00""#, None),
            (r#""2023-02-29 09:00:00""#, None),
            (r#""2024-03-01 24:00:00""#, None),
            (r#""2024-03-01 09:60:00""#, None),
            (r#""2024-03-01 09:00:00+25:00""#, None),
            (r#""2024-03-01 09:00:00 UTC""#, Some(1_709_283_600_000)),
            (r#""2024-03-01 10:00:00 +01:00""#, Some(1_709_283_600_000)),
            (r#""2024-03-01 09:00:00 CET""#, None),
            (r#""01/03/2024 09:00""#, None),
            (r#""yesterday""#, None),
            (r#""NaN""#, None),
            ("18446744073709551615", None),
        ],
    );
}

#[test]
fn time_forms_with_an_explicit_format() {
    let nine = 1_709_283_600_000;
    assert_times(
        TimeFormat::Rfc3339,
        &[
            (r#""2024-03-01T09:00:00Z""#, Some(nine)),
            (r#""2024-03-01 10:00:00.250+01:00""#, Some(nine + 250)),
            ("1709283600", None),
            (r#""1709283600""#, None),
        ],
    );
    assert_times(
        TimeFormat::EpochS,
        &[
            ("1709283600", Some(nine)),
            (r#""1709283600""#, Some(nine)),
            ("1709283600.5", Some(nine + 500)),
            ("1076801537.222", Some(1_076_801_537_222)),
            // 1.7e12 s is in the year ~56000: outside the accepted years 0000 to 9999.
            ("1709283600000", None),
            ("253402300799", Some(253_402_300_799_000)),
            ("12", Some(12_000)),
            (r#""2024-03-01T09:00:00Z""#, None),
            ("9223372036854775807", None),
        ],
    );
    assert_times(
        TimeFormat::EpochMs,
        &[
            ("1709283600000", Some(nine)),
            (r#""1709283600000""#, Some(nine)),
            ("1709283600", Some(1_709_283_600)),
            ("1709283600000.9", Some(nine)),
            ("-0.5", Some(-1)),
            (r#""2024-03-01T09:00:00Z""#, None),
        ],
    );
    for (text, format) in [
        ("auto", TimeFormat::Auto),
        ("RFC3339", TimeFormat::Rfc3339),
        (" epoch_s", TimeFormat::EpochS),
        ("epoch_ms", TimeFormat::EpochMs),
    ] {
        assert_eq!(text.parse::<TimeFormat>(), Ok(format));
    }
    assert!("epoch_us".parse::<TimeFormat>().is_err());
    assert_eq!(TimeFormat::default(), TimeFormat::Auto);
}

/// A UTF-8 byte order mark, as Windows tools write, is not part of the first key or column.
#[test]
fn byte_order_mark_is_skipped() {
    let dir = TempDir::new().unwrap();
    let csv = "\u{feff}customer,time,contact_point\r\nann,2024-03-01T09:00:00Z,home\r\n";
    let jsonl = "\u{feff}{\"customer\":\"ann\",\"time\":\"2024-03-01T09:00:00Z\",\"contact_point\":\"home\"}\r\n";
    for path in [
        write(&dir, "bom.csv", csv.as_bytes()),
        write(&dir, "bom.csv.gz", &gzip(csv.as_bytes())),
        write(&dir, "bom.jsonl", jsonl.as_bytes()),
        write(&dir, "bom.jsonl.zst", &zstd(jsonl.as_bytes())),
    ] {
        let got = records(&path, &DecodeOptions::default());
        assert_eq!(got.len(), 1, "{}", path.display());
        assert_eq!((got[0].customer.as_str(), got[0].time), ("ann", 1_709_283_600_000));
    }
}

/// Time and value cells of native Parquet types: timestamps of each unit, dates, integers.
#[test]
fn native_columnar_time_and_value_types() {
    use arrow::array::{
        Date32Array, Decimal128Array, Int32Array, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray, UInt64Array,
    };
    let dir = TempDir::new().unwrap();
    let nine = 1_709_283_600_000;
    let cases: [(ArrayRef, ArrayRef, i64, i64); 6] = [
        (Arc::new(TimestampSecondArray::from(vec![nine / 1000])), Arc::new(Int32Array::from(vec![7])), nine, 7_000_000),
        (
            Arc::new(TimestampMillisecondArray::from(vec![nine + 5]).with_timezone("+02:00")),
            Arc::new(UInt64Array::from(vec![3])),
            nine + 5,
            3_000_000,
        ),
        (
            Arc::new(TimestampNanosecondArray::from(vec![(nine + 7) * 1_000_000 + 999_999])),
            Arc::new(Decimal128Array::from(vec![1999]).with_precision_and_scale(10, 2).unwrap()),
            nine + 7,
            19_990_000,
        ),
        (Arc::new(TimestampNanosecondArray::from(vec![-1])), Arc::new(Float64Array::from(vec![-0.5])), -1, -500_000),
        (
            Arc::new(Date32Array::from(vec![19_783])),
            Arc::new(StringArray::from(vec!["2.5"])),
            19_783 * 86_400_000,
            2_500_000,
        ),
        (Arc::new(Int64Array::from(vec![nine / 1000])), Arc::new(Int64Array::from(vec![None])), nine, 0),
    ];
    for (i, (time, value, ms, micros)) in cases.into_iter().enumerate() {
        let batch = RecordBatch::try_from_iter([
            ("customer", Arc::new(Int64Array::from(vec![42])) as ArrayRef),
            ("time", time),
            ("contact_point", Arc::new(StringArray::from(vec!["home"]))),
            ("value", value),
        ])
        .unwrap();
        let path = dir.path().join(format!("native{i}.parquet"));
        write_parquet(&path, &[batch]);
        let got = records(&path, &DecodeOptions::default());
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].customer.as_str(), got[0].time, got[0].value), ("42", ms, micros), "case {i}");
    }
}

#[test]
fn value_forms() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (r#"3"#, 3_000_000),
        (r#"19.99"#, 19_990_000),
        (r#"-2.5"#, -2_500_000),
        (r#"1e3"#, 1_000_000_000),
        (r#"0.0000005"#, 1),
        (r#""42""#, 42_000_000),
        (r#"" 7.25 ""#, 7_250_000),
        (r#""-0.1""#, -100_000),
        (r#""""#, 0),
        (r#"null"#, 0),
    ];
    let mut lines: String = cases
        .iter()
        .map(|(cell, _)| format!("{{\"customer\":\"c\",\"time\":0,\"contact_point\":\"p\",\"value\":{cell}}}\n"))
        .collect();
    lines.push_str("{\"customer\":\"c\",\"time\":0,\"contact_point\":\"p\"}\n");
    let jsonl = write(&dir, "values.jsonl", lines.as_bytes());
    let expected: Vec<i64> = cases.iter().map(|(_, micros)| *micros).chain([0]).collect();
    let got: Vec<i64> = records(&jsonl, &DecodeOptions::default()).iter().map(|r| r.value).collect();
    assert_eq!(got, expected);

    let csv = write(
        &dir,
        "values.csv",
        b"customer,time,contact_point,value\nc,0,p,12\nc,0,p,0.1\nc,0,p,\nc,0,p,-3\nc,0,p,\" 4.5 \"\n",
    );
    let got: Vec<i64> = records(&csv, &DecodeOptions::default()).iter().map(|r| r.value).collect();
    assert_eq!(got, [12_000_000, 100_000, 0, -3_000_000, 4_500_000]);
}

/// Ids and other text fields given as numbers keep their text form.
#[test]
fn numeric_ids_become_text() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "ids.jsonl",
        b"{\"customer\":173688,\"time\":0,\"contact_point\":7,\"session\":2.5,\"channel\":-1}\n\
          {\"customer\":173688.0,\"time\":0,\"contact_point\":\"p\",\"session\":18446744073709551615}\n",
    );
    let got = records(&path, &DecodeOptions::default());
    assert_eq!(
        got.iter()
            .map(|r| (r.customer.as_str(), r.contact_point.as_str(), r.session.as_deref(), r.channel.as_deref()))
            .collect::<Vec<_>>(),
        [("173688", "7", Some("2.5"), Some("-1")), ("173688", "p", Some("18446744073709551615"), None)]
    );
}

/// The first lines of the public running example, mapped the way a process-mining export needs.
#[test]
fn real_log_csv_line() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "running.csv",
        b",concept:name,org:resource,time:timestamp,Activity,Resource,Costs,case:concept:name,case:creator\n\
          0,register request,Pete,2010-12-30 14:32:00+01:00,register request,Pete,50,3,Fluxicon Nitro\n\
          1,examine casually,Mike,2010-12-30 15:06:00+01:00,examine casually,Mike,400,3,Fluxicon Nitro\n",
    );
    let options = DecodeOptions {
        mapping: Mapping::parse(
            "customer=case:concept:name,time=time:timestamp,contact_point=concept:name,channel=org:resource,value=Costs",
        )
        .unwrap(),
        ..DecodeOptions::default()
    };
    let got = records(&path, &options);
    assert_eq!(
        got[0],
        Record {
            customer: "3".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_715_920_000,
            contact_point: "register request".into(),
            channel: Some("Pete".into()),
            kind: None,
            session: None,
            converting: false,
            value: 50_000_000,
        }
    );
    assert_eq!(
        (got[1].time, got[1].contact_point.as_str(), got[1].value),
        (1_293_717_960_000, "examine casually", 400_000_000)
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn journey_key_column_fills_the_record() {
    let dir = TempDir::new().unwrap();
    let jsonl = write(
        &dir,
        "orders.jsonl",
        b"{\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":\"o-1\"}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":1002}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\"}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":\"\"}\n",
    );
    let csv =
        write(&dir, "orders.csv", b"customer,time,contact_point,order id\na,0,p,o-1\na,0,p,1002\na,0,p,\na,0,p,\n");
    let batch = RecordBatch::try_from_iter([
        ("customer", Arc::new(StringArray::from(vec!["a"; 4])) as ArrayRef),
        ("time", Arc::new(Int64Array::from(vec![0; 4]))),
        ("contact_point", Arc::new(StringArray::from(vec!["p"; 4]))),
        ("order id", Arc::new(StringArray::from(vec![Some("o-1"), Some("1002"), None, Some("")]))),
    ])
    .unwrap();
    let parquet = dir.path().join("orders.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    let arrow = write(&dir, "orders.arrow", &arrow_file_bytes(&[batch]));
    let options = DecodeOptions { journey_key: Some("order id".into()), ..DecodeOptions::default() };
    for path in [jsonl, csv, parquet, arrow] {
        let keys: Vec<Option<String>> = records(&path, &options).into_iter().map(|r| r.journey_key).collect();
        assert_eq!(keys, [Some("o-1".into()), Some("1002".into()), None, None], "{}", path.display());
    }

    // The journey key may share its column with a field.
    let path =
        write(&dir, "shared.jsonl", b"{\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"session\":\"s1\"}\n");
    let options = DecodeOptions { journey_key: Some("session".into()), ..DecodeOptions::default() };
    let got = records(&path, &options);
    assert_eq!((got[0].journey_key.as_deref(), got[0].session.as_deref()), (Some("s1"), Some("s1")));
}

#[test]
fn conversion_by_kind_and_by_contact_point() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "conversions.csv",
        b"customer,time,contact_point,kind\n\
          a,0,home,view\n\
          a,1,checkout,purchase\n\
          a,2,welcome,signup\n\
          a,3,payment_done,\n\
          a,4,payment_done,Purchase\n\
          a,5,purchase,refund\n",
    );
    let converting = |conversion: Option<&str>| -> Vec<bool> {
        let options =
            DecodeOptions { conversion: conversion.map(|c| Conversion::parse(c).unwrap()), ..DecodeOptions::default() };
        records(&path, &options).iter().map(|r| r.converting).collect()
    };
    assert_eq!(converting(Some("kind=purchase|signup")), [false, true, true, false, false, false]);
    assert_eq!(converting(Some("contact_point=payment_done")), [false, false, false, true, true, false]);
    assert_eq!(converting(None), [false; 6]);
}

#[test]
fn public_event_logs_decode_completely() {
    let Some(dir) = common::eventlogs() else {
        println!(
            "note: no eventlogs/ in the shared data ($STEPSTONE_SHARED_DATA or ../shared/data); public event log check skipped"
        );
        return;
    };
    let xes = "customer=case:concept:name,time=time:timestamp,contact_point=concept:name";
    for (file, extra, events, cases) in [
        ("running-example.csv", "", 42, 6),
        ("receipt.csv", ",channel=case:channel", 8_577, 1_434),
        ("helpdesk.csv.gz", "", 21_348, 4_580),
        ("bpic2012.csv.gz", "", 262_200, 13_087),
    ] {
        let path = dir.join(file);
        let options =
            DecodeOptions { mapping: Mapping::parse(&format!("{xes}{extra}")).unwrap(), ..DecodeOptions::default() };
        let (records, rejections) = decode(&path, None, &options);
        assert!(rejections.is_empty(), "{file}: {:#?}", &rejections[..rejections.len().min(5)]);
        assert_eq!(records.len(), events, "{file}");
        let customers: HashSet<&str> = records.iter().map(|r| r.customer.as_str()).collect();
        assert_eq!(customers.len(), cases, "{file}");
        if !extra.is_empty() {
            assert!(records.iter().all(|r| r.channel.is_some()), "{file}: a record without channel");
        }
        // All four logs were recorded between 2010 and 2014.
        let (first, last) = (1_262_304_000_000, 1_420_070_400_000);
        assert!(records.iter().all(|r| (first..last).contains(&r.time)), "{file}");
    }
}
