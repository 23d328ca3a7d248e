//! The journey tree: per-journey summaries and edges, maintained by a tree of reduces.
//!
//! A `reduce` keyed by journey would re-read the journey's whole history on every change. The
//! tree instead keys its first level by `(journey, time >> LEAF_SHIFT)`: each leaf reduce reads
//! only the events of one ~17-minute bucket and emits the edges inside it plus the bucket's
//! [`Summary`]. The middle level reads the leaf summaries of one ~3-day bucket, emits the edges
//! between neighbouring leaves, and summarises them; the top level, keyed by journey, does the
//! same over the middle summaries and produces the journey row and the journey's end edges.
//! One new event so costs the events of its leaf bucket plus a few hundred summaries at most,
//! whatever the length of the journey's history. Every edge is emitted at exactly one level.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Params};
use crate::journeys::JourneyRow;
use crate::summary::{Edge, Step, Summary, boundary_edges, event_edges, pair_edges};

/// Leaf buckets span `2^LEAF_SHIFT` ms (~17.5 minutes) of event time.
pub const LEAF_SHIFT: u32 = 20;
/// Middle buckets span `2^MID_SHIFT` ms (~3.1 days), so at most 256 leaves each.
pub const MID_SHIFT: u32 = 28;

/// What one reduce of the tree outputs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Part {
    /// A transition edge found at this level.
    Edge(Edge),
    /// The summary of the reduce's bucket, for the level above (boxed, so that the many edges
    /// stored beside it in the reduce's output stay small).
    Summary(Box<Summary>),
    /// The current context of a journey (top level only), boxed likewise.
    Row(Box<JourneyRow>),
}

/// The outputs of the journey tree.
pub struct JourneyTree<'scope> {
    /// One row per journey.
    pub rows: VecCollection<'scope, u64, JourneyRow, i64>,
    /// Every transition edge of every journey, as a multiset.
    pub edges: VecCollection<'scope, u64, Edge, i64>,
}

/// Builds the journey tree over a collection of events.
pub fn journey_tree<'scope>(events: VecCollection<'scope, u64, Event>, params: Params) -> JourneyTree<'scope> {
    let leaves = events
        .map(|event| {
            let (journey, step) = Step::from_event(event);
            ((journey, step.time >> LEAF_SHIFT), step)
        })
        .reduce_named::<_, Part, i64>("JourneyLeaves", move |_key, steps, output| {
            let mut summary: Option<Summary> = None;
            let mut previous: Option<&Step> = None;
            for (step, count) in steps {
                for _ in 0..*count {
                    output.extend(event_edges(step).map(|e| (Part::Edge(e), 1)));
                    if let Some(previous) = previous {
                        output.extend(pair_edges(previous, step, &params.session).map(|e| (Part::Edge(e), 1)));
                    }
                    let single = Summary::of_step(step);
                    match summary.as_mut() {
                        Some(summary) => summary.append(&single, &params),
                        None => summary = Some(single),
                    }
                    previous = Some(step);
                }
            }
            output.extend(summary.map(|s| (Part::Summary(Box::new(s)), 1)));
        });

    let mids = summaries(leaves.clone())
        .map(|((journey, leaf), summary)| ((journey, leaf >> (MID_SHIFT - LEAF_SHIFT)), (leaf, summary)))
        .reduce_named::<_, Part, i64>("JourneyMids", move |_key, children, output| {
            let children = children.iter().map(|((_, summary), _)| summary);
            let summary = stitch(children, &params, &mut |e| output.push((Part::Edge(e), 1)));
            output.extend(summary.map(|s| (Part::Summary(Box::new(s)), 1)));
        });

    let tops = summaries(mids.clone())
        .map(|((journey, mid), summary)| (journey, (mid, summary)))
        .reduce_named::<_, Part, i64>("JourneyTops", move |journey, children, output| {
            let children = children.iter().map(|((_, summary), _)| summary);
            if let Some(summary) = stitch(children, &params, &mut |e| output.push((Part::Edge(e), 1))) {
                output.extend(boundary_edges(&summary).map(|e| (Part::Edge(e), 1)));
                output.push((Part::Row(Box::new(summary.into_row(*journey))), 1));
            }
        });

    let edges = edges(leaves).concat(edges(mids)).concat(edges(tops.clone()));
    let rows = tops.flat_map(|(_, part)| match part {
        Part::Row(row) => Some(*row),
        _ => None,
    });
    JourneyTree { rows, edges }
}

/// Joins the summaries of consecutive children, reporting the edges between neighbours.
fn stitch<'a>(
    children: impl Iterator<Item = &'a Summary>,
    params: &Params,
    edge: &mut impl FnMut(Edge),
) -> Option<Summary> {
    let mut joined: Option<Summary> = None;
    for child in children {
        match joined.as_mut() {
            Some(joined) => {
                pair_edges(&joined.last, &child.first, &params.session).for_each(&mut *edge);
                joined.append(child, params);
            }
            None => joined = Some(child.clone()),
        }
    }
    joined
}

/// The summaries a level hands to the level above, keyed by the level's own key.
fn summaries<'scope, K: differential_dataflow::ExchangeData>(
    level: VecCollection<'scope, u64, (K, Part), i64>,
) -> VecCollection<'scope, u64, (K, Summary), i64> {
    level.flat_map(|(key, part)| match part {
        Part::Summary(summary) => Some((key, *summary)),
        _ => None,
    })
}

/// The edges a level found.
fn edges<'scope, K: differential_dataflow::ExchangeData>(
    level: VecCollection<'scope, u64, (K, Part), i64>,
) -> VecCollection<'scope, u64, Edge, i64> {
    level.flat_map(|(_, part)| match part {
        Part::Edge(edge) => Some(edge),
        _ => None,
    })
}
