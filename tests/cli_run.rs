//! End-to-end checks of `stepstone run` on the bundled sample and on small hand-made inputs:
//! the demo pipeline's outputs against an independent recomputation, identical results for one
//! and two workers and for bulk versus many small epochs (late events across epochs), deltas
//! that replay to the final snapshot, dead letters with exact line numbers, strict mode, stdin,
//! and clear errors for bad configuration.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{OracleEvent, logical_time, oracle, read_table, root, stepstone, stepstone_ok};

const SAMPLE: &str = "data/sample/events.jsonl.gz";
const DEMO: &str = "data/pipelines/demo.toml";
const TABLES: [&str; 5] = ["journeys", "transitions", "channel_transitions", "segments", "segment_channels"];

/// Runs the demo pipeline into a temporary directory with `extra` flags.
fn demo(extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut args = vec!["run", "-q", "--config", DEMO, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    stepstone_ok(&args);
    out
}

/// The sample's lines, decompressed.
fn sample_lines() -> Vec<String> {
    let file = std::fs::File::open(root().join(SAMPLE)).expect("the bundled sample");
    BufReader::new(flate2::read::GzDecoder::new(file)).lines().map(|l| l.expect("a line")).collect()
}

/// The dead letters of a run: line number → (field, raw record).
fn dead_letters(dir: &Path) -> BTreeMap<u64, (Option<String>, String)> {
    let text = std::fs::read_to_string(dir.join("rejected.jsonl")).expect("rejected.jsonl");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON dead letter");
            assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "a reason: {line}");
            assert!(v["source"].as_str().is_some_and(|s| s.ends_with("events.jsonl.gz")), "the source: {line}");
            (
                v["line"].as_u64().unwrap(),
                (v["field"].as_str().map(str::to_owned), v["raw"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

#[test]
fn demo_outputs_match_an_independent_recomputation() {
    let out = demo(&[]);
    let lines = sample_lines();
    let rejected = dead_letters(out.path());

    // Every dead letter names its exact line; every other line is a good event.
    assert!(!rejected.is_empty());
    for (line, (_, raw)) in &rejected {
        assert_eq!(&lines[*line as usize - 1], raw, "dead letter of line {line}");
    }
    let mut events = Vec::new();
    for (row, line) in lines.iter().enumerate() {
        if rejected.contains_key(&(row as u64 + 1)) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).expect("a good line is JSON");
        let time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).expect("an RFC 3339 time");
        let kind = v["kind"].as_str().unwrap_or("");
        events.push(OracleEvent {
            customer: v["customer"].as_str().unwrap().to_owned(),
            time: time.timestamp_millis(),
            row,
            contact_point: v["contact_point"].as_str().unwrap().to_owned(),
            converting: kind == "purchase" || kind == "signup",
        });
    }
    let (expected_edges, expected_journeys) = oracle(&events, Some(30 * 60_000), 5);
    assert_eq!(common::edges(&read_table(out.path(), "transitions")), expected_edges);
    assert_eq!(common::journeys(&read_table(out.path(), "journeys")), expected_journeys);

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["events"].as_u64().unwrap() as usize, events.len());
    assert_eq!(summary["rejected_total"].as_u64().unwrap() as usize, rejected.len());
    assert_eq!(summary["customers"].as_u64().unwrap() as usize, expected_journeys.len());

    // All files of the final snapshot are for the same logical time; the contract columns exist.
    let times: BTreeSet<Option<String>> = TABLES.iter().map(|t| logical_time(&read_table(out.path(), t))).collect();
    assert_eq!(times.len(), 1);
    assert!(times.iter().next().unwrap().is_some());
    // The input has ended: every session is over.
    assert_eq!(common::watermark(&read_table(out.path(), "transitions")).as_deref(), Some("end"));
    let columns = |table: &str| -> Vec<String> {
        read_table(out.path(), table).schema().fields().iter().map(|f| f.name().clone()).collect()
    };
    for (table, expected) in [
        (
            "journeys",
            &[
                "customer",
                "first_time",
                "last_time",
                "events",
                "sessions",
                "session_start",
                "path",
                "channels",
                "converted",
                "conversions",
                "last_conversion_time",
                "value",
            ][..],
        ),
        ("transitions", &["from", "to", "count", "dwell_ms_total", "dwell_ms_mean", "probability"][..]),
        ("segments", &["segment", "members", "value", "conversion_rate"][..]),
        ("segment_channels", &["segment", "channel", "members"][..]),
    ] {
        let have = columns(table);
        for column in expected {
            assert!(have.iter().any(|c| c == column), "{table}.arrow lacks {column}: {have:?}");
        }
    }
    for table in TABLES {
        assert!(out.path().join(format!("{table}.parquet")).exists(), "{table}.parquet (demo sets parquet)");
    }
}

/// The batches of all tables of a run, without schema metadata (which holds wall-clock time).
fn tables_of(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    TABLES
        .iter()
        .map(|t| {
            let batch = read_table(dir, t);
            let schema =
                std::sync::Arc::new(batch.schema().as_ref().clone().with_metadata(std::collections::HashMap::new()));
            arrow::array::RecordBatch::try_new(schema, batch.columns().to_vec()).unwrap()
        })
        .collect()
}

#[test]
fn results_do_not_depend_on_workers_or_epochs() {
    let reference = demo(&["-w", "1"]);
    let expected = tables_of(reference.path());
    for flags in
        [&["-w", "2"][..], &["-w", "2", "--epoch-events", "777"][..], &["-w", "1", "--epoch-events", "5000"][..]]
    {
        let out = demo(flags);
        assert_eq!(tables_of(out.path()), expected, "flags {flags:?}");
    }
}

#[test]
fn deltas_replay_to_the_final_snapshot() {
    let out = demo(&["--epoch-events", "3000"]);
    let text = std::fs::read_to_string(out.path().join("deltas.jsonl")).expect("deltas.jsonl");
    let mut journeys: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut memberships: BTreeSet<(String, String)> = BTreeSet::new();
    let mut last_time = 0;
    let mut seen_insert_at: Option<u64> = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON delta");
        let time = v["time"].as_u64().unwrap();
        assert!(time >= last_time, "deltas come in time order");
        if time != last_time {
            seen_insert_at = None;
        }
        last_time = time;
        let diff = v["diff"].as_i64().unwrap();
        assert!(diff == 1 || diff == -1, "diff is ±1: {line}");
        if diff == 1 {
            seen_insert_at = Some(time);
        } else {
            assert_ne!(seen_insert_at, Some(time), "removals precede insertions within a time");
        }
        let customer = v["customer"].as_str().unwrap().to_owned();
        match v["type"].as_str().unwrap() {
            "journey" => {
                let state = (v["events"].as_i64().unwrap(), v["last_time"].as_str().unwrap().to_owned());
                if diff == 1 {
                    assert!(journeys.insert(customer, state).is_none(), "a journey enters once: {line}");
                } else {
                    assert_eq!(journeys.remove(&customer), Some(state), "the row that leaves is the current one");
                }
            }
            "segment" => {
                let key = (v["segment"].as_str().unwrap().to_owned(), customer);
                let changed = if diff == 1 { memberships.insert(key) } else { memberships.remove(&key) };
                assert!(changed, "a membership enters or leaves once: {line}");
            }
            other => panic!("unknown delta type {other}"),
        }
    }
    assert!(last_time > 0, "several epochs");
    let batch = read_table(out.path(), "journeys");
    let customers = common::strings(&batch, "customer");
    let events = common::ints(&batch, "events");
    let last = common::times(&batch, "last_time");
    let snapshot: BTreeMap<String, (i64, String)> = (0..batch.num_rows())
        .map(|i| {
            let t = chrono::DateTime::from_timestamp_millis(last[i].unwrap()).unwrap();
            (customers[i].clone(), (events[i], t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        })
        .collect();
    assert_eq!(journeys, snapshot);
    let segments = read_table(out.path(), "segments");
    let members: BTreeMap<String, i64> =
        common::strings(&segments, "segment").into_iter().zip(common::ints(&segments, "members")).collect();
    for (segment, count) in members {
        assert_eq!(memberships.iter().filter(|(s, _)| *s == segment).count() as i64, count, "{segment}");
    }
}

#[test]
fn strict_mode_stops_at_the_first_bad_record() {
    let out = tempfile::tempdir().unwrap();
    let output = stepstone(&["run", "--config", DEMO, "--strict", "--out", out.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = *dead_letters(out.path()).keys().next().expect("the bad record is in the dead-letter file");
    assert!(stderr.contains(&format!("events.jsonl.gz:{first}:")), "stderr names the line: {stderr}");
}

#[test]
fn stdin_input_with_a_mapping_and_journey_keys() {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(["run", "-q", "--input", "-", "--map", "customer=user id,time=ts,contact_point=page:type"])
        .args(["--journey-key", "intent", "--conversion", "contact_point=done", "--time-format", "epoch_s"])
        .args(["--segment", "converted=converted", "--out", out.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = [
        r#"{"user id": "u1", "ts": 1000, "page:type": "home", "intent": "shoes"}"#,
        r#"{"user id": "u1", "ts": 1060, "page:type": "done", "intent": "shoes"}"#,
        r#"{"user id": "u1", "ts": 1030, "page:type": "home", "intent": "bikes"}"#,
        r#"{"user id": "u2", "ts": "not a time", "page:type": "home"}"#,
    ];
    child.stdin.take().unwrap().write_all((input.join("\n") + "\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let journeys = read_table(out.path(), "journeys");
    assert_eq!(common::strings(&journeys, "journey_key"), ["bikes", "shoes"]);
    assert_eq!(common::bools(&journeys, "converted"), [false, true]);
    assert_eq!(common::times(&journeys, "first_time"), [Some(1_030_000), Some(1_000_000)]);
    let edges = common::edges(&read_table(out.path(), "transitions"));
    assert_eq!(edges[&("home".to_owned(), "done".to_owned())], (1, 60_000));
    assert_eq!(edges[&("done".to_owned(), "(conversion)".to_owned())], (1, 0));
    assert_eq!(edges[&("home".to_owned(), "(exit)".to_owned())], (1, 0));
    assert_eq!(dead_letters_count(out.path()), 1);
}

#[test]
fn late_events_of_stdin_are_rejected_but_a_file_has_none() {
    // Minutes 0, 60, then 40 (behind the watermark 50 of a 10-minute lateness), then 55.
    let input = [
        r#"{"customer": "a", "time": 0, "contact_point": "home"}"#,
        r#"{"customer": "a", "time": 3600, "contact_point": "pricing"}"#,
        r#"{"customer": "b", "time": 2400, "contact_point": "help"}"#,
        r#"{"customer": "b", "time": 3300, "contact_point": "cart"}"#,
    ]
    .join("\n")
        + "\n";
    let run = |args: &[&str], stdin: Option<&str>| {
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepstone"))
            .args(["run", "-q", "--time-format", "epoch_s", "--out", out.path().to_str().unwrap()])
            .args(args)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
        (out, summary)
    };

    let (out, summary) = run(&["--input", "-"], Some(&input));
    assert_eq!(summary["events"], 3);
    assert_eq!(summary["rejected"]["late"], 1);
    let dead = std::fs::read_to_string(out.path().join("rejected.jsonl")).unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).expect("one dead letter");
    assert_eq!((&dead["source"], &dead["line"], &dead["kind"]), (&"stdin".into(), &3.into(), &"late".into()));
    assert!(dead["reason"].as_str().unwrap().contains("watermark 1970-01-01T00:50:00.000Z"), "{dead}");

    let (_, summary) = run(&["--input", "-", "--late", "accept", "--allowed-lateness", "30m"], Some(&input));
    assert_eq!((&summary["events"], &summary["late_accepted"]), (&serde_json::json!(4), &serde_json::json!(0)));
    let (out, summary) = run(&["--input", "-", "--late", "accept"], Some(&input));
    assert_eq!((&summary["events"], &summary["late_accepted"]), (&serde_json::json!(4), &serde_json::json!(1)));
    // At the end of the input every session is over: all four events, and every (exit).
    let edges = common::edges(&read_table(out.path(), "transitions"));
    assert_eq!(edges[&("home".to_owned(), "(exit)".to_owned())], (1, 0));
    assert_eq!(edges[&("pricing".to_owned(), "(exit)".to_owned())], (1, 0));
    assert_eq!(edges[&("cart".to_owned(), "(exit)".to_owned())], (1, 0));

    // The same records in a file: a bounded input has no late events.
    let file = tempfile::NamedTempFile::with_suffix(".jsonl").unwrap();
    std::fs::write(file.path(), &input).unwrap();
    let (_, summary) = run(&["--input", file.path().to_str().unwrap()], None);
    assert_eq!((&summary["events"], &summary["rejected_total"]), (&serde_json::json!(4), &serde_json::json!(0)));
}

#[test]
fn identities_are_stitched_into_profiles_that_merge_and_split() {
    // Two devices browse anonymously; a login on each links it to alice; alice2 is an alias of
    // alice; then the laptop's link is retracted (a shared device), so its anonymous event goes
    // back to the laptop's own profile, while alice's own events stay hers.
    let input = [
        r#"{"device_id": "phone", "time": 0, "contact_point": "home"}"#,
        r#"{"device_id": "laptop", "time": 60, "contact_point": "pricing"}"#,
        r#"{"customer": "alice", "device_id": "phone", "time": 120, "contact_point": "login"}"#,
        r#"{"customer": "alice", "device_id": "laptop", "time": 180, "contact_point": "checkout", "kind": "purchase"}"#,
        r#"{"customer": "bob", "device_id": "tablet", "time": 200, "contact_point": "home"}"#,
        r#"{"customer": "alice2", "prev": "alice", "kind": "alias", "time": 240}"#,
        r#"{"customer": "alice2", "time": 250, "contact_point": "help"}"#,
        r#"{"device_id": "tablet", "time": 260, "contact_point": "search"}"#,
        r#"{"customer": "carol", "time": 270}"#,
    ];
    let run = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let lines: Vec<&str> = input.iter().copied().chain(extra.iter().copied()).collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = dir.path().join("out");
        let deltas = dir.path().join("deltas.jsonl");
        stepstone_ok(&[
            "run",
            "-q",
            "--input",
            path.to_str().unwrap(),
            "--map",
            "device=device_id,previous_id=prev",
            "--time-format",
            "epoch_s",
            "--session-gap",
            "none",
            "--conversion",
            "kind=purchase",
            "--deltas",
            deltas.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        (dir, out)
    };
    let (_dir, out) = run(&[]);
    let journeys = read_table(&out, "journeys");
    assert_eq!(common::strings(&journeys, "customer"), ["alice", "bob"]);
    assert_eq!(common::bools(&journeys, "anonymous"), [false, false]);
    assert_eq!(common::ints(&journeys, "events"), [5, 2]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // The alias is a link, not an event; carol has no contact point.
    assert_eq!((&summary["events"], &summary["rejected_total"]), (&7.into(), &1.into()));
    let edges = common::edges(&read_table(&out, "transitions"));
    assert_eq!(edges[&("(start)".to_owned(), "home".to_owned())], (2, 0));
    assert_eq!(edges[&("home".to_owned(), "pricing".to_owned())], (1, 60_000));
    // The identity lines of the deltas name every identity's profile.
    let deltas = std::fs::read_to_string(out.with_file_name("deltas.jsonl")).unwrap();
    let identities: BTreeSet<(String, String)> = deltas
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["type"] == "identity" && l["diff"] == 1)
        .map(|l| (l["identity"].as_str().unwrap().to_owned(), l["profile"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("alice", "alice"),
        ("alice2", "alice"),
        ("phone", "alice"),
        ("laptop", "alice"),
        ("bob", "bob"),
        ("tablet", "bob"),
    ]
    .into_iter()
    .map(|(i, p)| (i.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(identities, expected);

    // The laptop was shared: retracting its link gives its anonymous browsing back to it.
    let (_dir, out) = run(&[r#"{"customer": "alice", "device_id": "laptop", "kind": "unlink", "time": 300}"#]);
    let journeys = read_table(&out, "journeys");
    assert_eq!(common::strings(&journeys, "customer"), ["alice", "bob", "laptop"]);
    assert_eq!(common::bools(&journeys, "anonymous"), [false, false, true]);
    assert_eq!(common::ints(&journeys, "events"), [4, 2, 1]);
    let edges = common::edges(&read_table(&out, "transitions"));
    assert_eq!(edges[&("home".to_owned(), "login".to_owned())], (1, 120_000));
    assert!(!edges.contains_key(&("home".to_owned(), "pricing".to_owned())));
}

/// The number of dead letters of a run.
fn dead_letters_count(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("rejected.jsonl")).unwrap().lines().count()
}

#[test]
fn configuration_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[input]\npaths = [\"x.jsonl\"]\nsesion-gap = \"5m\"\n").unwrap();
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["run", "--config", config.to_str().unwrap()], "sesion-gap"),
        (vec!["run", "--input", "missing.jsonl"], "missing.jsonl"),
        (vec!["run", "--input", SAMPLE, "--session-gap", "soon"], "session gap"),
        (vec!["run", "--input", SAMPLE, "--map", "user=id"], "unknown field \"user\""),
        (vec!["run", "--input", SAMPLE, "--segment", "x=events >> 3"], "segment \"x\""),
        (
            vec!["run", "--input", SAMPLE, "--personal", "page", "--map", "contact_point=page"],
            "column \"page\" is marked personal but feeds the contact_point",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args;
        let out = dir.path().join("out");
        args.extend(["--out", out.to_str().unwrap()]);
        let output = stepstone(&args);
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: stderr should mention {expected:?}: {stderr}");
    }
}

/// One record of a random stitched stream: an interaction of a customer and/or a device, or a
/// link record (`alias` of two customer ids, `unlink` of a customer and a device or customer).
#[derive(Clone, Debug)]
struct StreamRecord {
    customer: Option<String>,
    device: Option<String>,
    previous: Option<String>,
    kind: Option<&'static str>,
    time: i64,
    contact_point: &'static str,
}

impl StreamRecord {
    fn json(&self) -> String {
        let mut object = serde_json::json!({ "time": self.time, "contact_point": self.contact_point });
        for (key, value) in [("customer", &self.customer), ("device_id", &self.device), ("prev", &self.previous)] {
            if let Some(value) = value {
                object[key] = serde_json::json!(value);
            }
        }
        if let Some(kind) = self.kind {
            object["kind"] = serde_json::json!(kind);
        }
        object.to_string()
    }

    /// The link the record states or retracts: `(pair, unlink)`.
    fn link(&self) -> Option<((String, String), bool)> {
        let customer = format!("c:{}", self.customer.as_ref()?);
        let (other, unlink) = match (self.kind, &self.previous, &self.device) {
            (Some("alias"), Some(previous), _) => (format!("c:{previous}"), false),
            (Some("unlink"), Some(previous), _) => (format!("c:{previous}"), true),
            (Some("unlink"), None, Some(device)) => (format!("d:{device}"), true),
            (None, _, Some(device)) => (format!("d:{device}"), false),
            _ => return None,
        };
        Some(((customer.clone().min(other.clone()), customer.max(other)), unlink))
    }

    /// The identity the record's interaction belongs to, if it is one.
    fn identity(&self) -> Option<String> {
        if self.kind.is_some() {
            return None;
        }
        match (&self.customer, &self.device) {
            (Some(customer), _) => Some(format!("c:{customer}")),
            (None, Some(device)) => Some(format!("d:{device}")),
            (None, None) => None,
        }
    }
}

/// A random stream: interactions of customers `u0…` and devices `p0…` (sharing names, so that
/// an id can be both), logins linking them, aliases and unlinks.
fn random_stream(seed: u64) -> Vec<StreamRecord> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut records = Vec::new();
    for _ in 0..160 {
        let customer = format!("u{}", rng.random_range(0..6));
        let device = format!("{}{}", if rng.random_bool(0.2) { "u" } else { "p" }, rng.random_range(0..5));
        let mut record = StreamRecord {
            customer: None,
            device: None,
            previous: None,
            kind: None,
            time: rng.random_range(0..20_000),
            contact_point: ["home", "pricing", "login", "checkout"][rng.random_range(0..4)],
        };
        match rng.random_range(0..10) {
            0..=3 => record.customer = Some(customer),
            4..=6 => record.device = Some(device),
            7 => (record.customer, record.device) = (Some(customer), Some(device)),
            8 => {
                record.customer = Some(customer);
                record.previous = Some(format!("u{}", rng.random_range(0..6)));
                record.kind = Some("alias");
            }
            _ => {
                record.customer = Some(customer);
                record.kind = Some("unlink");
                match rng.random_bool(0.5) {
                    true => record.device = Some(device),
                    false => record.previous = Some(format!("u{}", rng.random_range(0..6))),
                }
            }
        }
        records.push(record);
    }
    records
}

/// The records of `stream` without the person of `id` as the stream ends: the identity `id`
/// names (its customer id if a record has it, else its device id) and every identity linked to
/// it by the links present at the end lose their interactions and links.
fn without_person(stream: &[StreamRecord], id: &str) -> Vec<StreamRecord> {
    let mut present: BTreeSet<(String, String)> = BTreeSet::new();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for record in stream {
        known.extend(record.identity());
        if let Some((pair, unlink)) = record.link() {
            known.extend([pair.0.clone(), pair.1.clone()]);
            if unlink {
                present.remove(&pair);
            } else {
                present.insert(pair);
            }
        }
    }
    let start = [format!("c:{id}"), format!("d:{id}")].into_iter().find(|i| known.contains(i));
    let mut person: BTreeSet<String> = start.into_iter().collect();
    loop {
        let more: Vec<String> = present
            .iter()
            .filter(|(a, b)| person.contains(a) != person.contains(b))
            .map(|(a, b)| if person.contains(a) { b.clone() } else { a.clone() })
            .collect();
        if more.is_empty() {
            break;
        }
        person.extend(more);
    }
    let mut kept = Vec::new();
    for record in stream {
        let link_touches = record.link().is_some_and(|((a, b), _)| person.contains(&a) || person.contains(&b));
        match record.identity() {
            Some(identity) if person.contains(&identity) => {}
            Some(_) if link_touches => kept.push(StreamRecord { device: None, ..record.clone() }),
            Some(_) => kept.push(record.clone()),
            None if link_touches => {}
            None => kept.push(record.clone()),
        }
    }
    kept
}

#[test]
fn erasing_a_person_equals_a_run_without_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, records: &[StreamRecord], erase: &[&str]| {
        let input = dir.path().join(format!("{name}.jsonl"));
        let lines: Vec<String> = records.iter().map(StreamRecord::json).collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let out = dir.path().join(name);
        let mut args = vec![if erase.is_empty() { "run" } else { "erase" }, "-q", "--by", "dpo"];
        if erase.is_empty() {
            args.remove(2);
            args.remove(2);
        }
        for id in erase {
            args.extend(["--customer", id]);
        }
        args.extend([
            "--input",
            input.to_str().unwrap(),
            "--map",
            "device=device_id,previous_id=prev",
            "--time-format",
            "epoch_s",
            "--session-gap",
            "30m",
            "--segment",
            "engaged=events >= 3",
            "--out",
        ]);
        let out_str = out.to_str().unwrap().to_owned();
        args.push(&out_str);
        stepstone_ok(&args);
        out
    };
    let mut erased_somebody = false;
    for seed in 0..6 {
        let stream = random_stream(seed);
        // A customer id, a device id, an id that is both, and an unknown id.
        for id in ["u1", "p2", "u3", "nobody"] {
            let kept = without_person(&stream, id);
            erased_somebody |= kept.len() < stream.len();
            let erased = run(&format!("erased-{seed}-{id}"), &stream, &[id]);
            let expected = run(&format!("expected-{seed}-{id}"), &kept, &[]);
            assert_eq!(tables_of(&erased), tables_of(&expected), "seed {seed}, erasing {id}");
            // The log names who asked and how much went, never the person.
            let log = std::fs::read_to_string(erased.join("erasures.jsonl")).unwrap_or_default();
            if id == "nobody" {
                assert!(log.is_empty(), "an unknown id erases nothing: {log}");
                continue;
            }
            let entry: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
            assert_eq!(entry["by"], "dpo");
            let removed_events = stream.iter().filter(|r| r.identity().is_some()).count()
                - kept.iter().filter(|r| r.identity().is_some()).count();
            assert_eq!(entry["events"], removed_events as u64, "seed {seed}, erasing {id}: {entry}");
            for name in ["u0", "u1", "u2", "u3", "u4", "u5", "p0", "p1", "p2", "p3", "p4"] {
                assert!(!log.contains(&format!("\"{name}\"")), "the log names {name}: {log}");
            }
        }
    }
    assert!(erased_somebody, "the streams must give erasures something to remove");
}

#[test]
fn records_without_analytics_consent_count_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        [
            r#"{"customer": "a", "time": 0, "contact_point": "home"}"#,
            r#"{"customer": "a", "time": 60, "contact_point": "pricing", "consent": {"analytics": false}}"#,
            r#"{"customer": "a", "time": 120, "contact_point": "help", "consent": {"analytics": true, "ads": false}}"#,
            r#"{"customer": "b", "time": 0, "contact_point": "home", "consent.analytics": "denied"}"#,
            r#"{"customer": "c", "time": 0, "contact_point": "home", "consent": {"analytics": "maybe"}}"#,
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let csv = dir.path().join("events.csv");
    std::fs::write(&csv, "customer,time,contact_point,consent.analytics\nd,0,home,0\nd,60,pricing,\ne,0,home,no\n")
        .unwrap();
    let out = dir.path().join("out");
    stepstone_ok(&[
        "run",
        "-q",
        "--input",
        jsonl.to_str().unwrap(),
        "--input",
        csv.to_str().unwrap(),
        "--time-format",
        "epoch_s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let journeys = read_table(&out, "journeys");
    assert_eq!(common::strings(&journeys, "customer"), ["a", "d"]);
    assert_eq!(common::string_lists(&journeys, "path"), [vec!["home", "help"], vec!["pricing"]]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["without_consent"], 4);
    assert_eq!(summary["rejected"]["bad_value"], 1);
    let letter: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out.join("rejected.jsonl")).unwrap().trim()).unwrap();
    assert_eq!((&letter["line"], &letter["field"]), (&5.into(), &"consent".into()), "{letter}");
}
