//! The dead-letter output of the input side: every rejected record is appended to a JSON Lines
//! file (`{"source","line","field","kind","reason","raw"}`) and counted by reason, so nothing is lost.
//!
//! Lines are gathered in memory and appended whole: a write that fails part-way (a full disk)
//! is cut back off the file, and the lines are written again by the next flush, so the file
//! never holds a broken line.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Error, Rejection};

/// Lines gathered before they are appended without waiting for a flush.
const GATHERED_BYTES: usize = 64 * 1024;

/// Writes rejections to a JSON Lines file and counts them by [`Rejection::reason_kind`].
pub struct DeadLetterWriter {
    path: PathBuf,
    /// Opened for appending.
    file: File,
    /// The length of the file once every line written so far is in it whole.
    written: u64,
    /// Lines not appended yet.
    gathered: Vec<u8>,
    counts: BTreeMap<&'static str, u64>,
}

/// The serialized form of one rejection.
#[derive(Serialize)]
struct Line<'a> {
    source: &'a str,
    line: u64,
    field: Option<&'a str>,
    kind: &'static str,
    reason: &'a str,
    raw: &'a str,
}

impl DeadLetterWriter {
    /// Creates (or truncates) the dead-letter file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<DeadLetterWriter, Error> {
        let writer = DeadLetterWriter::append(&path)?;
        writer.file.set_len(0).map_err(Error::dead_letter_file("truncate", &writer.path))?;
        Ok(DeadLetterWriter { written: 0, ..writer })
    }

    /// Opens the dead-letter file at `path` for appending, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> Result<DeadLetterWriter, Error> {
        let path = path.as_ref();
        let file =
            OpenOptions::new().create(true).append(true).open(path).map_err(Error::dead_letter_file("open", path))?;
        let written = file.metadata().map_err(Error::dead_letter_file("read", path))?.len();
        Ok(DeadLetterWriter { path: path.to_path_buf(), file, written, gathered: Vec::new(), counts: BTreeMap::new() })
    }

    /// Adds one rejection as a JSON line and counts it; the lines gathered are appended once
    /// there are enough of them (an error then is the file's, and the lines stay gathered).
    pub fn write(&mut self, rejection: &Rejection) -> Result<(), Error> {
        let line = Line {
            source: &rejection.source,
            line: rejection.line,
            field: rejection.field.as_deref(),
            kind: rejection.reason_kind(),
            reason: &rejection.reason,
            raw: &rejection.raw,
        };
        serde_json::to_writer(&mut self.gathered, &line).map_err(Error::DeadLetterJson)?;
        self.gathered.push(b'\n');
        *self.counts.entry(rejection.reason_kind()).or_default() += 1;
        if self.gathered.len() >= GATHERED_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Rejections taken so far, by reason kind.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Total rejections taken so far.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the lines gathered to the file. If that fails, whatever part of them reached
    /// the file is cut off again and they stay gathered for the next flush.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        match self.file.write_all(&self.gathered) {
            Ok(()) => {
                self.written += self.gathered.len() as u64;
                self.gathered.clear();
                Ok(())
            }
            Err(error) => {
                // Best effort: a file that cannot even be cut keeps the broken tail, reported here.
                let cut = self.file.set_len(self.written).err();
                Err(Error::DeadLetterWrite { path: self.path.clone(), source: error, cut })
            }
        }
    }
}
