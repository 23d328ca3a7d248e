//! `stepstone run` on the demo pipeline: its outputs against the oracle, identical results on
//! one and two workers and in one or many small logical times, deltas that replay to the final
//! snapshot, and strict mode stopping at the first bad record.

use std::collections::{BTreeMap, BTreeSet};

use crate::common;
use crate::common::{OracleEvent, logical_time, oracle, read_table, stepstone};

use super::*;

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
