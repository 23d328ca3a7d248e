//! The crash test's workload: a seeded random sequence of requests (good events of several
//! customers with equal times, contact points, channels, conversions and values; malformed and
//! invalid records; JSON arrays and NDJSON) and the journey lines the oracle expects after any
//! prefix of the operations.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::common::subscriber::{journey_line, rfc3339};
use crate::common::{FullEvent, full_journeys};

use super::*;

/// One record of a request: a good event, or a bad record with the rejection it must get.
#[derive(Clone, Debug)]
pub(super) enum Record {
    /// A record the service accepts: the event it is, and its JSON.
    Good { event: FullEvent, json: String },
    /// A record the service rejects: its text, whose customer it names (if any), and the
    /// rejection's field and kind.
    Bad { json: String, customer: Option<String>, field: Option<&'static str>, kind: &'static str },
}

impl Record {
    /// The record's text.
    pub(super) fn json(&self) -> &str {
        match self {
            Record::Good { json, .. } | Record::Bad { json, .. } => json,
        }
    }

    /// The customer the record names, if any.
    pub(super) fn customer(&self) -> Option<&str> {
        match self {
            Record::Good { event, .. } => Some(&event.customer),
            Record::Bad { customer, .. } => customer.as_deref(),
        }
    }
}

/// How a request body is written.
#[derive(Clone, Copy, Debug)]
pub(super) enum Body {
    /// A JSON array of the records.
    Array,
    /// NDJSON, with CRLF line ends and blank lines mixed in.
    Ndjson,
}

/// A rejection a request's answer must report: `(index, field, kind)`.
pub(super) type Rejection = (usize, Option<&'static str>, &'static str);

/// One ingest request of a workload.
#[derive(Clone, Debug)]
pub(super) struct Request {
    /// Its idempotency key.
    pub(super) key: String,
    pub(super) body: Body,
    pub(super) records: Vec<Record>,
}

impl Request {
    /// The request body.
    pub(super) fn text(&self) -> String {
        let texts: Vec<&str> = self.records.iter().map(Record::json).collect();
        match self.body {
            Body::Array => format!("[{}]", texts.join(",\n")),
            Body::Ndjson => texts.iter().enumerate().map(|(i, t)| format!("{t}{}", ["\n", "\r\n\n"][i % 2])).collect(),
        }
    }

    /// The events of its good records.
    pub(super) fn events(&self) -> impl Iterator<Item = &FullEvent> {
        self.records.iter().filter_map(|record| match record {
            Record::Good { event, .. } => Some(event),
            Record::Bad { .. } => None,
        })
    }

    /// The answer it must get: the records accepted and the rejections.
    pub(super) fn expected(&self) -> (usize, Vec<Rejection>) {
        let rejected: Vec<Rejection> = (self.records.iter().enumerate())
            .filter_map(|(index, record)| match record {
                Record::Bad { field, kind, .. } => Some((index, *field, *kind)),
                Record::Good { .. } => None,
            })
            .collect();
        (self.records.len() - rejected.len(), rejected)
    }

    /// Checks that `answer` is this request's first answer (`what` names it in messages).
    pub(super) fn check_answer(&self, answer: &Value, what: &str) {
        let (accepted, rejected) = self.expected();
        assert_eq!(answer["accepted"], accepted, "{what}: {answer}");
        assert_eq!(answer.get("duplicate"), None, "{what}: {answer}");
        let got: Vec<(usize, Option<&str>, &str)> = answer["rejected"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: a list of rejections: {answer}"))
            .iter()
            .map(|r| {
                assert!(r["reason"].as_str().is_some_and(|reason| !reason.is_empty()), "{what}: a reason: {r}");
                (r["index"].as_u64().unwrap() as usize, r["field"].as_str(), r["kind"].as_str().unwrap())
            })
            .collect();
        assert_eq!(got, rejected, "{what}: the rejections (index, field, kind): {answer}");
    }
}

/// 2026-03-01T10:00:00Z in ms.
pub(super) fn base_time() -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// A seeded generator of requests: event times move forward by up to 20 s a record (now and
/// then by 45 minutes, which ends sessions; both can be set), and a record repeats its
/// customer's previous time now and then (a tie that arrival order breaks, also across requests
/// and restarts). No event is ever late: none is more than a few minutes older than the latest.
pub(super) struct Workload {
    pub(super) rng: StdRng,
    /// The latest event time.
    pub(super) clock: i64,
    /// Each customer's latest event time.
    pub(super) last: Vec<Option<i64>>,
    /// Good records generated (their arrival positions).
    pub(super) rows: usize,
    /// The requests generated, in order.
    pub(super) requests: Vec<Request>,
    /// The share of bad records.
    pub(super) bad_share: f64,
    /// The clock moves by less than this many ms a record.
    pub(super) step_ms: i64,
    /// The share of records before which the clock jumps by 45 minutes.
    pub(super) jump_share: f64,
}

impl Workload {
    /// A generator seeded with `seed`.
    pub(super) fn new(seed: u64) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(seed),
            clock: base_time(),
            last: vec![None; CUSTOMERS],
            rows: 0,
            requests: Vec::new(),
            bad_share: 0.03,
            step_ms: 20_000,
            jump_share: 0.004,
        }
    }

    /// Generates one more request of `records` records (a share of them bad, 3% unless set,
    /// at least one good) and returns its index.
    pub(super) fn generate(&mut self, records: std::ops::RangeInclusive<usize>) -> usize {
        let index = self.requests.len();
        let body = if self.rng.random_bool(0.5) { Body::Array } else { Body::Ndjson };
        let count = self.rng.random_range(records);
        let mut list: Vec<Record> = (0..count)
            .map(|_| if self.rng.random_bool(self.bad_share) { self.bad(body) } else { self.good() })
            .collect();
        if list.iter().all(|r| matches!(r, Record::Bad { .. })) {
            let at = self.rng.random_range(0..=list.len());
            list.insert(at, self.good());
        }
        self.requests.push(Request { key: format!("request-{index}"), body, records: list });
        index
    }

    /// Generates the last request (see [`CLOSER`]) and returns its index.
    pub(super) fn closer(&mut self) -> usize {
        let time = self.clock + 24 * 3600 * 1000;
        let json = json!({"customer": CLOSER, "time": rfc3339(time), "contact_point": "checkout",
                          "channel": "web", "kind": "purchase", "value": 99.5})
        .to_string();
        let event = FullEvent {
            customer: CLOSER.to_owned(),
            time,
            row: self.rows,
            contact_point: "checkout".to_owned(),
            channel: Some("web".to_owned()),
            converting: true,
            value: 99.5,
        };
        self.rows += 1;
        let index = self.requests.len();
        let records = vec![Record::Good { event, json }];
        self.requests.push(Request { key: format!("request-{index}"), body: Body::Array, records });
        index
    }

    /// A good record.
    pub(super) fn good(&mut self) -> Record {
        let rng = &mut self.rng;
        self.clock += rng.random_range(0..self.step_ms);
        if rng.random_bool(self.jump_share) {
            self.clock += 45 * 60_000;
        }
        let c = rng.random_range(0..CUSTOMERS);
        let time = match self.last[c] {
            Some(last) if last >= self.clock - 3 * 60_000 && rng.random_bool(0.3) => last,
            _ => self.clock,
        };
        self.last[c] = Some(time);
        let customer = format!("c{c}");
        let contact_point = ["home", "search", "pricing", "cart", "checkout", "help"][rng.random_range(0..6)];
        let channel = [Some("web"), Some("app"), Some("email"), None][rng.random_range(0..4)];
        let kind = match rng.random_range(0..100) {
            0..7 => Some("purchase"),
            7..50 => Some("view"),
            _ => None,
        };
        let value = rng.random_bool(0.3).then(|| f64::from(rng.random_range(1..400)) / 4.0);
        let shown = match rng.random_range(0..3) {
            0 => json!(rfc3339(time)),
            1 => {
                let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
                let local = DateTime::from_timestamp_millis(time).unwrap().with_timezone(&offset);
                json!(local.to_rfc3339_opts(SecondsFormat::Millis, false))
            }
            _ => json!(time),
        };
        let mut object = json!({"customer": customer, "time": shown, "contact_point": contact_point});
        if let Some(channel) = channel {
            object["channel"] = json!(channel);
        }
        if let Some(kind) = kind {
            object["kind"] = json!(kind);
        }
        if let Some(value) = value {
            object["value"] = json!(value);
        }
        let event = FullEvent {
            customer,
            time,
            row: self.rows,
            contact_point: contact_point.to_owned(),
            channel: channel.map(str::to_owned),
            converting: kind == Some("purchase"),
            value: value.unwrap_or(0.0),
        };
        self.rows += 1;
        Record::Good { event, json: object.to_string() }
    }

    /// A bad record (a cut-off line only in NDJSON, where it is a record of its own).
    pub(super) fn bad(&mut self, body: Body) -> Record {
        let customer = format!("c{}", self.rng.random_range(0..CUSTOMERS));
        let time = rfc3339(self.clock);
        let kinds = if matches!(body, Body::Ndjson) { 5 } else { 4 };
        let (json, named, field, kind) = match self.rng.random_range(0..kinds) {
            0 => (
                json!({"customer": customer, "time": "the day after", "contact_point": "home"}).to_string(),
                true,
                Some("time"),
                "bad_time",
            ),
            1 => (json!({"time": time, "contact_point": "home"}).to_string(), false, Some("customer"), "missing_field"),
            2 => {
                (json!({"customer": customer, "time": time}).to_string(), true, Some("contact_point"), "missing_field")
            }
            3 => ("42".to_owned(), false, None, "malformed"),
            _ => (format!(r#"{{"customer":"{customer}","time":"#), true, None, "malformed"),
        };
        Record::Bad { json, customer: named.then_some(customer), field, kind }
    }
}

// ---------------------------------------------------------------------------------------------
// The expected views.

/// An operation of the crash test's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// `POST /v1/events` of the request with this index.
    Post(usize),
    /// `DELETE /v1/customers/{ERASED}`.
    Erase,
}

/// The events in the views after `ops` were applied in order: an erasure removes the erased
/// customer's events, and drops those that come later.
pub(super) fn events_after(ops: &[Op], requests: &[Request]) -> Vec<FullEvent> {
    let mut events: Vec<FullEvent> = Vec::new();
    let mut erased = false;
    for op in ops {
        match *op {
            Op::Post(i) => {
                events.extend(requests[i].events().filter(|e| !(erased && e.customer == ERASED)).cloned());
            }
            Op::Erase => {
                erased = true;
                events.retain(|e| e.customer != ERASED);
            }
        }
    }
    events
}

/// Every customer's journey line after `ops` were applied in order.
pub(super) fn lines_after(ops: &[Op], requests: &[Request]) -> BTreeMap<String, Value> {
    let events = events_after(ops, requests);
    full_journeys(&events, Some(GAP_MS), PATH_LEN).iter().map(|(c, j)| (c.clone(), journey_line(c, j))).collect()
}

/// Where two sets of journey lines first differ, for assertion messages.
pub(super) fn first_difference(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) -> String {
    for customer in got.keys().chain(want.keys()) {
        if got.get(customer) != want.get(customer) {
            return format!("{customer}: got {:?}, expected {:?}", got.get(customer), want.get(customer));
        }
    }
    "no difference".to_owned()
}
