//! The transitions view: the contact-point transition graph with synthetic start, conversion
//! and exit states, and the same graph between channels.

/// The synthetic state every path starts from.
pub const START: &str = "(start)";
/// The synthetic state a converting event leads to.
pub const CONVERSION: &str = "(conversion)";
/// The synthetic state the last event of a session without conversion leads to.
pub const EXIT: &str = "(exit)";
/// The channel name used for events that have none, in the channel graph.
pub const NO_CHANNEL: &str = "(none)";

/// An aggregate edge update: `(count, dwell_ms_total)`, used as the difference type of the
/// transition collections so that sums need no reduce.
pub type EdgeStats = (i64, i64);
