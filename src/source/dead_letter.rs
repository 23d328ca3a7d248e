//! The dead-letter output of the input side: every rejected record is appended to a JSON Lines
//! file (`{"source","line","field","kind","reason","raw"}`) and counted by reason, so nothing is lost.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::Rejection;

/// Writes rejections to a JSON Lines file and counts them by [`Rejection::reason_kind`].
pub struct DeadLetterWriter {
    path: PathBuf,
    out: BufWriter<File>,
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
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<DeadLetterWriter> {
        let path = path.as_ref();
        let file = File::create(path).with_context(|| format!("cannot create dead-letter file {}", path.display()))?;
        Ok(DeadLetterWriter::with_file(path, file))
    }

    /// Opens the dead-letter file at `path` for appending, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> anyhow::Result<DeadLetterWriter> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open dead-letter file {}", path.display()))?;
        Ok(DeadLetterWriter::with_file(path, file))
    }

    fn with_file(path: &Path, file: File) -> DeadLetterWriter {
        DeadLetterWriter { path: path.to_path_buf(), out: BufWriter::new(file), counts: BTreeMap::new() }
    }

    /// Appends one rejection as a JSON line and counts it.
    pub fn write(&mut self, rejection: &Rejection) -> anyhow::Result<()> {
        let line = Line {
            source: &rejection.source,
            line: rejection.line,
            field: rejection.field.as_deref(),
            kind: rejection.reason_kind(),
            reason: &rejection.reason,
            raw: &rejection.raw,
        };
        serde_json::to_writer(&mut self.out, &line)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(self.out.write_all(b"\n")?))
            .with_context(|| format!("cannot write to dead-letter file {}", self.path.display()))?;
        *self.counts.entry(rejection.reason_kind()).or_default() += 1;
        Ok(())
    }

    /// Rejections written so far, by reason kind.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Total rejections written so far.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes buffered lines to the file.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().with_context(|| format!("cannot write to dead-letter file {}", self.path.display()))
    }
}
