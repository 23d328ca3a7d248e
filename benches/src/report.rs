//! The bench results: medians, spreads and ratios computed from the raw measurements, printed as
//! a table and serialized as JSON.

use std::fmt;

use serde::Serialize;

use super::BenchOptions;
use super::bulk::{BulkRuns, DecodeRuns, MIB, Measured};
use super::incremental::{IncrementalRun, Phase};
use super::live::LiveRun;
use super::stats::{Spread, percentile};
use super::workload::Encoding;

/// Everything one bench run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// What was measured, and where.
    pub settings: Settings,
    /// Decode-only throughput per format: the baseline.
    pub decode: Vec<DecodeResult>,
    /// Whole-run throughput per format and worker count.
    pub bulk: Vec<BulkResult>,
    /// Update latency per worker count (empty with `--batches 0`).
    pub incremental: Vec<IncrementalResult>,
    /// Event-to-delta latency through the live service, per offered rate.
    pub live: Vec<LiveResult>,
}

/// Event-to-delta latency at one offered rate.
#[derive(Debug, Serialize)]
pub struct LiveResult {
    /// Events offered per second.
    pub rate: u64,
    /// Whose events: `new` (a new customer per event) or `N returning`.
    pub customers: String,
    /// Events posted.
    pub sent: u64,
    /// Their deltas received.
    pub received: usize,
    /// Requests not answered 200.
    pub refused: u64,
    /// The served log's fsync policy, or `off`.
    pub log: String,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// The settings of a bench run.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// The measured files given with `--input` (none for a generated workload).
    pub input: Vec<String>,
    /// Well-formed events in the workload.
    pub events: u64,
    /// Customers in the workload (for `--input`, those with an event).
    pub customers: u64,
    /// The workload's seed (for `--input`, its continuation's is the next one).
    pub seed: u64,
    /// Worker counts measured; speedups are relative to the first.
    pub workers: Vec<usize>,
    /// Repetitions of every throughput measurement.
    pub reps: usize,
    /// Batches per batch size in the incremental measurement.
    pub batches: usize,
    /// Hardware threads available to the bench.
    pub cpus: usize,
}

/// Decode-only throughput of one format.
#[derive(Debug, Serialize)]
pub struct DecodeResult {
    /// The format.
    pub format: Encoding,
    /// The workload file.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Events decoded.
    pub events: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Events per second over the repetitions.
    pub events_per_second: Spread,
}

/// Whole-run throughput of one format on one worker count.
#[derive(Debug, Serialize)]
pub struct BulkResult {
    /// The format.
    pub format: Encoding,
    /// Timely workers.
    pub workers: usize,
    /// Events per second over the repetitions.
    pub events_per_second: Spread,
    /// Median events/s relative to decoding the same format alone.
    pub vs_decode: f64,
    /// Median events/s relative to the same format on the first worker count.
    pub speedup: f64,
    /// The largest peak RSS of the repetitions' processes, in bytes.
    pub peak_rss_bytes: u64,
    /// That peak per event of the workload.
    pub peak_bytes_per_event: f64,
    /// That peak per customer with at least one event.
    pub peak_bytes_per_customer: f64,
}

/// Update latency on one worker count.
#[derive(Debug, Serialize)]
pub struct IncrementalResult {
    /// Timely workers.
    pub workers: usize,
    /// Events loaded as the first logical time.
    pub loaded_events: u64,
    /// Seconds until the load was applied.
    pub load_seconds: f64,
    /// Loaded events per second.
    pub load_events_per_second: f64,
    /// Latency per batch size.
    pub batches: Vec<BatchResult>,
    /// Peak RSS of the whole bench process after this run (a high-water mark that includes the
    /// earlier runs), in bytes.
    pub process_peak_rss_bytes: u64,
}

/// Latency of the batches of one size, from due time to applied.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    /// What the batches update: the workload's continuation or the heavy customer.
    pub target: &'static str,
    /// Events per batch.
    pub size: usize,
    /// Time between due times, in ms.
    pub interval_ms: f64,
    /// Batches planned.
    pub planned: usize,
    /// Batches sent (fewer than planned only if the engine fell far behind).
    pub sent: usize,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 99th-percentile latency in ms.
    pub p99_ms: f64,
    /// Largest latency in ms.
    pub max_ms: f64,
    /// 99th percentile of the sender's lateness in submitting a batch after its due time, in ms
    /// (included in the latencies).
    pub sender_late_p99_ms: f64,
}

impl Report {
    /// The report of the measurements of `options`.
    pub fn new(
        options: &BenchOptions,
        measured: Measured,
        incremental: Vec<IncrementalRun>,
        live: Vec<LiveRun>,
    ) -> Report {
        let given = !options.input.is_empty();
        let settings = Settings {
            input: options.input.iter().map(|path| path.display().to_string()).collect(),
            events: match measured.decode.first() {
                Some(decoded) if given => decoded.events,
                _ => options.events,
            },
            customers: match measured.bulk.first() {
                Some(run) if given => run.customers,
                _ => options.customers,
            },
            seed: options.seed,
            workers: options.workers.clone(),
            reps: options.reps,
            batches: options.batches,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let decode: Vec<DecodeResult> = measured.decode.iter().map(decode_result).collect();
        let bulk = measured.bulk.iter().map(|runs| bulk_result(runs, &measured.bulk, &decode)).collect();
        Report {
            settings,
            decode,
            bulk,
            incremental: incremental.iter().map(incremental_result).collect(),
            live: live.iter().map(live_result).collect(),
        }
    }
}

fn live_result(run: &LiveRun) -> LiveResult {
    let sorted = &run.latencies_ms;
    LiveResult {
        rate: run.rate,
        customers: run.customers.label(),
        sent: run.sent,
        received: sorted.len(),
        refused: run.refused,
        log: run.log.clone(),
        p50_ms: percentile(sorted, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile(sorted, 99.0).unwrap_or(f64::NAN),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

/// Events per second of `events` taking each of `seconds`.
fn throughput(events: u64, seconds: &[f64]) -> Spread {
    Spread::of(seconds.iter().map(|s| events as f64 / s)).unwrap_or(Spread { median: 0.0, min: 0.0, max: 0.0 })
}

fn decode_result(runs: &DecodeRuns) -> DecodeResult {
    DecodeResult {
        format: runs.format,
        path: runs.path.display().to_string(),
        bytes: runs.bytes,
        events: runs.events,
        rejected: runs.rejected,
        events_per_second: throughput(runs.events, &runs.seconds),
    }
}

fn bulk_result(runs: &BulkRuns, all: &[BulkRuns], decode: &[DecodeResult]) -> BulkResult {
    let eps = throughput(runs.events, &runs.seconds);
    let peak = runs.peak_rss_bytes.iter().copied().max().unwrap_or(0);
    let decoded = decode.iter().find(|d| d.format == runs.format).map_or(f64::NAN, |d| d.events_per_second.median);
    let first =
        all.iter().find(|r| r.format == runs.format).map_or(f64::NAN, |r| throughput(r.events, &r.seconds).median);
    BulkResult {
        format: runs.format,
        workers: runs.workers,
        events_per_second: eps,
        vs_decode: eps.median / decoded,
        speedup: eps.median / first,
        peak_rss_bytes: peak,
        peak_bytes_per_event: peak as f64 / runs.events.max(1) as f64,
        peak_bytes_per_customer: peak as f64 / runs.customers.max(1) as f64,
    }
}

fn incremental_result(run: &IncrementalRun) -> IncrementalResult {
    IncrementalResult {
        workers: run.workers,
        loaded_events: run.loaded_events,
        load_seconds: run.load_seconds,
        load_events_per_second: run.loaded_events as f64 / run.load_seconds,
        batches: run.phases.iter().map(batch_result).collect(),
        process_peak_rss_bytes: run.process_peak_rss_bytes,
    }
}

fn batch_result(phase: &Phase) -> BatchResult {
    let sorted = &phase.latencies_ms;
    BatchResult {
        target: phase.target,
        size: phase.size,
        interval_ms: phase.interval.as_secs_f64() * 1000.0,
        planned: phase.planned,
        sent: sorted.len(),
        p50_ms: percentile(sorted, 50.0).unwrap_or(f64::NAN),
        p99_ms: percentile(sorted, 99.0).unwrap_or(f64::NAN),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        sender_late_p99_ms: percentile(&phase.sender_late_ms, 99.0).unwrap_or(f64::NAN),
    }
}

/// `events_per_second` as `1.23 M/s` or `456 k/s`.
fn rate(events_per_second: f64) -> String {
    if events_per_second >= 1e6 {
        format!("{:.2} M/s", events_per_second / 1e6)
    } else {
        format!("{:.0} k/s", events_per_second / 1e3)
    }
}

/// `spread` of events/s as `median (min–max)`.
fn rates(spread: &Spread) -> String {
    format!("{} ({}–{})", rate(spread.median), rate(spread.min).trim_end_matches("/s"), rate(spread.max))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let workload = match &s.input[..] {
            [] => format!("{} events, {} customers, seed {}", s.events, s.customers, s.seed),
            files => format!("{} ({} events, {} customers)", files.join(", "), s.events, s.customers),
        };
        writeln!(f, "workload: {workload}; {} CPUs; {} reps (median, min–max)", s.cpus, s.reps)?;
        writeln!(f)?;
        writeln!(f, "{:<18} {:>10} {:>9}  {:<32}", "decode only", "MiB", "rejected", "events/s")?;
        for d in &self.decode {
            let mib = d.bytes as f64 / MIB;
            writeln!(
                f,
                "  {:<16} {mib:>10.1} {:>9}  {:<32}",
                d.format.name(),
                d.rejected,
                rates(&d.events_per_second)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<18} {:<32} {:>9} {:>8} {:>9} {:>8} {:>8}",
            "bulk run", "events/s", "vs decode", "speedup", "peak MiB", "B/event", "B/cust."
        )?;
        for b in &self.bulk {
            let name = format!("{} w={}", b.format.name(), b.workers);
            let mib = b.peak_rss_bytes as f64 / MIB;
            writeln!(
                f,
                "  {name:<16} {:<32} {:>9.2} {:>8.2} {mib:>9.0} {:>8.0} {:>8.0}",
                rates(&b.events_per_second),
                b.vs_decode,
                b.speedup,
                b.peak_bytes_per_event,
                b.peak_bytes_per_customer
            )?;
        }
        if !self.incremental.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<18} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}  updating",
                "incremental", "batch", "every", "sent", "p50 ms", "p99 ms", "max ms", "late p99"
            )?;
            for run in &self.incremental {
                writeln!(
                    f,
                    "  w={:<14} load {} events in {:.2} s ({}); process peak {:.0} MiB",
                    run.workers,
                    run.loaded_events,
                    run.load_seconds,
                    rate(run.load_events_per_second),
                    run.process_peak_rss_bytes as f64 / MIB
                )?;
                for b in &run.batches {
                    writeln!(
                        f,
                        "  {:<16} {:>7} {:>5.0} ms {:>5}/{:<3} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
                        "",
                        b.size,
                        b.interval_ms,
                        b.sent,
                        b.planned,
                        b.p50_ms,
                        b.p99_ms,
                        b.max_ms,
                        b.sender_late_p99_ms,
                        b.target
                    )?;
                }
            }
        }
        if !self.live.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<18} {:>16} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9}",
                "live event→delta", "customers", "log", "sent", "received", "refused", "p50 ms", "p99 ms", "max ms"
            )?;
            for l in &self.live {
                writeln!(
                    f,
                    "  {:<16} {:>16} {:>6} {:>9} {:>9} {:>8} {:>9.2} {:>9.2} {:>9.2}",
                    format!("{} /s", l.rate),
                    l.customers,
                    l.log,
                    l.sent,
                    l.received,
                    l.refused,
                    l.p50_ms,
                    l.p99_ms,
                    l.max_ms
                )?;
            }
        }
        Ok(())
    }
}
