//! The serve test of settled history: the journeys fold their events behind the ingest
//! watermark as time goes on, the answers stay those of the oracle, and an erasure still takes
//! back every edge of the erased customer, the folded ones too.

use serde_json::json;

use crate::common::FullEvent;
use crate::common::server::{Server, bounded};

use super::TOKEN;
use super::erasure::*;
use super::expected::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_history_is_folded_and_an_erasure_still_takes_all_of_it_back() {
    bounded(async {
        // HTTP ingest only and late events rejected (the default): the journeys fold their events
        // behind the ingest watermark (ten minutes behind the latest event) as time goes on.
        let config = format!(
            "[journeys]\nsession-gap = \"30m\"\nconversion = \"kind=purchase\"\n[output]\ndir = \"out\"\n\
             [run]\nworkers = 2\n[server]\ntoken = \"secret\"\n{SEGMENTS}"
        );
        let mut server = Server::start(&config, Some(TOKEN));
        let customers = ["ana", "ben", "cy"];
        let points = ["home", "pricing", "help", "checkout", "home", "search"];
        let record = |i: usize, minutes: f64| {
            let customer = customers[i % 3];
            let channel = ["web", "email", "app"][(i + i / 7) % 3];
            let mut fields =
                json!({"customer": customer, "contact_point": points[i % points.len()], "channel": channel});
            if i % 11 == 4 {
                fields["kind"] = json!("purchase");
                fields["value"] = json!(i as f64 / 2.0);
            }
            stitched(minutes, fields, Some(customer))
        };
        // Three hours of events, a session break (40 minutes without any) in the middle.
        let records: Vec<Stitched> =
            (0..60).map(|i| record(i, if i < 30 { i as f64 * 2.0 } else { 100.0 + i as f64 * 2.5 })).collect();
        let mut posted = 0;
        for request in records.chunks(4) {
            let (status, _, answer) = server.post(ndjson(request)).await;
            assert_eq!((status, &answer["accepted"]), (200, &json!(request.len())), "{answer}");
            posted += request.len();
            server.settle(posted).await;
        }
        let events = stitched_events(&records);
        let expected = Expected::of(&events);
        let time = server.settle(posted).await;
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected.transition_rows(None)}),
            "the transitions with most of every journey folded"
        );
        for customer in customers {
            let answer = server.get_ok(&format!("/v1/customers/{customer}")).await;
            let mut row = expected.line(customer);
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected.journeys[customer]));
            assert_eq!(answer, json!({"time": time, "customer": customer, "journeys": [row]}), "{customer}");
        }

        // Erasing ana takes back every edge of hers, the folded ones too.
        let (status, answer) = delete_customer(&server, "ana", Some(ACTOR)).await;
        assert_eq!((status, &answer["events"]), (200, &json!(20)), "{answer}");
        let without_ana = |events: Vec<FullEvent>| -> Vec<FullEvent> {
            let mut kept: Vec<FullEvent> = events.into_iter().filter(|e| e.customer != "ana").collect();
            for (row, event) in kept.iter_mut().enumerate() {
                event.row = row;
            }
            kept
        };
        let erased = Expected::of(&without_ana(events));
        let time = server.settle(posted).await;
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": erased.transition_rows(None)}),
            "the transitions after the erasure: a recomputation without her events"
        );
        assert_eq!(server.get_ok("/v1/segments").await, json!({"time": time, "segments": erased.segment_rows()}));

        // Later events, and a purchase a day later that ends every session; the final snapshot
        // is a recomputation over everything but ana's events.
        let mut later: Vec<Stitched> = (60..72).map(|i| record(i, 260.0 + i as f64)).collect();
        later.push(stitched(
            24.0 * 60.0,
            json!({"customer": "cy", "contact_point": "checkout", "kind": "purchase", "value": 3}),
            Some("cy"),
        ));
        let (status, _, answer) = server.post(ndjson(&later)).await;
        assert_eq!((status, &answer["accepted"]), (200, &json!(later.len())), "{answer}");
        let everything = without_ana(stitched_events(records.iter().chain(&later)));
        let time = server.settle(posted + later.len()).await;
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        check_snapshot_files(&server.out, &Expected::of(&everything), time);
    })
    .await;
}
