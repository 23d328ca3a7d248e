//! The `stepstone` command line: `stepstone run` merges a config file, the environment and its
//! flags into a [`Pipeline`](crate::config::Pipeline) and runs it; `stepstone serve` serves one; `stepstone erase` erases people;
//! `stepstone generate` writes a synthetic event stream. (The benchmarks are the
//! `stepstone-bench` tool of `benches/`.)

mod flags;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::generate::{self, GenerateOptions};
use crate::run;
use crate::server;
pub use flags::{
    FollowFlag, InputFlags, JourneyFlags, LogFlags, MapSpec, OutputFlags, RunArgs, RunFlags, ServeArgs, ServerFlags,
};

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
            eprintln!("error: {}", report(&error));
            ExitCode::FAILURE
        }
    }
}

/// `error` and its causes on one line, as `{:#}` shows them, without repeating a cause whose
/// message the error before it already ends with: the error types of the library layers
/// include their cause's message in their own (so that one of them alone tells the whole
/// story) and also give the cause as their source.
fn report(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut shown = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if shown.ends_with(&message) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&message);
        shown = message;
    }
    line
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_whose_message_the_error_shows_is_not_repeated() {
        let io = std::io::Error::other("No space left on device");
        let typed = crate::sink::Error::Io { action: "writing the deltas to", path: "deltas.jsonl".into(), source: io };
        let error = anyhow::Error::from(typed).context("running the pipeline");
        assert_eq!(
            super::report(&error),
            "running the pipeline: writing the deltas to deltas.jsonl: No space left on device"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::report(&plain), "outer: inner");
    }
}
