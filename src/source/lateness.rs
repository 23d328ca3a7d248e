//! Event time on the input side: the watermark of each unbounded source, and the events that
//! arrive behind it.
//!
//! The watermark of a source is its greatest event time so far minus the allowed lateness. An
//! event whose time is before its source's watermark when it arrives is late: it is rejected
//! with the reason `late` ([`LatePolicy::Reject`], the default), or applied like any other event
//! and only counted ([`LatePolicy::Accept`]); the views are exact either way. The engine seals
//! each logical time with the greatest watermark of its sources, and sessions end on it.
//!
//! Only unbounded sources (HTTP ingest, standard input, followed files) have watermarks. A
//! bounded input (a file read to its end) has no late events: nothing of it is complete until
//! all of it is read, so its row order never matters, as in the batch modes of Beam and Flink.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat};
use stepstone_dataflows::event::NO_WATERMARK;

use super::decode::Fault;
use super::{ReasonKind, SpecError};

/// What becomes of late events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Late events go to the dead letters with the reason `late`.
    #[default]
    Reject,
    /// Late events are applied (and counted).
    Accept,
}

impl FromStr for LatePolicy {
    type Err = SpecError;

    /// The policy named `name` (`reject` or `accept`; `drop` is accepted for `reject`).
    fn from_str(name: &str) -> Result<LatePolicy, SpecError> {
        match name {
            "reject" | "drop" => Ok(LatePolicy::Reject),
            "accept" => Ok(LatePolicy::Accept),
            other => Err(SpecError::UnknownChoice {
                what: "late policy",
                given: other.to_owned(),
                expected: "reject, accept",
            }),
        }
    }
}

/// The event-time settings of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTime {
    /// How far behind its source's latest event time an event may be and still be on time, ms.
    pub allowed_lateness_ms: i64,
    /// What becomes of late events.
    pub late: LatePolicy,
}

impl Default for EventTime {
    fn default() -> Self {
        EventTime { allowed_lateness_ms: 10 * 60_000, late: LatePolicy::Reject }
    }
}

/// The watermark of one unbounded source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceClock {
    settings: EventTime,
    /// The greatest event time seen so far.
    latest: Option<i64>,
    /// How many events it has admitted, so that a clock can tell whether any came since.
    admitted: u64,
}

/// The verdict on one arriving event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// At or after the watermark.
    OnTime,
    /// Before the watermark, and accepted.
    LateAccepted,
}

impl SourceClock {
    /// The clock of a source that has sent nothing yet.
    pub fn new(settings: EventTime) -> Self {
        SourceClock { settings, latest: None, admitted: 0 }
    }

    /// The clock of a source that had admitted events up to `latest` (a restarted service's
    /// HTTP ingest, from its log).
    pub fn resuming(settings: EventTime, latest: Option<i64>) -> Self {
        SourceClock { settings, latest, admitted: 0 }
    }

    /// The greatest event time admitted so far.
    pub fn latest(&self) -> Option<i64> {
        self.latest
    }

    /// The source's watermark: its greatest event time minus the allowed lateness.
    pub fn watermark(&self) -> i64 {
        self.latest.map_or(NO_WATERMARK, |latest| latest.saturating_sub(self.settings.allowed_lateness_ms))
    }

    /// Takes in an event at `time`: how it arrives, or the fault of a late event that is
    /// rejected (which leaves the clock as it was).
    pub fn admit(&mut self, time: i64) -> Result<Arrival, Fault> {
        let watermark = self.watermark();
        if time >= watermark {
            self.latest = Some(self.latest.map_or(time, |latest| latest.max(time)));
            self.admitted += 1;
            return Ok(Arrival::OnTime);
        }
        match self.settings.late {
            LatePolicy::Accept => {
                self.admitted += 1;
                Ok(Arrival::LateAccepted)
            }
            LatePolicy::Reject => Err(Fault {
                kind: ReasonKind::Late,
                field: Some("time"),
                reason: format!(
                    "time: {} is older than the source's watermark {} (its latest event time minus the allowed \
                     lateness of {})",
                    Millis(time),
                    Millis(watermark),
                    humantime::format_duration(std::time::Duration::from_millis(
                        self.settings.allowed_lateness_ms.unsigned_abs()
                    ))
                ),
            }),
        }
    }
}

/// Milliseconds since the epoch, shown as RFC 3339.
struct Millis(i64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::from_timestamp_millis(self.0) {
            Some(time) => f.write_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{} ms", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn events_behind_the_watermark_are_late() {
        let mut clock = SourceClock::new(EventTime::default());
        assert_eq!(clock.watermark(), NO_WATERMARK);
        assert_eq!(clock.admit(100 * MINUTE), Ok(Arrival::OnTime));
        assert_eq!(clock.watermark(), 90 * MINUTE);
        // Exactly at the watermark is on time; out of order but within the lateness too.
        assert_eq!(clock.admit(90 * MINUTE), Ok(Arrival::OnTime));
        assert_eq!(clock.admit(95 * MINUTE), Ok(Arrival::OnTime));
        let fault = clock.admit(90 * MINUTE - 1).expect_err("late");
        assert_eq!((fault.kind, fault.field), (ReasonKind::Late, Some("time")));
        assert!(fault.reason.contains("1970-01-01T01:29:59.999Z"), "{}", fault.reason);
        assert!(fault.reason.contains("10m"), "{}", fault.reason);
        // A rejected event leaves the clock alone; a later one moves it.
        assert_eq!(clock.watermark(), 90 * MINUTE);
        assert_eq!(clock.admit(200 * MINUTE), Ok(Arrival::OnTime));
        assert_eq!(clock.watermark(), 190 * MINUTE);
    }

    #[test]
    fn accepted_late_events_do_not_move_the_watermark() {
        let mut clock = SourceClock::new(EventTime { allowed_lateness_ms: 0, late: LatePolicy::Accept });
        assert_eq!(clock.admit(10), Ok(Arrival::OnTime));
        assert_eq!(clock.admit(9), Ok(Arrival::LateAccepted));
        assert_eq!(clock.watermark(), 10);
    }
}
