//! Cuts the decoded stream of a run into logical times: hands on each chunk's events, link
//! changes and rejections as they come, and seals a logical time every so many events (and,
//! for a live input, a short while after its first event), the last one at [`END_OF_INPUT`].

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use stepstone_dataflows::event::{END_OF_INPUT, Event, NO_WATERMARK};

use super::interned::{Input, LinkChange};
use super::reader::{Chunk, DecoderMessage};
use super::{Error, Rejection};

/// How long a partly filled logical time from a live input (stdin) may wait before it is cut.
const LIVE_TIME_DELAY: Duration = Duration::from_millis(100);

/// Cuts the decoded stream into logical times of events. Events are handed on chunk
/// by chunk as they are decoded, so the workers compute while the inputs are still being read.
pub struct TimeCutter {
    /// Decoded chunks.
    decoded: Receiver<DecoderMessage>,
    /// Events per logical time.
    events_per_time: usize,
    /// Whether the input is live (stdin), so partial logical times are sealed after a short delay.
    live: bool,
    /// Events handed on in the current logical time.
    in_time: usize,
    /// When the current logical time must be sealed at the latest (live input only).
    deadline: Option<Instant>,
    /// Whether the decoded stream has ended.
    finished: bool,
    /// Whether the final time, at [`END_OF_INPUT`], has been sealed.
    ended: bool,
    /// The greatest watermark of the unbounded inputs so far.
    watermark: i64,
    /// Late events accepted so far.
    late_accepted: u64,
    /// Records withheld for want of analytics consent so far.
    withheld: u64,
}

/// What the cutter hands on next.
pub enum Cut {
    /// Events of the current logical time, in arrival order, the link changes among them, and the
    /// records rejected among them, in input order.
    Events(Vec<Event>, Vec<LinkChange>, Vec<Rejection>),
    /// The current logical time is complete, with this watermark ([`END_OF_INPUT`] for the last).
    Seal(i64),
}

impl TimeCutter {
    /// A cutter over `decoded` producing logical times of about `events_per_time` events (whole decoded
    /// chunks); with `live`, a logical time is also sealed a short while after its first event.
    pub fn new(decoded: Receiver<DecoderMessage>, events_per_time: usize, live: bool) -> Self {
        TimeCutter {
            decoded,
            events_per_time,
            live,
            in_time: 0,
            deadline: None,
            finished: false,
            ended: false,
            watermark: NO_WATERMARK,
            late_accepted: 0,
            withheld: 0,
        }
    }

    /// Late events accepted so far (`late = "accept"`).
    pub fn late_accepted(&self) -> u64 {
        self.late_accepted
    }

    /// Records withheld for want of analytics consent so far.
    pub fn withheld(&self) -> u64 {
        self.withheld
    }

    /// The next cut, or `None` once the input has ended and its last logical time was sealed. The
    /// last seal is at [`END_OF_INPUT`]: every session is over when the input ends.
    pub fn next_cut(&mut self) -> Result<Option<Cut>, Error> {
        if self.finished {
            if self.ended {
                return Ok(None);
            }
            self.ended = true;
            self.watermark = END_OF_INPUT;
            return Ok(Some(self.seal()));
        }
        if self.in_time > 0 && self.in_time >= self.events_per_time {
            return Ok(Some(self.seal()));
        }
        let message = match self.deadline {
            Some(deadline) => match self.decoded.recv_deadline(deadline) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => return Ok(Some(self.seal())),
                Err(RecvTimeoutError::Disconnected) => None,
            },
            None => self.decoded.recv().ok(),
        };
        let Some(message) = message else {
            self.finished = true;
            return self.next_cut();
        };
        let Chunk { items, watermark, late_accepted } = match message {
            DecoderMessage::Items(chunk) => chunk,
            DecoderMessage::Failed(error) => return Err(error),
        };
        self.watermark = self.watermark.max(watermark);
        self.late_accepted += late_accepted;
        let mut events = Vec::with_capacity(items.len());
        let mut links = Vec::new();
        let mut rejections = Vec::new();
        for item in items {
            match item {
                Ok(Input { event, link, withheld }) => {
                    events.extend(event);
                    links.extend(link);
                    self.withheld += u64::from(withheld);
                }
                Err(rejection) => rejections.push(rejection),
            }
        }
        self.in_time += events.len() + links.len();
        if self.live && self.deadline.is_none() && !(events.is_empty() && links.is_empty()) {
            self.deadline = Some(Instant::now() + LIVE_TIME_DELAY);
        }
        Ok(Some(Cut::Events(events, links, rejections)))
    }

    /// Ends the current logical time.
    fn seal(&mut self) -> Cut {
        self.in_time = 0;
        self.deadline = None;
        Cut::Seal(self.watermark)
    }
}
