//! The run summary: what a run read, rejected and produced, printed at its end and written as
//! `summary.json` next to the snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use stepstone_dataflows::symbols::{Sym, Symbols};

use crate::engine::Collected;
use crate::source::DeadLetterWriter;

/// What one run did.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Events decoded and fed to the dataflows.
    pub events: u64,
    /// Late events of unbounded inputs that were applied (`late = "accept"`); rejected late
    /// events are counted in `rejected` under `late`.
    pub late_accepted: u64,
    /// Records without analytics consent, which count in no view.
    pub without_consent: u64,
    /// Events removed by erasures (`stepstone erase`).
    pub erased_events: u64,
    /// Records rejected, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Total records rejected.
    pub rejected_total: u64,
    /// The dead-letter file.
    pub rejected_file: String,
    /// Distinct customers.
    pub customers: usize,
    /// Journeys (customers × journey keys).
    pub journeys: usize,
    /// Contact-point edges in the transition graph.
    pub edges: usize,
    /// Members per segment.
    pub segments: BTreeMap<String, i64>,
    /// Logical times (epochs) processed.
    pub epochs: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// The logical time of the final snapshot.
    pub logical_time: Option<u64>,
    /// Wall-clock seconds from start to final snapshot.
    pub elapsed_seconds: f64,
    /// Events per wall-clock second.
    pub events_per_second: f64,
}

impl RunSummary {
    /// The summary of a finished run.
    pub fn new(
        events: u64,
        late_accepted: u64,
        dead_letters: &DeadLetterWriter,
        collected: &Collected,
        symbols: &Symbols,
        elapsed: Duration,
    ) -> Self {
        let Collected { tables, snapshot, times, snapshots } = collected;
        let tables = tables.read().expect("tables lock");
        let customers: BTreeSet<Sym> = tables.journeys().keys().map(|j| j.customer).collect();
        let names = symbols.names();
        let elapsed_seconds = elapsed.as_secs_f64();
        RunSummary {
            events,
            late_accepted,
            without_consent: 0,
            erased_events: 0,
            rejected: dead_letters.counts().iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            rejected_total: dead_letters.total(),
            rejected_file: dead_letters.path().display().to_string(),
            customers: customers.len(),
            journeys: tables.journeys().len(),
            edges: tables.transitions().len(),
            segments: tables
                .segments()
                .into_iter()
                .map(|(name, stats)| (names.get(name).to_owned(), stats.0))
                .collect(),
            epochs: *times,
            snapshots: *snapshots,
            logical_time: snapshot.time,
            elapsed_seconds,
            events_per_second: if elapsed_seconds > 0.0 { events as f64 / elapsed_seconds } else { 0.0 },
        }
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "events read      {}", self.events)?;
        write!(f, "rejected         {}", self.rejected_total)?;
        if self.rejected_total > 0 {
            let reasons: Vec<String> = self.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
            write!(f, " ({}; see {})", reasons.join(", "), self.rejected_file)?;
        }
        writeln!(f)?;
        if self.late_accepted > 0 {
            writeln!(f, "late accepted    {}", self.late_accepted)?;
        }
        if self.without_consent > 0 {
            writeln!(f, "without consent  {}", self.without_consent)?;
        }
        if self.erased_events > 0 {
            writeln!(f, "erased events    {}", self.erased_events)?;
        }
        writeln!(f, "customers        {}", self.customers)?;
        writeln!(f, "journeys         {}", self.journeys)?;
        writeln!(f, "edges            {}", self.edges)?;
        let segments: Vec<String> = self.segments.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(f, "segments         {}", if segments.is_empty() { "-".to_owned() } else { segments.join(", ") })?;
        writeln!(f, "epochs           {} ({} snapshots)", self.epochs, self.snapshots)?;
        write!(f, "elapsed          {:.2} s ({:.0} events/s)", self.elapsed_seconds, self.events_per_second)
    }
}
