//! The serve test of Arrow Flight: pyarrow's client (`tests/serve_flight.py`) lists, describes
//! and reads the three tables, which match the oracle and the final snapshot files; calls
//! without the token are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;
use crate::common::read_table;
use crate::common::server::{Server, WAIT, bounded};

use super::TOKEN;
use super::expected::*;
use super::feed::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_flight_serves_the_tables_to_pyarrow() {
    bounded(async {
        let python_ok = Command::new("python3")
            .args(["-c", "import pyarrow.flight"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !python_ok {
            eprintln!("note: python3 with pyarrow.flight is not available; skipping the Arrow Flight check");
            return;
        }
        let mut server = Server::start(&format!("{CONFIG}{SEGMENTS}"), Some(TOKEN));
        let requests = feed();
        let events = accepted_events(&requests);
        let expected = Expected::of(&events);
        post_feed(&server, &requests).await;
        let time = server.settle(events.len()).await;

        let script = common::root().join("tests/serve_flight.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(format!("grpc://{}", server.flight))
            .arg(TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running python3");
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not finish within {WAIT:?}", script.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} failed:\n{}\n{stdout}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let flight: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("JSON from the script ({e}): {stdout}"));

        // ListFlights: the three tables, their tickets and row counts.
        let segment_rows = expected.segment_rows();
        let counts = [
            ("journeys", expected.journeys.len()),
            ("transitions", expected.edges.len()),
            ("segments", segment_rows.len()),
        ];
        let want: Vec<Value> =
            counts.iter().map(|(name, rows)| json!({"path": [name], "tickets": [name], "records": rows})).collect();
        assert_eq!(flight["flights"], json!(want), "ListFlights");
        // Calls without the token (or with a wrong one) are refused as unauthenticated.
        assert_eq!(flight["without_token"], json!({"list_flights": "unauthenticated", "do_get": "unauthenticated"}));
        assert_eq!(flight["wrong_token"], json!({"list_flights": "unauthenticated", "do_get": "unauthenticated"}));
        // GetFlightInfo and GetSchema describe the tables DoGet streams; an unknown ticket fails.
        assert_eq!(flight["flight_info"]["records"], expected.journeys.len());
        assert_eq!(flight["flight_info"]["columns"], flight["tables"]["journeys"]["columns"]);
        assert_eq!(
            flight["segments_schema"],
            json!(["segment", "members", "value", "converted_members", "conversion_rate"])
        );
        assert_eq!(flight["unknown_ticket"], "ArrowKeyError", "gRPC NOT_FOUND for an unknown ticket");

        // DoGet: each table at the final logical time, matching the oracle.
        let tables = &flight["tables"];
        for (name, rows) in counts {
            assert_eq!(tables[name]["rows"], rows, "{name} rows");
            assert_eq!(tables[name]["logical_time"], time.to_string(), "{name}'s logical time");
        }
        let journeys = &tables["journeys"]["data"];
        let customers: Vec<&str> =
            journeys["customer"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(
            customers.iter().copied().collect::<BTreeSet<_>>(),
            expected.journeys.keys().map(String::as_str).collect()
        );
        for (i, customer) in customers.iter().enumerate() {
            let j = &expected.journeys[*customer];
            let column = |name: &str| journeys[name][i].clone();
            let got = json!({
                "first_time": column("first_time"), "last_time": column("last_time"), "events": column("events"),
                "sessions": column("sessions"), "session_start": column("session_start"),
                "session_events": column("session_events"), "path": column("path"), "channels": column("channels"),
                "converted": column("converted"), "conversions": column("conversions"),
                "last_conversion_time": column("last_conversion_time"), "value": column("value"),
                "last_contact_point": column("last_contact_point"),
                "session_duration_ms": column("session_duration_ms"),
            });
            let want = json!({
                "first_time": j.first_time, "last_time": j.last_time, "events": j.events, "sessions": j.sessions,
                "session_start": j.session_start, "session_events": j.session_events, "path": j.path,
                "channels": j.channel_events.keys().collect::<Vec<_>>(), "converted": j.converted(),
                "conversions": j.conversions, "last_conversion_time": j.last_conversion_time, "value": j.value(),
                "last_contact_point": j.path.last(), "session_duration_ms": j.last_time - j.session_start,
            });
            assert_eq!(got, want, "Flight journeys: {customer}");
            let channel_events: BTreeMap<String, i64> = journeys["channel_events"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["channel"].as_str().unwrap().to_owned(), e["events"].as_i64().unwrap()))
                .collect();
            assert_eq!(channel_events, j.channel_events, "Flight journeys: {customer}'s channel events");
        }
        let transitions = &tables["transitions"]["data"];
        let n = transitions["from"].as_array().unwrap().len();
        let mut got: Vec<Value> = (0..n)
            .map(|i| {
                let column = |name: &str| transitions[name][i].clone();
                json!({
                    "from": column("from"), "to": column("to"), "count": column("count"),
                    "dwell_ms_total": column("dwell_ms_total"), "dwell_ms_mean": column("dwell_ms_mean"),
                    "probability": column("probability"),
                })
            })
            .collect();
        got.sort_by_key(|row| (row["from"].as_str().unwrap().to_owned(), row["to"].as_str().unwrap().to_owned()));
        assert_eq!(got, expected.transition_rows(None), "Flight transitions");
        let segments = &tables["segments"]["data"];
        let n = segments["segment"].as_array().unwrap().len();
        let mut got: Vec<Value> = (0..n)
            .map(|i| {
                let column = |name: &str| segments[name][i].clone();
                json!({
                    "segment": column("segment"), "members": column("members"), "value": column("value"),
                    "converted_members": column("converted_members"), "conversion_rate": column("conversion_rate"),
                })
            })
            .collect();
        got.sort_by_key(|row| row["segment"].as_str().unwrap().to_owned());
        assert_eq!(got, segment_rows, "Flight segments");

        // The final snapshot files agree with Flight (and the oracle) at the same time.
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}");
        check_snapshot_files(&server.out, &expected, time);
        for (name, rows) in counts {
            assert_eq!(read_table(&server.out, name).num_rows(), rows, "{name}.arrow rows");
        }
        let journeys_file = read_table(&server.out, "journeys");
        let file_columns: Vec<String> = journeys_file.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(
            tables["journeys"]["columns"],
            json!(file_columns),
            "Flight and the snapshot file have the same columns"
        );
    })
    .await;
}
