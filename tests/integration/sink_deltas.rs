//! Tests of the context-delta writer: the JSON lines of changed journey rows and segment
//! memberships (fields, times, context), removals before insertions within a logical time, no
//! line for what did not change, and that replaying the lines rebuilds the journeys table.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use stepstone::sink::update::Update;
use stepstone::sink::{DeltaWriter, Tables};
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::symbols::Symbols;

/// 2026-01-01T00:00:00Z in ms.
const T0: i64 = 1_767_225_600_000;

/// A journey row of `customer` over `path`, one event per second, each `converting`-th event a
/// conversion worth 2.5. The channel `web` is interned before `app`, so that the id order of the
/// channels is not their name order.
fn row(s: &Symbols, customer: &str, path: &[&str], converting: usize) -> JourneyRow {
    let events = path.len() as u64;
    let last_time = T0 + (events as i64 - 1) * 1_000;
    let conversions = path.len().checked_div(converting).unwrap_or(0) as u64;
    JourneyRow {
        journey: JourneyId::customer(s.intern(customer)),
        first_time: T0,
        last_time,
        events,
        sessions: 1,
        session_start: T0,
        session_events: events,
        path: path.iter().map(|&p| s.intern(p)).collect(),
        channel_events: vec![(s.intern("web"), events - 1), (s.intern("app"), 1)],
        conversions,
        last_conversion_time: (conversions > 0).then_some(last_time),
        value: conversions as i64 * 2_500_000,
    }
}

fn member(s: &Symbols, segment: &str, customer: &str, diff: i64) -> Update {
    Update::Membership((s.intern(segment), JourneyId::customer(s.intern(customer))), diff)
}

/// Applies each `(time, updates)` to fresh tables, writes the changes to a delta file in
/// `dir`, and returns the tables and the parsed lines.
fn run(s: &Arc<Symbols>, dir: &Path, steps: &[(u64, Vec<Update>)]) -> (Tables, Vec<Value>) {
    let path = dir.join("deltas.jsonl");
    let mut tables = Tables::new(vec![s.intern("buyers"), s.intern("engaged")]);
    let mut writer = DeltaWriter::create(&path, s.clone()).unwrap();
    for (time, updates) in steps {
        writer.write(&tables.apply(*time, updates)).unwrap();
    }
    writer.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (tables, text.lines().map(|line| serde_json::from_str(line).unwrap()).collect())
}

/// `(time, type, customer, diff)` of each line.
fn summary(lines: &[Value]) -> Vec<(u64, &str, &str, i64)> {
    lines
        .iter()
        .map(|l| {
            let text = |key: &str| l[key].as_str().unwrap();
            (l["time"].as_u64().unwrap(), text("type"), text("customer"), l["diff"].as_i64().unwrap())
        })
        .collect()
}

#[test]
fn lines_carry_the_journey_context() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Symbols::new());
    // Interned in reverse name order, so that sorting by id would put `c2` first.
    let mut keyed = row(&s, "c2", &["home"], 0);
    keyed.journey.key = Some(s.intern("order-9"));
    let (_, lines) = run(
        &s,
        dir.path(),
        &[(
            4,
            vec![
                Update::journey(row(&s, "c1", &["home", "cart", "checkout"], 3), 1),
                Update::journey(keyed, 1),
                member(&s, "buyers", "c1", 1),
            ],
        )],
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        json!({
            "time": 4, "type": "journey", "customer": "c1", "journey_key": null, "diff": 1,
            "first_time": "2026-01-01T00:00:00.000Z", "last_time": "2026-01-01T00:00:02.000Z",
            "events": 3, "sessions": 1, "session_start": "2026-01-01T00:00:00.000Z", "session_events": 3,
            "path": ["home", "cart", "checkout"], "channels": ["app", "web"],
            "channel_events": {"app": 1, "web": 2}, "converted": true, "conversions": 1,
            "last_conversion_time": "2026-01-01T00:00:02.000Z", "value": 2.5,
        })
    );
    assert_eq!(lines[1]["journey_key"], "order-9");
    assert_eq!(lines[1]["converted"], false);
    assert_eq!(lines[1]["last_conversion_time"], Value::Null);
    assert_eq!(lines[1]["value"], 0.0);
    assert_eq!(
        lines[2],
        json!({"time": 4, "type": "segment", "segment": "buyers", "customer": "c1", "journey_key": null, "diff": 1})
    );
}

#[test]
fn removals_come_before_insertions_within_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Symbols::new());
    // Interned in reverse name order, so that sorting by id would give other orders.
    for name in ["engaged", "c", "buyers", "b", "a"] {
        s.intern(name);
    }
    let (a1, a2) = (row(&s, "a", &["home"], 0), row(&s, "a", &["home", "cart"], 0));
    let (b1, c1) = (row(&s, "b", &["search"], 0), row(&s, "c", &["store/berlin"], 1));
    let member = |segment: &str, customer: &str, diff: i64| member(&s, segment, customer, diff);
    let (_, lines) = run(
        &s,
        dir.path(),
        &[
            (1, vec![Update::journey(a1.clone(), 1), Update::journey(b1.clone(), 1), member("engaged", "b", 1)]),
            // Insertions first in the input, and a journey entering before another leaves.
            (
                2,
                vec![
                    Update::journey(c1, 1),
                    member("buyers", "c", 1),
                    Update::journey(a2, 1),
                    member("engaged", "a", 1),
                    Update::journey(b1, -1),
                    member("engaged", "b", -1),
                    Update::journey(a1, -1),
                ],
            ),
        ],
    );
    assert_eq!(
        summary(&lines),
        [
            (1, "journey", "a", 1),
            (1, "journey", "b", 1),
            (1, "segment", "b", 1),
            (2, "journey", "a", -1),
            (2, "journey", "b", -1),
            (2, "segment", "b", -1),
            (2, "journey", "a", 1),
            (2, "journey", "c", 1),
            (2, "segment", "c", 1),
            (2, "segment", "a", 1),
        ]
    );
    // The removal of `a` reports the row that left, the insertion the row that entered.
    assert_eq!(lines[3]["events"], 1);
    assert_eq!(lines[6]["events"], 2);
    assert_eq!(lines[6]["path"], json!(["home", "cart"]));
    // Memberships are ordered by segment, then journey.
    assert_eq!((&lines[8]["segment"], &lines[9]["segment"]), (&json!("buyers"), &json!("engaged")));
}

#[test]
fn what_did_not_change_writes_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Symbols::new());
    let (a, b1, b2) = (row(&s, "a", &["home"], 0), row(&s, "b", &["home"], 0), row(&s, "b", &["home", "faq"], 0));
    let member = |segment: &str, customer: &str, diff: i64| member(&s, segment, customer, diff);
    let (tables, lines) = run(
        &s,
        dir.path(),
        &[
            (0, vec![Update::journey(a.clone(), 1), Update::journey(b1.clone(), 1), member("engaged", "a", 1)]),
            // `a` leaves and re-enters unchanged, and so does its membership: no change at all.
            (
                1,
                vec![
                    Update::journey(a.clone(), -1),
                    member("engaged", "a", -1),
                    Update::journey(a.clone(), 1),
                    member("engaged", "a", 1),
                ],
            ),
            // The same beside a real change of `b`, and a membership that comes and goes.
            (
                2,
                vec![
                    Update::journey(a.clone(), 1),
                    Update::journey(b1, -1),
                    Update::journey(a.clone(), -1),
                    Update::journey(b2.clone(), 1),
                    member("buyers", "b", 1),
                    member("buyers", "b", -1),
                ],
            ),
        ],
    );
    assert_eq!(
        summary(&lines),
        [
            (0, "journey", "a", 1),
            (0, "journey", "b", 1),
            (0, "segment", "a", 1),
            (2, "journey", "b", -1),
            (2, "journey", "b", 1)
        ]
    );
    assert_eq!(tables.journeys().len(), 2);
    assert_eq!(tables.journeys()[&b2.journey], b2);
    assert_eq!(tables.members(s.intern("engaged")).collect::<Vec<_>>(), [&a.journey]);
    assert_eq!(tables.members(s.intern("buyers")).count(), 0);
}

#[test]
fn replaying_the_lines_rebuilds_the_journeys_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Symbols::new());
    // Ten customers whose rows grow by one contact point at some times and disappear at others.
    let pages = ["home", "search", "cart", "checkout", "faq"];
    let path = |customer: usize, len: usize| -> Vec<&str> { (0..len).map(|i| pages[(customer + i) % 5]).collect() };
    let mut current: BTreeMap<usize, usize> = BTreeMap::new();
    let mut steps = Vec::new();
    for time in 0..12u64 {
        let mut updates = Vec::new();
        for customer in 0..10 {
            let name = format!("c{customer}");
            let old = current.get(&customer).copied();
            let new = match (time as usize * 7 + customer * 3) % 5 {
                0 => None,
                1 | 2 => old.map(|len| len + 1).or(Some(1)),
                _ => old,
            };
            if old == new {
                // Unchanged rows may still travel through the updates as a retraction and assertion.
                if let Some(len) = old.filter(|_| customer % 2 == 0) {
                    let unchanged = row(&s, &name, &path(customer, len), 2);
                    updates.extend([Update::journey(unchanged.clone(), 1), Update::journey(unchanged, -1)]);
                }
                continue;
            }
            if let Some(len) = old {
                updates.push(Update::journey(row(&s, &name, &path(customer, len), 2), -1));
            }
            if let Some(len) = new {
                updates.push(Update::journey(row(&s, &name, &path(customer, len), 2), 1));
                current.insert(customer, len);
            } else {
                current.remove(&customer);
            }
        }
        steps.push((time, updates));
    }
    let (tables, lines) = run(&s, dir.path(), &steps);

    // A removal must name the row that the latest insertion of the journey reported.
    let row_of = |line: &Value| {
        let mut row = line.clone();
        let object = row.as_object_mut().unwrap();
        object.remove("diff");
        object.remove("time");
        row
    };
    let mut replayed: BTreeMap<String, Value> = BTreeMap::new();
    let mut last_time = 0;
    for line in &lines {
        let time = line["time"].as_u64().unwrap();
        assert!(time >= last_time, "times go backwards");
        last_time = time;
        let customer = line["customer"].as_str().unwrap().to_owned();
        match line["diff"].as_i64().unwrap() {
            -1 => assert_eq!(replayed.remove(&customer), Some(row_of(line)), "removed row differs at {time}"),
            1 => assert!(replayed.insert(customer, row_of(line)).is_none(), "row inserted twice at {time}"),
            diff => panic!("diff {diff}"),
        }
    }
    assert!(lines.iter().filter(|l| l["diff"] == -1).count() > 5, "the scenario removes rows");
    assert_eq!(replayed.len(), tables.journeys().len());
    for (customer, line) in &replayed {
        let row = &tables.journeys()[&JourneyId::customer(s.get(customer).unwrap())];
        assert_eq!(line["events"], row.events, "{customer}");
        let path: Vec<String> = row.path.iter().map(|&p| s.name(p).to_string()).collect();
        assert_eq!(line["path"], json!(path), "{customer}");
        assert_eq!(line["conversions"], row.conversions, "{customer}");
        assert_eq!(line["type"], "journey");
    }
}

#[test]
fn a_time_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Symbols::new());
    let mut tables = Tables::new(vec![]);
    let mut broken = row(&s, "a", &["home"], 0);
    broken.last_time = i64::MAX;
    let mut writer = DeltaWriter::create(&dir.path().join("deltas.jsonl"), s.clone()).unwrap();
    let error = writer.write(&tables.apply(0, &[Update::journey(broken, 1)])).unwrap_err();
    assert!(format!("{error:#}").contains("out of range"), "{error:#}");
    assert!(format!("{error:#}").contains("\"a\""), "the error names the customer: {error:#}");
    assert!(DeltaWriter::create(&dir.path().join("missing/deltas.jsonl"), s).is_err());
}
