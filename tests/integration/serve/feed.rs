//! The test data of the serve tests: requests of good and bad records in every time format,
//! JSON arrays and NDJSON, the good events they bring (as the oracle takes them), the HTTP
//! source's watermark after them, and posting a request with a check of its answer.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use crate::common::FullEvent;
use crate::common::server::Server;

use super::at;

/// How a good record writes its time.
#[derive(Clone, Copy, Debug)]
pub(super) enum Shown {
    /// `2026-03-01T10:00:00Z`.
    Rfc3339,
    /// `2026-03-01T12:00:00.000+02:00`.
    Offset(i32),
    /// `2026-03-01 10:00:00` (no offset: UTC).
    Spaced,
    /// Epoch milliseconds, a JSON number.
    EpochMs,
    /// Epoch seconds, a JSON number.
    EpochS,
}

/// One record of a test request: a good event or a bad record with the rejection it must get.
#[derive(Clone, Debug)]
pub(super) enum Record {
    Good { event: FullEvent, json: String },
    Bad { json: String, field: Option<&'static str>, kind: &'static str },
}

/// A good record; `kind = Some("purchase")` converts.
pub(super) fn good(
    customer: &str,
    time: i64,
    shown: Shown,
    contact_point: &str,
    channel: Option<&str>,
    kind: Option<&str>,
) -> Record {
    let time_json = match shown {
        Shown::Rfc3339 => {
            json!(DateTime::from_timestamp_millis(time).unwrap().to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Shown::Offset(hours) => {
            let offset = chrono::FixedOffset::east_opt(hours * 3600).unwrap();
            json!(
                DateTime::from_timestamp_millis(time)
                    .unwrap()
                    .with_timezone(&offset)
                    .to_rfc3339_opts(SecondsFormat::Millis, false)
            )
        }
        Shown::Spaced => {
            json!(DateTime::from_timestamp_millis(time).unwrap().format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        }
        Shown::EpochMs => json!(time),
        Shown::EpochS => {
            assert_eq!(time % 1000, 0, "epoch seconds need whole seconds");
            json!(time / 1000)
        }
    };
    let mut object = json!({ "customer": customer, "time": time_json, "contact_point": contact_point });
    if let Some(channel) = channel {
        object["channel"] = json!(channel);
    }
    if let Some(kind) = kind {
        object["kind"] = json!(kind);
    }
    Record::Good {
        event: FullEvent {
            customer: customer.to_owned(),
            time,
            row: 0,
            contact_point: contact_point.to_owned(),
            channel: channel.map(str::to_owned),
            converting: kind == Some("purchase"),
            value: 0.0,
        },
        json: object.to_string(),
    }
}

/// `record` with a value, written as `shown` (a number or a numeric string).
pub(super) fn valued(record: Record, value: f64, shown: Value) -> Record {
    let Record::Good { mut event, json } = record else { panic!("only good records have values") };
    let mut object: Value = serde_json::from_str(&json).unwrap();
    object["value"] = shown;
    event.value = value;
    Record::Good { event, json: object.to_string() }
}

/// A bad record.
pub(super) fn bad(json: &str, field: Option<&'static str>, kind: &'static str) -> Record {
    Record::Bad { json: json.to_owned(), field, kind }
}

/// How a request body is written.
#[derive(Clone, Copy, Debug)]
pub(super) enum Body {
    /// A JSON array of the records.
    Array,
    /// NDJSON, with blank and white-space lines, a CRLF line end and a byte-order mark mixed in.
    Ndjson,
}

/// A rejection a request's answer must report: `(index, field, kind)`.
pub(super) type Rejection = (usize, Option<&'static str>, &'static str);

/// One request of the test feed.
pub(super) struct Request {
    pub(super) body: Body,
    pub(super) records: Vec<Record>,
}

impl Request {
    /// The request body.
    pub(super) fn text(&self) -> String {
        let texts: Vec<&str> = self
            .records
            .iter()
            .map(|r| match r {
                Record::Good { json, .. } | Record::Bad { json, .. } => json.as_str(),
            })
            .collect();
        match self.body {
            Body::Array => format!("[{}]", texts.join(",\n ")),
            Body::Ndjson => {
                let mut text = String::from("\u{FEFF}\n");
                for (i, t) in texts.iter().enumerate() {
                    text.push_str(t);
                    text.push_str(if i % 3 == 1 { "\r\n   \n\n" } else { "\n" });
                }
                text
            }
        }
    }

    /// The answer the request must get: `(accepted, [(index, field, kind)])`.
    pub(super) fn expected(&self) -> (usize, Vec<Rejection>) {
        let mut accepted = 0;
        let mut rejected = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            match record {
                Record::Good { .. } => accepted += 1,
                Record::Bad { field, kind, .. } => rejected.push((index, *field, *kind)),
            }
        }
        (accepted, rejected)
    }
}

/// The feed of the end-to-end test: JSON arrays and NDJSON, good and bad records, late events,
/// equal times, every time format, numeric and non-ASCII customer ids.
pub(super) fn feed() -> Vec<Request> {
    use Shown::*;
    let purchase = Some("purchase");
    let view = Some("view");
    vec![
        Request {
            body: Body::Array,
            records: vec![
                good("c1", at(0.0), Rfc3339, "home", Some("web"), view),
                good("c1", at(2.0), Spaced, "pricing", Some("web"), view),
                good("c2", at(120.0), EpochMs, "a", Some("app"), view),
                bad(r#"{"customer":"c2","time":"the day after","contact_point":"a"}"#, Some("time"), "bad_time"),
                bad(r#"{"time":"2026-03-01T10:00:00Z","contact_point":"home"}"#, Some("customer"), "missing_field"),
                good("c3", at(-60.0), EpochS, "landing", Some("email"), Some("click")),
                bad(
                    r#"{"customer":"c3","time":"2026-03-01T10:00:00Z","contact_point":true}"#,
                    Some("contact_point"),
                    "bad_type",
                ),
                good("c2", at(120.0), Offset(2), "b", Some("app"), view),
                bad("42", None, "malformed"),
            ],
        },
        Request {
            body: Body::Ndjson,
            records: vec![
                // Equal to an earlier event's time, arriving later: placed after it.
                good("c1", at(2.0), Rfc3339, "pricing", Some("web"), view),
                bad(r#"{"customer":"c1","time":"#, None, "malformed"),
                valued(good("c1", at(5.0), Rfc3339, "checkout", Some("web"), purchase), 120.5, json!(120.5)),
                good("c1", at(6.0), EpochMs, "help", Some("web"), view),
                good("c1", at(60.0), Offset(-5), "home", Some("app"), view),
                good("c3", at(-50.0), Rfc3339, "product", Some("email"), view),
                bad(
                    r#"{"customer":"c3","time":1772359200,"contact_point":"product","value":"lots"}"#,
                    Some("value"),
                    "bad_value",
                ),
                valued(good("c4", at(-120.0), Spaced, "newsletter", Some("email"), view), 7.25, json!("7.25")),
                good("c2", at(120.0), Rfc3339, "c", Some("app"), view),
                bad(r#"{"customer":"c4","time":null,"contact_point":"newsletter"}"#, Some("time"), "missing_field"),
            ],
        },
        Request {
            body: Body::Array,
            records: vec![
                // Late: joins c1's two sessions into one (placed by its time, docs/semantics.md §2, §3, §6.3).
                good("c1", at(30.0), Rfc3339, "help", Some("web"), view),
                // Late: before all of c3's events.
                good("c3", at(-90.0), EpochMs, "ad", Some("web"), None),
                good("ü-9 x", at(0.0), Rfc3339, "home", Some("store"), view),
                // Late, just before c2's equal-time group.
                valued(good("c2", at(120.0) - 1, EpochMs, "z", Some("app"), purchase), 10.0, json!(10)),
                // Equal to an earlier event's time, arriving later.
                valued(good("c3", at(-50.0), Spaced, "product", Some("email"), purchase), 49.99, json!(49.99)),
            ],
        },
        Request {
            body: Body::Array,
            records: vec![
                bad(r#"{"customer":"c9","contact_point":"home"}"#, Some("time"), "missing_field"),
                bad(r#"{"customer":"c9","time":"2026-03-01T10:00:00Z"}"#, Some("contact_point"), "missing_field"),
                bad(r#"{"customer":"c9","time":"2026-13-45T10:00:00Z","contact_point":"x"}"#, Some("time"), "bad_time"),
            ],
        },
        Request {
            body: Body::Ndjson,
            records: vec![
                good("c2", at(180.0), Rfc3339, "a", Some("app"), view), // a gap of 60 min: a new session
                good("c2", at(210.0), Rfc3339, "b", Some("app"), view), // exactly 30 min: the same session
                good("c2", at(240.0) + 1, EpochMs, "c", Some("app"), view), // 30 min and 1 ms: a new session
                good("c6", at(0.0), Rfc3339, "x", Some("call"), view),
                good("c6", at(1.0), Rfc3339, "y", Some("call"), purchase),
                good("c6", at(2.0), Rfc3339, "z", None, view),
                good("c6", at(3.0), Rfc3339, "y", Some("call"), purchase),
                bad(
                    r#"{"customer":{"id":6},"time":"2026-03-01T10:00:00Z","contact_point":"x"}"#,
                    Some("customer"),
                    "bad_type",
                ),
                bad(
                    r#"{"customer":"c6","time":"2026-03-01T10:00:00Z","contact_point":"x","value":[1]}"#,
                    Some("value"),
                    "bad_type",
                ),
            ],
        },
        Request {
            body: Body::Array,
            records: vec![
                Record::Good {
                    event: FullEvent {
                        customer: "77".to_owned(),
                        time: at(15.0),
                        row: 0,
                        contact_point: "kiosk".to_owned(),
                        channel: None,
                        converting: false,
                        value: 0.0,
                    },
                    json: format!(r#"{{"customer":77,"time":{},"contact_point":"kiosk","kind":null}}"#, at(15.0)),
                },
                good("c4", at(-119.0), Rfc3339, "newsletter", Some("email"), Some("open")),
            ],
        },
    ]
}

/// The good events of `requests`, numbered in arrival order.
pub(super) fn accepted_events(requests: &[Request]) -> Vec<FullEvent> {
    let mut events = Vec::new();
    for record in requests.iter().flat_map(|r| &r.records) {
        if let Record::Good { event, .. } = record {
            let mut event = event.clone();
            event.row = events.len();
            events.push(event);
        }
    }
    events
}

/// The allowed lateness of the test configs (the default).
pub(super) const LATENESS_MS: i64 = 10 * 60_000;

/// The HTTP source's watermark after `events` arrived in order, and how many of them were late
/// (older than the watermark when they arrived).
pub(super) fn http_clock(events: &[FullEvent]) -> (i64, usize) {
    let mut latest: Option<i64> = None;
    let mut late = 0;
    for event in events {
        match latest {
            Some(l) if event.time < l - LATENESS_MS => late += 1,
            _ => latest = Some(latest.map_or(event.time, |l| l.max(event.time))),
        }
    }
    (latest.map_or(i64::MIN, |l| l - LATENESS_MS), late)
}

/// Posts every request of `requests` in order and checks each answer.
pub(super) async fn post_feed(server: &Server, requests: &[Request]) {
    for (i, request) in requests.iter().enumerate() {
        post_checked(server, request, i).await;
    }
}

/// Posts `request` and checks its answer.
pub(super) async fn post_checked(server: &Server, request: &Request, i: usize) {
    let (status, _, answer) = server.post(request.text()).await;
    let (accepted, rejected) = request.expected();
    assert_eq!(status, if accepted == 0 { 400 } else { 200 }, "request {i}: {answer}");
    assert_eq!(answer["accepted"], accepted, "request {i}: {answer}");
    let got: Vec<(usize, Option<&str>, &str)> = answer["rejected"]
        .as_array()
        .unwrap_or_else(|| panic!("request {i}: a list of rejections: {answer}"))
        .iter()
        .map(|r| {
            assert!(r["reason"].as_str().is_some_and(|reason| !reason.is_empty()), "request {i}: a reason: {r}");
            (r["index"].as_u64().unwrap() as usize, r["field"].as_str(), r["kind"].as_str().unwrap())
        })
        .collect();
    assert_eq!(got, rejected, "request {i}: the rejections (index, field, kind): {answer}");
}

/// The rejections of `requests` by reason.
pub(super) fn rejections_by_reason(requests: &[Request]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        for (_, _, kind) in request.expected().1 {
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}
