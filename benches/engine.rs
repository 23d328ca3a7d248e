//! The engine benchmark: `stepstone-bench` (see the `stepstone_bench` library) under `cargo bench`.
//!
//! ```sh
//! cargo build --release && cargo bench -p stepstone-bench --bench engine
//! STEPSTONE_BENCH_EVENTS=200000 STEPSTONE_BENCH_CUSTOMERS=20000 STEPSTONE_BENCH_REPS=1 cargo bench -p stepstone-bench --bench engine
//! ```
//!
//! Settings come from the environment, each defaulting like the flag of `stepstone-bench`:
//! `STEPSTONE_BENCH_EVENTS` (1,000,000), `STEPSTONE_BENCH_CUSTOMERS` (100,000),
//! `STEPSTONE_BENCH_SEED` (42), `STEPSTONE_BENCH_WORKERS` (`1,2`), `STEPSTONE_BENCH_REPS` (3),
//! `STEPSTONE_BENCH_BATCHES` (100), `STEPSTONE_BENCH_DATA_DIR` (`target/bench-data`) and
//! `STEPSTONE_BENCH_OUT` (a JSON report file; none by default). The bulk runs execute in child
//! processes of the `stepstone-bench` binary cargo builds for the benchmark; the live runs serve with
//! the release `stepstone` binary beside it (`cargo build --release` builds it).
//!
//! Run without `--bench` (as `cargo test --benches` does) it only checks its settings.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use stepstone_bench::BenchOptions;

/// The allocator of the `stepstone` binary, so that in-process figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variables and the flags they set.
const SETTINGS: [(&str, &str); 8] = [
    ("STEPSTONE_BENCH_EVENTS", "--events"),
    ("STEPSTONE_BENCH_CUSTOMERS", "--customers"),
    ("STEPSTONE_BENCH_SEED", "--seed"),
    ("STEPSTONE_BENCH_WORKERS", "--workers"),
    ("STEPSTONE_BENCH_REPS", "--reps"),
    ("STEPSTONE_BENCH_BATCHES", "--batches"),
    ("STEPSTONE_BENCH_DATA_DIR", "--data-dir"),
    ("STEPSTONE_BENCH_OUT", "--out"),
];

/// The options of `stepstone-bench`, parsed from flags made of the environment.
#[derive(Parser)]
#[command(name = "engine")]
struct Settings {
    #[command(flatten)]
    options: BenchOptions,
}

fn main() -> ExitCode {
    let mut args = vec!["engine".to_owned()];
    for (variable, flag) in SETTINGS {
        if let Ok(value) = std::env::var(variable) {
            args.extend([flag.to_owned(), value]);
        }
    }
    let settings = Settings::parse_from(args);
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("engine bench: settings parsed; run it with `cargo bench -p stepstone-bench --bench engine`");
        return ExitCode::SUCCESS;
    }
    match stepstone_bench::execute(&settings.options, Path::new(env!("CARGO_BIN_EXE_stepstone-bench"))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
