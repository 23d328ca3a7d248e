//! The live service's counters and gauges, exposed at `GET /metrics` in the Prometheus text
//! format.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The label of rejected-record counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The rejection's reason kind (`bad_time`, `missing_field`, …).
    pub reason: String,
}

/// Every metric of the live service.
pub struct Metrics {
    registry: Registry,
    /// Events accepted into the engine.
    pub events_in: Counter,
    /// Records rejected, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Events older than their source's watermark when they arrived (rejected or accepted).
    pub events_late: Counter,
    /// Delta lines published to subscribers.
    pub deltas_out: Counter,
    /// Records without analytics consent, which count in no view.
    pub events_without_consent: Counter,
    /// Erasures applied.
    pub erasures: Counter,
    /// Events removed by erasures.
    pub events_erased: Counter,
    /// Events of erased identities dropped as they came.
    pub events_suppressed: Counter,
    /// Ingest requests appended to the durable log.
    pub log_appends: Counter,
    /// Ingest requests refused because the log could not take them (answered 503).
    pub log_failures: Counter,
    /// Retried ingest requests answered from their idempotency key, not applied again.
    pub requests_duplicate: Counter,
    /// Periodic snapshots that could not be written.
    pub snapshot_failures: Counter,
    /// Batches of rejections that could not be written to the dead-letter file.
    pub dead_letter_failures: Counter,
    /// Subscribers connected now.
    pub subscribers: Gauge,
    /// The latest complete logical time (-1 before the first).
    pub logical_time: Gauge,
    /// Seconds since the oldest sealed but not yet applied logical time was sealed.
    engine_lag: Gauge<f64, AtomicU64>,
    /// Seconds since the last snapshot was written.
    snapshot_age: Gauge<f64, AtomicU64>,
    /// Wall time of the last snapshot, in ms since the epoch (0: none yet).
    last_snapshot_ms: AtomicI64,
    /// Sealed times not yet applied, oldest first, with when they were sealed.
    in_flight: Mutex<InFlight>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics, registered under their names.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events_in = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let deltas_out = Counter::default();
        let events_late = Counter::default();
        let erasures = Counter::default();
        let events_without_consent = Counter::default();
        let events_erased = Counter::default();
        let events_suppressed = Counter::default();
        let log_appends = Counter::default();
        let log_failures = Counter::default();
        let requests_duplicate = Counter::default();
        let snapshot_failures = Counter::default();
        let dead_letter_failures = Counter::default();
        let subscribers = Gauge::default();
        let logical_time = Gauge::default();
        let engine_lag = Gauge::<f64, AtomicU64>::default();
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        logical_time.set(-1);
        registry.register("stepstone_events_in", "Events accepted into the engine", events_in.clone());
        registry.register("stepstone_events_rejected", "Records rejected, by reason", rejected.clone());
        registry.register(
            "stepstone_events_late",
            "Events older than their source's watermark when they arrived (rejected or accepted)",
            events_late.clone(),
        );
        registry.register("stepstone_deltas_out", "Context-delta lines published to subscribers", deltas_out.clone());
        registry.register(
            "stepstone_events_without_consent",
            "Records without analytics consent, which count in no view",
            events_without_consent.clone(),
        );
        registry.register("stepstone_erasures", "Erasures applied", erasures.clone());
        registry.register("stepstone_events_erased", "Events removed by erasures", events_erased.clone());
        registry.register(
            "stepstone_events_suppressed",
            "Events of erased identities dropped as they came",
            events_suppressed.clone(),
        );
        registry.register("stepstone_log_appends", "Ingest requests appended to the durable log", log_appends.clone());
        registry.register(
            "stepstone_log_failures",
            "Ingest requests refused because the durable log could not take them",
            log_failures.clone(),
        );
        registry.register(
            "stepstone_requests_duplicate",
            "Retried ingest requests answered from their idempotency key",
            requests_duplicate.clone(),
        );
        registry.register(
            "stepstone_snapshot_failures",
            "Periodic snapshots that could not be written (tried again at the next interval)",
            snapshot_failures.clone(),
        );
        registry.register(
            "stepstone_dead_letter_failures",
            "Batches of rejected records that could not be written to the dead-letter file (ingest answers list them)",
            dead_letter_failures.clone(),
        );
        registry.register("stepstone_subscribers", "Subscribers connected", subscribers.clone());
        registry.register("stepstone_logical_time", "The latest complete logical time", logical_time.clone());
        registry.register(
            "stepstone_engine_lag_seconds",
            "Age of the oldest sealed logical time the engine has not completed",
            engine_lag.clone(),
        );
        registry.register(
            "stepstone_snapshot_age_seconds",
            "Seconds since the last snapshot was written",
            snapshot_age.clone(),
        );
        Metrics {
            registry,
            events_in,
            rejected,
            events_late,
            deltas_out,
            events_without_consent,
            erasures,
            events_erased,
            events_suppressed,
            log_appends,
            log_failures,
            requests_duplicate,
            snapshot_failures,
            dead_letter_failures,
            subscribers,
            logical_time,
            engine_lag,
            snapshot_age,
            last_snapshot_ms: AtomicI64::new(0),
            in_flight: Mutex::default(),
        }
    }

    /// Counts one rejected record of `reason`.
    pub fn reject(&self, reason: &str) {
        self.rejected.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    /// Records that logical time `time` was sealed now. A time the engine applied before its
    /// seal was recorded here is not in flight.
    pub fn sealed(&self, time: u64) {
        let mut in_flight = self.in_flight.lock().expect("metrics lock");
        if in_flight.applied.is_none_or(|applied| applied < time) {
            in_flight.sealed.push_back((time, Instant::now()));
        }
    }

    /// Records that every time up to `time` was applied.
    pub fn applied(&self, time: u64) {
        self.logical_time.set(i64::try_from(time).unwrap_or(i64::MAX));
        let mut in_flight = self.in_flight.lock().expect("metrics lock");
        in_flight.applied = Some(time);
        while in_flight.sealed.front().is_some_and(|(t, _)| *t <= time) {
            in_flight.sealed.pop_front();
        }
    }

    /// Records that a snapshot was written now.
    pub fn snapshot_written(&self) {
        self.last_snapshot_ms.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text format, the gauges of ages computed now.
    pub fn render(&self) -> String {
        let lag = self
            .in_flight
            .lock()
            .expect("metrics lock")
            .sealed
            .front()
            .map_or(0.0, |(_, at)| at.elapsed().as_secs_f64());
        self.engine_lag.set(lag);
        let last = self.last_snapshot_ms.load(std::sync::atomic::Ordering::Relaxed);
        self.snapshot_age.set(if last == 0 { 0.0 } else { (now_ms() - last).max(0) as f64 / 1000.0 });
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// The logical times between sealing and applying. The engine may apply a time before the
/// driver records its seal, so the latest applied time is kept to recognise such a seal.
#[derive(Debug, Default)]
struct InFlight {
    /// Sealed times not yet applied, oldest first, with when they were sealed.
    sealed: VecDeque<(u64, Instant)>,
    /// The latest applied time.
    applied: Option<u64>,
}

/// Wall-clock time in ms since the epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `stepstone_engine_lag_seconds` line of `metrics`.
    fn lag(metrics: &Metrics) -> f64 {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with("stepstone_engine_lag_seconds ")).expect("the lag gauge");
        line.split_whitespace().nth(1).expect("a value").parse().expect("a number")
    }

    #[test]
    fn a_time_applied_before_its_seal_is_recorded_is_not_in_flight() {
        let metrics = Metrics::new();
        metrics.sealed(0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(lag(&metrics) > 0.0);
        metrics.applied(0);
        assert_eq!(lag(&metrics), 0.0);
        // The engine completes time 1 before the driver gets to record sealing it.
        metrics.applied(1);
        metrics.sealed(1);
        assert_eq!(lag(&metrics), 0.0);
        metrics.sealed(2);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(lag(&metrics) > 0.0);
    }
}
