//! The serve test of backpressure: many concurrent posters against a queue of one batch are
//! told to retry (429 with Retry-After), exactly the accepted events reach the engine, and
//! SIGTERM while posting drains what was accepted into the final snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;
use crate::common::read_table;
use crate::common::server::{Server, WAIT, bounded};

use super::at;

/// What [`flood`] saw.
#[derive(Debug, Default)]
pub(super) struct Flooded {
    /// Requests per status.
    pub(super) statuses: BTreeMap<u16, usize>,
    /// Events accepted (in 200 answers).
    pub(super) accepted: usize,
}

/// Posts batches of 100 new customers from `posters` concurrent tasks until `stop` turns true or
/// the server stops answering; counts the 429 answers in `busy` as they come.
pub(super) async fn flood(
    client: reqwest::Client,
    base: String,
    posters: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    busy: Arc<std::sync::atomic::AtomicUsize>,
    tag: &'static str,
) -> Flooded {
    use std::sync::atomic::Ordering;
    let mut tasks = Vec::new();
    for poster in 0..posters {
        let (client, base, stop, busy) = (client.clone(), base.clone(), stop.clone(), busy.clone());
        tasks.push(tokio::spawn(async move {
            let mut flooded = Flooded::default();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body: String = (0..100)
                    .map(|i| {
                        let customer = format!("{tag}-{poster}-{n}-{i}");
                        json!({"customer": customer, "time": at(i as f64), "contact_point": "p"}).to_string() + "\n"
                    })
                    .collect();
                n += 1;
                // An error: the server has stopped listening.
                let Ok(response) = client.post(format!("{base}/v1/events")).body(body).send().await else { break };
                let status = response.status().as_u16();
                let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                let Ok(text) = response.text().await else { break };
                let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} ({e}): {text}"));
                *flooded.statuses.entry(status).or_default() += 1;
                match status {
                    200 => flooded.accepted += answer["accepted"].as_u64().unwrap() as usize,
                    429 => {
                        assert_eq!(retry.as_deref(), Some("1"), "429 says when to retry: {answer}");
                        assert!(answer["error"].is_string(), "{answer}");
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                    503 => {
                        assert!(answer["error"].is_string(), "{answer}");
                        break;
                    }
                    _ => panic!("unexpected status {status}: {answer}"),
                }
            }
            flooded
        }));
    }
    let mut total = Flooded::default();
    for task in tasks {
        let flooded = task.await.expect("a poster");
        for (status, n) in flooded.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.accepted += flooded.accepted;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn a_full_queue_answers_429_and_shutdown_drains_what_was_accepted() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    bounded(async {
        let config = "[run]\nworkers = 2\n[server]\ningest-queue = 1\nepoch-interval = \"0s\"\n";
        let mut server = Server::start(config, None);

        // Many concurrent posters against a queue of one batch: some are told to retry, and
        // exactly the accepted events reach the engine.
        let (stop, busy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let flooding =
            tokio::spawn(flood(server.client.clone(), server.base.clone(), 24, stop.clone(), busy.clone(), "a"));
        let started = Instant::now();
        while !(busy.load(Ordering::Relaxed) > 0 && started.elapsed() > Duration::from_secs(1))
            && started.elapsed() < WAIT
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let first = flooding.await.unwrap();
        assert!(first.statuses.get(&429).is_some_and(|&n| n > 0), "a full queue answers 429: {first:?}");
        assert!(first.statuses.get(&200).is_some_and(|&n| n > 0), "{first:?}");
        assert_eq!(first.statuses.keys().copied().collect::<Vec<_>>(), [200, 429], "{first:?}");
        server.settle(first.accepted).await;

        // SIGTERM while posting: ingest stops, and what was accepted is in the final snapshot.
        let (stop, busy) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let flooding = tokio::spawn(flood(server.client.clone(), server.base.clone(), 8, stop.clone(), busy, "b"));
        tokio::time::sleep(Duration::from_millis(700)).await;
        let status = server.terminate().await;
        let second = tokio::time::timeout(WAIT, flooding).await.expect("the posters stop").unwrap();
        assert!(status.success(), "exit status {status:?}");
        assert!(second.statuses.get(&200).is_some_and(|&n| n > 0), "{second:?}");
        assert!(second.statuses.keys().all(|s| [200, 429, 503].contains(s)), "{second:?}");
        let journeys = read_table(&server.out, "journeys");
        let events: i64 = common::ints(&journeys, "events").iter().sum();
        assert_eq!(
            (journeys.num_rows(), events as usize),
            (first.accepted + second.accepted, first.accepted + second.accepted),
            "every accepted event, and only those, is in the final snapshot ({second:?})"
        );
    })
    .await;
}
