//! The state the live service's handlers share: the engine's tables, the stream of published
//! deltas, the ingest queue and the metrics; and the collector's [`Publisher`] that feeds the
//! delta stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use stepstone_dataflows::event::SessionRule;
use stepstone_dataflows::symbols::Symbols;
use tokio::sync::{Notify, Semaphore, broadcast, watch};

use super::metrics::Metrics;
use super::submission::Submission;
use crate::config::{Pipeline, ServerSettings};
use crate::engine::{Observer, SharedTables};
use crate::sink::deltas::delta_lines;
use crate::sink::{Changes, DeltaLine, ErasureLog, SnapshotInfo, Tables};
use crate::source::JsonRecordDecoder;
use crate::source::lateness::SourceClock;

/// The delta lines of one applied logical time.
#[derive(Debug)]
pub struct Published {
    /// The logical time, complete once these lines are seen.
    pub time: u64,
    /// Its lines, in the order of the delta file.
    pub lines: Vec<DeltaLine>,
}

/// Why an ingest batch was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The engine is behind: the queue is full.
    Busy,
    /// The service is shutting down.
    Closed,
}

/// Everything the handlers share.
pub struct Live {
    /// The engine's output tables.
    pub tables: SharedTables,
    /// The names the tables' symbols stand for.
    pub symbols: Arc<Symbols>,
    /// Every applied time's delta lines, to subscribers.
    pub deltas: broadcast::Sender<Arc<Published>>,
    /// The service's metrics.
    pub metrics: Metrics,
    /// The service's settings.
    pub settings: ServerSettings,
    /// How ingested records are decoded.
    pub records: JsonRecordDecoder,
    /// Whether events keep their session ids (sessions decided by id).
    pub keep_sessions: bool,
    /// The watermark of HTTP ingest, the source of the records posted to `/v1/events`.
    pub http_clock: Mutex<SourceClock>,
    /// Where erasures are logged.
    pub erasure_log: ErasureLog,
    /// The queue to the engine driver; `None` once ingest has stopped.
    ingest: Mutex<Option<Sender<Submission>>>,
    /// Turns true when the service shuts down; subscriptions end on it.
    shutdown: watch::Sender<bool>,
    /// One permit per subscriber place (`max-subscribers`).
    pub subscriber_places: Arc<Semaphore>,
    /// The WebSocket connections still writing, which shutdown waits for.
    pub connections: Arc<Connections>,
}

/// Counts open connections, so that shutdown can wait until they have said goodbye.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

/// One open connection; closes on drop.
pub struct Connection(Arc<Connections>);

impl Drop for Connection {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

impl Connections {
    /// Counts one more open connection.
    pub fn open(self: &Arc<Self>) -> Connection {
        self.open.fetch_add(1, Ordering::AcqRel);
        Connection(self.clone())
    }

    /// Waits until every connection has closed, at most `limit`; `false` if some are still open.
    pub async fn all_closed(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let closed = self.closed.notified();
                if self.open.load(Ordering::Acquire) == 0 {
                    return;
                }
                closed.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Live {
    /// The shared state of a service of `pipeline` over `tables`, whose names are in
    /// `symbols`, queueing ingest batches on `ingest`.
    pub fn new(tables: SharedTables, symbols: Arc<Symbols>, pipeline: &Pipeline, ingest: Sender<Submission>) -> Live {
        let settings = pipeline.server.clone();
        let (deltas, _) = broadcast::channel(settings.subscriber_buffer);
        let settings_places = settings.max_subscribers;
        Live {
            tables,
            symbols,
            deltas,
            metrics: Metrics::new(),
            records: JsonRecordDecoder::new(&pipeline.decode, "POST /v1/events"),
            keep_sessions: pipeline.params.session == SessionRule::ById,
            settings,
            http_clock: Mutex::new(SourceClock::new(pipeline.event_time)),
            erasure_log: ErasureLog::new(&pipeline.out_dir),
            ingest: Mutex::new(Some(ingest)),
            shutdown: watch::channel(false).0,
            subscriber_places: Arc::new(Semaphore::new(settings_places)),
            connections: Arc::default(),
        }
    }

    /// Queues `batch` for the engine without waiting.
    pub fn submit(&self, batch: Submission) -> Result<(), Refused> {
        let sender = self.ingest.lock().expect("ingest lock").clone().ok_or(Refused::Closed)?;
        sender.try_send(batch).map_err(|error| match error {
            TrySendError::Full(_) => Refused::Busy,
            TrySendError::Disconnected(_) => Refused::Closed,
        })
    }

    /// Stops ingest: later batches are refused, and the engine driver ends once the queue drains.
    pub fn stop_ingest(&self) {
        self.ingest.lock().expect("ingest lock").take();
    }

    /// Tells every subscription to end.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that turns true when the service shuts down.
    pub fn on_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// The collector's observer in serve mode: publishes each applied time's delta lines to the
/// subscribers and keeps the metrics.
pub struct Publisher {
    /// The shared state.
    pub live: Arc<Live>,
}

impl Observer for Publisher {
    fn applied(&mut self, changes: &Changes, _tables: &Tables) {
        let live = &self.live;
        live.metrics.applied(changes.time);
        if live.deltas.receiver_count() == 0 {
            return;
        }
        match delta_lines(changes, &live.symbols.names()) {
            Ok(lines) => {
                live.metrics.deltas_out.inc_by(lines.len() as u64);
                // No subscriber now is not an error.
                let _ = live.deltas.send(Arc::new(Published { time: changes.time, lines }));
            }
            Err(error) => tracing::error!("cannot publish the deltas of time {}: {error:#}", changes.time),
        }
    }

    fn snapshot_written(&mut self, _info: &SnapshotInfo) {
        self.live.metrics.snapshot_written();
    }

    fn snapshot_failed(&mut self) {
        self.live.metrics.snapshot_failures.inc();
    }
}
