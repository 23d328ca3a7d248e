//! End-to-end checks of `stepstone run` on the bundled sample and on small hand-made inputs:
//! the demo pipeline's outputs against an independent recomputation, identical results for one
//! and two workers and for bulk versus many small epochs (late events across epochs), deltas
//! that replay to the final snapshot, dead letters with exact line numbers, strict mode, stdin,
//! and clear errors for bad configuration.
//!
//! The helpers shared by the files here (the demo pipeline, its sample, dead letters) are in
//! this module.

mod demo;
mod identities;
mod inputs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::common::{read_table, root, stepstone_ok};

const SAMPLE: &str = "data/sample/events.jsonl.gz";
const DEMO: &str = "data/pipelines/demo.toml";
const TABLES: [&str; 5] = ["journeys", "transitions", "channel_transitions", "segments", "segment_channels"];

/// Runs the demo pipeline into a temporary directory with `extra` flags.
fn demo(extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut args = vec!["run", "-q", "--config", DEMO, "--out", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    stepstone_ok(&args);
    out
}

/// The sample's lines, decompressed.
fn sample_lines() -> Vec<String> {
    let file = std::fs::File::open(root().join(SAMPLE)).expect("the bundled sample");
    BufReader::new(flate2::read::GzDecoder::new(file)).lines().map(|l| l.expect("a line")).collect()
}

/// The dead letters of a run: line number → (field, raw record).
fn dead_letters(dir: &Path) -> BTreeMap<u64, (Option<String>, String)> {
    let text = std::fs::read_to_string(dir.join("rejected.jsonl")).expect("rejected.jsonl");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON dead letter");
            assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "a reason: {line}");
            assert!(v["source"].as_str().is_some_and(|s| s.ends_with("events.jsonl.gz")), "the source: {line}");
            (
                v["line"].as_u64().unwrap(),
                (v["field"].as_str().map(str::to_owned), v["raw"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

/// The batches of all tables of a run, without schema metadata (which holds wall-clock time).
fn tables_of(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    TABLES
        .iter()
        .map(|t| {
            let batch = read_table(dir, t);
            let schema =
                std::sync::Arc::new(batch.schema().as_ref().clone().with_metadata(std::collections::HashMap::new()));
            arrow::array::RecordBatch::try_new(schema, batch.columns().to_vec()).unwrap()
        })
        .collect()
}

/// The number of dead letters of a run.
fn dead_letters_count(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("rejected.jsonl")).unwrap().lines().count()
}
