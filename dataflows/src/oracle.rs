//! The test oracle: every view recomputed from scratch, sequentially, by following the journey
//! semantics (`docs/semantics.md`) literally. Compiled only with the cargo feature `oracle`,
//! which the tests enable: the dataflows crate's own (`dataflows/tests/views_oracle.rs`, round by
//! round against the dataflows) and the end-to-end tests of the `stepstone` crate (through thin
//! adapters that take events and give rows by name, `tests/integration/common/oracle.rs`).
//!
//! Nothing here is incremental and nothing is shared with the dataflows but the types of their
//! inputs and rows: each journey's events are sorted by `(time, seq)` and walked once.
//!
//! * [`erase`] drops every event and link of erased identities;
//! * [`stitch`] moves each event to its identity's profile under the links present (a
//!   union-find over the links);
//! * [`recompute`] gives the journey rows, both transition graphs, the segment memberships and
//!   the segment aggregates of a set of events at a watermark.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{END_OF_INPUT, Event, Identity, JourneyId, Params, SessionRule};
use crate::identity::{Link, Node};
use crate::row::JourneyRow;
use crate::segments::SegmentStats;
use crate::symbols::{CONVERSION, EXIT, NO_CHANNEL, START, Sym};

/// Every view of a set of events at one watermark, as [`recompute`] finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// The row of every journey.
    pub journeys: BTreeMap<JourneyId, JourneyRow>,
    /// The contact-point transition graph: `(from, to)` → `(count, dwell_ms_total)`.
    pub transitions: BTreeMap<(Sym, Sym), (i64, i64)>,
    /// The channel transition graph (events without a channel are at [`NO_CHANNEL`]).
    pub channel_transitions: BTreeMap<(Sym, Sym), (i64, i64)>,
    /// The segment memberships `(segment, journey)`.
    pub memberships: BTreeSet<(Sym, JourneyId)>,
    /// The aggregates of every segment with members: `(members, value_micros, converted)`.
    pub segments: BTreeMap<Sym, SegmentStats>,
    /// The members of each segment per channel: `(segment, channel)` → members (channels with
    /// members only).
    pub segment_channels: BTreeMap<(Sym, Sym), i64>,
}

/// `events` (with multiplicities) and `links` without anything of an erased identity: events
/// whose journey is an erased identity's, and links that mention one.
pub fn erase(
    events: &BTreeMap<Event, i64>,
    links: &BTreeMap<Link, i64>,
    erased: &BTreeSet<Identity>,
) -> (BTreeMap<Event, i64>, BTreeMap<Link, i64>) {
    let events = events.iter().filter(|(e, _)| !erased.contains(&e.journey.identity())).map(|(e, c)| (*e, *c));
    let links = links
        .iter()
        .filter(|((a, b), _)| !erased.contains(&a.identity()) && !erased.contains(&b.identity()))
        .map(|(l, c)| (l.clone(), *c));
    (events.collect(), links.collect())
}

/// `events` (with multiplicities) with each event's journey moved to its identity's profile
/// under the links present (those of positive multiplicity): the least identity (customers
/// first, then by name) of its connected component.
pub fn stitch(events: &BTreeMap<Event, i64>, links: &BTreeMap<Link, i64>) -> BTreeMap<Event, i64> {
    // Union-find over the identities of the links present.
    let mut parent: BTreeMap<Node, Node> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<Node, Node>, node: &Node) -> Node {
        let up = parent.entry(node.clone()).or_insert_with(|| node.clone()).clone();
        if &up == node {
            return up;
        }
        let root = find(parent, &up);
        parent.insert(node.clone(), root.clone());
        root
    }
    for ((a, b), count) in links {
        if *count > 0 {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            // The root of a component is its least identity: customers first, then by name.
            let rank = |n: &Node| (n.device, n.name.clone());
            if rank(&ra) < rank(&rb) {
                parent.insert(rb, ra);
            } else if rank(&rb) < rank(&ra) {
                parent.insert(ra, rb);
            }
        }
    }
    let nodes: Vec<Node> = parent.keys().cloned().collect();
    let profile: BTreeMap<Identity, Identity> =
        nodes.iter().map(|n| (n.identity(), find(&mut parent, n).identity())).collect();
    let mut out = BTreeMap::new();
    for (event, count) in events {
        let mut event = *event;
        if let Some(p) = profile.get(&event.journey.identity()) {
            event.journey.customer = p.id;
            event.journey.anonymous = p.device;
        }
        let entry = out.entry(event).or_insert(0);
        *entry += count;
        if *entry == 0 {
            out.remove(&event);
        }
    }
    out
}

/// Adds one edge of `dwell` ms to a transition graph.
fn add_edge(graph: &mut BTreeMap<(Sym, Sym), (i64, i64)>, from: Sym, to: Sym, dwell: i64) {
    let entry = graph.entry((from, to)).or_default();
    entry.0 += 1;
    entry.1 += dwell;
}

/// The views of `events` (each present once per item) when the watermark is `watermark`
/// ([`END_OF_INPUT`] once the input has ended). Events of a journey are ordered by
/// `(time, seq)`. A session ends where [`Params::session`] breaks it; a journey's last session
/// is over (its `(exit)` edge present) once the watermark is past its last event plus the
/// session gap, or at the end of the input for sessions that no gap ends. After a converting
/// event the path restarts at `(start)`. A journey is in each segment of `segments` (a name and
/// a membership test on its row) whose test its row passes.
pub fn recompute<F: Fn(&JourneyRow) -> bool>(
    events: impl IntoIterator<Item = Event>,
    watermark: i64,
    params: &Params,
    segments: &[(Sym, F)],
) -> Recomputed {
    let mut out = Recomputed::default();
    let mut by_journey: BTreeMap<JourneyId, Vec<Event>> = BTreeMap::new();
    for event in events {
        by_journey.entry(event.journey).or_default().push(event);
    }
    for (journey, mut list) in by_journey {
        list.sort_by_key(|e| (e.time, e.seq));
        let breaks = |a: &Event, b: &Event| match params.session {
            SessionRule::Gap(gap) => b.time - a.time > gap,
            SessionRule::Never => false,
            SessionRule::ById => a.session != b.session,
        };
        let channel = |e: &Event| e.channel.unwrap_or(NO_CHANNEL);
        let mut edge = |from: Sym, from_ch: Sym, to: Sym, to_ch: Sym, dwell: i64| {
            add_edge(&mut out.transitions, from, to, dwell);
            add_edge(&mut out.channel_transitions, from_ch, to_ch, dwell);
        };

        let mut sessions = 0;
        let mut session_start = 0;
        let mut session_events = 0;
        for (i, e) in list.iter().enumerate() {
            let new_session = i == 0 || breaks(&list[i - 1], e);
            if new_session {
                if i > 0 && !list[i - 1].converting {
                    let p = &list[i - 1];
                    edge(p.contact_point, channel(p), EXIT, EXIT, 0);
                }
                edge(START, START, e.contact_point, channel(e), 0);
                sessions += 1;
                session_start = e.time;
                session_events = 0;
            } else {
                let p = &list[i - 1];
                if p.converting {
                    edge(START, START, e.contact_point, channel(e), 0);
                } else {
                    edge(p.contact_point, channel(p), e.contact_point, channel(e), e.time - p.time);
                }
            }
            session_events += 1;
            if e.converting {
                edge(e.contact_point, channel(e), CONVERSION, CONVERSION, 0);
            }
        }
        let last = list.last().expect("a journey has events");
        let over = watermark == END_OF_INPUT
            || matches!(params.session, SessionRule::Gap(gap) if watermark > last.time.saturating_add(gap));
        if over && !last.converting {
            edge(last.contact_point, channel(last), EXIT, EXIT, 0);
        }

        let mut channel_events: BTreeMap<Sym, u64> = BTreeMap::new();
        for e in &list {
            if let Some(c) = e.channel {
                *channel_events.entry(c).or_default() += 1;
            }
        }
        let skip = list.len().saturating_sub(params.path_len);
        let row = JourneyRow {
            journey,
            first_time: list[0].time,
            last_time: last.time,
            events: list.len() as u64,
            sessions,
            session_start,
            session_events,
            path: list[skip..].iter().map(|e| e.contact_point).collect(),
            channel_events: channel_events.into_iter().collect(),
            conversions: list.iter().filter(|e| e.converting).count() as u64,
            last_conversion_time: list.iter().filter(|e| e.converting).map(|e| e.time).next_back(),
            value: list.iter().map(|e| e.value).sum(),
        };
        for (name, matches) in segments {
            if matches(&row) {
                out.memberships.insert((*name, journey));
                let stats = out.segments.entry(*name).or_default();
                stats.0 += 1;
                stats.1 += row.value;
                stats.2 += i64::from(row.conversions > 0);
                for (c, _) in &row.channel_events {
                    *out.segment_channels.entry((*name, *c)).or_default() += 1;
                }
            }
        }
        out.journeys.insert(journey, row);
    }
    out
}
