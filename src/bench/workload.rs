//! The benchmark workload: streams of `stepstone generate`, written once into the data directory
//! under names that carry every generation setting, and reused by later runs.
//!
//! Files are generated under a temporary name and renamed when complete, so an interrupted run
//! never leaves a partial stream to be reused.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::BenchOptions;
use crate::generate::{GenerateOptions, generate};

/// The start time of the workload (`stepstone generate`'s default).
const START: &str = "2026-01-01T00:00:00Z";
/// Share of out-of-order arrivals in the workload (`stepstone generate`'s default).
const OUT_OF_ORDER: f64 = 0.05;
/// Share of malformed records in the workload (`stepstone generate`'s default).
const MALFORMED: f64 = 0.001;

/// The workload's files: the same stream as Arrow IPC and as CSV.
pub struct Workload {
    /// The stream as an Arrow IPC file.
    pub arrow: PathBuf,
    /// The stream as CSV.
    pub csv: PathBuf,
    /// Where further streams are kept.
    data_dir: PathBuf,
    /// The options the stream was generated with (`out` aside).
    options: GenerateOptions,
}

impl Workload {
    /// The workload of `options`, generated unless its files are in the data directory already.
    pub fn ensure(options: &BenchOptions) -> anyhow::Result<Workload> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating the bench data directory {}", dir.display()))?;
        let generate_options = GenerateOptions {
            events: options.events,
            customers: options.customers,
            seed: options.seed,
            out: PathBuf::new(),
            out_of_order: OUT_OF_ORDER,
            malformed: MALFORMED,
            start: START.to_owned(),
        };
        let stem = format!("events-{}-{}-{}", options.events, options.customers, options.seed);
        let arrow = ensure_file(&generate_options, &dir.join(format!("{stem}.arrow")))?;
        let csv = ensure_file(&generate_options, &dir.join(format!("{stem}.csv")))?;
        Ok(Workload { arrow, csv, data_dir: dir.clone(), options: generate_options })
    }

    /// A second stream of `events` events over the same customers, with another seed, starting
    /// an hour after `after_ms` (ms since the epoch, the end of this workload), without malformed
    /// records; as Arrow IPC.
    pub fn continuation(&self, events: u64, after_ms: i64) -> anyhow::Result<PathBuf> {
        let start = chrono::DateTime::from_timestamp_millis(after_ms + 3_600_000)
            .context("the workload's last event time is out of range")?
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let options = GenerateOptions {
            events,
            seed: self.options.seed.wrapping_add(1),
            malformed: 0.0,
            start,
            ..self.options.clone()
        };
        let name = format!(
            "updates-{}-{}-{}-{}.arrow",
            self.options.events, self.options.customers, self.options.seed, events
        );
        ensure_file(&options, &self.data_dir.join(name))
    }
}

/// `path`, generated with `options` unless it exists.
fn ensure_file(options: &GenerateOptions, path: &Path) -> anyhow::Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_owned());
    }
    let name = path.file_name().and_then(|n| n.to_str()).context("a bench data file name")?;
    // The temporary name keeps the extension, which decides the format.
    let partial = path.with_file_name(format!("partial-{name}"));
    eprintln!("generating {} …", path.display());
    generate(&GenerateOptions { out: partial.clone(), ..options.clone() })
        .with_context(|| format!("generating {}", path.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(path.to_owned())
}
