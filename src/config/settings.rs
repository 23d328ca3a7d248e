//! The typed settings of a pipeline: one struct per config section, with its keys in kebab-case,
//! as the layers of [`super::layers`] merge into them. Their defaults are `defaults.toml`, not
//! code: a key without a value there is an `Option` here. Unknown keys are errors.
//!
//! Values are typed where they are read: durations (`30m`, `1h 30m`, `5ms`), byte sizes
//! (`16 MiB` or a number of bytes), and the named choices (formats, policies). What needs the
//! whole pipeline to check (mappings, rules, paths, limits at least 1) is checked by
//! [`super::Pipeline`].

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Deserializer, Serialize};
use stepstone_dataflows::event::SessionRule;

use crate::journal::Fsync;
use crate::source::lateness::LatePolicy;
use crate::source::{Format, TimeFormat};

/// Every setting of a pipeline.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Where events come from and how their columns map to event fields.
    pub input: InputSettings,
    /// How journeys are cut and what counts as a conversion.
    pub journeys: JourneySettings,
    /// Where and how often results are written.
    pub output: OutputSettings,
    /// Execution settings.
    pub run: RunSettings,
    /// Limits that keep bad or hostile input from exhausting the engine.
    pub limits: LimitSettings,
    /// The live service (`stepstone serve`).
    pub server: ServerSettings,
    /// The durable event log of the live service.
    pub log: LogSettings,
    /// The segment definitions, in order.
    #[serde(default)]
    pub segments: Vec<SegmentSettings>,
}

/// `[input]`: the event sources.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InputSettings {
    /// Input files, read in order; `-` is stdin.
    pub paths: Vec<PathBuf>,
    /// Their format; detected from each file's extension when absent.
    #[serde(default, deserialize_with = "parsed_option")]
    pub format: Option<Format>,
    /// How times are read.
    #[serde(deserialize_with = "parsed")]
    pub time_format: TimeFormat,
    /// Field → column name (`customer = "user_id"`); unmapped fields use their own name.
    pub map: BTreeMap<String, String>,
    /// A column whose value splits a customer's events into parallel journeys.
    #[serde(default)]
    pub journey_key: Option<String>,
    /// Columns holding personal data: they may feed no field whose values the outputs show.
    pub personal: Vec<String>,
    /// Keep reading the input files as they grow (`stepstone serve` only; JSON Lines and CSV).
    pub follow: bool,
    /// How far behind its source's latest event time an event of an unbounded input may be and
    /// still be on time.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// What becomes of late events.
    #[serde(deserialize_with = "parsed")]
    pub late: LatePolicy,
}

/// `[journeys]`: sessions, paths and conversions.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JourneySettings {
    /// The inactivity gap that ends a session, or never (`none`). When a `session` column is
    /// mapped and no layer but the defaults sets it, the session ids decide
    /// ([`SessionRule::ById`]; see [`super::Layers::settings`]).
    #[serde(deserialize_with = "session_gap")]
    pub session_gap: SessionRule,
    /// How many of the last contact points a journey keeps in its path.
    pub path_length: usize,
    /// `kind=VALUE|VALUE…` or `contact_point=VALUE|VALUE…`; no conversions when absent.
    #[serde(default)]
    pub conversion: Option<String>,
}

/// `[output]`: snapshots, deltas and dead letters.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputSettings {
    /// The directory of the snapshots (and of relative `deltas`, `rejected` and log paths).
    pub dir: PathBuf,
    /// Whether Parquet files are written beside the Arrow files.
    pub parquet: bool,
    /// Wall-clock time between snapshots during a run; only the final one when absent.
    #[serde(default, with = "humantime_serde::option")]
    pub snapshot_interval: Option<Duration>,
    /// The context-delta file (JSON Lines), relative to `dir`; `-` is stdout; none when absent.
    #[serde(default)]
    pub deltas: Option<PathBuf>,
    /// The dead-letter file (JSON Lines), relative to `dir`.
    pub rejected: PathBuf,
}

/// `[run]`: execution settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunSettings {
    /// Number of timely worker threads.
    pub workers: usize,
    /// Stop with an error at the first bad record instead of rejecting it.
    pub strict: bool,
    /// Events per logical time when reading files. Without a snapshot interval, and when no
    /// layer but the defaults sets it, the whole input is one logical time (`usize::MAX`; see
    /// [`super::Layers::settings`]): every logical time's end recomputes the rows of the journeys
    /// it touched, which for a bulk load is nearly every journey each time.
    pub epoch_events: usize,
}

/// `[limits]`: how large a record may be and how many segments a pipeline may define.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitSettings {
    /// The largest record (a JSON line or object, a CSV row).
    pub max_record_bytes: ByteSize,
    /// The most fields of one record (JSON object keys, CSV columns).
    pub max_fields: usize,
    /// The most segments.
    pub max_segments: usize,
}

/// `[server]`: the live service of `stepstone serve`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSettings {
    /// HTTP address (ingest, subscriptions, lookups, metrics).
    pub listen: String,
    /// Arrow Flight address.
    pub flight_listen: String,
    /// The bearer token every `/v1` endpoint and Flight require; the `STEPSTONE_TOKEN`
    /// environment variable is used when this is absent. No token: no authentication.
    #[serde(default)]
    pub token: Option<String>,
    /// Largest accepted ingest body.
    pub max_body_bytes: ByteSize,
    /// Ingest batches queued for the engine before ingest answers 429.
    pub ingest_queue: usize,
    /// Logical times a subscriber may fall behind before it is told `lagged` and closed.
    pub subscriber_buffer: usize,
    /// Most subscribers at once.
    pub max_subscribers: usize,
    /// Longest a logical time stays open while ingest keeps arriving.
    #[serde(with = "humantime_serde")]
    pub epoch_interval: Duration,
}

/// `[log]`: the durable event log of `stepstone serve`, which every accepted ingest request is
/// appended to before it is acknowledged and which a restarted service replays.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogSettings {
    /// Whether ingest is logged. Without the log a restart loses what HTTP ingest had taken.
    pub enabled: bool,
    /// The log's directory, relative to the output directory.
    pub dir: PathBuf,
    /// When appends are forced to disk.
    #[serde(deserialize_with = "parsed")]
    pub fsync: Fsync,
    /// Bytes of a log segment before the next is begun.
    pub segment_bytes: ByteSize,
    /// Bytes appended since the last checkpoint that start a compaction.
    pub checkpoint_bytes: ByteSize,
}

/// `[[segments]]`: one named segment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SegmentSettings {
    /// The segment's name.
    pub name: String,
    /// Its membership rule, e.g. `events >= 3 and not converted`.
    pub rule: String,
}

/// A value read from its string form by [`FromStr`].
fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// An optional value read from its string form by [`FromStr`] (absent keys are `None` by
/// `#[serde(default)]`).
fn parsed_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    parsed(deserializer).map(Some)
}

/// A session gap: a duration such as `30m` or `1h 30m`, or `none` for never splitting.
fn session_gap<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SessionRule, D::Error> {
    let text = String::deserialize(deserializer)?;
    super::parse_session_gap(&text).map_err(serde::de::Error::custom)
}
