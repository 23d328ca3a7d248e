//! Tests of the materialised tables: consolidation, ordering and aggregate maintenance.

use stepstone::sink::Tables;
use stepstone::sink::update::Update;
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::symbols::{Sym, Symbols};

fn row(s: &Symbols, customer: &str, events: u64) -> JourneyRow {
    JourneyRow {
        journey: JourneyId::customer(s.intern(customer)),
        first_time: 1_700_000_000_000,
        last_time: 1_700_000_000_000 + events as i64 * 1000,
        events,
        sessions: 1,
        session_start: 1_700_000_000_000,
        session_events: events,
        path: vec![s.intern("home"); events as usize],
        channel_events: vec![(s.intern("web"), events)],
        conversions: 0,
        last_conversion_time: None,
        value: 0,
    }
}

fn edge(s: &Symbols, from: &str, to: &str) -> (Sym, Sym) {
    (s.intern(from), s.intern(to))
}

#[test]
fn unchanged_row_cancels() {
    let s = Symbols::new();
    let mut tables = Tables::new(vec![]);
    let a = row(&s, "a", 1);
    tables.apply(0, &[Update::journey(a.clone(), 1)]);
    let changes = tables.apply(1, &[Update::journey(a.clone(), 1), Update::journey(a.clone(), -1)]);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(changes.time, 1);
    assert_eq!(tables.journeys().get(&a.journey), Some(&a));
    assert_eq!(tables.time(), Some(1));
}

#[test]
fn changed_row_is_minus_old_plus_new_and_removal_precedes_insertion() {
    let s = Symbols::new();
    let mut tables = Tables::new(vec![]);
    let old = row(&s, "a", 1);
    let new = row(&s, "a", 2);
    tables.apply(0, &[Update::journey(old.clone(), 1)]);
    // The insertion comes first in the input: it must still be applied after the removal.
    let changes = tables.apply(1, &[Update::journey(new.clone(), 1), Update::journey(old.clone(), -1)]);
    assert_eq!(changes.journeys, vec![(old.clone(), -1), (new.clone(), 1)]);
    assert_eq!(tables.journeys().len(), 1);
    assert_eq!(tables.journeys().get(&new.journey), Some(&new));

    let changes = tables.apply(2, &[Update::journey(new.clone(), -1)]);
    assert_eq!(changes.journeys, vec![(new, -1)]);
    assert!(tables.journeys().is_empty());
}

#[test]
fn changes_are_sorted_deterministically() {
    let s = Symbols::new();
    // Interned in this order, so the ids are not in the names' order: the tables sort by id
    // (the delta writer sorts by name).
    let updates: Vec<Update> = ["c", "a", "b"].iter().map(|c| Update::journey(row(&s, c, 1), 1)).collect();
    let changes = tables_apply(&updates);
    let customers: Vec<Sym> = changes.journeys.iter().map(|(r, _)| r.journey.customer).collect();
    let ids = ["c", "a", "b"].map(|c| s.get(c).unwrap());
    assert!(ids.is_sorted());
    assert_eq!(customers, ids);

    let mut updates = updates;
    updates.reverse();
    assert_eq!(tables_apply(&updates), changes);
}

/// The changes of applying `updates` at time 0 to fresh tables.
fn tables_apply(updates: &[Update]) -> stepstone::sink::Changes {
    Tables::new(vec![]).apply(0, updates)
}

#[test]
fn memberships_consolidate_and_apply() {
    let s = Symbols::new();
    let buyers = s.intern("buyers");
    let mut tables = Tables::new(vec![buyers]);
    let a = JourneyId::customer(s.intern("a"));
    let b = JourneyId::customer(s.intern("b"));
    let changes = tables.apply(
        0,
        &[Update::Membership((buyers, a), 1), Update::Membership((buyers, b), 1), Update::Membership((buyers, b), -1)],
    );
    assert_eq!(changes.memberships, vec![((buyers, a), 1)]);
    assert_eq!(tables.members(buyers).collect::<Vec<_>>(), [&a]);

    let changes = tables.apply(1, &[Update::Membership((buyers, b), 1), Update::Membership((buyers, a), -1)]);
    assert_eq!(changes.memberships, vec![((buyers, a), -1), ((buyers, b), 1)]);
    assert_eq!(tables.members(buyers).collect::<Vec<_>>(), [&b]);
}

#[test]
fn aggregates_sum_and_zero_entries_disappear() {
    let s = Symbols::new();
    let (all, none) = (s.intern("all"), s.intern("none"));
    let mut tables = Tables::new(vec![none, all, none]);
    tables.apply(
        0,
        &[
            Update::Transition(edge(&s, "a", "b"), (2, 100)),
            Update::Transition(edge(&s, "a", "b"), (1, 50)),
            Update::ChannelTransition(edge(&s, "web", "email"), (1, 10)),
            Update::Segment(all, (2, 5_000_000, 1)),
            Update::SegmentChannel(edge(&s, "all", "web"), 2),
        ],
    );
    assert_eq!(tables.transitions().get(&edge(&s, "a", "b")), Some(&(3, 150)));
    assert_eq!(tables.channel_transitions().get(&edge(&s, "web", "email")), Some(&(1, 10)));
    // Sorted by id, declared segments once each.
    assert_eq!(tables.segments(), vec![(all, (2, 5_000_000, 1)), (none, (0, 0, 0))]);
    assert_eq!(tables.segment_channels().get(&edge(&s, "all", "web")), Some(&2));

    tables.apply(
        1,
        &[
            Update::Transition(edge(&s, "a", "b"), (-3, -150)),
            Update::ChannelTransition(edge(&s, "web", "email"), (-1, -10)),
            Update::Segment(all, (-2, -5_000_000, -1)),
            Update::SegmentChannel(edge(&s, "all", "web"), -2),
        ],
    );
    assert!(tables.transitions().is_empty());
    assert!(tables.channel_transitions().is_empty());
    assert!(tables.segment_channels().is_empty());
    // Declared segments remain, with zero statistics.
    assert_eq!(tables.segments(), vec![(all, (0, 0, 0)), (none, (0, 0, 0))]);
}
