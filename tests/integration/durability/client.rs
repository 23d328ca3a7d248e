//! The crash test's client: it posts each request with an idempotency key and retries it with
//! the same key until it is answered, across crashes, and tells what each attempt did; also
//! reading a life's recovered snapshot and log files.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use crate::common::server::Server;
use crate::common::subscriber::{Subscriber, replay};

use super::workload::*;
use super::*;

/// How one attempt at an operation ended.
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// The server answered: the status and the JSON answer.
    Answered(u16, Value),
    /// No connection could be made: the request reached no server.
    NotSent,
    /// The request went out (or may have), but the answer was lost: why.
    Lost(String),
}

/// One attempt at an operation.
#[derive(Clone, Debug)]
pub(super) struct Attempt {
    /// The life it was made in.
    pub(super) life: usize,
    /// When it ended.
    pub(super) at: Instant,
    pub(super) outcome: Outcome,
}

/// The sequential client of the crash test: it takes on one operation at a time and tries it
/// until it is answered, across lives of the server. Its state moves into the task that posts
/// during a life and comes back when the task ends.
pub(super) struct Client {
    pub(super) workload: Workload,
    /// The operations in the order taken on; all but possibly the last are acknowledged.
    pub(super) ops: Vec<Op>,
    /// How many of `ops` are acknowledged.
    pub(super) acked: usize,
    /// The attempts at each of `ops`.
    pub(super) attempts: Vec<Vec<Attempt>>,
    /// How many requests the last life posts in all (none before it).
    pub(super) total: Option<usize>,
    /// Requests taken on so far.
    pub(super) posts: usize,
    /// Whether the erasure was taken on.
    pub(super) erasing: bool,
    /// Whether the closing request was generated.
    pub(super) closed: bool,
}

impl Client {
    /// A client of a workload seeded with `seed`.
    pub(super) fn new(seed: u64) -> Client {
        Client {
            workload: Workload::new(seed),
            ops: Vec::new(),
            acked: 0,
            attempts: Vec::new(),
            total: None,
            posts: 0,
            erasing: false,
            closed: false,
        }
    }

    /// The requests generated so far.
    pub(super) fn requests(&self) -> &[Request] {
        &self.workload.requests
    }

    /// The operation to try next in life `life`, having had `answered` answers in it; `None`
    /// when the last life has nothing left.
    pub(super) fn next_op(&mut self, life: usize, answered: usize) -> Option<usize> {
        if self.acked < self.ops.len() {
            return Some(self.acked);
        }
        let erase_due = !self.erasing
            && (self.total.is_some()
                || (life >= ERASE_LIFE
                    && answered >= 2
                    && events_after(&self.ops, self.requests()).iter().any(|e| e.customer == ERASED)));
        let op = if erase_due {
            self.erasing = true;
            Op::Erase
        } else {
            let next = self.posts;
            self.posts += 1;
            match self.total {
                Some(total) if next >= total && self.closed => {
                    self.posts -= 1;
                    return None;
                }
                Some(total) if next >= total => {
                    self.closed = true;
                    Op::Post(self.workload.closer())
                }
                _ => {
                    if next == self.workload.requests.len() {
                        self.workload.generate(1..=6);
                    }
                    Op::Post(next)
                }
            }
        };
        self.ops.push(op);
        self.attempts.push(Vec::new());
        Some(self.ops.len() - 1)
    }

    /// Tries operations in life `life` against the server at `base` until one attempt gets no
    /// answer (the server was killed) or, in the last life, nothing is left.
    pub(super) async fn run(mut self, http: reqwest::Client, base: String, life: usize) -> Client {
        let mut answered = 0;
        while let Some(index) = self.next_op(life, answered) {
            let op = self.ops[index];
            let outcome = self.attempt(&http, &base, op).await;
            self.attempts[index].push(Attempt { life, at: Instant::now(), outcome: outcome.clone() });
            match outcome {
                Outcome::Answered(200, _) | Outcome::Answered(404, _) if op == Op::Erase => {}
                Outcome::Answered(200, _) => {}
                Outcome::Answered(429 | 503, _) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Outcome::Answered(status, answer) => panic!("{op:?} in life {life}: {status} {answer}"),
                Outcome::NotSent | Outcome::Lost(_) => return self,
            }
            self.acked += 1;
            answered += 1;
        }
        self
    }

    /// One attempt at `op`.
    pub(super) async fn attempt(&self, http: &reqwest::Client, base: &str, op: Op) -> Outcome {
        let request = match op {
            Op::Post(i) => {
                let request = &self.requests()[i];
                http.post(format!("{base}/v1/events")).header("idempotency-key", &request.key).body(request.text())
            }
            Op::Erase => {
                http.delete(format!("{base}/v1/customers/{ERASED}")).header("stepstone-actor", "durability test")
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return Outcome::NotSent,
            Err(error) => return Outcome::Lost(format!("{error:?}")),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(text) => Outcome::Answered(
                status,
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op:?}: a JSON answer ({e}): {text:?}")),
            ),
            Err(error) => Outcome::Lost(format!("{error:?}")),
        }
    }
}

/// Whether the operation a kill left unanswered was applied, as the next start shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Applied {
    Yes,
    No,
    /// It changes no view (only events of the erased customer), so the views cannot tell.
    Unknown,
}

/// Waits (bounded) for a new subscription's snapshot (its rows and their progress message)
/// and returns its replay.
pub(super) async fn snapshot_of(subscriber: &mut Subscriber) -> common::subscriber::Replay {
    subscriber
        .wait_until("the snapshot", |messages, _| {
            let Some(header) = messages.first() else { return false };
            let rows = header["rows"].as_u64().unwrap_or(0) as usize;
            messages.len() > rows + usize::from(!header["time"].is_null())
        })
        .await;
    replay(&subscriber.messages, &subscriber.name)
}

/// The names of the files in the log directory of the crash test's directory `dir`.
pub(super) fn log_files(dir: &Path) -> Vec<String> {
    let log = dir.join("out/log");
    let entries = std::fs::read_dir(&log).unwrap_or_else(|e| panic!("listing {}: {e}", log.display()));
    entries.map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect()
}

/// The number in the stderr line `log: recovered N events …` of a start, if there is one.
pub(super) fn recovered_events(log: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.starts_with("log: recovered "))?;
    line["log: recovered ".len()..].split(' ').next()?.parse().ok()
}

/// `POST /v1/events` of `request` with its idempotency key: the status, the `Retry-After`
/// header and the JSON answer.
pub(super) async fn post(server: &Server, request: &Request) -> (u16, Option<String>, Value) {
    let response = (server.client.post(format!("{}/v1/events", server.base)))
        .header("idempotency-key", &request.key)
        .body(request.text())
        .send()
        .await
        .expect("POST /v1/events");
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.expect("the answer");
    (status, retry, serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON answer ({e}): {text:?}")))
}
