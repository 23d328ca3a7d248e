//! `stepstone run` with identities: profiles that merge and split as links come and go, erasing
//! a person equals a run without their events (on random stitched streams), and records without
//! analytics consent count nowhere.

use std::collections::BTreeSet;

use crate::common;
use crate::common::{read_table, stepstone_ok};

use super::*;

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
