//! Durability of `stepstone serve`'s event log (`src/journal`), end to end over loopback.
//!
//! * [`crash`] (`crash_at_random_points_loses_no_acknowledged_event`): a seeded random workload (several
//!   customers, equal event times within a customer, several contact points and channels,
//!   conversions, values, a few malformed records, JSON arrays and NDJSON) is posted by one
//!   sequential client, each request with an idempotency key and retried with the same key until
//!   it is answered, across crashes. The server runs on the same output and log directory for
//!   more than twenty lives, with small segments and checkpoints (so kills land during rotations
//!   and compactions) and the `batch` and `20ms` fsync policies mixed; each life is ended by
//!   SIGKILL at a seeded random delay while posting goes on, and a WebSocket subscriber listens
//!   in each. One customer is erased (`DELETE /v1/customers/{id}`) mid-run. Checked:
//!   - at each start, the recovered journeys (the subscriber's snapshot) are exactly those of the
//!     acknowledged operations, plus possibly the one whose answer the kill cut off, whole or not
//!     at all, and never less than what a subscriber had been shown before the kill;
//!   - a retried request is answered `duplicate: true` exactly when that request had been
//!     logged before its answer was lost, and otherwise as a first answer (the accepted count and
//!     each rejection); a retried erasure answers 404 exactly when it had been applied; a request
//!     acknowledged in an earlier life (its key most likely in a checkpoint by then), sent again,
//!     is a duplicate and changes nothing;
//!   - every subscriber's stream keeps the protocol, shows a prefix of the acknowledged history,
//!     and has delta lines in every life that lasted long enough after its first acknowledgement;
//!   - a last life posts the rest and stops with SIGTERM; its final Arrow snapshot (every table,
//!     without the schema metadata) equals that of `stepstone run` over a JSON Lines file of every
//!     posted record in posting order without the erased customer's.
//! * [`full_disk`] (`a_full_disk_refuses_ingest_with_503_and_recovers_when_space_returns`): the output
//!   directory, with the log in it, is a small tmpfs, filled up by a filler file: ingest answers
//!   503 naming "No space left on device" (with Retry-After), applies nothing of the request and
//!   counts it in `stepstone_log_failures_total`; a dead letter the full disk cannot take is
//!   counted (`stepstone_dead_letter_failures_total`) and written once space returns, and
//!   ingest goes on; once the filler is gone the refused requests are taken when retried, as new
//!   ones (their own events do not make them late). Both fsync policies; after SIGTERM, and
//!   again after a restart, the final snapshot equals `stepstone run` over exactly the
//!   acknowledged records. It needs `mount` (root): without it, it says so and passes.
//! * `a_segment_that_cannot_be_begun_refuses_nothing_that_stays_in_the_log`: a full disk
//!   after a durable append (the next segment cannot be begun) refuses nothing that stays in
//!   the log.
//!
//! Every wait is bounded (`common::server::WAIT`, `TEST_LIMIT`), everything listens on
//! loopback, and every server is killed when dropped.
//!
//! The workload and the views it must give are in [`workload`], the client that posts it across
//! crashes in [`client`]; the comparison with `stepstone run` is here.

mod client;
mod crash;
mod full_disk;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::common;
use crate::common::read_table;

/// The session gap of the configs, in ms.
const GAP_MS: i64 = 30 * 60_000;
/// The path length (the default).
const PATH_LEN: usize = 5;
/// The customers of the workload are `c0` … `c7`.
const CUSTOMERS: usize = 8;
/// The customer the crash test erases.
const ERASED: &str = "c3";
/// The customer of the last request: one purchase a day after everything else, so that the
/// final watermark has ended every other session (as the end of a run's input does) and the
/// purchase itself leaves no open session.
const CLOSER: &str = "closer";
/// Lives of the crash test ended by SIGKILL (a last one ends with SIGTERM).
const CRASHES: usize = 22;
/// The life from which the crash test's client erases [`ERASED`].
const ERASE_LIFE: usize = 6;
/// Requests the last life posts after the ones the crashed lives took.
const LAST_REQUESTS: usize = 30;
/// How long after its first acknowledgement a life must last for its subscriber to be required
/// to have seen delta lines.
const DELTA_GRACE: Duration = Duration::from_millis(200);

/// The pipeline of both tests, without `[log]`.
const PIPELINE: &str = r#"
[journeys]
session-gap = "30m"
conversion = "kind=purchase"
[output]
dir = "out"
[run]
workers = 2
"#;

/// The segments of both tests (after `[log]`: arrays of tables end the sections before them).
const SEGMENTS: &str = r#"
[[segments]]
name = "buyers"
rule = "converted"
[[segments]]
name = "engaged"
rule = "events >= 3"
[[segments]]
name = "emailed"
rule = 'channels contains "email"'
"#;

/// The crash test's config: [`PIPELINE`] with a log of 4 KiB segments compacted every 16 KiB,
/// forced to disk by `fsync`.
fn crash_config(fsync: &str) -> String {
    format!("{PIPELINE}[log]\nfsync = \"{fsync}\"\nsegment-bytes = 4096\ncheckpoint-bytes = 16384\n{SEGMENTS}")
}

// ---------------------------------------------------------------------------------------------
// Comparing with `stepstone run`.

/// Runs `stepstone run` with `config` over `lines` (a JSON Lines file, in this order) in
/// `dir/name` and returns its output directory.
fn batch_run(dir: &Path, name: &str, config: &str, lines: &[&str]) -> PathBuf {
    let input = dir.join(format!("{name}.jsonl"));
    std::fs::write(&input, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    let out = dir.join(name);
    common::stepstone_ok(&[
        "run",
        "-q",
        "--config",
        config_path.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    out
}

/// The Arrow tables of a snapshot directory by name, each printed as text without its schema
/// metadata (which holds the logical time and the watermark).
fn tables(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())) {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(table) = name.strip_suffix(".arrow") else { continue };
        let batch = read_table(dir, table);
        let fields: Vec<String> = batch.schema().fields().iter().map(|f| format!("{f:?}")).collect();
        // Printed without the time zone (`UTC`), which printing does not support.
        let columns: Vec<(String, arrow::array::ArrayRef)> = (batch.schema().fields().iter().zip(batch.columns()))
            .map(|(field, column)| {
                let column = match field.data_type() {
                    DataType::Timestamp(unit, Some(_)) => cast(column, &DataType::Timestamp(*unit, None)).unwrap(),
                    _ => column.clone(),
                };
                (field.name().clone(), column)
            })
            .collect();
        let printable = arrow::array::RecordBatch::try_from_iter(columns).unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&[printable]).unwrap().to_string();
        let mut lines = vec![fields.join(", ")];
        lines.extend(text.lines().map(str::to_owned));
        tables.insert(table.to_owned(), lines);
    }
    tables
}

/// Asserts that the snapshot in `served` equals the one in `ran`, table by table (`what`
/// names the comparison); returns the tables' names and their rows.
fn assert_same_snapshot(served: &Path, ran: &Path, what: &str) -> String {
    let (served, ran) = (tables(served), tables(ran));
    assert!(ran.contains_key("journeys") && ran.contains_key("transitions"), "{what}: the run's tables: {ran:?}");
    assert_eq!(served.keys().collect::<Vec<_>>(), ran.keys().collect::<Vec<_>>(), "{what}: the tables");
    for (table, lines) in &ran {
        let got = &served[table];
        if let Some(i) = (0..got.len().max(lines.len())).find(|&i| got.get(i) != lines.get(i)) {
            panic!(
                "{what}: {table}.arrow differs from the run's at line {i} ({} lines served, {} run):\n  served: {:?}\n  run:    {:?}",
                got.len(),
                lines.len(),
                got.get(i),
                lines.get(i)
            );
        }
    }
    // The printed table has a line of fields, and three lines around the header and one at the end.
    ran.iter().map(|(table, lines)| format!("{table} {}", lines.len().saturating_sub(5))).collect::<Vec<_>>().join(", ")
}
