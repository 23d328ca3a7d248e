//! The input stage of a run: a thread that opens the inputs in order and decodes them, and the
//! epoch cutter that numbers events in arrival order, separates bad records for the dead-letter
//! file and groups good ones into logical times (epochs) for the workers.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressStyle};
use stepstone_dataflows::event::{END_OF_INPUT, Event, Identity, JourneyId, NO_WATERMARK};
use stepstone_dataflows::symbols::{Interner, Symbols};

use crate::source::lateness::{Arrival, EventTime, SourceClock};
use crate::source::{self, DecodeOptions, Format, RecordRef, Rejection};

/// Records decoded from files are passed on in chunks of this many.
const FILE_CHUNK: usize = 4096;

/// How long a partly filled epoch from a live input (stdin) may wait before it is cut.
const LIVE_EPOCH_DELAY: Duration = Duration::from_millis(100);

/// What the decoding thread passes on.
pub enum Decoded {
    /// Decoded events, numbered in arrival order, and rejections, in input order.
    Items(Chunk),
    /// An input could not be opened; the run stops.
    Failed(anyhow::Error),
}

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

/// A chunk of decoded records, with the event time reached.
pub struct Chunk {
    /// Inputs and rejections, in input order.
    pub items: Vec<Result<Input, Rejection>>,
    /// The greatest watermark of the unbounded inputs read so far ([`NO_WATERMARK`] if none).
    pub watermark: i64,
    /// Late events among `items` that were accepted (`late = "accept"`).
    pub late_accepted: u64,
}

/// What the decoding thread reads and how it makes events.
pub struct DecoderSpec {
    /// The inputs, read in order.
    pub inputs: Vec<String>,
    /// Their format, if not from the extensions.
    pub format: Option<Format>,
    /// Column mapping, time format, conversion rule, journey key.
    pub options: DecodeOptions,
    /// Where the events' strings are interned.
    pub symbols: Arc<Symbols>,
    /// Whether events keep their session ids (only when sessions are decided by id).
    pub keep_sessions: bool,
    /// The watermark settings of the unbounded inputs (stdin, followed files).
    pub event_time: EventTime,
}

/// Starts the thread that opens and decodes the inputs in order, interning the events' strings
/// and numbering them in arrival order, and sends chunks to the returned receiver. It shows a
/// progress bar on stderr when stderr is a terminal and every input is a file of known size.
pub fn spawn_decoder(spec: DecoderSpec) -> (Receiver<Decoded>, JoinHandle<()>) {
    let (sender, receiver) = crossbeam_channel::bounded(16);
    let handle = std::thread::Builder::new()
        .name("stepstone-decoder".into())
        .spawn(move || decode_all(spec, &sender))
        .expect("spawning the decoder thread");
    (receiver, handle)
}

/// The body of the decoding thread.
fn decode_all(spec: DecoderSpec, sender: &Sender<Decoded>) {
    let DecoderSpec { inputs, format, options, symbols, keep_sessions, event_time } = spec;
    let inputs = &inputs[..];
    let options = &options;
    let mut interner = Interner::new(symbols);
    let mut seq = 0u64;
    let mut watermark = NO_WATERMARK;
    let progress = progress_bar(inputs);
    let mut done_bytes = 0;
    for path in inputs {
        let mut source = match source::open(path, format, options).with_context(|| format!("opening input {path}")) {
            Ok(source) => source,
            Err(error) => {
                let _ = sender.send(Decoded::Failed(error));
                return;
            }
        };
        // Records of a live input (stdin, or a followed file at its end) must not wait in a
        // chunk for records that may come much later.
        let unbounded = path == "-" || options.follow.is_some();
        // Records of a live input must not wait in a chunk for records that may come much later.
        let chunk_size = if unbounded { 1 } else { FILE_CHUNK };
        let mut clock = unbounded.then(|| SourceClock::new(event_time));
        let bytes_read = source.bytes_read();
        let total = source.total_bytes().unwrap_or(0);
        let mut chunk = Vec::with_capacity(chunk_size);
        let mut late_accepted = 0;
        loop {
            let item = source.next_with(|record| {
                if let Some(clock) = &mut clock
                    && clock.admit(record.time)? == Arrival::LateAccepted
                {
                    late_accepted += 1;
                }
                Ok(to_input(&record, seq, &mut interner, keep_sessions))
            });
            let Some(item) = item else { break };
            seq += u64::from(item.as_ref().is_ok_and(|input| input.event.is_some()));
            chunk.push(item);
            if chunk.len() == chunk_size {
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes + bytes_read.load(Ordering::Relaxed));
                }
                if let Some(clock) = &clock {
                    watermark = watermark.max(clock.watermark());
                }
                let items = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                let late_accepted = std::mem::take(&mut late_accepted);
                if sender.send(Decoded::Items(Chunk { items, watermark, late_accepted })).is_err() {
                    return;
                }
            }
        }
        if let Some(clock) = &clock {
            watermark = watermark.max(clock.watermark());
        }
        if !chunk.is_empty() && sender.send(Decoded::Items(Chunk { items: chunk, watermark, late_accepted })).is_err() {
            return;
        }
        done_bytes += total;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
}

/// A byte-based progress bar over all `inputs`, if stderr is a terminal and all are files.
fn progress_bar(inputs: &[String]) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || inputs.iter().any(|p| p == "-") {
        return None;
    }
    let total: u64 = inputs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .expect("a valid progress template"),
    );
    Some(bar)
}

/// Cuts the decoded stream into logical times (epochs) of events. Events are handed on chunk
/// by chunk as they are decoded, so the workers compute while the inputs are still being read.
pub struct EpochCutter {
    /// Decoded chunks.
    decoded: Receiver<Decoded>,
    /// Events per epoch.
    epoch_events: usize,
    /// Whether the input is live (stdin), so partial epochs are sealed after a short delay.
    live: bool,
    /// Events handed on in the current epoch.
    in_epoch: usize,
    /// When the current epoch must be sealed at the latest (live input only).
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
    /// Events of the current epoch, in arrival order, the link changes among them, and the
    /// records rejected among them, in input order.
    Events(Vec<Event>, Vec<LinkChange>, Vec<Rejection>),
    /// The current epoch is complete, with this watermark ([`END_OF_INPUT`] for the last).
    Seal(i64),
}

impl EpochCutter {
    /// A cutter over `decoded` producing epochs of about `epoch_events` events (whole decoded
    /// chunks); with `live`, an epoch is also sealed a short while after its first event.
    pub fn new(decoded: Receiver<Decoded>, epoch_events: usize, live: bool) -> Self {
        EpochCutter {
            decoded,
            epoch_events,
            live,
            in_epoch: 0,
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

    /// The next cut, or `None` once the input has ended and its last epoch was sealed. The
    /// last seal is at [`END_OF_INPUT`]: every session is over when the input ends.
    pub fn next_cut(&mut self) -> anyhow::Result<Option<Cut>> {
        if self.finished {
            if self.ended {
                return Ok(None);
            }
            self.ended = true;
            self.watermark = END_OF_INPUT;
            return Ok(Some(self.seal()));
        }
        if self.in_epoch > 0 && self.in_epoch >= self.epoch_events {
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
            Decoded::Items(chunk) => chunk,
            Decoded::Failed(error) => return Err(error),
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
        self.in_epoch += events.len() + links.len();
        if self.live && self.deadline.is_none() && !(events.is_empty() && links.is_empty()) {
            self.deadline = Some(Instant::now() + LIVE_EPOCH_DELAY);
        }
        Ok(Some(Cut::Events(events, links, rejections)))
    }

    /// Ends the current epoch.
    fn seal(&mut self) -> Cut {
        self.in_epoch = 0;
        self.deadline = None;
        Cut::Seal(self.watermark)
    }
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
