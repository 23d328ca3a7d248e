//! The journeys view: one row of current context per journey, and every journey's transition
//! edges, maintained by one operator keyed by journey.
//!
//! The operator holds each journey's events in order (a `JourneyState` of the private `journey_state` module).
//! It applies a logical time's event insertions and retractions one event at a time, as they
//! arrive once every earlier time is complete; each changes only the edges around it, which are
//! summed per edge over the whole time, and when the time completes the rows of the journeys it
//! touched are compared with their rows before it. A second input carries the watermark of each
//! time: when a time completes, the last sessions the watermark has passed end, and their
//! `(exit)` edges are asserted. Its outputs are differential
//! collections: a changed row is retracted and re-asserted, and the edge aggregates travel as
//! difference types. Work per event is logarithmic in its journey's length, whatever the
//! journey's history, and nothing but the events themselves is stored.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use crate::event::{Clock, Event, Identity, Params};
use crate::journey_book::{Book, OpenTime};
use crate::row::JourneyRow;
use crate::symbols::Sym;
use crate::transitions::EdgeStats;

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

/// Capabilities for one logical time on each of the operator's three outputs.
type Capabilities = [Capability<u64>; 3];

/// What a logical time brings besides events: the clock it advances to, if any, and the
/// identities it erases.
#[derive(Default)]
struct Marks {
    clock: Option<Clock>,
    erased: Vec<Identity>,
}

/// What a logical time brings: its event updates and its marks.
#[derive(Default)]
struct Arrivals {
    updates: Vec<(Event, isize)>,
    marks: Marks,
}

/// The marks of logical `time`: the open time's if `time` is open, or else those of a pending
/// time, which starts holding the capabilities `held` gives.
fn marks_at<'a>(
    open: &'a mut Option<(Capabilities, OpenTime, Marks)>,
    pending: &'a mut BTreeMap<u64, (Capabilities, Arrivals)>,
    time: u64,
    held: impl FnOnce() -> Capabilities,
) -> &'a mut Marks {
    match open {
        Some((caps, _, marks)) if *caps[0].time() == time => marks,
        _ => &mut pending.entry(time).or_insert_with(|| (held(), Arrivals::default())).1.marks,
    }
}

/// Maintains every journey's context row and transition edges over a collection of events.
///
/// Events are placed on workers by [`crate::event::JourneyId::placement_hash`]. An event whose multiplicity
/// drops below zero (retracted more often than inserted) is absent until it is made good.
///
/// `clocks` holds the clock of each logical time (see [`crate::event::END_OF_INPUT`]): every
/// worker reads the clocks of its own input. A journey's last session is over, and its `(exit)`
/// edge asserted, once the watermark passes its last event's time plus the session gap. Once a
/// settled horizon is given, the events before it are folded away as the journeys they belong
/// to are touched (and all at once the first time), so memory holds only what came since; an
/// update that breaks the horizon's promise is placed right after a journey's folded events.
///
/// `erasures` holds the erased identities, likewise read by every worker from its own input:
/// at the time an identity is erased, every journey of it (`JourneyId::identity`) loses all
/// its events, and its events are ignored from then on. An erasure is permanent; its
/// retraction is ignored.
pub fn journeys<'scope>(
    events: VecCollection<'scope, u64, Event>,
    clocks: VecCollection<'scope, u64, Clock>,
    erasures: VecCollection<'scope, u64, Identity>,
    params: Params,
) -> Journeys<'scope> {
    let mut builder = OperatorBuilder::new("Journeys".to_owned(), events.inner.scope());
    let exchange = Exchange::new(|(event, _, _): &(Event, u64, isize)| event.journey.placement_hash());
    let mut input = builder.new_input(events.inner, exchange);
    let mut clock_input = builder.new_input(clocks.inner, Pipeline);
    let mut erasure_input = builder.new_input(erasures.inner, Pipeline);
    let (rows_output, rows) = builder.new_output::<Vec<(JourneyRow, u64, i64)>>();
    let (edges_output, edges) = builder.new_output::<Vec<((Sym, Sym), u64, EdgeStats)>>();
    let (channels_output, channel_edges) = builder.new_output::<Vec<((Sym, Sym), u64, EdgeStats)>>();
    let mut rows_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(rows_output);
    let mut edges_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(edges_output);
    let mut channels_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(channels_output);
    builder.build(move |_capabilities| {
        let mut book = Book::new(params);
        // The earliest incomplete time, once no earlier update can arrive: its event updates
        // are applied as they come, and its changes sent when the time completes.
        let mut open: Option<(Capabilities, OpenTime, Marks)> = None;
        // What later times bring, until their time opens.
        let mut pending: BTreeMap<u64, (Capabilities, Arrivals)> = BTreeMap::new();
        move |frontiers| {
            // The earliest time either input may still bring; `None` once both are done.
            let least = frontiers.iter().filter_map(|f| f.frontier().first().copied()).min();
            input.for_each(|capability, data| {
                let held = |time: u64| [0, 1, 2].map(|port| capability.delayed(&time, port));
                for (event, time, diff) in data.drain(..) {
                    if open.is_none() && pending.is_empty() && least == Some(time) {
                        open = Some((held(time), book.open(), Marks::default()));
                    }
                    match &mut open {
                        Some((caps, open_time, _)) if *caps[0].time() == time => book.update(open_time, event, diff),
                        _ => pending
                            .entry(time)
                            .or_insert_with(|| (held(time), Arrivals::default()))
                            .1
                            .updates
                            .push((event, diff)),
                    }
                }
            });
            clock_input.for_each(|capability, data| {
                let held = |time: u64| [0, 1, 2].map(|port| capability.delayed(&time, port));
                for (clock, time, diff) in data.drain(..) {
                    if diff <= 0 {
                        continue;
                    }
                    let latest = &mut marks_at(&mut open, &mut pending, time, || held(time)).clock;
                    *latest = Some(latest.map_or(clock, |l| Clock {
                        watermark: l.watermark.max(clock.watermark),
                        settled: l.settled.max(clock.settled),
                    }));
                }
            });
            erasure_input.for_each(|capability, data| {
                let held = |time: u64| [0, 1, 2].map(|port| capability.delayed(&time, port));
                for (identity, time, diff) in data.drain(..) {
                    if diff <= 0 {
                        continue;
                    }
                    marks_at(&mut open, &mut pending, time, || held(time)).erased.push(identity);
                }
            });
            loop {
                if let Some((caps, _, _)) = &open {
                    if least.is_some_and(|least| least <= *caps[0].time()) {
                        break;
                    }
                    let ([rows_cap, edges_cap, channels_cap], mut open_time, marks) =
                        open.take().expect("an open time");
                    let time = *rows_cap.time();
                    book.erase(&mut open_time, &marks.erased);
                    if let Some(clock) = marks.clock {
                        book.advance(&mut open_time, clock.watermark);
                        book.settle(clock.settled);
                    }
                    let closed = book.close(open_time);
                    let mut rows = rows_output.activate();
                    rows.session(&rows_cap).give_iterator(closed.rows.into_iter().map(|(row, diff)| (row, time, diff)));
                    let mut edges = edges_output.activate();
                    edges.session(&edges_cap).give_iterator(closed.edges.into_iter().map(|(e, s)| (e, time, s)));
                    let mut channels = channels_output.activate();
                    channels
                        .session(&channels_cap)
                        .give_iterator(closed.channel_edges.into_iter().map(|(e, s)| (e, time, s)));
                    continue;
                }
                let Some(entry) = pending.first_entry() else { break };
                let time = *entry.key();
                let complete = least.is_none_or(|least| least > time);
                if !complete && least != Some(time) {
                    break;
                }
                let (caps, arrivals) = entry.remove();
                let mut open_time = book.open();
                for (event, diff) in arrivals.updates {
                    book.update(&mut open_time, event, diff);
                }
                open = Some((caps, open_time, arrivals.marks));
                if !complete {
                    break;
                }
            }
        }
    });
    Journeys { rows: rows.as_collection(), edges: edges.as_collection(), channel_edges: channel_edges.as_collection() }
}
