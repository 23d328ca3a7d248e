//! Stepstone: real-time customer-journey analytics on differential dataflow.
//!
//! The data path runs one way: [`source`] reads and decodes events (rejecting bad records to the
//! dead-letter output), [`journal`] keeps the live service's accepted records durable, [`engine`]
//! feeds them to the dataflows of `stepstone_dataflows` on timely workers, and [`sink`] keeps the
//! resulting tables and writes Arrow snapshots and context deltas. [`config`] checks a pipeline's
//! settings; [`run`] drives a pipeline over its inputs once, [`server`] serves one live; [`cli`]
//! is the command line. Imports only go down that order (`scripts/layers.py` checks it);
//! [`generate`], the synthetic workload, stands apart.

pub mod cli;
pub mod config;
pub mod engine;
pub mod generate;
pub mod journal;
pub mod run;
pub mod server;
pub mod sink;
pub mod source;
