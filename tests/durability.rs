//! Durability of `stepstone serve`'s event log (`src/journal`), end to end over loopback.
//!
//! * [`crash_at_random_points_loses_no_acknowledged_event`]: a seeded random workload (several
//!   customers, equal event times within a customer, several contact points and channels,
//!   conversions, values, a few malformed records, JSON arrays and NDJSON) is posted by one
//!   sequential client, each request with an idempotency key and retried with the same key until
//!   it is answered, across crashes. The server runs on the same output and log directory for
//!   more than twenty lives, with small segments and checkpoints (so kills land during rotations
//!   and compactions) and the `batch` and `20ms` fsync policies mixed; each life is ended by
//!   SIGKILL at a seeded random delay while posting goes on, and a WebSocket subscriber listens
//!   in each. One customer is erased (`DELETE /v1/customers/{id}`) mid-run. Checked:
//!   - at each start, the recovered journeys (the subscriber's snapshot) are exactly those of the
//!     acknowledged operations, plus possibly the one whose answer the kill cut off, whole or not
//!     at all, and never less than what a subscriber had been shown before the kill;
//!   - a retried request is answered `duplicate: true` exactly when that request had been
//!     logged before its answer was lost, and otherwise as a first answer (the accepted count and
//!     each rejection); a retried erasure answers 404 exactly when it had been applied; a request
//!     acknowledged in an earlier life (its key most likely in a checkpoint by then), sent again,
//!     is a duplicate and changes nothing;
//!   - every subscriber's stream keeps the protocol, shows a prefix of the acknowledged history,
//!     and has delta lines in every life that lasted long enough after its first acknowledgement;
//!   - a last life posts the rest and stops with SIGTERM; its final Arrow snapshot (every table,
//!     without the schema metadata) equals that of `stepstone run` over a JSON Lines file of every
//!     posted record in posting order without the erased customer's.
//! * [`a_full_disk_refuses_ingest_with_503_and_recovers_when_space_returns`]: the output
//!   directory, with the log in it, is a small tmpfs, filled up by a filler file: ingest answers
//!   503 naming "No space left on device" (with Retry-After), applies nothing of the request and
//!   counts it in `stepstone_log_failures_total`; a dead letter the full disk cannot take is
//!   counted (`stepstone_dead_letter_failures_total`) and written once space returns, and
//!   ingest goes on; once the filler is gone the refused requests are taken when retried, as new
//!   ones (their own events do not make them late). Both fsync policies; after SIGTERM, and
//!   again after a restart, the final snapshot equals `stepstone run` over exactly the
//!   acknowledged records. It needs `mount` (root): without it, it says so and passes.
//! * [`a_segment_that_cannot_be_begun_refuses_nothing_that_stays_in_the_log`]: a full disk
//!   after a durable append (the next segment cannot be begun) refuses nothing that stays in
//!   the log.
//!
//! Every wait is bounded ([`WAIT`], [`common::server::TEST_LIMIT`]), everything listens on
//! loopback, and every server is killed when dropped.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::{DateTime, SecondsFormat};
use common::server::{Server, Subscriber, WAIT, bounded, journey_line, replay, rfc3339};
use common::{FullEvent, full_journeys, read_table};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The session gap of the configs, in ms.
const GAP_MS: i64 = 30 * 60_000;
/// The path length (the default).
const PATH_LEN: usize = 5;
/// The customers of the workload are `c0` … `c7`.
const CUSTOMERS: usize = 8;
/// The customer the crash test erases.
const ERASED: &str = "c3";
/// The customer of the last request: one purchase a day after everything else, so that the
/// final watermark has ended every other session (as the end of a run's input does) and the
/// purchase itself leaves no open session.
const CLOSER: &str = "closer";
/// Lives of the crash test ended by SIGKILL (a last one ends with SIGTERM).
const CRASHES: usize = 22;
/// The life from which the crash test's client erases [`ERASED`].
const ERASE_LIFE: usize = 6;
/// Requests the last life posts after the ones the crashed lives took.
const LAST_REQUESTS: usize = 30;
/// How long after its first acknowledgement a life must last for its subscriber to be required
/// to have seen delta lines.
const DELTA_GRACE: Duration = Duration::from_millis(200);

/// The pipeline of both tests, without `[log]`.
const PIPELINE: &str = r#"
[journeys]
session-gap = "30m"
conversion = "kind=purchase"
[output]
dir = "out"
[run]
workers = 2
"#;

/// The segments of both tests (after `[log]`: arrays of tables end the sections before them).
const SEGMENTS: &str = r#"
[[segments]]
name = "buyers"
rule = "converted"
[[segments]]
name = "engaged"
rule = "events >= 3"
[[segments]]
name = "emailed"
rule = 'channels contains "email"'
"#;

/// The crash test's config: [`PIPELINE`] with a log of 4 KiB segments compacted every 16 KiB,
/// forced to disk by `fsync`.
fn crash_config(fsync: &str) -> String {
    format!("{PIPELINE}[log]\nfsync = \"{fsync}\"\nsegment-bytes = 4096\ncheckpoint-bytes = 16384\n{SEGMENTS}")
}

// ---------------------------------------------------------------------------------------------
// The workload.

/// One record of a request: a good event, or a bad record with the rejection it must get.
#[derive(Clone, Debug)]
enum Record {
    /// A record the service accepts: the event it is, and its JSON.
    Good { event: FullEvent, json: String },
    /// A record the service rejects: its text, whose customer it names (if any), and the
    /// rejection's field and kind.
    Bad { json: String, customer: Option<String>, field: Option<&'static str>, kind: &'static str },
}

impl Record {
    /// The record's text.
    fn json(&self) -> &str {
        match self {
            Record::Good { json, .. } | Record::Bad { json, .. } => json,
        }
    }

    /// The customer the record names, if any.
    fn customer(&self) -> Option<&str> {
        match self {
            Record::Good { event, .. } => Some(&event.customer),
            Record::Bad { customer, .. } => customer.as_deref(),
        }
    }
}

/// How a request body is written.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// A JSON array of the records.
    Array,
    /// NDJSON, with CRLF line ends and blank lines mixed in.
    Ndjson,
}

/// A rejection a request's answer must report: `(index, field, kind)`.
type Rejection = (usize, Option<&'static str>, &'static str);

/// One ingest request of a workload.
#[derive(Clone, Debug)]
struct Request {
    /// Its idempotency key.
    key: String,
    body: Body,
    records: Vec<Record>,
}

impl Request {
    /// The request body.
    fn text(&self) -> String {
        let texts: Vec<&str> = self.records.iter().map(Record::json).collect();
        match self.body {
            Body::Array => format!("[{}]", texts.join(",\n")),
            Body::Ndjson => texts.iter().enumerate().map(|(i, t)| format!("{t}{}", ["\n", "\r\n\n"][i % 2])).collect(),
        }
    }

    /// The events of its good records.
    fn events(&self) -> impl Iterator<Item = &FullEvent> {
        self.records.iter().filter_map(|record| match record {
            Record::Good { event, .. } => Some(event),
            Record::Bad { .. } => None,
        })
    }

    /// The answer it must get: the records accepted and the rejections.
    fn expected(&self) -> (usize, Vec<Rejection>) {
        let rejected: Vec<Rejection> = (self.records.iter().enumerate())
            .filter_map(|(index, record)| match record {
                Record::Bad { field, kind, .. } => Some((index, *field, *kind)),
                Record::Good { .. } => None,
            })
            .collect();
        (self.records.len() - rejected.len(), rejected)
    }

    /// Checks that `answer` is this request's first answer (`what` names it in messages).
    fn check_answer(&self, answer: &Value, what: &str) {
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
fn base_time() -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// A seeded generator of requests: event times move forward by up to 20 s a record (now and
/// then by 45 minutes, which ends sessions; both can be set), and a record repeats its
/// customer's previous time now and then (a tie that arrival order breaks, also across requests
/// and restarts). No event is ever late: none is more than a few minutes older than the latest.
struct Workload {
    rng: StdRng,
    /// The latest event time.
    clock: i64,
    /// Each customer's latest event time.
    last: Vec<Option<i64>>,
    /// Good records generated (their arrival positions).
    rows: usize,
    /// The requests generated, in order.
    requests: Vec<Request>,
    /// The share of bad records.
    bad_share: f64,
    /// The clock moves by less than this many ms a record.
    step_ms: i64,
    /// The share of records before which the clock jumps by 45 minutes.
    jump_share: f64,
}

impl Workload {
    /// A generator seeded with `seed`.
    fn new(seed: u64) -> Workload {
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
    fn generate(&mut self, records: std::ops::RangeInclusive<usize>) -> usize {
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
    fn closer(&mut self) -> usize {
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
    fn good(&mut self) -> Record {
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
    fn bad(&mut self, body: Body) -> Record {
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
enum Op {
    /// `POST /v1/events` of the request with this index.
    Post(usize),
    /// `DELETE /v1/customers/{ERASED}`.
    Erase,
}

/// The events in the views after `ops` were applied in order: an erasure removes the erased
/// customer's events, and drops those that come later.
fn events_after(ops: &[Op], requests: &[Request]) -> Vec<FullEvent> {
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
fn lines_after(ops: &[Op], requests: &[Request]) -> BTreeMap<String, Value> {
    let events = events_after(ops, requests);
    full_journeys(&events, Some(GAP_MS), PATH_LEN).iter().map(|(c, j)| (c.clone(), journey_line(c, j))).collect()
}

/// Where two sets of journey lines first differ, for assertion messages.
fn first_difference(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) -> String {
    for customer in got.keys().chain(want.keys()) {
        if got.get(customer) != want.get(customer) {
            return format!("{customer}: got {:?}, expected {:?}", got.get(customer), want.get(customer));
        }
    }
    "no difference".to_owned()
}

// ---------------------------------------------------------------------------------------------
// The crash test's client.

/// How one attempt at an operation ended.
#[derive(Clone, Debug)]
enum Outcome {
    /// The server answered: the status and the JSON answer.
    Answered(u16, Value),
    /// No connection could be made: the request reached no server.
    NotSent,
    /// The request went out (or may have), but the answer was lost: why.
    Lost(String),
}

/// One attempt at an operation.
#[derive(Clone, Debug)]
struct Attempt {
    /// The life it was made in.
    life: usize,
    /// When it ended.
    at: Instant,
    outcome: Outcome,
}

/// The sequential client of the crash test: it takes on one operation at a time and tries it
/// until it is answered, across lives of the server. Its state moves into the task that posts
/// during a life and comes back when the task ends.
struct Client {
    workload: Workload,
    /// The operations in the order taken on; all but possibly the last are acknowledged.
    ops: Vec<Op>,
    /// How many of `ops` are acknowledged.
    acked: usize,
    /// The attempts at each of `ops`.
    attempts: Vec<Vec<Attempt>>,
    /// How many requests the last life posts in all (none before it).
    total: Option<usize>,
    /// Requests taken on so far.
    posts: usize,
    /// Whether the erasure was taken on.
    erasing: bool,
    /// Whether the closing request was generated.
    closed: bool,
}

impl Client {
    /// A client of a workload seeded with `seed`.
    fn new(seed: u64) -> Client {
        Client {
            workload: Workload::new(seed),
            ops: Vec::new(),
            acked: 0,
            attempts: Vec::new(),
            total: None,
            posts: 0,
            erasing: false,
            closed: false,
        }
    }

    /// The requests generated so far.
    fn requests(&self) -> &[Request] {
        &self.workload.requests
    }

    /// The operation to try next in life `life`, having had `answered` answers in it; `None`
    /// when the last life has nothing left.
    fn next_op(&mut self, life: usize, answered: usize) -> Option<usize> {
        if self.acked < self.ops.len() {
            return Some(self.acked);
        }
        let erase_due = !self.erasing
            && (self.total.is_some()
                || (life >= ERASE_LIFE
                    && answered >= 2
                    && events_after(&self.ops, self.requests()).iter().any(|e| e.customer == ERASED)));
        let op = if erase_due {
            self.erasing = true;
            Op::Erase
        } else {
            let next = self.posts;
            self.posts += 1;
            match self.total {
                Some(total) if next >= total && self.closed => {
                    self.posts -= 1;
                    return None;
                }
                Some(total) if next >= total => {
                    self.closed = true;
                    Op::Post(self.workload.closer())
                }
                _ => {
                    if next == self.workload.requests.len() {
                        self.workload.generate(1..=6);
                    }
                    Op::Post(next)
                }
            }
        };
        self.ops.push(op);
        self.attempts.push(Vec::new());
        Some(self.ops.len() - 1)
    }

    /// Tries operations in life `life` against the server at `base` until one attempt gets no
    /// answer (the server was killed) or, in the last life, nothing is left.
    async fn run(mut self, http: reqwest::Client, base: String, life: usize) -> Client {
        let mut answered = 0;
        while let Some(index) = self.next_op(life, answered) {
            let op = self.ops[index];
            let outcome = self.attempt(&http, &base, op).await;
            self.attempts[index].push(Attempt { life, at: Instant::now(), outcome: outcome.clone() });
            match outcome {
                Outcome::Answered(200, _) | Outcome::Answered(404, _) if op == Op::Erase => {}
                Outcome::Answered(200, _) => {}
                Outcome::Answered(429 | 503, _) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Outcome::Answered(status, answer) => panic!("{op:?} in life {life}: {status} {answer}"),
                Outcome::NotSent | Outcome::Lost(_) => return self,
            }
            self.acked += 1;
            answered += 1;
        }
        self
    }

    /// One attempt at `op`.
    async fn attempt(&self, http: &reqwest::Client, base: &str, op: Op) -> Outcome {
        let request = match op {
            Op::Post(i) => {
                let request = &self.requests()[i];
                http.post(format!("{base}/v1/events")).header("idempotency-key", &request.key).body(request.text())
            }
            Op::Erase => {
                http.delete(format!("{base}/v1/customers/{ERASED}")).header("stepstone-actor", "durability test")
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return Outcome::NotSent,
            Err(error) => return Outcome::Lost(format!("{error:?}")),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(text) => Outcome::Answered(
                status,
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op:?}: a JSON answer ({e}): {text:?}")),
            ),
            Err(error) => Outcome::Lost(format!("{error:?}")),
        }
    }
}

/// Whether the operation a kill left unanswered was applied, as the next start shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applied {
    Yes,
    No,
    /// It changes no view (only events of the erased customer), so the views cannot tell.
    Unknown,
}

/// Waits (bounded) for a new subscription's snapshot (its rows and their progress message)
/// and returns its replay.
async fn snapshot_of(subscriber: &mut Subscriber) -> common::server::Replay {
    subscriber
        .wait_until("the snapshot", |messages, _| {
            let Some(header) = messages.first() else { return false };
            let rows = header["rows"].as_u64().unwrap_or(0) as usize;
            messages.len() > rows + usize::from(!header["time"].is_null())
        })
        .await;
    replay(&subscriber.messages, &subscriber.name)
}

/// The names of the files in the log directory of the crash test's directory `dir`.
fn log_files(dir: &Path) -> Vec<String> {
    let log = dir.join("out/log");
    let entries = std::fs::read_dir(&log).unwrap_or_else(|e| panic!("listing {}: {e}", log.display()));
    entries.map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect()
}

/// The number in the stderr line `log: recovered N events …` of a start, if there is one.
fn recovered_events(log: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.starts_with("log: recovered "))?;
    line["log: recovered ".len()..].split(' ').next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Comparing with `stepstone run`.

/// Runs `stepstone run` with `config` over `lines` (a JSON Lines file, in this order) in
/// `dir/name` and returns its output directory.
fn batch_run(dir: &Path, name: &str, config: &str, lines: &[&str]) -> PathBuf {
    let input = dir.join(format!("{name}.jsonl"));
    std::fs::write(&input, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    let out = dir.join(name);
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
    out
}

/// The Arrow tables of a snapshot directory by name, each printed as text without its schema
/// metadata (which holds the logical time and the watermark).
fn tables(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())) {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(table) = name.strip_suffix(".arrow") else { continue };
        let batch = read_table(dir, table);
        let fields: Vec<String> = batch.schema().fields().iter().map(|f| format!("{f:?}")).collect();
        // Printed without the time zone (`UTC`), which printing does not support.
        let columns: Vec<(String, arrow::array::ArrayRef)> = (batch.schema().fields().iter().zip(batch.columns()))
            .map(|(field, column)| {
                let column = match field.data_type() {
                    DataType::Timestamp(unit, Some(_)) => cast(column, &DataType::Timestamp(*unit, None)).unwrap(),
                    _ => column.clone(),
                };
                (field.name().clone(), column)
            })
            .collect();
        let printable = arrow::array::RecordBatch::try_from_iter(columns).unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&[printable]).unwrap().to_string();
        let mut lines = vec![fields.join(", ")];
        lines.extend(text.lines().map(str::to_owned));
        tables.insert(table.to_owned(), lines);
    }
    tables
}

/// Asserts that the snapshot in `served` equals the one in `ran`, table by table (`what`
/// names the comparison); returns the tables' names and their rows.
fn assert_same_snapshot(served: &Path, ran: &Path, what: &str) -> String {
    let (served, ran) = (tables(served), tables(ran));
    assert!(ran.contains_key("journeys") && ran.contains_key("transitions"), "{what}: the run's tables: {ran:?}");
    assert_eq!(served.keys().collect::<Vec<_>>(), ran.keys().collect::<Vec<_>>(), "{what}: the tables");
    for (table, lines) in &ran {
        let got = &served[table];
        if let Some(i) = (0..got.len().max(lines.len())).find(|&i| got.get(i) != lines.get(i)) {
            panic!(
                "{what}: {table}.arrow differs from the run's at line {i} ({} lines served, {} run):\n  served: {:?}\n  run:    {:?}",
                got.len(),
                lines.len(),
                got.get(i),
                lines.get(i)
            );
        }
    }
    // The printed table has a line of fields, and three lines around the header and one at the end.
    ran.iter().map(|(table, lines)| format!("{table} {}", lines.len().saturating_sub(5))).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// The crash test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_random_points_loses_no_acknowledged_event() {
    bounded(async {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut rng = StdRng::seed_from_u64(0xD1_5EA5E);
        let mut client = Client::new(0x5EED);
        // Whether the operation at `acked` (when taken on and not acknowledged) was applied, as
        // the latest start showed.
        let mut verdicts: BTreeMap<usize, Applied> = BTreeMap::new();
        // The operations a subscriber had seen applied when the previous life was killed.
        let mut seen_before_kill = 0;
        let (mut lost_answers, mut duplicates, mut lives_with_deltas, mut torn_tails) = (0, 0, 0, 0);
        let (mut compactions_cut, mut repeats) = (0, 0);
        // The tables compared at the end and their rows (for the summary).
        let mut compared = String::new();
        let mut policies = BTreeMap::<&str, usize>::new();
        // How one lost answer was lost (for the summary).
        let mut lost_example: Option<String> = None;
        for life in 0..=CRASHES {
            let last_life = life == CRASHES;
            let fsync = match life {
                0 => "batch",
                1 => "20ms",
                _ if rng.random_bool(0.5) => "batch",
                _ => "20ms",
            };
            *policies.entry(fsync).or_default() += 1;
            let mut server = Server::start_in(dir.path(), &crash_config(fsync), None);
            let log = server.log();
            torn_tails += usize::from(log.contains("log: cut a torn tail"));

            // The start recovered exactly the acknowledged operations, and the unanswered one
            // whole or not at all, and at least what a subscriber had been shown.
            let mut subscriber = server.subscribe_ws("").await;
            let recovered = snapshot_of(&mut subscriber).await.journeys;
            let requests = client.requests();
            let acked = client.acked;
            let without = lines_after(&client.ops[..acked], requests);
            let verdict = if client.ops.len() > acked {
                let with = lines_after(&client.ops[..=acked], requests);
                let verdict = match (recovered == without, recovered == with) {
                    (true, true) => Applied::Unknown,
                    (true, false) => Applied::No,
                    (false, true) => Applied::Yes,
                    (false, false) => panic!(
                        "life {life}: the recovered journeys are neither the acknowledged operations' nor those and \
                         {:?}'s (after {acked} acknowledged): {}",
                        client.ops[acked],
                        first_difference(&recovered, &without)
                    ),
                };
                verdicts.insert(acked, verdict);
                Some(verdict)
            } else {
                assert!(
                    recovered == without,
                    "life {life}: the recovered journeys are not the acknowledged operations' ({acked}): {}",
                    first_difference(&recovered, &without)
                );
                None
            };
            assert!(
                seen_before_kill <= acked || verdict != Some(Applied::No),
                "life {life}: a subscriber had been shown {:?} applied before the kill, but it was not recovered",
                client.ops[acked]
            );
            let total_events: usize = without.values().map(|line| line["events"].as_u64().unwrap() as usize).sum();
            if acked > 0 {
                let n = recovered_events(&log).unwrap_or_else(|| panic!("life {life}: no recovery line:\n{log}"));
                assert!(n as usize >= total_events, "life {life}: recovered {n} events of {total_events}:\n{log}");
            }

            // A request acknowledged in an earlier life (most likely folded into a checkpoint by
            // now), sent again with its key: answered as a duplicate, not applied again.
            let old_posts: Vec<usize> = (client.ops[..acked].iter())
                .filter_map(|op| match *op {
                    Op::Post(i) => Some(i),
                    Op::Erase => None,
                })
                .collect();
            if !old_posts.is_empty() {
                let old = &requests[old_posts[rng.random_range(0..old_posts.len())]];
                let (status, _, answer) = post(&server, old).await;
                assert_eq!((status, &answer["duplicate"]), (200, &json!(true)), "life {life}, {} again: {answer}", old.key);
                assert_eq!(answer["accepted"], old.expected().0, "life {life}, {} again: {answer}", old.key);
                repeats += 1;
            }

            // Post while a subscriber listens; kill the server at a random point.
            let first_new = client.acked;
            if last_life {
                client.total = Some(client.posts + LAST_REQUESTS);
            }
            let posting = tokio::spawn(client.run(server.client.clone(), server.base.clone(), life));
            if last_life {
                client = tokio::time::timeout(WAIT * 2, posting).await.expect("the last life's posting").unwrap();
            } else {
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..=400))).await;
                let killed_at = Instant::now();
                server.kill();
                client = tokio::time::timeout(WAIT, posting).await.expect("the client stops").unwrap();
                // Every attempt that got no answer ended after the kill (none failed otherwise).
                for attempt in client.attempts.iter().flatten().filter(|a| a.life == life && a.at < killed_at) {
                    assert!(
                        matches!(attempt.outcome, Outcome::Answered(..)),
                        "life {life}: {attempt:?} before the kill"
                    );
                }
                // A checkpoint being written when the kill came is left unfinished.
                compactions_cut += log_files(dir.path()).iter().filter(|name| name.ends_with(".tmp")).count();
                subscriber.wait_closed().await;
                let seen = replay(&subscriber.messages, &subscriber.name);
                // What the subscriber was shown is the state after a prefix of the operations
                // from this life's start up to the one in flight at the kill.
                let requests = client.requests();
                let floor = first_new;
                let mut k = (floor..=client.ops.len())
                    .rev()
                    .find(|&k| lines_after(&client.ops[..k], requests) == seen.journeys)
                    .unwrap_or_else(|| {
                        panic!(
                            "life {life}: the subscriber's view is no prefix of the operations: {}",
                            first_difference(&seen.journeys, &lines_after(&client.ops, requests))
                        )
                    });
                while k > floor && lines_after(&client.ops[..k - 1], requests) == seen.journeys {
                    k -= 1;
                }
                seen_before_kill = k;
                let first_ack = client.attempts[first_new..client.acked]
                    .iter()
                    .zip(&client.ops[first_new..client.acked])
                    .find(|(_, op)| matches!(op, Op::Post(_)))
                    .and_then(|(attempts, _)| attempts.last())
                    .map(|attempt| attempt.at);
                if first_ack.is_some_and(|at| killed_at.duration_since(at) >= DELTA_GRACE) {
                    assert!(
                        seen.delta_lines > 0,
                        "life {life}: the subscriber saw no delta line though the first request was acknowledged {:?} \
                         before the kill",
                        killed_at.duration_since(first_ack.unwrap())
                    );
                }
                lives_with_deltas += usize::from(seen.delta_lines > 0);
            }

            // The answers of the operations acknowledged in this life.
            let requests = client.requests();
            for index in first_new..client.acked {
                let attempts = &client.attempts[index];
                let Some(Attempt { outcome: Outcome::Answered(status, answer), .. }) = attempts.last() else {
                    panic!("operation {index} acknowledged without an answer: {attempts:?}")
                };
                let lost = attempts.iter().any(|a| matches!(a.outcome, Outcome::Lost(_)));
                lost_answers += usize::from(lost);
                if let Some(Outcome::Lost(why)) =
                    attempts.iter().map(|a| &a.outcome).find(|o| matches!(o, Outcome::Lost(_)))
                {
                    lost_example.get_or_insert_with(|| why.clone());
                }
                let verdict = verdicts.get(&index).copied();
                let what = format!("operation {index} ({:?}, life {life}, attempts {attempts:?})", client.ops[index]);
                match client.ops[index] {
                    Op::Post(i) => {
                        assert_eq!(*status, 200, "{what}");
                        if answer["duplicate"] == json!(true) {
                            duplicates += 1;
                            assert!(lost, "{what}: a duplicate, but no earlier answer was lost");
                            assert_ne!(verdict, Some(Applied::No), "{what}: a duplicate of a request not applied");
                            assert_eq!(answer["accepted"], requests[i].expected().0, "{what}");
                            assert_eq!(answer["rejected"], json!([]), "{what}");
                        } else {
                            assert_ne!(verdict, Some(Applied::Yes), "{what}: an applied request applied again");
                            requests[i].check_answer(answer, &what);
                        }
                    }
                    Op::Erase => {
                        if *status == 404 {
                            assert_eq!(verdict, Some(Applied::Yes), "{what}: 404 for an erasure not applied before");
                        } else {
                            assert_ne!(verdict, Some(Applied::Yes), "{what}: an erasure applied twice");
                            let events = events_after(&client.ops[..index], requests)
                                .iter()
                                .filter(|e| e.customer == ERASED)
                                .count();
                            assert!(events > 0);
                            let time = answer["time"].as_u64().unwrap_or_else(|| panic!("{what}: a logical time"));
                            assert_eq!(
                                answer,
                                &json!({"erased": ERASED, "time": time, "identities": 1, "events": events, "links": 0}),
                                "{what}"
                            );
                        }
                    }
                }
            }
            if !last_life {
                continue;
            }

            // The last life: everything is in, and its subscriber shows it.
            assert_eq!(client.acked, client.ops.len(), "every operation was acknowledged");
            assert!(client.ops.contains(&Op::Erase));
            let expected = lines_after(&client.ops, requests);
            let fed: usize = (first_new..client.acked)
                .filter_map(|index| match (client.ops[index], &client.attempts[index].last().unwrap().outcome) {
                    (Op::Post(i), Outcome::Answered(_, answer)) if answer["duplicate"] != json!(true) => {
                        Some(requests[i].events().count())
                    }
                    _ => None,
                })
                .sum();
            let time = server.settle(fed).await;
            subscriber.wait_progress(time).await;
            let seen = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(seen.journeys, expected, "{}", first_difference(&seen.journeys, &expected));
            assert!(seen.delta_lines > 0);
            lives_with_deltas += 1;
            let status = server.terminate().await;
            assert!(status.success(), "exit status {status:?}:\n{}", server.log());

            // The final snapshot equals a batch run of every posted record in posting order,
            // without the erased customer's.
            let lines: Vec<&str> = (client.ops.iter())
                .filter_map(|op| match *op {
                    Op::Post(i) => Some(&requests[i]),
                    Op::Erase => None,
                })
                .flat_map(|request| &request.records)
                .filter(|record| record.customer() != Some(ERASED))
                .map(Record::json)
                .collect();
            let ran = batch_run(dir.path(), "run", &crash_config("batch"), &lines);
            compared = assert_same_snapshot(&server.out, &ran, "the final snapshot after the crashes");
            let journeys = read_table(&ran, "journeys");
            assert_eq!(journeys.num_rows(), expected.len());
        }

        // The kills landed where they should: amid rotations and compactions, and between a
        // request and its answer (the summary says how often, and how many retries were
        // duplicates).
        let files = log_files(dir.path());
        let segment = |name: &String| name.strip_prefix("segment-")?.strip_suffix(".log")?.parse::<u64>().ok();
        let newest = files.iter().filter_map(segment).max().unwrap_or(0);
        assert!(files.iter().any(|name| name.ends_with(".ckpt")), "a checkpoint: {files:?}");
        assert!(newest >= 3, "the log rotated: {files:?}");
        assert!(lost_answers > 0, "some kills cut off an answer");
        assert!(policies.len() == 2, "{policies:?}");
        let posted = client.ops.len() - 1;
        eprintln!(
            "{} lives ({policies:?}), {posted} requests and an erasure, {} records; {lost_answers} answers lost, \
             {duplicates} duplicates (and {repeats} old requests repeated); {lives_with_deltas} subscribers saw deltas; {torn_tails} torn tails cut; \
             {compactions_cut} compactions cut off; \
             newest segment {newest}; tables equal to the run's: {compared}; {:.1?}; an answer lost: {lost_example:?}",
            CRASHES + 1,
            client.workload.rows,
            started.elapsed()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The full disk.

/// A tmpfs mounted for a test, unmounted (lazily, so that nothing holding it open stops it)
/// when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`512k`) at `path`; why not, when `mount` fails (not root).
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs { path: path.to_owned() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system of `dir` with a file `dir/filler` until it has no space left.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::options().create(true).append(true).open(&path).expect("creating the filler");
    let chunk = vec![0x5a_u8; 4096];
    for _ in 0..100_000 {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return path,
            Err(error) => panic!("filling {}: {error}", dir.display()),
        }
    }
    panic!("{} did not fill up", dir.display())
}

/// `POST /v1/events` of `request` with its idempotency key: the status, the `Retry-After`
/// header and the JSON answer.
async fn post(server: &Server, request: &Request) -> (u16, Option<String>, Value) {
    let response = (server.client.post(format!("{}/v1/events", server.base)))
        .header("idempotency-key", &request.key)
        .body(request.text())
        .send()
        .await
        .expect("POST /v1/events");
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.expect("the answer");
    (status, retry, serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON answer ({e}): {text:?}")))
}

/// Posts `request`, which must be taken (answered as a first answer).
async fn post_ok(server: &Server, request: &Request) {
    let (status, _, answer) = post(server, request).await;
    assert_eq!(status, 200, "{}: {answer}", request.key);
    request.check_answer(&answer, &request.key);
}

/// One full-disk episode of life `life` against `server`, whose output directory `out` (with
/// the log in it) is alone on a small file system. Requests are taken; the file system fills up:
/// requests too large for what is left of the segment's last page (tmpfs allocates pages) are
/// refused with 503 and the reason, counted, and not applied (the ingest clock included), and a
/// small one with a bad record is either refused alike or taken, its dead letter then waiting
/// for space (counted). Space returns: the refused requests but one are retried and taken as new
/// ones, a retry of an answered one is a duplicate, the dead letter is written, and more requests
/// are taken. The requests taken are added to `acked` in order.
async fn full_disk_episode(server: &Server, out: &Path, workload: &mut Workload, acked: &mut Vec<usize>, life: usize) {
    let before = server.metrics().await;
    // Good records only, so that (in the first life) the dead-letter file is still empty.
    workload.bad_share = 0.0;
    for _ in 0..10 {
        let index = workload.generate(1..=8);
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    workload.bad_share = 0.03;
    // A small request with a bad record, whose dead letter the full disk cannot take (its event
    // before those of the large ones, so that taking it makes none of them late).
    let small = workload.requests.len();
    let raw = format!(r#"{{"customer":"c1","time":"during the full disk of life {life}","contact_point":"home"}}"#);
    let bad = Record::Bad { json: raw.clone(), customer: Some("c1".to_owned()), field: Some("time"), kind: "bad_time" };
    let records = vec![workload.good(), bad];
    workload.requests.push(Request { key: format!("small-{life}"), body: Body::Ndjson, records });
    let filler = fill(out);
    let full = server.metrics().await;
    let mut refused = Vec::new();
    for _ in 0..4 {
        // Larger than a page (about 30 bytes an event in the log).
        let index = workload.generate(200..=250);
        let (status, retry, answer) = post(server, &workload.requests[index]).await;
        assert_eq!(status, 503, "life {life}, a full disk: {answer}");
        assert_eq!(retry.as_deref(), Some("1"), "Retry-After");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("an error: {answer}"));
        assert!(
            error.starts_with("the durable log cannot take the request, so nothing of it was applied; retry later: ")
                && error.contains("No space left on device"),
            "life {life}: {error}"
        );
        refused.push(index);
    }
    let metrics = server.metrics().await;
    let failures = metrics["stepstone_log_failures_total"] - before["stepstone_log_failures_total"];
    assert_eq!(failures, refused.len() as f64, "life {life}: {metrics:?}");
    assert_eq!(
        metrics["stepstone_events_in_total"], full["stepstone_events_in_total"],
        "life {life}: nothing of a refused request reaches the engine"
    );
    let (status, _, answer) = post(server, &workload.requests[small]).await;
    let metrics = server.metrics().await;
    let dead_letter_failures =
        metrics["stepstone_dead_letter_failures_total"] - before["stepstone_dead_letter_failures_total"];
    match status {
        200 => {
            workload.requests[small].check_answer(&answer, "the small request");
            acked.push(small);
            if life == 0 {
                assert_eq!(dead_letter_failures, 1.0, "the dead-letter file is full: {metrics:?}");
            }
        }
        503 => refused.push(small),
        _ => panic!("life {life}: the small request on a full disk: {status} {answer}"),
    }
    // Space returns: the refused requests but the first, retried, are taken as new ones (the
    // small one first, whose event is the oldest).
    std::fs::remove_file(&filler).unwrap();
    let retried: Vec<usize> =
        refused.iter().copied().filter(|&i| i == small).chain(refused[1..4].iter().copied()).collect();
    for &index in &retried {
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    for _ in 0..5 {
        let index = workload.generate(1..=8);
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    let (status, _, answer) = post(server, &workload.requests[refused[2]]).await;
    assert_eq!((status, &answer["duplicate"]), (200, &json!(true)), "life {life}: a retry after the answer: {answer}");
    let metrics = server.metrics().await;
    let failures = metrics["stepstone_log_failures_total"] - before["stepstone_log_failures_total"];
    assert_eq!(failures, refused.len() as f64, "life {life}: no failure once space returned: {metrics:?}");
    // The dead letter written once space returned, and no line broken by the full disk.
    let dead_letters = std::fs::read_to_string(out.join("rejected.jsonl")).expect("rejected.jsonl");
    let lines: Vec<Value> = dead_letters
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("life {life}: a broken dead letter ({e}): {line}"))
        })
        .collect();
    let written = lines.iter().any(|line| line["raw"] == json!(raw));
    assert!(written, "life {life}: the small request's dead letter in rejected.jsonl:\n{dead_letters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_ingest_with_503_and_recovers_when_space_returns() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let _tmpfs = match Tmpfs::mount(&out, "512k") {
            Ok(tmpfs) => tmpfs,
            Err(why) => {
                eprintln!("SKIPPED: the full-disk test needs to mount a tmpfs (as root), and mount failed: {why}");
                return;
            }
        };
        // The log in its default place, in the output directory.
        let config = |fsync: &str| {
            format!("{PIPELINE}[log]\nfsync = \"{fsync}\"\nsegment-bytes = 16384\ncheckpoint-bytes = 65536\n{SEGMENTS}")
        };
        // Event times a second apart on average: the four large requests a full disk refuses
        // span more than the allowed lateness (10 minutes), so that a clock they moved would make
        // the requests before them late; nothing else is late.
        let mut workload = Workload::new(0xF11_1ED);
        workload.step_ms = 2_000;
        workload.jump_share = 0.0;
        // The requests acknowledged, in order.
        let mut acked: Vec<usize> = Vec::new();
        let mut ran: Option<PathBuf> = None;
        for (life, fsync) in ["batch", "20ms", "batch"].into_iter().enumerate() {
            let mut server = Server::start_in(dir.path(), &config(fsync), None);
            let events: usize = acked.iter().map(|&i| workload.requests[i].events().count()).sum();
            let recovered = recovered_events(&server.log());
            assert_eq!(recovered, (life > 0).then_some(events as u64), "life {life}:\n{}", server.log());
            if life < 2 {
                full_disk_episode(&server, &out, &mut workload, &mut acked, life).await;
            }
            if life == 1 {
                let index = workload.closer();
                post_ok(&server, &workload.requests[index]).await;
                acked.push(index);
            }
            let status = server.terminate().await;
            assert!(status.success(), "exit status {status:?}:\n{}", server.log());
            if life == 0 {
                continue;
            }
            // The final snapshot holds exactly the acknowledged records, also after a restart.
            let ran = ran.get_or_insert_with(|| {
                let lines: Vec<&str> =
                    acked.iter().flat_map(|&i| &workload.requests[i].records).map(Record::json).collect();
                batch_run(dir.path(), "run", &config("batch"), &lines)
            });
            let what = format!("the final snapshot of life {life} after the full disk");
            assert_same_snapshot(&server.out, ran, &what);
        }
    })
    .await;
}

/// With `fsync = "batch"`, a request whose append and forced write succeed but after which the
/// next segment cannot be begun (a full disk) is acknowledged: it is in the log for good. (It
/// used to be answered 503 and its key forgotten, so a restart brought it back and its retry
/// was applied twice.) A restart recovers exactly the acknowledged records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_begun_refuses_nothing_that_stays_in_the_log() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("log");
        std::fs::create_dir(&log).unwrap();
        let _tmpfs = match Tmpfs::mount(&log, "256k") {
            Ok(tmpfs) => tmpfs,
            Err(why) => {
                eprintln!("SKIPPED: this test needs to mount a tmpfs (as root), and mount failed: {why}");
                return;
            }
        };
        // Segments end within their first page, so appends fit in the page the segment has
        // while beginning the next segment needs a page the full disk does not have.
        let config = format!(
            "{PIPELINE}[log]\ndir = {:?}\nfsync = \"batch\"\nsegment-bytes = 2048\ncheckpoint-bytes = 1048576\n{SEGMENTS}",
            log.to_str().unwrap()
        );
        let mut workload = Workload::new(7);
        let mut server = Server::start_in(dir.path(), &config, None);
        let mut acked = Vec::new();
        let index = workload.generate(1..=1);
        post_ok(&server, &workload.requests[index]).await;
        acked.push(index);
        let filler = fill(&log);
        let mut refused = None;
        for _ in 0..100 {
            let index = workload.generate(1..=1);
            let (status, _, answer) = post(&server, &workload.requests[index]).await;
            if status != 200 {
                assert_eq!(status, 503, "{answer}");
                refused = Some(index);
                break;
            }
            acked.push(index);
        }
        let refused = refused.expect("a request refused once the segment is full");
        std::fs::remove_file(&filler).unwrap();
        post_ok(&server, &workload.requests[refused]).await;
        acked.push(refused);
        let index = workload.closer();
        post_ok(&server, &workload.requests[index]).await;
        acked.push(index);
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}:\n{}", server.log());

        let mut server = Server::start_in(dir.path(), &config, None);
        let events: usize = acked.iter().map(|&i| workload.requests[i].events().count()).sum();
        assert_eq!(recovered_events(&server.log()), Some(events as u64), "{}", server.log());
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}:\n{}", server.log());
        let lines: Vec<&str> = acked.iter().flat_map(|&i| &workload.requests[i].records).map(Record::json).collect();
        let ran = batch_run(dir.path(), "run", &config, &lines);
        assert_same_snapshot(&server.out, &ran, "the snapshot after a failed rotation");
    })
    .await;
}
