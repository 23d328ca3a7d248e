//! Sinks: the materialised output tables, Arrow/Parquet snapshots, context deltas and the
//! erasure log.

pub mod arrow_tables;
pub mod deltas;
pub mod erasure_log;
mod error;
pub mod snapshot;
pub mod tables;
pub mod update;

pub use deltas::{DeltaLine, DeltaWriter};
pub use erasure_log::{ErasureLog, ErasureRecord};
pub use error::Error;
pub use snapshot::{SnapshotInfo, SnapshotWriter};
pub use tables::{Changes, Tables};
