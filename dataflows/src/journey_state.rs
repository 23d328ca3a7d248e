//! The state of one journey inside the journeys operator: its events in `(time, seq)` order and
//! the aggregates of its context row, kept up to date one event at a time.
//!
//! Every transition edge of a journey is a function of at most two neighbouring events (see
//! [`crate::steps`]), so inserting or removing one event changes only the edges around it: the
//! pair it splits or joins, its own conversion edge, and the journey's end edges when it becomes
//! or stops being the first or last event. The last event's `(exit)` edge waits for the
//! watermark: it is asserted once the watermark passes the event's time plus the session gap
//! ([`JourneyState::close`]), and retracted if a later event reopens the session. [`JourneyState::insert`] and
//! [`JourneyState::remove`] report exactly those changes to an [`EdgeDeltas`], and keep the
//! sets and counts the row is read from (session starts, conversions, channels, value) up to
//! date, so the cost of one event is logarithmic in the journey's length whatever its history.

use rustc_hash::FxHashMap;

use crate::bag::SortedBag;
use crate::event::{JourneyId, Params};
use crate::journeys::JourneyRow;
use crate::steps::{Edge, Step, event_edges, exit_edge, pair_edges, start_edge};
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

/// Statistics per edge `(from, to)`.
pub type EdgeGraph = FxHashMap<(Sym, Sym), EdgeStats>;

/// Edge changes gathered while a batch of events is applied: per edge between two
/// (contact point, channel) states, the net change of `(count, dwell_ms_total)`.
#[derive(Debug, Default)]
pub struct EdgeDeltas {
    /// Keyed by `(from, from_channel, to, to_channel)`.
    changes: FxHashMap<(Sym, Sym, Sym, Sym), EdgeStats>,
}

impl EdgeDeltas {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) one occurrence of `edge`.
    fn add(&mut self, edge: Edge, sign: i64) {
        let stats = self.changes.entry((edge.from, edge.from_channel, edge.to, edge.to_channel)).or_default();
        stats.0 += sign;
        stats.1 += sign * edge.dwell;
    }

    /// The net changes per contact-point edge `(from, to)` and per channel edge, without zeros.
    pub fn into_graphs(self) -> (EdgeGraph, EdgeGraph) {
        let mut contact_points = EdgeGraph::default();
        let mut channels = EdgeGraph::default();
        for ((from, from_channel, to, to_channel), (count, dwell)) in self.changes {
            let cp = contact_points.entry((from, to)).or_default();
            cp.0 += count;
            cp.1 += dwell;
            let ch = channels.entry((from_channel, to_channel)).or_default();
            ch.0 += count;
            ch.1 += dwell;
        }
        contact_points.retain(|_, stats| *stats != (0, 0));
        channels.retain(|_, stats| *stats != (0, 0));
        (contact_points, channels)
    }
}

/// One journey's events and context aggregates.
#[derive(Debug, Default)]
pub struct JourneyState {
    /// The events, copies included.
    steps: SortedBag<Step>,
    /// Total value in micro-units.
    value: i64,
    /// Events per channel, sorted by channel id; no zero entries.
    channel_events: Vec<(Sym, u64)>,
    /// The converting events.
    converting: SortedBag<Step>,
    /// The events that start a session after the journey's first one: the second event of each
    /// neighbouring pair that breaks the session.
    session_starts: SortedBag<Step>,
    /// A cached count of the events at or after a step: `(step, count)`, kept exact by every
    /// insertion and removal, so that the current session's event count needs a recount only
    /// when the current session's first event changes.
    tail_count: Option<(Step, u64)>,
    /// Whether the journey's last session is over: its `last → (exit)` edge is asserted once
    /// the watermark passes the last event's time plus the session gap.
    ended: bool,
}

impl JourneyState {
    /// Whether the journey has no events.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The multiplicity of `step` in the journey.
    pub fn count(&self, step: &Step) -> usize {
        self.steps.count(step)
    }

    /// Adds one occurrence of `step`, reporting the edges that change to `deltas`; the
    /// `watermark` decides whether a new last event's session is over.
    pub fn insert(&mut self, step: Step, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        let (prev, next) = match self.steps.last() {
            // The common case: the journey's newest event.
            Some(last) if *last < step => (Some(*last), None),
            // A further copy goes after the copies already there.
            _ => (self.steps.at_or_before(&step).copied(), self.steps.after(&step).copied()),
        };
        match (prev, next) {
            (Some(p), Some(n)) => {
                self.pair(&p, &n, -1, params, deltas);
                self.pair(&p, &step, 1, params, deltas);
                self.pair(&step, &n, 1, params, deltas);
            }
            (Some(p), None) => {
                self.reopen(&p, deltas);
                self.pair(&p, &step, 1, params, deltas);
                self.end_if_over(&step, watermark, params, deltas);
            }
            (None, Some(n)) => {
                deltas.add(start_edge(&n), -1);
                deltas.add(start_edge(&step), 1);
                self.pair(&step, &n, 1, params, deltas);
            }
            (None, None) => {
                deltas.add(start_edge(&step), 1);
                self.end_if_over(&step, watermark, params, deltas);
            }
        }
        self.steps.insert(step);
        if step.converting {
            self.converting.insert(step);
        }
        self.counted(&step, 1, deltas);
    }

    /// Removes one occurrence of `step`, which must be present, reporting the edges that
    /// change to `deltas`; the `watermark` decides whether a new last event's session is over.
    pub fn remove(&mut self, step: &Step, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        let present = self.count(step);
        assert!(present > 0, "removing an event that is not in the journey");
        // The copy removed is the last of its copies.
        let prev = if present > 1 { Some(*step) } else { self.steps.before(step).copied() };
        let next = self.steps.after(step).copied();
        match (prev, next) {
            (Some(p), Some(n)) => {
                self.pair(&p, step, -1, params, deltas);
                self.pair(step, &n, -1, params, deltas);
                self.pair(&p, &n, 1, params, deltas);
            }
            (Some(p), None) => {
                self.reopen(step, deltas);
                self.pair(&p, step, -1, params, deltas);
                self.end_if_over(&p, watermark, params, deltas);
            }
            (None, Some(n)) => {
                self.pair(step, &n, -1, params, deltas);
                deltas.add(start_edge(step), -1);
                deltas.add(start_edge(&n), 1);
            }
            (None, None) => {
                self.reopen(step, deltas);
                deltas.add(start_edge(step), -1);
            }
        }
        self.steps.remove_one(step);
        if step.converting {
            self.converting.remove_one(step);
        }
        self.counted(step, -1, deltas);
    }

    /// Removes every event, reporting the edges that leave to `deltas` (first event first, so
    /// that no exit is re-asserted on the way).
    pub fn clear(&mut self, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        while let Some(first) = self.steps.first().copied() {
            self.remove(&first, watermark, params, deltas);
        }
    }

    /// The event time after which the journey's last session is over, while that has not
    /// been recorded yet; `None` for a journey whose last session is over, or without events.
    pub fn ends_after(&self, params: &Params) -> Option<i64> {
        let last = self.steps.last().filter(|_| !self.ended)?;
        Some(params.session.ends_after(last.time))
    }

    /// Ends the journey's last session if the `watermark` has passed it, asserting its exit.
    pub fn close(&mut self, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        if let Some(last) = self.steps.last().copied().filter(|_| !self.ended) {
            self.end_if_over(&last, watermark, params, deltas);
        }
    }

    /// Reopens the last session ending at `last`, the last event until now: retracts its exit
    /// if it was over.
    fn reopen(&mut self, last: &Step, deltas: &mut EdgeDeltas) {
        if std::mem::take(&mut self.ended) {
            edge_out(last, -1, deltas);
        }
    }

    /// Ends the last session, ending at `last`, if the `watermark` has passed it.
    fn end_if_over(&mut self, last: &Step, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        if watermark > params.session.ends_after(last.time) {
            edge_out(last, 1, deltas);
            self.ended = true;
        }
    }

    /// The journey's context row, `None` when it has no events.
    pub fn row(&mut self, journey: JourneyId, params: &Params) -> Option<JourneyRow> {
        let first = *self.steps.first()?;
        let last = *self.steps.last()?;
        let events = self.steps.len() as u64;
        let session_start = self.session_starts.last().copied().unwrap_or(first);
        let session_events = if self.session_starts.is_empty() { events } else { self.events_from(session_start) };
        let mut path: Vec<Sym> = self.steps.iter_rev().map(|step| step.contact_point).take(params.path_len).collect();
        path.reverse();
        Some(JourneyRow {
            journey,
            first_time: first.time,
            last_time: last.time,
            events,
            sessions: self.session_starts.len() as u64 + 1,
            session_start: session_start.time,
            session_events,
            path,
            channel_events: self.channel_events.clone(),
            conversions: self.converting.len() as u64,
            last_conversion_time: self.converting.last().map(|step| step.time),
            value: self.value,
        })
    }

    /// The number of events at or after `start`, from the cache when it is for `start`.
    fn events_from(&mut self, start: Step) -> u64 {
        match self.tail_count {
            Some((cached, count)) if cached == start => count,
            _ => {
                let count = self.steps.count_from(&start) as u64;
                self.tail_count = Some((start, count));
                count
            }
        }
    }

    /// Adds (`sign = 1`) or retracts (`sign = -1`) the neighbouring pair `a` then `b`: its
    /// edges, and the session break between them if there is one.
    fn pair(&mut self, a: &Step, b: &Step, sign: i64, params: &Params, deltas: &mut EdgeDeltas) {
        for edge in pair_edges(a, b, &params.session) {
            deltas.add(edge, sign);
        }
        if params.session.breaks(a.time, a.session, b.time, b.session) {
            if sign > 0 {
                self.session_starts.insert(*b);
            } else {
                self.session_starts.remove_one(b);
            }
        }
    }

    /// Counts one occurrence of `step` in (`sign = 1`) or out (`sign = -1`) of the additive
    /// aggregates, with its own conversion edge.
    fn counted(&mut self, step: &Step, sign: i64, deltas: &mut EdgeDeltas) {
        if let Some(edge) = event_edges(step) {
            deltas.add(edge, sign);
        }
        self.value = self.value.wrapping_add(sign * step.value);
        if let Some(channel) = step.channel {
            match self.channel_events.binary_search_by(|(c, _)| c.cmp(&channel)) {
                Ok(i) if sign < 0 && self.channel_events[i].1 == 1 => {
                    self.channel_events.remove(i);
                }
                Ok(i) => self.channel_events[i].1 = self.channel_events[i].1.wrapping_add_signed(sign),
                Err(i) => self.channel_events.insert(i, (channel, 1)),
            }
        }
        if let Some((start, count)) = &mut self.tail_count
            && step >= start
        {
            *count = count.wrapping_add_signed(sign);
        }
    }
}

/// Adds or retracts the `(exit)` edge of `last` as the journey's last event, whose session is
/// over.
fn edge_out(last: &Step, sign: i64, deltas: &mut EdgeDeltas) {
    if let Some(edge) = exit_edge(last) {
        deltas.add(edge, sign);
    }
}
