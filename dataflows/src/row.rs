//! The row of current context one journey has in the journeys view: what the journeys operator
//! emits, the segments test and the sinks show.

use serde::{Deserialize, Serialize};

use crate::event::JourneyId;
use crate::symbols::Sym;

/// The current context of one journey.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JourneyRow {
    /// The journey (customer and journey key).
    pub journey: JourneyId,
    /// Time of the first event (ms since the epoch).
    pub first_time: i64,
    /// Time of the last event.
    pub last_time: i64,
    /// Number of events.
    pub events: u64,
    /// Number of sessions.
    pub sessions: u64,
    /// Start time of the current (last) session.
    pub session_start: i64,
    /// Number of events in the current session.
    pub session_events: u64,
    /// The last `path_len` contact points, oldest first.
    pub path: Vec<Sym>,
    /// Events per channel, sorted by channel id (not name); events without a channel are not
    /// counted.
    pub channel_events: Vec<(Sym, u64)>,
    /// Number of converting events.
    pub conversions: u64,
    /// Time of the last converting event.
    pub last_conversion_time: Option<i64>,
    /// Total value in micro-units.
    pub value: i64,
}

impl JourneyRow {
    /// Whether the journey converted at least once.
    pub fn converted(&self) -> bool {
        self.conversions > 0
    }

    /// The distinct channels, in id order.
    pub fn channels(&self) -> impl Iterator<Item = Sym> + '_ {
        self.channel_events.iter().map(|(c, _)| *c)
    }

    /// The last contact point (`None` only for a row without events, which the views never make).
    pub fn last_contact_point(&self) -> Option<Sym> {
        self.path.last().copied()
    }

    /// Duration of the current session in milliseconds.
    pub fn session_duration(&self) -> i64 {
        self.last_time - self.session_start
    }
}
