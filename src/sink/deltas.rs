//! Context-delta writer: reports each logical time's journey-row and segment-membership changes
//! as JSON Lines, to a file or to standard output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use serde::{Serialize, Serializer};
use stepstone_dataflows::event::{Identity, micros_to_value};
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::symbols::{Names, Symbols};

use super::Error;
use super::tables::{Changes, MembershipKey};

/// Writes [`Changes`] as JSON Lines, one line per changed journey row or membership.
///
/// A journey line is `{"time", "type": "journey", "customer", "journey_key", "diff",
/// "first_time", "last_time", "events", "sessions", "session_start", "session_events", "path",
/// "channels", "channel_events", "converted", "conversions", "last_conversion_time", "value"}`
/// with times as RFC 3339 strings (milliseconds, `Z`); a membership line is `{"time", "type":
/// "segment", "segment", "customer", "journey_key", "diff"}`; both carry `"anonymous": true` when
/// the customer is an anonymous profile's device id. With identity stitching, an identity line
/// `{"time", "type": "identity", "identity", "device", "profile", "anonymous", "diff"}` says an
/// identity joined or left a profile. Names are resolved through the
/// shared [`Symbols`] table; `channels` and `channel_events` are sorted by channel name, `path`
/// is oldest first.
///
/// Within one time, all lines with a negative `diff` come before those with a positive one;
/// within each group, journey lines come first, sorted by `diff`, then by the resolved row
/// (customer name, journey key name with no key first, then the other fields), membership
/// lines follow, sorted by `diff`, then segment, customer and journey key name, then identity
/// lines, sorted by `diff`, profile and identity. The order thus
/// depends on names only, not on the order in which they were interned. Output is buffered until
/// [`DeltaWriter::flush`].
pub struct DeltaWriter {
    /// Where the lines go.
    out: BufWriter<Box<dyn Write + Send>>,
    /// A description of the destination, for error messages.
    target: PathBuf,
    /// The interned names the changes refer to.
    symbols: Arc<Symbols>,
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
    journey_key: Option<&'a str>,
    diff: i64,
    first_time: String,
    last_time: String,
    events: u64,
    sessions: u64,
    session_start: String,
    session_events: u64,
    path: &'a [&'a str],
    #[serde(serialize_with = "channel_names")]
    channels: &'a [(&'a str, u64)],
    #[serde(serialize_with = "channel_map")]
    channel_events: &'a [(&'a str, u64)],
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
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
    journey_key: Option<&'a str>,
    diff: i64,
}

/// An identity-profile line.
#[derive(Serialize)]
struct IdentityLine<'a> {
    time: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    identity: &'a str,
    device: bool,
    profile: &'a str,
    anonymous: bool,
    diff: i64,
}

/// A journey row with its names resolved. The fields are in the order of [`JourneyRow`]'s, so the
/// derived order is the rows' order by name.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NamedRow<'a> {
    customer: &'a str,
    anonymous: bool,
    journey_key: Option<&'a str>,
    first_time: i64,
    last_time: i64,
    events: u64,
    sessions: u64,
    session_start: i64,
    session_events: u64,
    /// Oldest first, as stored.
    path: Vec<&'a str>,
    /// Sorted by channel name.
    channel_events: Vec<(&'a str, u64)>,
    conversions: u64,
    last_conversion_time: Option<i64>,
    value: i64,
}

impl<'a> NamedRow<'a> {
    /// `row` with its names resolved through `names`.
    fn new(row: &JourneyRow, names: &'a Names<'_>) -> Self {
        let mut channel_events: Vec<(&str, u64)> =
            row.channel_events.iter().map(|&(channel, n)| (names.get(channel), n)).collect();
        channel_events.sort_unstable();
        NamedRow {
            customer: names.get(row.journey.customer),
            anonymous: row.journey.anonymous,
            journey_key: row.journey.key.map(|key| names.get(key)),
            first_time: row.first_time,
            last_time: row.last_time,
            events: row.events,
            sessions: row.sessions,
            session_start: row.session_start,
            session_events: row.session_events,
            path: row.path.iter().map(|&p| names.get(p)).collect(),
            channel_events,
            conversions: row.conversions,
            last_conversion_time: row.last_conversion_time,
            value: row.value,
        }
    }
}

/// A segment membership with its names resolved: `(segment, customer, anonymous, journey key)`,
/// ordered as the memberships by name.
type NamedMembership<'a> = (&'a str, &'a str, bool, Option<&'a str>);

impl DeltaWriter {
    /// A writer to the file `path` (created or truncated), or to standard output for `-`,
    /// resolving names through `symbols`.
    pub fn create(path: &Path, symbols: Arc<Symbols>) -> Result<Self, Error> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path).map_err(Error::io("creating the delta file", path))?)
        };
        Ok(DeltaWriter { out: BufWriter::new(out), target: path.to_owned(), symbols })
    }

    /// Writes the lines of `changes`: removals (journeys, then memberships), then insertions,
    /// each sorted by name (see [`DeltaWriter`]).
    ///
    pub fn write(&mut self, changes: &Changes) -> Result<(), Error> {
        let DeltaWriter { out, target, symbols } = self;
        for line in delta_lines(changes, &symbols.names())? {
            out.write_all(line.json.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(Error::io("writing the deltas to", target))?;
        }
        Ok(())
    }

    /// Flushes the buffered lines to the destination.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(Error::io("flushing the deltas to", &self.target))
    }
}

/// One context-delta line, with the names a subscriber filters on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaLine {
    /// The customer the line is about.
    pub customer: Arc<str>,
    /// The segment, for a membership line.
    pub segment: Option<Arc<str>>,
    /// The line as JSON (without the line end).
    pub json: String,
}

/// The lines of `changes` in the order [`DeltaWriter`] writes them, names resolved through
/// `names`.
pub fn delta_lines(changes: &Changes, names: &Names<'_>) -> Result<Vec<DeltaLine>, Error> {
    let time = changes.time;
    let mut journeys: Vec<(i64, NamedRow)> =
        changes.journeys.iter().map(|(row, diff)| (*diff, NamedRow::new(row, names))).collect();
    journeys.sort_unstable();
    let mut memberships: Vec<(i64, NamedMembership)> =
        changes.memberships.iter().map(|(key, diff)| (*diff, named_membership(key, names))).collect();
    memberships.sort_unstable();
    let mut profiles: Vec<(i64, &str, &str, (Identity, Identity))> = changes
        .profiles
        .iter()
        .map(|&((identity, profile), diff)| (diff, names.get(profile.id), names.get(identity.id), (identity, profile)))
        .collect();
    profiles.sort_unstable();

    let mut lines = Vec::with_capacity(journeys.len() + memberships.len() + profiles.len());
    let is_removal = |diff: i64| diff < 0;
    for removals in [true, false] {
        for (diff, row) in journeys.iter().filter(|(diff, _)| is_removal(*diff) == removals) {
            lines.push(journey_delta(time, row, *diff)?);
        }
        for (diff, membership) in memberships.iter().filter(|(diff, _)| is_removal(*diff) == removals) {
            lines.push(membership_delta(time, membership, *diff)?);
        }
        for (diff, profile_name, identity_name, (identity, profile)) in
            profiles.iter().filter(|(diff, ..)| is_removal(*diff) == removals)
        {
            let line = IdentityLine {
                time,
                kind: "identity",
                identity: identity_name,
                device: identity.device,
                profile: profile_name,
                anonymous: profile.device,
                diff: *diff,
            };
            let json = serde_json::to_string(&line).map_err(Error::json("an identity delta"))?;
            lines.push(DeltaLine { customer: Arc::from(*profile_name), segment: None, json });
        }
    }
    Ok(lines)
}

/// The line of one journey row entering (`diff` 1) or leaving (-1) at `time`.
pub fn journey_row_line(time: u64, row: &JourneyRow, diff: i64, names: &Names<'_>) -> Result<DeltaLine, Error> {
    journey_delta(time, &NamedRow::new(row, names), diff)
}

/// The line of one segment membership beginning (`diff` 1) or ending (-1) at `time`.
pub fn membership_line(
    time: u64,
    membership: &MembershipKey,
    diff: i64,
    names: &Names<'_>,
) -> Result<DeltaLine, Error> {
    membership_delta(time, &named_membership(membership, names), diff)
}

/// The current context of one journey as a JSON object: the fields of a journey line without
/// `time`, `type` and `diff`.
pub fn journey_object(row: &JourneyRow, names: &Names<'_>) -> Result<serde_json::Value, Error> {
    let named = NamedRow::new(row, names);
    let mut object = serde_json::to_value(journey_line(0, &named, 1)?).map_err(Error::json("a journey row"))?;
    if let Some(fields) = object.as_object_mut() {
        for key in ["time", "type", "diff"] {
            fields.remove(key);
        }
    }
    Ok(object)
}

fn journey_delta(time: u64, row: &NamedRow<'_>, diff: i64) -> Result<DeltaLine, Error> {
    let json = serde_json::to_string(&journey_line(time, row, diff)?).map_err(Error::json("a journey delta"))?;
    Ok(DeltaLine { customer: Arc::from(row.customer), segment: None, json })
}

fn membership_delta(time: u64, membership: &NamedMembership<'_>, diff: i64) -> Result<DeltaLine, Error> {
    let json = serde_json::to_string(&segment_line(time, membership, diff)).map_err(Error::json("a segment delta"))?;
    Ok(DeltaLine { customer: Arc::from(membership.1), segment: Some(Arc::from(membership.0)), json })
}

/// Serializes channel events as the list of their channel names.
fn channel_names<S: Serializer>(channel_events: &&[(&str, u64)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(channel_events.iter().map(|(channel, _)| channel))
}

/// Serializes channel events as a map from channel name to events.
fn channel_map<S: Serializer>(channel_events: &&[(&str, u64)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(channel_events.iter().map(|(channel, events)| (channel, events)))
}

/// `membership` with its names resolved through `names`.
fn named_membership<'a>((segment, journey): &MembershipKey, names: &'a Names<'_>) -> NamedMembership<'a> {
    (names.get(*segment), names.get(journey.customer), journey.anonymous, journey.key.map(|key| names.get(key)))
}

/// The line of a changed journey row.
fn journey_line<'a>(time: u64, row: &'a NamedRow<'a>, diff: i64) -> Result<JourneyLine<'a>, Error> {
    // A time in milliseconds since the epoch as RFC 3339 with milliseconds and `Z`.
    let rfc3339 = |millis: i64| {
        DateTime::from_timestamp_millis(millis).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).ok_or_else(
            || Error::TimeOutOfRange {
                customer: row.customer.to_owned(),
                journey_key: row.journey_key.map(str::to_owned),
                millis,
            },
        )
    };
    Ok(JourneyLine {
        time,
        kind: "journey",
        customer: row.customer,
        anonymous: row.anonymous,
        journey_key: row.journey_key,
        diff,
        first_time: rfc3339(row.first_time)?,
        last_time: rfc3339(row.last_time)?,
        events: row.events,
        sessions: row.sessions,
        session_start: rfc3339(row.session_start)?,
        session_events: row.session_events,
        path: &row.path,
        channels: &row.channel_events,
        channel_events: &row.channel_events,
        converted: row.conversions > 0,
        conversions: row.conversions,
        last_conversion_time: row.last_conversion_time.map(rfc3339).transpose()?,
        value: micros_to_value(row.value),
    })
}

/// The line of a changed segment membership.
fn segment_line<'a>(
    time: u64,
    &(segment, customer, anonymous, journey_key): &NamedMembership<'a>,
    diff: i64,
) -> SegmentLine<'a> {
    SegmentLine { time, kind: "segment", segment, customer, anonymous, journey_key, diff }
}
