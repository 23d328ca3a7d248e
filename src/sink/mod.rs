//! Sinks: the materialised output tables, Arrow/Parquet snapshots and context deltas.

pub mod arrow_tables;
pub mod deltas;
pub mod snapshot;
pub mod tables;
pub mod update;

pub use deltas::{DeltaLine, DeltaWriter};
pub use snapshot::{SnapshotInfo, SnapshotWriter};
pub use tables::{Changes, Tables};
