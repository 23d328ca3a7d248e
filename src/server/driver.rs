//! The engine driver of the live service: one thread that takes ingest batches (from HTTP and
//! from the configured sources) in arrival order, numbers their events, writes their rejections
//! to the dead-letter file, feeds the engine and seals logical times.
//!
//! A time is sealed as soon as its first batch is in while the engine is idle, so a lone event
//! is complete within milliseconds; while the engine is still busy with the previous time, the
//! open time keeps taking the batches that arrive, up to the epoch interval, so that under load
//! the engine works on fewer, larger times instead of falling behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use stepstone_dataflows::event::{Event, NO_WATERMARK};
use stepstone_dataflows::symbols::Sym;

use super::live::Live;
use crate::engine::{Collected, Engine, Erasure, LinkChange};
use crate::source::{DeadLetterWriter, ReasonKind, Rejection};

/// Logical times sealed but not yet complete before the driver waits for the engine (and the
/// ingest queue fills, so that ingest answers 429).
const MAX_IN_FLIGHT: u64 = 64;

/// A request to erase a person, with where to send what the erasure did.
#[derive(Debug)]
pub struct EraseRequest {
    /// A customer id (or else device id) of the person.
    pub id: Sym,
    /// Who asks, for the erasure log.
    pub by: String,
    /// Where the outcome goes.
    pub reply: tokio::sync::oneshot::Sender<Option<Erasure>>,
}

/// What the engine driver receives.
#[derive(Debug)]
pub struct Batch {
    /// Decoded events, in arrival order; the driver numbers them.
    pub events: Vec<Event>,
    /// Links between identities stated or retracted, in arrival order.
    pub links: Vec<LinkChange>,
    /// Records that could not be decoded, or were late.
    pub rejections: Vec<Rejection>,
    /// The watermark of the batch's source after it ([`NO_WATERMARK`] for a bounded source).
    pub watermark: i64,
    /// Late events among `events`, accepted by `late = "accept"`.
    pub late_accepted: u64,
    /// Records withheld for want of analytics consent.
    pub withheld: u64,
    /// A person to erase once the batch's events are in.
    pub erasure: Option<EraseRequest>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            events: Vec::new(),
            links: Vec::new(),
            rejections: Vec::new(),
            watermark: NO_WATERMARK,
            late_accepted: 0,
            withheld: 0,
            erasure: None,
        }
    }
}

/// How often the driver checks `stop` while no batch arrives.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How often the driver checks whether the engine is done while it keeps a time open.
const BUSY_POLL: Duration = Duration::from_micros(200);

/// Starts the driver thread; it ends, finishing the engine (and writing the final snapshot),
/// once every sender of `batches` is gone, or once `stop` is set and the queue is empty.
pub fn spawn(
    mut engine: Engine,
    mut dead_letters: DeadLetterWriter,
    batches: Receiver<Batch>,
    live: Arc<Live>,
    epoch_interval: Duration,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<Collected>>> {
    std::thread::Builder::new()
        .name("stepstone-driver".into())
        .spawn(move || {
            let fed = drive(&mut engine, &mut dead_letters, &batches, &live, epoch_interval, &stop);
            let collected = engine.finish();
            dead_letters.flush()?;
            fed?;
            collected
        })
        .context("spawning the engine driver")
}

/// The driver's loop.
fn drive(
    engine: &mut Engine,
    dead_letters: &mut DeadLetterWriter,
    batches: &Receiver<Batch>,
    live: &Live,
    epoch_interval: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut next_seq = 0u64;
    // The greatest watermark of the sources: every time is sealed with it.
    let mut watermark = NO_WATERMARK;
    let frontier = engine.frontier();
    // The latest sealed time.
    let mut sealed: Option<u64> = None;
    // A batch taken after the open time's interval ran out: the first of the next time.
    let mut carried: Option<Batch> = None;
    loop {
        let first = match carried.take().map_or_else(|| batches.recv_timeout(STOP_POLL), Ok) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let opened = Instant::now();
        let mut batch = Some(first);
        while let Some(Batch { mut events, links, rejections, watermark: reached, late_accepted, withheld, erasure }) =
            batch.take()
        {
            live.metrics.events_without_consent.inc_by(withheld);
            for rejection in &rejections {
                dead_letters.write(rejection)?;
                live.metrics.reject(rejection.reason_kind());
                if rejection.kind == ReasonKind::Late {
                    live.metrics.events_late.inc();
                }
            }
            live.metrics.events_late.inc_by(late_accepted);
            watermark = watermark.max(reached);
            if !rejections.is_empty() {
                dead_letters.flush()?;
            }
            if !events.is_empty() {
                for event in &mut events {
                    event.seq = next_seq;
                    next_seq += 1;
                }
                live.metrics.events_in.inc_by(events.len() as u64);
                let suppressed = engine.suppressed();
                engine.send(events)?;
                live.metrics.events_suppressed.inc_by(engine.suppressed() - suppressed);
            }
            engine.link(&links)?;
            if let Some(request) = erasure {
                let erased = erase(engine, live, &request)?;
                if let Some(erased) = &erased {
                    sealed = Some(erased.time);
                    live.metrics.sealed(erased.time);
                }
                // The asker may have gone; the erasure stands.
                let _ = request.reply.send(erased);
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
                        (frontier.applied() < sealed && opened.elapsed() < epoch_interval).then(Batch::default)
                    })
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            };
        }
        let time = engine.seal(watermark)?;
        sealed = Some(time);
        live.metrics.sealed(time);
        if time >= MAX_IN_FLIGHT {
            engine.wait_for(time - MAX_IN_FLIGHT)?;
        }
    }
    Ok(())
}

/// Applies one erasure and logs it: every time before it completes first, and it is applied
/// when this returns. A log that cannot be written is reported, not fatal: the erasure stands.
fn erase(engine: &mut Engine, live: &Live, request: &EraseRequest) -> anyhow::Result<Option<Erasure>> {
    let Some(erasure) = engine.erase(request.id)? else { return Ok(None) };
    if let Err(error) = live.erasure_log.record(&erasure, &request.by) {
        tracing::error!("erasure at logical time {} applied but not logged: {error:#}", erasure.time);
    }
    live.metrics.erasures.inc();
    live.metrics.events_erased.inc_by(erasure.events);
    Ok(Some(erasure))
}
