//! The links between identities that the engine has stated, when identities are stitched: each
//! link enters the dataflow once, leaves when it is retracted or erased, and an erasure finds the
//! whole person (every identity connected to the one named) here.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use stepstone_dataflows::event::Identity;
use stepstone_dataflows::identity::{Link, Node};
use stepstone_dataflows::symbols::Symbols;

use crate::source::LinkChange;

/// The links between identities the engine has stated, so that each link enters the dataflow
/// once and leaves when it is retracted.
pub struct LinkBook {
    /// The names of the identities.
    symbols: Arc<Symbols>,
    /// The links present, each as its two identities in order.
    present: FxHashSet<(Identity, Identity)>,
}

impl LinkBook {
    /// No links yet, between identities named in `symbols`.
    pub fn new(symbols: Arc<Symbols>) -> Self {
        LinkBook { symbols, present: FxHashSet::default() }
    }

    /// The dataflow updates of `changes`: a new link enters, a retracted present link leaves;
    /// links that name an `erased` identity are ignored.
    pub fn updates(&mut self, changes: &[LinkChange], erased: &FxHashSet<Identity>) -> Vec<(Link, isize)> {
        let mut updates = Vec::new();
        for change in changes {
            if erased.contains(&change.customer) || erased.contains(&change.other) {
                continue;
            }
            let pair = (change.customer.min(change.other), change.customer.max(change.other));
            let diff = match change.unlink {
                false if self.present.insert(pair) => 1,
                true if self.present.remove(&pair) => -1,
                _ => continue,
            };
            updates.push((self.link(pair), diff));
        }
        updates
    }

    /// The dataflow link of a present `pair`.
    fn link(&self, (a, b): (Identity, Identity)) -> Link {
        let node = |identity: Identity| Node {
            device: identity.device,
            name: self.symbols.name(identity.id).to_string(),
            sym: identity.id,
        };
        (node(a), node(b))
    }

    /// Every identity connected to `identity` by present links, `identity` first.
    pub fn component(&self, identity: Identity) -> Vec<Identity> {
        let mut neighbours: FxHashMap<Identity, Vec<Identity>> = FxHashMap::default();
        for &(a, b) in &self.present {
            neighbours.entry(a).or_default().push(b);
            neighbours.entry(b).or_default().push(a);
        }
        let mut component = vec![identity];
        let mut seen: FxHashSet<Identity> = component.iter().copied().collect();
        let mut next = 0;
        while let Some(&at) = component.get(next) {
            next += 1;
            for &other in neighbours.get(&at).into_iter().flatten() {
                if seen.insert(other) {
                    component.push(other);
                }
            }
        }
        component
    }

    /// Retracts every present link of the `erased` identities: the dataflow updates.
    pub fn erase(&mut self, erased: &FxHashSet<Identity>) -> Vec<(Link, isize)> {
        let gone: Vec<(Identity, Identity)> =
            self.present.iter().filter(|(a, b)| erased.contains(a) || erased.contains(b)).copied().collect();
        gone.into_iter()
            .map(|pair| {
                self.present.remove(&pair);
                (self.link(pair), -1)
            })
            .collect()
    }
}
