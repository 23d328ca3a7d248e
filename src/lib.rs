//! Stepstone: real-time customer-journey analytics on differential dataflow.
//!
//! The data path runs one way: [`source`] reads and decodes events (rejecting bad records to the
//! dead-letter output), [`engine`] feeds them to the dataflows of `stepstone_dataflows` on timely
//! workers, and [`sink`] keeps the resulting tables and writes Arrow snapshots and context deltas.

pub mod bench;
pub mod cli;
pub mod config;
pub mod engine;
pub mod generate;
pub mod journal;
pub mod server;
pub mod sink;
pub mod source;
