//! The segments view: rule-defined journey segments, their membership and aggregates.
//!
//! Membership is a plain function of a journey row, so every view here is a linear map of the
//! journeys collection: a changed row retracts its old memberships and asserts its new ones, and
//! the aggregates travel as difference types that the sinks add up.

use differential_dataflow::{AsCollection, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use crate::event::JourneyId;
use crate::row::JourneyRow;
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
///
/// One pass over each row change evaluates every rule once and emits the row's memberships,
/// its contribution to each segment's aggregates and its channels, so rows are not copied per
/// segment. The contributions are summed per batch of row changes, not consolidated across
/// batches or workers (as with [`crate::transitions::transitions`]): a reader adds them up.
pub fn segments<'scope>(
    journeys: VecCollection<'scope, u64, JourneyRow, i64>,
    defs: Vec<BoundSegment>,
) -> Segments<'scope> {
    let mut builder = OperatorBuilder::new("Segments".to_owned(), journeys.inner.scope());
    let mut input = builder.new_input(journeys.inner, Pipeline);
    let (members_output, memberships) = builder.new_output::<Vec<((Sym, JourneyId), u64, i64)>>();
    let (stats_output, stats) = builder.new_output::<Vec<(Sym, u64, SegmentStats)>>();
    let (channels_output, channels) = builder.new_output::<Vec<((Sym, Sym), u64, i64)>>();
    let mut members_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(members_output);
    let mut stats_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(stats_output);
    let mut channels_output = OutputBuilder::<_, CapacityContainerBuilder<_>>::from(channels_output);
    builder.build(move |_capabilities| {
        move |_frontiers| {
            let mut members_output = members_output.activate();
            let mut stats_output = stats_output.activate();
            let mut channels_output = channels_output.activate();
            input.for_each(|capability, data| {
                let members_cap = capability.retain_least(0);
                let stats_cap = capability.retain_least(1);
                let channels_cap = capability.retain_least(2);
                let (Some(members_cap), Some(stats_cap), Some(channels_cap)) = (members_cap, stats_cap, channels_cap)
                else {
                    return;
                };
                let mut members = members_output.session(&members_cap);
                let mut stats: FxHashMap<(Sym, u64), SegmentStats> = FxHashMap::default();
                let mut channels: FxHashMap<((Sym, Sym), u64), i64> = FxHashMap::default();
                for (row, time, diff) in data.drain(..) {
                    for def in defs.iter().filter(|d| d.rule.matches(&row)) {
                        members.give(((def.name, row.journey), time, diff));
                        let sums = stats.entry((def.name, time)).or_default();
                        sums.0 += diff;
                        sums.1 += diff * row.value;
                        sums.2 += diff * i64::from(row.converted());
                        for channel in row.channels() {
                            *channels.entry(((def.name, channel), time)).or_default() += diff;
                        }
                    }
                }
                stats_output.session(&stats_cap).give_iterator(
                    stats
                        .into_iter()
                        .filter(|(_, sums)| *sums != (0, 0, 0))
                        .map(|((name, time), sums)| (name, time, sums)),
                );
                channels_output.session(&channels_cap).give_iterator(
                    channels.into_iter().filter(|(_, diff)| *diff != 0).map(|((key, time), diff)| (key, time, diff)),
                );
            });
        }
    });
    Segments {
        memberships: memberships.as_collection(),
        stats: stats.as_collection(),
        channels: channels.as_collection(),
    }
}
