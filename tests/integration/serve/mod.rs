//! End-to-end tests of the live service, `stepstone serve`, over loopback: the binary is started
//! with a config on free ports, fed over HTTP and followed by WebSocket and SSE subscribers; what
//! they receive, the lookups, the metrics, Arrow Flight (read by pyarrow's client,
//! `tests/serve_flight.py`) and the final snapshot written at SIGTERM are compared with the test
//! oracle (`common::oracle`).
//!
//! Every wait is bounded (`common::server::WAIT` for one condition, `TEST_LIMIT` for a whole
//! test) and every server is killed when its test ends, passed or not (the harness is in
//! `common/server.rs`). The test data and the oracle's expectations are in [`feed`] and
//! [`expected`]; the tests, by topic, in the other modules.

mod backpressure;
mod erasure;
mod expected;
mod feed;
mod flight;
mod ingest;
mod settled;
mod subscribers;

/// The bearer token of the servers that require one.
const TOKEN: &str = "secret";
/// The session gap of the test configs, in ms.
const GAP_MS: i64 = 30 * 60_000;
/// The path length (the default).
const PATH_LEN: usize = 5;

/// 2026-03-01T10:00:00Z plus `minutes`, in ms.
fn at(minutes: f64) -> i64 {
    let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap().and_hms_opt(10, 0, 0).unwrap().and_utc();
    base.timestamp_millis() + (minutes * 60_000.0).round() as i64
}
