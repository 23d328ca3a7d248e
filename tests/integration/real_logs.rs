//! End-to-end checks on real public event logs nobody on the team wrote (the shared data
//! directory: `$STEPSTONE_SHARED_DATA`, or else `../shared/data` beside the checkout):
//! the transition graph with `--session-gap none` must be the published directly-follows graph
//! of the running example, and on the larger logs Stepstone's graph and journeys must equal an
//! independent sequential recomputation, with and without session splits and conversions, on
//! one and two workers and in many small epochs. Skipped with a note when the logs are absent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::common;
use crate::common::{OracleEvent, eventlogs, oracle, read_table, stepstone_ok};

const MAPPING: &str = "customer=case:concept:name,time=time:timestamp,contact_point=concept:name";

/// Reads a process-mining CSV export (plain or gzip) as oracle events, in file order.
fn read_log(path: &Path, converting: impl Fn(&str) -> bool) -> Vec<OracleEvent> {
    let file = std::fs::File::open(path).expect("opening the log");
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let headers = csv.headers().expect("a header").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect("column present");
    let (case, time, activity) = (column("case:concept:name"), column("time:timestamp"), column("concept:name"));
    csv.records()
        .enumerate()
        .map(|(row, record)| {
            let record = record.expect("a CSV record");
            let time = chrono::DateTime::parse_from_str(&record[time], "%Y-%m-%d %H:%M:%S%.f%:z")
                .unwrap_or_else(|e| panic!("time {:?}: {e}", &record[time]))
                .timestamp_millis();
            OracleEvent {
                customer: record[case].to_owned(),
                time,
                row,
                contact_point: record[activity].to_owned(),
                converting: converting(&record[activity]),
            }
        })
        .collect()
}

/// Runs stepstone on `log` with `extra` flags into a temporary directory.
fn run(log: &Path, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut args = vec!["run", "-q", "--input", log.to_str().unwrap(), "--map", MAPPING, "--out"];
    args.push(out.path().to_str().unwrap());
    args.extend_from_slice(extra);
    stepstone_ok(&args);
    out
}

/// Parses the published `.dfg` file: activities, start and end activities, edges.
fn read_dfg(path: &Path) -> BTreeMap<(String, String), i64> {
    let text = std::fs::read_to_string(path).expect("reading the dfg");
    let mut lines = text.lines();
    let mut next = || lines.next().expect("a dfg line").trim().to_owned();
    let activities: Vec<String> = (0..next().parse::<usize>().unwrap()).map(|_| next()).collect();
    let mut graph = BTreeMap::new();
    let pair = |line: &str| -> (usize, i64) {
        let (index, count) = line.split_once('x').expect("index x count");
        (index.parse().unwrap(), count.parse().unwrap())
    };
    for synthetic in ["start", "end"] {
        for _ in 0..next().parse::<usize>().unwrap() {
            let (index, count) = pair(&next());
            let name = activities[index].clone();
            let key = if synthetic == "start" { ("(start)".to_owned(), name) } else { (name, "(exit)".to_owned()) };
            graph.insert(key, count);
        }
    }
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (edge, count) = line.trim().split_once('x').expect("from>to x count");
        let (from, to) = edge.split_once('>').expect("from>to");
        graph.insert(
            (activities[from.parse::<usize>().unwrap()].clone(), activities[to.parse::<usize>().unwrap()].clone()),
            count.parse().unwrap(),
        );
    }
    graph
}

#[test]
fn running_example_is_the_published_directly_follows_graph() {
    let Some(logs) = eventlogs() else {
        eprintln!("note: no eventlogs/ in the shared data ($STEPSTONE_SHARED_DATA or ../shared/data); skipping");
        return;
    };
    let out = run(&logs.join("running-example.csv"), &["--session-gap", "none"]);
    let ours: BTreeMap<(String, String), i64> =
        common::edges(&read_table(out.path(), "transitions")).into_iter().map(|(k, (n, _))| (k, n)).collect();
    assert_eq!(ours, read_dfg(&logs.join("running-example.dfg")));
}

/// Compares stepstone with the oracle on `file` for several settings.
fn check_log(file: &str, conversion: &str, extra_epochs: &str) {
    let Some(logs) = eventlogs() else {
        eprintln!("note: no eventlogs/ in the shared data ($STEPSTONE_SHARED_DATA or ../shared/data); skipping");
        return;
    };
    let path = logs.join(file);
    let conversion_value = conversion.split_once('=').unwrap().1.to_owned();
    let settings: [(&[&str], Option<i64>, bool); 3] = [
        (&["--session-gap", "none"], None, false),
        (&["--session-gap", "30m", "-w", "2"], Some(30 * 60_000), false),
        (
            &["--session-gap", "1h", "--conversion", conversion, "-w", "2", "--epoch-events", extra_epochs],
            Some(3_600_000),
            true,
        ),
    ];
    for (flags, gap, converting) in settings {
        let events = read_log(&path, |activity| converting && activity == conversion_value);
        let (expected_edges, expected_journeys) = oracle(&events, gap, 5);
        let out = run(&path, flags);
        let edges = common::edges(&read_table(out.path(), "transitions"));
        assert_eq!(edges, expected_edges, "{file} {flags:?}: transitions");
        let journeys = common::journeys(&read_table(out.path(), "journeys"));
        assert_eq!(journeys, expected_journeys, "{file} {flags:?}: journeys");
    }
}

#[test]
fn receipt_matches_the_oracle() {
    check_log("receipt.csv", "contact_point=T10 Determine necessity to stop indication", "997");
}

#[test]
fn helpdesk_matches_the_oracle() {
    check_log("helpdesk.csv.gz", "contact_point=Resolve ticket", "3001");
}

#[test]
fn bpic2012_with_tied_timestamps_matches_the_oracle() {
    check_log("bpic2012.csv.gz", "contact_point=A_APPROVED", "50000");
}
