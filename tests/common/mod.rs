//! Helpers shared by the end-to-end tests: running the `stepstone` binary, reading its Arrow
//! snapshots back, and an independent, sequential recomputation of the journey semantics
//! (`../shared/SEMANTICS.md`) to compare them with. The harness of the `stepstone serve` tests
//! is in [`server`].

#![allow(dead_code)]

pub mod server;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use arrow::ipc::reader::FileReader;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared data directory: the environment variable `STEPSTONE_SHARED_DATA` if it is set (a
/// relative path is taken from the workspace root), else `../shared/data` beside the checkout.
pub fn shared_data() -> PathBuf {
    match std::env::var_os("STEPSTONE_SHARED_DATA") {
        Some(dir) => root().join(dir),
        None => root().join("../shared/data"),
    }
}

/// The shared real event logs (`eventlogs/` of [`shared_data`]), if present.
pub fn eventlogs() -> Option<PathBuf> {
    Some(shared_data().join("eventlogs")).filter(|p| p.join("running-example.csv").exists())
}

/// Runs `stepstone` with `args` from the workspace root.
pub fn stepstone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepstone"))
        .args(args)
        .current_dir(root())
        .env("STEPSTONE_LOG", "warn")
        .output()
        .expect("running stepstone")
}

/// Runs `stepstone` with `args` and panics with its stderr unless it succeeds.
pub fn stepstone_ok(args: &[&str]) -> Output {
    let output = stepstone(args);
    assert!(output.status.success(), "stepstone {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Reads the single batch of the Arrow IPC file `dir/name.arrow`.
pub fn read_table(dir: &Path, name: &str) -> RecordBatch {
    let path = dir.join(format!("{name}.arrow"));
    let file = File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let reader = FileReader::try_new(file, None).expect("an Arrow IPC file");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a record batch")).collect();
    assert_eq!(batches.len(), 1, "{name}.arrow holds one batch");
    batches.into_iter().next().unwrap()
}

/// The logical time in a batch's schema metadata.
pub fn logical_time(batch: &RecordBatch) -> Option<String> {
    batch.schema().metadata().get("stepstone.logical_time").cloned()
}

/// The watermark a snapshot batch's schema carries.
pub fn watermark(batch: &RecordBatch) -> Option<String> {
    batch.schema().metadata().get("stepstone.watermark").cloned()
}

/// The string column `name`.
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    column.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_owned()).collect()
}

/// The int64 column `name`.
pub fn ints(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    column.as_primitive::<Int64Type>().values().to_vec()
}

/// The float64 column `name`.
pub fn floats(batch: &RecordBatch, name: &str) -> Vec<f64> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    column.as_primitive::<arrow::datatypes::Float64Type>().values().to_vec()
}

/// The timestamp (ms) column `name`, `None` for nulls.
pub fn times(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    column.as_primitive::<TimestampMillisecondType>().iter().collect()
}

/// The list-of-strings column `name`.
pub fn string_lists(batch: &RecordBatch, name: &str) -> Vec<Vec<String>> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    let lists = column.as_list::<i32>();
    (0..lists.len())
        .map(|i| lists.value(i).as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_owned()).collect())
        .collect()
}

/// The boolean column `name`.
pub fn bools(batch: &RecordBatch, name: &str) -> Vec<bool> {
    let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
    column.as_boolean().iter().map(|v| v.unwrap_or_default()).collect()
}

/// A transition graph: `(from, to)` → `(count, dwell_ms_total)`.
pub type Edges = BTreeMap<(String, String), (i64, i64)>;

/// The transition graph of a snapshot.
pub fn edges(batch: &RecordBatch) -> Edges {
    let from = strings(batch, "from");
    let to = strings(batch, "to");
    let count = ints(batch, "count");
    let dwell = ints(batch, "dwell_ms_total");
    (0..batch.num_rows()).map(|i| ((from[i].clone(), to[i].clone()), (count[i], dwell[i]))).collect()
}

/// One event as the oracle sees it.
#[derive(Clone, Debug)]
pub struct OracleEvent {
    /// The customer.
    pub customer: String,
    /// Event time in ms.
    pub time: i64,
    /// Input position, deciding ties.
    pub row: usize,
    /// The contact point.
    pub contact_point: String,
    /// Whether the event converts.
    pub converting: bool,
}

/// What the oracle expects for one customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OracleJourney {
    /// Number of events.
    pub events: i64,
    /// Number of sessions.
    pub sessions: i64,
    /// First event time.
    pub first_time: i64,
    /// Last event time.
    pub last_time: i64,
    /// The last `path_len` contact points.
    pub path: Vec<String>,
    /// Number of converting events.
    pub conversions: i64,
}

/// The expected transition graph and journeys at the end of the input, computed sequentially:
/// events sorted per customer by (time, input position), sessions split where the gap is strictly
/// greater than `gap` (never when `None`), paths restarted after a converting event.
pub fn oracle(events: &[OracleEvent], gap: Option<i64>, path_len: usize) -> (Edges, BTreeMap<String, OracleJourney>) {
    oracle_at(events, gap, path_len, None)
}

/// [`oracle`] while the watermark is `watermark` (`None`: the input has ended): a customer's
/// last session has its `(exit)` only once the watermark is past its last event plus `gap`.
pub fn oracle_at(
    events: &[OracleEvent],
    gap: Option<i64>,
    path_len: usize,
    watermark: Option<i64>,
) -> (Edges, BTreeMap<String, OracleJourney>) {
    let mut per_customer: BTreeMap<&str, Vec<&OracleEvent>> = BTreeMap::new();
    for e in events {
        per_customer.entry(&e.customer).or_default().push(e);
    }
    let mut edges: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut add = |from: &str, to: &str, dwell: i64| {
        let entry = edges.entry((from.to_owned(), to.to_owned())).or_default();
        entry.0 += 1;
        entry.1 += dwell;
    };
    let mut journeys = BTreeMap::new();
    for (customer, mut list) in per_customer {
        list.sort_by_key(|e| (e.time, e.row));
        let mut sessions = 0;
        let mut previous: Option<&OracleEvent> = None;
        for e in &list {
            let new_session = match previous {
                None => true,
                Some(p) => gap.is_some_and(|gap| e.time - p.time > gap),
            };
            match previous {
                Some(p) if !new_session && !p.converting => add(&p.contact_point, &e.contact_point, e.time - p.time),
                Some(p) => {
                    if new_session && !p.converting {
                        add(&p.contact_point, "(exit)", 0);
                    }
                    add("(start)", &e.contact_point, 0);
                }
                None => add("(start)", &e.contact_point, 0),
            }
            if new_session {
                sessions += 1;
            }
            if e.converting {
                add(&e.contact_point, "(conversion)", 0);
            }
            previous = Some(e);
        }
        let last = list.last().expect("a customer has events");
        let over = match (watermark, gap) {
            (None, _) => true,
            (Some(watermark), Some(gap)) => watermark > last.time + gap,
            (Some(_), None) => false,
        };
        if over && !last.converting {
            add(&last.contact_point, "(exit)", 0);
        }
        let skip = list.len().saturating_sub(path_len);
        journeys.insert(
            customer.to_owned(),
            OracleJourney {
                events: list.len() as i64,
                sessions,
                first_time: list[0].time,
                last_time: last.time,
                path: list[skip..].iter().map(|e| e.contact_point.clone()).collect(),
                conversions: list.iter().filter(|e| e.converting).count() as i64,
            },
        );
    }
    (edges, journeys)
}

/// The journeys of a snapshot in the oracle's shape, by customer.
pub fn journeys(batch: &RecordBatch) -> BTreeMap<String, OracleJourney> {
    let customer = strings(batch, "customer");
    let events = ints(batch, "events");
    let sessions = ints(batch, "sessions");
    let first = times(batch, "first_time");
    let last = times(batch, "last_time");
    let path = string_lists(batch, "path");
    let conversions = ints(batch, "conversions");
    (0..batch.num_rows())
        .map(|i| {
            (
                customer[i].clone(),
                OracleJourney {
                    events: events[i],
                    sessions: sessions[i],
                    first_time: first[i].expect("first_time"),
                    last_time: last[i].expect("last_time"),
                    path: path[i].clone(),
                    conversions: conversions[i],
                },
            )
        })
        .collect()
}

/// One event with every field a journey row depends on (for the live service's tests).
#[derive(Clone, Debug)]
pub struct FullEvent {
    /// The customer.
    pub customer: String,
    /// Event time in ms.
    pub time: i64,
    /// Arrival position, deciding ties.
    pub row: usize,
    /// The contact point.
    pub contact_point: String,
    /// The channel, if any.
    pub channel: Option<String>,
    /// Whether the event converts.
    pub converting: bool,
    /// The event's value (0 when absent).
    pub value: f64,
}

impl FullEvent {
    /// The event as [`oracle`] takes it.
    pub fn to_oracle(&self) -> OracleEvent {
        OracleEvent {
            customer: self.customer.clone(),
            time: self.time,
            row: self.row,
            contact_point: self.contact_point.clone(),
            converting: self.converting,
        }
    }
}

/// What the full oracle expects for one customer: every field of a journey row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullJourney {
    /// First event time (ms).
    pub first_time: i64,
    /// Last event time (ms).
    pub last_time: i64,
    /// Number of events.
    pub events: i64,
    /// Number of sessions.
    pub sessions: i64,
    /// Time of the first event of the last session.
    pub session_start: i64,
    /// Number of events of the last session.
    pub session_events: i64,
    /// The last `path_len` contact points, oldest first.
    pub path: Vec<String>,
    /// Events per channel (events without a channel are not counted).
    pub channel_events: BTreeMap<String, i64>,
    /// Number of converting events.
    pub conversions: i64,
    /// Time of the last converting event.
    pub last_conversion_time: Option<i64>,
    /// Total value in micro-units (each event's value rounded to micro-units, then summed).
    pub value_micros: i64,
}

impl FullJourney {
    /// Whether the journey converted.
    pub fn converted(&self) -> bool {
        self.conversions > 0
    }

    /// The total value as the engine reports it.
    pub fn value(&self) -> f64 {
        self.value_micros as f64 / 1e6
    }
}

/// Every customer's full journey row, computed sequentially like [`oracle`]: events sorted per
/// customer by (time, arrival position), sessions split where the gap is strictly greater than
/// `gap` (never when `None`).
pub fn full_journeys(events: &[FullEvent], gap: Option<i64>, path_len: usize) -> BTreeMap<String, FullJourney> {
    let mut per_customer: BTreeMap<&str, Vec<&FullEvent>> = BTreeMap::new();
    for e in events {
        per_customer.entry(&e.customer).or_default().push(e);
    }
    let mut journeys = BTreeMap::new();
    for (customer, mut list) in per_customer {
        list.sort_by_key(|e| (e.time, e.row));
        let mut sessions = 0;
        let mut session_start = list[0].time;
        let mut session_events = 0;
        for (i, e) in list.iter().enumerate() {
            let new_session = i == 0 || gap.is_some_and(|gap| e.time - list[i - 1].time > gap);
            if new_session {
                sessions += 1;
                session_start = e.time;
                session_events = 0;
            }
            session_events += 1;
        }
        let mut channel_events = BTreeMap::new();
        for e in &list {
            if let Some(channel) = &e.channel {
                *channel_events.entry(channel.clone()).or_default() += 1;
            }
        }
        let skip = list.len().saturating_sub(path_len);
        journeys.insert(
            customer.to_owned(),
            FullJourney {
                first_time: list[0].time,
                last_time: list[list.len() - 1].time,
                events: list.len() as i64,
                sessions,
                session_start,
                session_events,
                path: list[skip..].iter().map(|e| e.contact_point.clone()).collect(),
                channel_events,
                conversions: list.iter().filter(|e| e.converting).count() as i64,
                last_conversion_time: list.iter().filter(|e| e.converting).map(|e| e.time).next_back(),
                value_micros: list.iter().map(|e| (e.value * 1e6).round() as i64).sum(),
            },
        );
    }
    journeys
}
