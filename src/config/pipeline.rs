//! The checked pipeline: [`Settings`] turned into what the sources, the engine, the sinks and the
//! live service take, after every check that needs more than one key (mappings, rules, personal
//! columns, limits of at least 1).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stepstone_dataflows::event::Params;
use stepstone_dataflows::rules::Rule;
use stepstone_dataflows::segments::SegmentDef;

use super::ConfigError;
use super::settings::{ServerSettings, Settings};
use crate::journal;
use crate::source::lateness::EventTime;
use crate::source::{Conversion, DecodeOptions, Field, Format, Mapping, RecordLimits};

/// A checked, ready-to-run pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Input paths in reading order; `-` is stdin.
    pub inputs: Vec<String>,
    /// The input format, or `None` to detect it per file.
    pub format: Option<Format>,
    /// How records are decoded.
    pub decode: DecodeOptions,
    /// Session rule and path length.
    pub params: Params,
    /// The segments, in config order.
    pub segments: Vec<SegmentDef>,
    /// The snapshot directory.
    pub out_dir: PathBuf,
    /// The context-delta file (`-` for stdout), if deltas are written.
    pub deltas: Option<PathBuf>,
    /// The dead-letter file.
    pub rejected: PathBuf,
    /// Wall-clock time between snapshots during a run, if any.
    pub snapshot_interval: Option<Duration>,
    /// Whether Parquet files are written alongside the Arrow files.
    pub parquet: bool,
    /// Number of timely workers.
    pub workers: usize,
    /// Whether the first bad record stops the run.
    pub strict: bool,
    /// Events per logical time.
    pub events_per_time: usize,
    /// Whether input files are followed as they grow (serve mode).
    pub follow: bool,
    /// The watermark settings of unbounded inputs.
    pub event_time: EventTime,
    /// The live service's settings, the token taken from `STEPSTONE_TOKEN` when not set.
    pub server: ServerSettings,
    /// The durable event log of the live service; `None` when it is off.
    pub log: Option<journal::Settings>,
}

impl Pipeline {
    /// A pipeline for `stepstone run`, which needs at least one input.
    pub fn running(settings: Settings) -> Result<Pipeline, ConfigError> {
        if settings.input.paths.is_empty() {
            return Err(ConfigError::NoInput);
        }
        Pipeline::serving(settings)
    }

    /// A pipeline for `stepstone serve`, whose events may all come over HTTP.
    pub fn serving(settings: Settings) -> Result<Pipeline, ConfigError> {
        let Settings { input, journeys, output, run, segments, server, limits, log } = settings;
        let max_segments = at_least_one(limits.max_segments, "limits", "max-segments")?;
        if segments.len() > max_segments {
            return Err(ConfigError::TooManySegments { defined: segments.len(), max: max_segments });
        }
        let limits = RecordLimits {
            max_bytes: at_least_one(bytes(limits.max_record_bytes), "limits", "max-record-bytes")?,
            max_fields: at_least_one(limits.max_fields, "limits", "max-fields")?,
        };
        let inputs = input
            .paths
            .iter()
            .map(|path| path.to_str().map(str::to_owned).ok_or_else(|| ConfigError::NotUtf8 { path: path.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        let mut mapping = Mapping::default();
        for (field, column) in &input.map {
            mapping.set(field, column).map_err(|source| ConfigError::Map {
                field: field.clone(),
                column: column.clone(),
                source,
            })?;
        }
        check_personal(&input.personal, &mapping, input.journey_key.as_deref())?;
        let conversion = journeys.conversion.as_deref().map(Conversion::parse).transpose()?;
        let path_len = at_least_one(journeys.path_length, "journeys", "path-length")?;
        let mut names = BTreeSet::new();
        let segments = segments
            .into_iter()
            .map(|segment| {
                if segment.name.trim().is_empty() {
                    return Err(ConfigError::UnnamedSegment);
                }
                if !names.insert(segment.name.clone()) {
                    return Err(ConfigError::SegmentTwice { name: segment.name });
                }
                let rule = Rule::parse(&segment.rule).map_err(|source| ConfigError::Rule {
                    segment: segment.name.clone(),
                    rule: segment.rule.clone(),
                    source,
                })?;
                Ok(SegmentDef { name: segment.name, rule })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out_dir = output.dir;
        let in_dir =
            |path: PathBuf| if path == Path::new("-") || path.is_absolute() { path } else { out_dir.join(path) };
        let deltas = output.deltas.map(in_dir);
        let rejected = in_dir(output.rejected);
        let workers = at_least_one(run.workers, "run", "workers")?;
        let events_per_time = at_least_one(run.epoch_events, "run", "epoch-events")?;
        let allowed_lateness_ms = i64::try_from(input.allowed_lateness.as_millis())
            .map_err(|_| ConfigError::invalid("input", "allowed-lateness", "is too long"))?;
        let event_time = EventTime { allowed_lateness_ms, late: input.late };
        let log = log.enabled.then(|| journal::Settings {
            dir: in_dir(log.dir),
            fsync: log.fsync,
            segment_bytes: log.segment_bytes.as_u64().max(1),
            checkpoint_bytes: log.checkpoint_bytes.as_u64().max(1),
        });
        for (value, key) in [
            (bytes(server.max_body_bytes), "max-body-bytes"),
            (server.ingest_queue, "ingest-queue"),
            (server.subscriber_buffer, "subscriber-buffer"),
            (server.max_subscribers, "max-subscribers"),
        ] {
            at_least_one(value, "server", key)?;
        }
        let token = server.token.or_else(|| std::env::var("STEPSTONE_TOKEN").ok()).filter(|t| !t.is_empty());
        Ok(Pipeline {
            inputs,
            format: input.format,
            decode: DecodeOptions {
                mapping,
                time_format: input.time_format,
                conversion,
                journey_key: input.journey_key,
                follow: None,
                limits,
            },
            params: Params { session: journeys.session_gap, path_len },
            segments,
            deltas,
            rejected,
            snapshot_interval: output.snapshot_interval,
            parquet: output.parquet,
            workers,
            strict: run.strict,
            events_per_time,
            follow: input.follow,
            event_time,
            server: ServerSettings { token, ..server },
            log,
            out_dir,
        })
    }
}

/// `value`, or an error naming `section` and `key` when it is 0.
fn at_least_one(value: usize, section: &'static str, key: &'static str) -> Result<usize, ConfigError> {
    match value {
        0 => Err(ConfigError::invalid(section, key, "must be at least 1")),
        n => Ok(n),
    }
}

/// A byte size as a length in memory (saturating on 32-bit machines).
fn bytes(size: bytesize::ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}

/// Fails if a `personal` column feeds a field whose values the outputs show: the ids
/// (customer, device, previous id), the contact point, the channel or the journey key.
fn check_personal(personal: &[String], mapping: &Mapping, journey_key: Option<&str>) -> Result<(), ConfigError> {
    let shown = [Field::Customer, Field::Device, Field::PreviousId, Field::ContactPoint, Field::Channel]
        .into_iter()
        .filter_map(|field| Some((field.name(), mapping.column(field)?)))
        .chain(journey_key.map(|column| ("journey key", column)));
    for (field, column) in shown {
        if personal.iter().any(|p| p == column) {
            return Err(ConfigError::PersonalShown { column: column.to_owned(), field });
        }
    }
    Ok(())
}
