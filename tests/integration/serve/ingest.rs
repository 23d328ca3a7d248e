//! The serve tests of ingest and reading: the end-to-end feed against the oracle through every
//! reader (subscriptions of each filter, lookups, metrics, the final snapshot), clear statuses
//! for bad requests, late events rejected or accepted as sessions end at the watermark, and an
//! input file followed as it grows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use crate::common;
use crate::common::server::{Server, WAIT, bounded, encode};
use crate::common::subscriber::replay;
use crate::common::{FullEvent, read_table};

use super::expected::*;
use super::feed::*;
use super::{GAP_MS, PATH_LEN, TOKEN, at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_subscriptions_lookups_metrics_and_the_final_snapshot_agree_with_the_oracle() {
    bounded(async {
        let mut server = Server::start(&format!("{CONFIG}{SEGMENTS}"), Some(TOKEN));
        let requests = feed();
        let events = accepted_events(&requests);
        let expected = Expected::of(&events);
        // Some events arrive late, and the watermark leaves some last sessions open.
        assert!(http_clock(&events).1 >= 1, "the feed has late events");
        let oracle_events: Vec<_> = events.iter().map(FullEvent::to_oracle).collect();
        let (at_the_end, _) = common::oracle(&oracle_events, Some(GAP_MS), PATH_LEN);
        assert_ne!(expected.edges, at_the_end, "some last sessions are still open");
        // The oracle itself, by hand on a few customers (c1: a late event joins its two sessions,
        // docs/semantics.md §3 and §6.3).
        assert_eq!(expected.journeys["c1"].sessions, 1);
        assert_eq!(expected.journeys["c1"].path, ["pricing", "checkout", "help", "help", "home"]);
        assert_eq!(expected.journeys["c2"].sessions, 3);
        assert_eq!(expected.journeys["c2"].path, ["b", "c", "a", "b", "c"]);
        assert_eq!(expected.journeys["c2"].session_events, 1);
        assert_eq!(expected.journeys["c3"].path, ["ad", "landing", "product", "product"]);
        assert_eq!(expected.journeys["c6"].conversions, 2);

        // Everything /v1 needs the token; /healthz and /metrics do not.
        use reqwest::Method;
        for path in [
            "/v1/segments",
            "/v1/segments/buyers",
            "/v1/customers/c1",
            "/v1/transitions?from=home",
            "/v1/subscribe/sse",
        ] {
            for auth in [None, Some("Bearer wrong"), Some(TOKEN), Some("Basic c2VjcmV0")] {
                assert_eq!(server.status_with(Method::GET, path, auth).await, 401, "GET {path} with {auth:?}");
            }
        }
        assert_eq!(server.status_with(Method::POST, "/v1/events", None).await, 401);
        let unauthorized = server.client.post(format!("{}/v1/events", server.base)).body(requests[0].text());
        let response = unauthorized.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let answer: Value = serde_json::from_str(&response.text().await.unwrap()).expect("a JSON answer");
        assert!(answer["error"].is_string(), "an error message: {answer}");
        let mut no_token = server.ws_request("");
        no_token.headers_mut().remove("authorization");
        match tokio_tungstenite::connect_async(no_token).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
            other => panic!("a WebSocket subscription without the token: {:?}", other.map(|_| ())),
        }
        assert_eq!(server.status_with(Method::GET, "/healthz", None).await, 200);
        let health = server.client.get(format!("{}/healthz", server.base)).send().await.unwrap().text().await.unwrap();
        assert_eq!(health.trim(), "ok");
        assert_eq!(server.status_with(Method::GET, "/metrics", None).await, 200);

        // A subscriber of everything from the start: an empty snapshot without a time.
        let mut everything = server.subscribe_ws("").await;
        everything.wait_until("the snapshot message", |m, _| !m.is_empty()).await;
        assert_eq!(everything.messages[0], json!({"type": "snapshot", "time": null, "rows": 0}));

        post_checked(&server, &requests[0], 0).await;
        // A subscriber of c1 once c1 is in the tables: its snapshot holds c1's row.
        let deadline = Instant::now() + WAIT;
        while server.get("/v1/customers/c1").await.0 != 200 {
            assert!(Instant::now() < deadline, "c1 never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut c1 = server.subscribe_ws("?customer=c1").await;
        post_checked(&server, &requests[1], 1).await;
        let mut sse = server.subscribe_sse("").await;
        let mut buyers = server.subscribe_sse("?segment=buyers").await;
        let mut unicode = server.subscribe_ws(&format!("?customer={}", encode("ü-9 x"))).await;
        for (i, request) in requests.iter().enumerate().skip(2) {
            post_checked(&server, request, i).await;
        }
        // Malformed bodies and empty ones are not records at all.
        let (status, _, answer) = server.post("[{\"customer\":\"c1\"},").await;
        assert_eq!(status, 400, "a malformed JSON array: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
        let (status, _, answer) = server.post("\n  \n").await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 0, "rejected": []})), "an empty NDJSON body");

        let time = server.settle(events.len()).await;
        for subscriber in [&mut everything, &mut c1, &mut sse, &mut buyers, &mut unicode] {
            subscriber.wait_progress(time).await;
        }

        // Each subscription replays to the oracle's rows, within its filter.
        let all_lines = expected.lines();
        for subscriber in [&everything, &sse] {
            let replayed = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(replayed.progress.last(), Some(&time), "{}", subscriber.name);
            assert_eq!(replayed.journeys, all_lines, "{}: the journey rows", subscriber.name);
            assert_eq!(replayed.memberships, expected.memberships, "{}: the memberships", subscriber.name);
            assert!(replayed.end.is_none());
        }
        let replayed = replay(&everything.messages, "ws");
        assert_eq!(replayed.snapshot_time, None);
        let metrics = server.metrics().await;
        assert_eq!(
            metrics["stepstone_deltas_out_total"], replayed.delta_lines as f64,
            "every published line reached the subscriber of everything"
        );
        let replayed = replay(&sse.messages, "sse");
        assert!(replayed.snapshot_time.is_some() && replayed.snapshot_rows > 0, "sse joined with rows in its snapshot");
        let replayed = replay(&c1.messages, "c1");
        assert!(replayed.snapshot_rows > 0, "c1's snapshot holds its row");
        assert!(replayed.lines.iter().all(|line| line["customer"] == "c1"), "only c1's lines: {:?}", replayed.lines);
        assert_eq!(replayed.journeys, BTreeMap::from([("c1".to_owned(), expected.line("c1"))]));
        assert_eq!(replayed.memberships, expected.memberships_of("c1"));
        let replayed = replay(&unicode.messages, "ü-9 x");
        assert!(replayed.lines.iter().all(|line| line["customer"] == "ü-9 x"), "{:?}", replayed.lines);
        assert_eq!(replayed.journeys, BTreeMap::from([("ü-9 x".to_owned(), expected.line("ü-9 x"))]));
        let replayed = replay(&buyers.messages, "buyers");
        assert!(
            replayed.lines.iter().all(|line| line["type"] == "segment" && line["segment"] == "buyers"),
            "only buyers' memberships: {:?}",
            replayed.lines
        );
        let want: BTreeSet<_> = expected.memberships.iter().filter(|(s, _)| s == "buyers").cloned().collect();
        assert_eq!(replayed.memberships, want);

        // Lookups.
        for customer in expected.journeys.keys() {
            let answer = server.get_ok(&format!("/v1/customers/{}", encode(customer))).await;
            let mut row = expected.line(customer);
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected.journeys[customer]));
            assert_eq!(answer, json!({"time": time, "customer": customer, "journeys": [row]}), "customer {customer}");
        }
        for unknown in ["c9", "nobody", "home", "buyers"] {
            let (status, answer) = server.get(&format!("/v1/customers/{unknown}")).await;
            assert_eq!(status, 404, "customer {unknown}: {answer}");
            assert!(answer["error"].is_string());
        }
        let answer = server.get_ok("/v1/segments").await;
        assert_eq!(answer, json!({"time": time, "segments": expected.segment_rows()}));
        for row in expected.segment_rows() {
            let name = row["segment"].as_str().unwrap();
            let mut want = row.clone();
            want["channels"] = json!(expected.segment_channels(name));
            want["time"] = json!(time);
            assert_eq!(server.get_ok(&format!("/v1/segments/{name}")).await, want, "segment {name}");
        }
        assert_eq!(server.get("/v1/segments/c1").await.0, 404);
        assert_eq!(server.get("/v1/segments/nothing").await.0, 404);
        for from in ["(start)", "help", "pricing", "y"] {
            let answer = server.get_ok(&format!("/v1/transitions?from={}", encode(from))).await;
            let rows = expected.transition_rows(Some(from));
            assert!(!rows.is_empty());
            assert_eq!(answer, json!({"time": time, "from": from, "transitions": rows}), "transitions from {from}");
        }
        let answer = server.get_ok("/v1/transitions").await;
        assert_eq!(answer, json!({"time": time, "from": null, "transitions": expected.transition_rows(None)}));
        let answer = server.get_ok("/v1/transitions?from=nowhere").await;
        assert_eq!(answer, json!({"time": time, "from": "nowhere", "transitions": []}));

        // Metrics.
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_in_total"], events.len() as f64);
        let rejected: BTreeMap<String, f64> = metrics
            .iter()
            .filter_map(|(name, value)| {
                let reason = name.strip_prefix("stepstone_events_rejected_total{reason=\"")?.strip_suffix("\"}")?;
                Some((reason.to_owned(), *value))
            })
            .collect();
        let want: BTreeMap<String, f64> =
            rejections_by_reason(&requests).into_iter().map(|(k, n)| (k.to_owned(), n as f64)).collect();
        assert_eq!(rejected, want, "rejections by reason");
        assert_eq!(metrics["stepstone_subscribers"], 5.0);
        assert_eq!(metrics["stepstone_logical_time"], time as f64);
        assert_eq!(metrics["stepstone_engine_lag_seconds"], 0.0);
        assert_eq!(metrics["stepstone_events_late_total"], http_clock(&events).1 as f64);
        assert!(metrics.contains_key("stepstone_snapshot_age_seconds"), "{metrics:?}");
        // The dead letters hold every rejection.
        let dead = std::fs::read_to_string(server.out.join("rejected.jsonl")).expect("rejected.jsonl");
        assert_eq!(dead.lines().count(), want.values().sum::<f64>() as usize, "{dead}");

        drop(unicode);

        // SIGTERM: a clean stop, subscribers told, the final snapshot written.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        assert!(
            server.log().contains(&format!("stopped at logical time {time};")),
            "the final time on stderr:\n{}",
            server.log()
        );
        // SSE subscribers are told `closing`; WebSocket ones may not be (see
        // `websocket_subscribers_are_told_closing_at_shutdown`), but nothing is missing before.
        for subscriber in [&mut everything, &mut c1, &mut sse, &mut buyers] {
            subscriber.wait_closed().await;
            let replayed = replay(&subscriber.messages, &subscriber.name);
            assert_eq!(replayed.progress.last(), Some(&time), "{}: nothing after the final time", subscriber.name);
            if subscriber.name.starts_with("sse") {
                let last = subscriber.messages.last().unwrap();
                assert_eq!(last, &json!({"type": "closing"}), "{}: the last message at shutdown", subscriber.name);
                assert_eq!(subscriber.closed.as_deref(), Some("end of stream"), "{}", subscriber.name);
            } else if subscriber.messages.last() != Some(&json!({"type": "closing"})) {
                eprintln!("note: {} was not told `closing` at shutdown ({:?})", subscriber.name, subscriber.closed);
            }
        }
        check_snapshot_files(&server.out, &expected, time);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses() {
    bounded(async {
        let config = r#"
[run]
workers = 1
[server]
token = "secret"
max-body-bytes = 4096
max-subscribers = 2
[[segments]]
name = "buyers"
rule = "converted"
"#;
        let mut server = Server::start(config, Some(TOKEN));
        let record =
            |i: usize| json!({"customer": format!("c{i}"), "time": at(i as f64), "contact_point": "home"}).to_string();

        // Over the body limit: 413, and nothing is taken.
        let big: String = (0..100).map(|i| record(i) + "\n").collect();
        assert!(big.len() > 4096);
        let response =
            server.authorized(server.client.post(format!("{}/v1/events", server.base))).body(big).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 413);
        // Just under the limit: fine.
        let mut small = String::new();
        let mut i = 0;
        while small.len() + record(i).len() < 4096 {
            small += &(record(i) + "\n");
            i += 1;
        }
        let (status, _, answer) = server.post(small).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": i, "rejected": []})));

        // Malformed JSON arrays: 400 with an error, and nothing is taken.
        for body in ["[{\"customer\":\"x\",\"time\":0,\"contact_point\":\"a\"},", "[1, 2", "[}", " [\"a\"] trailing"] {
            let (status, _, answer) = server.post(body).await;
            assert_eq!(status, 400, "{body:?}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{body:?}: {answer}");
        }
        // A JSON array of only bad records: 400 with the rejections.
        let (status, _, answer) = server.post(r#"[{"customer":"x"}, "text"]"#).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["accepted"], 0);
        assert_eq!(answer["rejected"].as_array().map(Vec::len), Some(2), "{answer}");
        let (status, _, answer) = server.post("[]").await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 0, "rejected": []})));

        let settled = server.settle(i).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_in_total"], i as f64, "only the good request's events");
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"missing_field\"}"], 1.0);
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"malformed\"}"], 1.0);

        // A subscription to a customer and a segment at once: 400.
        for query in ["?customer=a&segment=b", "?segment=buyers&customer=c1"] {
            match tokio_tungstenite::connect_async(server.ws_request(query)).await {
                Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400, "ws {query}"),
                other => panic!("ws {query}: {:?}", other.map(|_| ())),
            }
            let (status, answer) = server.get(&format!("/v1/subscribe/sse{query}")).await;
            assert_eq!(status, 400, "sse {query}: {answer}");
            assert!(answer["error"].is_string());
        }

        // Unknown customers and segments: 404.
        for path in ["/v1/customers/nobody", "/v1/customers/home", "/v1/segments/nothing", "/v1/segments/c1"] {
            let (status, answer) = server.get(path).await;
            assert_eq!(status, 404, "{path}: {answer}");
            assert!(answer["error"].is_string(), "{path}: {answer}");
        }
        let answer = server.get_ok("/v1/customers/c0").await;
        assert_eq!(answer["time"], settled);
        assert_eq!(answer["journeys"][0]["segments"], json!([]));
        // A declared segment without members is reported with zeros.
        let empty =
            json!({"segment": "buyers", "members": 0, "value": 0.0, "converted_members": 0, "conversion_rate": 0.0});
        assert_eq!(server.get_ok("/v1/segments").await, json!({"time": settled, "segments": [empty.clone()]}));
        let mut want = empty;
        want["channels"] = json!([]);
        want["time"] = json!(settled);
        assert_eq!(server.get_ok("/v1/segments/buyers").await, want);

        // At most max-subscribers at once: 503 for the next one.
        let mut first = server.subscribe_ws("").await;
        let mut second = server.subscribe_sse("?customer=c0").await;
        first.wait_progress(settled).await;
        second.wait_progress(settled).await;
        let (status, answer) = server.get("/v1/subscribe/sse").await;
        assert_eq!(status, 503, "a third subscriber: {answer}");
        match tokio_tungstenite::connect_async(server.ws_request("")).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
            other => panic!("a third WebSocket subscriber: {:?}", other.map(|_| ())),
        }
        // A closed subscription frees its place (once the next logical time is published: see
        // `a_closed_subscription_is_released_without_waiting_for_deltas`).
        drop(first);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, _) = server.post(record(1000)).await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + WAIT;
        while server.metrics().await["stepstone_subscribers"] != 1.0 {
            assert!(Instant::now() < deadline, "the closed subscriber is still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settled = server.settle(i + 1).await;
        let mut third = server.subscribe_ws("?segment=buyers").await;
        third.wait_until("the snapshot", |m, _| !m.is_empty()).await;
        assert_eq!(third.messages[0], json!({"type": "snapshot", "time": settled, "rows": 0}));

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        second.wait_closed().await;
        assert_eq!(second.messages.last(), Some(&json!({"type": "closing"})));
    })
    .await;
}

/// The `(exit)` edges of `server`'s transition graph: `from` → count.
async fn exits(server: &Server) -> BTreeMap<String, i64> {
    let answer = server.get_ok("/v1/transitions").await;
    answer["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["to"] == "(exit)")
        .map(|t| (t["from"].as_str().unwrap().to_owned(), t["count"].as_i64().unwrap()))
        .collect()
}

/// One NDJSON record of `customer` at `minutes` at `contact_point`.
fn event(customer: &str, minutes: f64, contact_point: &str) -> String {
    json!({"customer": customer, "time": at(minutes), "contact_point": contact_point}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_are_rejected_and_sessions_end_when_the_watermark_passes() {
    bounded(async {
        // Default event time: 10 minutes of allowed lateness, late events rejected.
        let mut server = Server::start("[run]\nworkers = 2\n[journeys]\nsession-gap = \"30m\"\n", None);
        let (status, _, _) = server.post(event("a", 0.0, "home") + "\n" + &event("b", 0.0, "home")).await;
        assert_eq!(status, 200);
        server.settle(2).await;
        assert_eq!(exits(&server).await, BTreeMap::new(), "no session is over before the watermark passes it");
        // Watermark 25 min: the sessions ending at 30 min are not over.
        server.post(event("c", 35.0, "pricing")).await;
        server.settle(3).await;
        assert_eq!(exits(&server).await, BTreeMap::new());
        // Watermark 35 min: they are.
        server.post(event("c", 45.0, "cart")).await;
        server.settle(4).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 2)]));
        // 20 min is behind the watermark: rejected as late, with the reason.
        let (status, _, answer) = server.post(event("a", 20.0, "help")).await;
        assert_eq!(status, 400, "{answer}");
        let rejected = &answer["rejected"][0];
        assert_eq!((&rejected["kind"], &rejected["field"]), (&json!("late"), &json!("time")), "{answer}");
        assert!(rejected["reason"].as_str().unwrap().contains("watermark 2026-03-01T10:35:00.000Z"), "{answer}");
        // Exactly at the watermark is on time.
        let (status, _, answer) = server.post(event("b", 35.0, "search")).await;
        assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
        server.settle(5).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_late_total"], 1.0);
        assert_eq!(metrics["stepstone_events_rejected_total{reason=\"late\"}"], 1.0);
        // b's session now runs 0 → 35 min (a gap over 30 min: two sessions); the first is over.
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 2)]));
        let status = server.terminate().await;
        assert!(status.success());
        let dead = std::fs::read_to_string(server.out.join("rejected.jsonl")).expect("the dead letters");
        let dead: Vec<Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(dead.len(), 1);
        assert_eq!((&dead[0]["kind"], &dead[0]["line"]), (&json!("late"), &json!(1)), "{dead:?}");
        assert!(dead[0]["raw"].as_str().unwrap().contains("help"), "{dead:?}");

        // Accepting late events: a late event reopens a session that was over, exactly.
        let config = "[input]\nlate = \"accept\"\n[run]\nworkers = 2\n[journeys]\nsession-gap = \"30m\"\n";
        let mut server = Server::start(config, None);
        server.post(event("a", 0.0, "home") + "\n" + &event("c", 45.0, "cart")).await;
        server.settle(2).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("home".to_owned(), 1)]));
        let (status, _, answer) = server.post(event("a", 20.0, "help")).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": 1, "rejected": []})));
        server.settle(3).await;
        assert_eq!(server.metrics().await["stepstone_events_late_total"], 1.0);
        // a's session now ends at 50 min, after the watermark (35 min): open again.
        assert_eq!(exits(&server).await, BTreeMap::new());
        server.post(event("d", 100.0, "home")).await;
        server.settle(4).await;
        assert_eq!(exits(&server).await, BTreeMap::from([("cart".to_owned(), 1), ("help".to_owned(), 1)]));
        let transitions = server.get_ok("/v1/transitions?from=home").await;
        assert_eq!(transitions["transitions"][0]["to"], "help", "{transitions}");
        let status = server.terminate().await;
        assert!(status.success());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_input_file_is_read_as_it_grows() {
    bounded(async {
        let inputs = tempfile::tempdir().expect("a temporary directory");
        let path = inputs.path().join("events.jsonl");
        let line = |i: usize, contact_point: &str| {
            json!({"customer": format!("f{}", i % 3), "time": at(i as f64), "contact_point": contact_point}).to_string()
                + "\n"
        };
        let initial: String = (0..10).map(|i| line(i, "home")).collect();
        std::fs::write(&path, initial + "not json\n").expect("writing the input");
        let config = format!("[input]\npaths = [{:?}]\nfollow = true\n[run]\nworkers = 2\n", path.to_str().unwrap());
        let mut server = Server::start(&config, None);
        server.settle(10).await;
        assert_eq!(server.metrics().await["stepstone_events_rejected_total{reason=\"malformed\"}"], 1.0);

        // A line written in two parts is read once it is whole, and without waiting for more.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("opening the input");
        let more = line(10, "pricing");
        std::io::Write::write_all(&mut file, &more.as_bytes()[..7]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.metrics().await["stepstone_events_in_total"], 10.0, "half a line is not an event");
        std::io::Write::write_all(&mut file, &more.as_bytes()[7..]).unwrap();
        let time = server.settle(11).await;
        let answer = server.get_ok("/v1/customers/f1").await;
        assert_eq!(answer["time"], time);
        assert_eq!(answer["journeys"][0]["events"], 4, "{answer}");
        assert_eq!(answer["journeys"][0]["path"], json!(["home", "home", "home", "pricing"]), "{answer}");

        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        let journeys = read_table(&server.out, "journeys");
        assert_eq!(journeys.num_rows(), 3);
    })
    .await;
}
