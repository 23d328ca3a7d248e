//! Pipeline configuration: the TOML config file, the command-line overrides, and their merge
//! into one checked [`Pipeline`] that the engine runs.
//!
//! Paths in a config file are relative to the file's directory; paths given as flags are
//! relative to the working directory. Flags override the file, field by field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use stepstone_dataflows::event::{Params, SessionRule};
use stepstone_dataflows::rules::Rule;
use stepstone_dataflows::segments::SegmentDef;

use crate::journal;
use crate::source::lateness::{EventTime, LatePolicy};
use crate::source::{Conversion, DecodeOptions, Field, Format, Mapping, RecordLimits, TimeFormat};

/// The default number of events per logical time (epoch) when reading files with periodic
/// snapshots. Without them a run is one logical time: every time's end recomputes the rows of
/// the journeys it touched, which for a bulk load is nearly every journey each time.
pub const DEFAULT_EPOCH_EVENTS: usize = 1_000_000;

/// A pipeline config file, as written (see the README's config reference).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// Where events come from and how their columns map to event fields.
    #[serde(default)]
    pub input: InputSection,
    /// How journeys are cut and what counts as a conversion.
    #[serde(default)]
    pub journeys: JourneySection,
    /// Where and how often results are written.
    #[serde(default)]
    pub output: OutputSection,
    /// Execution settings.
    #[serde(default)]
    pub run: RunSection,
    /// The segment definitions, in order.
    #[serde(default)]
    pub segments: Vec<SegmentSection>,
    /// The live service (`stepstone serve`).
    #[serde(default)]
    pub server: ServerSection,
    /// Limits that keep bad or hostile input from exhausting the engine.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The durable event log of the live service.
    #[serde(default)]
    pub log: LogSection,
}

/// `[log]`: the durable event log of `stepstone serve`, which every accepted ingest request
/// is appended to before it is acknowledged and which a restarted service replays.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogSection {
    /// Whether ingest is logged; default true. Without the log a restart loses what HTTP
    /// ingest had taken.
    pub enabled: Option<bool>,
    /// The log's directory; default `log` in the output directory (relative paths are too).
    pub dir: Option<PathBuf>,
    /// `batch` (default: forced to disk before a logical time's requests are acknowledged) or
    /// a duration (`100ms`: acknowledged once written, forced to disk that often).
    pub fsync: Option<String>,
    /// Bytes of a log segment before the next is begun; default 64 MiB.
    pub segment_bytes: Option<u64>,
    /// Bytes appended since the last checkpoint that start a compaction; default 256 MiB.
    pub checkpoint_bytes: Option<u64>,
}

/// `[limits]`: how large a record may be and how many segments a pipeline may define. (The
/// live service's limits, `max-body-bytes` and `max-subscribers`, are under `[server]`.)
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsSection {
    /// The largest record in bytes (a JSON line or object, a CSV row); default 1 MiB.
    pub max_record_bytes: Option<usize>,
    /// The most fields of one record (JSON object keys, CSV columns); default 1000.
    pub max_fields: Option<usize>,
    /// The most segments; default 256.
    pub max_segments: Option<usize>,
}

/// `[server]`: the live service of `stepstone serve`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSection {
    /// HTTP address (ingest, subscriptions, lookups, metrics); default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Arrow Flight address; default `127.0.0.1:8815`.
    pub flight_listen: Option<String>,
    /// Bearer token required by every `/v1` endpoint and by Flight; the `STEPSTONE_TOKEN`
    /// environment variable is used when this is absent. No token: no authentication.
    pub token: Option<String>,
    /// Largest accepted ingest body, in bytes; default 16 MiB.
    pub max_body_bytes: Option<usize>,
    /// Ingest batches queued for the engine before ingest answers 429; default 256.
    pub ingest_queue: Option<usize>,
    /// Logical times a subscriber may fall behind before it is told `lagged` and closed; default 1024.
    pub subscriber_buffer: Option<usize>,
    /// Most subscribers at once; default 1024.
    pub max_subscribers: Option<usize>,
    /// Longest a logical time stays open while ingest keeps arriving; default `5ms`.
    pub epoch_interval: Option<String>,
}

/// `[input]`: the event sources.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InputSection {
    /// Input files, read in order; `-` is stdin.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// `jsonl`, `csv`, `parquet` or `arrow`; detected from each file's extension when absent.
    pub format: Option<String>,
    /// `auto`, `rfc3339`, `epoch_s` or `epoch_ms`.
    pub time_format: Option<String>,
    /// Field → column name (`customer = "user_id"`); unmapped fields use their own name.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// A column whose value splits a customer's events into parallel journeys.
    pub journey_key: Option<String>,
    /// Keep reading the input files as they grow (`stepstone serve` only; JSON Lines and CSV).
    pub follow: Option<bool>,
    /// How far behind its source's latest event time an event of an unbounded input may be
    /// and still be on time (`10m`); default 10 minutes.
    pub allowed_lateness: Option<String>,
    /// `reject` (default) or `accept`: what becomes of late events.
    pub late: Option<String>,
    /// Columns holding personal data (`["email", "phone"]`): they may not feed any field whose
    /// values the outputs show, so they never reach a snapshot or a delta.
    #[serde(default)]
    pub personal: Vec<String>,
}

/// `[journeys]`: sessions, paths and conversions.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JourneySection {
    /// Inactivity gap that ends a session (`30m`, `1h 30m`), or `none` for one session per journey.
    pub session_gap: Option<String>,
    /// How many of the last contact points a journey keeps in its path.
    pub path_length: Option<usize>,
    /// `kind=VALUE|VALUE…` or `contact_point=VALUE|VALUE…`.
    pub conversion: Option<String>,
}

/// `[output]`: snapshots, deltas and dead letters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputSection {
    /// The directory of the Arrow snapshots (and of relative `deltas` / `rejected` paths).
    pub dir: Option<PathBuf>,
    /// Wall-clock time between snapshots during a run (`10s`, `1m`); one is always written at the end.
    pub snapshot_interval: Option<String>,
    /// Whether to write Parquet files alongside the Arrow files.
    pub parquet: Option<bool>,
    /// The context-delta file (JSON Lines), relative to `dir`; `-` is stdout.
    pub deltas: Option<PathBuf>,
    /// The dead-letter file (JSON Lines), relative to `dir`.
    pub rejected: Option<PathBuf>,
}

/// `[run]`: execution settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunSection {
    /// Number of timely worker threads.
    pub workers: Option<usize>,
    /// Stop with an error at the first bad record instead of rejecting it.
    pub strict: Option<bool>,
    /// Events per logical time when reading files.
    pub epoch_events: Option<usize>,
}

/// `[[segments]]`: one named segment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SegmentSection {
    /// The segment's name.
    pub name: String,
    /// Its membership rule, e.g. `events >= 3 and not converted`.
    pub rule: String,
}

impl ConfigFile {
    /// Reads and parses the config file at `path`, resolving its relative paths against the
    /// file's directory.
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        let mut config: ConfigFile =
            toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve =
            |p: &Path| if p == Path::new("-") || p.is_absolute() { p.to_path_buf() } else { normalize(&base.join(p)) };
        config.input.paths = config.input.paths.iter().map(|p| resolve(p)).collect();
        config.output.dir = Some(resolve(config.output.dir.as_deref().unwrap_or(Path::new("out"))));
        Ok(config)
    }

    /// Overrides this config with the values set in `flags` (a config built from command-line
    /// flags, whose paths are relative to the working directory).
    pub fn override_with(&mut self, flags: ConfigFile) {
        fn set<T>(target: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *target = value;
            }
        }
        if !flags.input.paths.is_empty() {
            self.input.paths = flags.input.paths;
        }
        set(&mut self.input.format, flags.input.format);
        set(&mut self.input.time_format, flags.input.time_format);
        self.input.map.extend(flags.input.map);
        set(&mut self.input.journey_key, flags.input.journey_key);
        set(&mut self.input.allowed_lateness, flags.input.allowed_lateness);
        set(&mut self.input.late, flags.input.late);
        self.input.personal.extend(flags.input.personal);
        set(&mut self.journeys.session_gap, flags.journeys.session_gap);
        set(&mut self.journeys.path_length, flags.journeys.path_length);
        set(&mut self.journeys.conversion, flags.journeys.conversion);
        set(&mut self.output.dir, flags.output.dir);
        set(&mut self.output.snapshot_interval, flags.output.snapshot_interval);
        set(&mut self.output.parquet, flags.output.parquet);
        set(&mut self.output.deltas, flags.output.deltas);
        set(&mut self.output.rejected, flags.output.rejected);
        set(&mut self.run.workers, flags.run.workers);
        set(&mut self.run.strict, flags.run.strict);
        set(&mut self.run.epoch_events, flags.run.epoch_events);
        self.segments.extend(flags.segments);
        set(&mut self.input.follow, flags.input.follow);
        set(&mut self.server.listen, flags.server.listen);
        set(&mut self.server.flight_listen, flags.server.flight_listen);
        set(&mut self.server.token, flags.server.token);
        set(&mut self.server.max_body_bytes, flags.server.max_body_bytes);
        set(&mut self.server.ingest_queue, flags.server.ingest_queue);
        set(&mut self.server.subscriber_buffer, flags.server.subscriber_buffer);
        set(&mut self.server.max_subscribers, flags.server.max_subscribers);
        set(&mut self.server.epoch_interval, flags.server.epoch_interval);
        set(&mut self.limits.max_record_bytes, flags.limits.max_record_bytes);
        set(&mut self.limits.max_fields, flags.limits.max_fields);
        set(&mut self.limits.max_segments, flags.limits.max_segments);
        set(&mut self.log.enabled, flags.log.enabled);
        set(&mut self.log.dir, flags.log.dir);
        set(&mut self.log.fsync, flags.log.fsync);
        set(&mut self.log.segment_bytes, flags.log.segment_bytes);
        set(&mut self.log.checkpoint_bytes, flags.log.checkpoint_bytes);
    }
}

/// Fails if a `personal` column feeds a field whose values the outputs show: the ids
/// (customer, device, previous id), the contact point, the channel or the journey key.
fn check_personal(personal: &[String], mapping: &Mapping, journey_key: Option<&str>) -> anyhow::Result<()> {
    let shown = [Field::Customer, Field::Device, Field::PreviousId, Field::ContactPoint, Field::Channel]
        .into_iter()
        .filter_map(|field| Some((field.name(), mapping.column(field)?)))
        .chain(journey_key.map(|column| ("journey key", column)));
    for (field, column) in shown {
        if personal.iter().any(|p| p == column) {
            bail!(
                "column {column:?} is marked personal but feeds the {field}, whose values the snapshots and deltas \
                 show; map a pseudonymous column instead, or unmark it"
            );
        }
    }
    Ok(())
}

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
    /// The live service's settings.
    pub server: ServerSettings,
    /// The durable event log of the live service; `None` when it is off.
    pub log: Option<journal::Settings>,
}

/// The checked settings of the live service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// HTTP address.
    pub listen: String,
    /// Arrow Flight address.
    pub flight_listen: String,
    /// The bearer token every `/v1` endpoint and Flight require, if any.
    pub token: Option<String>,
    /// Largest accepted ingest body, in bytes.
    pub max_body_bytes: usize,
    /// Ingest batches queued for the engine before ingest answers 429.
    pub ingest_queue: usize,
    /// Logical times a subscriber may fall behind before it is closed as lagged.
    pub subscriber_buffer: usize,
    /// Most subscribers at once.
    pub max_subscribers: usize,
    /// Longest a logical time stays open while ingest keeps arriving.
    pub epoch_interval: Duration,
}

impl ServerSettings {
    /// The settings of `section`, defaults filled in; the token falls back to `env_token`.
    fn from_section(section: ServerSection, env_token: Option<String>) -> anyhow::Result<ServerSettings> {
        let positive = |value: Option<usize>, default: usize, name: &str| -> anyhow::Result<usize> {
            match value.unwrap_or(default) {
                0 => bail!("server {name} must be at least 1"),
                n => Ok(n),
            }
        };
        let epoch_interval = match section.epoch_interval.as_deref() {
            Some(text) => humantime::parse_duration(text).with_context(|| format!("server epoch-interval {text:?}"))?,
            None => Duration::from_millis(5),
        };
        Ok(ServerSettings {
            listen: section.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            flight_listen: section.flight_listen.unwrap_or_else(|| "127.0.0.1:8815".to_owned()),
            token: section.token.or(env_token).filter(|t| !t.is_empty()),
            max_body_bytes: positive(section.max_body_bytes, 16 << 20, "max-body-bytes")?,
            ingest_queue: positive(section.ingest_queue, 256, "ingest-queue")?,
            subscriber_buffer: positive(section.subscriber_buffer, 1024, "subscriber-buffer")?,
            max_subscribers: positive(section.max_subscribers, 1024, "max-subscribers")?,
            epoch_interval,
        })
    }
}

impl TryFrom<ConfigFile> for Pipeline {
    type Error = anyhow::Error;

    /// A pipeline for `stepstone run`, which needs at least one input.
    fn try_from(config: ConfigFile) -> anyhow::Result<Pipeline> {
        if config.input.paths.is_empty() {
            bail!("no input: give --input FILE (or `-` for stdin), or `paths` under [input] in the config file");
        }
        Pipeline::build(config)
    }
}

impl Pipeline {
    /// A pipeline for `stepstone serve`, whose events may all come over HTTP.
    pub fn serving(config: ConfigFile) -> anyhow::Result<Pipeline> {
        Pipeline::build(config)
    }

    fn build(config: ConfigFile) -> anyhow::Result<Pipeline> {
        let ConfigFile { input, journeys, output, run, segments, server, limits, log } = config;
        let positive = |value: Option<usize>, default: usize, name: &str| -> anyhow::Result<usize> {
            match value.unwrap_or(default) {
                0 => bail!("limits {name} must be at least 1"),
                n => Ok(n),
            }
        };
        let max_segments = positive(limits.max_segments, 256, "max-segments")?;
        if segments.len() > max_segments {
            bail!("{} segments are defined, more than max-segments ({max_segments}) under [limits]", segments.len());
        }
        let limits = RecordLimits {
            max_bytes: positive(limits.max_record_bytes, RecordLimits::default().max_bytes, "max-record-bytes")?,
            max_fields: positive(limits.max_fields, RecordLimits::default().max_fields, "max-fields")?,
        };
        let inputs = input
            .paths
            .iter()
            .map(|p| p.to_str().map(str::to_owned).with_context(|| format!("input path {} is not UTF-8", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let format = input.format.as_deref().map(str::parse::<Format>).transpose().map_err(anyhow::Error::msg)?;
        let time_format = input
            .time_format
            .as_deref()
            .map(str::parse::<TimeFormat>)
            .transpose()
            .map_err(anyhow::Error::msg)?
            .unwrap_or_default();
        let mut mapping = Mapping::default();
        for (field, column) in &input.map {
            mapping.set(field, column).with_context(|| format!("input map: {field} = {column:?}"))?;
        }
        check_personal(&input.personal, &mapping, input.journey_key.as_deref())?;
        let conversion =
            journeys.conversion.as_deref().map(Conversion::parse).transpose().context("conversion rule")?;
        let session_mapped = input.map.contains_key(Field::Session.name());
        let session = match journeys.session_gap.as_deref() {
            Some(gap) => parse_session_gap(gap)?,
            None if session_mapped => SessionRule::ById,
            None => Params::default().session,
        };
        let path_len = journeys.path_length.unwrap_or(Params::default().path_len);
        if path_len == 0 {
            bail!("path-length must be at least 1");
        }
        let mut names = std::collections::BTreeSet::new();
        let segments = segments
            .into_iter()
            .map(|s| {
                if s.name.trim().is_empty() {
                    bail!("a segment has an empty name");
                }
                if !names.insert(s.name.clone()) {
                    bail!("segment {:?} is defined twice", s.name);
                }
                let rule = Rule::parse(&s.rule).with_context(|| format!("segment {:?}: rule {:?}", s.name, s.rule))?;
                Ok(SegmentDef { name: s.name, rule })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out_dir = output.dir.unwrap_or_else(|| PathBuf::from("out"));
        let in_dir = |p: PathBuf| if p == Path::new("-") || p.is_absolute() { p } else { out_dir.join(p) };
        let deltas = output.deltas.map(in_dir);
        let rejected = in_dir(output.rejected.unwrap_or_else(|| PathBuf::from("rejected.jsonl")));
        let snapshot_interval = output
            .snapshot_interval
            .as_deref()
            .map(|s| humantime::parse_duration(s).with_context(|| format!("snapshot-interval {s:?}")))
            .transpose()?;
        let workers = run.workers.unwrap_or(1);
        if workers == 0 {
            bail!("workers must be at least 1");
        }
        let events_per_time = run.epoch_events.unwrap_or(match snapshot_interval {
            Some(_) => DEFAULT_EPOCH_EVENTS,
            None => usize::MAX,
        });
        if events_per_time == 0 {
            bail!("epoch-events must be at least 1");
        }
        let allowed_lateness_ms = match input.allowed_lateness.as_deref() {
            None => EventTime::default().allowed_lateness_ms,
            Some(text) => {
                let duration = humantime::parse_duration(text)
                    .with_context(|| format!("allowed-lateness {text:?}: expected a duration such as 10m"))?;
                i64::try_from(duration.as_millis()).context("allowed-lateness is too long")?
            }
        };
        let late = match input.late.as_deref() {
            None => LatePolicy::default(),
            Some(name) => {
                LatePolicy::parse(name).with_context(|| format!("late {name:?}: expected \"reject\" or \"accept\""))?
            }
        };
        let event_time = EventTime { allowed_lateness_ms, late };
        let log = match log.enabled.unwrap_or(true) {
            false => None,
            true => Some(journal::Settings {
                dir: in_dir(log.dir.unwrap_or_else(|| PathBuf::from("log"))),
                fsync: log.fsync.as_deref().map_or(Ok(journal::Fsync::Batch), journal::Fsync::parse)?,
                segment_bytes: log.segment_bytes.unwrap_or(64 << 20).max(1),
                checkpoint_bytes: log.checkpoint_bytes.unwrap_or(256 << 20).max(1),
            }),
        };
        Ok(Pipeline {
            inputs,
            format,
            decode: DecodeOptions {
                mapping,
                time_format,
                conversion,
                journey_key: input.journey_key,
                follow: None,
                limits,
            },
            params: Params { session, path_len },
            segments,
            out_dir,
            deltas,
            rejected,
            snapshot_interval,
            parquet: output.parquet.unwrap_or(false),
            workers,
            strict: run.strict.unwrap_or(false),
            events_per_time,
            follow: input.follow.unwrap_or(false),
            event_time,
            server: ServerSettings::from_section(server, std::env::var("STEPSTONE_TOKEN").ok())?,
            log,
        })
    }
}

/// `path` with `.` components and `dir/..` pairs removed, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// Parses a session gap: a duration such as `30m` or `1h 30m`, or `none` for never splitting.
pub fn parse_session_gap(text: &str) -> anyhow::Result<SessionRule> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(SessionRule::Never);
    }
    let gap = humantime::parse_duration(text.trim())
        .with_context(|| format!("session gap {text:?}: expected a duration such as 30m or 1h, or none"))?;
    let millis = i64::try_from(gap.as_millis()).context("session gap is too long")?;
    Ok(SessionRule::Gap(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(toml_text: &str) -> anyhow::Result<Pipeline> {
        let config: ConfigFile = toml::from_str(toml_text)?;
        Pipeline::try_from(config)
    }

    #[test]
    fn config_paths_are_normalized() {
        assert_eq!(normalize(Path::new("data/pipelines/../../out/demo")), PathBuf::from("out/demo"));
        assert_eq!(normalize(Path::new("../a/./b")), PathBuf::from("../a/b"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn session_gaps() {
        assert_eq!(parse_session_gap("30m").unwrap(), SessionRule::Gap(1_800_000));
        assert_eq!(parse_session_gap("1h 30m").unwrap(), SessionRule::Gap(5_400_000));
        assert_eq!(parse_session_gap("None").unwrap(), SessionRule::Never);
        assert!(parse_session_gap("soon").is_err());
    }

    #[test]
    fn defaults_and_mapping() {
        let p = pipeline(
            r#"
            [input]
            paths = ["events.csv"]
            map = { customer = "case:concept:name", "contact_point" = "concept name" }
            "#,
        )
        .unwrap();
        assert_eq!(p.params, Params::default());
        assert_eq!(p.decode.mapping.column(Field::Customer), Some("case:concept:name"));
        assert_eq!(p.decode.mapping.column(Field::ContactPoint), Some("concept name"));
        assert_eq!(p.rejected, PathBuf::from("out/rejected.jsonl"));
        assert_eq!(p.workers, 1);
    }

    #[test]
    fn a_mapped_session_column_decides_sessions_unless_a_gap_is_given() {
        let p = pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { session = \"sid\" }").unwrap();
        assert_eq!(p.params.session, SessionRule::ById);
        let p =
            pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { session = \"sid\" }\n[journeys]\nsession-gap = \"none\"")
                .unwrap();
        assert_eq!(p.params.session, SessionRule::Never);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err =
            pipeline("[input]\npaths = [\"a.jsonl\"]\n[[segments]]\nname = \"x\"\nrule = \"events >=\"").unwrap_err();
        assert!(format!("{err:#}").contains("segment \"x\""), "{err:#}");
        let err = pipeline("[input]\npaths = [\"a.jsonl\"]\nmap = { user = \"u\" }").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field \"user\""), "{err:#}");
        assert!(toml::from_str::<ConfigFile>("[input]\npath = \"a\"").is_err());
        assert!(pipeline("").unwrap_err().to_string().contains("no input"));
    }

    #[test]
    fn flags_override_the_file() {
        let mut config: ConfigFile =
            toml::from_str("[input]\npaths = [\"a.jsonl\"]\n[journeys]\nsession-gap = \"10m\"\npath-length = 3")
                .unwrap();
        let mut flags = ConfigFile::default();
        flags.journeys.session_gap = Some("none".into());
        flags.output.dir = Some("elsewhere".into());
        config.override_with(flags);
        let p = Pipeline::try_from(config).unwrap();
        assert_eq!(p.params, Params { session: SessionRule::Never, path_len: 3 });
        assert_eq!(p.out_dir, PathBuf::from("elsewhere"));
    }
}
