//! The full-disk tests: on a small tmpfs filled up, ingest answers 503 and applies nothing of the
//! request, dead letters are kept until space returns, and refused requests are taken when
//! retried; a segment that cannot be begun refuses nothing that stays in the log. They need
//! `mount` (root): without it they say so and pass.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::server::{Server, bounded};

use super::client::*;
use super::workload::*;
use super::*;

/// A tmpfs mounted for a test, unmounted (lazily, so that nothing holding it open stops it)
/// when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`512k`) at `path`; why not, when `mount` fails (not root).
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs { path: path.to_owned() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system of `dir` with a file `dir/filler` until it has no space left.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::options().create(true).append(true).open(&path).expect("creating the filler");
    let chunk = vec![0x5a_u8; 4096];
    for _ in 0..100_000 {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return path,
            Err(error) => panic!("filling {}: {error}", dir.display()),
        }
    }
    panic!("{} did not fill up", dir.display())
}

/// Posts `request`, which must be taken (answered as a first answer).
async fn post_ok(server: &Server, request: &Request) {
    let (status, _, answer) = post(server, request).await;
    assert_eq!(status, 200, "{}: {answer}", request.key);
    request.check_answer(&answer, &request.key);
}

/// One full-disk episode of life `life` against `server`, whose output directory `out` (with
/// the log in it) is alone on a small file system. Requests are taken; the file system fills up:
/// requests too large for what is left of the segment's last page (tmpfs allocates pages) are
/// refused with 503 and the reason, counted, and not applied (the ingest clock included), and a
/// small one with a bad record is either refused alike or taken, its dead letter then waiting
/// for space (counted). Space returns: the refused requests but one are retried and taken as new
/// ones, a retry of an answered one is a duplicate, the dead letter is written, and more requests
/// are taken. The requests taken are added to `acked` in order.
async fn full_disk_episode(server: &Server, out: &Path, workload: &mut Workload, acked: &mut Vec<usize>, life: usize) {
    let before = server.metrics().await;
    // Good records only, so that (in the first life) the dead-letter file is still empty.
    workload.bad_share = 0.0;
    for _ in 0..10 {
        let index = workload.generate(1..=8);
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    workload.bad_share = 0.03;
    // A small request with a bad record, whose dead letter the full disk cannot take (its event
    // before those of the large ones, so that taking it makes none of them late).
    let small = workload.requests.len();
    let raw = format!(r#"{{"customer":"c1","time":"during the full disk of life {life}","contact_point":"home"}}"#);
    let bad = Record::Bad { json: raw.clone(), customer: Some("c1".to_owned()), field: Some("time"), kind: "bad_time" };
    let records = vec![workload.good(), bad];
    workload.requests.push(Request { key: format!("small-{life}"), body: Body::Ndjson, records });
    let filler = fill(out);
    let full = server.metrics().await;
    let mut refused = Vec::new();
    for _ in 0..4 {
        // Larger than a page (about 30 bytes an event in the log).
        let index = workload.generate(200..=250);
        let (status, retry, answer) = post(server, &workload.requests[index]).await;
        assert_eq!(status, 503, "life {life}, a full disk: {answer}");
        assert_eq!(retry.as_deref(), Some("1"), "Retry-After");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("an error: {answer}"));
        assert!(
            error.starts_with("the durable log cannot take the request, so nothing of it was applied; retry later: ")
                && error.contains("No space left on device"),
            "life {life}: {error}"
        );
        refused.push(index);
    }
    let metrics = server.metrics().await;
    let failures = metrics["stepstone_log_failures_total"] - before["stepstone_log_failures_total"];
    assert_eq!(failures, refused.len() as f64, "life {life}: {metrics:?}");
    assert_eq!(
        metrics["stepstone_events_in_total"], full["stepstone_events_in_total"],
        "life {life}: nothing of a refused request reaches the engine"
    );
    let (status, _, answer) = post(server, &workload.requests[small]).await;
    let metrics = server.metrics().await;
    let dead_letter_failures =
        metrics["stepstone_dead_letter_failures_total"] - before["stepstone_dead_letter_failures_total"];
    match status {
        200 => {
            workload.requests[small].check_answer(&answer, "the small request");
            acked.push(small);
            if life == 0 {
                assert_eq!(dead_letter_failures, 1.0, "the dead-letter file is full: {metrics:?}");
            }
        }
        503 => refused.push(small),
        _ => panic!("life {life}: the small request on a full disk: {status} {answer}"),
    }
    // Space returns: the refused requests but the first, retried, are taken as new ones (the
    // small one first, whose event is the oldest).
    std::fs::remove_file(&filler).unwrap();
    let retried: Vec<usize> =
        refused.iter().copied().filter(|&i| i == small).chain(refused[1..4].iter().copied()).collect();
    for &index in &retried {
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    for _ in 0..5 {
        let index = workload.generate(1..=8);
        post_ok(server, &workload.requests[index]).await;
        acked.push(index);
    }
    let (status, _, answer) = post(server, &workload.requests[refused[2]]).await;
    assert_eq!((status, &answer["duplicate"]), (200, &json!(true)), "life {life}: a retry after the answer: {answer}");
    let metrics = server.metrics().await;
    let failures = metrics["stepstone_log_failures_total"] - before["stepstone_log_failures_total"];
    assert_eq!(failures, refused.len() as f64, "life {life}: no failure once space returned: {metrics:?}");
    // The dead letter written once space returned, and no line broken by the full disk.
    let dead_letters = std::fs::read_to_string(out.join("rejected.jsonl")).expect("rejected.jsonl");
    let lines: Vec<Value> = dead_letters
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("life {life}: a broken dead letter ({e}): {line}"))
        })
        .collect();
    let written = lines.iter().any(|line| line["raw"] == json!(raw));
    assert!(written, "life {life}: the small request's dead letter in rejected.jsonl:\n{dead_letters}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_ingest_with_503_and_recovers_when_space_returns() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let _tmpfs = match Tmpfs::mount(&out, "512k") {
            Ok(tmpfs) => tmpfs,
            Err(why) => {
                eprintln!("SKIPPED: the full-disk test needs to mount a tmpfs (as root), and mount failed: {why}");
                return;
            }
        };
        // The log in its default place, in the output directory.
        let config = |fsync: &str| {
            format!("{PIPELINE}[log]\nfsync = \"{fsync}\"\nsegment-bytes = 16384\ncheckpoint-bytes = 65536\n{SEGMENTS}")
        };
        // Event times a second apart on average: the four large requests a full disk refuses
        // span more than the allowed lateness (10 minutes), so that a clock they moved would make
        // the requests before them late; nothing else is late.
        let mut workload = Workload::new(0xF11_1ED);
        workload.step_ms = 2_000;
        workload.jump_share = 0.0;
        // The requests acknowledged, in order.
        let mut acked: Vec<usize> = Vec::new();
        let mut ran: Option<PathBuf> = None;
        for (life, fsync) in ["batch", "20ms", "batch"].into_iter().enumerate() {
            let mut server = Server::start_in(dir.path(), &config(fsync), None);
            let events: usize = acked.iter().map(|&i| workload.requests[i].events().count()).sum();
            let recovered = recovered_events(&server.log());
            assert_eq!(recovered, (life > 0).then_some(events as u64), "life {life}:\n{}", server.log());
            if life < 2 {
                full_disk_episode(&server, &out, &mut workload, &mut acked, life).await;
            }
            if life == 1 {
                let index = workload.closer();
                post_ok(&server, &workload.requests[index]).await;
                acked.push(index);
            }
            let status = server.terminate().await;
            assert!(status.success(), "exit status {status:?}:\n{}", server.log());
            if life == 0 {
                continue;
            }
            // The final snapshot holds exactly the acknowledged records, also after a restart.
            let ran = ran.get_or_insert_with(|| {
                let lines: Vec<&str> =
                    acked.iter().flat_map(|&i| &workload.requests[i].records).map(Record::json).collect();
                batch_run(dir.path(), "run", &config("batch"), &lines)
            });
            let what = format!("the final snapshot of life {life} after the full disk");
            assert_same_snapshot(&server.out, ran, &what);
        }
    })
    .await;
}

/// With `fsync = "batch"`, a request whose append and forced write succeed but after which the
/// next segment cannot be begun (a full disk) is acknowledged: it is in the log for good. (It
/// used to be answered 503 and its key forgotten, so a restart brought it back and its retry
/// was applied twice.) A restart recovers exactly the acknowledged records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_begun_refuses_nothing_that_stays_in_the_log() {
    bounded(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("log");
        std::fs::create_dir(&log).unwrap();
        let _tmpfs = match Tmpfs::mount(&log, "256k") {
            Ok(tmpfs) => tmpfs,
            Err(why) => {
                eprintln!("SKIPPED: this test needs to mount a tmpfs (as root), and mount failed: {why}");
                return;
            }
        };
        // Segments end within their first page, so appends fit in the page the segment has
        // while beginning the next segment needs a page the full disk does not have.
        let config = format!(
            "{PIPELINE}[log]\ndir = {:?}\nfsync = \"batch\"\nsegment-bytes = 2048\ncheckpoint-bytes = 1048576\n{SEGMENTS}",
            log.to_str().unwrap()
        );
        let mut workload = Workload::new(7);
        let mut server = Server::start_in(dir.path(), &config, None);
        let mut acked = Vec::new();
        let index = workload.generate(1..=1);
        post_ok(&server, &workload.requests[index]).await;
        acked.push(index);
        let filler = fill(&log);
        let mut refused = None;
        for _ in 0..100 {
            let index = workload.generate(1..=1);
            let (status, _, answer) = post(&server, &workload.requests[index]).await;
            if status != 200 {
                assert_eq!(status, 503, "{answer}");
                refused = Some(index);
                break;
            }
            acked.push(index);
        }
        let refused = refused.expect("a request refused once the segment is full");
        std::fs::remove_file(&filler).unwrap();
        post_ok(&server, &workload.requests[refused]).await;
        acked.push(refused);
        let index = workload.closer();
        post_ok(&server, &workload.requests[index]).await;
        acked.push(index);
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}:\n{}", server.log());

        let mut server = Server::start_in(dir.path(), &config, None);
        let events: usize = acked.iter().map(|&i| workload.requests[i].events().count()).sum();
        assert_eq!(recovered_events(&server.log()), Some(events as u64), "{}", server.log());
        let status = server.terminate().await;
        assert!(status.success(), "exit status {status:?}:\n{}", server.log());
        let lines: Vec<&str> = acked.iter().flat_map(|&i| &workload.requests[i].records).map(Record::json).collect();
        let ran = batch_run(dir.path(), "run", &config, &lines);
        assert_same_snapshot(&server.out, &ran, "the snapshot after a failed rotation");
    })
    .await;
}
