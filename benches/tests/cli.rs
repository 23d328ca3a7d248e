//! `stepstone-bench --input`: the benchmark measures given files instead of a generated workload,
//! each format it is given and no other, and reports the stream's own events and customers.

use std::path::Path;
use std::process::{Command, Output};

use clap::Parser;
use serde_json::Value;
use stepstone::generate::{GenerateOptions, generate};

/// `stepstone generate`'s options, parsed from its flags.
#[derive(Parser)]
struct Generate {
    #[command(flatten)]
    options: GenerateOptions,
}

/// `stepstone-bench --input input` in `dir`, one repetition, without the incremental and live
/// measurements, with `extra` flags.
fn bench(input: &str, extra: &[&str], dir: &Path) -> Output {
    let common = ["--reps", "1", "--batches", "0", "--live-rates", "0", "--data-dir", "data"];
    let args: Vec<&str> = ["--input", input].into_iter().chain(common).chain(extra.iter().copied()).collect();
    Command::new(env!("CARGO_BIN_EXE_stepstone-bench"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running stepstone-bench")
}

#[test]
fn bench_measures_a_given_csv_and_reports_its_events_and_customers() {
    let dir = tempfile::tempdir().unwrap();
    let given = dir.path().join("given.csv");
    let flags = ["generate", "--events", "3000", "--customers", "150", "--seed", "5", "--malformed", "0", "--out"];
    let options = Generate::parse_from(flags.into_iter().chain([given.to_str().unwrap()])).options;
    generate(&options).expect("generating the given stream");
    let customers: std::collections::HashSet<String> = std::fs::read_to_string(dir.path().join("given.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_owned())
        .collect();

    let bench = bench("given.csv", &["--workers", "1", "--out", "report.json"], dir.path());
    assert!(bench.status.success(), "{}", String::from_utf8_lossy(&bench.stderr));
    let stdout = String::from_utf8_lossy(&bench.stdout);
    assert!(stdout.contains("workload: given.csv (3000 events, "), "{stdout}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["settings"]["input"], serde_json::json!(["given.csv"]));
    assert_eq!(report["settings"]["events"], 3000);
    assert_eq!(report["settings"]["customers"], customers.len());
    let decode = report["decode"].as_array().unwrap();
    assert_eq!(decode.len(), 1, "only the given format is measured: {decode:?}");
    assert_eq!(decode[0]["format"], "csv");
    assert_eq!(decode[0]["path"], "given.csv");
    assert_eq!(decode[0]["events"], 3000);
    let bulk = report["bulk"].as_array().unwrap();
    assert_eq!(bulk.len(), 1, "{bulk:?}");
    assert_eq!((bulk[0]["format"].as_str(), bulk[0]["workers"].as_u64()), (Some("csv"), Some(1)));
    let per_customer = bulk[0]["peak_bytes_per_customer"].as_f64().unwrap();
    let peak = bulk[0]["peak_rss_bytes"].as_f64().unwrap();
    assert!((per_customer - peak / customers.len() as f64).abs() < 1e-6, "{per_customer} per customer of {peak}");
    // Nothing was generated for the measured stream.
    assert!(!dir.path().join("data").exists() || std::fs::read_dir(dir.path().join("data")).unwrap().next().is_none());
}

#[test]
fn bench_refuses_an_input_it_cannot_measure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), "{}\n").unwrap();
    let bench = bench("events.jsonl", &[], dir.path());
    assert!(!bench.status.success());
    let stderr = String::from_utf8_lossy(&bench.stderr);
    assert!(stderr.contains("--input events.jsonl: the bench reads .arrow or .csv files"), "{stderr}");
}
