//! Context-delta writer: reports each logical time's journey-row and segment-membership changes
//! as JSON Lines, to a file or to standard output.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use stepstone_dataflows::event::{JourneyId, micros_to_value};
use stepstone_dataflows::journeys::JourneyRow;

use super::tables::{Changes, MembershipKey};

/// Writes [`Changes`] as JSON Lines, one line per changed journey row or membership.
///
/// A journey line is `{"time", "type": "journey", "customer", "journey_key", "diff",
/// "first_time", "last_time", "events", "sessions", "session_start", "session_events", "path",
/// "channels", "channel_events", "converted", "conversions", "last_conversion_time", "value"}`
/// with times as RFC 3339 strings (milliseconds, `Z`); a membership line is `{"time", "type":
/// "segment", "segment", "customer", "journey_key", "diff"}`. Within one time, all lines with a
/// negative `diff` come before those with a positive one. Output is buffered until
/// [`DeltaWriter::flush`].
pub struct DeltaWriter {
    /// Where the lines go.
    out: BufWriter<Box<dyn Write + Send>>,
    /// A description of the destination, for error messages.
    target: PathBuf,
}

impl std::fmt::Debug for DeltaWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaWriter").field("target", &self.target).finish_non_exhaustive()
    }
}

/// A journey-row line.
#[derive(Serialize)]
struct JourneyLine<'a> {
    time: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    customer: &'a str,
    journey_key: Option<&'a str>,
    diff: i64,
    first_time: String,
    last_time: String,
    events: u64,
    sessions: u64,
    session_start: String,
    session_events: u64,
    path: &'a [String],
    channels: Vec<&'a str>,
    channel_events: BTreeMap<&'a str, u64>,
    converted: bool,
    conversions: u64,
    last_conversion_time: Option<String>,
    value: f64,
}

/// A segment-membership line.
#[derive(Serialize)]
struct SegmentLine<'a> {
    time: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    segment: &'a str,
    customer: &'a str,
    journey_key: Option<&'a str>,
    diff: i64,
}

impl DeltaWriter {
    /// A writer to the file `path` (created or truncated), or to standard output for `-`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path).with_context(|| format!("creating the delta file {}", path.display()))?)
        };
        Ok(DeltaWriter { out: BufWriter::new(out), target: path.to_owned() })
    }

    /// Writes the lines of `changes`: removals (journeys, then memberships), then insertions.
    pub fn write(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let time = changes.time;
        let is_removal = |diff: i64| diff < 0;
        for removals in [true, false] {
            for (row, diff) in changes.journeys.iter().filter(|(_, diff)| is_removal(*diff) == removals) {
                self.line(&journey_line(time, row, *diff)?)?;
            }
            for (key, diff) in changes.memberships.iter().filter(|(_, diff)| is_removal(*diff) == removals) {
                self.line(&segment_line(time, key, *diff))?;
            }
        }
        Ok(())
    }

    /// Flushes the buffered lines to the destination.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().with_context(|| format!("flushing the deltas to {}", self.target.display()))
    }

    /// Writes one JSON line.
    fn line(&mut self, line: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, line)
            .and_then(|()| self.out.write_all(b"\n").map_err(serde_json::Error::io))
            .with_context(|| format!("writing the deltas to {}", self.target.display()))
    }
}

/// The journey key of `journey` as a string slice.
fn key(journey: &JourneyId) -> Option<&str> {
    journey.key.as_deref()
}

/// A time in milliseconds since the epoch as RFC 3339 with milliseconds and `Z`.
fn rfc3339(millis: i64) -> anyhow::Result<String> {
    DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .with_context(|| format!("time {millis} ms is out of range"))
}

/// The line of a changed journey row.
fn journey_line(time: u64, row: &JourneyRow, diff: i64) -> anyhow::Result<JourneyLine<'_>> {
    let context = || format!("delta of journey {:?}", row.journey);
    Ok(JourneyLine {
        time,
        kind: "journey",
        customer: &row.journey.customer,
        journey_key: key(&row.journey),
        diff,
        first_time: rfc3339(row.first_time).with_context(context)?,
        last_time: rfc3339(row.last_time).with_context(context)?,
        events: row.events,
        sessions: row.sessions,
        session_start: rfc3339(row.session_start).with_context(context)?,
        session_events: row.session_events,
        path: &row.path,
        channels: row.channels().collect(),
        channel_events: row.channel_events.iter().map(|(c, n)| (c.as_str(), *n)).collect(),
        converted: row.converted(),
        conversions: row.conversions,
        last_conversion_time: row.last_conversion_time.map(rfc3339).transpose().with_context(context)?,
        value: micros_to_value(row.value),
    })
}

/// The line of a changed segment membership.
fn segment_line(time: u64, (segment, journey): &MembershipKey, diff: i64) -> SegmentLine<'_> {
    SegmentLine { time, kind: "segment", segment, customer: &journey.customer, journey_key: key(journey), diff }
}
