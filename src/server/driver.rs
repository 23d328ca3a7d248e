//! The engine driver of the live service: one thread that takes ingest batches (from HTTP and
//! from the configured sources) in arrival order, numbers their events, appends HTTP ingest to
//! the durable log and acknowledges it, writes rejections to the dead-letter file, feeds the
//! engine and seals logical times.
//!
//! A time is sealed as soon as its first batch is in while the engine is idle, so a lone event
//! is complete within milliseconds; while the engine is still busy with the previous time, the
//! open time keeps taking the batches that arrive, up to the epoch interval, so that under load
//! the engine works on fewer, larger times instead of falling behind. With the `batch` fsync
//! policy the log is forced to disk once per time, before its requests are acknowledged and fed
//! (group commit): nothing the engine shows was not durable first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use stepstone_dataflows::event::{Clock, Event, NO_WATERMARK};
use tokio::sync::oneshot;

use super::live::Live;
use super::submission::{Ack, EraseRequest, Submission};
use crate::engine::{self, Collected, Engine};
use crate::journal::entry::{self, LoggedEvent, LoggedIdentity, LoggedLink, Resume};
use crate::journal::keys::RecentKeys;
use crate::journal::{self, Entry, Fsync, Journal};
use crate::source::{self, DeadLetterWriter, LinkChange, ReasonKind, Rejection};

/// Logical times sealed but not yet complete before the driver waits for the engine (and the
/// ingest queue fills, so that ingest answers 429).
const MAX_IN_FLIGHT: u64 = 64;

/// How often the driver checks `stop` while no batch arrives.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How often the driver checks whether the engine is done while it keeps a time open.
const BUSY_POLL: Duration = Duration::from_micros(200);

/// What stops the engine driver. A request the durable log cannot take is refused
/// ([`Ack::NotLogged`]), not an error of the driver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The driver thread could not be started.
    #[error("spawning the engine driver: {0}")]
    Spawn(#[source] std::io::Error),
    /// The engine failed (a worker stopped, a sink could not be written).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// The durable log could not be forced to disk as it was closed.
    #[error(transparent)]
    Log(#[from] journal::Error),
    /// The dead letters still gathered could not be written at the end.
    #[error(transparent)]
    DeadLetters(#[from] source::Error),
}

/// Where the driver starts: the log to append to (none when it is off), where ingest stood,
/// and the idempotency keys acknowledged so far.
pub struct Start {
    /// The durable log, recovered.
    pub journal: Option<Journal>,
    /// Where ingest stood.
    pub resume: Resume,
    /// The idempotency keys acknowledged so far.
    pub keys: RecentKeys,
    /// Whether the watermark also settles history: every event comes over HTTP, and late ones
    /// are rejected, so no event before the watermark of the requests fed so far can come.
    pub settles: bool,
}

/// Starts the driver thread; it ends, finishing the engine (and writing the final snapshot),
/// once every sender of `batches` is gone, or once `stop` is set and the queue is empty.
pub fn spawn(
    engine: Engine,
    dead_letters: DeadLetterWriter,
    batches: Receiver<Submission>,
    live: Arc<Live>,
    epoch_interval: Duration,
    stop: Arc<AtomicBool>,
    start: Start,
) -> Result<JoinHandle<Result<Collected, Error>>, Error> {
    std::thread::Builder::new()
        .name("stepstone-driver".into())
        .spawn(move || {
            let mut driver = Driver {
                next_seq: start.resume.next_seq,
                watermark: start.resume.watermark,
                settled: start.settles.then_some(NO_WATERMARK),
                engine,
                dead_letters,
                live,
                journal: start.journal,
                keys: start.keys,
                pending: Vec::new(),
            };
            let fed = driver.drive(&batches, epoch_interval, &stop);
            let Driver { engine, mut dead_letters, journal, .. } = driver;
            let closed = journal.map_or(Ok(()), Journal::close);
            let collected = engine.finish();
            dead_letters.flush()?;
            fed?;
            closed?;
            Ok(collected?)
        })
        .map_err(Error::Spawn)
}

/// A logged request waiting for its time's forced write before it is acknowledged and fed.
struct Pending {
    events: Vec<Event>,
    links: Vec<LinkChange>,
    arrived: u64,
    key: Option<String>,
    /// Records the request accepted.
    accepted: u64,
    /// The ingest watermark after the request.
    watermark: i64,
    ack: oneshot::Sender<Ack>,
    /// Repeats of the request's key that came while it waited: answered as it is.
    repeats: Vec<oneshot::Sender<Ack>>,
}

/// The driver's state.
struct Driver {
    engine: Engine,
    dead_letters: DeadLetterWriter,
    live: Arc<Live>,
    journal: Option<Journal>,
    /// Idempotency keys of the requests taken.
    keys: RecentKeys,
    /// Requests logged in the open time, not yet forced to disk.
    pending: Vec<Pending>,
    /// The arrival number of the next event.
    next_seq: u64,
    /// The greatest watermark of the sources: every time is sealed with it.
    watermark: i64,
    /// When history settles ([`Start::settles`]): the greatest watermark of the requests fed
    /// (not of those refused by the log), the settled horizon of every seal.
    settled: Option<i64>,
}

impl Driver {
    /// The driver's loop.
    fn drive(
        &mut self,
        batches: &Receiver<Submission>,
        epoch_interval: Duration,
        stop: &AtomicBool,
    ) -> Result<(), engine::Error> {
        let frontier = self.engine.frontier();
        // The latest sealed time.
        let mut sealed: Option<u64> = None;
        // A batch taken after the open time's interval ran out: the first of the next time.
        let mut carried: Option<Submission> = None;
        loop {
            self.sync_if_due();
            let wait = self.journal.as_ref().and_then(Journal::sync_due).map_or(STOP_POLL, |due| due.min(STOP_POLL));
            let first = match carried.take().map_or_else(|| batches.recv_timeout(wait), Ok) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => break,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let opened = Instant::now();
            let mut batch = Some(first);
            while let Some(mut taken) = batch.take() {
                let erasure = taken.erasure.take();
                self.take(taken)?;
                if let Some(request) = erasure {
                    self.commit()?;
                    if let Some(time) = self.erase(request)? {
                        sealed = Some(time);
                        self.live.metrics.sealed(time);
                    }
                }
                let busy = sealed.is_some() && frontier.applied() < sealed;
                let remaining = epoch_interval.saturating_sub(opened.elapsed());
                batch = match batches.try_recv() {
                    Ok(more) if !remaining.is_zero() => Some(more),
                    Ok(more) => {
                        carried = Some(more);
                        None
                    }
                    Err(TryRecvError::Empty) if busy && !remaining.is_zero() => {
                        batches.recv_timeout(remaining.min(BUSY_POLL)).ok().or_else(|| {
                            // Keep the time open while the engine is still busy.
                            (frontier.applied() < sealed && opened.elapsed() < epoch_interval).then(Submission::default)
                        })
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
                };
            }
            self.commit()?;
            let settled = self.settled.unwrap_or(NO_WATERMARK);
            let time = self.engine.seal(Clock { watermark: self.watermark, settled })?;
            sealed = Some(time);
            self.live.metrics.sealed(time);
            if time >= MAX_IN_FLIGHT {
                self.engine.wait_for(time - MAX_IN_FLIGHT)?;
            }
        }
        self.commit()
    }

    /// Takes one batch into the open time: a request seen before is answered as before; the
    /// rest is numbered, logged if it came over HTTP (held until the time's forced write with
    /// the `batch` policy), and fed.
    fn take(&mut self, batch: Submission) -> Result<(), engine::Error> {
        let Submission {
            mut events,
            mut links,
            rejections,
            watermark,
            late_accepted,
            withheld,
            erasure: _,
            key,
            accepted,
            clock_latest,
            ack,
        } = batch;
        let answered = key.as_deref().and_then(|key| self.keys.get(key));
        if let Some(answered) = answered
            && let Some(ack) = ack
        {
            self.live.metrics.requests_duplicate.inc();
            // A repeat of a request still waiting for its time's forced write waits with it:
            // if that write fails, neither is applied.
            match self.pending.iter_mut().find(|pending| pending.key == key) {
                Some(first) => first.repeats.push(ack),
                None => {
                    let _ = ack.send(Ack::Duplicate(answered));
                }
            }
            return Ok(());
        }
        // Events taken in count as arrived, the suppressed ones included.
        let arrived = events.len() as u64;
        let suppressed = self.engine.suppressed();
        self.engine.suppress(&mut events, &mut links);
        self.live.metrics.events_suppressed.inc_by(self.engine.suppressed() - suppressed);
        for event in &mut events {
            event.seq = self.next_seq;
            self.next_seq += 1;
        }
        let logged = ack.is_some() && (accepted > 0 || key.is_some());
        if let (Some(journal), true) = (&mut self.journal, logged) {
            let names = self.live.symbols.names();
            let entry = Entry::Records(entry::LoggedRecords {
                key: key.clone(),
                accepted,
                events: events.iter().map(|event| LoggedEvent::of(event, &names)).collect(),
                links: links.iter().map(|link| LoggedLink::of(link, &names)).collect(),
                clock_latest,
                watermark: self.watermark.max(watermark),
            });
            if let Err(error) = journal.append(&entry) {
                tracing::error!("an ingest request was refused: {error}");
                self.live.metrics.log_failures.inc();
                let _ = ack.map(|ack| ack.send(Ack::NotLogged(Arc::new(error))));
                return Ok(());
            }
            self.live.metrics.log_appends.inc();
        }
        if let (Some(key), true) = (&key, ack.is_some()) {
            self.keys.insert(key.clone(), accepted);
        }
        self.watermark = self.watermark.max(watermark);
        self.live.metrics.events_without_consent.inc_by(withheld);
        for rejection in &rejections {
            self.live.metrics.reject(rejection.reason_kind());
            if rejection.kind == ReasonKind::Late {
                self.live.metrics.events_late.inc();
            }
        }
        self.live.metrics.events_late.inc_by(late_accepted);
        self.write_dead_letters(&rejections);
        let held = logged && self.journal.as_ref().is_some_and(|journal| journal.settings().fsync == Fsync::Batch);
        match ack {
            Some(ack) if held => {
                self.pending.push(Pending {
                    events,
                    links,
                    arrived,
                    key,
                    accepted,
                    watermark,
                    ack,
                    repeats: Vec::new(),
                });
            }
            ack => {
                self.feed(events, &links, arrived, watermark)?;
                let _ = ack.map(|ack| ack.send(Ack::Logged));
            }
        }
        Ok(())
    }

    /// Writes `rejections` to the dead-letter file. A file that cannot take them (a full disk)
    /// is reported and counted, not fatal: ingest answers list the rejections all the same, and
    /// the lines still buffered are written once the file takes them again.
    fn write_dead_letters(&mut self, rejections: &[Rejection]) {
        if rejections.is_empty() {
            return;
        }
        let written = rejections
            .iter()
            .try_for_each(|rejection| self.dead_letters.write(rejection))
            .and_then(|()| self.dead_letters.flush());
        if let Err(error) = written {
            tracing::error!("{} dead letters may not be written: {error}", rejections.len());
            self.live.metrics.dead_letter_failures.inc();
        }
    }

    /// Forces the open time's appends to disk, then acknowledges and feeds its requests; if
    /// that fails, they are refused and nothing of them is applied.
    fn commit(&mut self) -> Result<(), engine::Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let synced = self.journal.as_mut().map_or(Ok(()), Journal::sync);
        let pending = std::mem::take(&mut self.pending);
        match synced {
            Ok(()) => {
                for Pending { events, links, arrived, accepted, watermark, ack, repeats, .. } in pending {
                    self.feed(events, &links, arrived, watermark)?;
                    let _ = ack.send(Ack::Logged);
                    for repeat in repeats {
                        let _ = repeat.send(Ack::Duplicate(accepted));
                    }
                }
            }
            Err(error) => {
                tracing::error!("{} ingest requests were refused: {error}", pending.len());
                let reason = Arc::new(error);
                for Pending { key, ack, repeats, .. } in pending {
                    if let Some(key) = key {
                        self.keys.remove(&key);
                    }
                    for ack in std::iter::once(ack).chain(repeats) {
                        self.live.metrics.log_failures.inc();
                        let _ = ack.send(Ack::NotLogged(reason.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Forces the log to disk when the interval policy wants it.
    fn sync_if_due(&mut self) {
        if let Some(journal) = &mut self.journal
            && journal.sync_due().is_some_and(|due| due.is_zero())
            && let Err(error) = journal.sync()
        {
            tracing::error!("{error}");
        }
    }

    /// Feeds events and links at the open time, of a batch after which its source's watermark
    /// is `watermark`; `arrived` events count as taken in (the suppressed ones included).
    fn feed(
        &mut self,
        events: Vec<Event>,
        links: &[LinkChange],
        arrived: u64,
        watermark: i64,
    ) -> Result<(), engine::Error> {
        if let Some(settled) = &mut self.settled {
            *settled = (*settled).max(watermark);
        }
        self.live.metrics.events_in.inc_by(arrived);
        if !events.is_empty() {
            self.engine.send(events)?;
        }
        self.engine.link(links)
    }

    /// Applies one erasure, logs it (and compacts the log, so that the person's records leave
    /// the disk) and answers it: every time before it completes first, and it is applied when
    /// this returns. Returns the erasure's time. An erasure log that cannot be written is
    /// reported, not fatal: the erasure stands.
    fn erase(&mut self, request: EraseRequest) -> Result<Option<u64>, engine::Error> {
        let Some(erasure) = self.engine.erase(request.id)? else {
            let _ = request.reply.send(Ok(None));
            return Ok(None);
        };
        let live = &self.live;
        if let Err(error) = live.erasure_log.record(erasure.record(), &request.by) {
            tracing::error!("erasure at logical time {} applied but not logged: {error}", erasure.time);
        }
        live.metrics.erasures.inc();
        live.metrics.events_erased.inc_by(erasure.events);
        let logged = match &mut self.journal {
            Some(journal) => {
                let names = live.symbols.names();
                let identities = erasure.identities.iter().map(|&identity| LoggedIdentity::of(identity, &names));
                let logged = journal.append(&Entry::Erased(identities.collect())).and_then(|()| journal.sync());
                if logged.is_ok()
                    && let Err(error) = journal.compact()
                {
                    tracing::error!(
                        "erasure at logical time {} logged, but the log could not be compacted, so the person's \
                         earlier records stay in its files until the next compaction: {error}",
                        erasure.time
                    );
                }
                logged
            }
            None => Ok(()),
        };
        if let Err(error) = &logged {
            tracing::error!("erasure at logical time {} applied but not in the durable log: {error}", erasure.time);
        }
        let time = erasure.time;
        // The asker may have gone; the erasure stands.
        let _ = request.reply.send(logged.map(|()| Some(erasure)));
        Ok(Some(time))
    }
}
