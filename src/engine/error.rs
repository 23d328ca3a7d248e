//! The errors of a running engine: its threads could not start or stopped early, or a sink
//! could not be written.

use crate::sink;

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The collector thread could not be started.
    #[error("spawning the collector thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// timely could not start its workers: its description.
    #[error("starting the timely workers: {0}")]
    Start(String),
    /// A timely worker no longer takes input: it stopped (failed) before the engine was
    /// finished.
    #[error("a timely worker stopped early")]
    WorkerStopped,
    /// The collector stopped (the workers or the collector failed) before a logical time that a
    /// caller waits for was applied.
    #[error("the engine stopped before logical time {time} completed")]
    StoppedBefore {
        /// The time waited for.
        time: u64,
    },
    /// The workers hung up while a logical time had been completed by only some of them.
    #[error("a worker stopped before completing logical time {time}")]
    Incomplete {
        /// The earliest time left incomplete.
        time: u64,
    },
    /// A timely worker failed (panicked): timely's description.
    #[error("a timely worker failed: {0}")]
    WorkerFailed(String),
    /// The collector thread panicked.
    #[error("the collector thread panicked")]
    CollectorPanicked,
    /// The collector could not write the context deltas or the final snapshot.
    #[error(transparent)]
    Sink(#[from] sink::Error),
}
