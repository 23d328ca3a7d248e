//! The errors of the durable event log: a file operation that failed, a directory that another
//! service holds, a file of another kind or version, and damage ([`Damage`]) the log cannot cut
//! off.
//!
//! Every message includes its cause's (the operating system's error, the damage found), so
//! that one line tells the whole story, in a log line or an HTTP answer alike; the cause is also
//! the error's [`source`](std::error::Error::source), for callers that look into it.

use std::io;
use std::path::{Path, PathBuf};

use super::frame::Damage;

/// What went wrong in the durable event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, reading, writing, forcing to disk, renaming or removing a file or directory of
    /// the log failed (a full disk, missing permissions).
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done, naming the kind of file or directory (`opening`, `forcing the
        /// log to disk in`); the path follows it in the message.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process (a second `stepstone serve`) holds the lock of the log's directory.
    #[error("the log directory {} is in use by another running stepstone serve", .dir.display())]
    Locked {
        /// The log's directory.
        dir: PathBuf,
    },
    /// A file with a log file's name does not start as a log file of this version does.
    #[error(
        "{} is not a Stepstone log file of this version (it starts with {:?}, expected {:?})",
        .path.display(),
        String::from_utf8_lossy(.found),
        String::from_utf8_lossy(.expected)
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        found: [u8; 8],
        /// The magic it should start with.
        expected: [u8; 8],
    },
    /// A file of the log is damaged where the log cannot cut it off: a checkpoint, or a segment
    /// that later segments follow. Damage at the end of the last segment is a torn tail
    /// instead, cut off at recovery ([`super::Truncated`]).
    #[error("{}", corrupt_message(.file, *.offset, .reason))]
    Corrupt {
        /// The damaged file.
        file: LogFile,
        /// Where the first damaged frame starts, from the start of the file.
        offset: u64,
        /// What is wrong there.
        #[source]
        reason: Damage,
    },
}

/// A file of the log, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFile {
    /// A segment, which later segments follow.
    Segment(PathBuf),
    /// A checkpoint.
    Checkpoint(PathBuf),
}

impl Error {
    /// The [`Error::Io`] of `action` on `path`, for `map_err`.
    pub(super) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io { action, path: path.to_owned(), source }
    }
}

/// The message of [`Error::Corrupt`]: for a segment, how to start without it.
fn corrupt_message(file: &LogFile, offset: u64, reason: &Damage) -> String {
    match file {
        LogFile::Segment(path) => format!(
            "log segment {} is damaged at byte {offset} ({reason}), and later segments follow it; move the \
             damaged segment and those after it out of {} to start without them",
            path.display(),
            path.parent().map_or_else(|| ".".into(), |dir| dir.display().to_string())
        ),
        LogFile::Checkpoint(path) => format!("checkpoint {} is damaged at byte {offset}: {reason}", path.display()),
    }
}
