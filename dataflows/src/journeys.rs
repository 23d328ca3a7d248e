//! The journeys view: one row of current context per journey.

use serde::{Deserialize, Serialize};

use crate::event::JourneyId;

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
    pub path: Vec<String>,
    /// Events per channel, sorted by channel; events without a channel are not counted.
    pub channel_events: Vec<(String, u64)>,
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

    /// The distinct channels, sorted.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channel_events.iter().map(|(c, _)| c.as_str())
    }

    /// The last contact point.
    pub fn last_contact_point(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or("")
    }

    /// Duration of the current session in milliseconds.
    pub fn session_duration(&self) -> i64 {
        self.last_time - self.session_start
    }
}
