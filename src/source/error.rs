//! The errors of the input side that stop a run, as opposed to a bad record, which is a
//! [`Rejection`](super::Rejection): an input that cannot be opened or read, a format or
//! option that does not fit it, a header or schema without a required column, and a
//! dead-letter file that cannot be written.
//!
//! Every message names the input or file and includes its cause's, so that one line tells the
//! whole story; the cause is also the error's [`source`](std::error::Error::source).

use std::io;
use std::path::{Path, PathBuf};

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

use super::spec::Field;

/// What went wrong opening or reading an input, or writing the dead letters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be opened.
    #[error("cannot open input {path}: {source}")]
    Open {
        /// The input.
        path: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An input could not be read (before its records: a header, a file format's magic) or its
    /// decompression could not start.
    #[error("cannot {action} {input}: {source}")]
    Read {
        /// What was being done (`read Arrow input`, `start zstd decoding of`); the input
        /// follows it in the message.
        action: &'static str,
        /// The input (its path, or `stdin`).
        input: String,
        /// The error reading it.
        #[source]
        source: io::Error,
    },
    /// A Parquet file could not be read.
    #[error("cannot read Parquet file {path}: {source}")]
    Parquet {
        /// The input.
        path: String,
        /// Parquet's error.
        #[source]
        source: ParquetError,
    },
    /// An Arrow IPC input could not be read.
    #[error("cannot read Arrow IPC input {input}: {source}")]
    Arrow {
        /// The input.
        input: String,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// The header of a CSV input could not be read.
    #[error("cannot read the CSV header of {input}: {source}")]
    CsvHeader {
        /// The input.
        input: String,
        /// The CSV reader's error.
        #[source]
        source: csv::Error,
    },
    /// The header of a CSV input has more columns than `max-fields` allows.
    #[error("the CSV header of {input} has {columns} columns, more than max-fields ({max_fields})")]
    TooManyColumns {
        /// The input.
        input: String,
        /// Its columns.
        columns: usize,
        /// The limit.
        max_fields: usize,
    },
    /// The column a required field is mapped to is not in the input's header or schema.
    #[error(
        "required column {column:?} (field {field}) not found in {within}; available columns: {}",
        .available.join(", ")
    )]
    MissingColumn {
        /// The column.
        column: String,
        /// The field mapped to it.
        field: Field,
        /// Where it was looked for (`the CSV header of events.csv`).
        within: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// No format was given and the extension of the input does not tell one.
    #[error(
        "cannot tell the format of {path} from its extension (expected .jsonl, .csv, .parquet or .arrow, \
         optionally .gz/.zst); give the format explicitly"
    )]
    UnknownFormat {
        /// The input.
        path: String,
    },
    /// A Parquet input on stdin: Parquet files are read with random access.
    #[error("Parquet cannot be read from stdin")]
    ParquetFromStdin,
    /// A compressed Parquet input: Parquet files are read with random access.
    #[error("{path}: compressed Parquet files are not supported (Parquet compresses internally)")]
    CompressedParquet {
        /// The input.
        path: String,
    },
    /// A compressed input to follow: only uncompressed files can be followed.
    #[error("{path}: a compressed input cannot be followed")]
    CompressedFollow {
        /// The input.
        path: String,
    },
    /// An input to follow that is stdin or neither JSON Lines nor CSV.
    #[error("{path}: only JSON Lines and CSV files can be followed")]
    FollowFormat {
        /// The input.
        path: String,
    },
    /// A format that [`super::from_reader`] does not decode.
    #[error("{input}: from_reader reads JSON Lines and CSV only")]
    NotAStream {
        /// The input.
        input: String,
    },
    /// The dead-letter file could not be opened, truncated or read.
    #[error("cannot {action} dead-letter file {}: {source}", .path.display())]
    DeadLetterFile {
        /// What was being done (`open`, `truncate`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The dead letters gathered could not be appended to the dead-letter file (they stay
    /// gathered for the next flush).
    #[error("cannot write to dead-letter file {}{}: {source}", .path.display(), cut_message(.cut))]
    DeadLetterWrite {
        /// The file.
        path: PathBuf,
        /// The error writing it.
        #[source]
        source: io::Error,
        /// Why the part of the lines that did reach the file could not be cut off again, if so.
        cut: Option<io::Error>,
    },
    /// A dead letter could not be serialized.
    #[error("serializing a dead letter: {0}")]
    DeadLetterJson(#[source] serde_json::Error),
}

impl Error {
    /// The [`Error::DeadLetterFile`] of `action` on `path`, for `map_err`.
    pub(super) fn dead_letter_file<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::DeadLetterFile { action, path: path.to_owned(), source }
    }
}

/// What [`Error::DeadLetterWrite`] says of a broken tail that could not be cut off.
fn cut_message(cut: &Option<io::Error>) -> String {
    cut.as_ref().map_or_else(String::new, |e| format!(" (and its broken tail could not be cut off: {e})"))
}
