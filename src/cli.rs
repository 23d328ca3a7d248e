//! The `stepstone` command line: `stepstone run` turns flags and an optional config file into a
//! [`Pipeline`] and runs it; `stepstone serve` serves one; `stepstone erase` erases people;
//! `stepstone generate` writes a synthetic event stream. (The benchmarks are the
//! `stepstone-bench` tool of `benches/`.)

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{ConfigFile, Pipeline, SegmentSection};
use crate::generate::{self, GenerateOptions};
use crate::run;
use crate::server;
use crate::source::Mapping;

/// Real-time customer-journey analytics on differential dataflow.
#[derive(Debug, Parser)]
#[command(name = "stepstone", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: read events, maintain journeys, transitions and segments, write Arrow
    /// snapshots, context deltas and dead letters.
    Run(Box<RunArgs>),
    /// Run a pipeline continuously and serve it: ingest over HTTP, subscriptions to context
    /// deltas, lookups, Arrow Flight and Prometheus metrics.
    Serve(Box<ServeArgs>),
    /// Erase people: every event and link of each one (all their linked ids), from every view,
    /// and their later events. With --server, from a running `stepstone serve`; otherwise the
    /// pipeline runs on its inputs and the people are erased before its final snapshot. Each
    /// erasure is logged to erasures.jsonl in the output directory, without the ids.
    Erase(Box<EraseArgs>),
    /// Write a realistic synthetic event stream (seeded, deterministic).
    Generate(GenerateOptions),
}

/// Options of `stepstone run`; each overrides the same setting of the config file.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Pipeline config file (TOML); its relative paths are relative to the file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Input file (.jsonl, .csv, .parquet, .arrow, optionally .gz/.zst); repeatable; `-` is stdin.
    #[arg(short, long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Input format when it cannot be told from the extension: jsonl, csv, parquet, arrow.
    #[arg(long)]
    pub format: Option<String>,
    /// Column mapping FIELD=COLUMN,… (fields: customer, time, contact_point, channel, kind, value,
    /// session, device, previous_id, consent).
    #[arg(long, value_name = "SPEC")]
    pub map: Vec<String>,
    /// A column holding personal data, which may feed no field the outputs show; repeatable.
    #[arg(long, value_name = "COLUMN")]
    pub personal: Vec<String>,
    /// How times are read: auto, rfc3339, epoch_s, epoch_ms.
    #[arg(long)]
    pub time_format: Option<String>,
    /// Which events convert: kind=VALUE[|VALUE…] or contact_point=VALUE[|VALUE…].
    #[arg(long, value_name = "FIELD=VALUES")]
    pub conversion: Option<String>,
    /// A column that splits each customer's events into parallel journeys.
    #[arg(long, value_name = "COLUMN")]
    pub journey_key: Option<String>,
    /// Inactivity gap that ends a session (30m, 1h, …) or `none` (one session per journey).
    #[arg(long, value_name = "GAP")]
    pub session_gap: Option<String>,
    /// How far behind its source's latest event time an event of a live input (stdin, HTTP,
    /// a followed file) may be and still be on time [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub allowed_lateness: Option<String>,
    /// What becomes of late events: `reject` (dead letters, reason `late`) or `accept`
    /// (applied, every view corrected) [default: reject].
    #[arg(long, value_name = "POLICY")]
    pub late: Option<String>,
    /// Number of last contact points kept in each journey's path.
    #[arg(long, value_name = "N")]
    pub path_length: Option<usize>,
    /// Output directory for the snapshots.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write context deltas (JSON Lines) to this file; `-` is stdout.
    #[arg(long, value_name = "FILE")]
    pub deltas: Option<PathBuf>,
    /// Dead-letter file for rejected records (default: rejected.jsonl in the output directory).
    #[arg(long, value_name = "FILE")]
    pub rejected: Option<PathBuf>,
    /// Also write a snapshot at this wall-clock interval during the run (10s, 1m, …).
    #[arg(long, value_name = "DURATION")]
    pub snapshot_interval: Option<String>,
    /// Also write Parquet files next to the Arrow files.
    #[arg(long)]
    pub parquet: bool,
    /// Stop with an error at the first bad record.
    #[arg(long)]
    pub strict: bool,
    /// Number of timely worker threads.
    #[arg(short, long, value_name = "N")]
    pub workers: Option<usize>,
    /// Events per logical time (epoch).
    #[arg(long, value_name = "N")]
    pub epoch_events: Option<usize>,
    /// A segment NAME=RULE, e.g. `engaged=events >= 3`; repeatable, added to the config's segments.
    #[arg(long = "segment", value_name = "NAME=RULE")]
    pub segments: Vec<String>,
    /// Do not print the run summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options of `stepstone serve`: those of `stepstone run` (inputs are optional), plus the
/// servers' addresses.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// The pipeline, as for `stepstone run`.
    #[command(flatten)]
    pub run: RunArgs,
    /// HTTP address for ingest, subscriptions, lookups and metrics [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Arrow Flight address [default: 127.0.0.1:8815].
    #[arg(long, value_name = "ADDR")]
    pub flight_listen: Option<String>,
    /// Keep reading the input files as they grow (JSON Lines and CSV).
    #[arg(long)]
    pub follow: bool,
    /// The durable event log's directory [default: log in the output directory].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// When the log is forced to disk: `batch` (before acknowledging) or a duration such as
    /// `100ms` [default: batch].
    #[arg(long, value_name = "POLICY")]
    pub fsync: Option<String>,
    /// Run without the durable event log: a restart loses what HTTP ingest had taken.
    #[arg(long, conflicts_with_all = ["log_dir", "fsync"])]
    pub no_log: bool,
}

/// Options of `stepstone erase`.
#[derive(Debug, Default, Args)]
pub struct EraseArgs {
    /// A customer id (or, if no customer has it, a device id) of the person to erase; repeatable.
    #[arg(long = "customer", value_name = "ID", required = true)]
    pub customers: Vec<String>,
    /// Who asks for the erasure, for the erasure log [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// The base URL of a running `stepstone serve` to erase from, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The server's bearer token, with --server.
    #[arg(long, value_name = "TOKEN", requires = "server")]
    pub token: Option<String>,
    /// The pipeline, without --server.
    #[command(flatten)]
    pub run: RunArgs,
}

impl EraseArgs {
    /// Who asks: `--by`, or else the user running the command.
    fn actor(&self) -> String {
        self.by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "stepstone erase".to_owned())
    }
}

impl ServeArgs {
    /// The pipeline these arguments describe: the config file, if any, overridden by the flags.
    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        let mut config = match &self.run.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let mut flags = self.run.as_config()?;
        flags.server.listen = self.listen.clone();
        flags.server.flight_listen = self.flight_listen.clone();
        flags.input.follow = self.follow.then_some(true);
        let cwd = std::env::current_dir().context("reading the working directory")?;
        flags.log.dir = self.log_dir.as_ref().map(|dir| cwd.join(dir));
        flags.log.fsync = self.fsync.clone();
        flags.log.enabled = self.no_log.then_some(false);
        config.override_with(flags);
        Pipeline::serving(config)
    }
}

impl RunArgs {
    /// The pipeline these arguments describe: the config file, if any, overridden by the flags.
    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        let mut config = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        config.override_with(self.as_config()?);
        Pipeline::try_from(config)
    }

    /// The settings given as flags, as a config with paths relative to the working directory.
    fn as_config(&self) -> anyhow::Result<ConfigFile> {
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let absolute = |p: &PathBuf| if p.as_os_str() == "-" { p.clone() } else { cwd.join(p) };
        let mut config = ConfigFile::default();
        config.input.paths = self.inputs.clone();
        config.input.format = self.format.clone();
        config.input.time_format = self.time_format.clone();
        for spec in &self.map {
            for (field, column) in Mapping::pairs(spec)? {
                config.input.map.insert(field.to_owned(), column.to_owned());
            }
        }
        config.input.journey_key = self.journey_key.clone();
        config.input.personal = self.personal.clone();
        config.input.allowed_lateness = self.allowed_lateness.clone();
        config.input.late = self.late.clone();
        config.journeys.session_gap = self.session_gap.clone();
        config.journeys.path_length = self.path_length;
        config.journeys.conversion = self.conversion.clone();
        config.output.dir = self.out.clone();
        config.output.deltas = self.deltas.as_ref().map(absolute);
        config.output.rejected = self.rejected.as_ref().map(absolute);
        config.output.snapshot_interval = self.snapshot_interval.clone();
        config.output.parquet = self.parquet.then_some(true);
        config.run.strict = self.strict.then_some(true);
        config.run.workers = self.workers;
        config.run.epoch_events = self.epoch_events;
        for spec in &self.segments {
            let (name, rule) =
                spec.split_once('=').with_context(|| format!("--segment: expected NAME=RULE, got {spec:?}"))?;
            config.segments.push(SegmentSection { name: name.trim().to_owned(), rule: rule.trim().to_owned() });
        }
        Ok(config)
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("STEPSTONE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Executes one subcommand.
fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let pipeline = args.pipeline()?;
            let summary = run::run(&pipeline)?;
            if !args.quiet {
                eprintln!("{summary}");
                eprintln!("snapshots in     {}", pipeline.out_dir.display());
            }
            Ok(())
        }
        Command::Serve(args) => server::serve(&args.pipeline()?),
        Command::Erase(args) => erase(&args),
        Command::Generate(options) => {
            let summary = generate::generate(&options)?;
            eprintln!(
                "wrote {} events and {} malformed records for {} customers ({} bytes) to {}",
                summary.events,
                summary.malformed,
                summary.customers,
                summary.bytes,
                options.out.display()
            );
            Ok(())
        }
    }
}

/// `stepstone erase`: from a running server, or by running the pipeline.
fn erase(args: &EraseArgs) -> anyhow::Result<()> {
    let by = args.actor();
    if let Some(url) = &args.server {
        return server::erase_remote(url, args.token.as_deref(), &args.customers, &by);
    }
    let pipeline = args.run.pipeline()?;
    let (summary, erasures) = run::run_erasing(&pipeline, &args.customers, &by)?;
    for (id, erasure) in args.customers.iter().zip(&erasures) {
        match erasure {
            Some(e) => eprintln!(
                "erased {id:?}: {} events, {} identities, {} links (logical time {})",
                e.events,
                e.identities.len(),
                e.links,
                e.time
            ),
            None => eprintln!("nothing to erase for {id:?}: no customer or device has that id"),
        }
    }
    if !args.run.quiet {
        eprintln!("{summary}");
        eprintln!("snapshots in     {}", pipeline.out_dir.display());
    }
    Ok(())
}
