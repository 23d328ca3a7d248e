//! Incremental update cost: an [`Engine`] is loaded with the whole workload as one logical time,
//! then fed batches of further events at a fixed rate, and each batch's latency is measured from
//! its scheduled send time to the moment the collector has applied its logical time.
//!
//! The further events come from a continuation of the workload (another seed, starting after
//! it, over the same customers); a share of them is moved to random times inside the loaded
//! workload, so they arrive out of order and touch old parts of the journeys.
//!
//! After the phases, one customer of 250,000 events is loaded as a logical time of its own, and
//! single events are added to it, half of them inside its history (out of order): the cost of an
//! update to a heavy journey.
//!
//! The load is open: batches are due at fixed times whatever the engine does, and a batch's
//! latency counts from when it was due, so queueing behind a slow batch is measured rather than
//! hidden. One thread submits each batch when it is due (submitting blocks while the workers are
//! two logical times behind, which then counts in the latency) and, between submissions, waits
//! on the engine's [`Frontier`](stepstone::engine::Frontier) to record when each batch's time is
//! applied.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stepstone_dataflows::event::{Clock, END_OF_INPUT, Event, JourneyId, Params};
use stepstone_dataflows::segments::BoundSegment;
use stepstone_dataflows::symbols::{Interner, Symbols};

use super::BenchOptions;
use super::bulk::peak_rss_bytes;
use super::workload::Workload;
use stepstone::engine::{Collector, Engine};
use stepstone::sink::{SnapshotWriter, Tables};
use stepstone::source::{self, DecodeOptions, to_event};

/// The batch sizes, in the order they are measured, with the interval between their batches.
const PHASES: [(usize, Duration); 3] =
    [(1, Duration::from_millis(20)), (100, Duration::from_millis(20)), (10_000, Duration::from_millis(200))];

/// Share of the further events moved to a random time inside the loaded workload.
const LATE_SHARE: f64 = 0.05;

/// Events of the one heavy customer loaded after the phases.
const HEAVY_EVENTS: usize = 250_000;
/// Time between the heavy customer's events (one session: less than the session gap).
const HEAVY_SPACING_MS: i64 = 60_000;
/// Single events added to the heavy customer, one every [`HEAVY_INTERVAL`]; every other one at
/// a random time inside its history.
const HEAVY_BATCHES: usize = 200;
/// Time between the heavy customer's single-event batches.
const HEAVY_INTERVAL: Duration = Duration::from_millis(10);

/// Sending stops this long after a phase's last batch was due (then the phase reports fewer
/// batches), so that an engine that cannot keep up still ends the bench in bounded time.
const GRACE: Duration = Duration::from_secs(10);

/// How long before a batch is due the submitting thread stops sleeping and spins: longer than
/// its usual late wake-up from a sleep on these machines, so that batches are sent on time.
const SPIN: Duration = Duration::from_micros(300);

/// The incremental measurement on one worker count.
pub struct IncrementalRun {
    /// Timely workers.
    pub workers: usize,
    /// Events loaded as the first logical time.
    pub loaded_events: u64,
    /// Seconds from submitting the load to its logical time being applied.
    pub load_seconds: f64,
    /// One per batch size.
    pub phases: Vec<Phase>,
    /// The bench process's peak RSS after this run, in bytes: a high-water mark of the whole
    /// process, so it includes the earlier runs and the events held for feeding.
    pub process_peak_rss_bytes: u64,
}

/// The batches of one size.
pub struct Phase {
    /// What the batches update: `workload` for the generated continuation, or the heavy customer.
    pub target: &'static str,
    /// Events per batch.
    pub size: usize,
    /// Time between the due times of consecutive batches.
    pub interval: Duration,
    /// Batches planned.
    pub planned: usize,
    /// Latency of every batch sent, in ms, ascending.
    pub latencies_ms: Vec<f64>,
    /// How late the sender submitted each batch after its due time, in ms, ascending: the
    /// sender's own wake-up lateness, part of every latency.
    pub sender_late_ms: Vec<f64>,
}

/// Runs the incremental measurement once per worker count of `options`, with `options.batches`
/// batches per size; snapshots go below `scratch`.
pub fn measure(options: &BenchOptions, workload: &Workload, scratch: &Path) -> anyhow::Result<Vec<IncrementalRun>> {
    let pipeline = super::pipeline(workload.primary(), scratch, 1)?;
    let symbols = Arc::new(Symbols::new());
    let segments: Vec<BoundSegment> = pipeline.segments.iter().map(|s| s.bind(&symbols)).collect();
    let base = read_events(workload.primary(), &pipeline.decode, &symbols, 0)?;
    let first = base.iter().map(|e| e.time).min().context("the workload has no events")?;
    let last = base.iter().map(|e| e.time).max().context("the workload has no events")?;

    let wanted: usize = PHASES.iter().map(|(size, _)| size * options.batches).sum();
    let continuation = workload.continuation(wanted as u64, last)?;
    let mut updates = read_events(&continuation, &pipeline.decode, &symbols, base.len() as u64)?;
    ensure!(updates.len() == wanted, "{} holds {} events, not {wanted}", continuation.display(), updates.len());
    let mut rng = StdRng::seed_from_u64(options.seed);
    for event in &mut updates {
        if rng.random_bool(LATE_SHARE) {
            event.time = rng.random_range(first..=last);
        }
    }

    let end_ms = updates.iter().map(|e| e.time).max().unwrap_or(last);
    let prepared =
        Prepared { params: pipeline.params, segments, symbols, base, updates, batches: options.batches, end_ms };
    let mut runs = Vec::new();
    for &workers in &options.workers {
        let dir = scratch.join(format!("incremental-w{workers}"));
        let run = prepared.run(workers, &dir)?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        runs.push(run);
    }
    Ok(runs)
}

/// What every incremental run feeds: decoded, numbered and interned once.
struct Prepared {
    /// Session rule and path length.
    params: Params,
    /// The segments, bound to `symbols`.
    segments: Vec<BoundSegment>,
    /// Where the events' strings are interned.
    symbols: Arc<Symbols>,
    /// The workload, loaded as the first logical time.
    base: Vec<Event>,
    /// The further events, fed in the phases of [`PHASES`] in order.
    updates: Vec<Event>,
    /// Batches per phase.
    batches: usize,
    /// The time of the last further event (ms since the epoch).
    end_ms: i64,
}

impl Prepared {
    /// Loads the workload into a fresh engine on `workers` workers writing snapshots into `dir`,
    /// then feeds the further events phase by phase.
    fn run(&self, workers: usize, dir: &Path) -> anyhow::Result<IncrementalRun> {
        let tables = Tables::new(self.segments.iter().map(|s| s.name).collect());
        let snapshots = SnapshotWriter::new(dir, false, self.symbols.clone());
        let collector = Collector::new(workers, tables, snapshots, None, None);
        let mut engine = Engine::start(self.params, self.segments.clone(), None, workers, collector)?;

        let load = self.base.clone();
        let started = Instant::now();
        let time = engine.submit(load, Clock::watermark(END_OF_INPUT))?;
        engine.wait_for(time)?;
        let load_seconds = started.elapsed().as_secs_f64();
        eprintln!("incremental w={workers:<3} load {} events  {load_seconds:>8.3} s", self.base.len());

        let mut rest = &self.updates[..];
        let mut phases = Vec::new();
        for (size, interval) in PHASES {
            let (mine, later) = rest.split_at(size * self.batches);
            rest = later;
            let phase = open_loop(&mut engine, mine.chunks(size).map(<[Event]>::to_vec).collect(), size, interval)?;
            eprintln!(
                "incremental w={workers:<3} {} batches of {size:>6}  max {:>8.1} ms",
                phase.latencies_ms.len(),
                phase.latencies_ms.last().copied().unwrap_or(0.0)
            );
            phases.push(phase);
        }

        let first_seq = (self.base.len() + self.updates.len()) as u64;
        let (heavy, singles) = heavy_customer(&self.symbols, first_seq, self.end_ms);
        let time = engine.submit(heavy, Clock::watermark(END_OF_INPUT))?;
        engine.wait_for(time)?;
        let mut phase = open_loop(&mut engine, singles.into_iter().map(|e| vec![e]).collect(), 1, HEAVY_INTERVAL)?;
        phase.target = "heavy customer";
        eprintln!(
            "incremental w={workers:<3} {} single events on a customer of {HEAVY_EVENTS} events  max {:>8.1} ms",
            phase.latencies_ms.len(),
            phase.latencies_ms.last().copied().unwrap_or(0.0)
        );
        phases.push(phase);
        engine.finish()?;
        Ok(IncrementalRun {
            workers,
            loaded_events: self.base.len() as u64,
            load_seconds,
            phases,
            process_peak_rss_bytes: peak_rss_bytes()?,
        })
    }
}

/// Submits `batches` (of `size` events) one every `interval` and records each one's latency.
///
/// One thread does both, so that no other thread of the harness wakes up at a submission and
/// competes with the workers for the cores: between submissions it waits on the engine's
/// frontier, woken as each logical time is applied, and notes the latency of the batches applied.
/// The last [`SPIN`] before a batch is due it spins instead of sleeping, so that a late wake-up
/// of the harness is not counted as the engine's latency.
fn open_loop(engine: &mut Engine, batches: Vec<Vec<Event>>, size: usize, interval: Duration) -> anyhow::Result<Phase> {
    let planned = batches.len();
    let start = Instant::now() + interval;
    let stop_sending = start + interval * u32::try_from(planned).unwrap_or(u32::MAX) + GRACE;
    let frontier = engine.frontier();
    let mut in_flight = InFlight::default();
    let mut sender_late_ms = Vec::with_capacity(planned);
    for (n, batch) in batches.into_iter().enumerate() {
        let due = start + interval * u32::try_from(n).unwrap_or(u32::MAX);
        let wake = due.checked_sub(SPIN).unwrap_or(due);
        while Instant::now() < wake {
            match in_flight.first() {
                Some(time) => in_flight.applied(frontier.wait_until(time, wake)),
                None => std::thread::sleep(wake.saturating_duration_since(Instant::now())),
            }
        }
        while Instant::now() < due {
            in_flight.applied(frontier.applied());
            std::hint::spin_loop();
        }
        let now = Instant::now();
        if now >= stop_sending {
            break;
        }
        sender_late_ms.push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
        let time = engine.submit(batch, Clock::watermark(END_OF_INPUT))?;
        in_flight.sent(time, due);
    }
    while let Some(time) = in_flight.first() {
        if !frontier.wait_for(time) {
            break;
        }
        in_flight.applied(frontier.applied());
    }
    let mut latencies_ms = in_flight.latencies_ms;
    latencies_ms.sort_by(f64::total_cmp);
    sender_late_ms.sort_by(f64::total_cmp);
    Ok(Phase { target: "workload", size, interval, planned, latencies_ms, sender_late_ms })
}

/// The batches submitted and not yet seen applied, and the latencies of those that were.
#[derive(Default)]
struct InFlight {
    /// `(logical time, when it was due)`, oldest first.
    waiting: VecDeque<(u64, Instant)>,
    /// Latency of each batch seen applied, in milliseconds.
    latencies_ms: Vec<f64>,
}

impl InFlight {
    /// The oldest logical time not yet seen applied.
    fn first(&self) -> Option<u64> {
        self.waiting.front().map(|(time, _)| *time)
    }

    /// A batch due at `due` was submitted as logical time `time`.
    fn sent(&mut self, time: u64, due: Instant) {
        self.waiting.push_back((time, due));
    }

    /// Every time up to `applied` is applied now: their latencies end here.
    fn applied(&mut self, applied: Option<u64>) {
        let now = Instant::now();
        while let Some(&(time, due)) = self.waiting.front()
            && applied.is_some_and(|applied| applied >= time)
        {
            self.latencies_ms.push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
            self.waiting.pop_front();
        }
    }
}

/// One customer of [`HEAVY_EVENTS`] events a minute apart, starting a day after `after_ms`,
/// numbered from `first_seq`; and [`HEAVY_BATCHES`] further single events of the same customer:
/// alternately after its last event and at a random time inside its history.
fn heavy_customer(symbols: &Symbols, first_seq: u64, after_ms: i64) -> (Vec<Event>, Vec<Event>) {
    let customer = symbols.intern("bench-heavy-customer");
    let pages: Vec<_> = ["home", "search", "product", "cart", "help"].iter().map(|p| symbols.intern(p)).collect();
    let web = symbols.intern("web");
    let start = after_ms + 86_400_000;
    let event = |i: usize, time: i64| Event {
        journey: JourneyId::customer(customer),
        time,
        seq: first_seq + i as u64,
        contact_point: pages[i % pages.len()],
        channel: Some(web),
        session: None,
        converting: i % 1000 == 999,
        value: 0,
    };
    let load: Vec<Event> = (0..HEAVY_EVENTS).map(|i| event(i, start + i as i64 * HEAVY_SPACING_MS)).collect();
    let end = start + HEAVY_EVENTS as i64 * HEAVY_SPACING_MS;
    let mut rng = StdRng::seed_from_u64(first_seq);
    let singles = (0..HEAVY_BATCHES)
        .map(|n| {
            let time = if n % 2 == 0 { end + n as i64 * HEAVY_SPACING_MS } else { rng.random_range(start..end) };
            event(HEAVY_EVENTS + n, time)
        })
        .collect();
    (load, singles)
}

/// The events of `path`, numbered in file order from `first_seq`, interned in `symbols`;
/// rejected records are skipped.
fn read_events(
    path: &Path,
    options: &DecodeOptions,
    symbols: &Arc<Symbols>,
    first_seq: u64,
) -> anyhow::Result<Vec<Event>> {
    let name = path.to_str().with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut source = source::open(name, None, options).with_context(|| format!("opening {name}"))?;
    let mut interner = Interner::new(symbols.clone());
    let mut events = Vec::new();
    // Sessions are cut by gap, so session ids are not kept.
    while let Some(item) =
        source.next_with(|record| Ok(to_event(&record, first_seq + events.len() as u64, &mut interner, false)))
    {
        events.extend(item.ok());
    }
    Ok(events)
}
