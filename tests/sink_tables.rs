//! Tests of the materialised tables: consolidation, ordering and aggregate maintenance.

use stepstone::sink::Tables;
use stepstone::sink::update::Update;
use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::journeys::JourneyRow;

fn row(customer: &str, events: u64) -> JourneyRow {
    JourneyRow {
        journey: JourneyId::customer(customer),
        first_time: 1_700_000_000_000,
        last_time: 1_700_000_000_000 + events as i64 * 1000,
        events,
        sessions: 1,
        session_start: 1_700_000_000_000,
        session_events: events,
        path: vec!["home".into(); events as usize],
        channel_events: vec![("web".into(), events)],
        conversions: 0,
        last_conversion_time: None,
        value: 0,
    }
}

fn edge(from: &str, to: &str) -> (String, String) {
    (from.to_owned(), to.to_owned())
}

#[test]
fn unchanged_row_cancels() {
    let mut tables = Tables::new(vec![]);
    let a = row("a", 1);
    tables.apply(0, &[Update::Journey(a.clone(), 1)]);
    let changes = tables.apply(1, &[Update::Journey(a.clone(), 1), Update::Journey(a.clone(), -1)]);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(changes.time, 1);
    assert_eq!(tables.journeys().get(&a.journey), Some(&a));
    assert_eq!(tables.time(), Some(1));
}

#[test]
fn changed_row_is_minus_old_plus_new_and_removal_precedes_insertion() {
    let mut tables = Tables::new(vec![]);
    let old = row("a", 1);
    let new = row("a", 2);
    tables.apply(0, &[Update::Journey(old.clone(), 1)]);
    // The insertion comes first in the input: it must still be applied after the removal.
    let changes = tables.apply(1, &[Update::Journey(new.clone(), 1), Update::Journey(old.clone(), -1)]);
    assert_eq!(changes.journeys, vec![(old.clone(), -1), (new.clone(), 1)]);
    assert_eq!(tables.journeys().len(), 1);
    assert_eq!(tables.journeys().get(&new.journey), Some(&new));

    let changes = tables.apply(2, &[Update::Journey(new.clone(), -1)]);
    assert_eq!(changes.journeys, vec![(new, -1)]);
    assert!(tables.journeys().is_empty());
}

#[test]
fn changes_are_sorted_deterministically() {
    let mut tables = Tables::new(vec![]);
    let updates: Vec<Update> = ["c", "a", "b"].iter().map(|c| Update::Journey(row(c, 1), 1)).collect();
    let changes = tables.apply(0, &updates);
    let customers: Vec<&str> = changes.journeys.iter().map(|(r, _)| r.journey.customer.as_str()).collect();
    assert_eq!(customers, ["a", "b", "c"]);

    let mut reversed = Tables::new(vec![]);
    let mut updates = updates;
    updates.reverse();
    assert_eq!(reversed.apply(0, &updates), changes);
}

#[test]
fn memberships_consolidate_and_apply() {
    let mut tables = Tables::new(vec!["buyers".into()]);
    let a = JourneyId::customer("a");
    let b = JourneyId::customer("b");
    let changes = tables.apply(
        0,
        &[
            Update::Membership(("buyers".into(), a.clone()), 1),
            Update::Membership(("buyers".into(), b.clone()), 1),
            Update::Membership(("buyers".into(), b.clone()), -1),
        ],
    );
    assert_eq!(changes.memberships, vec![(("buyers".into(), a.clone()), 1)]);
    assert_eq!(tables.members("buyers").collect::<Vec<_>>(), [&a]);

    let changes = tables.apply(
        1,
        &[Update::Membership(("buyers".into(), b.clone()), 1), Update::Membership(("buyers".into(), a.clone()), -1)],
    );
    assert_eq!(changes.memberships, vec![(("buyers".into(), a), -1), (("buyers".into(), b.clone()), 1)]);
    assert_eq!(tables.members("buyers").collect::<Vec<_>>(), [&b]);
}

#[test]
fn aggregates_sum_and_zero_entries_disappear() {
    let mut tables = Tables::new(vec!["all".into(), "none".into()]);
    tables.apply(
        0,
        &[
            Update::Transition(edge("a", "b"), (2, 100)),
            Update::Transition(edge("a", "b"), (1, 50)),
            Update::ChannelTransition(edge("web", "email"), (1, 10)),
            Update::Segment("all".into(), (2, 5_000_000, 1)),
            Update::SegmentChannel(edge("all", "web"), 2),
        ],
    );
    assert_eq!(tables.transitions().get(&edge("a", "b")), Some(&(3, 150)));
    assert_eq!(tables.channel_transitions().get(&edge("web", "email")), Some(&(1, 10)));
    assert_eq!(tables.segments(), vec![("all", (2, 5_000_000, 1)), ("none", (0, 0, 0))]);
    assert_eq!(tables.segment_channels().get(&edge("all", "web")), Some(&2));

    tables.apply(
        1,
        &[
            Update::Transition(edge("a", "b"), (-3, -150)),
            Update::ChannelTransition(edge("web", "email"), (-1, -10)),
            Update::Segment("all".into(), (-2, -5_000_000, -1)),
            Update::SegmentChannel(edge("all", "web"), -2),
        ],
    );
    assert!(tables.transitions().is_empty());
    assert!(tables.channel_transitions().is_empty());
    assert!(tables.segment_channels().is_empty());
    // Declared segments remain, with zero statistics.
    assert_eq!(tables.segments(), vec![("all", (0, 0, 0)), ("none", (0, 0, 0))]);
}
