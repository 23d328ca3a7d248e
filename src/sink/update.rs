//! The changes the dataflows hand to the sinks, one logical time at a time.

use stepstone_dataflows::event::{Identity, JourneyId};
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::segments::SegmentStats;
use stepstone_dataflows::symbols::Sym;
use stepstone_dataflows::transitions::EdgeStats;

/// One change to an output table. Differences are summed: a journey row or a membership with
/// `+1` enters, with `-1` leaves; aggregate rows carry their change as the difference. Names are
/// interned [`Sym`]s, resolved by the writers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Update {
    /// A journey row enters (`+1`) or leaves (`-1`). The row is boxed: the other updates are a
    /// fraction of its size and a time holds as many memberships as rows, and the sink table
    /// keeps the box the row arrives in.
    Journey(Box<JourneyRow>, i64),
    /// A contact-point edge `(from, to)` changes by `(count, dwell_ms_total)`.
    Transition((Sym, Sym), EdgeStats),
    /// A channel edge `(from, to)` changes by `(count, dwell_ms_total)`.
    ChannelTransition((Sym, Sym), EdgeStats),
    /// A journey enters (`+1`) or leaves (`-1`) the segment named by the symbol.
    Membership((Sym, JourneyId), i64),
    /// A segment's aggregates change.
    Segment(Sym, SegmentStats),
    /// A segment's member count for one channel changes: `((segment, channel), diff)`.
    SegmentChannel((Sym, Sym), i64),
    /// With identity stitching: an identity joins (`+1`) or leaves (`-1`) a profile,
    /// `((identity, profile), diff)`.
    Profile((Identity, Identity), isize),
}

impl Update {
    /// A journey row entering (`+1`) or leaving (`-1`).
    pub fn journey(row: JourneyRow, diff: i64) -> Self {
        Update::Journey(Box::new(row), diff)
    }
}
