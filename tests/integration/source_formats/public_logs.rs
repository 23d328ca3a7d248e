//! The public event logs of the shared data (`$STEPSTONE_SHARED_DATA`, or else `../shared/data`
//! beside the checkout): a line of the running example, and every log decoding completely.
//! Skipped with a note when the logs are absent.

use std::collections::HashSet;

use stepstone::source::{DecodeOptions, Mapping, Record};
use tempfile::TempDir;

use crate::common;

use super::*;

/// The first lines of the public running example, mapped the way a process-mining export needs.
#[test]
fn real_log_csv_line() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "running.csv",
        b",concept:name,org:resource,time:timestamp,Activity,Resource,Costs,case:concept:name,case:creator\n\
          0,register request,Pete,2010-12-30 14:32:00+01:00,register request,Pete,50,3,Fluxicon Nitro\n\
          1,examine casually,Mike,2010-12-30 15:06:00+01:00,examine casually,Mike,400,3,Fluxicon Nitro\n",
    );
    let options = DecodeOptions {
        mapping: Mapping::parse(
            "customer=case:concept:name,time=time:timestamp,contact_point=concept:name,channel=org:resource,value=Costs",
        )
        .unwrap(),
        ..DecodeOptions::default()
    };
    let got = records(&path, &options);
    assert_eq!(
        got[0],
        Record {
            customer: "3".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_715_920_000,
            contact_point: "register request".into(),
            channel: Some("Pete".into()),
            kind: None,
            session: None,
            converting: false,
            value: 50_000_000,
        }
    );
    assert_eq!(
        (got[1].time, got[1].contact_point.as_str(), got[1].value),
        (1_293_717_960_000, "examine casually", 400_000_000)
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn public_event_logs_decode_completely() {
    let Some(dir) = common::eventlogs() else {
        println!("note: no eventlogs/ in the shared data ($STEPSTONE_SHARED_DATA or ../shared/data); skipped");
        return;
    };
    let xes = "customer=case:concept:name,time=time:timestamp,contact_point=concept:name";
    for (file, extra, events, cases) in [
        ("running-example.csv", "", 42, 6),
        ("receipt.csv", ",channel=case:channel", 8_577, 1_434),
        ("helpdesk.csv.gz", "", 21_348, 4_580),
        ("bpic2012.csv.gz", "", 262_200, 13_087),
    ] {
        let path = dir.join(file);
        let options =
            DecodeOptions { mapping: Mapping::parse(&format!("{xes}{extra}")).unwrap(), ..DecodeOptions::default() };
        let (records, rejections) = decode(&path, None, &options);
        assert!(rejections.is_empty(), "{file}: {:#?}", &rejections[..rejections.len().min(5)]);
        assert_eq!(records.len(), events, "{file}");
        let customers: HashSet<&str> = records.iter().map(|r| r.customer.as_str()).collect();
        assert_eq!(customers.len(), cases, "{file}");
        if !extra.is_empty() {
            assert!(records.iter().all(|r| r.channel.is_some()), "{file}: a record without channel");
        }
        // All four logs were recorded between 2010 and 2014.
        let (first, last) = (1_262_304_000_000, 1_420_070_400_000);
        assert!(records.iter().all(|r| (first..last).contains(&r.time)), "{file}");
    }
}
