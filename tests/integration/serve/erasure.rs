//! The serve test of erasure and consent, with identity stitching: a person of four identities
//! (customer ids and devices linked by logins and an alias) is erased by `DELETE
//! /v1/customers/{id}`; they leave every view and every subscription at once, their later events
//! are dropped, and records without analytics consent count nowhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::common;
use crate::common::server::{Server, bounded, encode};
use crate::common::subscriber::{replay, rfc3339};
use crate::common::{FullEvent, read_table};

use super::expected::*;
use super::feed::*;
use super::{GAP_MS, PATH_LEN, TOKEN, at};

/// The identities of the person erased in the erasure test: a customer id, an alias of it and
/// two devices a login links to it.
pub(super) const ALICE: [&str; 4] = ["alice", "alice-work", "d-a1", "d-a2"];

/// Who asks for the erasure (the `stepstone-actor` header).
pub(super) const ACTOR: &str = "privacy desk (ticket 4711)";

/// One record of the erasure test.
pub(super) struct Stitched {
    /// The record as posted.
    pub(super) json: Value,
    /// Its event time, in ms.
    pub(super) time: i64,
    /// The event it brings, its customer being the profile its identity is stitched into; `None`
    /// for a link only or a record without consent.
    pub(super) event: Option<FullEvent>,
}

/// A record at `minutes` with `fields` (the time is added); its event, if it brings one, is
/// `profile`'s.
pub(super) fn stitched(minutes: f64, fields: Value, profile: Option<&str>) -> Stitched {
    let mut json = fields;
    let time = at(minutes);
    json["time"] = json!(rfc3339(time));
    let event = profile.map(|profile| FullEvent {
        customer: profile.to_owned(),
        time,
        row: 0,
        contact_point: json["contact_point"].as_str().expect("an event has a contact point").to_owned(),
        channel: json["channel"].as_str().map(str::to_owned),
        converting: json["kind"] == "purchase",
        value: json["value"].as_f64().unwrap_or(0.0),
    });
    Stitched { json, time, event }
}

/// `records` as an NDJSON body.
pub(super) fn ndjson(records: &[Stitched]) -> String {
    records.iter().map(|r| r.json.to_string() + "\n").collect()
}

/// The events `records` bring, numbered in arrival order.
pub(super) fn stitched_events<'a>(records: impl IntoIterator<Item = &'a Stitched>) -> Vec<FullEvent> {
    let mut events: Vec<FullEvent> = records.into_iter().filter_map(|r| r.event.clone()).collect();
    for (row, event) in events.iter_mut().enumerate() {
        event.row = row;
    }
    events
}

/// The HTTP source's watermark after `records` (every accepted record takes the clock).
pub(super) fn stitched_watermark<'a>(records: impl IntoIterator<Item = &'a Stitched>) -> i64 {
    let clock: Vec<FullEvent> = records
        .into_iter()
        .map(|r| FullEvent {
            customer: String::new(),
            time: r.time,
            row: 0,
            contact_point: String::new(),
            channel: None,
            converting: false,
            value: 0.0,
        })
        .collect();
    let (watermark, late) = http_clock(&clock);
    assert_eq!(late, 0, "the erasure test's records are in time order");
    watermark
}

/// The identity names a record mentions (customer, device and previous id).
pub(super) fn named_identities(record: &Stitched) -> Vec<&str> {
    ["customer", "device_id", "prev"].into_iter().filter_map(|key| record.json[key].as_str()).collect()
}

/// `messages` without the identity lines (which [`replay`] does not know).
pub(super) fn without_identity_lines(messages: &[Value]) -> Vec<Value> {
    messages.iter().filter(|m| m["type"] != "identity").cloned().collect()
}

/// The profile of every identity after the identity lines of `messages`, checked on the way: a
/// profile left is the one the identity had, and an identity joins one profile at a time.
pub(super) fn identity_profiles(messages: &[Value], who: &str) -> BTreeMap<String, String> {
    let mut profiles = BTreeMap::new();
    for line in messages.iter().filter(|m| m["type"] == "identity") {
        let fields: BTreeSet<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["time", "type", "identity", "device", "profile", "anonymous", "diff"]),
            "{who}: {line}"
        );
        let identity = line["identity"].as_str().unwrap().to_owned();
        let profile = line["profile"].as_str().unwrap().to_owned();
        assert_eq!(line["device"], json!(identity.starts_with("d-") || identity.starts_with("v-")), "{who}: {line}");
        match line["diff"].as_i64() {
            Some(1) => assert!(profiles.insert(identity, profile).is_none(), "{who}: a second profile: {line}"),
            Some(-1) => assert_eq!(profiles.remove(&identity), Some(profile), "{who}: left a profile it had: {line}"),
            _ => panic!("{who}: diff ±1: {line}"),
        }
    }
    profiles
}

/// The delta lines (journey, segment, identity) of `messages` at logical time `time`, sorted.
pub(super) fn lines_at(messages: &[Value], time: u64) -> Vec<Value> {
    let mut lines: Vec<Value> = messages
        .iter()
        .filter(|m| matches!(m["type"].as_str(), Some("journey" | "segment" | "identity")) && m["time"] == time)
        .cloned()
        .collect();
    lines.sort_by_key(|m| (m["type"].to_string(), m["segment"].to_string(), m["identity"].to_string()));
    lines
}

/// `DELETE /v1/customers/{id}` with the token, and the actor header if any: the status and
/// the JSON answer.
pub(super) async fn delete_customer(server: &Server, id: &str, actor: Option<&str>) -> (u16, Value) {
    let mut request = server.authorized(server.client.delete(format!("{}/v1/customers/{}", server.base, encode(id))));
    if let Some(actor) = actor {
        request = request.header("stepstone-actor", actor);
    }
    let response = request.send().await.expect("DELETE /v1/customers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the answer");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("DELETE {id}: a JSON answer ({e}): {text:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_person_leaves_every_view_and_their_later_events_are_dropped() {
    bounded(async {
        let config = format!(
            "[input.map]\ndevice = \"device_id\"\nprevious_id = \"prev\"\n[journeys]\nsession-gap = \"30m\"\n\
             conversion = \"kind=purchase\"\n[output]\ndir = \"out\"\n[run]\nworkers = 2\n[server]\n\
             token = \"secret\"\n{SEGMENTS}"
        );
        let mut server = Server::start(&config, Some(TOKEN));
        let alice = Some("alice");
        let bob = Some("bob");
        // Two devices browse anonymously, a login on each links it to alice, and alice-work is
        // an alias of alice: one person of four identities. Bob logs in on his tablet; v-1 is
        // a device-only visitor. Three records lack analytics consent (nested, flat), one has it.
        let before = vec![
            stitched(0.0, json!({"device_id": "d-a1", "contact_point": "home", "channel": "web"}), alice),
            stitched(1.0, json!({"device_id": "d-a2", "contact_point": "pricing", "channel": "app"}), alice),
            stitched(2.0, json!({"device_id": "v-1", "contact_point": "home", "channel": "web"}), Some("v-1")),
            stitched(
                3.0,
                json!({"customer": "bob", "device_id": "d-b", "contact_point": "home", "channel": "web"}),
                bob,
            ),
            stitched(4.0, json!({"device_id": "d-b", "contact_point": "search", "channel": "app"}), bob),
            stitched(
                5.0,
                json!({"customer": "alice", "device_id": "d-a1", "contact_point": "login", "channel": "web"}),
                alice,
            ),
            stitched(
                6.0,
                json!({"customer": "alice", "device_id": "d-a2", "contact_point": "checkout", "channel": "app",
                       "kind": "purchase", "value": 30}),
                alice,
            ),
            stitched(7.0, json!({"customer": "alice-work", "prev": "alice", "kind": "alias"}), None),
            stitched(8.0, json!({"customer": "alice-work", "contact_point": "help", "channel": "email"}), alice),
            stitched(
                9.0,
                json!({"customer": "bob", "contact_point": "pricing", "channel": "email", "kind": "purchase",
                       "value": 12.5}),
                bob,
            ),
            stitched(
                10.0,
                json!({"customer": "carol", "device_id": "d-c", "contact_point": "home",
                       "consent": {"analytics": false}}),
                None,
            ),
            stitched(
                11.0,
                json!({"customer": "bob", "contact_point": "secret", "channel": "web",
                       "consent": {"analytics": false}}),
                None,
            ),
            stitched(12.0, json!({"customer": "dave", "contact_point": "home", "consent.analytics": false}), None),
            stitched(13.0, json!({"customer": "bob", "contact_point": "cart", "consent": {"analytics": true}}), bob),
        ];
        // After the erasure: events of alice's identities (suppressed, their links dropped too),
        // and bob's, the last one a purchase long after everyone else's last event, so every
        // session is over or converted at the final watermark.
        let after = vec![
            stitched(20.0, json!({"device_id": "d-a1", "contact_point": "home", "channel": "web"}), alice),
            stitched(21.0, json!({"customer": "alice", "contact_point": "pricing"}), alice),
            stitched(22.0, json!({"customer": "alice", "device_id": "d-a2", "contact_point": "login"}), alice),
            stitched(24.0, json!({"customer": "alice-work", "device_id": "d-new", "contact_point": "help"}), alice),
            stitched(25.0, json!({"customer": "bob", "contact_point": "help", "channel": "web"}), bob),
            stitched(
                60.0,
                json!({"customer": "bob", "device_id": "d-b", "contact_point": "checkout", "channel": "app",
                       "kind": "purchase", "value": 5}),
                bob,
            ),
        ];
        let forbidden: BTreeSet<&str> = ALICE.into_iter().chain(["d-new"]).collect();
        let everyone = || before.iter().chain(&after);
        let kept = |records: Vec<&Stitched>| -> Vec<FullEvent> {
            stitched_events(records).into_iter().filter(|e| e.customer != "alice").collect()
        };
        let events_before = stitched_events(&before);
        let events_in = stitched_events(everyone()).len();
        let suppressed = stitched_events(&after).iter().filter(|e| e.customer == "alice").count();
        assert_eq!((events_before.len(), events_in, suppressed), (10, 16, 4));

        // The oracle: before the erasure, right after it, and at the end (without alice's events).
        let expected_before = Expected::of(&events_before);
        let expected_erased = Expected::of(&kept(before.iter().collect()));
        let expected_after = Expected::of(&kept(everyone().collect()));
        assert_eq!(expected_before.watermark, stitched_watermark(&before));
        assert_eq!(expected_erased.watermark, stitched_watermark(&before));
        assert_eq!(expected_after.watermark, stitched_watermark(everyone()));
        let alice_journey = &expected_before.journeys["alice"];
        assert_eq!((alice_journey.events, alice_journey.conversions), (5, 1));
        let alice_segments = expected_before.memberships_of("alice");
        assert_eq!(alice_segments.len(), 3, "alice is in every segment before the erasure");
        assert!(!expected_erased.journeys.contains_key("alice"));
        assert_eq!(expected_after.journeys.keys().collect::<Vec<_>>(), ["bob", "v-1"]);
        let oracle_after: Vec<_> =
            stitched_events(everyone()).iter().filter(|e| e.customer != "alice").map(FullEvent::to_oracle).collect();
        assert_eq!(
            common::oracle(&oracle_after, Some(GAP_MS), PATH_LEN).0,
            expected_after.edges,
            "every session is over at the final watermark, as at the end of a run's input"
        );
        // The journey lines of a replay: the device-only visitor's say it is anonymous.
        let lines_of = |expected: &Expected| {
            let mut lines = expected.lines();
            lines.get_mut("v-1").expect("the visitor's journey")["anonymous"] = json!(true);
            lines
        };

        // Every /v1 route needs the token, DELETE too; an id no view knows is not found.
        use reqwest::Method;
        for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
            let status = server.status_with(Method::DELETE, "/v1/customers/d-a2", auth).await;
            assert_eq!(status, 401, "DELETE with {auth:?}");
        }
        let (status, answer) = delete_customer(&server, "nobody", Some(ACTOR)).await;
        assert_eq!(status, 404, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");

        let mut everything = server.subscribe_ws("").await;
        everything.wait_until("the snapshot message", |m, _| !m.is_empty()).await;
        let (status, _, answer) = server.post(ndjson(&before)).await;
        assert_eq!(
            (status, &answer),
            (200, &json!({"accepted": before.len(), "without_consent": 3, "rejected": []})),
            "records without consent are accepted and counted"
        );
        let time = server.settle(events_before.len()).await;
        everything.wait_progress(time).await;

        // Before the erasure: alice's identities are one profile, which every view holds.
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.journeys, lines_of(&expected_before), "the journeys before the erasure");
        assert_eq!(replayed.memberships, expected_before.memberships);
        let profiles = identity_profiles(&everything.messages, "ws");
        let profiles_of = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(identity, profile)| (identity.to_string(), profile.to_string())).collect()
        };
        let bob_profiles = profiles_of(&[("bob", "bob"), ("d-b", "bob")]);
        let mut stitched_profiles = profiles_of(&ALICE.map(|identity| (identity, "alice")));
        stitched_profiles.extend(bob_profiles.clone());
        assert_eq!(profiles, stitched_profiles, "the identity lines before the erasure");
        for id in ALICE {
            let answer = server.get_ok(&format!("/v1/customers/{id}")).await;
            assert_eq!(answer["journeys"][0]["events"], 5, "{id}: {answer}");
            if id != "alice" {
                assert_eq!((&answer["profile"], &answer["anonymous"]), (&json!("alice"), &json!(false)), "{answer}");
            }
        }
        // Records without consent count in no view: no journey, no lookup, nothing to erase.
        for id in ["carol", "d-c", "dave"] {
            assert_eq!(server.get(&format!("/v1/customers/{id}")).await.0, 404, "{id}");
        }
        let (status, answer) = delete_customer(&server, "carol", Some(ACTOR)).await;
        assert_eq!(status, 404, "carol has no view to be erased from: {answer}");
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_without_consent_total"], 3.0);
        assert_eq!(metrics["stepstone_erasures_total"], 0.0);

        // A subscriber of alice, whose snapshot holds her row.
        let mut alice_only = server.subscribe_ws("?customer=alice").await;
        alice_only.wait_progress(time).await;
        assert!(replay(&alice_only.messages, "alice").journeys.contains_key("alice"));

        // Erasing one of her devices erases the whole person.
        let (status, answer) = delete_customer(&server, "d-a2", Some(ACTOR)).await;
        assert_eq!(status, 200, "{answer}");
        let erased_at = answer["time"].as_u64().unwrap_or_else(|| panic!("a logical time: {answer}"));
        assert!(erased_at > time, "the erasure has a logical time of its own: {answer} after {time}");
        assert_eq!(answer, json!({"erased": "d-a2", "time": erased_at, "identities": 4, "events": 5, "links": 3}));
        // It is applied when answered.
        for id in ALICE {
            let (status, answer) = server.get(&format!("/v1/customers/{id}")).await;
            assert_eq!(status, 404, "{id} right after the erasure: {answer}");
        }
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_erasures_total"], 1.0);
        assert_eq!(metrics["stepstone_events_erased_total"], 5.0);

        // At the erasure's time, subscribers see her row, memberships and identities leave.
        everything.wait_progress(erased_at).await;
        alice_only.wait_progress(erased_at).await;
        let mut gone = vec![];
        let mut row = expected_before.line("alice");
        row["time"] = json!(erased_at);
        row["diff"] = json!(-1);
        gone.push(row);
        for (segment, _) in &alice_segments {
            gone.push(json!({"time": erased_at, "type": "segment", "segment": segment, "customer": "alice",
                             "journey_key": null, "diff": -1}));
        }
        for id in ALICE {
            gone.push(json!({"time": erased_at, "type": "identity", "identity": id, "device": id.starts_with("d-"),
                             "profile": "alice", "anonymous": false, "diff": -1}));
        }
        gone.sort_by_key(|m| (m["type"].to_string(), m["segment"].to_string(), m["identity"].to_string()));
        assert_eq!(lines_at(&everything.messages, erased_at), gone, "ws: the lines of the erasure's time");
        assert_eq!(lines_at(&alice_only.messages, erased_at), gone, "alice: the lines of the erasure's time");
        let time = server.settle(events_before.len()).await;
        everything.wait_progress(time).await;
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.journeys, lines_of(&expected_erased), "the journeys after the erasure");
        assert_eq!(replayed.memberships, expected_erased.memberships);
        assert_eq!(identity_profiles(&everything.messages, "ws"), bob_profiles);
        let segments = server.get_ok("/v1/segments").await;
        assert_eq!(segments, json!({"time": time, "segments": expected_erased.segment_rows()}));
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected_erased.transition_rows(None)}),
            "the transitions after the erasure: a recomputation without her events"
        );
        // Nothing is left to erase.
        for id in ["d-a2", "alice", "alice-work"] {
            let (status, answer) = delete_customer(&server, id, Some(ACTOR)).await;
            assert_eq!(status, 404, "a second erasure of {id}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }

        // Later events of her identities are dropped (and their links); bob's count.
        let (status, _, answer) = server.post(ndjson(&after)).await;
        assert_eq!((status, &answer), (200, &json!({"accepted": after.len(), "rejected": []})));
        let time = server.settle(events_in).await;
        everything.wait_progress(time).await;
        alice_only.wait_progress(time).await;
        let metrics = server.metrics().await;
        assert_eq!(metrics["stepstone_events_suppressed_total"], suppressed as f64);
        assert_eq!(metrics["stepstone_erasures_total"], 1.0);
        assert_eq!(metrics["stepstone_events_erased_total"], 5.0);
        assert_eq!(metrics["stepstone_events_without_consent_total"], 3.0);
        for subscriber in [&everything, &alice_only] {
            for line in subscriber.messages.iter().filter(|m| m["time"].as_u64().is_some_and(|t| t > erased_at)) {
                if line["type"] == "progress" {
                    continue;
                }
                for field in ["customer", "identity", "profile"] {
                    let name = line[field].as_str().unwrap_or_default();
                    let who = &subscriber.name;
                    assert!(!forbidden.contains(name), "{who}: a line after the erasure names {name}: {line}");
                }
            }
        }
        let until_erased = |m: &Value| m["time"].as_u64().is_some_and(|t| t <= erased_at);
        assert!(
            alice_only.messages.iter().all(|m| m["type"] == "progress" || until_erased(m)),
            "alice's subscriber gets nothing but progress after the erasure: {:?}",
            alice_only.messages
        );
        let replayed = replay(&without_identity_lines(&everything.messages), "ws");
        assert_eq!(replayed.progress.last(), Some(&time));
        assert_eq!(replayed.journeys, lines_of(&expected_after), "the journeys at the end");
        assert_eq!(replayed.memberships, expected_after.memberships);
        assert_eq!(identity_profiles(&everything.messages, "ws"), bob_profiles, "no link of hers came back");
        let replayed = replay(&without_identity_lines(&alice_only.messages), "alice");
        assert!(replayed.journeys.is_empty() && replayed.memberships.is_empty(), "{replayed:?}");
        for id in &forbidden {
            let (status, answer) = server.get(&format!("/v1/customers/{id}")).await;
            assert_eq!(status, 404, "{id} after her later events: {answer}");
        }
        for id in ["bob", "d-b"] {
            let answer = server.get_ok(&format!("/v1/customers/{id}")).await;
            let mut row = expected_after.line("bob");
            row.as_object_mut().unwrap().remove("type");
            row["segments"] = json!(segments_of(&expected_after.journeys["bob"]));
            let mut want = json!({"time": time, "customer": id, "journeys": [row]});
            if id == "d-b" {
                want["profile"] = json!("bob");
                want["anonymous"] = json!(false);
            }
            assert_eq!(answer, want, "{id}");
        }
        let segments = server.get_ok("/v1/segments").await;
        assert_eq!(segments, json!({"time": time, "segments": expected_after.segment_rows()}));
        assert_eq!(
            server.get_ok("/v1/transitions").await,
            json!({"time": time, "from": null, "transitions": expected_after.transition_rows(None)})
        );

        // The final snapshot: a recomputation without her events.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.log());
        check_snapshot_files(&server.out, &expected_after, time);

        // The erasure log: one line, who asked and how much, and none of her ids.
        let log = std::fs::read_to_string(server.out.join("erasures.jsonl")).expect("erasures.jsonl");
        assert_eq!(log.lines().count(), 1, "one line per erasure, none for the ids not found: {log}");
        let entry: Value = serde_json::from_str(log.lines().next().unwrap()).expect("a JSON line");
        let fields: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(["at", "by", "logical_time", "identities", "events", "links"]), "{entry}");
        assert_eq!(
            (&entry["by"], &entry["logical_time"], &entry["identities"], &entry["events"], &entry["links"]),
            (&json!(ACTOR), &json!(erased_at), &json!(4), &json!(5), &json!(3)),
            "{entry}"
        );
        let logged_at = DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).expect("an RFC 3339 time");
        assert!((chrono::Utc::now() - logged_at.to_utc()).num_seconds().abs() < 300, "{entry}");
        for id in &forbidden {
            assert!(!log.contains(id), "the erasure log names {id}: {log}");
        }

        // The same as a batch run of the records without any of hers (consent flags included).
        let dir = tempfile::tempdir().expect("a temporary directory");
        let records: Vec<&Stitched> =
            everyone().filter(|r| named_identities(r).iter().all(|id| !forbidden.contains(id))).collect();
        assert_eq!(records.len(), before.len() + after.len() - 10);
        let input = dir.path().join("events.jsonl");
        std::fs::write(&input, records.iter().map(|r| r.json.to_string() + "\n").collect::<String>()).unwrap();
        let config_path = dir.path().join("stepstone.toml");
        std::fs::write(&config_path, &config).unwrap();
        let out = dir.path().join("run");
        common::stepstone_ok(&[
            "run",
            "-q",
            "--config",
            config_path.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary.json")).unwrap();
        assert_eq!((&summary["events"], &summary["without_consent"]), (&json!(7), &json!(3)), "{summary}");
        let columns = |batch: &arrow::array::RecordBatch| -> BTreeMap<String, Value> {
            let customers = common::strings(batch, "customer");
            let anonymous = common::bools(batch, "anonymous");
            let value = common::floats(batch, "value");
            let channels = common::string_lists(batch, "channels");
            let session_events = common::ints(batch, "session_events");
            let last_conversion = common::times(batch, "last_conversion_time");
            (0..batch.num_rows())
                .map(|i| {
                    let row = json!([anonymous[i], value[i], channels[i], session_events[i], last_conversion[i]]);
                    (customers[i].clone(), row)
                })
                .collect()
        };
        let (served, ran) = (read_table(&server.out, "journeys"), read_table(&out, "journeys"));
        assert_eq!(common::journeys(&served), common::journeys(&ran), "journeys: serve and run");
        assert_eq!(columns(&served), columns(&ran), "journeys: serve and run");
        assert_eq!(columns(&served)["v-1"][0], json!(true), "the visitor is anonymous");
        assert_eq!(
            common::edges(&read_table(&server.out, "transitions")),
            common::edges(&read_table(&out, "transitions")),
            "transitions: serve and run"
        );
        let segments = |dir: &Path| {
            let batch = read_table(dir, "segments");
            common::strings(&batch, "segment").into_iter().zip(common::ints(&batch, "members")).collect::<Vec<_>>()
        };
        assert_eq!(segments(&server.out), segments(&out), "segments: serve and run");
    })
    .await;
}
