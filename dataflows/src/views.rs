//! All views of one pipeline, built over one events collection.

use differential_dataflow::VecCollection;

use crate::event::{Event, Params};
use crate::journeys::JourneyRow;
use crate::segments::{BoundSegment, Segments, segments};
use crate::transitions::{Transitions, transitions};
use crate::tree::journey_tree;

/// Every output collection of a pipeline.
pub struct Views<'scope> {
    /// One row of current context per journey.
    pub journeys: VecCollection<'scope, u64, JourneyRow, i64>,
    /// The contact-point and channel transition graphs.
    pub transitions: Transitions<'scope>,
    /// Segment memberships and aggregates.
    pub segments: Segments<'scope>,
}

/// Builds the journeys, transitions and segments views over `events`.
pub fn build<'scope>(
    events: VecCollection<'scope, u64, Event>,
    params: Params,
    defs: Vec<BoundSegment>,
) -> Views<'scope> {
    let tree = journey_tree(events, params);
    Views { journeys: tree.rows.clone(), transitions: transitions(tree.edges), segments: segments(tree.rows, defs) }
}
