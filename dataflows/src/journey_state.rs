//! The state of one journey inside the journeys operator: its events in `(time, seq)` order and
//! the aggregates of its context row, kept up to date one event at a time.
//!
//! Every transition edge of a journey is a function of at most two neighbouring events (see
//! [`crate::steps`]), so inserting or removing one event changes only the edges around it: the
//! pair it splits or joins, its own conversion edge, and the journey's end edges when it becomes
//! or stops being the first or last event. [`JourneyState::insert`] and
//! [`JourneyState::remove`] report exactly those changes to an [`EdgeDeltas`], and keep the
//! counts that compose by addition (events, sessions, channels, conversions, value) up to date,
//! so the cost of one event is logarithmic in the journey's length whatever its history.

use std::collections::BTreeMap;
use std::ops::Bound;

use rustc_hash::FxHashMap;

use crate::event::{JourneyId, Params};
use crate::journeys::JourneyRow;
use crate::steps::{Edge, Step, event_edges, exit_edge, pair_edges, start_edge};
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

/// Edge changes gathered while a batch of events is applied: per contact-point edge and per
/// channel edge, the net change of `(count, dwell_ms_total)`.
#[derive(Debug, Default)]
pub struct EdgeDeltas {
    /// Contact-point edges `(from, to)`.
    pub contact_points: FxHashMap<(Sym, Sym), EdgeStats>,
    /// Channel edges `(from, to)`.
    pub channels: FxHashMap<(Sym, Sym), EdgeStats>,
}

impl EdgeDeltas {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) one occurrence of `edge`.
    fn add(&mut self, edge: Edge, sign: i64) {
        let cp = self.contact_points.entry((edge.from, edge.to)).or_default();
        cp.0 += sign;
        cp.1 += sign * edge.dwell;
        let ch = self.channels.entry((edge.from_channel, edge.to_channel)).or_default();
        ch.0 += sign;
        ch.1 += sign * edge.dwell;
    }
}

/// One journey's events and context aggregates.
#[derive(Debug, Default)]
pub struct JourneyState {
    /// The events, each with its multiplicity (always at least one).
    steps: BTreeMap<Step, u32>,
    /// Number of events, multiplicities included.
    events: u64,
    /// Number of neighbouring pairs that start a new session.
    breaks: u64,
    /// Total value in micro-units.
    value: i64,
    /// Events per channel, sorted by channel id; no zero entries.
    channel_events: Vec<(Sym, u64)>,
    /// Number of converting events.
    conversions: u64,
    /// The converting events, with their multiplicities.
    converting: BTreeMap<Step, u32>,
    /// The events that start a session after the journey's first one (the second event of a
    /// breaking pair), with the number of breaking pairs ending in them.
    session_starts: BTreeMap<Step, u32>,
    /// A cached count of the events at or after a step: `(step, count)`, kept exact by every
    /// insertion and removal, so that the current session's event count needs a recount only
    /// when the current session's first event changes.
    tail_count: Option<(Step, u64)>,
}

impl JourneyState {
    /// Whether the journey has no events.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The multiplicity of `step` in the journey.
    pub fn count(&self, step: &Step) -> u32 {
        self.steps.get(step).copied().unwrap_or(0)
    }

    /// Adds one occurrence of `step`, reporting the edges that change to `deltas`.
    ///
    /// # Panics
    /// When `step` already occurs `u32::MAX` times.
    pub fn insert(&mut self, step: Step, params: &Params, deltas: &mut EdgeDeltas) {
        let present = self.count(&step);
        // A further copy goes after the copies already there.
        let prev = if present > 0 { Some(step) } else { self.before(&step) };
        let next = self.after(&step);
        match (prev, next) {
            (Some(p), Some(n)) => {
                self.pair(&p, &n, -1, params, deltas);
                self.pair(&p, &step, 1, params, deltas);
                self.pair(&step, &n, 1, params, deltas);
            }
            (Some(p), None) => {
                edge_out(&p, -1, deltas);
                self.pair(&p, &step, 1, params, deltas);
                edge_out(&step, 1, deltas);
            }
            (None, Some(n)) => {
                deltas.add(start_edge(&n), -1);
                deltas.add(start_edge(&step), 1);
                self.pair(&step, &n, 1, params, deltas);
            }
            (None, None) => {
                deltas.add(start_edge(&step), 1);
                edge_out(&step, 1, deltas);
            }
        }
        let count = present.checked_add(1).expect("an event occurs fewer than 2^32 times");
        self.steps.insert(step, count);
        if step.converting {
            *self.converting.entry(step).or_default() += 1;
        }
        self.counted(&step, 1, deltas);
    }

    /// Removes one occurrence of `step`, which must be present, reporting the edges that
    /// change to `deltas`.
    pub fn remove(&mut self, step: &Step, params: &Params, deltas: &mut EdgeDeltas) {
        let present = self.count(step);
        assert!(present > 0, "removing an event that is not in the journey");
        // The copy removed is the last of its copies.
        let prev = if present > 1 { Some(*step) } else { self.before(step) };
        let next = self.after(step);
        match (prev, next) {
            (Some(p), Some(n)) => {
                self.pair(&p, step, -1, params, deltas);
                self.pair(step, &n, -1, params, deltas);
                self.pair(&p, &n, 1, params, deltas);
            }
            (Some(p), None) => {
                edge_out(step, -1, deltas);
                self.pair(&p, step, -1, params, deltas);
                edge_out(&p, 1, deltas);
            }
            (None, Some(n)) => {
                self.pair(step, &n, -1, params, deltas);
                deltas.add(start_edge(step), -1);
                deltas.add(start_edge(&n), 1);
            }
            (None, None) => {
                edge_out(step, -1, deltas);
                deltas.add(start_edge(step), -1);
            }
        }
        decrement(&mut self.steps, step);
        if step.converting {
            decrement(&mut self.converting, step);
        }
        self.counted(step, -1, deltas);
    }

    /// The journey's context row, `None` when it has no events.
    pub fn row(&mut self, journey: JourneyId, params: &Params) -> Option<JourneyRow> {
        let first = *self.steps.first_key_value()?.0;
        let last = *self.steps.last_key_value()?.0;
        let session_start = self.session_starts.last_key_value().map_or(first, |(step, _)| *step);
        let session_events = if self.session_starts.is_empty() { self.events } else { self.events_from(session_start) };
        let mut path: Vec<Sym> = self
            .steps
            .iter()
            .rev()
            .flat_map(|(step, count)| std::iter::repeat_n(step.contact_point, *count as usize))
            .take(params.path_len)
            .collect();
        path.reverse();
        Some(JourneyRow {
            journey,
            first_time: first.time,
            last_time: last.time,
            events: self.events,
            sessions: self.breaks + 1,
            session_start: session_start.time,
            session_events,
            path,
            channel_events: self.channel_events.clone(),
            conversions: self.conversions,
            last_conversion_time: self.converting.last_key_value().map(|(step, _)| step.time),
            value: self.value,
        })
    }

    /// The number of events at or after `start`, from the cache when it is for `start`.
    fn events_from(&mut self, start: Step) -> u64 {
        match self.tail_count {
            Some((cached, count)) if cached == start => count,
            _ => {
                let count = self.steps.range(start..).map(|(_, count)| u64::from(*count)).sum();
                self.tail_count = Some((start, count));
                count
            }
        }
    }

    /// The greatest distinct event before `step`.
    fn before(&self, step: &Step) -> Option<Step> {
        self.steps.range(..step).next_back().map(|(s, _)| *s)
    }

    /// The least distinct event after `step`.
    fn after(&self, step: &Step) -> Option<Step> {
        self.steps.range((Bound::Excluded(step), Bound::Unbounded)).next().map(|(s, _)| *s)
    }

    /// Adds (`sign = 1`) or retracts (`sign = -1`) the neighbouring pair `a` then `b`: its
    /// edges, and the session break between them if there is one.
    fn pair(&mut self, a: &Step, b: &Step, sign: i64, params: &Params, deltas: &mut EdgeDeltas) {
        for edge in pair_edges(a, b, &params.session) {
            deltas.add(edge, sign);
        }
        if params.session.breaks(a.time, a.session, b.time, b.session) {
            if sign > 0 {
                self.breaks += 1;
                *self.session_starts.entry(*b).or_default() += 1;
            } else {
                self.breaks -= 1;
                decrement(&mut self.session_starts, b);
            }
        }
    }

    /// Counts one occurrence of `step` in (`sign = 1`) or out (`sign = -1`) of the additive
    /// aggregates, with its own conversion edge.
    fn counted(&mut self, step: &Step, sign: i64, deltas: &mut EdgeDeltas) {
        if let Some(edge) = event_edges(step) {
            deltas.add(edge, sign);
        }
        self.events = self.events.wrapping_add_signed(sign);
        self.value = self.value.wrapping_add(sign * step.value);
        if step.converting {
            self.conversions = self.conversions.wrapping_add_signed(sign);
        }
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

/// Adds or retracts the `(exit)` edge of `last` as the journey's last event.
fn edge_out(last: &Step, sign: i64, deltas: &mut EdgeDeltas) {
    if let Some(edge) = exit_edge(last) {
        deltas.add(edge, sign);
    }
}

/// Lowers the multiplicity of `step` in `counts` by one, dropping it at zero.
fn decrement(counts: &mut BTreeMap<Step, u32>, step: &Step) {
    if let Some(count) = counts.get_mut(step) {
        *count -= 1;
        if *count == 0 {
            counts.remove(step);
        }
    }
}
