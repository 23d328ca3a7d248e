//! Identity stitching: the identities of one person (customer ids and device ids) are linked by
//! the events that name two of them, and every event is attributed to its person's profile.
//!
//! The links form a graph whose connected components are the profiles, maintained by label
//! propagation ([`propagate`]): every identity takes the least label of its component. Labels
//! order customers before devices and then by name, so a profile is named by its smallest
//! customer id, or by its smallest device id when it has no customer id (an anonymous profile).
//! Links are added and retracted like any update: when a link goes, a profile splits, and every
//! event moves back to the journey it would have had without the link.
//!
//! The events are arranged by identity so that a change of profile moves all of an identity's
//! events at once; identities that no link mentions keep their own journey. An erased identity
//! is cut off from every link, so its events stay on its own journey, which the journeys
//! operator empties.

use differential_dataflow::VecCollection;
use differential_dataflow::algorithms::graphs::propagate::propagate;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Identity};
use crate::symbols::Sym;

/// An identity with its name, as the link graph orders it: customers before devices, then by
/// name (not by symbol, whose order is the order of first sight).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Node {
    /// Whether the identity is a device id.
    pub device: bool,
    /// The id.
    pub name: String,
    /// The id's symbol.
    pub sym: Sym,
}

impl Node {
    /// The identity this node stands for.
    pub fn identity(&self) -> Identity {
        Identity { device: self.device, id: self.sym }
    }
}

/// A link between two identities of one person: a device seen with a customer id, or a
/// customer id that is an alias of another.
pub type Link = (Node, Node);

/// The profile of every identity that some link mentions: `(identity, representative)`, the
/// representative being the least identity of its component. Links that mention an erased
/// identity (one in `erasures`, in any multiplicity) do not count: an erased identity is
/// nobody's profile.
pub fn profiles<'scope>(
    links: VecCollection<'scope, u64, Link>,
    erasures: VecCollection<'scope, u64, Identity>,
) -> VecCollection<'scope, u64, (Identity, Identity)> {
    let erased = erasures.distinct();
    let links = links
        .map(|(a, b)| (a.identity(), (a, b)))
        .antijoin(erased.clone())
        .map(|(_, (a, b))| (b.identity(), (a, b)))
        .antijoin(erased)
        .map(|(_, link)| link);
    let edges = links.flat_map(|(a, b)| [(a.clone(), b.clone()), (b, a)]).distinct();
    let nodes = edges.clone().map(|(a, _)| (a.clone(), a)).distinct();
    propagate(edges, nodes).map(|(node, label)| (node.identity(), label.identity()))
}

/// `events` with every event moved to the journey of its identity's profile (with the event's
/// journey key), `profiles` being [`profiles`] of the links.
pub fn stitch<'scope>(
    events: VecCollection<'scope, u64, Event>,
    profiles: VecCollection<'scope, u64, (Identity, Identity)>,
) -> VecCollection<'scope, u64, Event> {
    let profiles = profiles.arrange_by_key();
    let moved = events
        .clone()
        .map(|event| (event.journey.identity(), event))
        .arrange_by_key()
        .join_core(profiles, |_, event, profile| Some((*event, *profile)));
    let staying = events.concat(moved.clone().map(|(event, _)| event).negate());
    staying.concat(moved.map(|(mut event, profile)| {
        event.journey.customer = profile.id;
        event.journey.anonymous = profile.device;
        event
    }))
}
