//! One timely worker: builds the views of `stepstone_dataflows` over an input session, feeds it
//! the epochs the reader hands over, and passes each completed epoch's output changes on to the
//! collector.

use std::cell::RefCell;
use std::rc::Rc;

use crossbeam_channel::{Receiver, Sender};
use differential_dataflow::input::InputSession;
use stepstone_dataflows::event::{Event, Params};
use stepstone_dataflows::segments::BoundSegment;
use stepstone_dataflows::views;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::sink::update::Update;

/// The events one worker inserts at one logical time.
pub struct Epoch {
    /// The logical time.
    pub time: u64,
    /// This worker's share of the epoch's events.
    pub events: Vec<Event>,
}

/// The output changes one worker observed for one completed logical time.
pub struct Completed {
    /// The logical time, complete on every worker.
    pub time: u64,
    /// The changes this worker's operators emitted at that time.
    pub updates: Vec<Update>,
}

/// Runs one worker until `epochs` closes: every epoch is inserted, the input advanced past it,
/// and the worker stepped until all outputs are complete for it, then the changes go to `done`.
pub fn run(
    worker: &mut Worker,
    params: Params,
    segments: Vec<BoundSegment>,
    epochs: Receiver<Epoch>,
    done: Sender<Completed>,
) {
    let mut input = InputSession::<u64, Event, isize>::new();
    let changes: Rc<RefCell<Vec<Update>>> = Rc::default();
    let probe = worker.dataflow::<u64, _, _>(|scope| {
        let views = views::build(input.to_collection(scope), params, segments);
        let probe = ProbeHandle::new();
        macro_rules! capture {
            ($collection:expr, $update:expr) => {{
                let changes = changes.clone();
                $collection
                    .inspect(move |(data, _time, diff)| changes.borrow_mut().push($update(data.clone(), *diff)))
                    .probe_with(&probe);
            }};
        }
        capture!(views.journeys, Update::Journey);
        capture!(views.transitions.contact_points, Update::Transition);
        capture!(views.transitions.channels, Update::ChannelTransition);
        capture!(views.segments.memberships, Update::Membership);
        capture!(views.segments.stats, Update::Segment);
        capture!(views.segments.channels, Update::SegmentChannel);
        probe
    });
    for epoch in epochs {
        for event in epoch.events {
            input.insert(event);
        }
        input.advance_to(epoch.time + 1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));
        let updates = std::mem::take(&mut *changes.borrow_mut());
        if done.send(Completed { time: epoch.time, updates }).is_err() {
            break;
        }
    }
}
