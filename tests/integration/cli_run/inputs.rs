//! `stepstone run` on hand-made inputs: stdin with a mapping and journey keys, late events of
//! stdin rejected while a file has none, and clear errors for bad configuration.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common;
use crate::common::{read_table, stepstone};

use super::*;

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
