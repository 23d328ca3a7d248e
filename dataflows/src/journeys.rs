//! The journeys view: one row of current context per journey, and every journey's transition
//! edges, maintained by one operator keyed by journey.
//!
//! The operator holds each journey's events in order ([`JourneyState`]). When a logical time is
//! complete it applies that time's event insertions and retractions one event at a time; each
//! changes only the edges around it, which are summed per edge over the whole time, and the rows
//! of the journeys it touched are compared before and after. Its outputs are differential
//! collections: a changed row is retracted and re-asserted, and the edge aggregates travel as
//! difference types. Work per event is logarithmic in its journey's length, whatever the
//! journey's history, and nothing but the events themselves is stored.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;

use crate::event::{Event, JourneyId, Params};
use crate::journey_state::{EdgeDeltas, JourneyState};
use crate::steps::Step;
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

/// The current context of one journey.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JourneyRow {
    /// The journey (customer and journey key).
    pub journey: JourneyId,
    /// Time of the first event (ms since the epoch).
    pub first_time: i64,
    /// Time of the last event.
    pub last_time: i64,
    /// Number of events.
    pub events: u64,
    /// Number of sessions.
    pub sessions: u64,
    /// Start time of the current (last) session.
    pub session_start: i64,
    /// Number of events in the current session.
    pub session_events: u64,
    /// The last `path_len` contact points, oldest first.
    pub path: Vec<Sym>,
    /// Events per channel, sorted by channel id (not name); events without a channel are not
    /// counted.
    pub channel_events: Vec<(Sym, u64)>,
    /// Number of converting events.
    pub conversions: u64,
    /// Time of the last converting event.
    pub last_conversion_time: Option<i64>,
    /// Total value in micro-units.
    pub value: i64,
}

impl JourneyRow {
    /// Whether the journey converted at least once.
    pub fn converted(&self) -> bool {
        self.conversions > 0
    }

    /// The distinct channels, in id order.
    pub fn channels(&self) -> impl Iterator<Item = Sym> + '_ {
        self.channel_events.iter().map(|(c, _)| *c)
    }

    /// The last contact point (`None` only for a row without events, which the views never make).
    pub fn last_contact_point(&self) -> Option<Sym> {
        self.path.last().copied()
    }

    /// Duration of the current session in milliseconds.
    pub fn session_duration(&self) -> i64 {
        self.last_time - self.session_start
    }
}

/// The outputs of the journeys operator.
pub struct Journeys<'scope> {
    /// One row per journey.
    pub rows: VecCollection<'scope, u64, JourneyRow, i64>,
    /// Per contact-point edge `(from, to)` of every journey, its `(count, dwell_ms_total)` as
    /// the difference; not consolidated across workers.
    pub edges: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
    /// Per channel edge `(from, to)`, likewise.
    pub channel_edges: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
}

/// One output change of the journeys operator.
#[derive(Clone, Debug)]
enum Change {
    /// A journey row enters (`+1`) or leaves (`-1`).
    Row(JourneyRow, i64),
    /// A contact-point edge changes.
    Edge((Sym, Sym), EdgeStats),
    /// A channel edge changes.
    ChannelEdge((Sym, Sym), EdgeStats),
}

/// Maintains every journey's context row and transition edges over a collection of events.
///
/// Events are placed on workers by [`JourneyId::placement_hash`]. An event whose multiplicity
/// drops below zero (retracted more often than inserted) is absent until it is made good.
pub fn journeys<'scope>(events: VecCollection<'scope, u64, Event>, params: Params) -> Journeys<'scope> {
    let exchange = Exchange::new(|(event, _, _): &(Event, u64, isize)| event.journey.placement_hash());
    let changes = events.inner.unary_frontier(exchange, "Journeys", move |_capability, _info| {
        let mut pending: BTreeMap<u64, (Capability<u64>, Vec<(Event, isize)>)> = BTreeMap::new();
        let mut book = Book::new(params);
        move |(input, frontier), output| {
            input.for_each(|capability, data| {
                for (event, time, diff) in data.drain(..) {
                    pending
                        .entry(time)
                        .or_insert_with(|| (capability.delayed(&time, 0), Vec::new()))
                        .1
                        .push((event, diff));
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let (time, (capability, updates)) = entry.remove_entry();
                let mut session = output.session(&capability);
                book.apply(updates, |change| session.give((change, time)));
            }
        }
    });
    let rows = changes
        .clone()
        .flat_map(|(change, time)| match change {
            Change::Row(row, diff) => Some((row, time, diff)),
            _ => None,
        })
        .as_collection();
    let edges = changes
        .clone()
        .flat_map(|(change, time)| match change {
            Change::Edge(edge, stats) => Some((edge, time, stats)),
            _ => None,
        })
        .as_collection();
    let channel_edges = changes
        .flat_map(|(change, time)| match change {
            Change::ChannelEdge(edge, stats) => Some((edge, time, stats)),
            _ => None,
        })
        .as_collection();
    Journeys { rows, edges, channel_edges }
}

/// Every journey one worker holds.
struct Book {
    /// The session and path parameters.
    params: Params,
    /// The journeys, with the last logical time that touched each.
    journeys: FxHashMap<JourneyId, (u64, JourneyState)>,
    /// Events retracted more often than inserted, with how many insertions they are owed.
    owed: FxHashMap<Event, i64>,
    /// The number of batches applied, which tells a journey whether this batch touched it yet.
    batches: u64,
}

impl Book {
    fn new(params: Params) -> Self {
        Book { params, journeys: FxHashMap::default(), owed: FxHashMap::default(), batches: 0 }
    }

    /// Applies one logical time's updates, reporting every output change to `emit`.
    fn apply(&mut self, updates: Vec<(Event, isize)>, mut emit: impl FnMut(Change)) {
        self.batches += 1;
        let batch = self.batches;
        let params = self.params;
        let mut deltas = EdgeDeltas::default();
        // The journeys this batch touches, with their rows before it.
        let mut touched: Vec<(JourneyId, Option<JourneyRow>)> = Vec::new();
        for (event, diff) in updates {
            let mut diff = diff as i64;
            if diff > 0
                && !self.owed.is_empty()
                && let Some(owed) = self.owed.get_mut(&event)
            {
                let paid = diff.min(*owed);
                *owed -= paid;
                diff -= paid;
                if *owed == 0 {
                    self.owed.remove(&event);
                }
            }
            if diff == 0 {
                continue;
            }
            let (journey, step) = Step::from_event(event);
            let (seen, state) = self.journeys.entry(journey).or_insert_with(|| (0, JourneyState::default()));
            if *seen != batch {
                *seen = batch;
                touched.push((journey, state.row(journey, &params)));
            }
            if diff > 0 {
                for _ in 0..diff {
                    state.insert(step, &params, &mut deltas);
                }
            } else {
                let removed = i64::from(state.count(&step)).min(-diff);
                for _ in 0..removed {
                    state.remove(&step, &params, &mut deltas);
                }
                if -diff > removed {
                    *self.owed.entry(event).or_default() += -diff - removed;
                }
            }
        }
        for (journey, before) in touched {
            let Some((_, state)) = self.journeys.get_mut(&journey) else { continue };
            let after = state.row(journey, &params);
            if state.is_empty() {
                self.journeys.remove(&journey);
            }
            if before != after {
                if let Some(row) = before {
                    emit(Change::Row(row, -1));
                }
                if let Some(row) = after {
                    emit(Change::Row(row, 1));
                }
            }
        }
        for (edge, stats) in deltas.contact_points {
            if stats != (0, 0) {
                emit(Change::Edge(edge, stats));
            }
        }
        for (edge, stats) in deltas.channels {
            if stats != (0, 0) {
                emit(Change::ChannelEdge(edge, stats));
            }
        }
    }
}
