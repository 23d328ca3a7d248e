//! The serve tests of subscribers: a slow one is told it lagged and closed without holding
//! anyone back, a closed subscription is released at once, WebSocket subscribers are told
//! `closing` at shutdown, and a stalled SSE subscriber does not hold up shutdown. These pin down
//! bugs that the first version of the serve tests found.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::common::server::{Server, WAIT, bounded};
use crate::common::subscriber::{Subscriber, replay};
use crate::common::{FullEvent, full_journeys, read_table};

use super::{GAP_MS, PATH_LEN, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_it_lagged_and_closed_without_holding_anyone_back() {
    bounded(async {
        // No token: every endpoint is open. Each request is a logical time of its own.
        let config = r#"
[input]
late = "accept"
[journeys]
session-gap = "30m"
conversion = "kind=purchase"
[run]
workers = 1
[server]
subscriber-buffer = 2
epoch-interval = "0s"
[[segments]]
name = "all"
rule = "events >= 1"
"#;
        let mut server = Server::start(config, None);

        // The slow subscriber: a small receive buffer, read up to the snapshot message, then not.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.http).await.expect("connecting");
        let (mut slow, _) =
            tokio_tungstenite::client_async(server.ws_request(""), stream).await.expect("a WebSocket subscription");
        let first = tokio::time::timeout(WAIT, slow.next()).await.expect("the snapshot message").unwrap().unwrap();
        let first: Value = serde_json::from_str(first.into_text().unwrap().as_str()).unwrap();
        assert_eq!(first, json!({"type": "snapshot", "time": null, "rows": 0}));
        let mut normal = server.subscribe_ws("").await;

        // Many requests of large rows: far more than the slow subscriber's buffers hold.
        let requests = 80;
        let per_request = 80;
        let long = "x".repeat(300);
        let mut events = Vec::new();
        for r in 0..requests {
            let mut body = String::new();
            for i in 0..per_request {
                let customer = format!("lag-{r:03}-{i:02}-{long}");
                let contact_point = format!("page-{}-{long}", i % 7);
                let time = at(r as f64);
                body.push_str(&json!({"customer": customer, "time": time, "contact_point": contact_point}).to_string());
                body.push('\n');
                events.push(FullEvent {
                    customer,
                    time,
                    row: events.len(),
                    contact_point,
                    channel: None,
                    converting: false,
                    value: 0.0,
                });
            }
            let (status, _, answer) = server.post(body).await;
            assert_eq!((status, &answer["accepted"]), (200, &json!(per_request)), "request {r}: {answer}");
            // The normal subscriber keeps up: it has the time before the next one is published.
            normal.wait_progress(r as u64).await;
        }
        let last_time = (requests - 1) as u64;
        // The engine and the normal subscriber keep going while the slow one does not read.
        assert_eq!(server.settle(events.len()).await, last_time, "one logical time per request");
        normal.wait_progress(last_time).await;
        let expected = full_journeys(&events, Some(GAP_MS), PATH_LEN);
        let replayed = replay(&normal.messages, "normal");
        assert_eq!(replayed.progress, (0..=last_time).collect::<Vec<_>>(), "a progress message for every time");
        assert_eq!(replayed.journeys.len(), expected.len());
        for (customer, row) in &replayed.journeys {
            let j = &expected[customer];
            assert_eq!((&row["events"], &row["path"]), (&json!(j.events), &json!(j.path)), "{customer}");
        }
        assert_eq!(replayed.memberships.len(), expected.len(), "everyone is in `all`");
        assert!(replayed.end.is_none(), "the normal subscriber did not lag");
        assert_eq!(server.metrics().await["stepstone_subscribers"], 2.0);

        // Now the slow one reads: what was buffered, then `lagged`, then the end.
        let mut slow = Subscriber::websocket("slow".to_owned(), slow);
        slow.messages.push(json!({"type": "snapshot", "time": null, "rows": 0}));
        slow.wait_closed().await;
        let replayed = replay(&slow.messages, "slow");
        let lagged = replayed.end.as_ref().unwrap_or_else(|| panic!("a lagged message; closed: {:?}", slow.closed));
        assert_eq!(lagged["type"], "lagged", "{lagged}");
        assert!(lagged["missed"].as_u64().is_some_and(|n| n >= 1), "{lagged}");
        assert_eq!(lagged.as_object().unwrap().len(), 2, "{lagged}");
        assert!(
            replayed.progress.last().is_none_or(|&t| t < last_time),
            "the slow subscriber cannot have seen every time: {:?}",
            replayed.progress
        );
        assert!(slow.closed.as_deref().is_some_and(|why| why.starts_with("close frame")), "{:?}", slow.closed);
        let deadline = Instant::now() + WAIT;
        while server.metrics().await["stepstone_subscribers"] != 1.0 {
            assert!(Instant::now() < deadline, "the lagged subscriber is still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // It can subscribe again, and gets the current state in its snapshot.
        let mut again = server.subscribe_sse("").await;
        again.wait_progress(last_time).await;
        let replayed = replay(&again.messages, "again");
        assert_eq!(replayed.snapshot_time, Some(last_time));
        assert_eq!(replayed.snapshot_rows, 2 * expected.len());
        // The normal subscriber is still subscribed and up to date.
        let after =
            server.post(json!([{"customer": "late", "time": at(0.0), "contact_point": "home"}]).to_string()).await;
        assert_eq!(after.0, 200);
        normal.wait_progress(last_time + 1).await;
        again.wait_progress(last_time + 1).await;
        assert!(replay(&normal.messages, "normal").journeys.contains_key("late"));
        assert!(replay(&again.messages, "again").journeys.contains_key("late"));

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_subscription_is_released_without_waiting_for_deltas() {
    bounded(async {
        let config = "[run]\nworkers = 1\n[server]\nmax-subscribers = 1\n";
        let mut server = Server::start(config, None);
        let (status, _, _) = server.post(r#"{"customer":"a","time":0,"contact_point":"home"}"#).await;
        assert_eq!(status, 200);
        let time = server.settle(1).await;
        for round in 0..3 {
            let mut subscriber = server.subscribe_ws("").await;
            subscriber.wait_progress(time).await;
            assert_eq!(server.metrics().await["stepstone_subscribers"], 1.0);
            drop(subscriber);
            let deadline = Instant::now() + WAIT;
            while server.metrics().await["stepstone_subscribers"] != 0.0 {
                assert!(Instant::now() < deadline, "round {round}: the closed subscription is still counted");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let status = server.terminate().await;
        assert!(status.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscribers_are_told_closing_at_shutdown() {
    bounded(async {
        // The race is narrow: several servers with many subscribers each.
        for round in 0..5 {
            let mut server = Server::start("[run]\nworkers = 1\n", None);
            let (status, _, _) = server.post(r#"{"customer":"a","time":0,"contact_point":"home"}"#).await;
            assert_eq!(status, 200);
            let time = server.settle(1).await;
            let mut subscribers = Vec::new();
            for i in 0..40 {
                let query = if i % 2 == 0 { String::new() } else { "?customer=a".to_owned() };
                let mut subscriber = server.subscribe_ws(&query).await;
                subscriber.wait_progress(time).await;
                subscribers.push(subscriber);
            }
            let status = server.terminate().await;
            assert!(status.success());
            let mut missed = Vec::new();
            for (i, subscriber) in subscribers.iter_mut().enumerate() {
                subscriber.wait_closed().await;
                let told = subscriber.messages.last() == Some(&json!({"type": "closing"}));
                let closed = subscriber.closed.as_deref().is_some_and(|why| why.starts_with("close frame"));
                if !(told && closed) {
                    missed.push((i, subscriber.messages.last().cloned(), subscriber.closed.clone()));
                }
            }
            assert!(missed.is_empty(), "round {round}: subscribers not told `closing` with a close frame: {missed:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sse_subscriber_does_not_hold_up_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let mut server = Server::start("[input]\nlate = \"accept\"\n[run]\nworkers = 1\n", None);
        // An SSE subscriber with a small receive buffer that reads its first event, then nothing.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(server.http).await.expect("connecting");
        stream.write_all(b"GET /v1/subscribe/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let mut head = Vec::new();
        while !String::from_utf8_lossy(&head).contains("\"type\":\"snapshot\"") {
            let mut buffer = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, stream.read(&mut buffer)).await.expect("the SSE answer").unwrap();
            assert!(n > 0, "the SSE answer: {}", String::from_utf8_lossy(&head));
            head.extend_from_slice(&buffer[..n]);
        }
        assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
        // Far more deltas than its buffers hold.
        let long = "x".repeat(300);
        let mut events = 0;
        for r in 0..40 {
            let body: String = (0..100)
                .map(|i| json!({"customer": format!("s-{r}-{i}-{long}"), "time": at(i as f64), "contact_point": long}))
                .map(|v| v.to_string() + "\n")
                .collect();
            let (status, _, _) = server.post(body).await;
            assert_eq!(status, 200);
            events += 100;
        }
        server.settle(events).await;
        // SIGTERM: the service stops within the bound although this subscriber never reads.
        let stopped = Instant::now();
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        assert!(server.log().contains("stopped at logical time"), "{}", server.log());
        eprintln!("stopped {:?} after SIGTERM with a stalled SSE subscriber", stopped.elapsed());
        let journeys = read_table(&server.out, "journeys");
        assert_eq!(journeys.num_rows(), events);
        drop(stream);
    })
    .await;
}
