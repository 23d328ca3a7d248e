//! The steps of a journey and the transition edges between them.
//!
//! The transition edges of a journey are the edges of each event ([`event_edges`]), of each
//! pair of neighbouring events ([`pair_edges`]), and of the journey's two ends ([`start_edge`]
//! before its first event, [`exit_edge`] after its last). Each is a function of at most two
//! neighbouring steps, so inserting or removing one event changes only the edges around it.

use serde::{Deserialize, Serialize};

use crate::event::{Event, JourneyId, SessionRule};
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

/// The edge into the first event of a journey: `(start) → first`.
pub fn start_edge(first: &Step) -> Edge {
    Edge::from_start(first)
}

/// The edge out of the last event of a journey: `last → (exit)`, unless it converted.
pub fn exit_edge(last: &Step) -> Option<Edge> {
    (!last.converting).then(|| Edge::to_state(last, EXIT))
}
