//! The transitions view: the contact-point transition graph with synthetic start, conversion
//! and exit states (the reserved symbols of [`crate::symbols`]), and the same graph between channels.

/// An aggregate edge update: `(count, dwell_ms_total)`, used as the difference type of the
/// transition collections so that sums need no reduce.
pub type EdgeStats = (i64, i64);

use differential_dataflow::VecCollection;

use crate::symbols::Sym;

/// The outputs of the transitions view.
pub struct Transitions<'scope> {
    /// Per contact-point edge `(from, to)`, its `(count, dwell_ms_total)` as the difference.
    pub contact_points: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
    /// Per channel edge `(from, to)`, likewise.
    pub channels: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
}

/// The contact-point and channel transition graphs: the journeys' edge changes, summed per
/// worker and logical time. They are not consolidated across workers, which would add an
/// exchange and an arrangement to every logical time's path (and its latency): a reader adds
/// up the changes of all workers, as the sink tables do.
///
/// Probabilities are `count / out-degree(from)`; they depend on every edge out of `from`, so
/// the sinks derive them from the counts when they read the graph.
pub fn transitions<'scope>(
    edges: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
    channel_edges: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
) -> Transitions<'scope> {
    Transitions { contact_points: edges, channels: channel_edges }
}
