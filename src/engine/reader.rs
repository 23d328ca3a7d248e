//! The input stage of a run: a thread that opens the inputs in order and decodes them, and the
//! epoch cutter that numbers events in arrival order, sends bad records to the dead-letter file
//! and groups good ones into logical times (epochs) for the workers.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressStyle};
use stepstone_dataflows::event::{Event, JourneyId};
use stepstone_dataflows::symbols::Symbols;

use crate::source::{self, DecodeOptions, Format, Record, Rejection};

/// Records decoded from files are passed on in chunks of this many.
const FILE_CHUNK: usize = 4096;

/// How long a partly filled epoch from a live input (stdin) may wait before it is cut.
const LIVE_EPOCH_DELAY: Duration = Duration::from_millis(100);

/// What the decoding thread passes on.
pub enum Decoded {
    /// Decoded records and rejections, in input order.
    Items(Vec<Result<Record, Rejection>>),
    /// An input could not be opened; the run stops.
    Failed(anyhow::Error),
}

/// Starts the thread that opens and decodes `inputs` in order, sending chunks to the returned
/// receiver. It shows a progress bar on stderr when stderr is a terminal and every input is a
/// file of known size.
pub fn spawn_decoder(
    inputs: Vec<String>,
    format: Option<Format>,
    options: DecodeOptions,
) -> (Receiver<Decoded>, JoinHandle<()>) {
    let (sender, receiver) = crossbeam_channel::bounded(16);
    let handle = std::thread::Builder::new()
        .name("stepstone-decoder".into())
        .spawn(move || decode_all(&inputs, format, &options, &sender))
        .expect("spawning the decoder thread");
    (receiver, handle)
}

/// The body of the decoding thread.
fn decode_all(inputs: &[String], format: Option<Format>, options: &DecodeOptions, sender: &Sender<Decoded>) {
    let progress = progress_bar(inputs);
    let mut done_bytes = 0;
    for path in inputs {
        let source = match source::open(path, format, options).with_context(|| format!("opening input {path}")) {
            Ok(source) => source,
            Err(error) => {
                let _ = sender.send(Decoded::Failed(error));
                return;
            }
        };
        let chunk_size = if path == "-" { 1 } else { FILE_CHUNK };
        let bytes_read = source.bytes_read();
        let total = source.total_bytes().unwrap_or(0);
        let mut chunk = Vec::with_capacity(chunk_size);
        for item in source {
            chunk.push(item);
            if chunk.len() == chunk_size {
                if let Some(bar) = &progress {
                    bar.set_position(done_bytes + bytes_read.load(Ordering::Relaxed));
                }
                if sender.send(Decoded::Items(std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size)))).is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() && sender.send(Decoded::Items(chunk)).is_err() {
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

/// Cuts the decoded stream into epochs of events, numbering events in arrival order and
/// interning their strings.
pub struct EpochCutter {
    /// Where strings are interned.
    symbols: Arc<Symbols>,
    /// Whether events keep their session ids (only when sessions are decided by id).
    keep_sessions: bool,
    /// Decoded chunks.
    decoded: Receiver<Decoded>,
    /// Events per epoch.
    epoch_events: usize,
    /// Whether the input is live (stdin), so partial epochs are cut after a short delay.
    live: bool,
    /// The next event's arrival sequence number.
    next_seq: u64,
    /// Whether the decoded stream has ended.
    finished: bool,
}

/// One cut of the stream: the events of an epoch and the rejections seen while filling it.
#[derive(Default)]
pub struct Cut {
    /// The epoch's events, in arrival order.
    pub events: Vec<Event>,
    /// Records rejected while the epoch was filled, in input order.
    pub rejections: Vec<Rejection>,
}

impl EpochCutter {
    /// A cutter over `decoded` producing epochs of about `epoch_events` events (whole decoded
    /// chunks), interning strings in `symbols`.
    pub fn new(
        decoded: Receiver<Decoded>,
        symbols: Arc<Symbols>,
        keep_sessions: bool,
        epoch_events: usize,
        live: bool,
    ) -> Self {
        EpochCutter { symbols, keep_sessions, decoded, epoch_events, live, next_seq: 0, finished: false }
    }

    /// The next cut, or `None` once the input has ended and everything was handed out.
    pub fn next_cut(&mut self) -> anyhow::Result<Option<Cut>> {
        if self.finished {
            return Ok(None);
        }
        let mut cut = Cut::default();
        let mut deadline: Option<Instant> = None;
        while cut.events.len() < self.epoch_events {
            let message = match deadline {
                Some(deadline) => match self.decoded.recv_deadline(deadline) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.finished = true;
                        break;
                    }
                },
                None => match self.decoded.recv() {
                    Ok(message) => message,
                    Err(_) => {
                        self.finished = true;
                        break;
                    }
                },
            };
            let items = match message {
                Decoded::Items(items) => items,
                Decoded::Failed(error) => return Err(error),
            };
            for item in items {
                match item {
                    Ok(record) => cut.events.push(self.event(record)),
                    Err(rejection) => cut.rejections.push(rejection),
                }
            }
            if self.live && deadline.is_none() && !cut.events.is_empty() {
                deadline = Some(Instant::now() + LIVE_EPOCH_DELAY);
            }
        }
        if self.finished && cut.events.is_empty() && cut.rejections.is_empty() {
            return Ok(None);
        }
        Ok(Some(cut))
    }

    /// The event of `record`, numbered by arrival.
    fn event(&mut self, record: Record) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        to_event(record, seq, &self.symbols, self.keep_sessions)
    }
}

/// The dataflow event of a decoded `record` with arrival number `seq`, its strings interned in
/// `symbols`; its session id is kept only with `keep_sessions` (sessions decided by id).
pub fn to_event(record: Record, seq: u64, symbols: &Symbols, keep_sessions: bool) -> Event {
    let session = if keep_sessions { record.session.map(|s| symbols.intern(&s)) } else { None };
    Event {
        journey: JourneyId {
            customer: symbols.intern(&record.customer),
            key: record.journey_key.map(|k| symbols.intern(&k)),
        },
        time: record.time,
        seq,
        contact_point: symbols.intern(&record.contact_point),
        channel: record.channel.map(|c| symbols.intern(&c)),
        session,
        converting: record.converting,
        value: record.value,
    }
}
