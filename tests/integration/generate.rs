//! Tests of the synthetic stream of `stepstone generate`: byte-identical output for the same
//! options, a summary that matches an independent reading of the file, the requested share of
//! out-of-order arrivals, skewed customer activity, the journey world (channels, contact points,
//! purchase values), and every output format read back through the input side.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use stepstone::generate::{GenerateOptions, GenerateSummary, generate};
use stepstone::source::{self, DecodeOptions, ReasonKind, Record};

/// Options for `events` events over 2,000 customers into `out`.
fn options(out: &Path, events: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        events,
        customers: 2_000,
        seed,
        out: out.to_owned(),
        out_of_order: 0.05,
        malformed: 0.002,
        start: "2026-01-01T00:00:00Z".into(),
    }
}

/// Generates with `options`, checking that the summary's byte count is the file's size.
fn run(options: &GenerateOptions) -> GenerateSummary {
    let summary = generate(options).expect("generate");
    let size = std::fs::metadata(&options.out).expect("output exists").len();
    assert_eq!(summary.bytes, size, "{}", options.out.display());
    summary
}

/// One well-formed event of the JSONL output, read independently of the input side.
struct Event {
    customer: String,
    time: i64,
    channel: String,
    contact_point: String,
    kind: String,
    value: Option<f64>,
}

/// Reads a JSONL output: the well-formed events (valid JSON with a customer, an RFC 3339 time,
/// a contact point and, if present, a numeric value) in file order, and the number of other
/// lines.
fn read_jsonl(path: &Path) -> (Vec<Event>, u64) {
    let text = std::fs::read_to_string(path).expect("reading the JSONL output");
    let mut events = Vec::new();
    let mut malformed = 0;
    for line in text.lines() {
        match parse_event(line) {
            Some(event) => events.push(event),
            None => malformed += 1,
        }
    }
    (events, malformed)
}

/// The event on `line`, or `None` when the line is malformed.
fn parse_event(line: &str) -> Option<Event> {
    let object: serde_json::Map<String, Value> = serde_json::from_str(line).ok()?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let time = chrono::DateTime::parse_from_rfc3339(&text("time")?).ok()?.timestamp_millis();
    let value = match object.get("value") {
        None => None,
        Some(value) => Some(value.as_f64()?),
    };
    Some(Event {
        customer: text("customer")?,
        time,
        channel: text("channel")?,
        contact_point: text("contact_point")?,
        kind: text("kind")?,
        value,
    })
}

/// Records whose time is earlier than the latest time before them.
fn late_arrivals(times: impl IntoIterator<Item = i64>) -> usize {
    let mut latest = i64::MIN;
    let mut late = 0;
    for time in times {
        if time < latest {
            late += 1;
        }
        latest = latest.max(time);
    }
    late
}

/// Decodes `path` through the input side with the default mapping: records and rejections.
fn decode(path: &Path) -> (Vec<Record>, Vec<source::Rejection>) {
    let input = source::open(path.to_str().unwrap(), None, &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("opening {}: {e:#}", path.display()));
    let (mut records, mut rejections) = (Vec::new(), Vec::new());
    for item in input {
        match item {
            Ok(record) => records.push(record),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (records, rejections)
}

#[test]
fn same_options_give_identical_bytes_and_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.jsonl", "a.csv", "a.arrow", "a.jsonl.gz", "a.csv.zst"] {
        let first = dir.path().join(name);
        let again = dir.path().join(format!("again-{name}"));
        let other = dir.path().join(format!("other-{name}"));
        let a = run(&options(&first, 5_000, 7));
        let b = run(&options(&again, 5_000, 7));
        let c = run(&options(&other, 5_000, 8));
        assert_eq!(a, b, "{name}");
        let bytes = |p: &Path| std::fs::read(p).unwrap();
        assert!(bytes(&first) == bytes(&again), "{name}: same options, different bytes");
        assert!(bytes(&first) != bytes(&other), "{name}: another seed, same bytes");
        assert_eq!(c.events, 5_000);
    }
}

#[test]
fn compressed_outputs_hold_the_plain_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("s.jsonl");
    let gz = dir.path().join("s.jsonl.gz");
    let zst = dir.path().join("s.jsonl.zst");
    let summary = run(&options(&plain, 5_000, 3));
    assert_eq!(run(&options(&gz, 5_000, 3)).events, summary.events);
    assert_eq!(run(&options(&zst, 5_000, 3)).events, summary.events);
    let expected = std::fs::read(&plain).unwrap();
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()).read_to_end(&mut unzipped).unwrap();
    assert!(unzipped == expected, "gzip output differs from the plain output");
    let unzstd = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    assert!(unzstd == expected, "zstd output differs from the plain output");
    assert!(summary.bytes > std::fs::metadata(&gz).unwrap().len());
}

#[test]
fn summary_matches_the_file_and_the_stream_is_realistic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stream.jsonl");
    let summary = run(&options(&out, 40_000, 11));
    let (events, malformed) = read_jsonl(&out);
    assert_eq!(summary.events, 40_000);
    assert_eq!(events.len() as u64, summary.events);
    assert_eq!(malformed, summary.malformed);
    assert_eq!(summary.malformed, 80, "0.2 % of 40,000");

    let mut per_customer: HashMap<&str, u64> = HashMap::new();
    for event in &events {
        *per_customer.entry(&event.customer).or_default() += 1;
    }
    assert_eq!(per_customer.len() as u64, summary.customers);
    assert!(summary.customers <= 2_000);
    assert!(per_customer.keys().all(|c| c.len() == 7 && c.starts_with('c')));

    // Out of order: about 5 % of the events arrive after a later one.
    let late = late_arrivals(events.iter().map(|e| e.time)) as f64 / events.len() as f64;
    assert!((0.035..0.065).contains(&late), "out-of-order share {late}");

    // Zipf activity: the busiest 1 % (10 %) of the customers have several times 1 % (10 %) of
    // the events. The head is flattened by design: a customer starts no session while in one
    // or within a pause of 35 minutes to days after the last.
    let mut counts: Vec<u64> = per_customer.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let share = |top: usize| counts[..top].iter().sum::<u64>() as f64 / events.len() as f64;
    assert!(share(20) > 0.04, "top 1 % of the customers have {} of the events", share(20));
    assert!(share(200) > 0.25, "top 10 % of the customers have {} of the events", share(200));

    let channels: HashSet<&str> = events.iter().map(|e| e.channel.as_str()).collect();
    assert_eq!(channels, HashSet::from(["web", "app", "email", "call", "store"]));
    let contact_points: HashSet<&str> = events.iter().map(|e| e.contact_point.as_str()).collect();
    assert!((28..=32).contains(&contact_points.len()), "{contact_points:?}");

    // Purchases (and only purchases) carry a positive value.
    let purchases = events.iter().filter(|e| e.kind == "purchase").count();
    assert!(purchases > 100, "{purchases} purchases");
    for event in &events {
        match (&event.value, event.kind.as_str()) {
            (Some(value), "purchase") => assert!((5.0..=500.0).contains(value), "{value}"),
            (None, "purchase") => panic!("purchase without a value"),
            (Some(value), kind) => panic!("{kind} with value {value}"),
            (None, _) => {}
        }
    }
    let kinds: HashSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, HashSet::from(["view", "click", "add_to_cart", "purchase", "signup"]));
}

#[test]
fn out_of_order_share_follows_the_option() {
    let dir = tempfile::tempdir().unwrap();
    for (share, range) in [(0.0, 0.0..=0.0), (0.2, 0.17..=0.23)] {
        let out = dir.path().join(format!("ooo-{share}.jsonl"));
        let summary = run(&GenerateOptions { out_of_order: share, ..options(&out, 20_000, 5) });
        let (events, _) = read_jsonl(&out);
        assert_eq!(events.len() as u64, summary.events);
        let late = late_arrivals(events.iter().map(|e| e.time)) as f64 / events.len() as f64;
        assert!(range.contains(&late), "asked for {share}, got {late}");
    }
}

#[test]
fn malformed_records_follow_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clean.jsonl");
    let clean = run(&GenerateOptions { malformed: 0.0, ..options(&out, 2_000, 1) });
    assert_eq!(clean.malformed, 0);
    assert_eq!(read_jsonl(&out).1, 0);

    // A tiny share still gives one malformed record from 1,000 events on, but none below.
    let out = dir.path().join("one.jsonl");
    let one = run(&GenerateOptions { malformed: 0.0001, ..options(&out, 1_000, 1) });
    assert_eq!((one.malformed, read_jsonl(&out).1), (1, 1));
    let out = dir.path().join("none.jsonl");
    let none = run(&GenerateOptions { malformed: 0.0001, ..options(&out, 999, 1) });
    assert_eq!((none.malformed, read_jsonl(&out).1), (0, 0));
}

#[test]
fn every_format_decodes_with_the_malformed_records_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut decoded = Vec::new();
    for name in ["s.jsonl", "s.csv", "s.csv.gz", "s.jsonl.zst", "s.arrow"] {
        let out = dir.path().join(name);
        let summary = run(&GenerateOptions { malformed: 0.01, ..options(&out, 10_000, 21) });
        assert_eq!(summary.malformed, 100);
        let (records, rejections) = decode(&out);
        assert_eq!(records.len() as u64, summary.events, "{name}");
        assert_eq!(rejections.len() as u64, summary.malformed, "{name}");
        let customers: HashSet<&str> = records.iter().map(|r| r.customer.as_str()).collect();
        assert_eq!(customers.len() as u64, summary.customers, "{name}");
        let kinds: HashSet<ReasonKind> = rejections.iter().map(|r| r.kind).collect();
        let expected: &[ReasonKind] = if name.ends_with(".arrow") {
            &[ReasonKind::MissingField]
        } else {
            &[ReasonKind::MissingField, ReasonKind::BadTime, ReasonKind::BadValue, ReasonKind::Malformed]
        };
        assert_eq!(kinds, expected.iter().copied().collect(), "{name}");
        let late = late_arrivals(records.iter().map(|r| r.time)) as f64 / records.len() as f64;
        assert!((0.03..0.07).contains(&late), "{name}: out-of-order share {late}");
        decoded.push((name, records));
    }
    // The text formats are the same stream, whatever the format and compression.
    let (_, reference) = &decoded[0];
    for (name, records) in &decoded[1..4] {
        assert!(records == reference, "{name} decodes differently from JSONL");
    }
}

#[test]
fn arrow_output_matches_jsonl_across_batches() {
    // Without malformed records no draw depends on the format, so both hold the same events;
    // 70,000 rows span two Arrow record batches.
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("s.jsonl");
    let arrow = dir.path().join("s.arrow");
    let clean = |out: &Path| GenerateOptions { malformed: 0.0, ..options(out, 70_000, 9) };
    assert_eq!(
        run(&clean(&jsonl)),
        GenerateSummary { bytes: std::fs::metadata(&jsonl).unwrap().len(), ..run(&clean(&arrow)) }
    );
    let reader = arrow::ipc::reader::FileReader::try_new(std::fs::File::open(&arrow).unwrap(), None).unwrap();
    assert_eq!(reader.num_batches(), 2);
    let (from_arrow, rejected) = decode(&arrow);
    assert!(rejected.is_empty(), "{:?}", rejected.first());
    let (from_jsonl, _) = decode(&jsonl);
    assert_eq!(from_arrow.len(), 70_000);
    assert!(from_arrow == from_jsonl, "the Arrow output decodes differently from the JSONL output");
}

#[test]
fn stdout_output_is_the_jsonl_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.jsonl");
    run(&options(&file, 2_000, 4));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(["generate", "--events", "2000", "--customers", "2000", "--seed", "4"])
        .args(["--out-of-order", "0.05", "--malformed", "0.002", "--out", "-"])
        .output()
        .expect("running stepstone generate");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout == std::fs::read(&file).unwrap(), "stdout differs from the file output");
}

#[test]
fn bad_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let base = options(&out, 100, 1);
    let bad = [
        GenerateOptions { customers: 0, ..base.clone() },
        GenerateOptions { out_of_order: 1.0, ..base.clone() },
        GenerateOptions { malformed: -0.1, ..base.clone() },
        GenerateOptions { start: "yesterday".into(), ..base.clone() },
        GenerateOptions { out: dir.path().join("s.txt"), ..base.clone() },
        GenerateOptions { out: dir.path().join("s.arrow.gz"), ..base.clone() },
    ];
    for options in bad {
        assert!(generate(&options).is_err(), "{options:?}");
    }
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a failed run left a file");
}
