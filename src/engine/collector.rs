//! The output stage of a run: gathers each logical time's changes from all workers, applies them
//! to the sink tables once every worker has completed that time, writes the context deltas, and
//! writes snapshots at the configured interval and at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::handle::Frontier;
use super::worker::Completed;
use crate::sink::update::Update;
use crate::sink::{DeltaWriter, SnapshotInfo, SnapshotWriter, Tables};

/// What the collector ends with.
pub struct Collected {
    /// The final tables.
    pub tables: Tables,
    /// The final snapshot.
    pub snapshot: SnapshotInfo,
    /// Logical times applied.
    pub epochs: u64,
    /// Snapshots written, the final one included.
    pub snapshots: u64,
}

/// Applies completed times in order and writes the outputs.
pub struct Collector {
    /// The number of workers that must complete a time before it is applied.
    workers: usize,
    /// The sink tables.
    tables: Tables,
    /// The snapshot writer.
    snapshots: SnapshotWriter,
    /// Wall-clock time between snapshots, if periodic snapshots are on.
    interval: Option<Duration>,
    /// The delta writer, if deltas are written.
    deltas: Option<DeltaWriter>,
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
        Collector { workers, tables, snapshots, interval, deltas }
    }

    /// Runs until every worker has hung up, then writes the final snapshot.
    /// Each applied time is announced on `frontier`.
    pub fn run(mut self, completed: Receiver<Completed>, frontier: &Frontier) -> anyhow::Result<Collected> {
        let mut pending: BTreeMap<u64, (usize, Vec<Update>)> = BTreeMap::new();
        let mut last_snapshot = Instant::now();
        let mut epochs = 0;
        let mut snapshots = 0;
        for Completed { time, updates } in completed {
            let entry = pending.entry(time).or_default();
            entry.0 += 1;
            entry.1.extend(updates);
            while let Some(first) = pending.first_entry() {
                if first.get().0 < self.workers {
                    break;
                }
                let (time, (_, updates)) = first.remove_entry();
                let changes = self.tables.apply(time, &updates);
                epochs += 1;
                if let Some(deltas) = &mut self.deltas {
                    deltas.write(&changes)?;
                    deltas.flush()?;
                }
                if self.interval.is_some_and(|interval| last_snapshot.elapsed() >= interval) {
                    self.snapshots.write(&self.tables)?;
                    snapshots += 1;
                    last_snapshot = Instant::now();
                }
                frontier.advance(time);
            }
        }
        if !pending.is_empty() {
            anyhow::bail!("a worker stopped before completing logical time {}", pending.keys().next().unwrap_or(&0));
        }
        let snapshot = self.snapshots.write(&self.tables)?;
        Ok(Collected { tables: self.tables, snapshot, epochs, snapshots: snapshots + 1 })
    }
}
