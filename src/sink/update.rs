//! The changes the dataflows hand to the sinks, one logical time at a time.

use stepstone_dataflows::event::JourneyId;
use stepstone_dataflows::journeys::JourneyRow;
use stepstone_dataflows::segments::SegmentStats;
use stepstone_dataflows::transitions::EdgeStats;

/// One change to an output table. Differences are summed: a journey row or a membership with
/// `+1` enters, with `-1` leaves; aggregate rows carry their change as the difference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Update {
    /// A journey row enters (`+1`) or leaves (`-1`).
    Journey(JourneyRow, i64),
    /// A contact-point edge `(from, to)` changes by `(count, dwell_ms_total)`.
    Transition((String, String), EdgeStats),
    /// A channel edge `(from, to)` changes by `(count, dwell_ms_total)`.
    ChannelTransition((String, String), EdgeStats),
    /// A journey enters (`+1`) or leaves (`-1`) a segment.
    Membership((String, JourneyId), i64),
    /// A segment's aggregates change.
    Segment(String, SegmentStats),
    /// A segment's member count for one channel changes.
    SegmentChannel((String, String), i64),
}
