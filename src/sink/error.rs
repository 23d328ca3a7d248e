//! The errors of the sinks: a file of the output that could not be written, an Arrow or Parquet
//! failure building or writing a snapshot table, a delta that cannot be shown.
//!
//! Every message names the file or table and includes its cause's, so that one line tells the
//! whole story; the cause is also the error's [`source`](std::error::Error::source).

use std::io;
use std::path::{Path, PathBuf};

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// What went wrong writing an output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, writing, forcing to disk or flushing a file or directory of the output failed
    /// (a full disk, missing permissions).
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done, naming the kind of file (`creating the delta file`); the path
        /// follows it in the message.
        action: &'static str,
        /// The file or directory (`-` for standard output).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A snapshot file, written as a temporary file, could not be renamed over the old one.
    #[error("renaming {} to {}: {source}", .from.display(), .to.display())]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The snapshot file.
        to: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Arrow could not build the record batch of a snapshot table.
    #[error("building the {table} batch: {source}")]
    Batch {
        /// The table (`journeys`, `transitions`, …).
        table: &'static str,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// The thread building the list columns of the journeys batch panicked.
    #[error("building the list columns of the {table} batch panicked")]
    BatchPanicked {
        /// The table.
        table: &'static str,
    },
    /// Arrow could not write a snapshot table as an Arrow IPC file.
    #[error("writing {}: {step}: {source}", .path.display())]
    Ipc {
        /// The snapshot file.
        path: PathBuf,
        /// The step that failed (`writing the IPC record batch`).
        step: &'static str,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// A snapshot table could not be written as a Parquet file.
    #[error("writing {}: {step}: {source}", .path.display())]
    Parquet {
        /// The snapshot file.
        path: PathBuf,
        /// The step that failed (`writing the Parquet record batch`).
        step: &'static str,
        /// Parquet's error.
        #[source]
        source: ParquetError,
    },
    /// A time of a journey row is outside what RFC 3339 can show, so its delta line cannot be
    /// written.
    #[error("delta of journey (customer {customer:?}, journey key {journey_key:?}): time {millis} ms is out of range")]
    TimeOutOfRange {
        /// The journey's customer.
        customer: String,
        /// Its journey key.
        journey_key: Option<String>,
        /// The time, ms since the epoch.
        millis: i64,
    },
    /// A line of JSON output could not be serialized.
    #[error("serializing {what}: {source}")]
    Json {
        /// What was serialized (`a journey delta`).
        what: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The [`Error::Io`] of `action` on `path`, for `map_err`.
    pub(super) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io { action, path: path.to_owned(), source }
    }

    /// The [`Error::Json`] of serializing `what`, for `map_err`.
    pub(super) fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Json { what, source }
    }
}
