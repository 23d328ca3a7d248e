//! The segments view: rule-defined journey segments, their membership and aggregates.

/// An aggregate segment update `(members, value_micros, converted_members)`, used as the
/// difference type of the segment collection so that sums need no reduce.
pub type SegmentStats = (i64, i64, i64);
