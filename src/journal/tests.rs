//! Tests of the log as a whole: what a reopened log replays equals, as input collections, what
//! was appended, through rotations, compactions (folding erasures and link retractions),
//! reopenings and torn tails; damage elsewhere and a second opener are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::entry::{LoggedEvent, LoggedIdentity, LoggedLink, LoggedRecords, Resume};
use super::*;

/// The input collections a sequence of entries amounts to: what replay must restore.
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    /// Events by arrival number.
    events: BTreeMap<u64, LoggedEvent>,
    /// Links present.
    links: BTreeSet<(LoggedIdentity, LoggedIdentity)>,
    /// Identities erased.
    erased: BTreeSet<LoggedIdentity>,
    /// Idempotency keys and their answers.
    keys: BTreeMap<String, u64>,
    /// Where ingest stood.
    resume: (u64, Option<i64>, i64),
}

impl State {
    /// The state after `entries`, applied in order as the engine would.
    fn of(entries: &[Entry]) -> State {
        let mut state = State::default();
        let mut resume = Resume::default();
        for entry in entries {
            match entry {
                Entry::Records(batch) => {
                    resume.advance(batch.resume());
                    // Nothing of an erased identity may follow its erasure (the driver drops it
                    // before logging; a checkpoint must not bring it back).
                    for event in &batch.events {
                        state.events.insert(event.seq, event.clone());
                    }
                    for link in &batch.links {
                        let pair = pair(link);
                        if link.unlink {
                            state.links.remove(&pair);
                        } else {
                            state.links.insert(pair);
                        }
                    }
                    if let Some(key) = &batch.key {
                        state.keys.entry(key.clone()).or_insert(batch.accepted);
                    }
                }
                Entry::Erased(identities) => {
                    state.erased.extend(identities.iter().cloned());
                    let erased = &state.erased;
                    state.links.retain(|(a, b)| !erased.contains(a) && !erased.contains(b));
                    state.events.retain(|_, event| !erased.contains(&event.identity()));
                }
                Entry::Keys(keys) => {
                    for (key, accepted) in keys {
                        state.keys.entry(key.clone()).or_insert(*accepted);
                    }
                }
                Entry::End(at) => resume.advance(*at),
            }
        }
        state.resume = (resume.next_seq, resume.clock_latest, resume.watermark);
        state
    }
}

/// A link's identities in order.
fn pair(link: &LoggedLink) -> (LoggedIdentity, LoggedIdentity) {
    let (a, b) = (link.customer.clone(), link.other.clone());
    if a <= b { (a, b) } else { (b, a) }
}

/// A random log: requests of events (ties and all) and links stated and retracted, with keys,
/// and erasures; nothing of an identity after its erasure (the driver drops it before logging).
fn workload(rng: &mut StdRng, requests: usize) -> Vec<Entry> {
    let mut erased: BTreeSet<LoggedIdentity> = BTreeSet::new();
    let mut entries = Vec::new();
    let mut seq = 0;
    let mut latest = 0i64;
    let identity = |rng: &mut StdRng| LoggedIdentity {
        device: rng.random_bool(0.3),
        name: format!("id{}", rng.random_range(0..12)),
    };
    for request in 0..requests {
        if rng.random_bool(0.04) {
            let who: BTreeSet<LoggedIdentity> = (0..rng.random_range(1..4)).map(|_| identity(rng)).collect();
            erased.extend(who.iter().cloned());
            entries.push(Entry::Erased(who.into_iter().collect()));
            continue;
        }
        let mut batch = LoggedRecords {
            key: rng.random_bool(0.7).then(|| format!("request-{request}")),
            watermark: latest - 600_000,
            ..LoggedRecords::default()
        };
        for _ in 0..rng.random_range(0..6) {
            let who = identity(rng);
            if erased.contains(&who) {
                continue;
            }
            let time = latest + rng.random_range(-5_000..20_000);
            latest = latest.max(time);
            batch.events.push(LoggedEvent {
                customer: who.name,
                anonymous: who.device,
                key: None,
                time,
                seq,
                contact_point: format!("p{}", rng.random_range(0..5)),
                channel: rng.random_bool(0.8).then(|| "web".to_owned()),
                session: None,
                converting: rng.random_bool(0.1),
                value: rng.random_range(0..1000),
            });
            seq += 1;
        }
        for _ in 0..rng.random_range(0..3) {
            let (customer, other) = (LoggedIdentity { device: false, ..identity(rng) }, identity(rng));
            if !erased.contains(&customer) && !erased.contains(&other) && customer != other {
                batch.links.push(LoggedLink { customer, other, unlink: rng.random_bool(0.3) });
            }
        }
        batch.accepted = (batch.events.len() + batch.links.len()) as u64;
        batch.clock_latest = Some(latest);
        entries.push(Entry::Records(batch));
    }
    entries
}

/// Settings for a log in `dir` that rotates and compacts often.
fn settings(dir: &Path, segment_bytes: u64, checkpoint_bytes: u64) -> Settings {
    Settings { dir: dir.to_owned(), fsync: Fsync::Batch, segment_bytes, checkpoint_bytes }
}

/// Opens the log, collecting what it replays.
fn reopen(settings: &Settings) -> (Journal, Recovered, Vec<Entry>) {
    let mut replayed = Vec::new();
    let (journal, recovered) = Journal::open(settings.clone(), |entry| {
        replayed.push(entry);
        Ok::<(), Error>(())
    })
    .expect("opening the log");
    (journal, recovered, replayed)
}

#[test]
fn a_reopened_log_replays_the_same_input_collections_through_rotations_compactions_and_erasures() {
    for seed in 0..12 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path(), rng.random_range(200..2_000), rng.random_range(500..8_000));
        let entries = workload(&mut rng, 300);
        let mut appended = Vec::new();
        let (mut journal, _, replayed) = reopen(&settings);
        assert!(replayed.is_empty());
        for entry in &entries {
            journal.append(entry).unwrap();
            appended.push(entry.clone());
            match entry {
                Entry::Erased(_) => journal.compact().unwrap(),
                _ if rng.random_bool(0.5) => journal.sync().unwrap(),
                _ => {}
            }
            if rng.random_bool(0.03) {
                journal.close().unwrap();
                let (again, _, replayed) = reopen(&settings);
                assert_eq!(
                    State::of(&replayed),
                    State::of(&appended),
                    "seed {seed}: reopened after {}",
                    appended.len()
                );
                journal = again;
            }
        }
        journal.close().unwrap();
        let (_journal, recovered, replayed) = reopen(&settings);
        let expected = State::of(&entries);
        assert_eq!(State::of(&replayed), expected, "seed {seed}");
        assert!(recovered.truncated.is_none());
        assert!(recovered.checkpoint.is_some(), "seed {seed}: the workload compacts at least once");
        assert!(
            !expected.erased.is_empty() && !expected.links.is_empty(),
            "seed {seed}: the workload erases and links"
        );
    }
}

#[test]
fn an_erased_identity_leaves_the_files_once_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 1 << 20, 1 << 30);
    let (mut journal, _, _) = reopen(&settings);
    let event = |customer: &str, seq| LoggedEvent {
        customer: customer.into(),
        anonymous: false,
        key: None,
        time: 1,
        seq,
        contact_point: "home".into(),
        channel: None,
        session: None,
        converting: false,
        value: 0,
    };
    for (seq, customer) in ["keep-me", "forget-me-please", "keep-me"].into_iter().enumerate() {
        journal
            .append(&Entry::Records(LoggedRecords {
                events: vec![event(customer, seq as u64)],
                ..LoggedRecords::default()
            }))
            .unwrap();
    }
    journal.sync().unwrap();
    let forgotten = LoggedIdentity { device: false, name: "forget-me-please".into() };
    journal.append(&Entry::Erased(vec![forgotten.clone()])).unwrap();
    journal.compact().unwrap();
    journal.close().unwrap();
    let mentions = |needle: &[u8]| -> usize {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|f| std::fs::read(f.unwrap().path()).unwrap())
            .map(|bytes| bytes.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
    };
    // The checkpoint keeps the erased id (to drop later events of it), and no event of it.
    assert_eq!(mentions(b"forget-me-please"), 1);
    assert_eq!(mentions(b"keep-me"), 2);
    let (_journal, _, replayed) = reopen(&settings);
    let state = State::of(&replayed);
    assert_eq!(state.events.len(), 2);
    assert_eq!(state.erased, BTreeSet::from([forgotten]));
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_entry_and_appending_goes_on_after_it() {
    let mut rng = StdRng::seed_from_u64(7);
    let entries: Vec<Entry> = workload(&mut rng, 60).into_iter().filter(|e| matches!(e, Entry::Records(_))).collect();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), u64::MAX, u64::MAX);
    let (mut journal, _, _) = reopen(&settings);
    let segment = files::segment(dir.path(), 0);
    let mut ends = vec![std::fs::metadata(&segment).unwrap().len()];
    for entry in &entries {
        journal.append(entry).unwrap();
        ends.push(std::fs::metadata(&segment).unwrap().len());
    }
    journal.close().unwrap();
    let whole = std::fs::read(&segment).unwrap();
    for _ in 0..40 {
        let cut = rng.random_range(0..whole.len() as u64);
        std::fs::write(&segment, &whole[..cut as usize]).unwrap();
        let kept = ends.iter().filter(|&&end| end <= cut).count() - 1;
        let (mut journal, recovered, replayed) = reopen(&settings);
        assert_eq!(replayed, entries[..kept], "cut at {cut}");
        assert_eq!(recovered.truncated.is_some(), cut != ends[kept], "cut at {cut}");
        journal.append(&entries[kept]).unwrap();
        journal.close().unwrap();
        let (_journal, recovered, replayed) = reopen(&settings);
        assert_eq!(replayed, entries[..=kept], "appending after the cut at {cut}");
        assert!(recovered.truncated.is_none());
    }
    // A garbled byte in the last entry is damage too.
    let mut garbled = whole.clone();
    let last = garbled.len() - 3;
    garbled[last] ^= 0x40;
    std::fs::write(&segment, &garbled).unwrap();
    let (_journal, recovered, replayed) = reopen(&settings);
    assert_eq!(replayed, entries[..entries.len() - 1]);
    let truncated = recovered.truncated.unwrap();
    assert!(matches!(truncated.reason, Damage::ChecksumMismatch { .. }), "{truncated:?}");
    assert!(truncated.reason.to_string().contains("checksum"));
}

#[test]
fn damage_before_the_last_segment_and_a_second_opener_are_refused() {
    let mut rng = StdRng::seed_from_u64(3);
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), 300, u64::MAX);
    let (mut journal, _, _) = reopen(&settings);
    let second = Journal::open(settings.clone(), |_| Ok::<(), Error>(())).err().expect("a second opener is refused");
    assert!(matches!(&second, Error::Locked { dir } if dir == &settings.dir), "{second:?}");
    assert!(second.to_string().contains("in use by another running stepstone serve"));
    for entry in workload(&mut rng, 40).iter().filter(|e| matches!(e, Entry::Records(_))) {
        journal.append(entry).unwrap();
        journal.sync().unwrap();
    }
    journal.close().unwrap();
    let (segments, _) = files::list(dir.path()).unwrap();
    assert!(segments.len() > 2);
    let first = files::segment(dir.path(), segments[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    let refused = Journal::open(settings, |_| Ok::<(), Error>(()));
    let refused = refused.err().expect("a damaged closed segment stops the start");
    assert!(matches!(&refused, Error::Corrupt { file: LogFile::Segment(path), .. } if *path == first), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains("is damaged at byte") && message.contains("later segments follow"), "{message}");
}

#[test]
fn compactions_wait_for_a_quarter_of_the_history_so_rewriting_it_stays_proportional() {
    let mut rng = StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    // A compaction is due after every forced write by `checkpoint-bytes` alone.
    let settings = settings(dir.path(), u64::MAX, 1);
    let entries = workload(&mut rng, 400);
    let (mut journal, _, _) = reopen(&settings);
    let mut appended = 0;
    for entry in entries.iter().filter(|entry| matches!(entry, Entry::Records(_))) {
        journal.append(entry).unwrap();
        journal.sync().unwrap();
        appended += 1;
    }
    journal.close().unwrap();
    // Every compaction begins a segment: their number is the newest segment's. Growing the
    // history by a quarter each time from the first request's size takes a few dozen, not one
    // per request.
    let (segments, _) = files::list(dir.path()).unwrap();
    let compactions = *segments.last().unwrap();
    assert!(appended > 300 && compactions < 40, "{compactions} compactions for {appended} requests");
    let (_, _, replayed) = reopen(&settings);
    let batches: Vec<Entry> = entries.into_iter().filter(|entry| matches!(entry, Entry::Records(_))).collect();
    assert_eq!(State::of(&replayed), State::of(&batches));
}

#[test]
fn a_foreign_file_and_a_cut_checkpoint_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), u64::MAX, u64::MAX);
    let open = || Journal::open(settings.clone(), |_| Ok::<(), Error>(())).err().expect("the start is refused");
    let segment = files::segment(dir.path(), 0);
    std::fs::write(&segment, b"STEPLOG0 and more").unwrap();
    let foreign = open();
    assert!(matches!(&foreign, Error::Foreign { path, found, .. } if *path == segment && found == b"STEPLOG0"));
    assert!(foreign.to_string().contains("is not a Stepstone log file of this version"), "{foreign}");
    std::fs::remove_file(&segment).unwrap();
    let checkpoint = files::checkpoint(dir.path(), 3);
    std::fs::write(&checkpoint, b"STEP").unwrap();
    let cut = open();
    assert!(
        matches!(&cut, Error::Corrupt { file: LogFile::Checkpoint(path), offset: 0, reason: Damage::HeaderCutShort }
            if *path == checkpoint),
        "{cut:?}"
    );
    assert!(cut.to_string().starts_with(&format!("checkpoint {} is damaged at byte 0", checkpoint.display())), "{cut}");
}
