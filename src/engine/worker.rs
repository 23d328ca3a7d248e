//! One timely worker: builds the views of `stepstone_dataflows` over an input session, feeds it
//! the events the engine hands over as they come, and when a logical time is sealed passes its
//! output changes on to the collector once every view is complete for it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use differential_dataflow::input::InputSession;
use stepstone_dataflows::event::{Clock, Event, Identity, NO_WATERMARK, Params};
use stepstone_dataflows::identity::Link;
use stepstone_dataflows::segments::BoundSegment;
use stepstone_dataflows::views;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::worker::Worker;

use crate::sink::update::Update;

/// How long a worker keeps stepping, rather than parking, while a sealed time is incomplete:
/// long enough that a single event on two workers completes within it, since parking at every
/// exchange instead about doubles the update latency (BENCHMARKS.md, "Update latency").
const SPIN: Duration = Duration::from_micros(300);

/// What the engine hands one worker.
pub enum Feed {
    /// Events of the current logical time: this worker's share, by journey placement.
    Events(Vec<Event>),
    /// Links between identities entering (1) or leaving (-1) at the current logical time.
    Links(Vec<(Link, isize)>),
    /// Identities erased at the current logical time (every worker gets all of them).
    Erase(Vec<Identity>),
    /// The current logical time is complete, with this clock; the next one begins.
    Seal(Clock),
}

/// The output changes one worker observed for one completed logical time.
pub struct Completed {
    /// The logical time, complete on every worker.
    pub time: u64,
    /// The watermark the time was sealed with.
    pub watermark: i64,
    /// The changes this worker's operators emitted at that time.
    pub updates: Vec<Update>,
}

/// Runs one worker until `feed` closes. Events are inserted at the current logical time and
/// the dataflow stepped as they arrive; at a seal the input advances past the time, the worker
/// steps until all outputs are complete for it, and the time's changes go to `done`. Every
/// worker enters each sealed time's clock, and every erasure, into its own input.
pub fn run(
    worker: &mut Worker,
    params: Params,
    segments: Vec<BoundSegment>,
    stitch: bool,
    feed: Receiver<Feed>,
    done: Sender<Completed>,
) {
    let mut input = InputSession::<u64, Event, isize>::new();
    let mut clocks = InputSession::<u64, Clock, isize>::new();
    let mut links = InputSession::<u64, Link, isize>::new();
    let mut erasures = InputSession::<u64, Identity, isize>::new();
    let mut clock = Clock::watermark(NO_WATERMARK);
    let changes: Rc<RefCell<Vec<Update>>> = Rc::default();
    let probe = worker.dataflow::<u64, _, _>(|scope| {
        let views = views::build(
            input.to_collection(scope),
            stitch.then(|| links.to_collection(scope)),
            clocks.to_collection(scope),
            erasures.to_collection(scope),
            params,
            segments,
        );
        let probe = ProbeHandle::new();
        // Moves each output's changes into `changes` (no copies), ahead of the probe, so that
        // once the probe passes a time every change of that time has been taken.
        macro_rules! capture {
            ($collection:expr, $update:expr) => {{
                let changes = changes.clone();
                $collection
                    .inner
                    .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, "Capture", move |_, _| {
                        move |input, _output| {
                            input.for_each(|_time, data| {
                                changes
                                    .borrow_mut()
                                    .extend(data.drain(..).map(|(data, _time, diff)| $update(data, diff)))
                            })
                        }
                    })
                    .probe_with(&probe);
            }};
        }
        capture!(views.journeys, Update::journey);
        capture!(views.transitions.contact_points, Update::Transition);
        capture!(views.transitions.channels, Update::ChannelTransition);
        capture!(views.segments.memberships, Update::Membership);
        capture!(views.segments.stats, Update::Segment);
        capture!(views.segments.channels, Update::SegmentChannel);
        if let Some(profiles) = views.profiles {
            capture!(profiles, Update::Profile);
        }
        probe
    });
    for message in feed {
        match message {
            Feed::Links(updates) => {
                for (link, diff) in updates {
                    links.update(link, diff);
                }
                links.flush();
                worker.step();
            }
            Feed::Erase(identities) => {
                for identity in identities {
                    erasures.insert(identity);
                }
                erasures.flush();
                worker.step();
            }
            Feed::Events(events) => {
                for event in events {
                    input.insert(event);
                }
                input.flush();
                worker.step();
            }
            Feed::Seal(sealed) => {
                let time = *input.time();
                if sealed != clock {
                    if clock != Clock::watermark(NO_WATERMARK) {
                        clocks.update(clock, -1);
                    }
                    clocks.update(sealed, 1);
                    clock = sealed;
                }
                input.advance_to(time + 1);
                input.flush();
                clocks.advance_to(time + 1);
                clocks.flush();
                links.advance_to(time + 1);
                links.flush();
                erasures.advance_to(time + 1);
                erasures.flush();
                // A time's progress goes back and forth between the workers several times. For
                // [`SPIN`] a waiting worker keeps stepping, yielding its core to any thread that
                // is ready (another worker included), so that each exchange is not a wake-up
                // from sleep; then it parks until a message arrives.
                let spin_until = Instant::now() + SPIN;
                while probe.less_than(input.time()) {
                    if Instant::now() < spin_until {
                        worker.step();
                        std::thread::yield_now();
                    } else {
                        worker.step_or_park(None);
                    }
                }
                let updates = std::mem::take(&mut *changes.borrow_mut());
                if done.send(Completed { time, watermark: clock.watermark, updates }).is_err() {
                    break;
                }
            }
        }
    }
}
