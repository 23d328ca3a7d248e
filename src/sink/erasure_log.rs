//! The erasure log: one JSON line per erasure in `erasures.jsonl` next to the snapshots —
//! when, who asked, and how much was erased — and nothing of the person erased.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Error;

/// Appends erasures to the log file of an output directory.
#[derive(Clone, Debug)]
pub struct ErasureLog {
    /// The log file.
    path: PathBuf,
}

/// What the log records of one erasure: how much was erased, never whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    /// The logical time from which no view holds the person.
    pub logical_time: u64,
    /// Identities erased (the id named and every identity linked to it).
    pub identities: usize,
    /// Events removed.
    pub events: u64,
    /// Links between identities removed.
    pub links: usize,
}

/// One line of the log.
#[derive(Serialize)]
struct Line<'a> {
    /// When the erasure was applied (RFC 3339, UTC).
    at: String,
    /// Who asked for it, as they named themselves.
    by: &'a str,
    /// The logical time from which no view holds the person.
    logical_time: u64,
    /// Identities erased (the id named and every identity linked to it).
    identities: usize,
    /// Events removed.
    events: u64,
    /// Links between identities removed.
    links: usize,
}

impl ErasureLog {
    /// The log of the output directory `out_dir`.
    pub fn new(out_dir: &Path) -> Self {
        ErasureLog { path: out_dir.join("erasures.jsonl") }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `erasure`, asked for by `by`, and syncs the file.
    pub fn record(&self, erasure: ErasureRecord, by: &str) -> Result<(), Error> {
        let ErasureRecord { logical_time, identities, events, links } = erasure;
        let line = Line {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            by,
            logical_time,
            identities,
            events,
            links,
        };
        let line = serde_json::to_string(&line).map_err(Error::json("an erasure log line"))? + "\n";
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(Error::io("opening the erasure log", &self.path))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(Error::io("writing the erasure log", &self.path))?;
        tracing::info!(by, logical_time, identities, events, links, "erased a person");
        Ok(())
    }
}
