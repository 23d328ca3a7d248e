//! The end-to-end tests' adapter of the test oracle (`stepstone_dataflows::oracle`, the
//! dataflows crate's `oracle` feature): events by name in, rows, edges and segments by name out.
//! The recomputation itself is the oracle's, the one the dataflows are checked against; this only
//! interns the names into a symbol table of its own and resolves them back.

use std::collections::{BTreeMap, BTreeSet};

use stepstone_dataflows::event::{END_OF_INPUT, Event, JourneyId, Params, SessionRule, value_to_micros};
use stepstone_dataflows::oracle;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::symbols::{Sym, Symbols};

use super::{Edges, FullEvent, FullJourney};

/// A segment as the end-to-end tests define it: a name and its rule, written by hand as a test
/// on a full journey row.
pub type SegmentRule = (&'static str, fn(&FullJourney) -> bool);

/// What the oracle expects of a set of events, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recomputed {
    /// Every customer's journey row.
    pub journeys: BTreeMap<String, FullJourney>,
    /// The contact-point transition graph.
    pub edges: Edges,
    /// The channel transition graph (`(none)` for events without a channel).
    pub channel_edges: Edges,
    /// The segment memberships `(segment, customer)`.
    pub memberships: BTreeSet<(String, String)>,
    /// The aggregates of every segment with members: `(members, value_micros, converted)`.
    pub segments: BTreeMap<String, (i64, i64, i64)>,
    /// The members of each segment per channel: `(segment, channel)` → members.
    pub segment_channels: BTreeMap<(String, String), i64>,
}

/// `row` by name.
fn full_journey(row: &JourneyRow, symbols: &Symbols) -> FullJourney {
    let name = |sym: Sym| symbols.name(sym).to_string();
    FullJourney {
        first_time: row.first_time,
        last_time: row.last_time,
        events: row.events as i64,
        sessions: row.sessions as i64,
        session_start: row.session_start,
        session_events: row.session_events as i64,
        path: row.path.iter().map(|&p| name(p)).collect(),
        channel_events: row.channel_events.iter().map(|&(c, n)| (name(c), n as i64)).collect(),
        conversions: row.conversions as i64,
        last_conversion_time: row.last_conversion_time,
        value_micros: row.value,
    }
}

/// The views of `events` by the oracle: one journey per customer, events ordered by (time,
/// arrival position `row`), sessions split where the gap is strictly greater than `gap` (never
/// when `None`), paths of the last `path_len` contact points, at the watermark `watermark`
/// (`None`: the input has ended, every session is over), with the memberships and aggregates
/// of `segments`.
pub fn recompute(
    events: &[FullEvent],
    gap: Option<i64>,
    path_len: usize,
    watermark: Option<i64>,
    segments: &[SegmentRule],
) -> Recomputed {
    let symbols = Symbols::new();
    let events: Vec<Event> = events
        .iter()
        .map(|e| Event {
            journey: JourneyId::customer(symbols.intern(&e.customer)),
            time: e.time,
            seq: e.row as u64,
            contact_point: symbols.intern(&e.contact_point),
            channel: e.channel.as_deref().map(|c| symbols.intern(c)),
            session: None,
            converting: e.converting,
            value: value_to_micros(e.value).expect("a finite value"),
        })
        .collect();
    let params = Params { session: gap.map_or(SessionRule::Never, SessionRule::Gap), path_len };
    let table = &symbols;
    let rules: Vec<(Sym, _)> = segments
        .iter()
        .map(|&(name, rule)| (table.intern(name), move |row: &JourneyRow| rule(&full_journey(row, table))))
        .collect();
    let views = oracle::recompute(events, watermark.unwrap_or(END_OF_INPUT), &params, &rules);
    let name = |sym: Sym| symbols.name(sym).to_string();
    let edges = |graph: &BTreeMap<(Sym, Sym), (i64, i64)>| -> Edges {
        graph.iter().map(|(&(from, to), &stats)| ((name(from), name(to)), stats)).collect()
    };
    Recomputed {
        journeys: views
            .journeys
            .values()
            .map(|row| (name(row.journey.customer), full_journey(row, &symbols)))
            .collect(),
        edges: edges(&views.transitions),
        channel_edges: edges(&views.channel_transitions),
        memberships: views.memberships.iter().map(|&(segment, j)| (name(segment), name(j.customer))).collect(),
        segments: views.segments.iter().map(|(&segment, &stats)| (name(segment), stats)).collect(),
        segment_channels: views
            .segment_channels
            .iter()
            .map(|(&(segment, channel), &members)| ((name(segment), name(channel)), members))
            .collect(),
    }
}
