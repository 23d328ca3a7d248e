//! Helpers shared by the end-to-end tests: running the `stepstone` binary, reading its Arrow
//! snapshots back, and the events and rows of the test oracle, the independent sequential
//! recomputation of the journey semantics (`docs/semantics.md`) to compare them with. The
//! oracle is the dataflows crate's (`stepstone_dataflows::oracle`), reached through
//! [`oracle`]; the harness of the `stepstone serve` tests is in [`server`] and
//! [`subscriber`].

#![allow(dead_code)]

pub mod oracle;
pub mod server;
pub mod subscriber;

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

impl OracleEvent {
    /// The event as [`oracle::recompute`] takes it: without a channel or a value.
    pub fn to_full(&self) -> FullEvent {
        FullEvent {
            customer: self.customer.clone(),
            time: self.time,
            row: self.row,
            contact_point: self.contact_point.clone(),
            channel: None,
            converting: self.converting,
            value: 0.0,
        }
    }
}

/// What the oracle expects for one customer, of the fields a journey row always has.
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

/// The expected transition graph and journeys at the end of the input, by the oracle
/// ([`oracle::recompute`]): events sorted per customer by (time, input position), sessions split
/// where the gap is strictly greater than `gap` (never when `None`), paths restarted after a
/// converting event.
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
    let events: Vec<FullEvent> = events.iter().map(OracleEvent::to_full).collect();
    let views = oracle::recompute(&events, gap, path_len, watermark, &[]);
    let journeys = views.journeys.iter().map(|(customer, j)| (customer.clone(), j.to_oracle())).collect();
    (views.edges, journeys)
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

    /// The fields of [`OracleJourney`].
    pub fn to_oracle(&self) -> OracleJourney {
        OracleJourney {
            events: self.events,
            sessions: self.sessions,
            first_time: self.first_time,
            last_time: self.last_time,
            path: self.path.clone(),
            conversions: self.conversions,
        }
    }
}

/// Every customer's full journey row, by the oracle like [`oracle`]: events sorted per
/// customer by (time, arrival position), sessions split where the gap is strictly greater than
/// `gap` (never when `None`).
pub fn full_journeys(events: &[FullEvent], gap: Option<i64>, path_len: usize) -> BTreeMap<String, FullJourney> {
    oracle::recompute(events, gap, path_len, None, &[]).journeys
}
