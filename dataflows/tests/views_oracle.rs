//! Checks every view against a plain from-scratch recomputation, round by round.
//!
//! Each case feeds a random stream in several rounds: new events arrive out of event-time
//! order, with tied times, and earlier events are retracted; the watermark advances now and
//! then (ending sessions), sometimes to the end of the input; with identity stitching, links
//! between customer and device ids come and go, merging and splitting profiles. With a settled
//! horizon, later rounds bring no update before it, and the journeys fold their history. After
//! every round the accumulated outputs must equal what the sequential oracle
//! (`stepstone_dataflows::oracle`, the `oracle` feature) computes from the events present then.
//! The oracle follows the journey semantics of `docs/semantics.md` literally and shares no code
//! with the dataflows; the end-to-end tests of the `stepstone` crate use the same one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use differential_dataflow::input::InputSession;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use stepstone_dataflows::event::{Clock, END_OF_INPUT, Event, Identity, JourneyId, NO_WATERMARK, Params, SessionRule};
use stepstone_dataflows::identity::{Link, Node};
use stepstone_dataflows::oracle;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::rules::Rule;
use stepstone_dataflows::segments::{BoundSegment, SegmentDef};
use stepstone_dataflows::symbols::{Sym, Symbols};
use stepstone_dataflows::views;

const MINUTE: i64 = 60_000;

/// The state of every output after some round.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Outputs {
    journeys: BTreeMap<JourneyRow, i64>,
    transitions: BTreeMap<(Sym, Sym), (i64, i64)>,
    channel_transitions: BTreeMap<(Sym, Sym), (i64, i64)>,
    memberships: BTreeMap<(Sym, JourneyId), i64>,
    segments: BTreeMap<Sym, (i64, i64, i64)>,
    segment_channels: BTreeMap<(Sym, Sym), i64>,
}

fn add2(map: &mut BTreeMap<(Sym, Sym), (i64, i64)>, key: (Sym, Sym), diff: (i64, i64)) {
    let entry = map.entry(key).or_default();
    entry.0 += diff.0;
    entry.1 += diff.1;
    if *entry == (0, 0) {
        map.remove(&key);
    }
}

fn add1<K: Ord + Clone>(map: &mut BTreeMap<K, i64>, key: K, diff: i64) {
    let entry = map.entry(key.clone()).or_default();
    *entry += diff;
    if *entry == 0 {
        map.remove(&key);
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle's views in the shape of the outputs.

/// What the oracle (`stepstone_dataflows::oracle`) expects of `events` (with multiplicities;
/// an event of negative multiplicity is absent) at `watermark`, as accumulated outputs.
fn oracle(events: &BTreeMap<Event, i64>, watermark: i64, params: &Params, defs: &[BoundSegment]) -> Outputs {
    let present = events.iter().flat_map(|(event, count)| std::iter::repeat_n(*event, (*count).max(0) as usize));
    let segments: Vec<_> = defs.iter().map(|def| (def.name, |row: &JourneyRow| def.rule.matches(row))).collect();
    let views = oracle::recompute(present, watermark, params, &segments);
    Outputs {
        journeys: views.journeys.into_values().map(|row| (row, 1)).collect(),
        transitions: views.transitions,
        channel_transitions: views.channel_transitions,
        memberships: views.memberships.into_iter().map(|m| (m, 1)).collect(),
        segments: views.segments,
        segment_channels: views.segment_channels,
    }
}

// ---------------------------------------------------------------------------------------------
// The dataflow under test.

/// One round of input: event updates, link updates, erased identities, and the clock it
/// seals.
#[derive(Clone)]
struct Round {
    updates: Vec<(Event, isize)>,
    links: Vec<(Link, isize)>,
    erasures: Vec<Identity>,
    clock: Clock,
}

type Rounds = Vec<Round>;

/// Runs the views over `rounds` of input on `workers` workers, returning the outputs after
/// each round.
fn run_dataflow(rounds: Rounds, params: Params, defs: Vec<BoundSegment>, workers: usize, stitch: bool) -> Vec<Outputs> {
    type Log = Arc<Mutex<Vec<(u64, Box<dyn FnOnce(&mut Outputs) + Send>)>>>;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let rounds = Arc::new(rounds);
    let n_rounds = rounds.len();
    let worker_log = log.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputSession::<u64, Event, isize>::new();
        let mut clocks = InputSession::<u64, Clock, isize>::new();
        let mut links = InputSession::<u64, Link, isize>::new();
        let mut erasures = InputSession::<u64, Identity, isize>::new();
        let mut clock = Clock::watermark(NO_WATERMARK);
        let log = worker_log.clone();
        let defs = defs.clone();
        let probe = worker.dataflow::<u64, _, _>(|scope| {
            let links = stitch.then(|| links.to_collection(scope));
            let views = views::build(
                input.to_collection(scope),
                links,
                clocks.to_collection(scope),
                erasures.to_collection(scope),
                params,
                defs,
            );
            let probe = timely::dataflow::ProbeHandle::new();
            macro_rules! capture {
                ($collection:expr, $apply:expr) => {{
                    let log = log.clone();
                    $collection
                        .inspect(move |(data, time, diff)| {
                            let (data, diff) = (data.clone(), diff.clone());
                            let apply: Box<dyn FnOnce(&mut Outputs) + Send> =
                                Box::new(move |out: &mut Outputs| $apply(out, data, diff));
                            log.lock().unwrap().push((*time, apply));
                        })
                        .probe_with(&probe);
                }};
            }
            capture!(views.journeys, |o: &mut Outputs, d, r| add1(&mut o.journeys, d, r));
            capture!(views.transitions.contact_points, |o: &mut Outputs, d, r| add2(&mut o.transitions, d, r));
            capture!(views.transitions.channels, |o: &mut Outputs, d, r| add2(&mut o.channel_transitions, d, r));
            capture!(views.segments.memberships, |o: &mut Outputs, d, r| add1(&mut o.memberships, d, r));
            capture!(views.segments.stats, |o: &mut Outputs, d, r: (i64, i64, i64)| {
                let key: Sym = d;
                let entry = o.segments.entry(key).or_default();
                entry.0 += r.0;
                entry.1 += r.1;
                entry.2 += r.2;
                if *entry == (0, 0, 0) {
                    o.segments.remove(&key);
                }
            });
            capture!(views.segments.channels, |o: &mut Outputs, d, r| add1(&mut o.segment_channels, d, r));
            probe
        });
        // Every worker sends a share of each round, and every third update of the next round
        // goes ahead at that round's time, so the operator sees times that are not yet open.
        let (peers, index) = (worker.peers(), worker.index());
        let mine = |i: usize| i % peers == index;
        for (round, Round { updates, links: link_updates, erasures: erased, clock: sealed }) in
            rounds.iter().enumerate()
        {
            if index == 0 {
                for (link, diff) in link_updates {
                    links.update(link.clone(), *diff);
                }
            }
            // Every worker enters every erasure into its own input, as the engine does.
            for identity in erased {
                erasures.insert(*identity);
            }
            if *sealed != clock {
                if clock.watermark != NO_WATERMARK {
                    clocks.update(clock, -1);
                }
                clocks.update(*sealed, 1);
                clock = *sealed;
            }
            for (i, (event, diff)) in updates.iter().enumerate() {
                if mine(i) && (round == 0 || i % 3 != 0) {
                    input.update(*event, *diff);
                }
            }
            if let Some(next) = rounds.get(round + 1) {
                for (i, (event, diff)) in next.updates.iter().enumerate() {
                    if mine(i) && i % 3 == 0 {
                        input.update_at(*event, round as u64 + 1, *diff);
                    }
                }
            }
            input.advance_to(round as u64 + 1);
            input.flush();
            clocks.advance_to(round as u64 + 1);
            clocks.flush();
            links.advance_to(round as u64 + 1);
            links.flush();
            erasures.advance_to(round as u64 + 1);
            erasures.flush();
            worker.step_while(|| probe.less_than(input.time()));
        }
    })
    .expect("timely runs");

    let mut log = std::mem::take(&mut *log.lock().unwrap());
    log.sort_by_key(|(time, _)| *time);
    let mut states = Vec::new();
    let mut state = Outputs::default();
    let mut log = log.into_iter().peekable();
    for round in 0..n_rounds as u64 {
        while let Some((_, apply)) = log.next_if(|(time, _)| *time <= round) {
            apply(&mut state);
        }
        states.push(state.clone());
    }
    states
}

// ---------------------------------------------------------------------------------------------
// Random streams.

struct Shape {
    customers: usize,
    keys: usize,
    rounds: usize,
    per_round: usize,
    retract_share: f64,
    /// Share of updates that insert another copy of a present event.
    duplicate_share: f64,
    /// Share of updates that retract an event before it is inserted (it is inserted later).
    phantom_share: f64,
    /// Event times are drawn within this many ms.
    span: i64,
    /// Device ids: with some, a share of the events has a device id only, and links between
    /// identities come and go (identity stitching); with none, no stitching.
    devices: usize,
    /// Link updates per round.
    links_per_round: usize,
    /// The chance that a round erases an identity (a customer, or with devices a device too).
    erasure_chance: f64,
    /// Whether rounds settle history: each seals a settled horizon at or a little before its
    /// watermark, and later rounds insert, copy and retract only events at or after it.
    settle: bool,
}

/// The node of customer `c{i}` or device `a{i}`.
fn node(symbols: &Symbols, device: bool, i: usize) -> Node {
    // Device names sort before customer names, so that a profile named by name order alone
    // would be named wrongly.
    let name = format!("{}{i}", if device { "a" } else { "c" });
    Node { device, sym: symbols.intern(&name), name }
}

fn random_event(rng: &mut StdRng, shape: &Shape, anchors: &[i64], settled: i64, symbols: &Symbols) -> Event {
    let anonymous = shape.devices > 0 && rng.random_bool(0.3);
    let customer = match anonymous {
        true => node(symbols, true, rng.random_range(0..shape.devices)).sym,
        false => node(symbols, false, rng.random_range(0..shape.customers)).sym,
    };
    let key = match shape.keys {
        0 => None,
        n => Some(symbols.intern(&format!("k{}", rng.random_range(0..n)))),
    };
    // Cluster times around anchors so that events share leaves and sessions, with ties.
    let anchor = anchors[rng.random_range(0..anchors.len())];
    let time = match rng.random_range(0..4) {
        0 => anchor,
        1 => anchor + rng.random_range(0..4) * 10 * MINUTE,
        2 => anchor + rng.random_range(0..40 * MINUTE),
        _ => rng.random_range(0..shape.span),
    };
    // At or just after the settled horizon, where the folded history meets the events kept.
    let time = if time < settled { settled + rng.random_range(0..3) * rng.random_range(0..20 * MINUTE) } else { time };
    let channels = [None, Some("web"), Some("email"), Some("app")];
    Event {
        journey: JourneyId { customer, anonymous, key },
        time,
        seq: rng.random(),
        contact_point: symbols.intern(["home", "pricing", "checkout", "help", "search"][rng.random_range(0..5)]),
        channel: channels[rng.random_range(0..channels.len())].map(|c| symbols.intern(c)),
        session: Some(symbols.intern(&format!("s{}", rng.random_range(0..2)))),
        converting: rng.random_bool(0.15),
        value: rng.random_range(-5..100) * 10_000,
    }
}

fn random_rounds(seed: u64, shape: &Shape, symbols: &Symbols) -> Rounds {
    let mut rng = StdRng::seed_from_u64(seed);
    let anchors: Vec<i64> = (0..6).map(|_| rng.random_range(0..shape.span)).collect();
    let mut present: Vec<Event> = Vec::new();
    let mut phantoms: Vec<Event> = Vec::new();
    let mut rounds = Vec::new();
    let mut clock = Clock::watermark(NO_WATERMARK);
    let mut linked: Vec<Link> = Vec::new();
    for round in 0..shape.rounds {
        let mut links = Vec::new();
        for _ in 0..shape.links_per_round {
            if !linked.is_empty() && rng.random_bool(0.35) {
                let gone = linked.swap_remove(rng.random_range(0..linked.len()));
                links.push((gone, -1));
            } else {
                // A device seen with a customer id, or two customer ids of one person.
                let a = node(symbols, false, rng.random_range(0..shape.customers));
                let b = match rng.random_bool(0.7) {
                    true => node(symbols, true, rng.random_range(0..shape.devices)),
                    false => node(symbols, false, rng.random_range(0..shape.customers)),
                };
                let link = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
                linked.push(link.clone());
                links.push((link, 1));
            }
        }
        let settled = clock.settled;
        let open = |event: &Event| event.time >= settled;
        let mut updates = Vec::new();
        for _ in 0..shape.per_round {
            if !phantoms.is_empty() && rng.random_bool(0.3) {
                let owed = phantoms.swap_remove(rng.random_range(0..phantoms.len()));
                updates.push((owed, 1));
            } else if rng.random_bool(shape.phantom_share) {
                let phantom = random_event(&mut rng, shape, &anchors, settled, symbols);
                phantoms.push(phantom);
                updates.push((phantom, -1));
            } else if !present.is_empty()
                && rng.random_bool(shape.duplicate_share)
                && let copy = present[rng.random_range(0..present.len())]
                && open(&copy)
            {
                present.push(copy);
                updates.push((copy, 1));
            } else if !present.is_empty()
                && rng.random_bool(shape.retract_share)
                && let at = rng.random_range(0..present.len())
                && open(&present[at])
            {
                let gone = present.swap_remove(at);
                updates.push((gone, -1));
            } else {
                let event = random_event(&mut rng, shape, &anchors, settled, symbols);
                present.push(event);
                updates.push((event, 1));
            }
        }
        // The watermark stays, or advances into the span (ending some sessions); the last
        // round ends the input half of the time.
        let watermark = &mut clock.watermark;
        if round + 1 == shape.rounds && rng.random_bool(0.5) {
            *watermark = END_OF_INPUT;
        } else if rng.random_bool(0.6) {
            // Half the time exactly a session gap (or a multiple of ten minutes) after an anchor,
            // where events lie: a session then ends exactly at the watermark, which does not end it.
            let next = if rng.random_bool(0.5) {
                anchors[rng.random_range(0..anchors.len())] + rng.random_range(0..8) * 10 * MINUTE
            } else {
                rng.random_range(0..shape.span + 60 * MINUTE)
            };
            *watermark = (*watermark).max(next);
        }
        if shape.settle && clock.watermark != END_OF_INPUT && rng.random_bool(0.7) {
            let lateness = rng.random_range(0..3) * 10 * MINUTE;
            clock.settled = clock.settled.max(clock.watermark.saturating_sub(lateness));
        }
        let mut erasures = Vec::new();
        if rng.random_bool(shape.erasure_chance) {
            let device = shape.devices > 0 && rng.random_bool(0.4);
            let count = if device { shape.devices } else { shape.customers };
            erasures.push(node(symbols, device, rng.random_range(0..count)).identity());
        }
        rounds.push(Round { updates, links, erasures, clock });
    }
    rounds
}

fn segment_defs(symbols: &Symbols) -> Vec<BoundSegment> {
    [
        ("engaged", "events >= 3"),
        ("unconverted", "converted == false"),
        ("emailed", "channels contains \"email\" and not converted"),
        ("at_pricing", "last_contact_point == \"pricing\" or sessions > 2"),
    ]
    .into_iter()
    .map(|(name, rule)| {
        SegmentDef { name: name.to_owned(), rule: Rule::parse(rule).expect("rule parses") }.bind(symbols)
    })
    .collect()
}

fn check(seed: u64, shape: Shape, params: Params, workers: usize) {
    let symbols = Symbols::new();
    let rounds = random_rounds(seed, &shape, &symbols);
    let defs = segment_defs(&symbols);
    let stitch = shape.devices > 0;
    let states = run_dataflow(rounds.clone(), params, defs.clone(), workers, stitch);
    let mut events: BTreeMap<Event, i64> = BTreeMap::new();
    let mut links: BTreeMap<Link, i64> = BTreeMap::new();
    let mut erased: BTreeSet<Identity> = BTreeSet::new();
    for (round, Round { updates, links: link_updates, erasures, clock }) in rounds.iter().enumerate() {
        for (event, diff) in updates {
            add1(&mut events, *event, *diff as i64);
        }
        for (link, diff) in link_updates {
            add1(&mut links, link.clone(), *diff as i64);
        }
        erased.extend(erasures);
        // Recomputed from scratch without any event or link of an erased identity.
        let (kept_events, kept_links) = oracle::erase(&events, &links, &erased);
        let expected = oracle(&oracle::stitch(&kept_events, &kept_links), clock.watermark, &params, &defs);
        let actual = &states[round];
        assert_eq!(expected.journeys, actual.journeys, "journeys, seed {seed}, round {round}");
        assert_eq!(expected.transitions, actual.transitions, "transitions, seed {seed}, round {round}");
        assert_eq!(expected.channel_transitions, actual.channel_transitions, "channels, seed {seed}, round {round}");
        assert_eq!(expected.memberships, actual.memberships, "memberships, seed {seed}, round {round}");
        assert_eq!(expected.segments, actual.segments, "segments, seed {seed}, round {round}");
        assert_eq!(expected.segment_channels, actual.segment_channels, "segment channels, seed {seed}, round {round}");
    }
}

fn small(rounds: usize) -> Shape {
    Shape {
        customers: 4,
        keys: 0,
        rounds,
        per_round: 40,
        retract_share: 0.2,
        duplicate_share: 0.0,
        phantom_share: 0.0,
        span: 1 << 31,
        devices: 0,
        links_per_round: 0,
        erasure_chance: 0.0,
        settle: false,
    }
}

fn gap30() -> Params {
    Params { session: SessionRule::Gap(30 * MINUTE), path_len: 5 }
}

#[test]
fn gap_sessions_one_worker() {
    for seed in 0..12 {
        check(seed, small(6), gap30(), 1);
    }
}

#[test]
fn gap_sessions_two_workers() {
    for seed in 100..106 {
        check(seed, small(6), gap30(), 2);
    }
}

#[test]
fn no_session_split() {
    for seed in 200..206 {
        check(seed, small(5), Params { session: SessionRule::Never, path_len: 3 }, 1);
    }
}

#[test]
fn session_ids() {
    for seed in 300..306 {
        check(seed, small(5), Params { session: SessionRule::ById, path_len: 1 }, 2);
    }
}

#[test]
fn journey_keys() {
    for seed in 400..406 {
        let shape = Shape { keys: 3, ..small(5) };
        check(seed, shape, gap30(), 2);
    }
}

#[test]
fn long_journeys_across_many_buckets() {
    // Few customers over ~50 days: many leaves and middle buckets per journey.
    for seed in 500..504 {
        let shape = Shape { customers: 2, per_round: 150, span: 1 << 32, ..small(5) };
        check(seed, shape, Params { session: SessionRule::Gap(5 * MINUTE), path_len: 7 }, 1);
    }
}

#[test]
fn heavy_retractions() {
    for seed in 600..606 {
        let shape = Shape { retract_share: 0.45, ..small(8) };
        check(seed, shape, gap30(), 1);
    }
}

#[test]
fn duplicate_events_and_retractions_before_insertions() {
    for seed in 700..712 {
        let shape = Shape { duplicate_share: 0.2, phantom_share: 0.1, ..small(8) };
        check(seed, shape, gap30(), 1 + seed as usize % 2);
    }
}

#[test]
fn duplicates_with_session_ids_and_no_split() {
    for seed in 800..806 {
        let shape = Shape { duplicate_share: 0.25, phantom_share: 0.05, ..small(6) };
        let session = if seed % 2 == 0 { SessionRule::ById } else { SessionRule::Never };
        check(seed, shape, Params { session, path_len: 4 }, 2);
    }
}

#[test]
fn many_customers_many_rounds() {
    for seed in 900..903 {
        let shape = Shape { customers: 40, keys: 2, rounds: 12, per_round: 300, duplicate_share: 0.05, ..small(12) };
        check(seed, shape, Params { session: SessionRule::Gap(20 * MINUTE), path_len: 6 }, 2);
    }
}

#[test]
fn one_long_journey_out_of_order() {
    // Thousands of events of one customer, arriving in random time order with retractions and
    // copies: the journey's events span many chunks of its container.
    for seed in 1000..1003 {
        let shape = Shape { customers: 1, per_round: 700, duplicate_share: 0.05, ..small(5) };
        check(seed, shape, Params { session: SessionRule::Gap(10 * MINUTE), path_len: 5 }, 1);
    }
}

#[test]
fn identities_stitched_into_profiles_that_merge_and_split() {
    for seed in 1100..1110 {
        let shape = Shape { customers: 6, devices: 5, links_per_round: 3, duplicate_share: 0.05, ..small(8) };
        check(seed, shape, gap30(), 1 + seed as usize % 2);
    }
}

#[test]
fn stitching_with_journey_keys_retractions_and_phantoms() {
    for seed in 1200..1206 {
        let shape = Shape {
            customers: 5,
            devices: 4,
            keys: 2,
            links_per_round: 4,
            retract_share: 0.3,
            phantom_share: 0.05,
            ..small(7)
        };
        check(seed, shape, Params { session: SessionRule::Gap(20 * MINUTE), path_len: 4 }, 2);
    }
}

#[test]
fn erased_customers_leave_every_view_and_stay_out() {
    for seed in 1300..1308 {
        let shape = Shape { customers: 6, erasure_chance: 0.5, duplicate_share: 0.05, phantom_share: 0.05, ..small(8) };
        check(seed, shape, gap30(), 1 + seed as usize % 2);
    }
}

#[test]
fn erasures_with_stitching_journey_keys_and_link_churn() {
    for seed in 1400..1408 {
        let shape = Shape {
            customers: 6,
            devices: 5,
            keys: 2,
            links_per_round: 3,
            erasure_chance: 0.6,
            retract_share: 0.25,
            phantom_share: 0.05,
            ..small(8)
        };
        check(seed, shape, Params { session: SessionRule::Gap(20 * MINUTE), path_len: 4 }, 1 + seed as usize % 2);
    }
}

#[test]
fn settled_history_folds_into_rows_and_edges() {
    // Later rounds stay at or after the settled horizon: the journeys fold what lies before it,
    // and rows, edges and segments stay what the whole history gives, around the horizon too.
    for seed in 1500..1512 {
        let shape = Shape { settle: true, duplicate_share: 0.1, retract_share: 0.25, ..small(10) };
        let session = [SessionRule::Gap(20 * MINUTE), SessionRule::ById, SessionRule::Never][seed as usize % 3];
        check(seed, shape, Params { session, path_len: 1 + seed as usize % 5 }, 1 + seed as usize % 2);
    }
}

#[test]
fn settled_long_journeys_with_keys() {
    for seed in 1600..1604 {
        let shape = Shape { customers: 2, keys: 2, per_round: 200, settle: true, duplicate_share: 0.05, ..small(8) };
        check(seed, shape, Params { session: SessionRule::Gap(5 * MINUTE), path_len: 7 }, 1);
    }
}

#[test]
fn erasing_settled_journeys_retracts_their_folded_edges() {
    for seed in 1700..1710 {
        let shape = Shape { customers: 5, settle: true, erasure_chance: 0.5, duplicate_share: 0.05, ..small(10) };
        check(seed, shape, gap30(), 1 + seed as usize % 2);
    }
}
