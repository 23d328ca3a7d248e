//! All views of one pipeline, built over one events collection.

use differential_dataflow::VecCollection;

use crate::event::{Clock, Event, Identity, Params};
use crate::identity::{Link, profiles, stitch};
use crate::journeys::journeys;
use crate::row::JourneyRow;
use crate::segments::{BoundSegment, Segments, segments};
use crate::transitions::{Transitions, transitions};

/// Every output collection of a pipeline.
pub struct Views<'scope> {
    /// One row of current context per journey.
    pub journeys: VecCollection<'scope, u64, JourneyRow, i64>,
    /// The contact-point and channel transition graphs.
    pub transitions: Transitions<'scope>,
    /// Segment memberships and aggregates.
    pub segments: Segments<'scope>,
    /// With identity stitching, the profile of every linked identity: `(identity, profile)`.
    pub profiles: Option<VecCollection<'scope, u64, (Identity, Identity)>>,
}

/// Builds the journeys, transitions and segments views over `events`, whose sessions end (and
/// history settles) as `clocks` (each worker's own) advance. With `links`, identities are stitched into
/// profiles first ([`stitch`]); without, every identity is a profile of its own. The views
/// leave out every event and link of the identities in `erasures` (each worker's own), as if
/// they had never been.
pub fn build<'scope>(
    events: VecCollection<'scope, u64, Event>,
    links: Option<VecCollection<'scope, u64, Link>>,
    clocks: VecCollection<'scope, u64, Clock>,
    erasures: VecCollection<'scope, u64, Identity>,
    params: Params,
    defs: Vec<BoundSegment>,
) -> Views<'scope> {
    let profiles = links.map(|links| profiles(links, erasures.clone()));
    let events = match &profiles {
        Some(profiles) => stitch(events, profiles.clone()),
        None => events,
    };
    let journeys = journeys(events, clocks, erasures, params);
    Views {
        journeys: journeys.rows.clone(),
        transitions: transitions(journeys.edges, journeys.channel_edges),
        segments: segments(journeys.rows, defs),
        profiles,
    }
}
