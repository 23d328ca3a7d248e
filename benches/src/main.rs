//! The `stepstone-bench` command line: measures the engine on a generated workload or given
//! files, or soaks the live service; see the library's documentation for what it measures.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stepstone_bench::BenchOptions;

/// The allocator of the `stepstone` binary, so that in-process figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure decode and run throughput, scaling, peak memory and update latency of Stepstone on a
/// generated workload or given files; or, with --soak, soak the live service at a fixed rate and
/// watch its memory.
#[derive(Parser)]
#[command(name = "stepstone-bench", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    options: BenchOptions,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = std::env::current_exe()
        .context("locating the stepstone-bench executable")
        .and_then(|exe| stepstone_bench::execute(&cli.options, &exe));
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
