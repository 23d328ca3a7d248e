//! The flags of `stepstone run`, `serve` and `erase`, grouped by the config section they set.
//!
//! Each group serializes as its section, with only the flags given (an absent option or an unset
//! switch sets nothing), so that the flags are the last of the config [`Layers`]: the built-in
//! defaults, the config file, the environment, then these. Flags that name a list entry
//! (`--personal`, `--segment`) add to the lists of the layers before instead of replacing them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::{Serialize, Serializer};

use crate::config::{Layers, Pipeline, SegmentSettings};
use crate::source::Mapping;

/// Options of `stepstone run`; each overrides the same setting of the config file.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Pipeline config file (TOML); its relative paths are relative to the file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `[input]` flags.
    #[command(flatten)]
    pub input: InputFlags,
    /// `[journeys]` flags.
    #[command(flatten)]
    pub journeys: JourneyFlags,
    /// `[output]` flags.
    #[command(flatten)]
    pub output: OutputFlags,
    /// `[run]` flags.
    #[command(flatten)]
    pub run: RunFlags,
    /// A segment NAME=RULE, e.g. `engaged=events >= 3`; repeatable, added to the config's segments.
    #[arg(long = "segment", value_name = "NAME=RULE", value_parser = segment)]
    pub segments: Vec<SegmentSettings>,
    /// Do not print the run summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The flags of `[input]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InputFlags {
    /// Input file (.jsonl, .csv, .parquet, .arrow, optionally .gz/.zst); repeatable; `-` is stdin.
    #[arg(short, long = "input", value_name = "FILE")]
    #[serde(rename = "paths", skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<PathBuf>,
    /// Input format when it cannot be told from the extension: jsonl, csv, parquet, arrow.
    #[arg(long)]
    pub format: Option<String>,
    /// Column mapping FIELD=COLUMN,… (fields: customer, time, contact_point, channel, kind, value,
    /// session, device, previous_id, consent).
    #[arg(long, value_name = "SPEC", value_parser = map_spec)]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "map_table")]
    pub map: Vec<MapSpec>,
    /// A column holding personal data, which may feed no field the outputs show; repeatable.
    #[arg(long, value_name = "COLUMN")]
    #[serde(skip)]
    pub personal: Vec<String>,
    /// How times are read: auto, rfc3339, epoch_s, epoch_ms.
    #[arg(long)]
    pub time_format: Option<String>,
    /// A column that splits each customer's events into parallel journeys.
    #[arg(long, value_name = "COLUMN")]
    pub journey_key: Option<String>,
    /// How far behind its source's latest event time an event of a live input (stdin, HTTP,
    /// a followed file) may be and still be on time [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub allowed_lateness: Option<String>,
    /// What becomes of late events: `reject` (dead letters, reason `late`) or `accept`
    /// (applied, every view corrected) [default: reject].
    #[arg(long, value_name = "POLICY")]
    pub late: Option<String>,
}

/// The flags of `[journeys]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct JourneyFlags {
    /// Which events convert: kind=VALUE[|VALUE…] or contact_point=VALUE[|VALUE…].
    #[arg(long, value_name = "FIELD=VALUES")]
    pub conversion: Option<String>,
    /// Inactivity gap that ends a session (30m, 1h, …) or `none` (one session per journey).
    #[arg(long, value_name = "GAP")]
    pub session_gap: Option<String>,
    /// Number of last contact points kept in each journey's path.
    #[arg(long, value_name = "N")]
    pub path_length: Option<usize>,
}

/// The flags of `[output]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutputFlags {
    /// Output directory for the snapshots.
    #[arg(short, long, value_name = "DIR")]
    #[serde(rename = "dir")]
    pub out: Option<PathBuf>,
    /// Write context deltas (JSON Lines) to this file; `-` is stdout.
    #[arg(long, value_name = "FILE", value_parser = from_working_dir)]
    pub deltas: Option<PathBuf>,
    /// Dead-letter file for rejected records (default: rejected.jsonl in the output directory).
    #[arg(long, value_name = "FILE", value_parser = from_working_dir)]
    pub rejected: Option<PathBuf>,
    /// Also write a snapshot at this wall-clock interval during the run (10s, 1m, …).
    #[arg(long, value_name = "DURATION")]
    pub snapshot_interval: Option<String>,
    /// Also write Parquet files next to the Arrow files.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub parquet: bool,
}

/// The flags of `[run]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunFlags {
    /// Stop with an error at the first bad record.
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub strict: bool,
    /// Number of timely worker threads.
    #[arg(short, long, value_name = "N")]
    pub workers: Option<usize>,
    /// Events per logical time.
    #[arg(long, value_name = "N")]
    pub epoch_events: Option<usize>,
}

/// Options of `stepstone serve`: those of `stepstone run` (inputs are optional), plus the
/// servers' addresses and the event log.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// The pipeline, as for `stepstone run`.
    #[command(flatten)]
    pub run: RunArgs,
    /// `[server]` flags.
    #[command(flatten)]
    pub server: ServerFlags,
    /// The `[input]` flag of serve alone.
    #[command(flatten)]
    pub follow: FollowFlag,
    /// `[log]` flags.
    #[command(flatten)]
    pub log: LogFlags,
}

/// The flags of `[server]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServerFlags {
    /// HTTP address for ingest, subscriptions, lookups and metrics [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Arrow Flight address [default: 127.0.0.1:8815].
    #[arg(long, value_name = "ADDR")]
    pub flight_listen: Option<String>,
}

/// `follow` of `[input]`, a flag of `stepstone serve` only.
#[derive(Debug, Default, Args, Serialize)]
pub struct FollowFlag {
    /// Keep reading the input files as they grow (JSON Lines and CSV).
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub follow: bool,
}

/// The flags of `[log]`.
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogFlags {
    /// The durable event log's directory [default: log in the output directory].
    #[arg(long = "log-dir", value_name = "DIR", value_parser = from_working_dir)]
    #[serde(rename = "dir")]
    pub log_dir: Option<PathBuf>,
    /// When the log is forced to disk: `batch` (before acknowledging) or a duration such as
    /// `100ms` [default: batch].
    #[arg(long, value_name = "POLICY")]
    pub fsync: Option<String>,
    /// Run without the durable event log: a restart loses what HTTP ingest had taken.
    #[arg(long, conflicts_with_all = ["log_dir", "fsync"])]
    #[serde(rename = "enabled", skip_serializing_if = "is_false", serialize_with = "negated")]
    pub no_log: bool,
}

/// One `--map` flag: its FIELD=COLUMN pairs.
#[derive(Clone, Debug)]
pub struct MapSpec(Vec<(String, String)>);

impl RunArgs {
    /// The pipeline of `stepstone run` these arguments describe.
    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        Ok(Pipeline::running(self.layers()?.settings()?)?)
    }

    /// The layers these arguments describe: the built-in defaults, the config file if any, the
    /// environment, and the flags.
    fn layers(&self) -> anyhow::Result<Layers> {
        let mut layers = Layers::defaults();
        if let Some(path) = &self.config {
            layers = layers.file(path)?;
        }
        let flags = Sections { input: &self.input, journeys: &self.journeys, output: &self.output, run: &self.run };
        let added = Added { input: Personal { personal: &self.input.personal }, segments: &self.segments };
        Ok(layers.env().merge("the flags", &flags).extend("the flags", &added))
    }
}

impl ServeArgs {
    /// The pipeline of `stepstone serve` these arguments describe.
    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        let flags = ServeSections { input: &self.follow, server: &self.server, log: &self.log };
        let settings = self.run.layers()?.merge("the flags", &flags).settings()?;
        Ok(Pipeline::serving(settings)?)
    }
}

/// The sections the flags of `stepstone run` set.
#[derive(Serialize)]
struct Sections<'a> {
    input: &'a InputFlags,
    journeys: &'a JourneyFlags,
    output: &'a OutputFlags,
    run: &'a RunFlags,
}

/// The sections the flags of `stepstone serve` alone set.
#[derive(Serialize)]
struct ServeSections<'a> {
    input: &'a FollowFlag,
    server: &'a ServerFlags,
    log: &'a LogFlags,
}

/// The list entries the flags add.
#[derive(Serialize)]
struct Added<'a> {
    input: Personal<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    segments: &'a [SegmentSettings],
}

/// The personal columns the flags add.
#[derive(Serialize)]
struct Personal<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    personal: &'a [String],
}

/// Parses `--segment NAME=RULE`.
fn segment(spec: &str) -> anyhow::Result<SegmentSettings> {
    let (name, rule) = spec.split_once('=').with_context(|| format!("expected NAME=RULE, got {spec:?}"))?;
    Ok(SegmentSettings { name: name.trim().to_owned(), rule: rule.trim().to_owned() })
}

/// Parses `--map FIELD=COLUMN,…`.
fn map_spec(spec: &str) -> anyhow::Result<MapSpec> {
    let pairs = Mapping::pairs(spec)?;
    Ok(MapSpec(pairs.into_iter().map(|(field, column)| (field.to_owned(), column.to_owned())).collect()))
}

/// A path given as a flag that the pipeline would otherwise resolve against the output
/// directory, made absolute against the working directory (`-` stays stdout).
fn from_working_dir(path: &str) -> anyhow::Result<PathBuf> {
    if path == "-" {
        return Ok(PathBuf::from(path));
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    Ok(cwd.join(path))
}

/// Serializes the `--map` flags as one table of field = column, later flags winning.
fn map_table<S: Serializer>(specs: &[MapSpec], serializer: S) -> Result<S::Ok, S::Error> {
    let table: std::collections::BTreeMap<&str, &str> =
        specs.iter().flat_map(|spec| &spec.0).map(|(field, column)| (field.as_str(), column.as_str())).collect();
    table.serialize(serializer)
}

/// Serializes a switch that turns a setting off.
fn negated<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(!value)
}

/// Whether a switch is unset, so that it sets nothing.
fn is_false(value: &bool) -> bool {
    !value
}
