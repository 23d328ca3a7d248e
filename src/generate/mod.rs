//! `stepstone generate`: a realistic, deterministic synthetic interaction stream.
//!
//! Sessions start as a (day-cycled) Poisson process; each picks a Zipf-distributed customer who is
//! not in a session and whose last session ended hours to days ago, then walks the seeded Markov
//! chain of [`model`] with dwell times of 5 s – 10 min. Active sessions are merged by time through
//! a heap, so the stream is time-ordered but for the `--out-of-order` share, which a bounded
//! reorder buffer delays by 3 – 300 records. Everything streams: memory is a few bytes per
//! customer plus the active sessions.

mod model;
mod write;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;

use anyhow::{Context, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Zipf};

use model::{K_PURCHASE, Model, Profile, Session, mix};
use write::{Malformed, Record, Writer};

/// Options of `stepstone generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOptions {
    /// Number of (well-formed) events; malformed records come on top.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Number of distinct customers (Zipf-distributed activity).
    #[arg(long, default_value_t = 10_000)]
    pub customers: u64,
    /// Random seed; the same options give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file; the format follows the extension: .jsonl, .csv or .arrow (Arrow IPC file),
    /// optionally compressed with .gz or .zst (not .arrow). "-" writes JSONL to stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of events that arrive out of order (delayed by 3 – 300 records).
    #[arg(long = "out-of-order", default_value_t = 0.05)]
    pub out_of_order: f64,
    /// Share of malformed records (at least one from 1000 events on, unless 0).
    #[arg(long, default_value_t = 0.001)]
    pub malformed: f64,
    /// Time of the first session, RFC 3339.
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
}

/// What `generate` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Well-formed events written.
    pub events: u64,
    /// Malformed records written (on top of `events`).
    pub malformed: u64,
    /// Distinct customers with at least one event.
    pub customers: u64,
    /// Bytes written (after compression).
    pub bytes: u64,
}

const SECOND: f64 = 1000.0;
const MINUTE: f64 = 60.0 * SECOND;
const HOUR: f64 = 60.0 * MINUTE;
const DAY: f64 = 24.0 * HOUR;
/// Longest session, in events.
const MAX_STEPS: u16 = 60;
/// Approximate mean session length in events, to pace session starts.
const MEAN_SESSION: f64 = 5.0;
/// Relative session-start rate per UTC hour of the day.
const DAY_CYCLE: [f64; 24] = [
    0.25, 0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.9, 0.85, 0.85, 0.9, 0.95, 1.0, 1.0, 1.0,
    0.9, 0.7, 0.45,
];

/// A session waiting for its next event, ordered by (time, sequence number).
struct Pending {
    time: i64,
    seq: u64,
    session: Session,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// Writes the synthetic stream described by `options`.
pub fn generate(options: &GenerateOptions) -> anyhow::Result<GenerateSummary> {
    ensure!(options.customers >= 1, "--customers must be at least 1");
    ensure!(options.customers <= u64::from(u32::MAX), "--customers must fit in 32 bits");
    ensure!((0.0..1.0).contains(&options.out_of_order), "--out-of-order must be in [0, 1)");
    ensure!((0.0..1.0).contains(&options.malformed), "--malformed must be in [0, 1)");
    let start = chrono::DateTime::parse_from_rfc3339(&options.start)
        .with_context(|| format!("--start {:?} is not RFC 3339", options.start))?
        .timestamp_millis();
    let mut writer = Writer::open(&options.out)?;

    let n = options.events;
    let customers = options.customers;
    let mut malformed_left = (n as f64 * options.malformed).round() as u64;
    if malformed_left == 0 && options.malformed > 0.0 && n >= 1000 {
        malformed_left = 1;
    }
    let malformed = malformed_left;
    let malformations = Malformed::choices(writer.is_arrow());

    let mut rng = StdRng::seed_from_u64(options.seed);
    let model = Model::new();
    let zipf = Zipf::new(customers as f64, 1.1)?;
    let dwell = LogNormal::new((45.0 * SECOND).ln(), 0.9)?;
    let gap = LogNormal::new((10.0 * HOUR).ln(), 1.2)?;
    let value = LogNormal::new(0.0, 0.6)?;
    // Pace session starts so that an average customer has a session every ~3 days.
    let sessions = (n as f64 / MEAN_SESSION).max(1.0);
    let span = (sessions / customers as f64 * 3.0 * DAY).max(DAY);
    let mean_cycle = DAY_CYCLE.iter().sum::<f64>() / 24.0;
    let interarrival = Exp::new(sessions / span / mean_cycle)?;
    // Zipf rank -> customer index, a seeded bijection so the busiest customer is not c000000.
    let mut stride = (mix(options.seed) % customers) | 1;
    while gcd(stride, customers) != 1 {
        stride += 1;
    }
    let offset = mix(options.seed ^ 1) % customers;
    let rank_to_customer =
        |rank: u64| ((u128::from(rank - 1) * u128::from(stride) + u128::from(offset)) % u128::from(customers)) as u32;

    // Per customer: when the next session may start (i64::MAX while one is active), and whether
    // the customer has appeared.
    let mut free_at = vec![i64::MIN; customers as usize];
    let mut seen = vec![false; customers as usize];
    let mut distinct = 0u64;

    let mut active: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut delayed: BinaryHeap<Reverse<(u64, u64, RecordKey)>> = BinaryHeap::new();
    let mut next_arrival = start as f64;
    let mut seq = 0u64;
    let mut produced = 0u64;
    let mut written = 0u64;

    while produced < n {
        let next_event = active.peek().map_or(i64::MAX, |p| p.0.time);
        if (next_arrival as i64) < next_event {
            let t = next_arrival as i64;
            next_arrival += interarrival.sample(&mut rng);
            let hour = t.div_euclid(HOUR as i64).rem_euclid(24) as usize;
            if !rng.random_bool(DAY_CYCLE[hour]) {
                continue;
            }
            let candidate = (0..12).map(|attempt| {
                if attempt < 8 {
                    rank_to_customer(zipf.sample(&mut rng) as u64)
                } else {
                    rng.random_range(0..customers as u32)
                }
            });
            let mut chosen = None;
            for c in candidate {
                if free_at[c as usize] <= t {
                    chosen = Some(c);
                    break;
                }
            }
            // All candidates busy: this arrival is lost (only in very dense configurations).
            if let Some(c) = chosen {
                free_at[c as usize] = i64::MAX;
                let session = Session::start(&mut rng, c, Profile::new(options.seed, c));
                seq += 1;
                active.push(Reverse(Pending { time: t, seq, session }));
            }
            continue;
        }
        let Reverse(Pending { time, session: mut s, .. }) = active.pop().expect("a pending session");
        let c = s.customer as usize;
        if !seen[c] {
            seen[c] = true;
            distinct += 1;
        }
        let (channel, device) = s.channel_device();
        let kind = s.kind(&mut rng);
        let value = (kind == K_PURCHASE).then(|| {
            let median = [90.0, 220.0, 70.0, 35.0][s.intent as usize] * Profile::new(options.seed, s.customer).spend();
            ((median * value.sample(&mut rng)).clamp(5.0, 500.0) * 100.0).round() as u32
        });
        let record = Record { customer: s.customer, time, channel, cp: s.cp, kind, intent: s.intent, device, value };
        produced += 1;

        // Malformed records: exactly `malformed` of them, spread over the event slots.
        if malformed_left > 0 && rng.random_range(0..n - produced + 1) < malformed_left {
            malformed_left -= 1;
            let how = malformations[rng.random_range(0..malformations.len())];
            writer.write(&record, Some(how))?;
        }
        if rng.random_bool(options.out_of_order) {
            let delay = (rng.random_range(3f64.ln()..300f64.ln())).exp().round() as u64;
            delayed.push(Reverse((written + delay, produced, RecordKey(record))));
        } else {
            writer.write(&record, None)?;
            written += 1;
        }
        while let Some(Reverse((release, ..))) = delayed.peek()
            && *release <= written
        {
            let Reverse((_, _, RecordKey(r))) = delayed.pop().expect("peeked");
            writer.write(&r, None)?;
            written += 1;
        }

        s.steps += 1;
        let next = if s.steps < MAX_STEPS { model.step(&mut rng, s.intent, s.cp) } else { None };
        match next {
            Some(cp) => {
                s.cp = cp;
                let wait = if rng.random_bool(0.015) {
                    0.0
                } else {
                    dwell.sample(&mut rng).clamp(5.0 * SECOND, 10.0 * MINUTE)
                };
                seq += 1;
                active.push(Reverse(Pending { time: time + wait as i64, seq, session: s }));
            }
            None => {
                let pause = gap.sample(&mut rng).clamp(35.0 * MINUTE, 30.0 * DAY);
                free_at[c] = time + pause as i64;
            }
        }
    }
    while let Some(Reverse((_, _, RecordKey(r)))) = delayed.pop() {
        writer.write(&r, None)?;
    }
    let bytes = writer.finish()?;
    Ok(GenerateSummary { events: n, malformed, customers: distinct, bytes })
}

/// A [`Record`] in the reorder buffer; ordering is decided by the release slot and sequence
/// number in front of it, so all keys compare equal.
struct RecordKey(Record);

impl PartialEq for RecordKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for RecordKey {}
impl PartialOrd for RecordKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RecordKey {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
