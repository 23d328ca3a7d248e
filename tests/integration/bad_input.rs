//! Bad input never hurts: a corpus of malformed records (`tests/corpus/`) and generated
//! oversized ones each give a clear per-record dead letter while the run goes on, and a
//! gigabyte line is read through without being held in memory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{root, stepstone, stepstone_ok};

/// One expected dead letter: line, reason kind, field at fault.
type Letter = (u64, &'static str, Option<&'static str>);

/// A dead letter as written.
#[derive(Debug)]
struct DeadLetter {
    line: u64,
    kind: String,
    field: Option<String>,
    reason: String,
    raw: String,
}

/// Runs `stepstone run` on `input` (with `extra` flags) and returns its dead letters and the
/// number of events it applied.
fn run(input: &Path, extra: &[&str]) -> (Vec<DeadLetter>, u64) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["run", "-q", "--input", input.to_str().unwrap(), "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    stepstone_ok(&args);
    let letters = std::fs::read_to_string(out.path().join("rejected.jsonl")).unwrap();
    let letters = letters
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON dead letter");
            let text = |key: &str| v[key].as_str().map(str::to_owned);
            DeadLetter {
                line: v["line"].as_u64().unwrap(),
                kind: text("kind").unwrap(),
                field: text("field"),
                reason: text("reason").unwrap(),
                raw: text("raw").unwrap(),
            }
        })
        .collect();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    (letters, summary["events"].as_u64().unwrap())
}

/// The `(line, kind)` of each dead letter.
fn kinds(letters: &[DeadLetter]) -> Vec<(u64, &str)> {
    letters.iter().map(|l| (l.line, l.kind.as_str())).collect()
}

/// Checks that `input` gives exactly the dead letters `expected` and applies `events` events.
fn check(input: &Path, expected: &[Letter], events: u64) {
    let (letters, applied) = run(input, &[]);
    let got: Vec<(u64, &str, Option<&str>)> =
        letters.iter().map(|l| (l.line, l.kind.as_str(), l.field.as_deref())).collect();
    assert_eq!(got, expected, "{}: {letters:#?}", input.display());
    assert!(letters.iter().all(|l| !l.reason.is_empty()), "{}: every dead letter says why", input.display());
    assert_eq!(applied, events, "{}: good records around the bad ones are applied", input.display());
}

#[test]
fn every_malformed_record_of_the_corpus_is_a_dead_letter_and_the_run_goes_on() {
    let corpus = root().join("tests/corpus");
    let malformed = |line| (line, "malformed", None);
    let cases: [(&str, Vec<Letter>, u64); 7] = [
        ("truncated.jsonl", vec![malformed(2), malformed(3), malformed(5)], 2),
        (
            "wrong_types.jsonl",
            vec![
                (2, "bad_type", Some("customer")),
                (3, "bad_type", Some("time")),
                (4, "bad_type", Some("contact_point")),
                (5, "bad_value", Some("value")),
                malformed(6),
                malformed(7),
                malformed(8),
            ],
            2,
        ),
        ("times_out_of_range.jsonl", (2..=6).map(|line| (line, "bad_time", Some("time"))).collect(), 2),
        // An ignored key may nest deeply (it is skipped without recursion); a mapped one may not.
        ("deeply_nested.jsonl", vec![malformed(3)], 3),
        ("invalid_utf8.jsonl", vec![malformed(2), malformed(3)], 2),
        ("nul_bytes.jsonl", vec![malformed(2), malformed(3)], 2),
        ("ragged.csv", vec![malformed(3), malformed(4), malformed(5)], 2),
    ];
    for (file, letters, events) in cases {
        check(&corpus.join(file), &letters, events);
    }
}

#[test]
fn records_over_the_limits_are_rejected_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let good = |time: u32| format!(r#"{{"customer": "a", "time": {time}, "contact_point": "home"}}"#);
    let huge = format!(r#"{{"customer": "a", "time": 2, "contact_point": "{}"}}"#, "x".repeat(2 << 20));
    let mut wide = serde_json::json!({ "customer": "a", "time": 3, "contact_point": "home" });
    for i in 0..1500 {
        wide[format!("k{i}")] = i.into();
    }
    let jsonl = dir.path().join("big.jsonl");
    std::fs::write(&jsonl, [good(1), huge, wide.to_string(), good(4)].join("\n") + "\n").unwrap();
    let (letters, events) = run(&jsonl, &[]);
    assert_eq!(events, 2);
    assert_eq!(kinds(&letters), [(2, "too_large"), (3, "too_large")]);
    assert!(letters[0].reason.contains("2097") && letters[0].reason.contains("max-record-bytes"), "{letters:?}");
    assert!(letters[0].raw.len() < 2048, "the dead letter keeps only the start of a huge record");
    assert!(letters[1].reason.contains("max-fields (1000)"), "{letters:?}");

    // The limits are configurable: raised, both records pass.
    let config = dir.path().join("limits.toml");
    std::fs::write(&config, "[limits]\nmax-record-bytes = 4194304\nmax-fields = 2000\n").unwrap();
    let (letters, events) = run(&jsonl, &["--config", config.to_str().unwrap()]);
    assert_eq!((letters.len(), events), (0, 4));

    // A CSV row over the byte limit, and a header over the field limit.
    let csv = dir.path().join("big.csv");
    std::fs::write(&csv, format!("customer,time,contact_point\na,1,home\na,2,{}\na,3,home\n", "y".repeat(2 << 20)))
        .unwrap();
    let (letters, events) = run(&csv, &[]);
    assert_eq!(kinds(&letters), [(3, "too_large")]);
    assert_eq!(events, 2);
    let wide_csv = dir.path().join("wide.csv");
    let header: Vec<String> = ["customer", "time", "contact_point"]
        .map(str::to_owned)
        .into_iter()
        .chain((0..1200).map(|i| format!("c{i}")))
        .collect();
    std::fs::write(&wide_csv, header.join(",") + "\n").unwrap();
    let out = dir.path().join("out");
    fails_with(
        &["run", "--input", wide_csv.to_str().unwrap(), "--out", out.to_str().unwrap()],
        "1203 columns, more than max-fields (1000)",
    );

    // Too many segments, and a zero limit, are configuration errors.
    let with_config = [
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        jsonl.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    std::fs::write(&config, "[limits]\nmax-segments = 1\n[[segments]]\nname = \"a\"\nrule = \"events > 1\"\n[[segments]]\nname = \"b\"\nrule = \"events > 2\"\n").unwrap();
    fails_with(&with_config, "2 segments are defined, more than max-segments (1)");
    std::fs::write(&config, "[limits]\nmax-record-bytes = 0\n").unwrap();
    fails_with(&with_config, "max-record-bytes must be at least 1");
}

/// Checks that `stepstone` with `args` fails with an error containing `expected`.
fn fails_with(args: &[&str], expected: &str) {
    let output = stepstone(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains(expected),
        "{args:?}: expected an error {expected:?}: {stderr}"
    );
}

/// The peak resident memory of process `pid` in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in the process status");
    kb * 1024
}

#[test]
fn a_gigabyte_line_is_read_through_without_being_held() {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(["run", "-q", "--input", "-", "--out", out.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting stepstone");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"customer": "a", "time": 1, "contact_point": "home"}}"#).unwrap();
    stdin.write_all(br#"{"customer": "a", "time": 2, "contact_point": ""#).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..1024 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.write_all(b"\"}\n").unwrap();
    writeln!(stdin, r#"{{"customer": "a", "time": 3, "contact_point": "pricing"}}"#).unwrap();
    stdin.flush().unwrap();
    // The engine has read the line (the pipe is drained), so its peak is what it cost.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let peak = peak_rss(child.id());
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(peak < 256 << 20, "peak RSS {} MiB while a 1 GiB line went through", peak >> 20);
    let letters = std::fs::read_to_string(out.path().join("rejected.jsonl")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).unwrap();
    assert_eq!((&letter["line"], &letter["kind"]), (&2.into(), &"too_large".into()), "{letter}");
    assert!(letter["raw"].as_str().unwrap().len() < 2048);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["events"], 2);
}
