//! `stepstone-bench`: a reproducible benchmark of the engine on a generated workload, or on
//! given files of one stream (`--input`, e.g. a real log). Tooling beside the product, as
//! differential dataflow keeps its `experiments/`: it links the `stepstone` library for the
//! in-process measurements and runs the `stepstone` binary for the live ones.
//!
//! ```sh
//! cargo build --release && cargo run --release -p stepstone-bench -- --events 1000000
//! ```
//!
//! One invocation measures, in the same run so that the figures are ratios on the same (shared,
//! noisy) machine:
//!
//! 1. **Decode only**: opening the Arrow and the CSV copy of the workload (or each given file) with
//!    [`source::open`](stepstone::source::open) and iterating every item, the baseline of each format.
//! 2. **Bulk runs**: [`stepstone::run::run`] over each format for each worker count,
//!    `reps` times, each in a fresh child process (the bench executable, re-invoked with the
//!    hidden `--child-input`), which reports its own elapsed time and peak RSS (`VmHWM` of
//!    `/proc/self/status` after the run, exact and per configuration because the process did
//!    nothing else). Repetitions are interleaved over the configurations so that drift of the
//!    machine affects all of them alike.
//! 3. **Incremental updates**: per worker count, an [`Engine`](stepstone::engine::Engine) loaded
//!    with the whole workload as one logical time, then fed batches of 1, 100 and 10,000 further
//!    events at a fixed rate; the latency of a batch runs from its scheduled send time to the
//!    moment its logical time is applied ([`incremental`]).
//! 4. **Live latency**: `stepstone serve` (the binary of `--stepstone`) in a child process, events posted over HTTP at fixed
//!    rates, the time until each event's delta reaches a WebSocket subscriber ([`live`]).
//!
//! With `--soak DURATION` it measures none of these but soaks the live service instead:
//! sustained ingest at one rate for a bounded time with subscribers attached, the server's
//! memory, the latency and the durable log's size recorded over time ([`soak`]).
//!
//! The workload is written once per (events, customers, seed) into the data directory and reused
//! ([`workload`]). Results are printed as a table and optionally written as JSON ([`report`]).

mod bulk;
mod incremental;
mod live;
mod report;
mod soak;
mod stats;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};

pub use report::Report;
use stepstone::config::{Layers, Pipeline};

/// Which events convert in every measured pipeline.
const CONVERSION: &str = "kind=purchase|signup";

/// The segments of every measured pipeline: `(name, rule)`.
const SEGMENTS: [(&str, &str); 3] = [
    ("engaged", "events >= 5"),
    ("converted", "converted"),
    ("cart_abandoners", "last_contact_point == \"cart\" and not converted"),
];

/// Options of `stepstone-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// The `stepstone` binary whose `serve` the live and soak measurements run [default: the
    /// `stepstone` beside this executable, as `cargo build --release` puts it].
    #[arg(long, value_name = "FILE")]
    pub stepstone: Option<PathBuf>,
    /// Number of (well-formed) events in the workload.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Number of distinct customers in the workload.
    #[arg(long, default_value_t = 100_000)]
    pub customers: u64,
    /// Random seed of the workload.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Measure these files instead of a generated workload: one stream as CSV and/or Arrow IPC
    /// (`.csv`, `.arrow`), in the columns `stepstone generate` writes (`scripts/bpic2012_csv.py`
    /// writes the BPI Challenge 2012 log so). `--events` is then not used; the incremental
    /// batches are still a generated continuation (`--customers` customers, seed `--seed` + 1)
    /// starting an hour after the file's last event, 5% of it moved inside the file's span.
    #[arg(long, value_name = "FILE", conflicts_with = "soak")]
    pub input: Vec<PathBuf>,
    /// Worker counts to measure, comma-separated; speedups are relative to the first.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_name = "N,…")]
    pub workers: Vec<usize>,
    /// Repetitions of every decode and bulk measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Batches per batch size (1, 100, 10,000 events) in the incremental measurement; 0 skips it.
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    /// Event rates (events/s) at which event-to-delta latency through `stepstone serve` is
    /// measured, comma-separated; `0` skips the live measurement.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000", value_name = "N,…")]
    pub live_rates: Vec<u64>,
    /// Each live rate is measured with a new customer per event (the state grows all the
    /// time), then with events going round this many returning customers (the state stops
    /// growing); 0 skips the second.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub live_returning: u64,
    /// The served durable log's fsync policies each live rate is measured with, comma-separated:
    /// `off` (no log, the baseline), `batch`, or an interval such as `10ms`.
    #[arg(long, value_delimiter = ',', default_value = "off,batch", value_name = "POLICY,…")]
    pub live_log: Vec<String>,
    /// Where the generated workload is kept (and reused).
    #[arg(long, default_value = "target/bench-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Also write the results as JSON to this file (a soak also writes its table as CSV next to
    /// it, with the extension `.csv`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Instead of the other measurements, soak the live service for this long (`10m`, `1h`):
    /// `stepstone serve` with its durable log, a fixed pool of returning customers, events at
    /// `--soak-rate` with `--soak-subscribers` attached; the server's RSS, the latency and the
    /// log's size are recorded every `--soak-interval`. The `--workers` used is the largest.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Soak")]
    pub soak: Option<Duration>,
    /// Events per second offered during the soak.
    #[arg(long, default_value_t = 20_000, value_name = "N", help_heading = "Soak")]
    pub soak_rate: u64,
    /// WebSocket subscribers to every delta during the soak.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Soak")]
    pub soak_subscribers: usize,
    /// How often the soak records a row.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "DURATION",
          help_heading = "Soak")]
    pub soak_interval: Duration,
    /// The returning customers the soak's events go round (each gets one event before the
    /// timed phase, so the set of customers stops growing).
    #[arg(long, default_value_t = 100_000, value_name = "N", help_heading = "Soak")]
    pub soak_customers: u64,
    /// The served log's `checkpoint-bytes`: small, so that compaction runs during the soak.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES", help_heading = "Soak")]
    pub soak_checkpoint_bytes: u64,
    /// Internal: run this input once with the single `--workers` count in this process and print
    /// the measurement as JSON (what the bulk runs execute in a child process).
    #[arg(long, hide = true, value_name = "FILE", requires = "child_out")]
    pub child_input: Option<PathBuf>,
    /// Internal: the output directory of a `--child-input` run.
    #[arg(long, hide = true, value_name = "DIR", requires = "child_input")]
    pub child_out: Option<PathBuf>,
}

/// Runs the bench as described by `options`: prints the table and writes the JSON report.
/// `exe` is the bench executable the bulk runs are started from (re-invoked with
/// `--child-input`).
pub fn execute(options: &BenchOptions, exe: &Path) -> anyhow::Result<()> {
    if let (Some(input), Some(out)) = (&options.child_input, &options.child_out) {
        let [workers] = options.workers[..] else {
            anyhow::bail!("--child-input takes exactly one --workers count");
        };
        return bulk::child(input, out, workers);
    }
    if let Some(duration) = options.soak {
        let scratch = Scratch::create()?;
        let report = soak::run(options, duration, &stepstone_exe(options, exe)?, &scratch.0)?;
        println!("{report}");
        if let Some(path) = &options.out {
            write_json(path, &report)?;
            let csv = path.with_extension("csv");
            std::fs::write(&csv, report.csv()).with_context(|| format!("writing {}", csv.display()))?;
            eprintln!("wrote {}", csv.display());
        }
        return Ok(());
    }
    let report = run(options, exe)?;
    println!("{report}");
    if let Some(path) = &options.out {
        write_json(path, &report)?;
    }
    Ok(())
}

/// Writes `report` to `path` as pretty JSON.
fn write_json(path: &Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).context("serializing the bench report")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The `stepstone` binary the live measurements serve with: `--stepstone`, or else the one
/// beside the bench executable `exe`.
fn stepstone_exe(options: &BenchOptions, exe: &Path) -> anyhow::Result<PathBuf> {
    let path = options.stepstone.clone().unwrap_or_else(|| exe.with_file_name("stepstone"));
    ensure!(
        path.is_file(),
        "the stepstone binary {} is not there: build it (cargo build --release) or give --stepstone FILE",
        path.display()
    );
    Ok(path)
}

/// Measures everything `options` asks for and returns the results; `exe` is the bench
/// executable the bulk runs are started from.
pub fn run(options: &BenchOptions, exe: &Path) -> anyhow::Result<Report> {
    ensure!(options.reps >= 1, "--reps must be at least 1");
    ensure!(!options.workers.is_empty() && options.workers.iter().all(|&w| w >= 1), "--workers must be at least 1");
    let workload = workload::Workload::ensure(options)?;
    let scratch = Scratch::create()?;
    let measured = bulk::measure(options, &workload, exe, &scratch.0)?;
    let incremental =
        if options.batches == 0 { Vec::new() } else { incremental::measure(options, &workload, &scratch.0)? };
    let rates: Vec<u64> = options.live_rates.iter().copied().filter(|&r| r > 0).collect();
    let workers = options.workers.iter().copied().max().unwrap_or(1);
    let live = if rates.is_empty() {
        Vec::new()
    } else {
        let stepstone = stepstone_exe(options, exe)?;
        live::measure(&stepstone, &rates, options.live_returning, &options.live_log, workers, &scratch.0)?
    };
    Ok(Report::new(options, measured, incremental, live))
}

/// The pipeline every measurement runs: `input` into `out` on `workers` workers, converting on
/// purchases and sign-ups, with the [`SEGMENTS`].
fn pipeline(input: &Path, out: &Path, workers: usize) -> anyhow::Result<Pipeline> {
    let segments: Vec<_> =
        SEGMENTS.iter().map(|(name, rule)| serde_json::json!({ "name": name, "rule": rule })).collect();
    let settings = serde_json::json!({
        "input": { "paths": [input] },
        "journeys": { "conversion": CONVERSION },
        "output": { "dir": out },
        "run": { "workers": workers },
        "segments": segments,
    });
    let settings = Layers::defaults().merge("the bench", &settings).settings()?;
    Pipeline::running(settings).context("building the bench pipeline")
}

/// A temporary directory for the snapshots of the measured runs, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    /// Creates a fresh `stepstone-bench-<pid>` in the system's temporary directory.
    fn create() -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("stepstone-bench-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
