//! The integration tests of the `stepstone` crate, in one test binary (one link for all of them
//! instead of one per file). Each module is one topic; the helpers they share (running the
//! binary, reading its snapshots back, the test oracle's adapter, the `stepstone serve` harness)
//! are in [`common`]. `cargo test --test integration MODULE::` runs one topic, e.g. `serve::`.
//!
//! The data they read stays beside them: the malformed corpus in `tests/corpus/`, the Flight
//! client in `tests/serve_flight.py`, the public event logs in the shared data directory
//! (`$STEPSTONE_SHARED_DATA`, or else `../shared/data` beside the checkout).

mod common;

mod bad_input;
mod cli_run;
mod config_layers;
mod durability;
mod generate;
mod real_logs;
mod serve;
mod sink_deltas;
mod sink_snapshot;
mod sink_tables;
mod source_formats;
mod source_rejections;
