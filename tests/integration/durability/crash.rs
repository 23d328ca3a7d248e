//! The crash test: more than twenty lives of `stepstone serve` on one log directory, each ended
//! by SIGKILL at a seeded random delay while the client posts, lose no acknowledged event; the
//! last life's final snapshot equals that of `stepstone run` over the acknowledged records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::read_table;
use crate::common::server::{Server, WAIT, bounded};
use crate::common::subscriber::replay;

use super::client::*;
use super::workload::*;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_random_points_loses_no_acknowledged_event() {
    bounded(async {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut rng = StdRng::seed_from_u64(0xD1_5EA5E);
        let mut client = Client::new(0x5EED);
        // Whether the operation at `acked` (when taken on and not acknowledged) was applied, as
        // the latest start showed.
        let mut verdicts: BTreeMap<usize, Applied> = BTreeMap::new();
        // The operations a subscriber had seen applied when the previous life was killed.
        let mut seen_before_kill = 0;
        let (mut lost_answers, mut duplicates, mut lives_with_deltas, mut torn_tails) = (0, 0, 0, 0);
        let (mut compactions_cut, mut repeats) = (0, 0);
        // The tables compared at the end and their rows (for the summary).
        let mut compared = String::new();
        let mut policies = BTreeMap::<&str, usize>::new();
        // How one lost answer was lost (for the summary).
        let mut lost_example: Option<String> = None;
        for life in 0..=CRASHES {
            let last_life = life == CRASHES;
            let fsync = match life {
                0 => "batch",
                1 => "20ms",
                _ if rng.random_bool(0.5) => "batch",
                _ => "20ms",
            };
            *policies.entry(fsync).or_default() += 1;
            let mut server = Server::start_in(dir.path(), &crash_config(fsync), None);
            let log = server.log();
            torn_tails += usize::from(log.contains("log: cut a torn tail"));

            // The start recovered exactly the acknowledged operations, and the unanswered one
            // whole or not at all, and at least what a subscriber had been shown.
            let mut subscriber = server.subscribe_ws("").await;
            let recovered = snapshot_of(&mut subscriber).await.journeys;
            let requests = client.requests();
            let acked = client.acked;
            let without = lines_after(&client.ops[..acked], requests);
            let verdict = if client.ops.len() > acked {
                let with = lines_after(&client.ops[..=acked], requests);
                let verdict = match (recovered == without, recovered == with) {
                    (true, true) => Applied::Unknown,
                    (true, false) => Applied::No,
                    (false, true) => Applied::Yes,
                    (false, false) => panic!(
                        "life {life}: the recovered journeys are neither the acknowledged operations' nor those and \
                         {:?}'s (after {acked} acknowledged): {}",
                        client.ops[acked],
                        first_difference(&recovered, &without)
                    ),
                };
                verdicts.insert(acked, verdict);
                Some(verdict)
            } else {
                assert!(
                    recovered == without,
                    "life {life}: the recovered journeys are not the acknowledged operations' ({acked}): {}",
                    first_difference(&recovered, &without)
                );
                None
            };
            assert!(
                seen_before_kill <= acked || verdict != Some(Applied::No),
                "life {life}: a subscriber had been shown {:?} applied before the kill, but it was not recovered",
                client.ops[acked]
            );
            let total_events: usize = without.values().map(|line| line["events"].as_u64().unwrap() as usize).sum();
            if acked > 0 {
                let n = recovered_events(&log).unwrap_or_else(|| panic!("life {life}: no recovery line:\n{log}"));
                assert!(n as usize >= total_events, "life {life}: recovered {n} events of {total_events}:\n{log}");
            }

            // A request acknowledged in an earlier life (most likely folded into a checkpoint by
            // now), sent again with its key: answered as a duplicate, not applied again.
            let old_posts: Vec<usize> = (client.ops[..acked].iter())
                .filter_map(|op| match *op {
                    Op::Post(i) => Some(i),
                    Op::Erase => None,
                })
                .collect();
            if !old_posts.is_empty() {
                let old = &requests[old_posts[rng.random_range(0..old_posts.len())]];
                let (status, _, answer) = post(&server, old).await;
                assert_eq!((status, &answer["duplicate"]), (200, &json!(true)), "life {life}, {} again: {answer}", old.key);
                assert_eq!(answer["accepted"], old.expected().0, "life {life}, {} again: {answer}", old.key);
                repeats += 1;
            }

            // Post while a subscriber listens; kill the server at a random point.
            let first_new = client.acked;
            if last_life {
                client.total = Some(client.posts + LAST_REQUESTS);
            }
            let posting = tokio::spawn(client.run(server.client.clone(), server.base.clone(), life));
            if last_life {
                client = tokio::time::timeout(WAIT * 2, posting).await.expect("the last life's posting").unwrap();
            } else {
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..=400))).await;
                let killed_at = Instant::now();
                server.kill();
                client = tokio::time::timeout(WAIT, posting).await.expect("the client stops").unwrap();
                // Every attempt that got no answer ended after the kill (none failed otherwise).
                for attempt in client.attempts.iter().flatten().filter(|a| a.life == life && a.at < killed_at) {
                    assert!(
                        matches!(attempt.outcome, Outcome::Answered(..)),
                        "life {life}: {attempt:?} before the kill"
                    );
                }
                // A checkpoint being written when the kill came is left unfinished.
                compactions_cut += log_files(dir.path()).iter().filter(|name| name.ends_with(".tmp")).count();
                subscriber.wait_closed().await;
                let seen = replay(&subscriber.messages, &subscriber.name);
                // What the subscriber was shown is the state after a prefix of the operations
                // from this life's start up to the one in flight at the kill.
                let requests = client.requests();
                let floor = first_new;
                let mut k = (floor..=client.ops.len())
                    .rev()
                    .find(|&k| lines_after(&client.ops[..k], requests) == seen.journeys)
                    .unwrap_or_else(|| {
                        panic!(
                            "life {life}: the subscriber's view is no prefix of the operations: {}",
                            first_difference(&seen.journeys, &lines_after(&client.ops, requests))
                        )
                    });
                while k > floor && lines_after(&client.ops[..k - 1], requests) == seen.journeys {
                    k -= 1;
                }
                seen_before_kill = k;
                let first_ack = client.attempts[first_new..client.acked]
                    .iter()
                    .zip(&client.ops[first_new..client.acked])
                    .find(|(_, op)| matches!(op, Op::Post(_)))
                    .and_then(|(attempts, _)| attempts.last())
                    .map(|attempt| attempt.at);
                if first_ack.is_some_and(|at| killed_at.duration_since(at) >= DELTA_GRACE) {
                    assert!(
                        seen.delta_lines > 0,
                        "life {life}: the subscriber saw no delta line though the first request was acknowledged {:?} \
                         before the kill",
                        killed_at.duration_since(first_ack.unwrap())
                    );
                }
                lives_with_deltas += usize::from(seen.delta_lines > 0);
            }

            // The answers of the operations acknowledged in this life.
            let requests = client.requests();
            for index in first_new..client.acked {
                let attempts = &client.attempts[index];
                let Some(Attempt { outcome: Outcome::Answered(status, answer), .. }) = attempts.last() else {
                    panic!("operation {index} acknowledged without an answer: {attempts:?}")
                };
                let lost = attempts.iter().any(|a| matches!(a.outcome, Outcome::Lost(_)));
                lost_answers += usize::from(lost);
                if let Some(Outcome::Lost(why)) =
                    attempts.iter().map(|a| &a.outcome).find(|o| matches!(o, Outcome::Lost(_)))
                {
                    lost_example.get_or_insert_with(|| why.clone());
                }
                let verdict = verdicts.get(&index).copied();
                let what = format!("operation {index} ({:?}, life {life}, attempts {attempts:?})", client.ops[index]);
                match client.ops[index] {
                    Op::Post(i) => {
                        assert_eq!(*status, 200, "{what}");
                        if answer["duplicate"] == json!(true) {
                            duplicates += 1;
                            assert!(lost, "{what}: a duplicate, but no earlier answer was lost");
                            assert_ne!(verdict, Some(Applied::No), "{what}: a duplicate of a request not applied");
                            assert_eq!(answer["accepted"], requests[i].expected().0, "{what}");
                            assert_eq!(answer["rejected"], json!([]), "{what}");
                        } else {
                            assert_ne!(verdict, Some(Applied::Yes), "{what}: an applied request applied again");
                            requests[i].check_answer(answer, &what);
                        }
                    }
                    Op::Erase => {
                        if *status == 404 {
                            assert_eq!(verdict, Some(Applied::Yes), "{what}: 404 for an erasure not applied before");
                        } else {
                            assert_ne!(verdict, Some(Applied::Yes), "{what}: an erasure applied twice");
                            let events = events_after(&client.ops[..index], requests)
                                .iter()
                                .filter(|e| e.customer == ERASED)
                                .count();
                            assert!(events > 0);
                            let time = answer["time"].as_u64().unwrap_or_else(|| panic!("{what}: a logical time"));
                            assert_eq!(
                                answer,
                                &json!({"erased": ERASED, "time": time, "identities": 1, "events": events, "links": 0}),
                                "{what}"
                            );
                        }
                    }
                }
            }
            if !last_life {
                continue;
            }

            // The last life: everything is in, and its subscriber shows it.
            assert_eq!(client.acked, client.ops.len(), "every operation was acknowledged");
            assert!(client.ops.contains(&Op::Erase));
            let expected = lines_after(&client.ops, requests);
            let fed: usize = (first_new..client.acked)
                .filter_map(|index| match (client.ops[index], &client.attempts[index].last().unwrap().outcome) {
                    (Op::Post(i), Outcome::Answered(_, answer)) if answer["duplicate"] != json!(true) => {
                        Some(requests[i].events().count())
                    }
                    _ => None,
                })
                .sum();
            let time = server.settle(fed).await;
            subscriber.wait_progress(time).await;
            let seen = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(seen.journeys, expected, "{}", first_difference(&seen.journeys, &expected));
            assert!(seen.delta_lines > 0);
            lives_with_deltas += 1;
            let status = server.terminate().await;
            assert!(status.success(), "exit status {status:?}:\n{}", server.log());

            // The final snapshot equals a batch run of every posted record in posting order,
            // without the erased customer's.
            let lines: Vec<&str> = (client.ops.iter())
                .filter_map(|op| match *op {
                    Op::Post(i) => Some(&requests[i]),
                    Op::Erase => None,
                })
                .flat_map(|request| &request.records)
                .filter(|record| record.customer() != Some(ERASED))
                .map(Record::json)
                .collect();
            let ran = batch_run(dir.path(), "run", &crash_config("batch"), &lines);
            compared = assert_same_snapshot(&server.out, &ran, "the final snapshot after the crashes");
            let journeys = read_table(&ran, "journeys");
            assert_eq!(journeys.num_rows(), expected.len());
        }

        // The kills landed where they should: amid rotations and compactions, and between a
        // request and its answer (the summary says how often, and how many retries were
        // duplicates).
        let files = log_files(dir.path());
        let segment = |name: &String| name.strip_prefix("segment-")?.strip_suffix(".log")?.parse::<u64>().ok();
        let newest = files.iter().filter_map(segment).max().unwrap_or(0);
        assert!(files.iter().any(|name| name.ends_with(".ckpt")), "a checkpoint: {files:?}");
        assert!(newest >= 3, "the log rotated: {files:?}");
        assert!(lost_answers > 0, "some kills cut off an answer");
        assert!(policies.len() == 2, "{policies:?}");
        let posted = client.ops.len() - 1;
        eprintln!(
            "{} lives ({policies:?}), {posted} requests and an erasure, {} records; {lost_answers} answers lost, \
             {duplicates} duplicates (and {repeats} old requests repeated); {lives_with_deltas} subscribers saw deltas; {torn_tails} torn tails cut; \
             {compactions_cut} compactions cut off; \
             newest segment {newest}; tables equal to the run's: {compared}; {:.1?}; an answer lost: {lost_example:?}",
            CRASHES + 1,
            client.workload.rows,
            started.elapsed()
        );
    })
    .await;
}
