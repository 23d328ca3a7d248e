//! Sinks: the materialised output tables, Arrow/Parquet snapshots and context deltas.

pub mod update;
