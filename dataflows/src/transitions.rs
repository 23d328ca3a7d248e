//! The transitions view: the contact-point transition graph with synthetic start, conversion
//! and exit states (the reserved symbols of [`crate::symbols`]), and the same graph between channels.

/// An aggregate edge update: `(count, dwell_ms_total)`, used as the difference type of the
/// transition collections so that sums need no reduce.
pub type EdgeStats = (i64, i64);

use differential_dataflow::VecCollection;

use crate::summary::Edge;
use crate::symbols::Sym;

/// The outputs of the transitions view.
pub struct Transitions<'scope> {
    /// Per contact-point edge `(from, to)`, its `(count, dwell_ms_total)` as the difference.
    pub contact_points: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
    /// Per channel edge `(from, to)`, likewise.
    pub channels: VecCollection<'scope, u64, (Sym, Sym), EdgeStats>,
}

/// Aggregates journey edges into the contact-point and channel transition graphs.
///
/// Probabilities are `count / out-degree(from)`; they depend on every edge out of `from`, so
/// the sinks derive them from the counts when they read the graph.
pub fn transitions<'scope>(edges: VecCollection<'scope, u64, Edge, i64>) -> Transitions<'scope> {
    let contact_points = edges.clone().explode(|e| Some(((e.from, e.to), (1, e.dwell)))).consolidate();
    let channels = edges.explode(|e| Some(((e.from_channel, e.to_channel), (1, e.dwell)))).consolidate();
    Transitions { contact_points, channels }
}
