//! A running engine: timely workers holding the views, fed events as they come and sealed one
//! logical time at a time, and the collector thread applying their output to the sink tables.
//! Both `stepstone run` and the benchmarks drive the dataflows through this handle.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use rustc_hash::FxHashSet;
use stepstone_dataflows::event::{Clock, Event, Identity, NO_WATERMARK, Params};
use stepstone_dataflows::segments::BoundSegment;
use stepstone_dataflows::symbols::{Sym, Symbols};
use timely::communication::WorkerGuards;

use super::Error;
use super::collector::{Collected, Collector, SharedTables};
use super::frontier::Frontier;
use super::links::LinkBook;
use super::worker::{self, Feed};
use crate::sink::ErasureRecord;
use crate::source::LinkChange;

/// Messages queued per worker before [`Engine::send`] blocks.
const FEED_QUEUE: usize = 16;

/// What one erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    /// The logical time at which the person's data left every view (applied when
    /// [`Engine::erase`] returns).
    pub time: u64,
    /// The identities erased: the one named and every identity linked to it.
    pub identities: Vec<Identity>,
    /// The events removed from the views.
    pub events: u64,
    /// The links between identities removed.
    pub links: usize,
}

impl Erasure {
    /// What the erasure log records of it: how much was erased, not whom.
    pub fn record(&self) -> ErasureRecord {
        ErasureRecord {
            logical_time: self.time,
            identities: self.identities.len(),
            events: self.events,
            links: self.links,
        }
    }
}

/// A running engine.
pub struct Engine {
    /// One feed per worker.
    workers: Vec<Sender<Feed>>,
    /// The links stated so far, when identities are stitched.
    links: Option<LinkBook>,
    /// The erased identities: their later events and links are dropped as they come.
    erased: FxHashSet<Identity>,
    /// Events of erased identities dropped as they came.
    suppressed: u64,
    /// The collector's tables, which an erasure counts the person's events in.
    tables: SharedTables,
    /// The clock of the latest seal.
    clock: Clock,
    /// The timely workers.
    guards: WorkerGuards<()>,
    /// The collector thread.
    collector: JoinHandle<Result<Collected, Error>>,
    /// What the collector has applied.
    frontier: Arc<Frontier>,
    /// The logical time events are sent at now.
    time: u64,
}

impl Engine {
    /// Starts `workers` timely workers running the views for `params` and `segments`, and a
    /// thread running `collector` on their output. With `stitching` (the symbols that name the
    /// identities), events are attributed to the profiles their identities' links make.
    pub fn start(
        params: Params,
        segments: Vec<BoundSegment>,
        stitching: Option<Arc<Symbols>>,
        workers: usize,
        collector: Collector,
    ) -> Result<Engine, Error> {
        let frontier = Arc::new(Frontier::default());
        let tables = collector.tables();
        let (completed_tx, completed_rx) = crossbeam_channel::unbounded();
        let collector_frontier = frontier.clone();
        let collector = std::thread::Builder::new()
            .name("stepstone-collector".into())
            .spawn(move || {
                let result = collector.run(completed_rx, &collector_frontier);
                collector_frontier.close();
                result
            })
            .map_err(Error::Spawn)?;

        let mut senders = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = crossbeam_channel::bounded(FEED_QUEUE);
            senders.push(tx);
            receivers.push(Some(rx));
        }
        let receivers = Arc::new(Mutex::new(receivers));
        let stitch = stitching.is_some();
        let guards = timely::execute(timely::Config::process(workers), move |w| {
            let feed = receivers.lock().expect("feed receivers")[w.index()].take().expect("one feed per worker");
            worker::run(w, params, segments.clone(), stitch, feed, completed_tx.clone());
        })
        .map_err(Error::Start)?;
        let links = stitching.map(LinkBook::new);
        Ok(Engine {
            workers: senders,
            links,
            erased: FxHashSet::default(),
            suppressed: 0,
            tables,
            clock: Clock::watermark(NO_WATERMARK),
            guards,
            collector,
            frontier,
            time: 0,
        })
    }

    /// Sends `events` at the current logical time, each to the worker its journey is placed on
    /// (so the dataflow's exchange keeps them local). Blocks while the workers are
    /// [`FEED_QUEUE`] messages behind. Events of erased identities are dropped and counted
    /// ([`Engine::suppressed`]).
    pub fn send(&mut self, mut events: Vec<Event>) -> Result<(), Error> {
        if !self.erased.is_empty() {
            let before = events.len();
            events.retain(|event| !self.erased.contains(&event.journey.identity()));
            self.suppressed += (before - events.len()) as u64;
        }
        let workers = self.workers.len();
        if workers == 1 {
            return self.feed(0, Feed::Events(events));
        }
        let mut shares: Vec<Vec<Event>> =
            (0..workers).map(|_| Vec::with_capacity(events.len() / workers + 1)).collect();
        for event in events {
            shares[(event.journey.placement_hash() % workers as u64) as usize].push(event);
        }
        for (worker, share) in shares.into_iter().enumerate() {
            if !share.is_empty() {
                self.feed(worker, Feed::Events(share))?;
            }
        }
        Ok(())
    }

    /// States or retracts links between identities at the current logical time. Without
    /// stitching there are none: records state links only when identity fields are mapped.
    pub fn link(&mut self, changes: &[LinkChange]) -> Result<(), Error> {
        let Some(book) = &mut self.links else { return Ok(()) };
        let updates = book.updates(changes, &self.erased);
        if updates.is_empty() {
            return Ok(());
        }
        // The links are a small collection; one worker takes them in, the dataflow spreads them.
        self.feed(0, Feed::Links(updates))
    }

    /// Seals the current logical time with `clock` (sessions that ended before its watermark
    /// are over; neither of its times goes back), so that the time completes once the workers
    /// have applied it, and returns it; later events belong to the next time.
    ///
    /// A settled horizon promises that no later event is before it: the caller admits only
    /// events at or after it from then on. With identity stitching it is ignored, since a link
    /// moves a device's earlier events into another journey.
    pub fn seal(&mut self, clock: Clock) -> Result<u64, Error> {
        self.clock.watermark = self.clock.watermark.max(clock.watermark);
        if self.links.is_none() {
            self.clock.settled = self.clock.settled.max(clock.settled);
        }
        for worker in 0..self.workers.len() {
            self.feed(worker, Feed::Seal(self.clock))?;
        }
        self.time += 1;
        Ok(self.time - 1)
    }

    /// Sends `events` as one logical time of their own and seals it with `clock`; returns
    /// that time.
    pub fn submit(&mut self, events: Vec<Event>, clock: Clock) -> Result<u64, Error> {
        self.send(events)?;
        self.seal(clock)
    }

    /// Erases the person of the customer id (or else device id) `id`: its identity and every
    /// identity linked to it lose all their events and links, in every view, at a logical time
    /// of its own, as if they had never been; their later events and links are dropped as they
    /// come. Events sent before are erased too: every earlier time is applied first. Returns
    /// once the erasure is applied; `None` (and nothing done) when no view knows `id`.
    pub fn erase(&mut self, id: Sym) -> Result<Option<Erasure>, Error> {
        let before = self.seal(self.clock)?;
        self.wait_for(before)?;
        let tables = self.tables.read().expect("tables lock");
        let Some(identity) = tables.identity_of(id) else { return Ok(None) };
        let component = match &self.links {
            Some(book) => book.component(identity),
            None => vec![identity],
        };
        let events = component.iter().flat_map(|&id| tables.journeys_of(id)).map(|row| row.events).sum();
        drop(tables);
        let (time, links) = self.forget(&component)?;
        Ok(Some(Erasure { time, identities: component, events, links }))
    }

    /// Erases the identities of `component` (a person's, as [`Engine::erase`] finds it, or as a
    /// replayed log names it): their events and links leave every view at a logical time of its
    /// own, applied when this returns, and their later events and links are dropped as they
    /// come. Returns that time and the number of links removed.
    pub fn forget(&mut self, component: &[Identity]) -> Result<(u64, usize), Error> {
        self.erased.extend(component.iter().copied());
        let links = match &mut self.links {
            Some(book) => book.erase(&self.erased),
            None => Vec::new(),
        };
        let removed = links.len();
        if !links.is_empty() {
            self.feed(0, Feed::Links(links))?;
        }
        for worker in 0..self.workers.len() {
            self.feed(worker, Feed::Erase(component.to_vec()))?;
        }
        let time = self.seal(self.clock)?;
        self.wait_for(time)?;
        Ok((time, removed))
    }

    /// Drops the events of erased identities from `events` and the links naming one from
    /// `links`, counting the events as suppressed: what [`Engine::send`] and [`Engine::link`]
    /// would drop, for a caller that records what it feeds.
    pub fn suppress(&mut self, events: &mut Vec<Event>, links: &mut Vec<LinkChange>) {
        if self.erased.is_empty() {
            return;
        }
        let before = events.len();
        events.retain(|event| !self.erased.contains(&event.journey.identity()));
        self.suppressed += (before - events.len()) as u64;
        links.retain(|link| !self.erased.contains(&link.customer) && !self.erased.contains(&link.other));
    }

    /// Events of erased identities dropped as they came, so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Hands `message` to `worker`.
    fn feed(&self, worker: usize, message: Feed) -> Result<(), Error> {
        self.workers[worker].send(message).map_err(|_| Error::WorkerStopped)
    }

    /// What the collector has applied, to wait on from another thread.
    pub fn frontier(&self) -> Arc<Frontier> {
        self.frontier.clone()
    }

    /// Blocks until `time` is reflected in the collector's tables (and deltas).
    pub fn wait_for(&self, time: u64) -> Result<(), Error> {
        if !self.frontier.wait_for(time) {
            return Err(Error::StoppedBefore { time });
        }
        Ok(())
    }

    /// Closes the input, waits for every submitted time to be applied and the final snapshot
    /// to be written, and returns what the collector ends with.
    pub fn finish(self) -> Result<Collected, Error> {
        drop(self.workers);
        let worker_results = self.guards.join();
        let collected = self.collector.join().map_err(|_| Error::CollectorPanicked)?;
        for result in worker_results {
            result.map_err(Error::WorkerFailed)?;
        }
        collected
    }
}
