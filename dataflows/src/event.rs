//! Decoded interaction events: the one input of every dataflow, and the rules that order them.

use serde::{Deserialize, Serialize};

use crate::symbols::Sym;

/// Identifies one journey: a profile (a customer, or an anonymous device), and the journey key
/// when journeys are split by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JourneyId {
    /// The customer id; for an anonymous profile, its device id.
    pub customer: Sym,
    /// Whether the profile is anonymous: no customer id is known for it, and `customer` is a
    /// device id.
    pub anonymous: bool,
    /// The journey key (`--journey-key`), when journeys are split by one; `None` otherwise or when
    /// the event has no value for it.
    pub key: Option<Sym>,
}

impl JourneyId {
    /// A journey of `customer` without a journey key.
    pub fn customer(customer: Sym) -> Self {
        JourneyId { customer, anonymous: false, key: None }
    }

    /// The journey of the anonymous profile of `device`, without a journey key.
    pub fn device(device: Sym) -> Self {
        JourneyId { customer: device, anonymous: true, key: None }
    }

    /// The identity the journey belongs to, before identities are stitched into profiles.
    pub fn identity(&self) -> Identity {
        Identity { device: self.anonymous, id: self.customer }
    }

    /// The hash that places a journey on a worker (`hash % workers`): every event of a
    /// journey is processed by the same worker. Deterministic across runs and processes.
    pub fn placement_hash(&self) -> u64 {
        use std::hash::BuildHasher;
        // The splitmix64 finaliser, so that every bit of the hash depends on every input bit.
        let mut z = rustc_hash::FxBuildHasher.hash_one(self);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One identity: a customer id, or a device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// Whether `id` is a device id.
    pub device: bool,
    /// The id.
    pub id: Sym,
}

/// One interaction event, as the dataflows see it.
///
/// Events of a journey are ordered by `(time, seq)`: event time first, then input order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Event {
    /// The journey the event belongs to: that of its own identity (its customer id, or its
    /// device id when it has none), until [`crate::identity::stitch`] moves it to its profile's.
    pub journey: JourneyId,
    /// Event time in milliseconds since the Unix epoch (UTC).
    pub time: i64,
    /// Input order (file row or arrival sequence): decides between events of equal time.
    pub seq: u64,
    /// Where the interaction happened: page, campaign, ticket, store, …
    pub contact_point: Sym,
    /// The channel (web, app, email, …), if known.
    pub channel: Option<Sym>,
    /// A session id given by the source, if any (only kept when sessions are [`SessionRule::ById`]).
    pub session: Option<Sym>,
    /// Whether the event is a conversion (decided at decode time by the conversion rule).
    pub converting: bool,
    /// The event's value in micro-units (see [`value_to_micros`]), so sums are exact.
    pub value: i64,
}

/// How a journey is cut into sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionRule {
    /// A new session starts when the gap to the previous event is strictly greater than this
    /// many milliseconds.
    Gap(i64),
    /// One session per journey, never split.
    Never,
    /// The events' session ids decide: a new session starts where the id changes.
    ById,
}

impl SessionRule {
    /// Whether a new session starts between two consecutive events `a` then `b`.
    pub fn breaks(&self, a_time: i64, a_session: Option<Sym>, b_time: i64, b_session: Option<Sym>) -> bool {
        match self {
            SessionRule::Gap(gap) => b_time - a_time > *gap,
            SessionRule::Never => false,
            SessionRule::ById => a_session != b_session,
        }
    }

    /// The event time after which the session of `last`, the last event of its journey, has
    /// ended: once the watermark is past it, no event that could extend the session is still
    /// to come. Sessions that no gap ends (one session per journey, or ids deciding) end only
    /// at [`END_OF_INPUT`].
    pub fn ends_after(&self, last_time: i64) -> i64 {
        match self {
            SessionRule::Gap(gap) => last_time.saturating_add(*gap).min(END_OF_INPUT - 1),
            SessionRule::Never | SessionRule::ById => END_OF_INPUT - 1,
        }
    }
}

/// The watermark of an input that has ended: every session is over.
pub const END_OF_INPUT: i64 = i64::MAX;

/// The watermark before any event: no session is known to be over.
pub const NO_WATERMARK: i64 = i64::MIN;

/// What the seal of a logical time says about event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Clock {
    /// Sessions that ended before it are over ([`NO_WATERMARK`] before any, [`END_OF_INPUT`]
    /// once the input has ended).
    pub watermark: i64,
    /// The settled horizon: no later logical time brings an event update (insertion or
    /// retraction) at an event time before it, so the journeys fold their events before it
    /// into their rows and keep only what later events still need ([`NO_WATERMARK`]: no
    /// promise, every event is kept).
    pub settled: i64,
}

impl Clock {
    /// A clock with `watermark` and no settled horizon.
    pub fn watermark(watermark: i64) -> Self {
        Clock { watermark, settled: NO_WATERMARK }
    }
}

/// Parameters shared by the journey and transition views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// How journeys are cut into sessions.
    pub session: SessionRule,
    /// How many of the last contact points a journey row keeps in its path.
    pub path_len: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { session: SessionRule::Gap(30 * 60 * 1000), path_len: 5 }
    }
}

/// Micro-units per unit of value: values are kept as integers so that sums do not depend on
/// the order in which workers add them.
pub const VALUE_SCALE: f64 = 1_000_000.0;

/// Converts a value to micro-units; `None` when it is not finite or out of range.
pub fn value_to_micros(value: f64) -> Option<i64> {
    let scaled = (value * VALUE_SCALE).round();
    (scaled.is_finite() && scaled.abs() < 9.0e18).then_some(scaled as i64)
}

/// Converts micro-units back to a value.
pub fn micros_to_value(micros: i64) -> f64 {
    micros as f64 / VALUE_SCALE
}
