//! The decoder thread of a run: opens the inputs in order, decodes them, interns their strings
//! and numbers their events in arrival order, and passes them on in [`Chunk`]s as they come,
//! with the watermark of the unbounded inputs.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use indicatif::{ProgressBar, ProgressStyle};
use stepstone_dataflows::event::NO_WATERMARK;
use stepstone_dataflows::symbols::{Interner, Symbols};

use super::interned::{Input, to_input};
use super::lateness::{Arrival, EventTime, SourceClock};
use super::{DecodeOptions, Error, Format, Rejection};

/// Records decoded from files are passed on in chunks of this many.
const FILE_CHUNK: usize = 4096;

/// What the decoding thread passes on.
pub enum DecoderMessage {
    /// Decoded events, numbered in arrival order, and rejections, in input order.
    Items(Chunk),
    /// An input could not be opened; the run stops.
    Failed(Error),
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
pub fn spawn_decoder(spec: DecoderSpec) -> (Receiver<DecoderMessage>, JoinHandle<()>) {
    let (sender, receiver) = crossbeam_channel::bounded(16);
    let handle = std::thread::Builder::new()
        .name("stepstone-decoder".into())
        .spawn(move || decode_all(spec, &sender))
        .expect("spawning the decoder thread");
    (receiver, handle)
}

/// The body of the decoding thread.
fn decode_all(spec: DecoderSpec, sender: &Sender<DecoderMessage>) {
    let DecoderSpec { inputs, format, options, symbols, keep_sessions, event_time } = spec;
    let inputs = &inputs[..];
    let options = &options;
    let mut interner = Interner::new(symbols);
    let mut seq = 0u64;
    let mut watermark = NO_WATERMARK;
    let progress = progress_bar(inputs);
    let mut done_bytes = 0;
    for path in inputs {
        let mut source = match super::open(path, format, options) {
            Ok(source) => source,
            Err(error) => {
                let _ = sender.send(DecoderMessage::Failed(error));
                return;
            }
        };
        // Records of a live input (stdin, or a followed file at its end) must not wait in a
        // chunk for records that may come much later.
        let unbounded = path == "-" || options.follow.is_some();
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
                if sender.send(DecoderMessage::Items(Chunk { items, watermark, late_accepted })).is_err() {
                    return;
                }
            }
        }
        if let Some(clock) = &clock {
            watermark = watermark.max(clock.watermark());
        }
        if !chunk.is_empty()
            && sender.send(DecoderMessage::Items(Chunk { items: chunk, watermark, late_accepted })).is_err()
        {
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
