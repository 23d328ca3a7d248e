//! Recovery of the live service at start: opens the durable event log ([`crate::journal`]) and
//! replays it into the starting engine — the checkpoint's and the tail's events and links are
//! fed as logical times of up to `epoch-events` events each, erasures are applied where they
//! were, and where ingest stood is restored — before the service takes new requests.

use std::sync::Arc;

use stepstone_dataflows::event::Clock;
use stepstone_dataflows::symbols::{Interner, Symbols};

use crate::engine::{self, Engine};
use crate::journal::entry::{Entry, Resume};
use crate::journal::keys::RecentKeys;
use crate::journal::{self, Journal, Settings, Truncated};

/// What stops recovery.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be opened or read (damage it cannot cut off, another service holding
    /// it, a file operation that failed).
    #[error(transparent)]
    Log(#[from] journal::Error),
    /// The engine failed while the log was replayed into it.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

/// Feeds replayed entries to an engine.
struct Replayer<'a> {
    engine: &'a mut Engine,
    interner: Interner,
    /// Events fed since the last seal.
    unsealed: usize,
    /// Events per logical time.
    events_per_time: usize,
    /// Where ingest stood after the entries so far.
    resume: Resume,
    /// The idempotency keys of the requests so far.
    keys: RecentKeys,
    /// Events replayed.
    events: u64,
}

impl<'a> Replayer<'a> {
    /// A replayer into `engine`, interning names in `symbols`, sealing a time every
    /// `events_per_time` events.
    fn new(engine: &'a mut Engine, symbols: Arc<Symbols>, events_per_time: usize) -> Self {
        Replayer {
            engine,
            interner: Interner::new(symbols),
            unsealed: 0,
            events_per_time: events_per_time.max(1),
            resume: Resume::default(),
            keys: RecentKeys::default(),
            events: 0,
        }
    }

    /// Applies one entry.
    fn apply(&mut self, entry: Entry) -> Result<(), Error> {
        match entry {
            Entry::Records(batch) => {
                self.resume.advance(batch.resume());
                if let Some(key) = batch.key {
                    self.keys.insert(key, batch.accepted);
                }
                let events: Vec<_> = batch.events.iter().map(|event| event.to_event(&mut self.interner)).collect();
                let links: Vec<_> = batch.links.iter().map(|link| link.to_change(&mut self.interner)).collect();
                self.events += events.len() as u64;
                self.unsealed += events.len();
                self.engine.send(events)?;
                self.engine.link(&links)?;
                if self.unsealed >= self.events_per_time {
                    self.seal()?;
                }
            }
            Entry::Erased(identities) => {
                let identities: Vec<_> =
                    identities.iter().map(|identity| identity.to_identity(&mut self.interner)).collect();
                self.engine.forget(&identities)?;
                self.unsealed = 0;
            }
            Entry::Keys(keys) => {
                for (key, accepted) in keys {
                    self.keys.insert(key, accepted);
                }
            }
            Entry::End(resume) => self.resume.advance(resume),
        }
        Ok(())
    }

    /// Seals what was fed since the last seal, with the replayed watermark.
    fn seal(&mut self) -> Result<(), engine::Error> {
        self.engine.seal(Clock::watermark(self.resume.watermark))?;
        self.unsealed = 0;
        Ok(())
    }
}

/// What [`recover`] restored.
pub struct Restored {
    /// The log, ready to append.
    pub journal: Journal,
    /// Where ingest stood.
    pub resume: Resume,
    /// The idempotency keys acknowledged before.
    pub keys: RecentKeys,
}

/// Opens the log of `settings` and replays it into `engine` (whose names are in `symbols`),
/// in logical times of up to `events_per_time` events; returns once the engine has applied all of
/// it. Reports what it found on stderr.
pub fn recover(
    engine: &mut Engine,
    symbols: Arc<Symbols>,
    settings: Settings,
    events_per_time: usize,
) -> Result<Restored, Error> {
    let started = std::time::Instant::now();
    let mut replayer = Replayer::new(engine, symbols, events_per_time);
    let (journal, recovered) = Journal::open(settings, |entry| replayer.apply(entry))?;
    if let Some(Truncated { segment, offset, dropped, reason }) = &recovered.truncated {
        eprintln!(
            "log: cut a torn tail off {} at byte {offset} ({dropped} bytes: {reason}); every entry before it is kept",
            segment.display()
        );
    }
    let Replayer { resume, keys, events, .. } = replayer;
    if recovered.entries > 0 {
        let time = engine.seal(Clock::watermark(resume.watermark))?;
        engine.wait_for(time)?;
        eprintln!(
            "log: recovered {events} events from {} and {} segment(s) in {:.2?}",
            recovered.checkpoint.as_ref().map_or("no checkpoint".to_owned(), |path| path.display().to_string()),
            recovered.segments,
            started.elapsed()
        );
    }
    Ok(Restored { journal, resume, keys })
}
