//! Tests of the input side's bad records (`stepstone::source`): malformed lines, wrong field
//! counts, missing or empty required fields, bad times and values, wrong types, invalid UTF-8 and
//! truncated compressed inputs each become exactly one rejection with the right line or row
//! number, field and kind, the good records around them still decode, and the dead-letter
//! writer's JSON lines and per-reason counts account for all of them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use stepstone::source::{DeadLetterWriter, DecodeOptions, Format, ReasonKind, Record, Rejection, open};
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn items(path: &Path, options: &DecodeOptions) -> Vec<Result<Record, Rejection>> {
    open(path.to_str().unwrap(), None, options).unwrap().collect()
}

/// What a test checks of one decoded item: the customer of a record, or a rejection's line,
/// kind and field.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Good(String),
    Bad(u64, ReasonKind, Option<String>),
}

fn seen(items: &[Result<Record, Rejection>]) -> Vec<Seen> {
    items
        .iter()
        .map(|item| match item {
            Ok(record) => Seen::Good(record.customer.clone()),
            Err(r) => Seen::Bad(r.line, r.kind, r.field.clone()),
        })
        .collect()
}

fn good(customer: &str) -> Seen {
    Seen::Good(customer.to_string())
}

fn bad(line: u64, kind: ReasonKind, field: Option<&str>) -> Seen {
    Seen::Bad(line, kind, field.map(str::to_string))
}

fn rejection(item: &Result<Record, Rejection>) -> &Rejection {
    item.as_ref().expect_err("expected a rejection")
}

const T: &str = "\"2024-03-01T09:00:00Z\"";

/// The JSON Lines input of the rejection tests and the item each line must give.
fn bad_jsonl() -> (Vec<u8>, Vec<Seen>) {
    use ReasonKind::*;
    let lines: Vec<(Vec<u8>, Option<Seen>)> = vec![
        (format!(r#"{{"customer":"ann","time":{T},"contact_point":"home"}}"#).into(), Some(good("ann"))),
        (br#"{"customer":"x","time":"#.to_vec(), Some(bad(2, Malformed, None))),
        (b"   ".to_vec(), None),
        (format!(r#"{{"time":{T},"contact_point":"home"}}"#).into(), Some(bad(4, MissingField, Some("customer")))),
        (
            format!(r#"{{"customer":"bob","time":{T},"contact_point":""}}"#).into(),
            Some(bad(5, MissingField, Some("contact_point"))),
        ),
        (
            br#"{"customer":"bob","time":"2024-13-45 10:00:00","contact_point":"home"}"#.to_vec(),
            Some(bad(6, BadTime, Some("time"))),
        ),
        (
            format!(r#"{{"customer":"bob","time":{T},"contact_point":"home","value":"12 EUR"}}"#).into(),
            Some(bad(7, BadValue, Some("value"))),
        ),
        (
            format!(r#"{{"customer":true,"time":{T},"contact_point":"home"}}"#).into(),
            Some(bad(8, BadType, Some("customer"))),
        ),
        (
            format!(r#"{{"customer":"bob","time":{T},"contact_point":{{"page":"home"}}}}"#).into(),
            Some(bad(9, BadType, Some("contact_point"))),
        ),
        (
            [
                &br#"{"customer":"b"#[..],
                b"\xff\xfe",
                &format!(r#"ob","time":{T},"contact_point":"home"}}"#).into_bytes(),
            ]
            .concat(),
            Some(bad(10, Malformed, None)),
        ),
        (b"[1,2,3]".to_vec(), Some(bad(11, Malformed, None))),
        (
            format!(r#"{{"customer":null,"time":{T},"contact_point":"home"}}"#).into(),
            Some(bad(12, MissingField, Some("customer"))),
        ),
        (b"".to_vec(), None),
        (
            format!(r#"{{"customer":"cid","time":{T},"contact_point":"home","unmapped":[true,{{}}]}}"#).into(),
            Some(good("cid")),
        ),
        (
            format!(r#"{{"customer":"dan","time":{T},"contact_point":"home","channel":["a"]}}"#).into(),
            Some(bad(15, BadType, Some("channel"))),
        ),
        (
            format!(r#"{{"customer":"dan","time":{T},"contact_point":"home"}} {{"again":1}}"#).into(),
            Some(bad(16, Malformed, None)),
        ),
        (br#"{"customer":"dan","time":true,"contact_point":"home"}"#.to_vec(), Some(bad(17, BadType, Some("time")))),
        (br#"{"customer":"dan","contact_point":"home"}"#.to_vec(), Some(bad(18, MissingField, Some("time")))),
        (
            format!(r#"{{"customer":"dan","time":{T},"contact_point":"home","value":"inf"}}"#).into(),
            Some(bad(19, BadValue, Some("value"))),
        ),
        (
            format!(r#"{{"customer":"dan","time":{T},"contact_point":"home","value":false}}"#).into(),
            Some(bad(20, BadType, Some("value"))),
        ),
        (b"not json at all".to_vec(), Some(bad(21, Malformed, None))),
        (format!("{{\"customer\":\"eve\",\"time\":{T},\"contact_point\":\"home\"}}\r").into(), Some(good("eve"))),
    ];
    let mut bytes = Vec::new();
    for (line, _) in &lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    let expected = lines.into_iter().filter_map(|(_, seen)| seen).collect();
    (bytes, expected)
}

#[test]
fn jsonl_rejections_have_line_field_and_kind() {
    let dir = TempDir::new().unwrap();
    let (bytes, expected) = bad_jsonl();
    let path = write(&dir, "bad.jsonl", &bytes);
    let items = items(&path, &DecodeOptions::default());
    assert_eq!(seen(&items), expected);

    let source = path.to_str().unwrap();
    assert!(items.iter().filter_map(|i| i.as_ref().err()).all(|r| r.source == source));
    let bad_time = rejection(&items[4]);
    assert_eq!(bad_time.raw, r#"{"customer":"bob","time":"2024-13-45 10:00:00","contact_point":"home"}"#);
    assert!(bad_time.reason.contains("2024-13-45"), "{}", bad_time.reason);
    assert_eq!(bad_time.to_string(), format!("{source}:6: {}", bad_time.reason), "Display is source:line: reason");
    assert!(rejection(&items[5]).reason.contains("12 EUR"));
    let invalid_utf8 = rejection(&items[8]);
    assert!(invalid_utf8.reason.contains("UTF-8"), "{}", invalid_utf8.reason);
    assert!(invalid_utf8.raw.contains("\u{FFFD}"), "{}", invalid_utf8.raw);
    assert_eq!(items[8].as_ref().unwrap_err().reason_kind(), "malformed");
}

#[test]
fn every_nonblank_line_gives_exactly_one_item() {
    let dir = TempDir::new().unwrap();
    let mut bytes = Vec::new();
    let mut nonblank = 0;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..500 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line: Vec<u8> = state.to_le_bytes().iter().map(|b| b % 96 + 31).filter(|&b| b != b'\n').collect();
        let line = if i % 3 == 0 {
            format!(r#"{{"customer":"c{i}","time":{},"contact_point":"p"}}"#, i * 1000).into_bytes()
        } else {
            line
        };
        if !line.trim_ascii().is_empty() {
            nonblank += 1;
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    let path = write(&dir, "noise.jsonl", &bytes);
    let items = items(&path, &DecodeOptions::default());
    assert_eq!(items.len(), nonblank);
    assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 167);
}

/// The same bad CSV with LF and CRLF line ends, with and without a byte order mark and a final
/// line end: blank lines, quoted line breaks and terminators do not shift the line numbers.
#[test]
fn csv_rejections_have_line_field_and_kind() {
    use ReasonKind::*;
    let dir = TempDir::new().unwrap();
    let lines: [&[u8]; 17] = [
        b"customer,time,contact_point,value",
        b"ann,2024-03-01T09:00:00Z,home,1",
        b"bob,2024-03-01T09:00:00Z,home",
        b",2024-03-01T09:00:00Z,home,1",
        b"bob,2024-03-01T09:00:00Z,,1",
        b"bob,not a time,home,1",
        b"bob,2024-03-01T09:00:00Z,home,abc",
        b"\"multi",
        b"line\",2024-03-01T09:00:00Z,\"home, sweet",
        b"home\",2",
        b"bob,2024-03-01T09:00:00Z,ho\xffme,1",
        b"",
        b"bob,2024-03-01T09:00:00Z,home,1,extra",
        b"dan,1709283600,home,",
        b"",
        b"",
        b"cid,,home,1",
    ];
    for (name, bom, newline, last_newline) in [
        ("lf.csv", "", "\n", false),
        ("lf_end.csv", "", "\n", true),
        ("crlf.csv", "", "\r\n", false),
        ("crlf_end.csv", "", "\r\n", true),
        ("bom_crlf_end.csv", "\u{feff}", "\r\n", true),
        ("bom_lf.csv", "\u{feff}", "\n", false),
    ] {
        let mut bytes = [bom.as_bytes(), &lines.join(newline.as_bytes())].concat();
        if last_newline {
            bytes.extend_from_slice(newline.as_bytes());
        }
        let path = write(&dir, name, &bytes);
        let items = items(&path, &DecodeOptions::default());
        assert_eq!(
            seen(&items),
            [
                good("ann"),
                bad(3, Malformed, None),
                bad(4, MissingField, Some("customer")),
                bad(5, MissingField, Some("contact_point")),
                bad(6, BadTime, Some("time")),
                bad(7, BadValue, Some("value")),
                good(&format!("multi{newline}line")),
                bad(11, Malformed, None),
                bad(13, Malformed, None),
                good("dan"),
                bad(17, MissingField, Some("time")),
            ],
            "{name}"
        );
        let record = items[6].as_ref().unwrap();
        assert_eq!(record.contact_point, format!("home, sweet{newline}home"), "{name}");
        assert_eq!(record.value, 2_000_000);
        assert_eq!(rejection(&items[1]).raw, "bob,2024-03-01T09:00:00Z,home");
        assert!(rejection(&items[1]).reason.contains("3 fields"), "{}", rejection(&items[1]).reason);
        assert_eq!(rejection(&items[4]).raw, "bob,not a time,home,1");
        assert!(rejection(&items[7]).reason.contains("UTF-8"));
        assert_eq!(rejection(&items[8]).raw, "bob,2024-03-01T09:00:00Z,home,1,extra");
        assert_eq!(rejection(&items[10]).raw, "cid,,home,1");
    }
}

/// Line numbers stay exact across the reader's buffer refills: with 32-byte lines every 256 KiB
/// refill starts on a record, with CRLF some refills split a line end, and compressed inputs
/// refill at arbitrary bytes.
#[test]
fn csv_line_numbers_hold_across_buffer_refills() {
    let dir = TempDir::new().unwrap();
    for newline in ["\n", "\r\n"] {
        let mut csv = format!("customer,time,contact_point,pad{newline}");
        let mut bad_lines = Vec::new();
        for i in 0..40_000 {
            let time = if i % 997 == 5 {
                bad_lines.push(i + 2);
                "xxxxxxxxxx".to_string()
            } else {
                (1_700_000_000 + i).to_string()
            };
            csv.push_str(&format!("c{i:05},{time},p{:05},xxxxxx{newline}", i % 7));
        }
        assert_eq!(csv.find('\n'), Some(31 + newline.len() - 1));
        let gz = {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(csv.as_bytes()).unwrap();
            encoder.finish().unwrap()
        };
        for path in [write(&dir, "long.csv", csv.as_bytes()), write(&dir, "long.csv.gz", &gz)] {
            let items = items(&path, &DecodeOptions::default());
            assert_eq!(items.len(), 40_000);
            let lines: Vec<u64> = items.iter().filter_map(|i| i.as_ref().err()).map(|r| r.line).collect();
            assert_eq!(lines, bad_lines, "{} {newline:?}", path.display());
        }
    }
}

/// A gzip or zstd input cut short: the records before the cut decode, then one read error
/// names the line where reading stopped, and the input ends.
#[test]
fn truncated_compressed_input_ends_with_one_read_error() {
    let dir = TempDir::new().unwrap();
    let mut jsonl = String::new();
    let mut csv = String::from("customer,time,contact_point\n");
    for i in 0..20_000 {
        jsonl.push_str(&format!(
            "{{\"customer\":\"c{i}\",\"time\":{},\"contact_point\":\"page {}\"}}\n",
            1_700_000_000 + i * 7,
            i * 7919 % 1000
        ));
        csv.push_str(&format!("c{i},{},page {}\n", 1_700_000_000 + i * 7, i * 7919 % 1000));
    }
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let zstd = |bytes: &[u8]| zstd::encode_all(bytes, 3).unwrap();
    let half = |bytes: Vec<u8>| bytes[..bytes.len() / 2].to_vec();
    for (name, bytes, first_line) in [
        ("cut.jsonl.gz", half(gzip(jsonl.as_bytes())), 1),
        ("cut.jsonl.zst", half(zstd(jsonl.as_bytes())), 1),
        ("cut.csv.gz", half(gzip(csv.as_bytes())), 2),
        ("cut.csv.zst", half(zstd(csv.as_bytes())), 2),
    ] {
        let path = write(&dir, name, &bytes);
        let items = items(&path, &DecodeOptions::default());
        let (last, records) = items.split_last().unwrap();
        assert!(records.len() > 1000, "{name}: only {} records before the cut", records.len());
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.as_ref().unwrap().customer, format!("c{i}"), "{name}");
        }
        let error = rejection(last);
        assert_eq!(error.kind, ReasonKind::ReadError, "{name}: {error}");
        assert_eq!(error.line, first_line + records.len() as u64, "{name}: {error}");
        assert_eq!(error.field, None);
    }

    // Not compressed at all despite the extension: one read error on the first line.
    let path = write(&dir, "plain.jsonl.gz", jsonl.as_bytes());
    let items = items(&path, &DecodeOptions::default());
    assert_eq!(seen(&items), [bad(1, ReasonKind::ReadError, None)]);
}

/// An Arrow stream cut inside its second batch: the first batch decodes, then one read error
/// names the row where reading stopped.
#[test]
fn truncated_arrow_stream_ends_with_one_read_error() {
    let dir = TempDir::new().unwrap();
    let batch = |from: usize| {
        let customers: Vec<String> = (from..from + 1000).map(|i| format!("c{i}")).collect();
        RecordBatch::try_from_iter([
            ("customer", Arc::new(StringArray::from(customers)) as ArrayRef),
            ("time", Arc::new(StringArray::from(vec!["2024-03-01T09:00:00Z"; 1000]))),
            ("contact_point", Arc::new(StringArray::from(vec!["home"; 1000]))),
        ])
        .unwrap()
    };
    let mut stream = StreamWriter::try_new(Vec::new(), &batch(0).schema()).unwrap();
    stream.write(&batch(0)).unwrap();
    stream.write(&batch(1000)).unwrap();
    stream.finish().unwrap();
    let bytes = stream.into_inner().unwrap();
    let path = write(&dir, "cut.arrows", &bytes[..bytes.len() * 3 / 4]);
    let items = items(&path, &DecodeOptions::default());
    let (last, records) = items.split_last().unwrap();
    assert_eq!(records.len(), 1000);
    assert!(records.iter().enumerate().all(|(i, r)| r.as_ref().unwrap().customer == format!("c{i}")));
    assert_eq!(seen(std::slice::from_ref(last)), [bad(1001, ReasonKind::ReadError, None)]);
}

/// Parquet and Arrow rejections carry the 1-based row number across batches and the row as
/// JSON.
#[test]
fn columnar_rejections_have_row_numbers() {
    use ReasonKind::*;
    let dir = TempDir::new().unwrap();
    let batch = |customers: Vec<Option<&str>>, times: Vec<&str>, flags: Vec<Option<bool>>, values: Vec<f64>| {
        RecordBatch::try_from_iter([
            ("customer", Arc::new(StringArray::from(customers)) as ArrayRef),
            ("time", Arc::new(StringArray::from(times))),
            ("contact_point", Arc::new(StringArray::from(vec!["home"; 3]))),
            ("channel", Arc::new(BooleanArray::from(flags))),
            ("value", Arc::new(Float64Array::from(values))),
        ])
        .unwrap()
    };
    let t = "2024-03-01T09:00:00Z";
    let batches = [
        batch(
            vec![Some("ann"), None, Some("bob")],
            vec![t, t, "2024-02-30"],
            vec![None, None, None],
            vec![1.0, 2.0, 3.0],
        ),
        batch(
            vec![Some("cid"), Some("dan"), Some("")],
            vec![t, t, t],
            vec![None, Some(true), None],
            vec![4.0, f64::NAN, 6.0],
        ),
    ];
    let parquet = dir.path().join("bad.parquet");
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&parquet).unwrap(), batches[0].schema(), None).unwrap();
    let mut stream = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
        writer.flush().unwrap();
        stream.write(batch).unwrap();
    }
    writer.close().unwrap();
    stream.finish().unwrap();
    let arrow = write(&dir, "bad.arrows", &stream.into_inner().unwrap());
    for path in [parquet, arrow] {
        let items = items(&path, &DecodeOptions::default());
        assert_eq!(
            seen(&items),
            [
                good("ann"),
                bad(2, MissingField, Some("customer")),
                bad(3, BadTime, Some("time")),
                good("cid"),
                bad(5, BadType, Some("channel")),
                bad(6, MissingField, Some("customer")),
            ],
            "{}",
            path.display()
        );
        let raw: Value = serde_json::from_str(&rejection(&items[2]).raw).unwrap();
        assert_eq!(raw["customer"], "bob", "{}", path.display());
        assert_eq!(raw["time"], "2024-02-30");
        assert_eq!(raw["value"], 3.0);
        let raw: Value = serde_json::from_str(&rejection(&items[1]).raw).unwrap();
        assert_eq!(raw["customer"], Value::Null);
        assert!(rejection(&items[4]).reason.contains("boolean"));
    }
}

#[test]
fn dead_letter_file_has_one_json_line_per_rejection_and_counts_by_reason() {
    let dir = TempDir::new().unwrap();
    let (bytes, _) = bad_jsonl();
    let input = write(&dir, "bad.jsonl", &bytes);
    let rejections: Vec<Rejection> =
        items(&input, &DecodeOptions::default()).into_iter().filter_map(Result::err).collect();
    assert_eq!(rejections.len(), 17);

    let path = dir.path().join("dead.jsonl");
    let mut writer = DeadLetterWriter::create(&path).unwrap();
    for r in &rejections {
        writer.write(r).unwrap();
    }
    writer.flush().unwrap();
    assert_eq!(writer.path(), path);
    assert_eq!(writer.total(), 17);
    let counts: Vec<(&str, u64)> = writer.counts().iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(counts, [("bad_time", 1), ("bad_type", 5), ("bad_value", 2), ("malformed", 5), ("missing_field", 4)]);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), rejections.len());
    for (line, r) in lines.iter().zip(&rejections) {
        assert_eq!(line["source"], input.to_str().unwrap());
        assert_eq!(line["line"], r.line);
        assert_eq!(line["field"].as_str(), r.field.as_deref());
        assert_eq!(line["reason"], r.reason.as_str());
        assert_eq!(line["raw"], r.raw.as_str());
    }
    assert_eq!(lines[2]["field"], "contact_point");
    assert_eq!(lines[0]["field"], Value::Null);

    // Appending keeps what is there and counts afresh; creating truncates.
    drop(writer);
    let mut writer = DeadLetterWriter::append(&path).unwrap();
    writer.write(&rejections[0]).unwrap();
    writer.flush().unwrap();
    assert_eq!(writer.total(), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 18);
    drop(writer);
    let mut writer = DeadLetterWriter::create(&path).unwrap();
    writer.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

/// Stdin cannot be Parquet, and a wrong explicit format fails on open or rejects each row.
#[test]
fn impossible_inputs_fail_on_open() {
    assert!(open("-", Some(Format::Parquet), &DecodeOptions::default()).is_err());
    assert!(open("/nonexistent/events.jsonl", None, &DecodeOptions::default()).is_err());
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "events.csv", b"customer,time,contact_point\na,0,p\n");
    assert!(open(path.to_str().unwrap(), Some(Format::Parquet), &DecodeOptions::default()).is_err());
    assert!(open(path.to_str().unwrap(), Some(Format::Arrow), &DecodeOptions::default()).is_err());
    let items: Vec<_> = open(path.to_str().unwrap(), Some(Format::Jsonl), &DecodeOptions::default()).unwrap().collect();
    assert_eq!(seen(&items), [bad(1, ReasonKind::Malformed, None), bad(2, ReasonKind::Malformed, None)]);
}

#[test]
fn times_outside_the_years_0000_to_9999_are_rejected() {
    let dir = TempDir::new().unwrap();
    let lines = [
        r#"{"customer":"a","time":"9999-12-31T23:59:59.999Z","contact_point":"home"}"#,
        r#"{"customer":"b","time":9000000000000000000,"contact_point":"home"}"#,
        r#"{"customer":"c","time":-9000000000000000000,"contact_point":"home"}"#,
        r#"{"customer":"d","time":"0000-01-01 00:00:00","contact_point":"home"}"#,
    ];
    let path = write(&dir, "range.jsonl", (lines.join("\n") + "\n").as_bytes());
    let items = items(&path, &DecodeOptions::default());
    assert_eq!(
        seen(&items),
        [good("a"), bad(2, ReasonKind::BadTime, Some("time")), bad(3, ReasonKind::BadTime, Some("time")), good("d")]
    );
    assert!(rejection(&items[1]).reason.contains("outside the years 0000 to 9999"), "{}", rejection(&items[1]).reason);
}
