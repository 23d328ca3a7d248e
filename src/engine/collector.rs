//! The output stage of a run: gathers each logical time's changes from all workers, applies them
//! to the sink tables once every worker has completed that time, writes the context deltas, and
//! writes snapshots at the configured interval and at the end.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::Error;
use super::frontier::Frontier;
use super::worker::Completed;
use crate::sink::update::Update;
use crate::sink::{self, Changes, DeltaWriter, SnapshotInfo, SnapshotWriter, Tables};

/// The sink tables, shared between the collector (the only writer) and readers such as the
/// live service's lookups.
pub type SharedTables = Arc<RwLock<Tables>>;

/// Sees every applied logical time while the tables are still locked for writing, so that
/// what it publishes (for example to subscribers) is in the same order as the tables change.
pub trait Observer: Send {
    /// `changes` were just applied to `tables`.
    fn applied(&mut self, changes: &Changes, tables: &Tables);
    /// A snapshot was just written.
    fn snapshot_written(&mut self, info: &SnapshotInfo);
    /// A periodic snapshot could not be written (the next is tried at the next interval).
    fn snapshot_failed(&mut self);
}

/// What the collector ends with.
pub struct Collected {
    /// The final tables.
    pub tables: SharedTables,
    /// The final snapshot.
    pub snapshot: SnapshotInfo,
    /// Logical times applied.
    pub times: u64,
    /// Snapshots written, the final one included.
    pub snapshots: u64,
}

/// Applies completed times in order and writes the outputs.
pub struct Collector {
    /// The number of workers that must complete a time before it is applied.
    workers: usize,
    /// The sink tables.
    tables: SharedTables,
    /// The snapshot writer.
    snapshots: SnapshotWriter,
    /// Wall-clock time between snapshots, if periodic snapshots are on.
    interval: Option<Duration>,
    /// The delta writer, if deltas are written.
    deltas: Option<DeltaWriter>,
    /// Who else sees every applied time, if anyone.
    observer: Option<Box<dyn Observer>>,
}

impl Collector {
    /// A collector for `workers` workers writing into `tables` through `snapshots` and `deltas`.
    pub fn new(
        workers: usize,
        tables: Tables,
        snapshots: SnapshotWriter,
        interval: Option<Duration>,
        deltas: Option<DeltaWriter>,
    ) -> Self {
        Collector { workers, tables: Arc::new(RwLock::new(tables)), snapshots, interval, deltas, observer: None }
    }

    /// This collector, also reporting every applied time and snapshot to `observer`.
    pub fn with_observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The tables this collector writes, for readers.
    pub fn tables(&self) -> SharedTables {
        self.tables.clone()
    }

    /// Runs until every worker has hung up, then writes the final snapshot.
    /// Each applied time is announced on `frontier`.
    pub fn run(mut self, completed: Receiver<Completed>, frontier: &Frontier) -> Result<Collected, Error> {
        // Per time: the workers that completed it, their watermark, and each one's updates.
        let mut pending: BTreeMap<u64, (usize, i64, Vec<Vec<Update>>)> = BTreeMap::new();
        let mut last_snapshot = Instant::now();
        let mut times = 0;
        let mut snapshots = 0;
        for Completed { time, watermark, updates } in completed {
            let entry = pending.entry(time).or_insert((0, watermark, Vec::new()));
            entry.0 += 1;
            entry.2.push(updates);
            while let Some(first) = pending.first_entry() {
                if first.get().0 < self.workers {
                    break;
                }
                let (time, (_, watermark, updates)) = first.remove_entry();
                {
                    let mut tables = self.tables.write().expect("tables lock");
                    let report_rows = self.deltas.is_some() || self.observer.is_some();
                    let changes = tables.apply_reporting(time, updates.into_iter().flatten(), report_rows);
                    tables.set_watermark(watermark);
                    if let Some(observer) = &mut self.observer {
                        observer.applied(&changes, &tables);
                    }
                    drop(tables);
                    if let Some(deltas) = &mut self.deltas {
                        deltas.write(&changes)?;
                        deltas.flush()?;
                    }
                }
                times += 1;
                if self.interval.is_some_and(|interval| last_snapshot.elapsed() >= interval) {
                    // A full disk or an unwritable directory must not stop the engine: the
                    // next interval tries again (the final snapshot's failure is an error).
                    match self.snapshot() {
                        Ok(_) => snapshots += 1,
                        Err(error) => {
                            tracing::error!("a periodic snapshot failed; the next interval tries again: {error}");
                            if let Some(observer) = &mut self.observer {
                                observer.snapshot_failed();
                            }
                        }
                    }
                    last_snapshot = Instant::now();
                }
                frontier.advance(time);
            }
        }
        if let Some(&time) = pending.keys().next() {
            return Err(Error::Incomplete { time });
        }
        let snapshot = self.snapshot()?;
        Ok(Collected { tables: self.tables, snapshot, times, snapshots: snapshots + 1 })
    }

    /// Writes a snapshot of the tables as they are now.
    fn snapshot(&mut self) -> Result<SnapshotInfo, sink::Error> {
        let info = self.snapshots.write(&self.tables.read().expect("tables lock"))?;
        if let Some(observer) = &mut self.observer {
            observer.snapshot_written(&info);
        }
        Ok(info)
    }
}
