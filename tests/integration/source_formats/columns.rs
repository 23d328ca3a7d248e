//! Columns and fields: mappings with `:` and spaces, missing optional and required columns,
//! numeric ids kept as text, the journey key column and the conversion rules.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use stepstone::source::{Conversion, DecodeOptions, Mapping, Record};
use tempfile::TempDir;

use super::*;

/// Column names with `:` and spaces, in every format that has columns.
#[test]
fn mapping_accepts_columns_with_colons_and_spaces() {
    let mapping = Mapping::parse(
        "customer=case:concept:name, time = time:timestamp,contact_point=concept:name,\
         channel=org:resource,kind=Event Type,value=order total,session=session id",
    )
    .unwrap();
    let options = DecodeOptions { mapping, ..DecodeOptions::default() };
    let expected = vec![
        Record {
            customer: "case 7".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_715_920_000,
            contact_point: "register request".into(),
            channel: Some("Pete".into()),
            kind: Some("start".into()),
            session: Some("a b".into()),
            converting: false,
            value: 50_000_000,
        },
        Record {
            customer: "case 7".into(),
            anonymous: false,
            consent: true,
            link: None,
            interaction: true,
            journey_key: None,
            time: 1_293_717_960_000,
            contact_point: "examine casually".into(),
            channel: None,
            kind: None,
            session: None,
            converting: false,
            value: 0,
        },
    ];
    let dir = TempDir::new().unwrap();
    let jsonl = concat!(
        r#"{"case:concept:name":"case 7","time:timestamp":"2010-12-30 14:32:00+01:00","concept:name":"register request","org:resource":"Pete","Event Type":"start","order total":50,"session id":"a b"}"#,
        "\n",
        r#"{"concept:name":"examine casually","time:timestamp":"2010-12-30 15:06:00+01:00","case:concept:name":"case 7"}"#,
        "\n",
    );
    let csv = "session id,concept:name,time:timestamp,case:concept:name,org:resource,Event Type,order total\n\
               a b,register request,2010-12-30 14:32:00+01:00,case 7,Pete,start,50\n\
               ,examine casually,2010-12-30 15:06:00+01:00,case 7,,,\n";
    let batch = RecordBatch::try_from_iter([
        ("case:concept:name", Arc::new(StringArray::from(vec!["case 7", "case 7"])) as ArrayRef),
        ("time:timestamp", Arc::new(StringArray::from(vec!["2010-12-30T13:32:00Z", "2010-12-30T14:06:00Z"]))),
        ("concept:name", Arc::new(StringArray::from(vec!["register request", "examine casually"]))),
        ("org:resource", Arc::new(StringArray::from(vec![Some("Pete"), None]))),
        ("Event Type", Arc::new(StringArray::from(vec![Some("start"), None]))),
        ("order total", Arc::new(Int64Array::from(vec![Some(50), None]))),
        ("session id", Arc::new(StringArray::from(vec![Some("a b"), None]))),
    ])
    .unwrap();
    let parquet = dir.path().join("log.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    for path in [
        write(&dir, "log.jsonl", jsonl.as_bytes()),
        write(&dir, "log.csv", csv.as_bytes()),
        write(&dir, "log.arrow", &arrow_file_bytes(&[batch])),
        parquet,
    ] {
        assert_eq!(records(&path, &options), expected, "{}", path.display());
    }
}

#[test]
fn missing_optional_columns_are_fine() {
    let dir = TempDir::new().unwrap();
    let csv = write(&dir, "minimal.csv", b"customer,time,contact_point\nann,2024-03-01T09:00:00Z,home\n");
    let jsonl =
        write(&dir, "minimal.jsonl", br#"{"customer":"ann","time":"2024-03-01T09:00:00Z","contact_point":"home"}"#);
    let batch = RecordBatch::try_from_iter([
        ("customer", Arc::new(StringArray::from(vec!["ann"])) as ArrayRef),
        ("time", Arc::new(StringArray::from(vec!["2024-03-01T09:00:00Z"]))),
        ("contact_point", Arc::new(StringArray::from(vec!["home"]))),
    ])
    .unwrap();
    let parquet = dir.path().join("minimal.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    let arrow = write(&dir, "minimal.arrows", &arrow_stream_bytes(&[batch]));
    let options = DecodeOptions {
        journey_key: Some("order_id".into()),
        conversion: Some(Conversion::parse("kind=purchase").unwrap()),
        ..DecodeOptions::default()
    };
    let expected = vec![Record {
        customer: "ann".into(),
        anonymous: false,
        consent: true,
        link: None,
        interaction: true,
        journey_key: None,
        time: 1_709_283_600_000,
        contact_point: "home".into(),
        channel: None,
        kind: None,
        session: None,
        converting: false,
        value: 0,
    }];
    for path in [csv, jsonl, parquet, arrow] {
        assert_eq!(records(&path, &options), expected, "{}", path.display());
    }
}

#[test]
fn missing_required_column_is_an_open_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let options = DecodeOptions {
        mapping: Mapping::parse("customer=case:concept:name,time=time:timestamp,contact_point=concept:name").unwrap(),
        ..DecodeOptions::default()
    };
    let no_time = write(&dir, "no_time.csv", b"case:concept:name,concept:name,timestamp\n1,register,2024-03-01\n");
    let no_time_gz =
        write(&dir, "no_time.csv.gz", &gzip(b"case:concept:name,concept:name,timestamp\n1,register,2024-03-01\n"));
    let batch = RecordBatch::try_from_iter([
        ("case:concept:name", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("time:timestamp", Arc::new(StringArray::from(vec!["2024-03-01"]))),
        ("activity", Arc::new(StringArray::from(vec!["register"]))),
    ])
    .unwrap();
    let no_activity_parquet = dir.path().join("no_activity.parquet");
    write_parquet(&no_activity_parquet, std::slice::from_ref(&batch));
    let no_activity_arrow = write(&dir, "no_activity.arrow", &arrow_file_bytes(&[batch]));
    for (path, column) in [
        (no_time, "time:timestamp"),
        (no_time_gz, "time:timestamp"),
        (no_activity_parquet, "concept:name"),
        (no_activity_arrow, "concept:name"),
    ] {
        let error = open_error(&path, &options);
        assert!(error.contains(&format!("{column:?}")), "{}: {error}", path.display());
    }
    let empty = write(&dir, "empty.csv", b"");
    assert!(open_error(&empty, &DecodeOptions::default()).contains("\"customer\""));
}

/// Ids and other text fields given as numbers keep their text form.
#[test]
fn numeric_ids_become_text() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "ids.jsonl",
        b"{\"customer\":173688,\"time\":0,\"contact_point\":7,\"session\":2.5,\"channel\":-1}\n\
          {\"customer\":173688.0,\"time\":0,\"contact_point\":\"p\",\"session\":18446744073709551615}\n",
    );
    let got = records(&path, &DecodeOptions::default());
    assert_eq!(
        got.iter()
            .map(|r| (r.customer.as_str(), r.contact_point.as_str(), r.session.as_deref(), r.channel.as_deref()))
            .collect::<Vec<_>>(),
        [("173688", "7", Some("2.5"), Some("-1")), ("173688", "p", Some("18446744073709551615"), None)]
    );
}

#[test]
fn journey_key_column_fills_the_record() {
    let dir = TempDir::new().unwrap();
    let jsonl = write(
        &dir,
        "orders.jsonl",
        b"{\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":\"o-1\"}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":1002}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\"}\n\
          {\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"order id\":\"\"}\n",
    );
    let csv =
        write(&dir, "orders.csv", b"customer,time,contact_point,order id\na,0,p,o-1\na,0,p,1002\na,0,p,\na,0,p,\n");
    let batch = RecordBatch::try_from_iter([
        ("customer", Arc::new(StringArray::from(vec!["a"; 4])) as ArrayRef),
        ("time", Arc::new(Int64Array::from(vec![0; 4]))),
        ("contact_point", Arc::new(StringArray::from(vec!["p"; 4]))),
        ("order id", Arc::new(StringArray::from(vec![Some("o-1"), Some("1002"), None, Some("")]))),
    ])
    .unwrap();
    let parquet = dir.path().join("orders.parquet");
    write_parquet(&parquet, std::slice::from_ref(&batch));
    let arrow = write(&dir, "orders.arrow", &arrow_file_bytes(&[batch]));
    let options = DecodeOptions { journey_key: Some("order id".into()), ..DecodeOptions::default() };
    for path in [jsonl, csv, parquet, arrow] {
        let keys: Vec<Option<String>> = records(&path, &options).into_iter().map(|r| r.journey_key).collect();
        assert_eq!(keys, [Some("o-1".into()), Some("1002".into()), None, None], "{}", path.display());
    }

    // The journey key may share its column with a field.
    let path =
        write(&dir, "shared.jsonl", b"{\"customer\":\"a\",\"time\":0,\"contact_point\":\"p\",\"session\":\"s1\"}\n");
    let options = DecodeOptions { journey_key: Some("session".into()), ..DecodeOptions::default() };
    let got = records(&path, &options);
    assert_eq!((got[0].journey_key.as_deref(), got[0].session.as_deref()), (Some("s1"), Some("s1")));
}

#[test]
fn conversion_by_kind_and_by_contact_point() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "conversions.csv",
        b"customer,time,contact_point,kind\n\
          a,0,home,view\n\
          a,1,checkout,purchase\n\
          a,2,welcome,signup\n\
          a,3,payment_done,\n\
          a,4,payment_done,Purchase\n\
          a,5,purchase,refund\n",
    );
    let converting = |conversion: Option<&str>| -> Vec<bool> {
        let options =
            DecodeOptions { conversion: conversion.map(|c| Conversion::parse(c).unwrap()), ..DecodeOptions::default() };
        records(&path, &options).iter().map(|r| r.converting).collect()
    };
    assert_eq!(converting(Some("kind=purchase|signup")), [false, true, true, false, false, false]);
    assert_eq!(converting(Some("contact_point=payment_done")), [false, false, false, true, true, false]);
    assert_eq!(converting(None), [false; 6]);
}
