//! What the durable event log holds: the accepted records of each ingest request, the
//! identities of each erasure, and (in checkpoints) the state that replay restores.
//!
//! Entries name everything by its string (symbol ids are numbered per process), and are encoded
//! with bincode 2 into [`super::frame`]s.

use serde::{Deserialize, Serialize};
use stepstone_dataflows::event::{Event, Identity, JourneyId, NO_WATERMARK};
use stepstone_dataflows::symbols::{Interner, Names};

use super::frame::Damage;
use crate::source::LinkChange;

/// One entry of a log segment or checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// The accepted records of one ingest request (or a chunk of a checkpoint's events).
    Records(LoggedRecords),
    /// Identities erased: a person's whole component at the time of the erasure. Their earlier
    /// events and links are gone; their later ones are dropped as they come.
    Erased(Vec<LoggedIdentity>),
    /// Idempotency keys of acknowledged requests, oldest first (checkpoints only).
    Keys(Vec<(String, u64)>),
    /// The last entry of a whole checkpoint.
    End(Resume),
}

/// Where ingest stood after the entries before: what a restarted service continues from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The arrival number the next event gets.
    pub next_seq: u64,
    /// The greatest event time HTTP ingest has admitted.
    pub clock_latest: Option<i64>,
    /// The watermark the engine has sealed with.
    pub watermark: i64,
}

impl Default for Resume {
    /// Where a service that has taken nothing stands.
    fn default() -> Self {
        Resume { next_seq: 0, clock_latest: None, watermark: NO_WATERMARK }
    }
}

impl Resume {
    /// Moves on to where `later` stands, never back.
    pub fn advance(&mut self, later: Resume) {
        self.next_seq = self.next_seq.max(later.next_seq);
        self.clock_latest = self.clock_latest.max(later.clock_latest);
        self.watermark = self.watermark.max(later.watermark);
    }
}

/// The accepted records of one ingest request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedRecords {
    /// The request's idempotency key, if it gave one.
    pub key: Option<String>,
    /// How many records the request had accepted (its answer, for a retry of the same key).
    pub accepted: u64,
    /// Its events, numbered.
    pub events: Vec<LoggedEvent>,
    /// Its link changes.
    pub links: Vec<LoggedLink>,
    /// The greatest event time HTTP ingest had admitted after the request.
    pub clock_latest: Option<i64>,
    /// The watermark of the sources after the request.
    pub watermark: i64,
}

/// An identity by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LoggedIdentity {
    /// Whether it is a device id.
    pub device: bool,
    /// The id.
    pub name: String,
}

/// A link change by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedLink {
    /// The customer side.
    pub customer: LoggedIdentity,
    /// The other side.
    pub other: LoggedIdentity,
    /// Whether the link is retracted.
    pub unlink: bool,
}

/// An [`Event`] by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// The customer id, or the device id of an anonymous event.
    pub customer: String,
    /// Whether `customer` is a device id.
    pub anonymous: bool,
    /// The journey key, if any.
    pub key: Option<String>,
    /// Event time, ms since the epoch.
    pub time: i64,
    /// Arrival number.
    pub seq: u64,
    /// The contact point.
    pub contact_point: String,
    /// The channel, if any.
    pub channel: Option<String>,
    /// The session id, if kept.
    pub session: Option<String>,
    /// Whether it converts.
    pub converting: bool,
    /// Value in micro-units.
    pub value: i64,
}

impl LoggedEvent {
    /// `event` by name.
    pub fn of(event: &Event, names: &Names<'_>) -> Self {
        LoggedEvent {
            customer: names.get(event.journey.customer).to_owned(),
            anonymous: event.journey.anonymous,
            key: event.journey.key.map(|k| names.get(k).to_owned()),
            time: event.time,
            seq: event.seq,
            contact_point: names.get(event.contact_point).to_owned(),
            channel: event.channel.map(|c| names.get(c).to_owned()),
            session: event.session.map(|s| names.get(s).to_owned()),
            converting: event.converting,
            value: event.value,
        }
    }

    /// The event, its names interned.
    pub fn to_event(&self, interner: &mut Interner) -> Event {
        Event {
            journey: JourneyId {
                customer: interner.intern(&self.customer),
                anonymous: self.anonymous,
                key: self.key.as_deref().map(|k| interner.intern(k)),
            },
            time: self.time,
            seq: self.seq,
            contact_point: interner.intern(&self.contact_point),
            channel: self.channel.as_deref().map(|c| interner.intern(c)),
            session: self.session.as_deref().map(|s| interner.intern(s)),
            converting: self.converting,
            value: self.value,
        }
    }

    /// The identity the event belongs to.
    pub fn identity(&self) -> LoggedIdentity {
        LoggedIdentity { device: self.anonymous, name: self.customer.clone() }
    }
}

impl LoggedIdentity {
    /// `identity` by name.
    pub fn of(identity: Identity, names: &Names<'_>) -> Self {
        LoggedIdentity { device: identity.device, name: names.get(identity.id).to_owned() }
    }

    /// The identity, its name interned.
    pub fn to_identity(&self, interner: &mut Interner) -> Identity {
        Identity { device: self.device, id: interner.intern(&self.name) }
    }
}

impl LoggedLink {
    /// `change` by name.
    pub fn of(change: &LinkChange, names: &Names<'_>) -> Self {
        LoggedLink {
            customer: LoggedIdentity::of(change.customer, names),
            other: LoggedIdentity::of(change.other, names),
            unlink: change.unlink,
        }
    }

    /// The link change, its names interned.
    pub fn to_change(&self, interner: &mut Interner) -> LinkChange {
        LinkChange {
            customer: self.customer.to_identity(interner),
            other: self.other.to_identity(interner),
            unlink: self.unlink,
        }
    }
}

impl Default for LoggedRecords {
    /// No records, before any event time.
    fn default() -> Self {
        LoggedRecords {
            key: None,
            accepted: 0,
            events: Vec::new(),
            links: Vec::new(),
            clock_latest: None,
            watermark: NO_WATERMARK,
        }
    }
}

impl LoggedRecords {
    /// Where ingest stood after this batch.
    pub fn resume(&self) -> Resume {
        Resume {
            next_seq: self.events.iter().map(|event| event.seq + 1).max().unwrap_or(0),
            clock_latest: self.clock_latest,
            watermark: self.watermark,
        }
    }
}

/// The bytes of `entry`.
pub fn encode(entry: &Entry) -> Vec<u8> {
    bincode::serde::encode_to_vec(entry, bincode::config::standard()).expect("log entries always encode")
}

/// The entry of `bytes`, or why they are not one.
pub fn decode(bytes: &[u8]) -> Result<Entry, Damage> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((entry, used)) if used == bytes.len() => Ok(entry),
        Ok((_, used)) => Err(Damage::TrailingBytes { used, extra: bytes.len() - used }),
        Err(error) => Err(Damage::Undecodable(error)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stepstone_dataflows::symbols::Symbols;

    use super::*;

    #[test]
    fn events_and_links_round_trip_by_name_into_another_symbol_table() {
        let before = Arc::new(Symbols::new());
        let mut interner = Interner::new(before.clone());
        let event = LoggedEvent {
            customer: "c1".into(),
            anonymous: false,
            key: Some("trip-7".into()),
            time: -5,
            seq: 42,
            contact_point: "cart".into(),
            channel: None,
            session: Some("s".into()),
            converting: true,
            value: 1_500_000,
        };
        let link = LoggedLink {
            customer: LoggedIdentity { device: false, name: "c1".into() },
            other: LoggedIdentity { device: true, name: "d9".into() },
            unlink: false,
        };
        let entry = Entry::Records(LoggedRecords {
            key: Some("k".into()),
            accepted: 2,
            events: vec![event.clone()],
            links: vec![link.clone()],
            clock_latest: Some(7),
            watermark: 3,
        });
        assert_eq!(decode(&encode(&entry)).unwrap(), entry);

        let interned = event.to_event(&mut interner);
        let after = Arc::new(Symbols::new());
        after.intern("something else first");
        assert_eq!(LoggedEvent::of(&interned, &before.names()), event);
        let moved = event.to_event(&mut Interner::new(after.clone()));
        assert_ne!(moved.contact_point, interned.contact_point);
        assert_eq!(LoggedEvent::of(&moved, &after.names()), event);
        assert_eq!(LoggedLink::of(&link.to_change(&mut interner), &before.names()), link);
    }

    #[test]
    fn trailing_or_garbled_bytes_are_not_an_entry() {
        let mut bytes = encode(&Entry::End(Resume::default()));
        assert!(decode(&bytes).is_ok());
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(Damage::TrailingBytes { extra: 1, .. })));
        assert!(matches!(decode(&[0xff, 0xff, 0xff]), Err(Damage::Undecodable(_))));
    }
}
