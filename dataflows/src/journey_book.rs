//! Every journey one worker of the journeys operator holds, and the application of one logical
//! time's updates to them.

use std::collections::BTreeSet;

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::event::{END_OF_INPUT, Event, Identity, JourneyId, NO_WATERMARK, Params};
use crate::journey_state::{EdgeDeltas, JourneyState};
use crate::row::JourneyRow;
use crate::steps::Step;
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

/// The journeys of one worker.
pub(crate) struct Book {
    /// The session and path parameters.
    params: Params,
    /// The journeys, each with the id of the last logical time that touched it. The map moves its
    /// entries to a larger table a few at a time as it grows, and its entries are small (the
    /// state is boxed), so that no logical time pauses to copy every journey or to fault in a
    /// large new table at once.
    journeys: griddle::HashMap<JourneyId, (u64, Box<JourneyState>), FxBuildHasher>,
    /// The journeys whose last session is not over yet, by the event time after which it is.
    /// Kept only once the watermark has started to advance: before, no session can be over,
    /// and the watermark of a bounded input jumps straight to its end, which ends them all.
    open: Option<BTreeSet<(i64, JourneyId)>>,
    /// The current watermark: sessions that ended before it are over.
    watermark: i64,
    /// The settled horizon: no update comes before it, and the events before it are folded
    /// away as their journeys are touched.
    settled: i64,
    /// Events retracted more often than inserted, with how many insertions they are owed.
    owed: FxHashMap<Event, i64>,
    /// The erased identities: their journeys are gone and their events are ignored.
    erased: FxHashSet<Identity>,
    /// The id of the latest logical time opened.
    opened: u64,
}

/// The updates of one logical time applied so far, and what they changed.
pub(crate) struct OpenTime {
    /// Its id, which tells a journey whether this time touched it yet.
    id: u64,
    /// The journeys this time touched, with their rows before it.
    touched: Vec<(JourneyId, Option<JourneyRow>)>,
    /// The edge changes so far.
    deltas: EdgeDeltas,
}

/// The output changes of one logical time.
pub(crate) struct Closed {
    /// Journey rows leaving (`-1`) and entering (`+1`).
    pub rows: Vec<(JourneyRow, i64)>,
    /// Net changes per contact-point edge.
    pub edges: Vec<((Sym, Sym), EdgeStats)>,
    /// Net changes per channel edge.
    pub channel_edges: Vec<((Sym, Sym), EdgeStats)>,
}

impl Book {
    /// A book without journeys.
    pub(crate) fn new(params: Params) -> Self {
        Book {
            params,
            journeys: griddle::HashMap::default(),
            open: None,
            watermark: NO_WATERMARK,
            settled: NO_WATERMARK,
            owed: FxHashMap::default(),
            erased: FxHashSet::default(),
            opened: 0,
        }
    }

    /// Opens the next logical time.
    pub(crate) fn open(&mut self) -> OpenTime {
        self.opened += 1;
        OpenTime { id: self.opened, touched: Vec::new(), deltas: EdgeDeltas::default() }
    }

    /// Applies one update of `open`'s time: `diff` occurrences of `event` (removals when negative).
    pub(crate) fn update(&mut self, open: &mut OpenTime, event: Event, diff: isize) {
        if !self.erased.is_empty() && self.erased.contains(&event.journey.identity()) {
            return;
        }
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
            return;
        }
        let params = &self.params;
        let watermark = self.watermark;
        let (journey, step) = Step::from_event(event);
        let (seen, state) = self.journeys.entry(journey).or_insert_with(|| (0, Box::default()));
        if *seen != open.id {
            *seen = open.id;
            open.touched.push((journey, state.row(journey, params)));
        }
        let open_before = state.ends_after(params);
        if diff > 0 {
            for _ in 0..diff {
                state.insert(step, watermark, params, &mut open.deltas);
            }
        } else {
            let removed = (state.count(&step) as i64).min(-diff);
            for _ in 0..removed {
                state.remove(&step, watermark, params, &mut open.deltas);
            }
            if -diff > removed {
                *self.owed.entry(event).or_default() += -diff - removed;
            }
        }
        let open_after = state.ends_after(params);
        if let Some(open) = &mut self.open
            && open_before != open_after
        {
            if let Some(ends) = open_before {
                open.remove(&(ends, journey));
            }
            if let Some(ends) = open_after {
                open.insert((ends, journey));
            }
        }
    }

    /// Erases `identities` at `open`'s time: every journey of theirs loses all its events (its
    /// row and edges leave), and their events are ignored from now on.
    pub(crate) fn erase(&mut self, open: &mut OpenTime, identities: &[Identity]) {
        let fresh: FxHashSet<Identity> = identities.iter().copied().filter(|id| self.erased.insert(*id)).collect();
        if fresh.is_empty() {
            return;
        }
        self.owed.retain(|event, _| !fresh.contains(&event.journey.identity()));
        let doomed: Vec<JourneyId> =
            self.journeys.keys().filter(|journey| fresh.contains(&journey.identity())).copied().collect();
        let params = &self.params;
        for journey in doomed {
            let Some((seen, state)) = self.journeys.get_mut(&journey) else { continue };
            if *seen != open.id {
                *seen = open.id;
                open.touched.push((journey, state.row(journey, params)));
            }
            if let (Some(open), Some(ends)) = (&mut self.open, state.ends_after(params)) {
                open.remove(&(ends, journey));
            }
            state.clear(self.watermark, params, &mut open.deltas);
        }
    }

    /// Advances the watermark of `open`'s time to `watermark` (a watermark never goes back):
    /// ends the last sessions it has passed, asserting their exits.
    pub(crate) fn advance(&mut self, open: &mut OpenTime, watermark: i64) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let params = &self.params;
        if self.open.is_none() && watermark == END_OF_INPUT {
            for (_, state) in self.journeys.values_mut() {
                state.close(watermark, params, &mut open.deltas);
            }
            return;
        }
        let journeys = &self.journeys;
        let ending = self.open.get_or_insert_with(|| {
            journeys.iter().filter_map(|(journey, (_, state))| Some((state.ends_after(params)?, *journey))).collect()
        });
        while let Some(&(ends, journey)) = ending.first() {
            if ends >= watermark {
                break;
            }
            ending.pop_first();
            if let Some((_, state)) = self.journeys.get_mut(&journey) {
                state.close(watermark, params, &mut open.deltas);
            }
        }
    }

    /// Moves the settled horizon to `settled` (it never goes back). The first time, every
    /// journey folds its events before it; from then on each journey folds as a logical time touches it.
    pub(crate) fn settle(&mut self, settled: i64) {
        if settled <= self.settled {
            return;
        }
        let first = self.settled == NO_WATERMARK;
        self.settled = settled;
        if first {
            for (_, state) in self.journeys.values_mut() {
                state.fold(settled, &self.params);
            }
        }
    }

    /// Ends `open`, returning every output change of its time: the rows of the journeys it
    /// changed (the old one leaves, the new one enters) and the net edge changes. The journeys
    /// it touched fold their events before the settled horizon.
    pub(crate) fn close(&mut self, open: OpenTime) -> Closed {
        let mut rows = Vec::new();
        for (journey, before) in open.touched {
            let Some((_, state)) = self.journeys.get_mut(&journey) else { continue };
            let after = state.row(journey, &self.params);
            if state.is_empty() {
                self.journeys.remove(&journey);
            } else if self.settled != NO_WATERMARK {
                state.fold(self.settled, &self.params);
            }
            if before != after {
                rows.extend(before.map(|row| (row, -1)));
                rows.extend(after.map(|row| (row, 1)));
            }
        }
        let (edges, channel_edges) = open.deltas.into_graphs();
        Closed { rows, edges: edges.into_iter().collect(), channel_edges: channel_edges.into_iter().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SessionRule;
    use crate::symbols::Symbols;

    /// An event of customer `customer` at `time`.
    fn event(symbols: &Symbols, customer: usize, time: i64, seq: u64) -> Event {
        Event {
            journey: JourneyId::customer(symbols.intern(&format!("c{customer}"))),
            time,
            seq,
            contact_point: symbols.intern(["home", "pricing", "checkout"][seq as usize % 3]),
            channel: Some(symbols.intern("web")),
            session: None,
            converting: seq.is_multiple_of(7),
            value: 1,
        }
    }

    /// The earliest event time any journey still keeps.
    fn earliest_kept(book: &Book) -> Option<i64> {
        book.journeys.values().filter_map(|(_, state)| state.first_kept()).min()
    }

    #[test]
    fn settling_folds_every_journey_once_then_each_as_it_is_touched() {
        let symbols = Symbols::new();
        let mut book = Book::new(Params { session: SessionRule::Gap(1_000), path_len: 3 });
        let mut seq = 0;
        // Ten customers, a hundred events each, before any horizon: all of them are kept.
        let mut open = book.open();
        for time in 0..100 {
            for customer in 0..10 {
                seq += 1;
                book.update(&mut open, event(&symbols, customer, time * 100, seq), 1);
            }
        }
        book.close(open);
        assert_eq!(earliest_kept(&book), Some(0));

        // The first horizon folds every journey, touched or not.
        book.settle(5_000);
        assert_eq!(earliest_kept(&book), Some(5_000));

        // Later, only customer 0 comes back: it folds up to the new horizon as it is touched.
        let first_kept = |book: &Book, c| book.journeys.get(&event(&symbols, c, 0, 0).journey)?.1.first_kept();
        let others_before: Vec<_> = (1..10).map(|c| first_kept(&book, c)).collect();
        book.settle(9_000);
        let mut open = book.open();
        seq += 1;
        book.update(&mut open, event(&symbols, 0, 9_500, seq), 1);
        book.close(open);
        assert_eq!(first_kept(&book, 0), Some(9_000));
        let others_after: Vec<_> = (1..10).map(|c| first_kept(&book, c)).collect();
        assert_eq!(others_after, others_before, "untouched journeys fold only when touched");
    }
}
