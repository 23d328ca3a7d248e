//! End-to-end tests of the live service, `stepstone serve`, over loopback: the binary is started
//! with a config on free ports, fed over HTTP and followed by WebSocket and SSE subscribers; what
//! they receive, the lookups, the metrics, Arrow Flight (read by pyarrow's client,
//! `tests/serve_flight.py`) and the final snapshot written at SIGTERM are compared with an
//! independent sequential recomputation of the journeys (`common::oracle`, `common::full_journeys`).
//!
//! Every wait is bounded ([`WAIT`] for one condition, [`common::server::TEST_LIMIT`] for a whole
//! test) and every server is killed when its test ends, passed or not (the harness is in
//! `tests/common/server.rs`).
//!
//! The last tests pin down bugs that the first version of these tests found (a gone subscriber
//! holding its place, WebSocket subscribers missing `closing`, a stalled SSE subscriber holding
//! up shutdown).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use common::oracle::{SegmentRule, recompute};
use common::server::{Server, Subscriber, WAIT, bounded, encode, journey_line, replay, rfc3339};
use common::{Edges, FullEvent, FullJourney, full_journeys, oracle_at, read_table};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// The bearer token of the servers that require one.
const TOKEN: &str = "secret";
/// The session gap of the test configs, in ms.
const GAP_MS: i64 = 30 * 60_000;
/// The path length (the default).
const PATH_LEN: usize = 5;

// ---------------------------------------------------------------------------------------------
// Test data and the oracle's expectations.

/// 2026-03-01T10:00:00Z plus `minutes`, in ms.
fn at(minutes: f64) -> i64 {
    let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(10, 0, 0).unwrap().and_utc();
    base.timestamp_millis() + (minutes * 60_000.0).round() as i64
}

/// How a good record writes its time.
#[derive(Clone, Copy, Debug)]
enum Shown {
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
enum Record {
    Good { event: FullEvent, json: String },
    Bad { json: String, field: Option<&'static str>, kind: &'static str },
}

/// A good record; `kind = Some("purchase")` converts.
fn good(
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
fn valued(record: Record, value: f64, shown: Value) -> Record {
    let Record::Good { mut event, json } = record else { panic!("only good records have values") };
    let mut object: Value = serde_json::from_str(&json).unwrap();
    object["value"] = shown;
    event.value = value;
    Record::Good { event, json: object.to_string() }
}

/// A bad record.
fn bad(json: &str, field: Option<&'static str>, kind: &'static str) -> Record {
    Record::Bad { json: json.to_owned(), field, kind }
}

/// How a request body is written.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// A JSON array of the records.
    Array,
    /// NDJSON, with blank and white-space lines, a CRLF line end and a byte-order mark mixed in.
    Ndjson,
}

/// A rejection a request's answer must report: `(index, field, kind)`.
type Rejection = (usize, Option<&'static str>, &'static str);

/// One request of the test feed.
struct Request {
    body: Body,
    records: Vec<Record>,
}

impl Request {
    /// The request body.
    fn text(&self) -> String {
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
    fn expected(&self) -> (usize, Vec<Rejection>) {
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
fn feed() -> Vec<Request> {
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
                // Late: joins c1's two sessions into one (the example of SEMANTICS.md).
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
fn accepted_events(requests: &[Request]) -> Vec<FullEvent> {
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
const LATENESS_MS: i64 = 10 * 60_000;

/// The HTTP source's watermark after `events` arrived in order, and how many of them were late
/// (older than the watermark when they arrived).
fn http_clock(events: &[FullEvent]) -> (i64, usize) {
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

/// The segments of the test configs.
const SEGMENTS: &str = r#"
[[segments]]
name = "buyers"
rule = "converted"
[[segments]]
name = "engaged"
rule = "events >= 2"
[[segments]]
name = "emailed"
rule = 'channels contains "email"'
"#;

/// The rules of [`SEGMENTS`], by hand.
const SEGMENT_RULES: [SegmentRule; 3] = [
    ("buyers", |j| j.converted()),
    ("engaged", |j| j.events >= 2),
    ("emailed", |j| j.channel_events.contains_key("email")),
];

/// The segments `journey` is in, by the rules of [`SEGMENTS`], sorted.
fn segments_of(journey: &FullJourney) -> Vec<&'static str> {
    let mut segments: Vec<&str> =
        SEGMENT_RULES.iter().filter(|(_, rule)| rule(journey)).map(|(name, _)| *name).collect();
    segments.sort_unstable();
    segments
}

/// Everything the oracle expects of a feed.
struct Expected {
    journeys: BTreeMap<String, FullJourney>,
    edges: Edges,
    /// `(segment, customer)`.
    memberships: BTreeSet<(String, String)>,
    /// The segments' aggregates `(members, value_micros, converted)`, of those with members.
    segments: BTreeMap<String, (i64, i64, i64)>,
    /// The members of each segment per channel.
    segment_channels: BTreeMap<(String, String), i64>,
    /// The watermark of the HTTP source after the events.
    watermark: i64,
}

impl Expected {
    /// What the service holds once it has taken `events` over HTTP (late ones accepted).
    fn of(events: &[FullEvent]) -> Expected {
        let (watermark, _) = http_clock(events);
        let views = recompute(events, Some(GAP_MS), PATH_LEN, Some(watermark), &SEGMENT_RULES);
        let oracle_events: Vec<_> = events.iter().map(FullEvent::to_oracle).collect();
        let (edges, simple) = oracle_at(&oracle_events, Some(GAP_MS), PATH_LEN, Some(watermark));
        // The oracle's two adapters (full rows and segments; the fields of the batch tests)
        // agree with each other.
        assert_eq!(edges, views.edges);
        assert_eq!(simple.len(), views.journeys.len());
        for (customer, j) in &simple {
            let full = &views.journeys[customer];
            assert_eq!(
                (j.events, j.sessions, j.first_time, j.last_time, &j.path, j.conversions),
                (full.events, full.sessions, full.first_time, full.last_time, &full.path, full.conversions)
            );
        }
        // Its memberships are those of the rules.
        let memberships: BTreeSet<(String, String)> = views
            .journeys
            .iter()
            .flat_map(|(customer, j)| segments_of(j).into_iter().map(|s| (s.to_owned(), customer.clone())))
            .collect();
        assert_eq!(memberships, views.memberships);
        Expected {
            journeys: views.journeys,
            edges: views.edges,
            memberships: views.memberships,
            segments: views.segments,
            segment_channels: views.segment_channels,
            watermark,
        }
    }

    /// The journey line fields (without `time` and `diff`) the oracle expects for `customer`.
    fn line(&self, customer: &str) -> Value {
        journey_line(customer, &self.journeys[customer])
    }

    /// Every expected journey line, by customer.
    fn lines(&self) -> BTreeMap<String, Value> {
        self.journeys.keys().map(|c| (c.clone(), self.line(c))).collect()
    }

    /// The memberships of `customer`.
    fn memberships_of(&self, customer: &str) -> BTreeSet<(String, String)> {
        self.memberships.iter().filter(|(_, c)| c == customer).cloned().collect()
    }

    /// The `/v1/segments` rows the oracle expects, by name.
    fn segment_rows(&self) -> Vec<Value> {
        ["buyers", "emailed", "engaged"]
            .into_iter()
            .map(|segment| {
                let (members, value, converted) = self.segments.get(segment).copied().unwrap_or_default();
                json!({
                    "segment": segment,
                    "members": members,
                    "value": value as f64 / 1e6,
                    "converted_members": converted,
                    "conversion_rate": if members == 0 { 0.0 } else { converted as f64 / members as f64 },
                })
            })
            .collect()
    }

    /// The members of `segment` per channel (channels with members only).
    fn segment_channels(&self, segment: &str) -> Vec<Value> {
        self.segment_channels
            .iter()
            .filter(|((s, _), _)| s == segment)
            .map(|((_, channel), members)| json!({"channel": channel, "members": members}))
            .collect()
    }

    /// The `/v1/transitions` rows the oracle expects, sorted by (from, to); only those out of
    /// `from` if given.
    fn transition_rows(&self, from: Option<&str>) -> Vec<Value> {
        let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
        for ((f, _), (count, _)) in &self.edges {
            *totals.entry(f).or_default() += count;
        }
        self.edges
            .iter()
            .filter(|((f, _), _)| from.is_none_or(|from| f == from))
            .map(|((f, t), &(count, dwell))| {
                json!({
                    "from": f,
                    "to": t,
                    "count": count,
                    "dwell_ms_total": dwell,
                    "dwell_ms_mean": dwell as f64 / count as f64,
                    "probability": count as f64 / totals[f.as_str()] as f64,
                })
            })
            .collect()
    }
}

/// Posts every request of `requests` in order and checks each answer.
async fn post_feed(server: &Server, requests: &[Request]) {
    for (i, request) in requests.iter().enumerate() {
        post_checked(server, request, i).await;
    }
}

/// Posts `request` and checks its answer.
async fn post_checked(server: &Server, request: &Request, i: usize) {
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
fn rejections_by_reason(requests: &[Request]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        for (_, _, kind) in request.expected().1 {
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}

/// Checks the snapshot files in `dir` against the oracle, at logical time `time`.
fn check_snapshot_files(dir: &Path, expected: &Expected, time: u64) {
    let journeys = read_table(dir, "journeys");
    assert_eq!(common::logical_time(&journeys), Some(time.to_string()), "journeys.arrow's logical time");
    let watermark = rfc3339(expected.watermark);
    assert_eq!(common::watermark(&journeys), Some(watermark), "journeys.arrow's watermark");
    let simple: BTreeMap<String, common::OracleJourney> = expected
        .journeys
        .iter()
        .map(|(c, j)| {
            (
                c.clone(),
                common::OracleJourney {
                    events: j.events,
                    sessions: j.sessions,
                    first_time: j.first_time,
                    last_time: j.last_time,
                    path: j.path.clone(),
                    conversions: j.conversions,
                },
            )
        })
        .collect();
    assert_eq!(common::journeys(&journeys), simple, "journeys.arrow");
    let customers = common::strings(&journeys, "customer");
    let session_start = common::times(&journeys, "session_start");
    let session_events = common::ints(&journeys, "session_events");
    let channels = common::string_lists(&journeys, "channels");
    let converted = common::bools(&journeys, "converted");
    let last_conversion = common::times(&journeys, "last_conversion_time");
    let value = common::floats(&journeys, "value");
    for (i, customer) in customers.iter().enumerate() {
        let j = &expected.journeys[customer];
        let want_channels: Vec<String> = j.channel_events.keys().cloned().collect();
        assert_eq!(
            (session_start[i], session_events[i], &channels[i], converted[i], last_conversion[i], value[i]),
            (Some(j.session_start), j.session_events, &want_channels, j.converted(), j.last_conversion_time, j.value()),
            "journeys.arrow: {customer}"
        );
    }
    let transitions = read_table(dir, "transitions");
    assert_eq!(common::logical_time(&transitions), Some(time.to_string()));
    assert_eq!(common::edges(&transitions), expected.edges, "transitions.arrow");
    let segments = read_table(dir, "segments");
    assert_eq!(common::logical_time(&segments), Some(time.to_string()));
    let names = common::strings(&segments, "segment");
    let members = common::ints(&segments, "members");
    let got: BTreeMap<String, i64> = names.into_iter().zip(members).collect();
    let want: BTreeMap<String, i64> = expected
        .segment_rows()
        .iter()
        .map(|row| (row["segment"].as_str().unwrap().to_owned(), row["members"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, want, "segments.arrow");
}

const CONFIG: &str = r#"
[input]
late = "accept"
[journeys]
session-gap = "30m"
conversion = "kind=purchase"
[output]
dir = "out"
[run]
workers = 2
[server]
token = "secret"
"#;

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_subscriptions_lookups_metrics_and_the_final_snapshot_agree_with_the_oracle() {
    bounded(async {
        let mut server = Server::start(&format!("{CONFIG}{SEGMENTS}"), Some(TOKEN));
        let requests = feed();
        let events = accepted_events(&requests);
        let expected = Expected::of(&events);
        // Some events arrive late, and the watermark leaves some last sessions open.
        assert!(http_clock(&events).1 >= 1, "the feed has late events");
        let oracle_events: Vec<_> = events.iter().map(FullEvent::to_oracle).collect();
        let (at_the_end, _) = common::oracle(&oracle_events, Some(GAP_MS), PATH_LEN);
        assert_ne!(expected.edges, at_the_end, "some last sessions are still open");
        // The oracle itself, by hand on a few customers (SEMANTICS.md's example for c1).
        assert_eq!(expected.journeys["c1"].sessions, 1);
        assert_eq!(expected.journeys["c1"].path, ["pricing", "checkout", "help", "help", "home"]);
        assert_eq!(expected.journeys["c2"].sessions, 3);
        assert_eq!(expected.journeys["c2"].path, ["b", "c", "a", "b", "c"]);
        assert_eq!(expected.journeys["c2"].session_events, 1);
        assert_eq!(expected.journeys["c3"].path, ["ad", "landing", "product", "product"]);
        assert_eq!(expected.journeys["c6"].conversions, 2);

        // Everything /v1 needs the token; /healthz and /metrics do not.
        use reqwest::Method;
        for path in [
            "/v1/segments",
            "/v1/segments/buyers",
            "/v1/customers/c1",
            "/v1/transitions?from=home",
            "/v1/subscribe/sse",
        ] {
            for auth in [None, Some("Bearer wrong"), Some(TOKEN), Some("Basic c2VjcmV0")] {
                assert_eq!(server.status_with(Method::GET, path, auth).await, 401, "GET {path} with {auth:?}");
            }
        }
        assert_eq!(server.status_with(Method::POST, "/v1/events", None).await, 401);
        let unauthorized = server.client.post(format!("{}/v1/events", server.base)).body(requests[0].text());
        let response = unauthorized.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let answer: Value = serde_json::from_str(&response.text().await.unwrap()).expect("a JSON answer");
        assert!(answer["error"].is_string(), "an error message: {answer}");
        let mut no_token = server.ws_request("");
        no_token.headers_mut().remove("authorization");
        match tokio_tungstenite::connect_async(no_token).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
            other => panic!("a WebSocket subscription without the token: {:?}", other.map(|_| ())),
        }
        assert_eq!(server.status_with(Method::GET, "/healthz", None).await, 200);
        let health = server.client.get(format!("{}/healthz", server.base)).send().await.unwrap().text().await.unwrap();
        assert_eq!(health.trim(), "ok");
        assert_eq!(server.status_with(Method::GET, "/metrics", None).await, 200);

        // A subscriber of everything from the start: an empty snapshot without a time.
        let mut everything = server.subscribe_ws("").await;
        everything.wait_until("the snapshot message", |m, _| !m.is_empty()).await;
        assert_eq!(everything.messages[0], json!({"type": "snapshot", "time": null, "rows": 0}));

        post_checked(&server, &requests[0], 0).await;
        // A subscriber of c1 once c1 is in the tables: its snapshot holds c1's row.
        let deadline = Instant::now() + WAIT;
        while server.get("/v1/customers/c1").await.0 != 200 {
            assert!(Instant::now() < deadline, "c1 never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c1 = server.subscribe_ws("?customer=c1").await;
        post_checked(&server, &requests[1], 1).await;
        let mut sse = server.subscribe_sse("").await;
        let mut buyers = server.subscribe_sse("?segment=buyers").await;
        let mut unicode = server.subscribe_ws(&format!("?customer={}", encode("ü-9 x"))).await;
        for (i, request) in requests.iter().enumerate().skip(2) {
            post_checked(&server, request, i).await;
        }
        // Malformed bodies and empty ones are not records at all.
        let (status, _, answer) = server.post("[{\"customer\":\"c1\"},").await;
        assert_eq!(status, 400, "a malformed JSON array: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
        let (status, _, answer) = server.post("\n  \n").await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 0, "rejected": []})), "an empty NDJSON body");

        let time = server.settle(events.len()).await;
        for subscriber in [&mut everything, &mut c1, &mut sse, &mut buyers, &mut unicode] {
            subscriber.wait_progress(time).await;
        }

        // Each subscription replays to the oracle's rows, within its filter.
        let all_lines = expected.lines();
        for subscriber in [&everything, &sse] {
            let replayed = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(replayed.progress.last(), Some(&time), "{}", subscriber.name);
            assert_eq!(replayed.journeys, all_lines, "{}: the journey rows", subscriber.name);
            assert_eq!(replayed.memberships, expected.memberships, "{}: the memberships", subscriber.name);
            assert!(replayed.end.is_none());
        }
        let replayed = replay(&everything.messages, "ws");
        assert_eq!(replayed.snapshot_time, None);
        let metrics = server.metrics().await;
        assert_eq!(
            metrics["stepstone_deltas_out_total"], replayed.delta_lines as f64,
            "every published line reached the subscriber of everything"
        );
        let replayed = replay(&sse.messages, "sse");
        assert!(replayed.snapshot_time.is_some() && replayed.snapshot_rows > 0, "sse joined with rows in its snapshot");
        let replayed = replay(&c1.messages, "c1");
        assert!(replayed.snapshot_rows > 0, "c1's snapshot holds its row");
        assert!(replayed.lines.iter().all(|line| line["customer"] == "c1"), "only c1's lines: {:?}", replayed.lines);
        assert_eq!(replayed.journeys, BTreeMap::from([("c1".to_owned(), expected.line("c1"))]));
        assert_eq!(replayed.memberships, expected.memberships_of("c1"));
        let replayed = replay(&unicode.messages, "ü-9 x");
        assert!(replayed.lines.iter().all(|line| line["customer"] == "ü-9 x"), "{:?}", replayed.lines);
        assert_eq!(replayed.journeys, BTreeMap::from([("ü-9 x".to_owned(), expected.line("ü-9 x"))]));
        let replayed = replay(&buyers.messages, "buyers");
        assert!(
            replayed.lines.iter().all(|line| line["type"] == "segment" && line["segment"] == "buyers"),
            "only buyers' memberships: {:?}",
            replayed.lines
        );
        let want: BTreeSet<_> = expected.memberships.iter().filter(|(s, _)| s == "buyers").cloned().collect();
        assert_eq!(replayed.memberships, want);

        // Lookups.
        for customer in expected.journeys.keys() {
            let answer = server.get_ok(&format!("/v1/customers/{}", encode(customer))).await;
            let mut row = expected.line(customer);
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected.journeys[customer]));
            assert_eq!(answer, json!({"time": time, "customer": customer, "journeys": [row]}), "customer {customer}");
        }
        for unknown in ["c9", "nobody", "home", "buyers"] {
            let (status, answer) = server.get(&format!("/v1/customers/{unknown}")).await;
            assert_eq!(status, 404, "customer {unknown}: {answer}");
            assert!(answer["error"].is_string());
        }
        let answer = server.get_ok("/v1/segments").await;
        assert_eq!(answer, json!({"time": time, "segments": expected.segment_rows()}));
        for row in expected.segment_rows() {
            let name = row["segment"].as_str().unwrap();
            let mut want = row.clone();
            want["channels"] = json!(expected.segment_channels(name));
            want["time"] = json!(time);
            assert_eq!(server.get_ok(&format!("/v1/segments/{name}")).await, want, "segment {name}");
        }
        assert_eq!(server.get("/v1/segments/c1").await.0, 404);
        assert_eq!(server.get("/v1/segments/nothing").await.0, 404);
        for from in ["(start)", "help", "pricing", "y"] {
            let answer = server.get_ok(&format!("/v1/transitions?from={}", encode(from))).await;
            let rows = expected.transition_rows(Some(from));
            assert!(!rows.is_empty());
            assert_eq!(answer, json!({"time": time, "from": from, "transitions": rows}), "transitions from {from}");
        }
        let answer = server.get_ok("/v1/transitions").await;
        assert_eq!(answer, json!({"time": time, "from": null, "transitions": expected.transition_rows(None)}));
        let answer = server.get_ok("/v1/transitions?from=nowhere").await;
        assert_eq!(answer, json!({"time": time, "from": "nowhere", "transitions": []}));

        // Metrics.
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_in_total"], events.len() as f64);
        let rejected: BTreeMap<String, f64> = metrics
            .iter()
            .filter_map(|(name, value)| {
                let reason = name.strip_prefix("stepstone_events_rejected_total{reason=\"")?.strip_suffix("\"}")?;
                Some((reason.to_owned(), *value))
            })
            .collect();
        let want: BTreeMap<String, f64> =
            rejections_by_reason(&requests).into_iter().map(|(k, n)| (k.to_owned(), n as f64)).collect();
        assert_eq!(rejected, want, "rejections by reason");
        assert_eq!(metrics["stepstone_subscribers"], 5.0);
        assert_eq!(metrics["stepstone_logical_time"], time as f64);
        assert_eq!(metrics["stepstone_engine_lag_seconds"], 0.0);
        assert_eq!(metrics["stepstone_events_late_total"], http_clock(&events).1 as f64);
        assert!(metrics.contains_key("stepstone_snapshot_age_seconds"), "{metrics:?}");
        // The dead letters hold every rejection.
        let dead = std::fs::read_to_string(server.out.join("rejected.jsonl")).expect("rejected.jsonl");
        assert_eq!(dead.lines().count(), want.values().sum::<f64>() as usize, "{dead}");

        drop(unicode);

        // SIGTERM: a clean stop, subscribers told, the final snapshot written.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        assert!(
            server.log().contains(&format!("stopped at logical time {time};")),
            "the final time on stderr:\n{}",
            server.log()
        );
        // SSE subscribers are told `closing`; WebSocket ones may not be (see
        // `websocket_subscribers_are_told_closing_at_shutdown`), but nothing is missing before.
        for subscriber in [&mut everything, &mut c1, &mut sse, &mut buyers] {
            subscriber.wait_closed().await;
            let replayed = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(replayed.progress.last(), Some(&time), "{}: nothing after the final time", subscriber.name);
            if subscriber.name.starts_with("sse") {
                let last = subscriber.messages.last().unwrap();
                assert_eq!(last, &json!({"type": "closing"}), "{}: the last message at shutdown", subscriber.name);
                assert_eq!(subscriber.closed.as_deref(), Some("end of stream"), "{}", subscriber.name);
            } else if subscriber.messages.last() != Some(&json!({"type": "closing"})) {
                eprintln!("note: {} was not told `closing` at shutdown ({:?})", subscriber.name, subscriber.closed);
            }
        }
        check_snapshot_files(&server.out, &expected, time);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_flight_serves_the_tables_to_pyarrow() {
    bounded(async {
        let python_ok = Command::new("python3")
            .args(["-c", "import pyarrow.flight"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !python_ok {
            eprintln!("note: python3 with pyarrow.flight is not available; skipping the Arrow Flight check");
            return;
        }
        let mut server = Server::start(&format!("{CONFIG}{SEGMENTS}"), Some(TOKEN));
        let requests = feed();
        let events = accepted_events(&requests);
        let expected = Expected::of(&events);
        post_feed(&server, &requests).await;
        let time = server.settle(events.len()).await;

        let script = common::root().join("tests/serve_flight.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(format!("grpc://{}", server.flight))
            .arg(TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running python3");
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not finish within {WAIT:?}", script.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} failed:\n{}\n{stdout}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let flight: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("JSON from the script ({e}): {stdout}"));

        // ListFlights: the three tables, their tickets and row counts.
        let segment_rows = expected.segment_rows();
        let counts = [
            ("journeys", expected.journeys.len()),
            ("transitions", expected.edges.len()),
            ("segments", segment_rows.len()),
        ];
        let want: Vec<Value> =
            counts.iter().map(|(name, rows)| json!({"path": [name], "tickets": [name], "records": rows})).collect();
        assert_eq!(flight["flights"], json!(want), "ListFlights");
        // Calls without the token (or with a wrong one) are refused as unauthenticated.
        assert_eq!(flight["without_token"], json!({"list_flights": "unauthenticated", "do_get": "unauthenticated"}));
        assert_eq!(flight["wrong_token"], json!({"list_flights": "unauthenticated", "do_get": "unauthenticated"}));
        // GetFlightInfo and GetSchema describe the tables DoGet streams; an unknown ticket fails.
        assert_eq!(flight["flight_info"]["records"], expected.journeys.len());
        assert_eq!(flight["flight_info"]["columns"], flight["tables"]["journeys"]["columns"]);
        assert_eq!(
            flight["segments_schema"],
            json!(["segment", "members", "value", "converted_members", "conversion_rate"])
        );
        assert_eq!(flight["unknown_ticket"], "ArrowKeyError", "gRPC NOT_FOUND for an unknown ticket");

        // DoGet: each table at the final logical time, matching the oracle.
        let tables = &flight["tables"];
        for (name, rows) in counts {
            assert_eq!(tables[name]["rows"], rows, "{name} rows");
            assert_eq!(tables[name]["logical_time"], time.to_string(), "{name}'s logical time");
        }
        let journeys = &tables["journeys"]["data"];
        let customers: Vec<&str> =
            journeys["customer"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(
            customers.iter().copied().collect::<BTreeSet<_>>(),
            expected.journeys.keys().map(String::as_str).collect()
        );
        for (i, customer) in customers.iter().enumerate() {
            let j = &expected.journeys[*customer];
            let column = |name: &str| journeys[name][i].clone();
            let got = json!({
                "first_time": column("first_time"), "last_time": column("last_time"), "events": column("events"),
                "sessions": column("sessions"), "session_start": column("session_start"),
                "session_events": column("session_events"), "path": column("path"), "channels": column("channels"),
                "converted": column("converted"), "conversions": column("conversions"),
                "last_conversion_time": column("last_conversion_time"), "value": column("value"),
                "last_contact_point": column("last_contact_point"),
                "session_duration_ms": column("session_duration_ms"),
            });
            let want = json!({
                "first_time": j.first_time, "last_time": j.last_time, "events": j.events, "sessions": j.sessions,
                "session_start": j.session_start, "session_events": j.session_events, "path": j.path,
                "channels": j.channel_events.keys().collect::<Vec<_>>(), "converted": j.converted(),
                "conversions": j.conversions, "last_conversion_time": j.last_conversion_time, "value": j.value(),
                "last_contact_point": j.path.last(), "session_duration_ms": j.last_time - j.session_start,
            });
            assert_eq!(got, want, "Flight journeys: {customer}");
            let channel_events: BTreeMap<String, i64> = journeys["channel_events"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["channel"].as_str().unwrap().to_owned(), e["events"].as_i64().unwrap()))
                .collect();
            assert_eq!(channel_events, j.channel_events, "Flight journeys: {customer}'s channel events");
        }
        let transitions = &tables["transitions"]["data"];
        let n = transitions["from"].as_array().unwrap().len();
        let mut got: Vec<Value> = (0..n)
            .map(|i| {
                let column = |name: &str| transitions[name][i].clone();
                json!({
                    "from": column("from"), "to": column("to"), "count": column("count"),
                    "dwell_ms_total": column("dwell_ms_total"), "dwell_ms_mean": column("dwell_ms_mean"),
                    "probability": column("probability"),
                })
            })
            .collect();
        got.sort_by_key(|row| (row["from"].as_str().unwrap().to_owned(), row["to"].as_str().unwrap().to_owned()));
        assert_eq!(got, expected.transition_rows(None), "Flight transitions");
        let segments = &tables["segments"]["data"];
        let n = segments["segment"].as_array().unwrap().len();
        let mut got: Vec<Value> = (0..n)
            .map(|i| {
                let column = |name: &str| segments[name][i].clone();
                json!({
                    "segment": column("segment"), "members": column("members"), "value": column("value"),
                    "converted_members": column("converted_members"), "conversion_rate": column("conversion_rate"),
                })
            })
            .collect();
        got.sort_by_key(|row| row["segment"].as_str().unwrap().to_owned());
        assert_eq!(got, segment_rows, "Flight segments");

        // The final snapshot files agree with Flight (and the oracle) at the same time.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        check_snapshot_files(&server.out, &expected, time);
        for (name, rows) in counts {
            assert_eq!(read_table(&server.out, name).num_rows(), rows, "{name}.arrow rows");
        }
        let journeys_file = read_table(&server.out, "journeys");
        let file_columns: Vec<String> = journeys_file.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(
            tables["journeys"]["columns"],
            json!(file_columns),
            "Flight and the snapshot file have the same columns"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_it_lagged_and_closed_without_holding_anyone_back() {
    bounded(async {
        // No token: every endpoint is open. Each request is a logical time of its own.
        let config = r#"
[input]
late = "accept"
[journeys]
session-gap = "30m"
conversion = "kind=purchase"
[run]
workers = 1
[server]
subscriber-buffer = 2
epoch-interval = "0s"
[[segments]]
name = "all"
rule = "events >= 1"
"#;
        let mut server = Server::start(config, None);

        // The slow subscriber: a small receive buffer, read up to the snapshot message, then not.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.http).await.expect("connecting");
        let (mut slow, _) =
            tokio_tungstenite::client_async(server.ws_request(""), stream).await.expect("a WebSocket subscription");
        let first = tokio::time::timeout(WAIT, slow.next()).await.expect("the snapshot message").unwrap().unwrap();
        let first: Value = serde_json::from_str(first.into_text().unwrap().as_str()).unwrap();
        assert_eq!(first, json!({"type": "snapshot", "time": null, "rows": 0}));
        let mut normal = server.subscribe_ws("").await;

        // Many requests of large rows: far more than the slow subscriber's buffers hold.
        let requests = 80;
        let per_request = 80;
        let long = "x".repeat(300);
        let mut events = Vec::new();
        for r in 0..requests {
            let mut body = String::new();
            for i in 0..per_request {
                let customer = format!("lag-{r:03}-{i:02}-{long}");
                let contact_point = format!("page-{}-{long}", i % 7);
                let time = at(r as f64);
                body.push_str(&json!({"customer": customer, "time": time, "contact_point": contact_point}).to_string());
                body.push('\n');
                events.push(FullEvent {
                    customer,
                    time,
                    row: events.len(),
                    contact_point,
                    channel: None,
                    converting: false,
                    value: 0.0,
                });
            }
            let (status, _, answer) = server.post(body).await;
            assert_eq!((status, &answer["accepted"]), (200, &json!(per_request)), "request {r}: {answer}");
            // The normal subscriber keeps up: it has the time before the next one is published.
            normal.wait_progress(r as u64).await;
        }
        let last_time = (requests - 1) as u64;
        // The engine and the normal subscriber keep going while the slow one does not read.
        assert_eq!(server.settle(events.len()).await, last_time, "one logical time per request");
        normal.wait_progress(last_time).await;
        let expected = full_journeys(&events, Some(GAP_MS), PATH_LEN);
        let replayed = replay(&normal.messages, "normal");
        assert_eq!(replayed.progress, (0..=last_time).collect::<Vec<_>>(), "a progress message for every time");
        assert_eq!(replayed.journeys.len(), expected.len());
        for (customer, row) in &replayed.journeys {
            let j = &expected[customer];
            assert_eq!((&row["events"], &row["path"]), (&json!(j.events), &json!(j.path)), "{customer}");
        }
        assert_eq!(replayed.memberships.len(), expected.len(), "everyone is in `all`");
        assert!(replayed.end.is_none(), "the normal subscriber did not lag");
        assert_eq!(server.metrics().await["stepstone_subscribers"], 2.0);

        // Now the slow one reads: what was buffered, then `lagged`, then the end.
        let mut slow = Subscriber::websocket("slow".to_owned(), slow);
        slow.messages.push(json!({"type": "snapshot", "time": null, "rows": 0}));
        slow.wait_closed().await;
        let replayed = replay(&slow.messages, "slow");
        let lagged = replayed.end.as_ref().unwrap_or_else(|| panic!("a lagged message; closed: {:?}", slow.closed));
        assert_eq!(lagged["type"], "lagged", "{lagged}");
        assert!(lagged["missed"].as_u64().is_some_and(|n| n >= 1), "{lagged}");
        assert_eq!(lagged.as_object().unwrap().len(), 2, "{lagged}");
        assert!(
            replayed.progress.last().is_none_or(|&t| t < last_time),
            "the slow subscriber cannot have seen every time: {:?}",
            replayed.progress
        );
        assert!(slow.closed.as_deref().is_some_and(|why| why.starts_with("close frame")), "{:?}", slow.closed);
        let deadline = Instant::now() + WAIT;
        while server.metrics().await["stepstone_subscribers"] != 1.0 {
            assert!(Instant::now() < deadline, "the lagged subscriber is still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // It can subscribe again, and gets the current state in its snapshot.
        let mut again = server.subscribe_sse("").await;
        again.wait_progress(last_time).await;
        let replayed = replay(&again.messages, "again");
        assert_eq!(replayed.snapshot_time, Some(last_time));
        assert_eq!(replayed.snapshot_rows, 2 * expected.len());
        // The normal subscriber is still subscribed and up to date.
        let after =
            server.post(json!([{"customer": "late", "time": at(0.0), "contact_point": "home"}]).to_string()).await;
        assert_eq!(after.0, 200);
        normal.wait_progress(last_time + 1).await;
        again.wait_progress(last_time + 1).await;
        assert!(replay(&normal.messages, "normal").journeys.contains_key("late"));
        assert!(replay(&again.messages, "again").journeys.contains_key("late"));

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses() {
    bounded(async {
        let config = r#"
[run]
workers = 1
[server]
token = "secret"
max-body-bytes = 4096
max-subscribers = 2
[[segments]]
name = "buyers"
rule = "converted"
"#;
        let mut server = Server::start(config, Some(TOKEN));
        let record =
            |i: usize| json!({"customer": format!("c{i}"), "time": at(i as f64), "contact_point": "home"}).to_string();

        // Over the body limit: 413, and nothing is taken.
        let big: String = (0..100).map(|i| record(i) + "\n").collect();
        assert!(big.len() > 4096);
        let response =
            server.authorized(server.client.post(format!("{}/v1/events", server.base))).body(big).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 413);
        // Just under the limit: fine.
        let mut small = String::new();
        let mut i = 0;
        while small.len() + record(i).len() < 4096 {
            small += &(record(i) + "\n");
            i += 1;
        }
        let (status, _, answer) = server.post(small).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": i, "rejected": []})));

        // Malformed JSON arrays: 400 with an error, and nothing is taken.
        for body in ["[{\"customer\":\"x\",\"time\":0,\"contact_point\":\"a\"},", "[1, 2", "[}", " [\"a\"] trailing"] {
            let (status, _, answer) = server.post(body).await;
            assert_eq!(status, 400, "{body:?}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{body:?}: {answer}");
        }
        // A JSON array of only bad records: 400 with the rejections.
        let (status, _, answer) = server.post(r#"[{"customer":"x"}, "text"]"#).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["accepted"], 0);
        assert_eq!(answer["rejected"].as_array().map(Vec::len), Some(2), "{answer}");
        let (status, _, answer) = server.post("[]").await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 0, "rejected": []})));

        let settled = server.settle(i).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_in_total"], i as f64, "only the good request's events");
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"missing_field\"}"], 1.0);
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"malformed\"}"], 1.0);

        // A subscription to a customer and a segment at once: 400.
        for query in ["?customer=a&segment=b", "?segment=buyers&customer=c1"] {
            match tokio_tungstenite::connect_async(server.ws_request(query)).await {
                Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400, "ws {query}"),
                other => panic!("ws {query}: {:?}", other.map(|_| ())),
            }
            let (status, answer) = server.get(&format!("/v1/subscribe/sse{query}")).await;
            assert_eq!(status, 400, "sse {query}: {answer}");
            assert!(answer["error"].is_string());
        }

        // Unknown customers and segments: 404.
        for path in ["/v1/customers/nobody", "/v1/customers/home", "/v1/segments/nothing", "/v1/segments/c1"] {
            let (status, answer) = server.get(path).await;
            assert_eq!(status, 404, "{path}: {answer}");
            assert!(answer["error"].is_string(), "{path}: {answer}");
        }
        let answer = server.get_ok("/v1/customers/c0").await;
        assert_eq!(answer["time"], settled);
        assert_eq!(answer["journeys"][0]["segments"], json!([]));
        // A declared segment without members is reported with zeros.
        let empty =
            json!({"segment": "buyers", "members": 0, "value": 0.0, "converted_members": 0, "conversion_rate": 0.0});
        assert_eq!(server.get_ok("/v1/segments").await, json!({"time": settled, "segments": [empty.clone()]}));
        let mut want = empty;
        want["channels"] = json!([]);
        want["time"] = json!(settled);
        assert_eq!(server.get_ok("/v1/segments/buyers").await, want);

        // At most max-subscribers at once: 503 for the next one.
        let mut first = server.subscribe_ws("").await;
        let mut second = server.subscribe_sse("?customer=c0").await;
        first.wait_progress(settled).await;
        second.wait_progress(settled).await;
        let (status, answer) = server.get("/v1/subscribe/sse").await;
        assert_eq!(status, 503, "a third subscriber: {answer}");
        match tokio_tungstenite::connect_async(server.ws_request("")).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
            other => panic!("a third WebSocket subscriber: {:?}", other.map(|_| ())),
        }
        // A closed subscription frees its place (once the next logical time is published: see
        // `a_closed_subscription_is_released_without_waiting_for_deltas`).
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, _) = server.post(record(1000)).await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + WAIT;
        while server.metrics().await["stepstone_subscribers"] != 1.0 {
            assert!(Instant::now() < deadline, "the closed subscriber is still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settled = server.settle(i + 1).await;
        let mut third = server.subscribe_ws("?segment=buyers").await;
        third.wait_until("the snapshot", |m, _| !m.is_empty()).await;
        assert_eq!(third.messages[0], json!({"type": "snapshot", "time": settled, "rows": 0}));

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        second.wait_closed().await;
        assert_eq!(second.messages.last(), Some(&json!({"type": "closing"})));
    })
    .await;
}

/// The `(exit)` edges of `server`'s transition graph: `from` → count.
async fn exits(server: &Server) -> BTreeMap<String, i64> {
    let answer = server.get_ok("/v1/transitions").await;
    answer["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["to"] == "(exit)")
        .map(|t| (t["from"].as_str().unwrap().to_owned(), t["count"].as_i64().unwrap()))
        .collect()
}

/// One NDJSON record of `customer` at `minutes` at `contact_point`.
fn event(customer: &str, minutes: f64, contact_point: &str) -> String {
    json!({"customer": customer, "time": at(minutes), "contact_point": contact_point}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_are_rejected_and_sessions_end_when_the_watermark_passes() {
    bounded(async {
        // Default event time: 10 minutes of allowed lateness, late events rejected.
        let mut server = Server::start("[run]\nworkers = 2\n[journeys]\nsession-gap = \"30m\"\n", None);
        let (status, _, _) = server.post(event("a", 0.0, "home") + "\n" + &event("b", 0.0, "home")).await;
        assert_eq!(status, 200);
        server.settle(2).await;
        assert_eq!(exits(&server).await, BTreeMap::new(), "no session is over before the watermark passes it");
        // Watermark 25 min: the sessions ending at 30 min are not over.
        server.post(event("c", 35.0, "pricing")).await;
        server.settle(3).await;
        assert_eq!(exits(&server).await, BTreeMap::new());
        // Watermark 35 min: they are.
        server.post(event("c", 45.0, "cart")).await;
        server.settle(4).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 2)]));
        // 20 min is behind the watermark: rejected as late, with the reason.
        let (status, _, answer) = server.post(event("a", 20.0, "help")).await;
        assert_eq!(status, 400, "{answer}");
        let rejected = &answer["rejected"][0];
        assert_eq!((&rejected["kind"], &rejected["field"]), (&json!("late"), &json!("time")), "{answer}");
        assert!(rejected["reason"].as_str().unwrap().contains("watermark 2026-03-01T10:35:00.000Z"), "{answer}");
        // Exactly at the watermark is on time.
        let (status, _, answer) = server.post(event("b", 35.0, "search")).await;
        assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
        server.settle(5).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_late_total"], 1.0);
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"late\"}"], 1.0);
        // b's session now runs 0 → 35 min (a gap over 30 min: two sessions); the first is over.
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 2)]));
        let status = server.terminate().await;
        assert!(status.success());
        let dead = std::fs::read_to_string(server.out.join("rejected.jsonl")).expect("the dead letters");
        let dead: Vec<Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(dead.len(), 1);
        assert_eq!((&dead[0]["kind"], &dead[0]["line"]), (&json!("late"), &json!(1)), "{dead:?}");
        assert!(dead[0]["raw"].as_str().unwrap().contains("help"), "{dead:?}");

        // Accepting late events: a late event reopens a session that was over, exactly.
        let config = "[input]\nlate = \"accept\"\n[run]\nworkers = 2\n[journeys]\nsession-gap = \"30m\"\n";
        let mut server = Server::start(config, None);
        server.post(event("a", 0.0, "home") + "\n" + &event("c", 45.0, "cart")).await;
        server.settle(2).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 1)]));
        let (status, _, answer) = server.post(event("a", 20.0, "help")).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 1, "rejected": []})));
        server.settle(3).await;
        assert_eq!(server.metrics().await["stepstone_events_late_total"], 1.0);
        // a's session now ends at 50 min, after the watermark (35 min): open again.
        assert_eq!(exits(&server).await, BTreeMap::new());
        server.post(event("d", 100.0, "home")).await;
        server.settle(4).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("cart".to_owned(), 1), ("help".to_owned(), 1)]));
        let transitions = server.get_ok("/v1/transitions?from=home").await;
        assert_eq!(transitions["transitions"][0]["to"], "help", "{transitions}");
        let status = server.terminate().await;
        assert!(status.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_input_file_is_read_as_it_grows() {
    bounded(async {
        let inputs = tempfile::tempdir().expect("a temporary directory");
        let path = inputs.path().join("events.jsonl");
        let line = |i: usize, contact_point: &str| {
            json!({"customer": format!("f{}", i % 3), "time": at(i as f64), "contact_point": contact_point}).to_string()
                + "\n"
        };
        let initial: String = (0..10).map(|i| line(i, "home")).collect();
        std::fs::write(&path, initial + "not json\n").expect("writing the input");
        let config = format!("[input]\npaths = [{:?}]\nfollow = true\n[run]\nworkers = 2\n", path.to_str().unwrap());
        let mut server = Server::start(&config, None);
        server.settle(10).await;
        assert_eq!(server.metrics().await["stepstone_events_rejected_total{reason=\"malformed\"}"], 1.0);

        // A line written in two parts is read once it is whole, and without waiting for more.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("opening the input");
        let more = line(10, "pricing");
        std::io::Write::write_all(&mut file, &more.as_bytes()[..7]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.metrics().await["stepstone_events_in_total"], 10.0, "half a line is not an event");
        std::io::Write::write_all(&mut file, &more.as_bytes()[7..]).unwrap();
        let time = server.settle(11).await;
        let answer = server.get_ok("/v1/customers/f1").await;
        assert_eq!(answer["time"], time);
        assert_eq!(answer["journeys"][0]["events"], 4, "{answer}");
        assert_eq!(answer["journeys"][0]["path"], json!(["home", "home", "home", "pricing"]), "{answer}");

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        let journeys = read_table(&server.out, "journeys");
        assert_eq!(journeys.num_rows(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_subscription_is_released_without_waiting_for_deltas() {
    bounded(async {
        let config = "[run]\nworkers = 1\n[server]\nmax-subscribers = 1\n";
        let mut server = Server::start(config, None);
        let (status, _, _) = server.post(r#"{"customer":"a","time":0,"contact_point":"home"}"#).await;
        assert_eq!(status, 200);
        let time = server.settle(1).await;
        for round in 0..3 {
            let mut subscriber = server.subscribe_ws("").await;
            subscriber.wait_progress(time).await;
            assert_eq!(server.metrics().await["stepstone_subscribers"], 1.0);
            drop(subscriber);
            let deadline = Instant::now() + WAIT;
            while server.metrics().await["stepstone_subscribers"] != 0.0 {
                assert!(Instant::now() < deadline, "round {round}: the closed subscription is still counted");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let status = server.terminate().await;
        assert!(status.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscribers_are_told_closing_at_shutdown() {
    bounded(async {
        // The race is narrow: several servers with many subscribers each.
        for round in 0..5 {
            let mut server = Server::start("[run]\nworkers = 1\n", None);
            let (status, _, _) = server.post(r#"{"customer":"a","time":0,"contact_point":"home"}"#).await;
            assert_eq!(status, 200);
            let time = server.settle(1).await;
            let mut subscribers = Vec::new();
            for i in 0..40 {
                let query = if i % 2 == 0 { String::new() } else { "?customer=a".to_owned() };
                let mut subscriber = server.subscribe_ws(&query).await;
                subscriber.wait_progress(time).await;
                subscribers.push(subscriber);
            }
            let status = server.terminate().await;
            assert!(status.success());
            let mut missed = Vec::new();
            for (i, subscriber) in subscribers.iter_mut().enumerate() {
                subscriber.wait_closed().await;
                let told = subscriber.messages.last() == Some(&json!({"type": "closing"}));
                let closed = subscriber.closed.as_deref().is_some_and(|why| why.starts_with("close frame"));
                if !(told && closed) {
                    missed.push((i, subscriber.messages.last().cloned(), subscriber.closed.clone()));
                }
            }
            assert!(missed.is_empty(), "round {round}: subscribers not told `closing` with a close frame: {missed:?}");
        }
    })
    .await;
}

/// What [`flood`] saw.
#[derive(Debug, Default)]
struct Flooded {
    /// Requests per status.
    statuses: BTreeMap<u16, usize>,
    /// Events accepted (in 200 answers).
    accepted: usize,
}

/// Posts batches of 100 new customers from `posters` concurrent tasks until `stop` turns true or
/// the server stops answering; counts the 429 answers in `busy` as they come.
async fn flood(
    client: reqwest::Client,
    base: String,
    posters: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    busy: Arc<std::sync::atomic::AtomicUsize>,
    tag: &'static str,
) -> Flooded {
    use std::sync::atomic::Ordering;
    let mut tasks = Vec::new();
    for poster in 0..posters {
        let (client, base, stop, busy) = (client.clone(), base.clone(), stop.clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let mut flooded = Flooded::default();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body: String = (0..100)
                    .map(|i| {
                        let customer = format!("{tag}-{poster}-{n}-{i}");
                        json!({"customer": customer, "time": at(i as f64), "contact_point": "p"}).to_string() + "\n"
                    })
                    .collect();
                n += 1;
                // An error: the server has stopped listening.
                let Ok(response) = client.post(format!("{base}/v1/events")).body(body).send().await else { break };
                let status = response.status().as_u16();
                let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                let Ok(text) = response.text().await else { break };
                let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} ({e}): {text}"));
                *flooded.statuses.entry(status).or_default() += 1;
                match status {
                    200 => flooded.accepted += answer["accepted"].as_u64().unwrap() as usize,
                    429 => {
                        assert_eq!(retry.as_deref(), Some("1"), "429 says when to retry: {answer}");
                        assert!(answer["error"].is_string(), "{answer}");
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                    503 => {
                        assert!(answer["error"].is_string(), "{answer}");
                        break;
                    }
                    _ => panic!("unexpected status {status}: {answer}"),
                }
            }
            flooded
        }));
    }
    let mut total = Flooded::default();
    for task in tasks {
        let flooded = task.await.expect("a poster");
        for (status, n) in flooded.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.accepted += flooded.accepted;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_shutdown_drains_what_was_accepted() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    bounded(async {
        let config = "[run]\nworkers = 2\n[server]\ningest-queue = 1\nepoch-interval = \"0s\"\n";
        let mut server = Server::start(config, None);

        // Many concurrent posters against a queue of one batch: some are told to retry, and
        // exactly the accepted events reach the engine.
        let (stop, busy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let flooding =
            tokio::spawn(flood(server.client.clone(), server.base.clone(), 24, stop.clone(), busy.clone(), "a"));
        let started = Instant::now();
        while !(busy.load(Ordering::Relaxed) > 0 && started.elapsed() > Duration::from_secs(1))
            && started.elapsed() < WAIT
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let first = flooding.await.unwrap();
        assert!(first.statuses.get(&429).is_some_and(|&n| n > 0), "a full queue answers 429: {first:?}");
        assert!(first.statuses.get(&200).is_some_and(|&n| n > 0), "{first:?}");
        assert_eq!(first.statuses.keys().copied().collect::<Vec<_>>(), [200, 429], "{first:?}");
        server.settle(first.accepted).await;

        // SIGTERM while posting: ingest stops, and what was accepted is in the final snapshot.
        let (stop, busy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let flooding = tokio::spawn(flood(server.client.clone(), server.base.clone(), 8, stop.clone(), busy, "b"));
        tokio::time::sleep(Duration::from_millis(700)).await;
        let status = server.terminate().await;
        let second = tokio::time::timeout(WAIT, flooding).await.expect("the posters stop").unwrap();
        assert!(status.success(), "exit status {status:?}");
        assert!(second.statuses.get(&200).is_some_and(|&n| n > 0), "{second:?}");
        assert!(second.statuses.keys().all(|s| [200, 429, 503].contains(s)), "{second:?}");
        let journeys = read_table(&server.out, "journeys");
        let events: i64 = common::ints(&journeys, "events").iter().sum();
        assert_eq!(
            (journeys.num_rows(), events as usize),
            (first.accepted + second.accepted, first.accepted + second.accepted),
            "every accepted event, and only those, is in the final snapshot ({second:?})"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sse_subscriber_does_not_hold_up_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let mut server = Server::start("[input]\nlate = \"accept\"\n[run]\nworkers = 1\n", None);
        // An SSE subscriber with a small receive buffer that reads its first event, then nothing.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(server.http).await.expect("connecting");
        stream.write_all(b"GET /v1/subscribe/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let mut head = Vec::new();
        while !String::from_utf8_lossy(&head).contains("\"type\":\"snapshot\"") {
            let mut buffer = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut buffer)).await.expect("the SSE answer").unwrap();
            assert!(n > 0, "the SSE answer: {}", String::from_utf8_lossy(&head));
            head.extend_from_slice(&buffer[..n]);
        }
        assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
        // Far more deltas than its buffers hold.
        let long = "x".repeat(300);
        let mut events = 0;
        for r in 0..40 {
            let body: String = (0..100)
                .map(|i| json!({"customer": format!("s-{r}-{i}-{long}"), "time": at(i as f64), "contact_point": long}))
                .map(|v| v.to_string() + "\n")
                .collect();
            let (status, _, _) = server.post(body).await;
            assert_eq!(status, 200);
            events += 100;
        }
        server.settle(events).await;
        // SIGTERM: the service stops within the bound although this subscriber never reads.
        let stopped = Instant::now();
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        assert!(server.log().contains("stopped at logical time"), "{}", server.log());
        eprintln!("stopped {:?} after SIGTERM with a stalled SSE subscriber", stopped.elapsed());
        let journeys = read_table(&server.out, "journeys");
        assert_eq!(journeys.num_rows(), events);
        drop(stream);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Erasure and consent, with identity stitching.

/// The identities of the person erased in the erasure test: a customer id, an alias of it and
/// two devices a login links to it.
const ALICE: [&str; 4] = ["alice", "alice-work", "d-a1", "d-a2"];

/// Who asks for the erasure (the `stepstone-actor` header).
const ACTOR: &str = "privacy desk (ticket 4711)";

/// One record of the erasure test.
struct Stitched {
    /// The record as posted.
    json: Value,
    /// Its event time, in ms.
    time: i64,
    /// The event it brings, its customer being the profile its identity is stitched into; `None`
    /// for a link only or a record without consent.
    event: Option<FullEvent>,
}

/// A record at `minutes` with `fields` (the time is added); its event, if it brings one, is
/// `profile`'s.
fn stitched(minutes: f64, fields: Value, profile: Option<&str>) -> Stitched {
    let mut json = fields;
    let time = at(minutes);
    json["time"] = json!(rfc3339(time));
    let event = profile.map(|profile| FullEvent {
        customer: profile.to_owned(),
        time,
        row: 0,
        contact_point: json["contact_point"].as_str().expect("an event has a contact point").to_owned(),
        channel: json["channel"].as_str().map(str::to_owned),
        converting: json["kind"] == "purchase",
        value: json["value"].as_f64().unwrap_or(0.0),
    });
    Stitched { json, time, event }
}

/// `records` as an NDJSON body.
fn ndjson(records: &[Stitched]) -> String {
    records.iter().map(|r| r.json.to_string() + "\n").collect()
}

/// The events `records` bring, numbered in arrival order.
fn stitched_events<'a>(records: impl IntoIterator<Item = &'a Stitched>) -> Vec<FullEvent> {
    let mut events: Vec<FullEvent> = records.into_iter().filter_map(|r| r.event.clone()).collect();
    for (row, event) in events.iter_mut().enumerate() {
        event.row = row;
    }
    events
}

/// The HTTP source's watermark after `records` (every accepted record takes the clock).
fn stitched_watermark<'a>(records: impl IntoIterator<Item = &'a Stitched>) -> i64 {
    let clock: Vec<FullEvent> = records
        .into_iter()
        .map(|r| FullEvent {
            customer: String::new(),
            time: r.time,
            row: 0,
            contact_point: String::new(),
            channel: None,
            converting: false,
            value: 0.0,
        })
        .collect();
    let (watermark, late) = http_clock(&clock);
    assert_eq!(late, 0, "the erasure test's records are in time order");
    watermark
}

/// The identity names a record mentions (customer, device and previous id).
fn named_identities(record: &Stitched) -> Vec<&str> {
    ["customer", "device_id", "prev"].into_iter().filter_map(|key| record.json[key].as_str()).collect()
}

/// `messages` without the identity lines (which [`replay`] does not know).
fn without_identity_lines(messages: &[Value]) -> Vec<Value> {
    messages.iter().filter(|m| m["type"] != "identity").cloned().collect()
}

/// The profile of every identity after the identity lines of `messages`, checked on the way: a
/// profile left is the one the identity had, and an identity joins one profile at a time.
fn identity_profiles(messages: &[Value], who: &str) -> BTreeMap<String, String> {
    let mut profiles = BTreeMap::new();
    for line in messages.iter().filter(|m| m["type"] == "identity") {
        let fields: BTreeSet<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["time", "type", "identity", "device", "profile", "anonymous", "diff"]),
            "{who}: {line}"
        );
        let identity = line["identity"].as_str().unwrap().to_owned();
        let profile = line["profile"].as_str().unwrap().to_owned();
        assert_eq!(line["device"], json!(identity.starts_with("d-") || identity.starts_with("v-")), "{who}: {line}");
        match line["diff"].as_i64() {
            Some(1) => assert!(profiles.insert(identity, profile).is_none(), "{who}: a second profile: {line}"),
            Some(-1) => assert_eq!(profiles.remove(&identity), Some(profile), "{who}: left a profile it had: {line}"),
            _ => panic!("{who}: diff ±1: {line}"),
        }
    }
    profiles
}

/// The delta lines (journey, segment, identity) of `messages` at logical time `time`, sorted.
fn lines_at(messages: &[Value], time: u64) -> Vec<Value> {
    let mut lines: Vec<Value> = messages
        .iter()
        .filter(|m| matches!(m["type"].as_str(), Some("journey" | "segment" | "identity")) && m["time"] == time)
        .cloned()
        .collect();
    lines.sort_by_key(|m| (m["type"].to_string(), m["segment"].to_string(), m["identity"].to_string()));
    lines
}

/// `DELETE /v1/customers/{id}` with the token, and the actor header if any: the status and
/// the JSON answer.
async fn delete_customer(server: &Server, id: &str, actor: Option<&str>) -> (u16, Value) {
    let mut request = server.authorized(server.client.delete(format!("{}/v1/customers/{}", server.base, encode(id))));
    if let Some(actor) = actor {
        request = request.header("stepstone-actor", actor);
    }
    let response = request.send().await.expect("DELETE /v1/customers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the answer");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("DELETE {id}: a JSON answer ({e}): {text:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_person_leaves_every_view_and_their_later_events_are_dropped() {
    bounded(async {
        let config = format!(
            "[input.map]\ndevice = \"device_id\"\nprevious_id = \"prev\"\n[journeys]\nsession-gap = \"30m\"\n\
             conversion = \"kind=purchase\"\n[output]\ndir = \"out\"\n[run]\nworkers = 2\n[server]\n\
             token = \"secret\"\n{SEGMENTS}"
        );
        let mut server = Server::start(&config, Some(TOKEN));
        let alice = Some("alice");
        let bob = Some("bob");
        // Two devices browse anonymously, a login on each links it to alice, and alice-work is
        // an alias of alice: one person of four identities. Bob logs in on his tablet; v-1 is
        // a device-only visitor. Three records lack analytics consent (nested, flat), one has it.
        let before = vec![
            stitched(0.0, json!({"device_id": "d-a1", "contact_point": "home", "channel": "web"}), alice),
            stitched(1.0, json!({"device_id": "d-a2", "contact_point": "pricing", "channel": "app"}), alice),
            stitched(2.0, json!({"device_id": "v-1", "contact_point": "home", "channel": "web"}), Some("v-1")),
            stitched(
                3.0,
                json!({"customer": "bob", "device_id": "d-b", "contact_point": "home", "channel": "web"}),
                bob,
            ),
            stitched(4.0, json!({"device_id": "d-b", "contact_point": "search", "channel": "app"}), bob),
            stitched(
                5.0,
                json!({"customer": "alice", "device_id": "d-a1", "contact_point": "login", "channel": "web"}),
                alice,
            ),
            stitched(
                6.0,
                json!({"customer": "alice", "device_id": "d-a2", "contact_point": "checkout", "channel": "app",
                       "kind": "purchase", "value": 30}),
                alice,
            ),
            stitched(7.0, json!({"customer": "alice-work", "prev": "alice", "kind": "alias"}), None),
            stitched(8.0, json!({"customer": "alice-work", "contact_point": "help", "channel": "email"}), alice),
            stitched(
                9.0,
                json!({"customer": "bob", "contact_point": "pricing", "channel": "email", "kind": "purchase",
                       "value": 12.5}),
                bob,
            ),
            stitched(
                10.0,
                json!({"customer": "carol", "device_id": "d-c", "contact_point": "home",
                       "consent": {"analytics": false}}),
                None,
            ),
            stitched(
                11.0,
                json!({"customer": "bob", "contact_point": "secret", "channel": "web",
                       "consent": {"analytics": false}}),
                None,
            ),
            stitched(12.0, json!({"customer": "dave", "contact_point": "home", "consent.analytics": false}), None),
            stitched(13.0, json!({"customer": "bob", "contact_point": "cart", "consent": {"analytics": true}}), bob),
        ];
        // After the erasure: events of alice's identities (suppressed, their links dropped too),
        // and bob's, the last one a purchase long after everyone else's last event, so every
        // session is over or converted at the final watermark.
        let after = vec![
            stitched(20.0, json!({"device_id": "d-a1", "contact_point": "home", "channel": "web"}), alice),
            stitched(21.0, json!({"customer": "alice", "contact_point": "pricing"}), alice),
            stitched(22.0, json!({"customer": "alice", "device_id": "d-a2", "contact_point": "login"}), alice),
            stitched(24.0, json!({"customer": "alice-work", "device_id": "d-new", "contact_point": "help"}), alice),
            stitched(25.0, json!({"customer": "bob", "contact_point": "help", "channel": "web"}), bob),
            stitched(
                60.0,
                json!({"customer": "bob", "device_id": "d-b", "contact_point": "checkout", "channel": "app",
                       "kind": "purchase", "value": 5}),
                bob,
            ),
        ];
        let forbidden: BTreeSet<&str> = ALICE.into_iter().chain(["d-new"]).collect();
        let everyone = || before.iter().chain(&after);
        let kept = |records: Vec<&Stitched>| -> Vec<FullEvent> {
            stitched_events(records).into_iter().filter(|e| e.customer != "alice").collect()
        };
        let events_before = stitched_events(&before);
        let events_in = stitched_events(everyone()).len();
        let suppressed = stitched_events(&after).iter().filter(|e| e.customer == "alice").count();
        assert_eq!((events_before.len(), events_in, suppressed), (10, 16, 4));

        // The oracle: before the erasure, right after it, and at the end (without alice's events).
        let expected_before = Expected::of(&events_before);
        let expected_erased = Expected::of(&kept(before.iter().collect()));
        let expected_after = Expected::of(&kept(everyone().collect()));
        assert_eq!(expected_before.watermark, stitched_watermark(&before));
        assert_eq!(expected_erased.watermark, stitched_watermark(&before));
        assert_eq!(expected_after.watermark, stitched_watermark(everyone()));
        let alice_journey = &expected_before.journeys["alice"];
        assert_eq!((alice_journey.events, alice_journey.conversions), (5, 1));
        let alice_segments = expected_before.memberships_of("alice");
        assert_eq!(alice_segments.len(), 3, "alice is in every segment before the erasure");
        assert!(!expected_erased.journeys.contains_key("alice"));
        assert_eq!(expected_after.journeys.keys().collect::<Vec<_>>(), ["bob", "v-1"]);
        let oracle_after: Vec<_> =
            stitched_events(everyone()).iter().filter(|e| e.customer != "alice").map(FullEvent::to_oracle).collect();
        assert_eq!(
            common::oracle(&oracle_after, Some(GAP_MS), PATH_LEN).0,
            expected_after.edges,
            "every session is over at the final watermark, as at the end of a run's input"
        );
        // The journey lines of a replay: the device-only visitor's say it is anonymous.
        let lines_of = |expected: &Expected| {
            let mut lines = expected.lines();
            lines.get_mut("v-1").expect("the visitor's journey")["anonymous"] = json!(true);
            lines
        };

        // Every /v1 route needs the token, DELETE too; an id no view knows is not found.
        use reqwest::Method;
        for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
            let status = server.status_with(Method::DELETE, "/v1/customers/d-a2", auth).await;
            assert_eq!(status, 401, "DELETE with {auth:?}");
        }
        let (status, answer) = delete_customer(&server, "nobody", Some(ACTOR)).await;
        assert_eq!(status, 404, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");

        let mut everything = server.subscribe_ws("").await;
        everything.wait_until("the snapshot message", |m, _| !m.is_empty()).await;
        let (status, _, answer) = server.post(ndjson(&before)).await;
        assert_eq!(
            (status, &answer),
            (200, &json!({"accepted": before.len(), "without_consent": 3, "rejected": []})),
            "records without consent are accepted and counted"
        );
        let time = server.settle(events_before.len()).await;
        everything.wait_progress(time).await;

        // Before the erasure: alice's identities are one profile, which every view holds.
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.journeys, lines_of(&expected_before), "the journeys before the erasure");
        assert_eq!(replayed.memberships, expected_before.memberships);
        let profiles = identity_profiles(&everything.messages, "ws");
        let profiles_of = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(identity, profile)| (identity.to_string(), profile.to_string())).collect()
        };
        let bob_profiles = profiles_of(&[("bob", "bob"), ("d-b", "bob")]);
        let mut stitched_profiles = profiles_of(&ALICE.map(|identity| (identity, "alice")));
        stitched_profiles.extend(bob_profiles.clone());
        assert_eq!(profiles, stitched_profiles, "the identity lines before the erasure");
        for id in ALICE {
            let answer = server.get_ok(&format!("/v1/customers/{id}")).await;
            assert_eq!(answer["journeys"][0]["events"], 5, "{id}: {answer}");
            if id != "alice" {
                assert_eq!((&answer["profile"], &answer["anonymous"]), (&json!("alice"), &json!(false)), "{answer}");
            }
        }
        // Records without consent count in no view: no journey, no lookup, nothing to erase.
        for id in ["carol", "d-c", "dave"] {
            assert_eq!(server.get(&format!("/v1/customers/{id}")).await.0, 404, "{id}");
        }
        let (status, answer) = delete_customer(&server, "carol", Some(ACTOR)).await;
        assert_eq!(status, 404, "carol has no view to be erased from: {answer}");
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_without_consent_total"], 3.0);
        assert_eq!(metrics["stepstone_erasures_total"], 0.0);

        // A subscriber of alice, whose snapshot holds her row.
        let mut alice_only = server.subscribe_ws("?customer=alice").await;
        alice_only.wait_progress(time).await;
        assert!(replay(&alice_only.messages, "alice").journeys.contains_key("alice"));

        // Erasing one of her devices erases the whole person.
        let (status, answer) = delete_customer(&server, "d-a2", Some(ACTOR)).await;
        assert_eq!(status, 200, "{answer}");
        let erased_at = answer["time"].as_u64().unwrap_or_else(|| panic!("a logical time: {answer}"));
        assert!(erased_at > time, "the erasure has a logical time of its own: {answer} after {time}");
        assert_eq!(answer, json!({"erased": "d-a2", "time": erased_at, "identities": 4, "events": 5, "links": 3}));
        // It is applied when answered.
        for id in ALICE {
            let (status, answer) = server.get(&format!("/v1/customers/{id}")).await;
            assert_eq!(status, 404, "{id} right after the erasure: {answer}");
        }
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_erasures_total"], 1.0);
        assert_eq!(metrics["stepstone_events_erased_total"], 5.0);

        // At the erasure's time, subscribers see her row, memberships and identities leave.
        everything.wait_progress(erased_at).await;
        alice_only.wait_progress(erased_at).await;
        let mut gone = vec![];
        let mut row = expected_before.line("alice");
        row["time"] = json!(erased_at);
        row["diff"] = json!(-1);
        gone.push(row);
        for (segment, _) in &alice_segments {
            gone.push(json!({"time": erased_at, "type": "segment", "segment": segment, "customer": "alice",
                             "journey_key": null, "diff": -1}));
        }
        for id in ALICE {
            gone.push(json!({"time": erased_at, "type": "identity", "identity": id, "device": id.starts_with("d-"),
                             "profile": "alice", "anonymous": false, "diff": -1}));
        }
        gone.sort_by_key(|m| (m["type"].to_string(), m["segment"].to_string(), m["identity"].to_string()));
        assert_eq!(lines_at(&everything.messages, erased_at), gone, "ws: the lines of the erasure's time");
        assert_eq!(lines_at(&alice_only.messages, erased_at), gone, "alice: the lines of the erasure's time");
        let time = server.settle(events_before.len()).await;
        everything.wait_progress(time).await;
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.journeys, lines_of(&expected_erased), "the journeys after the erasure");
        assert_eq!(replayed.memberships, expected_erased.memberships);
        assert_eq!(identity_profiles(&everything.messages, "ws"), bob_profiles);
        let segments = server.get_ok("/v1/segments").await;
        assert_eq!(segments, json!({"time": time, "segments": expected_erased.segment_rows()}));
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected_erased.transition_rows(None)}),
            "the transitions after the erasure: a recomputation without her events"
        );
        // Nothing is left to erase.
        for id in ["d-a2", "alice", "alice-work"] {
            let (status, answer) = delete_customer(&server, id, Some(ACTOR)).await;
            assert_eq!(status, 404, "a second erasure of {id}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }

        // Later events of her identities are dropped (and their links); bob's count.
        let (status, _, answer) = server.post(ndjson(&after)).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": after.len(), "rejected": []})));
        let time = server.settle(events_in).await;
        everything.wait_progress(time).await;
        alice_only.wait_progress(time).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_suppressed_total"], suppressed as f64);
        assert_eq!(metrics["stepstone_erasures_total"], 1.0);
        assert_eq!(metrics["stepstone_events_erased_total"], 5.0);
        assert_eq!(metrics["stepstone_events_without_consent_total"], 3.0);
        for subscriber in [&everything, &alice_only] {
            for line in subscriber.messages.iter().filter(|m| m["time"].as_u64().is_some_and(|t| t > erased_at)) {
                if line["type"] == "progress" {
                    continue;
                }
                for field in ["customer", "identity", "profile"] {
                    let name = line[field].as_str().unwrap_or_default();
                    let who = &subscriber.name;
                    assert!(!forbidden.contains(name), "{who}: a line after the erasure names {name}: {line}");
                }
            }
        }
        let until_erased = |m: &Value| m["time"].as_u64().is_some_and(|t| t <= erased_at);
        assert!(
            alice_only.messages.iter().all(|m| m["type"] == "progress" || until_erased(m)),
            "alice's subscriber gets nothing but progress after the erasure: {:?}",
            alice_only.messages
        );
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.progress.last(), Some(&time));
        assert_eq!(replayed.journeys, lines_of(&expected_after), "the journeys at the end");
        assert_eq!(replayed.memberships, expected_after.memberships);
        assert_eq!(identity_profiles(&everything.messages, "ws"), bob_profiles, "no link of hers came back");
        let replayed = replay(&without_identity_lines(&alice_only.messages), "alice");
        assert!(replayed.journeys.is_empty() && replayed.memberships.is_empty(), "{replayed:?}");
        for id in &forbidden {
            let (status, answer) = server.get(&format!("/v1/customers/{id}")).await;
            assert_eq!(status, 404, "{id} after her later events: {answer}");
        }
        for id in ["bob", "d-b"] {
            let answer = server.get_ok(&format!("/v1/customers/{id}")).await;
            let mut row = expected_after.line("bob");
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected_after.journeys["bob"]));
            let mut want = json!({"time": time, "customer": id, "journeys": [row]});
            if id == "d-b" {
                want["profile"] = json!("bob");
                want["anonymous"] = json!(false);
            }
            assert_eq!(answer, want, "{id}");
        }
        let segments = server.get_ok("/v1/segments").await;
        assert_eq!(segments, json!({"time": time, "segments": expected_after.segment_rows()}));
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected_after.transition_rows(None)})
        );

        // The final snapshot: a recomputation without her events.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        check_snapshot_files(&server.out, &expected_after, time);

        // The erasure log: one line, who asked and how much, and none of her ids.
        let log = std::fs::read_to_string(server.out.join("erasures.jsonl")).expect("erasures.jsonl");
        assert_eq!(log.lines().count(), 1, "one line per erasure, none for the ids not found: {log}");
        let entry: Value = serde_json::from_str(log.lines().next().unwrap()).expect("a JSON line");
        let fields: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(["at", "by", "logical_time", "identities", "events", "links"]), "{entry}");
        assert_eq!(
            (&entry["by"], &entry["logical_time"], &entry["identities"], &entry["events"], &entry["links"]),
            (&json!(ACTOR), &json!(erased_at), &json!(4), &json!(5), &json!(3)),
            "{entry}"
        );
        let logged_at = DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).expect("an RFC 3339 time");
        assert!((chrono::Utc::now() - logged_at.to_utc()).num_seconds().abs() < 300, "{entry}");
        for id in &forbidden {
            assert!(!log.contains(id), "the erasure log names {id}: {log}");
        }

        // The same as a batch run of the records without any of hers (consent flags included).
        let dir = tempfile::tempdir().expect("a temporary directory");
        let records: Vec<&Stitched> =
            everyone().filter(|r| named_identities(r).iter().all(|id| !forbidden.contains(id))).collect();
        assert_eq!(records.len(), before.len() + after.len() - 10);
        let input = dir.path().join("events.jsonl");
        std::fs::write(&input, records.iter().map(|r| r.json.to_string() + "\n").collect::<String>()).unwrap();
        let config_path = dir.path().join("stepstone.toml");
        std::fs::write(&config_path, &config).unwrap();
        let out = dir.path().join("run");
        common::stepstone_ok(&[
            "run",
            "-q",
            "--config",
            config_path.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary.json")).unwrap();
        assert_eq!((&summary["events"], &summary["without_consent"]), (&json!(7), &json!(3)), "{summary}");
        let columns = |batch: &arrow::array::RecordBatch| -> BTreeMap<String, Value> {
            let customers = common::strings(batch, "customer");
            let anonymous = common::bools(batch, "anonymous");
            let value = common::floats(batch, "value");
            let channels = common::string_lists(batch, "channels");
            let session_events = common::ints(batch, "session_events");
            let last_conversion = common::times(batch, "last_conversion_time");
            (0..batch.num_rows())
                .map(|i| {
                    let row = json!([anonymous[i], value[i], channels[i], session_events[i], last_conversion[i]]);
                    (customers[i].clone(), row)
                })
                .collect()
        };
        let (served, ran) = (read_table(&server.out, "journeys"), read_table(&out, "journeys"));
        assert_eq!(common::journeys(&served), common::journeys(&ran), "journeys: serve and run");
        assert_eq!(columns(&served), columns(&ran), "journeys: serve and run");
        assert_eq!(columns(&served)["v-1"][0], json!(true), "the visitor is anonymous");
        assert_eq!(
            common::edges(&read_table(&server.out, "transitions")),
            common::edges(&read_table(&out, "transitions")),
            "transitions: serve and run"
        );
        let segments = |dir: &Path| {
            let batch = read_table(dir, "segments");
            common::strings(&batch, "segment").into_iter().zip(common::ints(&batch, "members")).collect::<Vec<_>>()
        };
        assert_eq!(segments(&server.out), segments(&out), "segments: serve and run");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_history_is_folded_and_an_erasure_still_takes_all_of_it_back() {
    bounded(async {
        // HTTP ingest only and late events rejected (the default): the journeys fold their events
        // behind the ingest watermark (ten minutes behind the latest event) as time goes on.
        let config = format!(
            "[journeys]\nsession-gap = \"30m\"\nconversion = \"kind=purchase\"\n[output]\ndir = \"out\"\n\
             [run]\nworkers = 2\n[server]\ntoken = \"secret\"\n{SEGMENTS}"
        );
        let mut server = Server::start(&config, Some(TOKEN));
        let customers = ["ana", "ben", "cy"];
        let points = ["home", "pricing", "help", "checkout", "home", "search"];
        let record = |i: usize, minutes: f64| {
            let customer = customers[i % 3];
            let channel = ["web", "email", "app"][(i + i / 7) % 3];
            let mut fields =
                json!({"customer": customer, "contact_point": points[i % points.len()], "channel": channel});
            if i % 11 == 4 {
                fields["kind"] = json!("purchase");
                fields["value"] = json!(i as f64 / 2.0);
            }
            stitched(minutes, fields, Some(customer))
        };
        // Three hours of events, a session break (40 minutes without any) in the middle.
        let records: Vec<Stitched> =
            (0..60).map(|i| record(i, if i < 30 { i as f64 * 2.0 } else { 100.0 + i as f64 * 2.5 })).collect();
        let mut posted = 0;
        for request in records.chunks(4) {
            let (status, _, answer) = server.post(ndjson(request)).await;
            assert_eq!((status, &answer["accepted"]), (200, &json!(request.len())), "{answer}");
            posted += request.len();
            server.settle(posted).await;
        }
        let events = stitched_events(&records);
        let expected = Expected::of(&events);
        let time = server.settle(posted).await;
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected.transition_rows(None)}),
            "the transitions with most of every journey folded"
        );
        for customer in customers {
            let answer = server.get_ok(&format!("/v1/customers/{customer}")).await;
            let mut row = expected.line(customer);
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected.journeys[customer]));
            assert_eq!(answer, json!({"time": time, "customer": customer, "journeys": [row]}), "{customer}");
        }

        // Erasing ana takes back every edge of hers, the folded ones too.
        let (status, answer) = delete_customer(&server, "ana", Some(ACTOR)).await;
        assert_eq!((status, &answer["events"]), (200, &json!(20)), "{answer}");
        let without_ana = |events: Vec<FullEvent>| -> Vec<FullEvent> {
            let mut kept: Vec<FullEvent> = events.into_iter().filter(|e| e.customer != "ana").collect();
            for (row, event) in kept.iter_mut().enumerate() {
                event.row = row;
            }
            kept
        };
        let erased = Expected::of(&without_ana(events));
        let time = server.settle(posted).await;
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": erased.transition_rows(None)}),
            "the transitions after the erasure: a recomputation without her events"
        );
        assert_eq!(server.get_ok("/v1/segments").await, json!({"time": time, "segments": erased.segment_rows()}));

        // Later events, and a purchase a day later that ends every session; the final snapshot
        // is a recomputation over everything but ana's events.
        let mut later: Vec<Stitched> = (60..72).map(|i| record(i, 260.0 + i as f64)).collect();
        later.push(stitched(
            24.0 * 60.0,
            json!({"customer": "cy", "contact_point": "checkout", "kind": "purchase", "value": 3}),
            Some("cy"),
        ));
        let (status, _, answer) = server.post(ndjson(&later)).await;
        assert_eq!((status, &answer["accepted"]), (200, &json!(later.len())), "{answer}");
        let everything = without_ana(stitched_events(records.iter().chain(&later)));
        let time = server.settle(posted + later.len()).await;
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        check_snapshot_files(&server.out, &Expected::of(&everything), time);
    })
    .await;
}
