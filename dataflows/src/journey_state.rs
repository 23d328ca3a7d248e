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
//!
//! Once no update can come before a settled horizon ([`crate::event::Clock::settled`]), the
//! events before it are folded ([`JourneyState::fold`]) into what the row and later events
//! still need: counts, the last folded event, the path's tail and the edges they gave (kept per
//! edge, so that an erasure still retracts them exactly). A journey then holds only its events
//! since the horizon, and memory stops growing with history.

use rustc_hash::FxHashMap;

use crate::bag::SortedBag;
use crate::event::{JourneyId, Params};
use crate::row::JourneyRow;
use crate::steps::{Edge, Step, event_edges, exit_edge, pair_edges, start_edge};
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

/// Statistics per edge `(from, to)`.
pub type EdgeGraph = FxHashMap<(Sym, Sym), EdgeStats>;

/// Edge changes gathered while a batch of events is applied: the net change of
/// `(count, dwell_ms_total)` per contact-point edge and per channel edge.
#[derive(Debug, Default)]
pub struct EdgeDeltas {
    /// Per contact-point edge.
    contact_points: EdgeGraph,
    /// Per channel edge.
    channels: EdgeGraph,
}

impl EdgeDeltas {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) one occurrence of `edge`.
    fn add(&mut self, edge: Edge, sign: i64) {
        let stats = (sign, sign * edge.dwell);
        add_stats(self.contact_points.entry((edge.from, edge.to)).or_default(), stats);
        add_stats(self.channels.entry((edge.from_channel, edge.to_channel)).or_default(), stats);
    }

    /// Retracts every edge `folded` holds.
    fn retract(&mut self, folded: &FoldedEdges) {
        for (edge, (count, dwell)) in &folded.contact_points {
            add_stats(self.contact_points.entry(*edge).or_default(), (-count, -dwell));
        }
        for (edge, (count, dwell)) in &folded.channels {
            add_stats(self.channels.entry(*edge).or_default(), (-count, -dwell));
        }
    }

    /// The net changes per contact-point edge `(from, to)` and per channel edge, without zeros.
    pub fn into_graphs(mut self) -> (EdgeGraph, EdgeGraph) {
        self.contact_points.retain(|_, stats| *stats != (0, 0));
        self.channels.retain(|_, stats| *stats != (0, 0));
        (self.contact_points, self.channels)
    }
}

/// Adds `change` to `stats`.
fn add_stats(stats: &mut EdgeStats, change: EdgeStats) {
    stats.0 += change.0;
    stats.1 += change.1;
}

/// The edges that a journey's folded events gave, per contact-point edge and per channel edge,
/// each sorted by edge. A journey has far fewer distinct edges than events, and the number is
/// bounded by the contact points and channels there are.
#[derive(Debug, Default)]
struct FoldedEdges {
    /// Per contact-point edge.
    contact_points: Vec<((Sym, Sym), EdgeStats)>,
    /// Per channel edge.
    channels: Vec<((Sym, Sym), EdgeStats)>,
}

impl FoldedEdges {
    /// Counts one occurrence of `edge`.
    fn add(&mut self, edge: Edge) {
        let stats = (1, edge.dwell);
        for (list, key) in [
            (&mut self.contact_points, (edge.from, edge.to)),
            (&mut self.channels, (edge.from_channel, edge.to_channel)),
        ] {
            match list.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(i) => add_stats(&mut list[i].1, stats),
                Err(i) => list.insert(i, (key, stats)),
            }
        }
    }
}

/// What a journey keeps of its folded events: everything its row and its later events need.
#[derive(Debug)]
struct Folded {
    /// The time of the journey's first event.
    first_time: i64,
    /// The last folded event: the neighbour of the first event kept.
    last: Step,
    /// How many events were folded.
    events: u64,
    /// How many of them start a session after the journey's first one.
    breaks: u64,
    /// The start time of the last folded session.
    session_start: i64,
    /// How many folded events belong to that session.
    session_events: u64,
    /// How many folded events convert.
    conversions: u64,
    /// The time of the last folded converting event.
    last_conversion_time: Option<i64>,
    /// The last contact points of the folded events, oldest first, at most the path length.
    path: Vec<Sym>,
    /// The edges that no event kept takes part in: the start edge, the folded events' own
    /// conversion edges and the pairs among them. The pair of the last folded event and the
    /// first one kept, and an exit, are the kept events' business.
    edges: FoldedEdges,
}

impl Folded {
    /// Folds `step`, the next event after the folded ones.
    fn push(&mut self, step: &Step, params: &Params) {
        for edge in pair_edges(&self.last, step, &params.session) {
            self.edges.add(edge);
        }
        if params.session.breaks(self.last.time, self.last.session, step.time, step.session) {
            self.breaks += 1;
            self.session_start = step.time;
            self.session_events = 0;
        }
        self.count(step);
    }

    /// Counts `step`, the last folded event now.
    fn count(&mut self, step: &Step) {
        if let Some(edge) = event_edges(step) {
            self.edges.add(edge);
        }
        self.last = *step;
        self.events += 1;
        self.session_events += 1;
        if step.converting {
            self.conversions += 1;
            self.last_conversion_time = Some(step.time);
        }
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
    /// What is kept of the events folded away, which all come before every event in `steps`.
    folded: Option<Box<Folded>>,
}

impl JourneyState {
    /// Whether the journey has no events.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.folded.is_none()
    }

    /// The multiplicity of `step` among the events kept (folded events are not counted).
    pub fn count(&self, step: &Step) -> usize {
        self.steps.count(step)
    }

    /// The time of the first event kept: events before it may be folded.
    pub fn first_kept(&self) -> Option<i64> {
        self.steps.first().map(|step| step.time)
    }

    /// The journey's last event, kept or folded.
    fn last(&self) -> Option<Step> {
        self.steps.last().copied().or_else(|| self.folded_last())
    }

    /// The last folded event.
    fn folded_last(&self) -> Option<Step> {
        self.folded.as_ref().map(|folded| folded.last)
    }

    /// Adds one occurrence of `step`, reporting the edges that change to `deltas`; the
    /// `watermark` decides whether a new last event's session is over. A step before the folded
    /// events (which the settled horizon rules out) goes right after them.
    pub fn insert(&mut self, step: Step, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        debug_assert!(self.folded_last().is_none_or(|last| last < step), "an event before the settled horizon");
        let (prev, next) = match self.last() {
            // The common case: the journey's newest event.
            Some(last) if last < step => (Some(last), None),
            // A further copy goes after the copies already there.
            _ => (
                self.steps.at_or_before(&step).copied().or_else(|| self.folded_last()),
                self.steps.after(&step).copied(),
            ),
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
        let prev =
            if present > 1 { Some(*step) } else { self.steps.before(step).copied().or_else(|| self.folded_last()) };
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

    /// Removes every event, folded ones included, reporting the edges that leave to `deltas`
    /// (first event kept first, so that no exit is re-asserted on the way).
    pub fn clear(&mut self, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        while let Some(first) = self.steps.first().copied() {
            self.remove(&first, watermark, params, deltas);
        }
        if let Some(folded) = self.folded.take() {
            self.reopen(&folded.last, deltas);
            deltas.retract(&folded.edges);
            *self = JourneyState::default();
        }
    }

    /// Folds the events before `settled` into what the row and later events need, once no
    /// update can come before it: the journey's row and edges stay exactly as they are.
    pub fn fold(&mut self, settled: i64, params: &Params) {
        if self.first_kept().is_none_or(|first| first >= settled) {
            return;
        }
        let before = |step: &Step| step.time < settled;
        let steps = self.steps.take_prefix(before);
        self.session_starts.take_prefix(before);
        self.converting.take_prefix(before);
        self.tail_count = None;
        let mut rest = steps.iter();
        let folded = match &mut self.folded {
            Some(folded) => folded,
            None => {
                let first = rest.next().expect("a step to fold");
                let mut edges = FoldedEdges::default();
                edges.add(start_edge(first));
                let mut folded = Folded {
                    first_time: first.time,
                    last: *first,
                    events: 0,
                    breaks: 0,
                    session_start: first.time,
                    session_events: 0,
                    conversions: 0,
                    last_conversion_time: None,
                    path: Vec::new(),
                    edges,
                };
                folded.count(first);
                self.folded.insert(Box::new(folded))
            }
        };
        for step in rest {
            folded.push(step, params);
        }
        let newest = &steps[steps.len().saturating_sub(params.path_len)..];
        folded.path.extend(newest.iter().map(|step| step.contact_point));
        let excess = folded.path.len().saturating_sub(params.path_len);
        folded.path.drain(..excess);
        folded.path.shrink_to_fit();
    }

    /// The event time after which the journey's last session is over, while that has not
    /// been recorded yet; `None` for a journey whose last session is over, or without events.
    pub fn ends_after(&self, params: &Params) -> Option<i64> {
        let last = self.last().filter(|_| !self.ended)?;
        Some(params.session.ends_after(last.time))
    }

    /// Ends the journey's last session if the `watermark` has passed it, asserting its exit.
    pub fn close(&mut self, watermark: i64, params: &Params, deltas: &mut EdgeDeltas) {
        if let Some(last) = self.last().filter(|_| !self.ended) {
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
        let last = self.last()?;
        let kept = self.steps.len() as u64;
        let folded = self.folded.as_deref();
        let first_time = match folded {
            Some(folded) => folded.first_time,
            None => self.steps.first()?.time,
        };
        let events = folded.map_or(0, |folded| folded.events) + kept;
        let sessions = folded.map_or(0, |folded| folded.breaks) + self.session_starts.len() as u64 + 1;
        let conversions = folded.map_or(0, |folded| folded.conversions) + self.converting.len() as u64;
        let last_conversion_time =
            self.converting.last().map(|step| step.time).or_else(|| folded.and_then(|f| f.last_conversion_time));
        let mut path: Vec<Sym> = self.steps.iter_rev().map(|step| step.contact_point).take(params.path_len).collect();
        if let Some(folded) = folded {
            let missing = params.path_len - path.len();
            path.extend(folded.path.iter().rev().take(missing));
        }
        path.reverse();
        let (session_start, session_events) = match (self.session_starts.last().copied(), folded) {
            (Some(start), _) => (start.time, self.events_from(start)),
            (None, Some(folded)) => (folded.session_start, folded.session_events + kept),
            (None, None) => (first_time, events),
        };
        Some(JourneyRow {
            journey,
            first_time,
            last_time: last.time,
            events,
            sessions,
            session_start,
            session_events,
            path,
            channel_events: self.channel_events.clone(),
            conversions,
            last_conversion_time,
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
