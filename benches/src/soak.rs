//! `stepstone-bench --soak DURATION`: sustained ingest into the live service at a fixed rate for
//! a bounded time with subscribers attached, to see whether the server's memory stays flat once
//! the set of customers stops growing, and how latency and the durable log behave over time.
//!
//! `stepstone serve` runs as a child process on 127.0.0.1 ([`live::start`]) with its durable log
//! on (fsync `batch`) and a small `checkpoint-bytes`, so that compaction runs during the soak.
//! `--soak-subscribers` WebSocket subscribers attach to every delta, a fixed pool of
//! `--soak-customers` returning customers gets one event each (the warm-up, untimed), and then
//! events go round the pool at `--soak-rate`, open loop as in [`live`]: a batch is due every
//! millisecond (every tenth of a second below 10k/s), each posted on a task of its own, at most
//! [`IN_FLIGHT`] at once. An event's latency runs from when its batch was due until its journey
//! line reaches a subscriber; every subscriber measures every event.
//!
//! Every `--soak-interval` one row is recorded: events acknowledged and requests refused in the
//! interval, delta lines received (all subscribers together), p50/p99/max latency of the events
//! that showed in it, the server's RSS (`VmRSS` of `/proc/PID/status`) and peak RSS (`VmHWM`),
//! the bytes in the log directory (a checkpoint being written included), and the machine's load
//! average. After the last batch the subscribers get [`DRAIN`] to catch up, which makes one more
//! row. The verdict on flatness compares the RSS at the end of the timed phase with the RSS a
//! quarter into it: growth in %, in bytes per minute and in bytes per event acknowledged in
//! between.
//!
//! Only real errors fail the soak: the service exiting, a subscription ending, lagging or
//! failing, the warm-up not completing. The verdict is reported, never an error. Everything is
//! bounded in time and count, and the service is stopped on every way out.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::BenchOptions;
use super::bulk::{MIB, status_bytes};
use super::live::{self, Customers, Line, Service, Shown, body, timed_number};
use super::stats::percentile;

/// How long after the last batch the subscribers may take to show the last events.
const DRAIN: Duration = Duration::from_secs(10);
/// The most ingest requests in flight at once: beyond, the sender waits (and since latency
/// counts from when a batch was due, its delay shows as latency).
const IN_FLIGHT: usize = 4096;
/// RSS growth from a quarter into the timed phase to its end, in %, up to which memory counts as
/// flat.
const FLAT_PERCENT: f64 = 10.0;
/// How often the drain checks whether every subscriber has caught up.
const POLL: Duration = Duration::from_millis(100);

/// What one soak was asked to do.
#[derive(Debug, Serialize)]
pub struct SoakSettings {
    /// Length of the timed phase, in seconds.
    pub duration_seconds: f64,
    /// Events offered per second.
    pub rate: u64,
    /// Subscribers to every delta.
    pub subscribers: usize,
    /// Seconds between rows.
    pub interval_seconds: f64,
    /// Returning customers the events go round.
    pub customers: u64,
    /// Timely workers of the service.
    pub workers: usize,
    /// The log's `checkpoint-bytes`.
    pub checkpoint_bytes: u64,
    /// Hardware threads available.
    pub cpus: usize,
}

/// One row of the soak: what happened in one interval, and the server at its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the timed phase began (0: right after the warm-up).
    pub seconds: f64,
    /// Whether the row is of the drain after the last batch.
    pub drain: bool,
    /// Events whose request was acknowledged in the interval.
    pub posted: u64,
    /// Requests not answered 200 in the interval.
    pub refused: u64,
    /// Delta lines received in the interval, all subscribers together.
    pub lines: u64,
    /// Events that showed at a subscriber in the interval (each once per subscriber).
    pub shown: u64,
    /// Their median latency, ms.
    pub p50_ms: Option<f64>,
    /// Their 99th-percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Their largest latency, ms.
    pub max_ms: Option<f64>,
    /// The server's resident set size at the end of the interval, bytes.
    pub rss_bytes: u64,
    /// Its peak resident set size so far, bytes.
    pub peak_rss_bytes: u64,
    /// Bytes in the log directory at the end of the interval.
    pub log_bytes: u64,
    /// The machine's 1-minute load average then (the soak shares the machine with whatever
    /// else runs on it).
    pub load: f64,
}

/// Whether the server's memory stayed flat: its RSS at the end of the timed phase against its
/// RSS a quarter into it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// When the first of the two rows was taken, seconds into the timed phase.
    pub from_seconds: f64,
    /// The RSS then, bytes.
    pub from_rss_bytes: u64,
    /// When the last row of the timed phase was taken.
    pub to_seconds: f64,
    /// The RSS then, bytes.
    pub to_rss_bytes: u64,
    /// The growth in between, in % of the first.
    pub growth_percent: f64,
    /// The growth per minute, bytes.
    pub bytes_per_minute: f64,
    /// The growth per event acknowledged in between, bytes.
    pub bytes_per_event: f64,
    /// Whether the growth is at most [`FLAT_PERCENT`].
    pub flat: bool,
}

/// Everything one soak measured.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// What was asked.
    pub settings: SoakSettings,
    /// Seconds the warm-up took, until every subscriber had seen every customer's first event.
    pub warm_up_seconds: f64,
    /// The rows: one right after the warm-up, one per interval, one of the drain.
    pub samples: Vec<Sample>,
    /// The verdict on flatness; `None` when the soak was too short for two distinct rows.
    pub verdict: Option<Verdict>,
}

/// Soaks a fresh `exe serve` below `scratch` for `duration` as `options` ask.
pub fn run(options: &BenchOptions, duration: Duration, exe: &Path, scratch: &Path) -> anyhow::Result<SoakReport> {
    ensure!(options.soak_rate > 0, "--soak-rate must be positive");
    ensure!(options.soak_subscribers >= 1, "--soak-subscribers must be at least 1");
    ensure!(options.soak_customers >= 1, "--soak-customers must be at least 1");
    ensure!(!options.soak_interval.is_zero(), "--soak-interval must be positive");
    let settings = SoakSettings {
        duration_seconds: duration.as_secs_f64(),
        rate: options.soak_rate,
        subscribers: options.soak_subscribers,
        interval_seconds: options.soak_interval.as_secs_f64(),
        customers: options.soak_customers,
        workers: options.workers.iter().copied().max().unwrap_or(1).max(1),
        checkpoint_bytes: options.soak_checkpoint_bytes.max(1),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the soak's runtime")?;
    runtime.block_on(soak(settings, duration, options.soak_interval, exe, scratch))
}

/// When the timed batches are due.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// When the first is due.
    start: Instant,
    /// Time between batches.
    tick: Duration,
    /// Events per batch.
    per_batch: u64,
    /// Batches.
    batches: u64,
}

impl Plan {
    /// `rate` events per second for `duration` from `start`, in batches as [`live`] makes them.
    fn new(rate: u64, duration: Duration, start: Instant) -> anyhow::Result<Plan> {
        let tick = if rate >= 10_000 { Duration::from_millis(1) } else { Duration::from_millis(100) };
        let per_batch = (rate as f64 * tick.as_secs_f64()).round().max(1.0) as u64;
        let batches = (duration.as_secs_f64() / tick.as_secs_f64()) as u64;
        ensure!(batches >= 1, "the soak must last at least {tick:?}");
        ensure!(batches <= u64::from(u32::MAX), "the soak is too long");
        Ok(Plan { start, tick, per_batch, batches })
    }

    /// When batch `batch` is due.
    fn due(&self, batch: u64) -> Instant {
        self.start + self.tick * batch as u32
    }

    /// When the event numbered `number` (counted from the first timed one) was due, if it is one.
    fn due_of(&self, number: u64) -> Option<Instant> {
        let batch = number / self.per_batch;
        (batch < self.batches).then(|| self.due(batch))
    }
}

/// What the sender and the subscribers count, shared with the loop that takes the rows.
#[derive(Debug, Default)]
struct Tally {
    /// The current interval's counts.
    interval: Interval,
    /// Events acknowledged so far.
    posted: u64,
    /// Per subscriber, the events shown so far.
    shown: Vec<u64>,
}

/// The counts of one interval.
#[derive(Debug, Default)]
struct Interval {
    posted: u64,
    refused: u64,
    lines: u64,
    latencies_ms: Vec<f64>,
}

type Shared = Arc<Mutex<Tally>>;

/// The soak itself: the service, the warm-up, the timed phase with its rows, the drain.
async fn soak(
    settings: SoakSettings,
    duration: Duration,
    interval: Duration,
    exe: &Path,
    dir: &Path,
) -> anyhow::Result<SoakReport> {
    let log = format!("[log]\nfsync = \"batch\"\ncheckpoint-bytes = {}\n", settings.checkpoint_bytes);
    let (service, address) = live::start(exe, settings.workers, dir, &log)?;
    let server = Server { pid: service.id(), log_dir: dir.join("out").join("log") };
    let pool = settings.customers;

    let mut sockets = Vec::new();
    for _ in 0..settings.subscribers {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/v1/subscribe"))
            .await
            .context("connecting a subscriber")?;
        sockets.push(socket.split().1);
    }
    let client = reqwest::Client::new();
    let url = format!("http://{address}/v1/events");
    let warm_up = Instant::now();
    live::post_first_events(&client, &url, pool).await?;
    for socket in &mut sockets {
        live::await_entered(socket, pool).await?;
    }
    let warm_up_seconds = warm_up.elapsed().as_secs_f64();
    eprintln!("soak  warm-up: {pool} customers in {warm_up_seconds:.1} s");

    let tally: Shared = Arc::new(Mutex::new(Tally { shown: vec![0; sockets.len()], ..Tally::default() }));
    let mut samples = vec![server.sample(0.0, false, &tally)?];
    eprintln!("{}", header());
    eprintln!("{}", row(&samples[0]));
    let plan = Plan::new(settings.rate, duration, Instant::now() + Duration::from_millis(200))?;
    let listeners = sockets
        .into_iter()
        .enumerate()
        .map(|(subscriber, socket)| tokio::spawn(listen(socket, subscriber, pool, plan, tally.clone())))
        .collect();
    let sender = tokio::spawn(send(client, url, plan, pool, tally.clone()));
    let mut running = Running { service, server, listeners, sender, plan, tally };
    samples.extend(running.timed_phase(duration, interval).await?);
    drop(running);
    let verdict = verdict(&samples, duration.as_secs_f64());
    Ok(SoakReport { settings, warm_up_seconds, samples, verdict })
}

/// The timed phase under way: the service, the subscribers' and the sender's tasks, and what
/// they count. Dropping it stops the tasks and the service.
struct Running {
    service: Service,
    server: Server,
    listeners: Vec<JoinHandle<anyhow::Result<()>>>,
    sender: JoinHandle<()>,
    plan: Plan,
    tally: Shared,
}

impl Running {
    /// The rows of the timed phase and of the drain after it; fails as soon as the service or a
    /// subscriber is found gone.
    async fn timed_phase(&mut self, duration: Duration, interval: Duration) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::new();
        let mut at = Duration::ZERO;
        while at < duration {
            at = (at + interval).min(duration);
            tokio::time::sleep_until((self.plan.start + at).into()).await;
            self.check().await?;
            samples.push(self.server.sample(at.as_secs_f64(), false, &self.tally)?);
            eprintln!("{}", row(samples.last().expect("a row")));
        }
        let deadline = self.plan.start + duration + DRAIN;
        let sent = tokio::time::timeout_at(deadline.into(), &mut self.sender).await.is_ok();
        loop {
            self.check().await?;
            let caught_up = {
                let tally = self.tally.lock().expect("tally lock");
                tally.shown.iter().all(|&shown| shown >= tally.posted)
            };
            if (sent && caught_up) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        samples.push(self.server.sample(self.plan.start.elapsed().as_secs_f64(), true, &self.tally)?);
        eprintln!("{}", row(samples.last().expect("a row")));
        Ok(samples)
    }

    /// Fails if the service has exited or a subscriber has stopped.
    async fn check(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.service.exited()? {
            bail!("the service exited during the soak ({status})");
        }
        for listener in &mut self.listeners {
            if listener.is_finished() {
                listener.await.context("a subscriber's task")??;
                bail!("a subscriber stopped");
            }
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.sender.abort();
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

/// Posts the batches of `plan` when they are due, each on a task of its own, at most
/// [`IN_FLIGHT`] at once, and waits for their answers.
async fn send(client: reqwest::Client, url: String, plan: Plan, pool: u64, tally: Shared) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    for batch in 0..plan.batches {
        tokio::time::sleep_until(plan.due(batch).into()).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let first = pool + batch * plan.per_batch;
        let body = body(first..first + plan.per_batch, Customers::Returning(pool));
        let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
        tokio::spawn(async move {
            let ok = client.post(&url).body(body).send().await.is_ok_and(|r| r.status().is_success());
            let mut tally = tally.lock().expect("tally lock");
            if ok {
                tally.interval.posted += plan.per_batch;
                tally.posted += plan.per_batch;
            } else {
                tally.interval.refused += 1;
            }
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
}

/// Reads subscription `subscriber` until it ends, counting its delta lines and the latency of
/// every timed event its journey lines show for the first time. Ending, failing, or being told
/// `lagged` or `closing` is an error.
async fn listen(
    mut socket: impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    subscriber: usize,
    pool: u64,
    plan: Plan,
    tally: Shared,
) -> anyhow::Result<()> {
    let mut shown = Shown::new(pool);
    loop {
        let message = match socket.next().await {
            Some(message) => message.with_context(|| format!("subscriber {subscriber}: reading the subscription"))?,
            None => bail!("subscriber {subscriber}: the subscription ended"),
        };
        let Message::Text(text) = message else { continue };
        let received = Instant::now();
        let Some(line) = Line::parse(&text) else { continue };
        match line.kind {
            "snapshot" | "progress" => continue,
            "lagged" | "closing" => bail!("subscriber {subscriber} was told {}", text.as_str()),
            _ => {}
        }
        let fresh = line.entered().and_then(|(customer, events)| Some((customer, shown.fresh(customer, events)?)));
        let mut tally = tally.lock().expect("tally lock");
        tally.interval.lines += 1;
        let Some((customer, indexes)) = fresh else { continue };
        for index in indexes {
            if let Some(due) = plan.due_of(timed_number(index, customer, pool)) {
                tally.interval.latencies_ms.push(received.saturating_duration_since(due).as_secs_f64() * 1000.0);
                tally.shown[subscriber] += 1;
            }
        }
    }
}

/// Where the server's figures are read.
struct Server {
    /// The service's process id.
    pid: u32,
    /// Its log directory.
    log_dir: std::path::PathBuf,
}

impl Server {
    /// The row of the interval ending now, `seconds` into the timed phase: takes the interval's
    /// counts from `tally` and reads the server's memory and the log's size.
    fn sample(&self, seconds: f64, drain: bool, tally: &Shared) -> anyhow::Result<Sample> {
        let counts = std::mem::take(&mut tally.lock().expect("tally lock").interval);
        let mut latencies = counts.latencies_ms;
        latencies.sort_by(f64::total_cmp);
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let figure = |field| status_bytes(&status, field).with_context(|| format!("no {field} in {path}"));
        Ok(Sample {
            seconds,
            drain,
            posted: counts.posted,
            refused: counts.refused,
            lines: counts.lines,
            shown: latencies.len() as u64,
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            max_ms: latencies.last().copied(),
            rss_bytes: figure("VmRSS")?,
            peak_rss_bytes: figure("VmHWM")?,
            log_bytes: directory_bytes(&self.log_dir)?,
            load: load_average()?,
        })
    }
}

/// The machine's 1-minute load average, from `/proc/loadavg`.
fn load_average() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    text.split_whitespace().next().and_then(|load| load.parse().ok()).context("no load average in /proc/loadavg")
}

/// The bytes of the files in `dir` (files that vanish while it is read, as compaction removes
/// them, count nothing).
fn directory_bytes(dir: &Path) -> anyhow::Result<u64> {
    let items = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    Ok(items.filter_map(Result::ok).filter_map(|item| item.metadata().ok()).map(|m| m.len()).sum())
}

/// The verdict on the rows of a timed phase of `duration` seconds: the last row before the drain
/// against the first a quarter into it (and after the warm-up row). `None` without two such
/// distinct rows.
fn verdict(samples: &[Sample], duration: f64) -> Option<Verdict> {
    let timed: Vec<&Sample> = samples.iter().filter(|s| !s.drain).collect();
    let to = *timed.last()?;
    let from = *timed.iter().find(|s| s.seconds > 0.0 && s.seconds >= duration / 4.0)?;
    if to.seconds <= from.seconds || from.rss_bytes == 0 {
        return None;
    }
    let posted: u64 = timed.iter().filter(|s| s.seconds > from.seconds).map(|s| s.posted).sum();
    let growth = to.rss_bytes as f64 - from.rss_bytes as f64;
    let growth_percent = growth / from.rss_bytes as f64 * 100.0;
    Some(Verdict {
        from_seconds: from.seconds,
        from_rss_bytes: from.rss_bytes,
        to_seconds: to.seconds,
        to_rss_bytes: to.rss_bytes,
        growth_percent,
        bytes_per_minute: growth / (to.seconds - from.seconds) * 60.0,
        bytes_per_event: growth / posted.max(1) as f64,
        flat: growth_percent <= FLAT_PERCENT,
    })
}

/// The head of the table of rows.
fn header() -> String {
    format!(
        "{:>7} {:>9} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
        "s",
        "posted",
        "refused",
        "lines",
        "shown",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS MiB",
        "peak MiB",
        "log MiB",
        "load"
    )
}

/// One row of the table.
fn row(s: &Sample) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let seconds = if s.drain { "drain".to_owned() } else { format!("{:.0}", s.seconds) };
    format!(
        "{seconds:>7} {:>9} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>5.2}",
        s.posted,
        s.refused,
        s.lines,
        s.shown,
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.max_ms),
        s.rss_bytes as f64 / MIB,
        s.peak_rss_bytes as f64 / MIB,
        s.log_bytes as f64 / MIB,
        s.load
    )
}

impl SoakReport {
    /// The rows as CSV, one line per row after a header line; empty latencies are empty fields.
    pub fn csv(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
        let mut out = String::from(
            "seconds,drain,posted,refused,lines,shown,p50_ms,p99_ms,max_ms,rss_bytes,peak_rss_bytes,log_bytes,load\n",
        );
        for s in &self.samples {
            out += &format!(
                "{:.3},{},{},{},{},{},{},{},{},{},{},{},{:.2}\n",
                s.seconds,
                s.drain,
                s.posted,
                s.refused,
                s.lines,
                s.shown,
                ms(s.p50_ms),
                ms(s.p99_ms),
                ms(s.max_ms),
                s.rss_bytes,
                s.peak_rss_bytes,
                s.log_bytes,
                s.load
            );
        }
        out
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "soak: {:.0} s at {} events/s over {} returning customers, {} subscribers, {} workers, \
             log checkpoint-bytes {:.1} MiB; {} CPUs; warm-up {:.1} s",
            s.duration_seconds,
            s.rate,
            s.customers,
            s.subscribers,
            s.workers,
            s.checkpoint_bytes as f64 / MIB,
            s.cpus,
            self.warm_up_seconds
        )?;
        writeln!(f)?;
        writeln!(f, "{}", header())?;
        for sample in &self.samples {
            writeln!(f, "{}", row(sample))?;
        }
        writeln!(f)?;
        let posted: u64 = self.samples.iter().map(|s| s.posted).sum();
        let refused: u64 = self.samples.iter().map(|s| s.refused).sum();
        let shown: u64 = self.samples.iter().map(|s| s.shown).sum();
        let subscribers = s.subscribers as u64;
        writeln!(
            f,
            "events acknowledged {posted}, requests refused {refused}; shown at the subscribers {shown} of {}",
            posted * subscribers
        )?;
        let mut p99s: Vec<f64> = self.samples.iter().filter(|s| !s.drain).filter_map(|s| s.p99_ms).collect();
        p99s.sort_by(f64::total_cmp);
        if let (Some(low), Some(high)) = (p99s.first(), p99s.last()) {
            let median = percentile(&p99s, 50.0).unwrap_or(f64::NAN);
            writeln!(f, "p99 per interval: {low:.2}–{high:.2} ms (median {median:.2} ms)")?;
        }
        let peak = self.samples.iter().map(|s| s.peak_rss_bytes).max().unwrap_or(0);
        match &self.verdict {
            None => writeln!(f, "memory: too short for a verdict; peak RSS {:.1} MiB", peak as f64 / MIB),
            Some(v) => {
                writeln!(
                    f,
                    "memory: RSS {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s, peak {:.1} MiB",
                    v.from_rss_bytes as f64 / MIB,
                    v.from_seconds,
                    v.to_rss_bytes as f64 / MIB,
                    v.to_seconds,
                    peak as f64 / MIB
                )?;
                writeln!(
                    f,
                    "verdict: {} ({:+.1}% between, {:+.2} MiB/min, {:+.1} bytes per event acknowledged; flat means at most {FLAT_PERCENT}%)",
                    if v.flat { "flat" } else { "growing" },
                    v.growth_percent,
                    v.bytes_per_minute / MIB,
                    v.bytes_per_event
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, posted: u64, rss_mib: u64) -> Sample {
        Sample { seconds, posted, rss_bytes: rss_mib << 20, ..Sample::default() }
    }

    #[test]
    fn verdict_compares_a_quarter_in_with_the_end() {
        let samples = [
            sample(0.0, 0, 90),
            sample(10.0, 1000, 100),
            sample(20.0, 1000, 100),
            sample(30.0, 1000, 105),
            sample(40.0, 1000, 120),
            Sample { drain: true, ..sample(45.0, 0, 500) },
        ];
        let v = verdict(&samples, 40.0).expect("a verdict");
        assert_eq!((v.from_seconds, v.to_seconds), (10.0, 40.0));
        assert!((v.growth_percent - 20.0).abs() < 1e-9);
        assert!((v.bytes_per_minute - (20 << 20) as f64 * 2.0).abs() < 1e-6);
        assert!((v.bytes_per_event - (20 << 20) as f64 / 3000.0).abs() < 1e-6);
        assert!(!v.flat);
        let flat = [sample(0.0, 0, 90), sample(10.0, 10, 100), sample(40.0, 10, 104)];
        assert!(verdict(&flat, 40.0).expect("a verdict").flat);
        assert_eq!(verdict(&[sample(0.0, 0, 90), sample(10.0, 10, 100)], 10.0), None);
    }

    #[test]
    fn plan_times_events_by_their_batch() {
        let start = Instant::now();
        let plan = Plan::new(20_000, Duration::from_secs(2), start).expect("a plan");
        assert_eq!((plan.per_batch, plan.batches), (20, 2000));
        assert_eq!(plan.due_of(39), Some(start + Duration::from_millis(1)));
        assert_eq!(plan.due_of(40_000), None);
        let slow = Plan::new(500, Duration::from_secs(1), start).expect("a plan");
        assert_eq!((slow.tick, slow.per_batch, slow.batches), (Duration::from_millis(100), 50, 10));
    }

    #[test]
    fn csv_has_a_line_per_row() {
        let report = SoakReport {
            settings: SoakSettings {
                duration_seconds: 10.0,
                rate: 1,
                subscribers: 1,
                interval_seconds: 10.0,
                customers: 1,
                workers: 1,
                checkpoint_bytes: 1,
                cpus: 1,
            },
            warm_up_seconds: 0.0,
            samples: vec![Sample { p99_ms: Some(1.5), ..sample(10.0, 7, 1) }],
            verdict: None,
        };
        let csv = report.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "10.000,false,7,0,0,0,,1.500,,1048576,0,0,0.00");
    }
}
