//! The segments view: rule-defined journey segments, their membership and aggregates.
//!
//! Membership is a plain function of a journey row, so every view here is a linear map of the
//! journeys collection: a changed row retracts its old memberships and asserts its new ones, and
//! the aggregates travel as difference types that the sinks add up.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::event::JourneyId;
use crate::journeys::JourneyRow;
use crate::rules::{BoundRule, Rule};
use crate::symbols::{Sym, Symbols};

/// An aggregate segment update `(members, value_micros, converted_members)`, used as the
/// difference type of the segment collection so that sums need no reduce.
pub type SegmentStats = (i64, i64, i64);

/// A named segment: the journeys whose rows satisfy its rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentDef {
    /// The segment's name.
    pub name: String,
    /// The membership rule.
    pub rule: Rule,
}

impl SegmentDef {
    /// The segment with its name and rule literals interned in `symbols`.
    pub fn bind(&self, symbols: &Symbols) -> BoundSegment {
        BoundSegment { name: symbols.intern(&self.name), rule: self.rule.bind(symbols) }
    }
}

/// A segment ready for the dataflow: its name interned and its rule bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundSegment {
    /// The segment's name.
    pub name: Sym,
    /// The membership rule.
    pub rule: BoundRule,
}

/// The outputs of the segments view.
pub struct Segments<'scope> {
    /// `(segment, journey)` for every member of every segment.
    pub memberships: VecCollection<'scope, u64, (Sym, JourneyId), i64>,
    /// Per segment, its aggregates as the difference.
    pub stats: VecCollection<'scope, u64, Sym, SegmentStats>,
    /// Per `(segment, channel)`, the number of members that used the channel, as the difference.
    pub channels: VecCollection<'scope, u64, (Sym, Sym), i64>,
}

/// Builds the segments view over the journey rows.
pub fn segments<'scope>(
    journeys: VecCollection<'scope, u64, JourneyRow, i64>,
    defs: Vec<BoundSegment>,
) -> Segments<'scope> {
    let members = journeys.flat_map(move |row| {
        let names: Vec<Sym> = defs.iter().filter(|d| d.rule.matches(&row)).map(|d| d.name).collect();
        names.into_iter().map(move |name| (name, row.clone()))
    });
    let stats =
        members.clone().explode(|(name, row)| Some((name, (1, row.value, i64::from(row.converted()))))).consolidate();
    let channels = members
        .clone()
        .explode(|(name, row)| {
            let channels: Vec<Sym> = row.channels().collect();
            channels.into_iter().map(move |channel| ((name, channel), 1))
        })
        .consolidate();
    let memberships = members.map(|(name, row)| (name, row.journey));
    Segments { memberships, stats, channels }
}
