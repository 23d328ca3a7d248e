//! Event-to-delta latency through the live service: `stepstone serve` runs as a child process on
//! loopback, one WebSocket subscriber listens to every delta, and events are posted at a fixed
//! rate; each event is of a customer of its own, so it produces exactly one journey line, and
//! its latency runs from when its batch was due to be posted until its line reaches the
//! subscriber.
//!
//! The load is open: batches are due every millisecond (or every tenth of a second for rates
//! below 10k/s), posted on their own tasks whatever the answers, so a slow answer queues the
//! next batches instead of hiding them. Everything runs on 127.0.0.1, for a bounded time.
//!
//! The service, the request bodies, the warm-up of returning customers and the reading of delta
//! lines are shared with the soak ([`super::soak`]).

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// How long each rate is offered.
const PHASE: Duration = Duration::from_secs(5);
/// How long after the last batch the subscriber keeps listening for late lines.
const DRAIN: Duration = Duration::from_secs(5);
/// The first event time of the offered load (ms since the epoch): 2026-01-01.
const BASE_MS: i64 = 1_767_225_600_000;
/// Events per request while returning customers get their first event.
const WARM_UP_BATCH: u64 = 1000;
/// How long the returning customers' first events may take to show.
const WARM_UP_LIMIT: Duration = Duration::from_secs(60);

/// Whose events are offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Customers {
    /// Every event is of a customer of its own: the service's state grows all the time.
    New,
    /// Events go round a fixed pool of this many customers, each of which has had one event
    /// before the timed phase: the state stops growing.
    Returning(u64),
}

impl Customers {
    /// How reports name the scenario: `new` or the pool size.
    pub fn label(self) -> String {
        match self {
            Customers::New => "new".to_owned(),
            Customers::Returning(pool) => format!("{pool} returning"),
        }
    }
}

/// The latencies of one offered rate.
pub struct LiveRun {
    /// Events offered per second.
    pub rate: u64,
    /// Whose events they were.
    pub customers: Customers,
    /// Events posted.
    pub sent: u64,
    /// Their delta lines received within the drain time, latencies in ms, ascending.
    pub latencies_ms: Vec<f64>,
    /// Requests that were not answered 200.
    pub refused: u64,
    /// The served log's fsync policy, or `off`.
    pub log: String,
}

/// Measures each of `rates` against a fresh `exe serve` with `workers` workers whose files go
/// below `scratch`, once per durable-log policy of `logs` (`off`: without the log): with a new
/// customer per event, then (unless `returning` is 0) with events going round `returning`
/// customers.
pub fn measure(
    exe: &Path,
    rates: &[u64],
    returning: u64,
    logs: &[String],
    workers: usize,
    scratch: &Path,
) -> anyhow::Result<Vec<LiveRun>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the bench's runtime")?;
    let scenarios = [Some(Customers::New), (returning > 0).then_some(Customers::Returning(returning))];
    let mut runs = Vec::new();
    for customers in scenarios.into_iter().flatten() {
        for &rate in rates {
            for log in logs {
                let dir = scratch.join(format!("live-{rate}-{}", runs.len()));
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                let run = runtime.block_on(measure_rate(exe, rate, customers, log, workers, &dir))?;
                eprintln!(
                    "live  {rate:>7} events/s  {}  log {log}  sent {}  received {}  refused {}",
                    customers.label(),
                    run.sent,
                    run.latencies_ms.len(),
                    run.refused
                );
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

/// The pipeline every live measurement serves, without its `[log]` section.
const CONFIG: &str = "[journeys]\nconversion = \"kind=purchase\"\n[output]\ndir = \"out\"\n[server]\ningest-queue = 4096\n\
                      [[segments]]\nname = \"buyers\"\nrule = \"converted\"\n";

/// The running service, stopped (SIGTERM, then waited for) on drop.
pub(super) struct Service(Child);

impl Service {
    /// The child's process id.
    pub(super) fn id(&self) -> u32 {
        self.0.id()
    }

    /// How the service ended, if it has.
    pub(super) fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.0.try_wait().context("checking on the service")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Starts `exe serve` in `dir` with the live pipeline followed by `extra` config text (such as
/// a `[log]` section; its output directory is `dir/out`) and returns it with its HTTP address.
pub(super) fn start(exe: &Path, workers: usize, dir: &Path, extra: &str) -> anyhow::Result<(Service, String)> {
    let config = dir.join("live.toml");
    std::fs::write(&config, format!("{CONFIG}{extra}")).with_context(|| format!("writing {}", config.display()))?;
    let mut child = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--flight-listen", "127.0.0.1:0", "--workers", &workers.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} serve", exe.display()))?;
    let stderr = child.stderr.take().context("the service's stderr")?;
    let service = Service(child);
    let mut lines = BufReader::new(stderr).lines();
    // Its first line says where it listens, unless warnings come first.
    let line = lines
        .by_ref()
        .find(|line| line.as_ref().map_or(true, |line| line.contains("http://")))
        .context("the service ended before it listened")?
        .context("reading its stderr")?;
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no address in {line:?}"))?
        .to_owned();
    // Keep draining its stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((service, address))
}

/// One rate against a fresh service.
async fn measure_rate(
    exe: &Path,
    rate: u64,
    customers: Customers,
    log: &str,
    workers: usize,
    dir: &Path,
) -> anyhow::Result<LiveRun> {
    ensure!(rate > 0, "rates must be positive");
    let section = match log {
        "off" => "[log]\nenabled = false\n".to_owned(),
        policy => format!("[log]\nfsync = {policy:?}\n"),
    };
    let (service, address) = start(exe, workers, dir, &section)?;
    let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/v1/subscribe"))
        .await
        .context("connecting the subscriber")?;
    let (_, mut socket) = socket.split();
    let client = reqwest::Client::new();
    let url = format!("http://{address}/v1/events");

    // Returning customers first get one event each, untimed, so that every timed event is of a
    // known journey.
    let pool = match customers {
        Customers::New => 0,
        Customers::Returning(pool) => pool,
    };
    if pool > 0 {
        post_first_events(&client, &url, pool).await?;
        await_entered(&mut socket, pool).await?;
    }

    let tick = if rate >= 10_000 { Duration::from_millis(1) } else { Duration::from_millis(100) };
    let per_batch = (rate as f64 * tick.as_secs_f64()).round().max(1.0) as u64;
    let batches = (PHASE.as_secs_f64() / tick.as_secs_f64()) as u64;
    let sent = per_batch * batches;
    let due: Arc<Vec<Instant>> = {
        let start = Instant::now() + Duration::from_millis(200);
        Arc::new((0..batches).map(|b| start + tick * b as u32).collect())
    };

    let refused = Arc::new(Mutex::new(0u64));
    let sender = {
        let (due, refused) = (due.clone(), refused.clone());
        tokio::spawn(async move {
            for (b, at) in due.iter().enumerate() {
                tokio::time::sleep_until((*at).into()).await;
                let first = pool + b as u64 * per_batch;
                let body = body(first..first + per_batch, customers);
                let (client, url, refused) = (client.clone(), url.clone(), refused.clone());
                tokio::spawn(async move {
                    let ok = client.post(&url).body(body).send().await.is_ok_and(|r| r.status().is_success());
                    if !ok {
                        *refused.lock().expect("refused lock") += 1;
                    }
                });
            }
        })
    };

    let mut latencies_ms = Vec::with_capacity(sent as usize);
    let mut shown = Shown::new(pool);
    let deadline = *due.last().context("no batches")? + DRAIN;
    while (latencies_ms.len() as u64) < sent {
        let message = match tokio::time::timeout_at(deadline.into(), socket.next()).await {
            Ok(Some(message)) => message.context("reading the subscription")?,
            Ok(None) => bail!("the subscription ended early"),
            Err(_) => break,
        };
        let Message::Text(text) = message else { continue };
        let received = Instant::now();
        let Some((customer, events)) = journey_entered(&text) else { continue };
        // The events this line reflects for the first time: all of a new customer's one event,
        // or a returning customer's events since its last line (several when they fell into one
        // logical time).
        let indexes = match customers {
            Customers::New if events == 1 => customer..customer + 1,
            Customers::New => continue,
            Customers::Returning(_) => {
                let Some(indexes) = shown.fresh(customer, events) else { continue };
                indexes
            }
        };
        for index in indexes {
            let number = timed_number(index, customer, pool);
            if let Some(at) = due.get((number / per_batch) as usize) {
                latencies_ms.push(received.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
    }
    sender.await.context("the sender task")?;
    drop(service);
    latencies_ms.sort_by(f64::total_cmp);
    let refused = *refused.lock().expect("refused lock");
    Ok(LiveRun { rate, customers, sent, latencies_ms, refused, log: log.to_owned() })
}

/// An NDJSON body of the events numbered `numbers`: event `i` is of customer `live-i` (new
/// customers) or `live-{i % pool}` (returning ones), at time [`BASE_MS`]` + i`.
pub(super) fn body(numbers: Range<u64>, customers: Customers) -> String {
    numbers
        .map(|i| {
            let customer = match customers {
                Customers::New => i,
                Customers::Returning(pool) => i % pool,
            };
            format!(
                "{{\"customer\":\"live-{customer}\",\"time\":{},\"contact_point\":\"home\",\"channel\":\"web\"}}\n",
                BASE_MS + i as i64
            )
        })
        .collect()
}

/// Posts one event (numbered `0..pool`) for each of the `pool` returning customers, the
/// warm-up before a timed phase.
pub(super) async fn post_first_events(client: &reqwest::Client, url: &str, pool: u64) -> anyhow::Result<()> {
    for first in (0..pool).step_by(WARM_UP_BATCH as usize) {
        let numbers = first..(first + WARM_UP_BATCH).min(pool);
        let response = client.post(url).body(body(numbers, Customers::New)).send().await.context("warming up")?;
        ensure!(response.status().is_success(), "warming up: the service answered {}", response.status());
    }
    Ok(())
}

/// Waits until `socket` has seen the journeys of all `pool` returning customers enter.
pub(super) async fn await_entered(
    socket: &mut (impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    pool: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WARM_UP_LIMIT;
    let mut entered = 0;
    while entered < pool {
        let message = match tokio::time::timeout_at(deadline.into(), socket.next()).await {
            Ok(Some(message)) => message.context("reading the subscription")?,
            Ok(None) => bail!("the subscription ended while warming up"),
            Err(_) => bail!("only {entered} of {pool} returning customers entered within {WARM_UP_LIMIT:?}"),
        };
        if let Message::Text(text) = message
            && journey_entered(&text).is_some_and(|(_, events)| events == 1)
        {
            entered += 1;
        }
    }
    Ok(())
}

/// Per returning customer, how many of its events a subscriber has seen reflected: one each
/// after the warm-up.
pub(super) struct Shown(Vec<u64>);

impl Shown {
    /// The counts of a pool of `pool` customers that have had their first event.
    pub(super) fn new(pool: u64) -> Shown {
        Shown(vec![1; pool as usize])
    }

    /// The indexes (0-based, per customer) of the events a journey line of `customer` with
    /// `events` events reflects for the first time: its events since its last line (several when
    /// they fell into one logical time). `None` for a customer outside the pool.
    pub(super) fn fresh(&mut self, customer: u64, events: u64) -> Option<Range<u64>> {
        let count = self.0.get_mut(customer as usize)?;
        let first = *count;
        *count = (*count).max(events);
        Some(first..*count)
    }
}

/// The number, counted from the first timed event, of `customer`'s event of index `index`
/// (0-based) with a pool of `pool` returning customers, or of a new customer's only event (`pool`
/// 0): the customer's `k`-th event (1-based) is event number `(k - 1) * pool + customer`, and
/// the timed events start after the `pool` warm-up events.
pub(super) fn timed_number(index: u64, customer: u64, pool: u64) -> u64 {
    if pool == 0 { index } else { index * pool + customer - pool }
}

/// The fields of a delta line the bench reads; the others are skipped without being stored.
#[derive(serde::Deserialize)]
pub(super) struct Line<'a> {
    /// `journey`, `membership`, …, or a control message: `snapshot`, `progress`, `lagged`,
    /// `closing`.
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    diff: Option<i64>,
    events: Option<u64>,
    customer: Option<&'a str>,
}

impl<'a> Line<'a> {
    /// The line in `text`, if it is one.
    pub(super) fn parse(text: &'a str) -> Option<Line<'a>> {
        serde_json::from_str(text).ok()
    }

    /// The customer number `i` and event count of a journey line that brings a row of customer
    /// `live-i` in (`diff` 1).
    pub(super) fn entered(&self) -> Option<(u64, u64)> {
        if self.kind != "journey" || self.diff != Some(1) {
            return None;
        }
        Some((self.customer?.strip_prefix("live-")?.parse().ok()?, self.events?))
    }
}

/// [`Line::entered`] of the line in `text`.
fn journey_entered(text: &str) -> Option<(u64, u64)> {
    Line::parse(text)?.entered()
}
