//! What the oracle expects of a feed in the serve tests: the journey lines, memberships,
//! segment rows, transition rows (as the HTTP API writes them), and a check of the snapshot files
//! written at SIGTERM; also the configs and segments the tests start the service with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::common;
use crate::common::oracle::{SegmentRule, recompute};
use crate::common::subscriber::{journey_line, rfc3339};
use crate::common::{Edges, FullEvent, FullJourney, oracle_at, read_table};

use super::feed::*;
use super::{GAP_MS, PATH_LEN};

/// The segments of the test configs.
pub(super) const SEGMENTS: &str = r#"
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
pub(super) const SEGMENT_RULES: [SegmentRule; 3] = [
    ("buyers", |j| j.converted()),
    ("engaged", |j| j.events >= 2),
    ("emailed", |j| j.channel_events.contains_key("email")),
];

/// The segments `journey` is in, by the rules of [`SEGMENTS`], sorted.
pub(super) fn segments_of(journey: &FullJourney) -> Vec<&'static str> {
    let mut segments: Vec<&str> =
        SEGMENT_RULES.iter().filter(|(_, rule)| rule(journey)).map(|(name, _)| *name).collect();
    segments.sort_unstable();
    segments
}

/// Everything the oracle expects of a feed.
pub(super) struct Expected {
    pub(super) journeys: BTreeMap<String, FullJourney>,
    pub(super) edges: Edges,
    /// `(segment, customer)`.
    pub(super) memberships: BTreeSet<(String, String)>,
    /// The segments' aggregates `(members, value_micros, converted)`, of those with members.
    pub(super) segments: BTreeMap<String, (i64, i64, i64)>,
    /// The members of each segment per channel.
    pub(super) segment_channels: BTreeMap<(String, String), i64>,
    /// The watermark of the HTTP source after the events.
    pub(super) watermark: i64,
}

impl Expected {
    /// What the service holds once it has taken `events` over HTTP (late ones accepted).
    pub(super) fn of(events: &[FullEvent]) -> Expected {
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
    pub(super) fn line(&self, customer: &str) -> Value {
        journey_line(customer, &self.journeys[customer])
    }

    /// Every expected journey line, by customer.
    pub(super) fn lines(&self) -> BTreeMap<String, Value> {
        self.journeys.keys().map(|c| (c.clone(), self.line(c))).collect()
    }

    /// The memberships of `customer`.
    pub(super) fn memberships_of(&self, customer: &str) -> BTreeSet<(String, String)> {
        self.memberships.iter().filter(|(_, c)| c == customer).cloned().collect()
    }

    /// The `/v1/segments` rows the oracle expects, by name.
    pub(super) fn segment_rows(&self) -> Vec<Value> {
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
    pub(super) fn segment_channels(&self, segment: &str) -> Vec<Value> {
        self.segment_channels
            .iter()
            .filter(|((s, _), _)| s == segment)
            .map(|((_, channel), members)| json!({"channel": channel, "members": members}))
            .collect()
    }

    /// The `/v1/transitions` rows the oracle expects, sorted by (from, to); only those out of
    /// `from` if given.
    pub(super) fn transition_rows(&self, from: Option<&str>) -> Vec<Value> {
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

/// Checks the snapshot files in `dir` against the oracle, at logical time `time`.
pub(super) fn check_snapshot_files(dir: &Path, expected: &Expected, time: u64) {
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

pub(super) const CONFIG: &str = r#"
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
