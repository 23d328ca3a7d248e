//! Summaries of contiguous runs of a journey's events, and the edges between neighbouring events.
//!
//! A [`Summary`] describes a run of consecutive events (in `(time, seq)` order) by what its
//! neighbours need: its first and last event, and the journey fields that compose by
//! concatenation (counts, sessions, the last contact points, channels, conversions, value).
//! [`Summary::append`] joins two adjacent runs, so the journey tree can summarise time buckets
//! and stitch them together without re-reading whole histories. The transition edges of a
//! journey are the edges of each event ([`event_edges`]), of each pair of neighbours
//! ([`pair_edges`]) and of the journey's two ends ([`boundary_edges`]).

use serde::{Deserialize, Serialize};

use crate::event::{Event, JourneyId, Params, SessionRule};
use crate::journeys::JourneyRow;
use crate::symbols::{CONVERSION, EXIT, NO_CHANNEL, START, Sym};

/// An event as the journey tree keeps it: everything but the journey, ordered by `(time, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Step {
    /// Event time (ms since the epoch).
    pub time: i64,
    /// Input order, to break ties of equal time.
    pub seq: u64,
    /// The contact point.
    pub contact_point: Sym,
    /// The channel, if any.
    pub channel: Option<Sym>,
    /// The session id given by the source, if any.
    pub session: Option<Sym>,
    /// Whether the event converts.
    pub converting: bool,
    /// Value in micro-units.
    pub value: i64,
}

impl Step {
    /// Splits an event into its journey and its step.
    pub fn from_event(event: Event) -> (JourneyId, Step) {
        let Event { journey, time, seq, contact_point, channel, session, converting, value } = event;
        (journey, Step { time, seq, contact_point, channel, session, converting, value })
    }

    fn channel_or_none(&self) -> Sym {
        self.channel.unwrap_or(NO_CHANNEL)
    }
}

/// One transition between two states of the journey graph, with its dwell time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// Source contact point (or synthetic state).
    pub from: Sym,
    /// Target contact point (or synthetic state).
    pub to: Sym,
    /// Source channel (or synthetic state).
    pub from_channel: Sym,
    /// Target channel (or synthetic state).
    pub to_channel: Sym,
    /// Time between the two events in ms; 0 when either end is synthetic.
    pub dwell: i64,
}

impl Edge {
    fn from_start(to: &Step) -> Edge {
        Edge { from: START, to: to.contact_point, from_channel: START, to_channel: to.channel_or_none(), dwell: 0 }
    }

    fn to_state(from: &Step, state: Sym) -> Edge {
        Edge { from: from.contact_point, to: state, from_channel: from.channel_or_none(), to_channel: state, dwell: 0 }
    }
}

/// The edges an event gives by itself: `X → (conversion)` when it converts.
pub fn event_edges(step: &Step) -> Option<Edge> {
    step.converting.then(|| Edge::to_state(step, CONVERSION))
}

/// The edges between two consecutive events `a` then `b` of one journey.
///
/// Across a session break: `a → (exit)` unless `a` converted, then `(start) → b`. Inside a
/// session: `(start) → b` when `a` converted (its path ended), otherwise `a → b`.
pub fn pair_edges(a: &Step, b: &Step, rule: &SessionRule) -> impl Iterator<Item = Edge> {
    let (first, second) = if rule.breaks(a.time, a.session, b.time, b.session) {
        ((!a.converting).then(|| Edge::to_state(a, EXIT)), Edge::from_start(b))
    } else if a.converting {
        (None, Edge::from_start(b))
    } else {
        let edge = Edge {
            from: a.contact_point,
            to: b.contact_point,
            from_channel: a.channel_or_none(),
            to_channel: b.channel_or_none(),
            dwell: b.time - a.time,
        };
        (None, edge)
    };
    first.into_iter().chain(std::iter::once(second))
}

/// The edges of a whole journey's two ends: `(start) → first`, and `last → (exit)` unless the
/// last event converted.
pub fn boundary_edges(summary: &Summary) -> impl Iterator<Item = Edge> {
    let exit = (!summary.last.converting).then(|| Edge::to_state(&summary.last, EXIT));
    std::iter::once(Edge::from_start(&summary.first)).chain(exit)
}

/// What a contiguous run of a journey's events contributes to the journey's context.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Summary {
    /// The run's first event.
    pub first: Step,
    /// The run's last event.
    pub last: Step,
    /// Number of events.
    pub events: u64,
    /// Sessions that start inside the run after its first event.
    pub breaks: u64,
    /// Start time of the run's last session.
    pub session_start: i64,
    /// Events in the run's last session.
    pub session_events: u64,
    /// The run's last `path_len` contact points, oldest first.
    pub path: Vec<Sym>,
    /// Events per channel, sorted by channel id.
    pub channel_events: Vec<(Sym, u64)>,
    /// Converting events.
    pub conversions: u64,
    /// Time of the last converting event.
    pub last_conversion_time: Option<i64>,
    /// Total value in micro-units.
    pub value: i64,
}

impl Summary {
    /// The summary of a run of one event.
    pub fn of_step(step: &Step) -> Summary {
        Summary {
            first: *step,
            last: *step,
            events: 1,
            breaks: 0,
            session_start: step.time,
            session_events: 1,
            path: vec![step.contact_point],
            channel_events: step.channel.iter().map(|c| (*c, 1)).collect(),
            conversions: u64::from(step.converting),
            last_conversion_time: step.converting.then_some(step.time),
            value: step.value,
        }
    }

    /// Extends this run with the run that directly follows it.
    pub fn append(&mut self, next: &Summary, params: &Params) {
        let gap_breaks = params.session.breaks(self.last.time, self.last.session, next.first.time, next.first.session);
        if gap_breaks || next.breaks > 0 {
            self.session_start = next.session_start;
            self.session_events = next.session_events;
        } else {
            self.session_events += next.session_events;
        }
        self.breaks += next.breaks + u64::from(gap_breaks);
        self.last = next.last;
        self.events += next.events;
        self.path.extend_from_slice(&next.path);
        if self.path.len() > params.path_len {
            self.path.drain(..self.path.len() - params.path_len);
        }
        merge_counts(&mut self.channel_events, &next.channel_events);
        self.conversions += next.conversions;
        if next.last_conversion_time.is_some() {
            self.last_conversion_time = next.last_conversion_time;
        }
        self.value += next.value;
    }

    /// The journey row of a whole journey summarised by `self`.
    pub fn into_row(self, journey: JourneyId) -> JourneyRow {
        JourneyRow {
            journey,
            first_time: self.first.time,
            last_time: self.last.time,
            events: self.events,
            sessions: self.breaks + 1,
            session_start: self.session_start,
            session_events: self.session_events,
            path: self.path,
            channel_events: self.channel_events,
            conversions: self.conversions,
            last_conversion_time: self.last_conversion_time,
            value: self.value,
        }
    }
}

/// Adds the sorted `(symbol, count)` list `more` into the sorted list `into`.
fn merge_counts(into: &mut Vec<(Sym, u64)>, more: &[(Sym, u64)]) {
    for (sym, count) in more {
        match into.binary_search_by(|(s, _)| s.cmp(sym)) {
            Ok(i) => into[i].1 += count,
            Err(i) => into.insert(i, (*sym, *count)),
        }
    }
}
