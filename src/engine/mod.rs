//! The engine: timely workers running the dataflows of `stepstone_dataflows`, fed events as
//! they come and sealed one logical time at a time.
//!
//! The [`Engine`] handle ([`handle`]) hands each worker the events of the journeys placed on
//! it and seals logical times; every seal reaches every worker, so all workers advance their
//! inputs together. The workers ([`worker`]) run the views and report each completed time's
//! output changes; the collector thread ([`collector`]) applies them to the sink tables, writes
//! context deltas and Arrow snapshots, and advances the [`Frontier`] that callers wait on. The
//! engine knows nothing of pipeline configs: whoever starts it ([`crate::run`], the live
//! service) decodes the inputs and sets up the sinks.

mod collector;
mod error;
mod frontier;
mod handle;
mod links;
mod worker;

pub use collector::{Collected, Collector, Observer, SharedTables};
pub use error::Error;
pub use frontier::Frontier;
pub use handle::{Engine, Erasure};
