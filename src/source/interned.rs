//! What a good record brings the engine: its interaction as a dataflow [`Event`] and the link
//! between identities it states or retracts ([`LinkChange`]), their strings interned. Decoding
//! ([`super::open`]) makes [`RecordRef`]s; [`to_input`] turns each into an [`Input`].

use stepstone_dataflows::event::{Event, Identity, JourneyId};
use stepstone_dataflows::symbols::Interner;

use super::RecordRef;

/// A change to the links between identities: a link stated (or retracted, `unlink`) by a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkChange {
    /// The record's customer id.
    pub customer: Identity,
    /// The identity it is linked with: a device id, or another customer id.
    pub other: Identity,
    /// Whether the record retracts the link.
    pub unlink: bool,
}

/// What one good record brings: an interaction event, a link change, or both.
#[derive(Clone, Copy, Debug)]
pub struct Input {
    /// The interaction, unless the record is a link only (`alias`, `unlink`).
    pub event: Option<Event>,
    /// The link the record states or retracts, if any.
    pub link: Option<LinkChange>,
    /// Whether the record was withheld for want of analytics consent: it brings neither
    /// event nor link, and is only counted.
    pub withheld: bool,
}

/// What a decoded `record` brings the engine: its event (with arrival number `seq`) unless it is
/// a link only, and the link it states or retracts; strings are interned through `interner`.
pub fn to_input(record: &RecordRef<'_>, seq: u64, interner: &mut Interner, keep_sessions: bool) -> Input {
    if !record.consent {
        return Input { event: None, link: None, withheld: true };
    }
    let event = record.interaction.then(|| to_event(record, seq, interner, keep_sessions));
    let link = record.link.as_ref().map(|link| LinkChange {
        customer: Identity { device: false, id: interner.intern(&record.customer) },
        other: Identity { device: link.device, id: interner.intern(&link.other) },
        unlink: link.unlink,
    });
    Input { event, link, withheld: false }
}

/// The dataflow event of a decoded `record` with arrival number `seq`, its strings interned
/// through `interner`; its session id is kept only with `keep_sessions` (sessions decided by id).
pub fn to_event(record: &RecordRef<'_>, seq: u64, interner: &mut Interner, keep_sessions: bool) -> Event {
    let session = if keep_sessions { record.session.as_deref().map(|s| interner.intern(s)) } else { None };
    Event {
        journey: JourneyId {
            customer: interner.intern(&record.customer),
            anonymous: record.anonymous,
            key: record.journey_key.as_deref().map(|k| interner.intern(k)),
        },
        time: record.time,
        seq,
        contact_point: interner.intern(&record.contact_point),
        channel: record.channel.as_deref().map(|c| interner.intern(c)),
        session,
        converting: record.converting,
        value: record.value,
    }
}
