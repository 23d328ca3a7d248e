//! The benchmark workload: streams of `stepstone generate`, written once into the data directory
//! under names that carry every generation setting, and reused by later runs; or the files given
//! with `--input` (a real log in the generated columns, e.g. `scripts/bpic2012_csv.py`'s).
//!
//! Files are generated under a temporary name and renamed when complete, so an interrupted run
//! never leaves a partial stream to be reused.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::BenchOptions;
use stepstone::generate::{GenerateOptions, generate};

/// How the workload's stream is written: the formats the bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Arrow IPC file.
    Arrow,
    /// CSV with a header.
    Csv,
}

impl Encoding {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Arrow => "arrow",
            Encoding::Csv => "csv",
        }
    }
}

/// The start time of the workload (`stepstone generate`'s default).
const START: &str = "2026-01-01T00:00:00Z";
/// Share of out-of-order arrivals in the workload (`stepstone generate`'s default).
const OUT_OF_ORDER: f64 = 0.05;
/// Share of malformed records in the workload (`stepstone generate`'s default).
const MALFORMED: f64 = 0.001;

/// The workload's files: one stream, in one or more formats.
pub struct Workload {
    /// The stream in each format measured: a generated one as Arrow IPC and as CSV, or the
    /// `--input` files.
    pub files: Vec<(Encoding, PathBuf)>,
    /// The name of the stream, which names its continuations.
    stem: String,
    /// Where further streams are kept.
    data_dir: PathBuf,
    /// The options the stream was generated with (`out` aside); a continuation of an `--input`
    /// stream is generated with them too.
    options: GenerateOptions,
}

impl Workload {
    /// The workload of `options`: the `--input` files, or else the generated stream, generated
    /// unless its files are in the data directory already.
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
        if !options.input.is_empty() {
            let files = options
                .input
                .iter()
                .map(|path| Ok((input_format(path)?, path.clone())))
                .collect::<anyhow::Result<_>>()?;
            let stem = options.input[0].file_stem().and_then(|s| s.to_str()).unwrap_or("input").to_owned();
            return Ok(Workload { files, stem, data_dir: dir.clone(), options: generate_options });
        }
        let stem = format!("events-{}-{}-{}", options.events, options.customers, options.seed);
        let arrow = ensure_file(&generate_options, &dir.join(format!("{stem}.arrow")))?;
        let csv = ensure_file(&generate_options, &dir.join(format!("{stem}.csv")))?;
        let files = vec![(Encoding::Arrow, arrow), (Encoding::Csv, csv)];
        Ok(Workload { files, stem, data_dir: dir.clone(), options: generate_options })
    }

    /// The file the in-process measurements read: the first format.
    pub fn primary(&self) -> &Path {
        &self.files[0].1
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
        let name = format!("updates-{}-{}-{}.arrow", self.stem, self.options.customers, events);
        ensure_file(&options, &self.data_dir.join(name))
    }
}

/// The format of an `--input` file, from its extension (`.arrow` or `.csv`).
fn input_format(path: &Path) -> anyhow::Result<Encoding> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("arrow") => Ok(Encoding::Arrow),
        Some("csv") => Ok(Encoding::Csv),
        _ => anyhow::bail!("--input {}: the bench reads .arrow or .csv files", path.display()),
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
