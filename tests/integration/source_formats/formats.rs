//! The formats: every format and compression decodes the event set to the same records, the
//! format comes from the extension or is given, sizes are reported for progress, stdin is read as
//! JSON Lines, a byte order mark is skipped, and native columnar time and value types decode.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use stepstone::source::{DecodeOptions, Format, open};
use tempfile::TempDir;

use super::*;

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
    // This test's name in the harness: its module path without the crate's name.
    let name = concat!(module_path!(), "::stdin_is_read_as_jsonl").split_once("::").unwrap().1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
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
