//! The materialised output tables: the current state of every view, maintained by applying the
//! consolidated updates of each completed logical time.
//!
//! The tables hold interned [`Sym`]s and know nothing of names: whatever they return in an order
//! is in symbol-id order, which is deterministic for one interning but says nothing about the
//! names' order. The writers resolve the names and sort by them.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::consolidation::consolidate;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};

use stepstone_dataflows::event::{Identity, JourneyId, NO_WATERMARK};
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::segments::SegmentStats;
use stepstone_dataflows::symbols::Sym;
use stepstone_dataflows::transitions::EdgeStats;

use super::update::Update;

/// A hash map for tables that grow with the number of journeys: it moves its entries to a
/// larger table a few at a time as it grows, instead of all at once, so that no single logical
/// time pauses to copy the whole table.
pub type GrowingMap<K, V> = griddle::HashMap<K, V, FxBuildHasher>;

/// The current row of each journey. Rows are boxed so that the map's entries stay small: when
/// it grows, the new table it fills is a fraction of the rows' size.
#[derive(Clone, Debug, Default)]
pub struct JourneyTable(GrowingMap<JourneyId, Box<JourneyRow>>);

impl JourneyTable {
    /// The number of journeys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no journeys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The row of `journey`, if it has one.
    pub fn get(&self, journey: &JourneyId) -> Option<&JourneyRow> {
        self.0.get(journey).map(|row| &**row)
    }

    /// Every journey, in no particular order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &JourneyId> {
        self.0.keys()
    }

    /// Every row, in no particular order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &JourneyRow> {
        self.0.values().map(|row| &**row)
    }
}

impl std::ops::Index<&JourneyId> for JourneyTable {
    type Output = JourneyRow;

    fn index(&self, journey: &JourneyId) -> &JourneyRow {
        self.get(journey).expect("a journey of the table")
    }
}

/// The set counterpart of [`GrowingMap`].
pub type GrowingSet<K> = griddle::HashSet<K, FxBuildHasher>;

/// A contact-point or channel edge `(from, to)`.
pub type EdgeKey = (Sym, Sym);

/// A membership of a journey in a segment: `(segment, journey)`.
pub type MembershipKey = (Sym, JourneyId);

/// The current state of all output tables.
#[derive(Clone, Debug)]
pub struct Tables {
    /// The latest applied logical time.
    time: Option<u64>,
    /// The watermark of that time: sessions that ended before it are over.
    watermark: i64,
    /// The current row of each journey.
    journeys: JourneyTable,
    /// The contact-point transition graph.
    transitions: HashMap<EdgeKey, EdgeStats>,
    /// The channel transition graph.
    channel_transitions: HashMap<EdgeKey, EdgeStats>,
    /// The members of each segment; segments without members have no entry.
    memberships: HashMap<Sym, GrowingSet<JourneyId>>,
    /// The aggregates of each segment with a non-zero aggregate.
    segments: HashMap<Sym, SegmentStats>,
    /// Members per `(segment, channel)`.
    segment_channels: HashMap<EdgeKey, i64>,
    /// The segments declared in the configuration, which are always reported; sorted by id.
    declared_segments: Vec<Sym>,
    /// The journey keys of each customer with keyed journeys (lookups by customer).
    keys_of: HashMap<Identity, Vec<Sym>>,
    /// With identity stitching, the profile of every linked identity.
    profiles: HashMap<Identity, Identity>,
    /// The targets of the contact-point edges out of each source (lookups by `from`).
    edges_from: HashMap<Sym, Vec<Sym>>,
}

/// The consolidated changes of one logical time that the delta writer reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The logical time the changes belong to.
    pub time: u64,
    /// Journey rows that left (negative difference) or entered (positive difference), sorted by
    /// difference first (removals before insertions), then by journey id and row (symbol ids,
    /// not names: the delta writer sorts by the resolved names).
    pub journeys: Vec<(JourneyRow, i64)>,
    /// Segment memberships that ended or began, sorted like `journeys`.
    pub memberships: Vec<(MembershipKey, i64)>,
    /// Identities that left (negative) or joined (positive) a profile: `(identity, profile)`,
    /// sorted like `journeys`.
    pub profiles: Vec<((Identity, Identity), i64)>,
}

impl Changes {
    /// Whether nothing changed at this time in the journeys or memberships.
    pub fn is_empty(&self) -> bool {
        self.journeys.is_empty() && self.memberships.is_empty() && self.profiles.is_empty()
    }
}

impl Tables {
    /// Empty tables; `segment_names` are the segments declared in the configuration, reported
    /// by [`Tables::segments`] even while they have no members.
    pub fn new(segment_names: Vec<Sym>) -> Self {
        let mut declared_segments = segment_names;
        declared_segments.sort();
        declared_segments.dedup();
        Tables {
            time: None,
            watermark: NO_WATERMARK,
            journeys: JourneyTable::default(),
            transitions: HashMap::default(),
            channel_transitions: HashMap::default(),
            memberships: HashMap::default(),
            segments: HashMap::default(),
            segment_channels: HashMap::default(),
            declared_segments,
            keys_of: HashMap::default(),
            profiles: HashMap::default(),
            edges_from: HashMap::default(),
        }
    }

    /// Applies all updates of the completed logical time `time`, given in any order.
    ///
    /// Identical payloads are consolidated first (so a journey row leaving and re-entering
    /// unchanged is no change at all), then removals are applied before insertions. Aggregate
    /// entries whose statistics sum to zero are dropped. Inconsistent updates (removing a row
    /// that is not present, a second row for a journey) are applied as well as possible and
    /// logged as warnings.
    pub fn apply(&mut self, time: u64, updates: &[Update]) -> Changes {
        self.apply_reporting(time, updates.iter().cloned(), true)
    }

    /// Applies the updates of `time` as [`Tables::apply`] does, taking them by value so that
    /// journey rows move into the table; the returned [`Changes`] list the changed journey rows
    /// only with `report_rows` (they are copies), its memberships always.
    pub fn apply_reporting(
        &mut self,
        time: u64,
        updates: impl IntoIterator<Item = Update>,
        report_rows: bool,
    ) -> Changes {
        if let Some(previous) = self.time
            && time < previous
        {
            tracing::warn!(time, previous, "sink tables: logical time went backwards");
        }
        self.time = Some(time);

        let mut journeys: Vec<(Box<JourneyRow>, i64)> = Vec::new();
        let mut memberships: HashMap<MembershipKey, i64> = HashMap::default();
        let mut transitions: HashMap<EdgeKey, EdgeStats> = HashMap::default();
        let mut channel_transitions: HashMap<EdgeKey, EdgeStats> = HashMap::default();
        let mut segments: HashMap<Sym, SegmentStats> = HashMap::default();
        let mut segment_channels: HashMap<EdgeKey, i64> = HashMap::default();
        let mut profiles: HashMap<(Identity, Identity), i64> = HashMap::default();
        for update in updates {
            match update {
                Update::Journey(row, diff) => journeys.push((row, diff)),
                Update::Membership(key, diff) => *memberships.entry(key).or_default() += diff,
                Update::Transition(edge, stats) => add_edge(transitions.entry(edge).or_default(), stats),
                Update::ChannelTransition(edge, stats) => add_edge(channel_transitions.entry(edge).or_default(), stats),
                Update::Segment(name, stats) => add_segment(segments.entry(name).or_default(), stats),
                Update::SegmentChannel(key, diff) => *segment_channels.entry(key).or_default() += diff,
                Update::Profile(pair, diff) => *profiles.entry(pair).or_default() += diff as i64,
            }
        }

        // Consolidation leaves the rows by journey, then row; the stable sort by difference puts
        // removals first and keeps that order within each.
        consolidate_rows(&mut journeys);
        journeys.sort_by_key(|(_, diff)| *diff);
        for (row, diff) in &journeys {
            if *diff < 0 {
                self.remove_journey(row, *diff);
            }
        }
        let reported = if report_rows {
            journeys.iter().map(|(row, diff)| ((**row).clone(), *diff)).collect()
        } else {
            Vec::new()
        };
        for (row, diff) in journeys {
            if diff > 0 {
                self.insert_journey(row, diff);
            }
        }

        let memberships = sorted_changes(memberships, |key| *key);
        for &((segment, journey), diff) in &memberships {
            if diff < 0 {
                self.remove_membership(segment, journey, diff);
            }
        }
        for &((segment, journey), diff) in &memberships {
            if diff > 0 {
                self.insert_membership(segment, journey, diff);
            }
        }

        let profiles = sorted_changes(profiles, |pair| *pair);
        for &((identity, profile), diff) in &profiles {
            if diff < 0 && self.profiles.get(&identity) == Some(&profile) {
                self.profiles.remove(&identity);
            }
        }
        for &((identity, profile), diff) in &profiles {
            if diff > 0 {
                self.profiles.insert(identity, profile);
            }
        }

        for (edge, stats) in transitions {
            let existed = self.transitions.contains_key(&edge);
            apply_aggregate(&mut self.transitions, edge, stats, add_edge);
            match (existed, self.transitions.contains_key(&edge)) {
                (false, true) => self.edges_from.entry(edge.0).or_default().push(edge.1),
                (true, false) => remove_from_index(&mut self.edges_from, edge.0, &edge.1),
                _ => {}
            }
        }
        for (edge, stats) in channel_transitions {
            apply_aggregate(&mut self.channel_transitions, edge, stats, add_edge);
        }
        for (name, stats) in segments {
            apply_aggregate(&mut self.segments, name, stats, add_segment);
        }
        for (key, diff) in segment_channels {
            apply_aggregate(&mut self.segment_channels, key, diff, |a, b| *a += b);
        }

        Changes { time, journeys: reported, memberships, profiles }
    }

    /// The latest applied logical time, `None` before the first [`Tables::apply`].
    pub fn time(&self) -> Option<u64> {
        self.time
    }

    /// Records the watermark of the latest applied time.
    pub fn set_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }

    /// The watermark of the latest applied time: [`NO_WATERMARK`] before any, and
    /// [`END_OF_INPUT`](stepstone_dataflows::event::END_OF_INPUT) once the input has ended.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The current row of each journey.
    pub fn journeys(&self) -> &JourneyTable {
        &self.journeys
    }

    /// The contact-point transition graph: `(from, to)` → `(count, dwell_ms_total)`.
    pub fn transitions(&self) -> &HashMap<EdgeKey, EdgeStats> {
        &self.transitions
    }

    /// The channel transition graph: `(from, to)` → `(count, dwell_ms_total)`.
    pub fn channel_transitions(&self) -> &HashMap<EdgeKey, EdgeStats> {
        &self.channel_transitions
    }

    /// The profile `identity` belongs to: itself unless links stitch it into another.
    pub fn profile_of(&self, identity: Identity) -> Identity {
        self.profiles.get(&identity).copied().unwrap_or(identity)
    }

    /// The identity named `id`: the customer id if a journey or a link knows it, or else the
    /// device id; `None` when neither is known.
    pub fn identity_of(&self, id: Sym) -> Option<Identity> {
        [false, true].into_iter().map(|device| Identity { device, id }).find(|identity| {
            self.profiles.contains_key(identity)
                || self.journeys.get(&JourneyId { customer: id, anonymous: identity.device, key: None }).is_some()
                || self.keys_of.contains_key(identity)
        })
    }

    /// The profile of the customer id (or else the device id) `id`, with its journeys' rows;
    /// `None` when neither has a journey.
    pub fn profile_rows(&self, id: Sym) -> Option<(Identity, Vec<&JourneyRow>)> {
        [false, true].into_iter().find_map(|device| {
            let profile = self.profile_of(Identity { device, id });
            let rows = self.journeys_of(profile);
            (!rows.is_empty()).then_some((profile, rows))
        })
    }

    /// The current rows of the journeys of the profile named `profile`, by journey key (no key
    /// first).
    pub fn journeys_of(&self, profile: Identity) -> Vec<&JourneyRow> {
        let unkeyed = JourneyId { customer: profile.id, anonymous: profile.device, key: None };
        let keyed =
            self.keys_of.get(&profile).into_iter().flatten().map(move |&key| JourneyId { key: Some(key), ..unkeyed });
        let mut rows: Vec<&JourneyRow> =
            std::iter::once(unkeyed).chain(keyed).filter_map(|id| self.journeys.get(&id)).collect();
        rows.sort_by_key(|row| row.journey.key);
        rows
    }

    /// The segments `journey` is a member of, sorted by symbol id.
    pub fn segments_of(&self, journey: JourneyId) -> Vec<Sym> {
        let mut segments: Vec<Sym> = self
            .memberships
            .iter()
            .filter(|(_, members)| members.contains(&journey))
            .map(|(segment, _)| *segment)
            .collect();
        segments.sort_unstable();
        segments
    }

    /// The contact-point edges out of `from`: `(to, (count, dwell_ms_total))`, sorted by symbol id.
    pub fn transitions_from(&self, from: Sym) -> Vec<(Sym, EdgeStats)> {
        let mut edges: Vec<(Sym, EdgeStats)> = self
            .edges_from
            .get(&from)
            .into_iter()
            .flatten()
            .filter_map(|&to| self.transitions.get(&(from, to)).map(|stats| (to, *stats)))
            .collect();
        edges.sort_unstable();
        edges
    }

    /// Whether `segment` is declared in the configuration or has members.
    pub fn has_segment(&self, segment: Sym) -> bool {
        self.declared_segments.binary_search(&segment).is_ok() || self.segments.contains_key(&segment)
    }

    /// The current members of `segment` (empty for unknown segments or segments without members).
    pub fn members(&self, segment: Sym) -> impl Iterator<Item = &JourneyId> {
        self.memberships.get(&segment).into_iter().flatten()
    }

    /// Every segment with its `(members, value_micros, converted_members)`, sorted by symbol id
    /// (not by name): the declared segments (with zero statistics while they have no members)
    /// and any other segment with non-zero statistics.
    pub fn segments(&self) -> Vec<(Sym, SegmentStats)> {
        let mut rows: BTreeMap<Sym, SegmentStats> =
            self.declared_segments.iter().map(|&name| (name, (0, 0, 0))).collect();
        rows.extend(self.segments.iter().map(|(&name, &stats)| (name, stats)));
        rows.into_iter().collect()
    }

    /// Members per `(segment, channel)`.
    pub fn segment_channels(&self) -> &HashMap<EdgeKey, i64> {
        &self.segment_channels
    }

    /// Removes `row`, which left with the (negative) difference `diff`.
    fn remove_journey(&mut self, row: &JourneyRow, diff: i64) {
        if diff != -1 {
            tracing::warn!(?row.journey, diff, "sink tables: journey row left more than once");
        }
        match self.journeys.0.entry(row.journey) {
            griddle::hash_map::Entry::Occupied(current) if **current.get() == *row => {
                current.remove();
                if let Some(key) = row.journey.key {
                    remove_from_index(&mut self.keys_of, row.journey.identity(), &key);
                }
            }
            griddle::hash_map::Entry::Occupied(current) => {
                tracing::warn!(?row.journey, current = ?current.get(), removed = ?row,
                    "sink tables: removed journey row differs from the current one; keeping the current row");
            }
            griddle::hash_map::Entry::Vacant(_) => {
                tracing::warn!(?row.journey, "sink tables: removed journey row is not present");
            }
        }
    }

    /// Inserts `row`, which entered with the (positive) difference `diff`.
    fn insert_journey(&mut self, row: Box<JourneyRow>, diff: i64) {
        if diff != 1 {
            tracing::warn!(?row.journey, diff, "sink tables: journey row entered more than once");
        }
        if row.journey.key.is_some() && self.journeys.get(&row.journey).is_none() {
            self.keys_of.entry(row.journey.identity()).or_default().extend(row.journey.key);
        }
        let journey = row.journey;
        if let Some(replaced) = self.journeys.0.insert(journey, row) {
            tracing::warn!(
                ?journey,
                ?replaced,
                "sink tables: journey row entered without its previous row leaving; replaced it"
            );
        }
    }

    /// Ends the membership of `journey` in `segment`.
    fn remove_membership(&mut self, segment: Sym, journey: JourneyId, diff: i64) {
        let removed = match self.memberships.get_mut(&segment) {
            Some(members) => {
                let removed = members.remove(&journey);
                if members.is_empty() {
                    self.memberships.remove(&segment);
                }
                removed
            }
            None => false,
        };
        if !removed || diff != -1 {
            tracing::warn!(?segment, ?journey, diff, removed, "sink tables: inconsistent membership removal");
        }
    }

    /// Begins the membership of `journey` in `segment`.
    fn insert_membership(&mut self, segment: Sym, journey: JourneyId, diff: i64) {
        let inserted = self.memberships.entry(segment).or_default().insert(journey);
        if !inserted || diff != 1 {
            tracing::warn!(?segment, ?journey, diff, inserted, "sink tables: inconsistent membership insertion");
        }
    }
}

/// Removes `value` from the list of `key` in `index`, and the list once it is empty.
fn remove_from_index<K: Eq + Hash>(index: &mut HashMap<K, Vec<Sym>>, key: K, value: &Sym) {
    if let Some(values) = index.get_mut(&key) {
        values.retain(|v| v != value);
        if values.is_empty() {
            index.remove(&key);
        }
    }
}

/// Adds edge statistics.
fn add_edge(total: &mut EdgeStats, change: EdgeStats) {
    total.0 += change.0;
    total.1 += change.1;
}

/// Adds segment statistics.
fn add_segment(total: &mut SegmentStats, change: SegmentStats) {
    total.0 += change.0;
    total.1 += change.1;
    total.2 += change.2;
}

/// Consolidates `rows` (sorts them by row, sums the differences of equal rows and drops those
/// that sum to zero), first sorting them by journey, a row's first field, from keys read once:
/// the consolidation's own sort then finds them in order but within a journey, instead of
/// following two boxes, scattered in memory, for every comparison of a full sort.
fn consolidate_rows(rows: &mut Vec<(Box<JourneyRow>, i64)>) {
    rows.sort_by_cached_key(|(row, _)| row.journey);
    consolidate(rows);
}

/// The non-zero consolidated differences, sorted by difference (removals first), then by `key`
/// (cheap to compare), then by payload.
fn sorted_changes<K: Ord, S: Ord>(consolidated: HashMap<K, i64>, key: impl Fn(&K) -> S) -> Vec<(K, i64)> {
    let mut changes: Vec<(K, i64)> = consolidated.into_iter().filter(|(_, diff)| *diff != 0).collect();
    changes.sort_unstable_by(|(a, da), (b, db)| da.cmp(db).then_with(|| key(a).cmp(&key(b))).then_with(|| a.cmp(b)));
    changes
}

/// Adds `change` to the aggregate `key` of `table`, dropping the entry once it sums to zero.
fn apply_aggregate<K, S>(table: &mut HashMap<K, S>, key: K, change: S, add: impl Fn(&mut S, S))
where
    K: Eq + Hash,
    S: Copy + Default + PartialEq,
{
    if change == S::default() {
        return;
    }
    match table.entry(key) {
        Entry::Occupied(mut entry) => {
            add(entry.get_mut(), change);
            if *entry.get() == S::default() {
                entry.remove();
            }
        }
        Entry::Vacant(entry) => {
            entry.insert(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use stepstone_dataflows::event::JourneyId;
    use stepstone_dataflows::row::JourneyRow;
    use stepstone_dataflows::symbols::Symbols;

    use super::{consolidate, consolidate_rows};

    /// A row of one of `journeys` customers, with one of a few variants of its fields.
    fn random_row(rng: &mut StdRng, symbols: &Symbols, journeys: usize) -> JourneyRow {
        let customer = symbols.intern(&format!("c{}", rng.random_range(0..journeys)));
        let events = rng.random_range(1..4);
        JourneyRow {
            journey: JourneyId::customer(customer),
            first_time: 0,
            last_time: rng.random_range(0..3),
            events,
            sessions: 1,
            session_start: 0,
            session_events: events,
            path: (0..events).map(|i| symbols.intern(["home", "cart"][(i % 2) as usize])).collect(),
            channel_events: Vec::new(),
            conversions: rng.random_range(0..2),
            last_conversion_time: None,
            value: 0,
        }
    }

    #[test]
    fn consolidating_boxed_rows_matches_consolidation_by_row() {
        let symbols = Symbols::new();
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let journeys = rng.random_range(1..20);
            let rows: Vec<(JourneyRow, i64)> = (0..rng.random_range(0..60))
                .map(|_| (random_row(&mut rng, &symbols, journeys), [-1, 1, 1, 2][rng.random_range(0..4)]))
                .collect();
            let mut expected = rows.clone();
            consolidate(&mut expected);
            let mut boxed: Vec<(Box<JourneyRow>, i64)> =
                rows.into_iter().map(|(row, diff)| (Box::new(row), diff)).collect();
            consolidate_rows(&mut boxed);
            let got: Vec<(JourneyRow, i64)> = boxed.into_iter().map(|(row, diff)| (*row, diff)).collect();
            assert_eq!(got, expected, "seed {seed}");
        }
    }
}
