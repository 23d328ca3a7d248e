//! Every accepted time form (in auto mode and with an explicit format) and value form.

use stepstone::source::{DecodeOptions, TimeFormat, open};
use tempfile::TempDir;

use super::*;

/// Decodes one time cell per JSON line (the cell given as raw JSON) with `format`: `Ok(ms)` or
/// the rejection reason.
fn decode_times(cells: &[&str], format: TimeFormat) -> Vec<Result<i64, String>> {
    let dir = TempDir::new().unwrap();
    let lines: String =
        cells.iter().map(|cell| format!("{{\"customer\":\"c\",\"contact_point\":\"p\",\"time\":{cell}}}\n")).collect();
    let path = write(&dir, "times.jsonl", lines.as_bytes());
    let options = DecodeOptions { time_format: format, ..DecodeOptions::default() };
    open(path_str(&path), None, &options)
        .unwrap()
        .map(|item| item.map(|record| record.time).map_err(|rejection| rejection.reason))
        .collect()
}

fn assert_times(format: TimeFormat, cases: &[(&str, Option<i64>)]) {
    let cells: Vec<&str> = cases.iter().map(|(cell, _)| *cell).collect();
    let decoded = decode_times(&cells, format);
    assert_eq!(decoded.len(), cases.len());
    for ((cell, expected), got) in cases.iter().zip(decoded) {
        match (expected, got) {
            (Some(ms), Ok(got)) => assert_eq!(got, *ms, "{format:?} {cell}"),
            (None, Err(reason)) => assert!(
                reason.starts_with("time: cannot parse") || reason.contains("outside the years"),
                "{format:?} {cell}: {reason}"
            ),
            (expected, got) => panic!("{format:?} {cell}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn time_forms_in_auto_mode() {
    let nine = 1_709_283_600_000;
    assert_times(
        TimeFormat::Auto,
        &[
            (r#""2024-03-01T09:00:00Z""#, Some(nine)),
            (r#""2024-03-01t09:00:00z""#, Some(nine)),
            (r#""2024-03-01T09:00:00.25Z""#, Some(nine + 250)),
            (r#""2024-03-01T09:00:00.123456Z""#, Some(nine + 123)),
            (r#""2024-03-01T11:00:00+02:00""#, Some(nine)),
            (r#""2024-03-01 09:00:00""#, Some(nine)),
            (r#""2024-03-01 09:00:00.5""#, Some(nine + 500)),
            (r#""2024-03-01 09:00:00.999999""#, Some(nine + 999)),
            (r#""2024-03-01 04:30:00-04:30""#, Some(nine)),
            (r#""2024-03-01 14:30:00.000001+05:30""#, Some(nine)),
            (r#""2024-03-01 10:00:00+0100""#, Some(nine)),
            (r#""2024-03-01 00:00:00-09""#, Some(nine)),
            (r#""2024-03-01 09:00""#, Some(nine)),
            (r#""2024-03-01""#, Some(nine - 9 * 3_600_000)),
            (r#"" 2024-03-01T09:00:00Z ""#, Some(nine)),
            (r#""2010-12-30 14:32:00+01:00""#, Some(1_293_715_920_000)),
            (r#""2011-10-11 13:45:40.276000+02:00""#, Some(1_318_333_540_276)),
            (r#""1969-12-31T23:59:59.999Z""#, Some(-1)),
            (r#""2024-02-29 12:00:00""#, Some(1_709_208_000_000)),
            // Numbers below 1e11 are seconds, others milliseconds, as JSON numbers or strings.
            ("1709283600", Some(nine)),
            ("1709283600000", Some(nine)),
            (r#""1709283600""#, Some(nine)),
            (r#""1709283600000""#, Some(nine)),
            ("1709283600.25", Some(nine + 250)),
            (r#""1709283600.25""#, Some(nine + 250)),
            ("1709283600000.75", Some(nine)),
            ("99999999999", Some(99_999_999_999_000)),
            ("100000000000", Some(100_000_000_000)),
            ("0", Some(0)),
            ("-86400", Some(-86_400_000)),
            // Decimal fractions that f64 cannot hold exactly keep their millisecond.
            ("1076801537.222", Some(1_076_801_537_222)),
            (r#""1076801537.222""#, Some(1_076_801_537_222)),
            ("269154683.951", Some(269_154_683_951)),
            (r#""2024-13-01 09:00:00""#, None),
            (r#""2023-02-29 09:00:00""#, None),
            (r#""2024-03-01 24:00:00""#, None),
            (r#""2024-03-01 09:60:00""#, None),
            (r#""2024-03-01 09:00:00+25:00""#, None),
            (r#""2024-03-01 09:00:00 UTC""#, Some(1_709_283_600_000)),
            (r#""2024-03-01 10:00:00 +01:00""#, Some(1_709_283_600_000)),
            (r#""2024-03-01 09:00:00 CET""#, None),
            (r#""01/03/2024 09:00""#, None),
            (r#""yesterday""#, None),
            (r#""NaN""#, None),
            ("18446744073709551615", None),
        ],
    );
}

#[test]
fn time_forms_with_an_explicit_format() {
    let nine = 1_709_283_600_000;
    assert_times(
        TimeFormat::Rfc3339,
        &[
            (r#""2024-03-01T09:00:00Z""#, Some(nine)),
            (r#""2024-03-01 10:00:00.250+01:00""#, Some(nine + 250)),
            ("1709283600", None),
            (r#""1709283600""#, None),
        ],
    );
    assert_times(
        TimeFormat::EpochS,
        &[
            ("1709283600", Some(nine)),
            (r#""1709283600""#, Some(nine)),
            ("1709283600.5", Some(nine + 500)),
            ("1076801537.222", Some(1_076_801_537_222)),
            // 1.7e12 s is in the year ~56000: outside the accepted years 0000 to 9999.
            ("1709283600000", None),
            ("253402300799", Some(253_402_300_799_000)),
            ("12", Some(12_000)),
            (r#""2024-03-01T09:00:00Z""#, None),
            ("9223372036854775807", None),
        ],
    );
    assert_times(
        TimeFormat::EpochMs,
        &[
            ("1709283600000", Some(nine)),
            (r#""1709283600000""#, Some(nine)),
            ("1709283600", Some(1_709_283_600)),
            ("1709283600000.9", Some(nine)),
            ("-0.5", Some(-1)),
            (r#""2024-03-01T09:00:00Z""#, None),
        ],
    );
    for (text, format) in [
        ("auto", TimeFormat::Auto),
        ("RFC3339", TimeFormat::Rfc3339),
        (" epoch_s", TimeFormat::EpochS),
        ("epoch_ms", TimeFormat::EpochMs),
    ] {
        assert_eq!(text.parse::<TimeFormat>(), Ok(format));
    }
    assert!("epoch_us".parse::<TimeFormat>().is_err());
    assert_eq!(TimeFormat::default(), TimeFormat::Auto);
}

#[test]
fn value_forms() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (r#"3"#, 3_000_000),
        (r#"19.99"#, 19_990_000),
        (r#"-2.5"#, -2_500_000),
        (r#"1e3"#, 1_000_000_000),
        (r#"0.0000005"#, 1),
        (r#""42""#, 42_000_000),
        (r#"" 7.25 ""#, 7_250_000),
        (r#""-0.1""#, -100_000),
        (r#""""#, 0),
        (r#"null"#, 0),
    ];
    let mut lines: String = cases
        .iter()
        .map(|(cell, _)| format!("{{\"customer\":\"c\",\"time\":0,\"contact_point\":\"p\",\"value\":{cell}}}\n"))
        .collect();
    lines.push_str("{\"customer\":\"c\",\"time\":0,\"contact_point\":\"p\"}\n");
    let jsonl = write(&dir, "values.jsonl", lines.as_bytes());
    let expected: Vec<i64> = cases.iter().map(|(_, micros)| *micros).chain([0]).collect();
    let got: Vec<i64> = records(&jsonl, &DecodeOptions::default()).iter().map(|r| r.value).collect();
    assert_eq!(got, expected);

    let csv = write(
        &dir,
        "values.csv",
        b"customer,time,contact_point,value\nc,0,p,12\nc,0,p,0.1\nc,0,p,\nc,0,p,-3\nc,0,p,\" 4.5 \"\n",
    );
    let got: Vec<i64> = records(&csv, &DecodeOptions::default()).iter().map(|r| r.value).collect();
    assert_eq!(got, [12_000_000, 100_000, 0, -3_000_000, 4_500_000]);
}
