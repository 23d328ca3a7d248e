//! The input side of the data path: opens event files (JSON Lines, CSV, Parquet, Arrow IPC;
//! plain, gzip or zstd; or stdin), maps their columns to event fields, and decodes each row into
//! a [`Record`] (or a [`RecordRef`] borrowing the input's buffers) or a [`Rejection`] for the
//! dead-letter output.
//!
//! Inputs are streamed (line by line, CSV row by row, record batch by record batch), column
//! names are resolved to indices once per file, and a missing required column is an error from
//! [`open`] rather than a rejection per row.
//!
//! A run reads its inputs on a decoder thread ([`spawn_decoder`]) that turns every good record
//! into an interned [`Input`] (an event and/or a [`LinkChange`]) numbered in arrival order, and
//! the [`TimeCutter`] groups them into logical times for the engine.

mod columnar;
mod cutter;
pub mod dead_letter;
mod decode;
mod delimited;
mod error;
mod input;
mod interned;
mod jsonl;
pub mod lateness;
mod reader;
mod spec;
mod time;

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use cutter::{Cut, TimeCutter};
pub use dead_letter::DeadLetterWriter;
pub use error::Error;
pub use interned::{Input, LinkChange, to_event, to_input};
pub use reader::{Chunk, DecoderMessage, DecoderSpec, spawn_decoder};
pub use spec::{Conversion, ConversionField, Field, Mapping, SpecError};
pub use time::TimeFormat;

pub use decode::Fault;
use decode::RowDecoder;
use input::Compression;

/// The kind of records that say two customer ids are one person (with `previous_id` mapped).
pub const ALIAS_KIND: &str = "alias";
/// The kind of records that retract a link (with `device` or `previous_id` mapped).
pub const UNLINK_KIND: &str = "unlink";

/// A link a record states (or retracts) between its customer id and another identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLink<S> {
    /// The other identity's id.
    pub other: S,
    /// Whether `other` is a device id (else a customer id).
    pub device: bool,
    /// Whether the record retracts the link (kind `unlink`) instead of stating it.
    pub unlink: bool,
}

/// One decoded input event, before the engine assigns its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The customer id; the device id when the record has none (`anonymous`).
    pub customer: String,
    /// Whether `customer` is a device id.
    pub anonymous: bool,
    /// Whether the customer consents to analytics.
    pub consent: bool,
    /// The link the record states or retracts, if any.
    pub link: Option<RecordLink<String>>,
    /// Whether the record is an interaction; `alias` and `unlink` records are links only.
    pub interaction: bool,
    /// The value of the journey-key column, if configured and present.
    pub journey_key: Option<String>,
    /// Event time in ms since the epoch, UTC.
    pub time: i64,
    /// The contact point.
    pub contact_point: String,
    /// The channel.
    pub channel: Option<String>,
    /// The event kind.
    pub kind: Option<String>,
    /// The session id.
    pub session: Option<String>,
    /// Whether the conversion rule matches this event.
    pub converting: bool,
    /// The event value in micro-units.
    pub value: i64,
}

/// One decoded input event whose text fields borrow the input's buffers where they can, so
/// that a consumer interning them allocates nothing; [`RecordRef::to_record`] owns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The customer id; the device id when the record has none (`anonymous`).
    pub customer: Cow<'a, str>,
    /// Whether `customer` is a device id: the record has a device id but no customer id.
    pub anonymous: bool,
    /// Whether the customer consents to analytics; a record without consent counts nowhere.
    pub consent: bool,
    /// The link the record states or retracts, if any: the device id seen with the customer id,
    /// or the other customer id of an `alias` or `unlink` record.
    pub link: Option<RecordLink<Cow<'a, str>>>,
    /// Whether the record is an interaction; `alias` and `unlink` records are links only.
    pub interaction: bool,
    /// The value of the journey-key column, if configured and present.
    pub journey_key: Option<Cow<'a, str>>,
    /// Event time in ms since the epoch, UTC.
    pub time: i64,
    /// The contact point.
    pub contact_point: Cow<'a, str>,
    /// The channel.
    pub channel: Option<Cow<'a, str>>,
    /// The event kind.
    pub kind: Option<Cow<'a, str>>,
    /// The session id.
    pub session: Option<Cow<'a, str>>,
    /// Whether the conversion rule matches this event.
    pub converting: bool,
    /// The event value in micro-units.
    pub value: i64,
}

impl RecordRef<'_> {
    /// The record with its text fields owned.
    pub fn to_record(&self) -> Record {
        let owned = |text: &Option<Cow<'_, str>>| text.as_deref().map(str::to_string);
        Record {
            customer: self.customer.to_string(),
            anonymous: self.anonymous,
            consent: self.consent,
            link: self.link.as_ref().map(|l| RecordLink {
                other: l.other.to_string(),
                device: l.device,
                unlink: l.unlink,
            }),
            interaction: self.interaction,
            journey_key: owned(&self.journey_key),
            time: self.time,
            contact_point: self.contact_point.to_string(),
            channel: owned(&self.channel),
            kind: owned(&self.kind),
            session: owned(&self.session),
            converting: self.converting,
            value: self.value,
        }
    }
}

/// The category of a [`Rejection`], for counting by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// A required field is missing, null or empty.
    MissingField,
    /// The time cannot be parsed.
    BadTime,
    /// The value is not a number or out of range.
    BadValue,
    /// A cell has a type its field does not accept (boolean, object, list, …).
    BadType,
    /// The record itself is broken: malformed JSON, wrong CSV field count, invalid UTF-8.
    Malformed,
    /// The input could not be read further (I/O or decompression error); the input ends here.
    ReadError,
    /// The event time is older than its source's watermark (see [`lateness`]).
    Late,
    /// The record is over a [`RecordLimits`] limit (bytes or fields).
    TooLarge,
}

impl ReasonKind {
    /// The short name of this kind (`missing_field`, `bad_time`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::MissingField => "missing_field",
            ReasonKind::BadTime => "bad_time",
            ReasonKind::BadValue => "bad_value",
            ReasonKind::BadType => "bad_type",
            ReasonKind::Malformed => "malformed",
            ReasonKind::ReadError => "read_error",
            ReasonKind::Late => "late",
            ReasonKind::TooLarge => "too_large",
        }
    }
}

/// An input record that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The input's path, or `stdin`.
    pub source: String,
    /// 1-based line number (JSONL/CSV, the CSV header being line 1) or row number (Parquet/Arrow).
    pub line: u64,
    /// The mapped field at fault (`time`, `customer`, …), if one.
    pub field: Option<String>,
    /// Human-readable reason, e.g. `time: cannot parse "2024-13-45" as a timestamp`.
    pub reason: String,
    /// The raw record: the line, the CSV row re-joined, or the row as JSON.
    pub raw: String,
    /// The category of the reason.
    pub kind: ReasonKind,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.reason)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// A short category of the reason for counting: `missing_field`, `bad_time`, `bad_value`,
    /// `bad_type`, `malformed` or `read_error`.
    pub fn reason_kind(&self) -> &'static str {
        self.kind.as_str()
    }

    pub(crate) fn from_fault(source: &str, line: u64, fault: Fault, raw: String) -> Rejection {
        Rejection {
            source: source.to_string(),
            line,
            field: fault.field.map(str::to_string),
            reason: fault.reason,
            raw,
            kind: fault.kind,
        }
    }

    /// A malformed record at `line` of `source`, for `reason`.
    pub fn malformed(source: &str, line: u64, reason: String) -> Rejection {
        Rejection::from_fault(source, line, Fault::malformed(reason), String::new())
    }

    fn read_error(source: &str, line: u64, error: &dyn fmt::Display) -> Rejection {
        Rejection {
            source: source.to_string(),
            line,
            field: None,
            reason: format!("read error, input abandoned: {error}"),
            raw: String::new(),
            kind: ReasonKind::ReadError,
        }
    }
}

/// How rows are decoded: column mapping, time format, conversion rule and journey key.
#[derive(Clone, Debug, Default)]
pub struct DecodeOptions {
    /// Which column feeds each field.
    pub mapping: Mapping,
    /// How time cells are read.
    pub time_format: TimeFormat,
    /// Which events convert; none convert without a rule.
    pub conversion: Option<Conversion>,
    /// A column whose value becomes [`Record::journey_key`].
    pub journey_key: Option<String>,
    /// When set, JSON Lines and CSV files are read as they grow, until the flag turns true.
    pub follow: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// How large one record may be.
    pub limits: RecordLimits,
}

/// Limits on one input record, so that no record can exhaust memory or time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLimits {
    /// The largest record in bytes (a JSON line or object, a CSV row); default 1 MiB.
    pub max_bytes: usize,
    /// The most fields of one record (keys of a JSON object, CSV columns); default 1000.
    pub max_fields: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits { max_bytes: 1 << 20, max_fields: 1000 }
    }
}

/// How much of an oversized record the dead-letter output keeps.
pub(crate) const RAW_PREFIX: usize = 1024;

/// The dead-letter text of a record over the size limit: its first [`RAW_PREFIX`] bytes (cut at
/// a character boundary) and its size.
pub(crate) fn oversized_raw(prefix: &[u8], total: usize) -> String {
    let text = String::from_utf8_lossy(&prefix[..prefix.len().min(RAW_PREFIX)]);
    let mut cut = text.len().min(RAW_PREFIX);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({total} bytes)", &text[..cut])
}

/// An input file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines: one object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC, file or stream format.
    Arrow,
}

impl Format {
    /// The format of `path` from its extension, after stripping `.gz`/`.zst`.
    pub fn from_path(path: &str) -> Option<Format> {
        let (_, stem) = Compression::detect(path);
        let extension = Path::new(stem).extension()?.to_str()?.to_ascii_lowercase();
        extension.parse().ok()
    }
}

impl FromStr for Format {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            "arrow" | "arrows" | "ipc" | "feather" => Ok(Format::Arrow),
            other => Err(SpecError::UnknownChoice {
                what: "input format",
                given: other.to_owned(),
                expected: "jsonl, csv, parquet, arrow",
            }),
        }
    }
}

/// Decodes single JSON objects with the field mapping of a pipeline, as JSON Lines input does:
/// for records that arrive one by one, such as the live service's ingest.
pub struct JsonRecordDecoder {
    decoder: RowDecoder,
    source: String,
}

impl JsonRecordDecoder {
    /// A decoder for `options`, naming `source` in its rejections.
    pub fn new(options: &DecodeOptions, source: &str) -> Self {
        JsonRecordDecoder { decoder: RowDecoder::new(options), source: source.to_owned() }
    }

    /// Decodes the JSON object `text`, handing the record to `consume`; a bad record (or one
    /// in which `consume` finds a fault) is a rejection with `line` as its position.
    pub fn decode<T>(
        &self,
        text: &str,
        line: u64,
        consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
    ) -> Result<T, Rejection> {
        jsonl::decode_line(&self.decoder, text, consume)
            .map_err(|fault| Rejection::from_fault(&self.source, line, fault, text.to_owned()))
    }
}

/// Opens one input; `path` "-" is stdin (JSONL unless `format` says otherwise). `format` None =
/// detect from the extension. Fails if the file cannot be opened or a required column is absent.
pub fn open(path: &str, format: Option<Format>, options: &DecodeOptions) -> Result<Source, Error> {
    let stdin = path == "-";
    let (compression, _) = if stdin { (Compression::None, path) } else { Compression::detect(path) };
    let format = match format {
        Some(format) => format,
        None if stdin => Format::Jsonl,
        None => Format::from_path(path).ok_or_else(|| Error::UnknownFormat { path: path.to_owned() })?,
    };
    let source = if stdin { "stdin".to_string() } else { path.to_string() };
    let decoder = RowDecoder::new(options);
    if format == Format::Parquet {
        if stdin {
            return Err(Error::ParquetFromStdin);
        }
        if compression != Compression::None {
            return Err(Error::CompressedParquet { path: path.to_owned() });
        }
        let (decoder, bytes_read, total_bytes) = columnar::open_parquet(path, decoder)?;
        return Ok(Source { inner: Inner::Batches(decoder), bytes_read, total_bytes });
    }
    if options.follow.is_some() && (stdin || !matches!(format, Format::Jsonl | Format::Csv)) {
        return Err(Error::FollowFormat { path: path.to_owned() });
    }
    let opened = input::open_stream(path, compression, options.follow.as_ref())?;
    let (bytes_read, total_bytes) = (opened.bytes_read.clone(), opened.total_bytes);
    let inner = match format {
        Format::Jsonl => Inner::Jsonl(jsonl::JsonlDecoder::new(opened.reader, decoder, source)),
        Format::Csv => Inner::Csv(delimited::CsvDecoder::new(opened.reader, decoder, source)?),
        Format::Arrow | Format::Parquet => Inner::Batches(columnar::open_arrow(opened, decoder, source)?),
    };
    Ok(Source { inner, bytes_read, total_bytes })
}

/// Reads JSON Lines or CSV records from `reader` (uncompressed), labelled `source` in
/// rejections: the decoding of [`open`] without a file, for embedding and fuzzing. Fails if a
/// CSV header cannot be read or lacks a required column.
pub fn from_reader(
    reader: Box<dyn std::io::Read + Send>,
    format: Format,
    options: &DecodeOptions,
    source: &str,
) -> Result<Source, Error> {
    let decoder = RowDecoder::new(options);
    let inner = match format {
        Format::Jsonl => Inner::Jsonl(jsonl::JsonlDecoder::new(reader, decoder, source.to_owned())),
        Format::Csv => Inner::Csv(delimited::CsvDecoder::new(reader, decoder, source.to_owned())?),
        Format::Arrow | Format::Parquet => return Err(Error::NotAStream { input: source.to_owned() }),
    };
    Ok(Source { inner, bytes_read: Arc::default(), total_bytes: None })
}

/// An opened input: an iterator of decoded records and rejections.
pub struct Source {
    inner: Inner,
    bytes_read: Arc<AtomicU64>,
    total_bytes: Option<u64>,
}

/// The decoder of one open input; there is one per input, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Jsonl(jsonl::JsonlDecoder),
    Csv(delimited::CsvDecoder),
    Batches(columnar::BatchDecoder),
}

impl Source {
    /// Raw (compressed) bytes consumed from the input so far, shared for a progress bar; for
    /// Parquet an estimate from the rows decoded.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
    }

    /// The input's size in bytes, if known (not for stdin).
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }
}

impl Source {
    /// The next record, handed to `consume` while it borrows the input's buffers, or its
    /// rejection (also when `consume` finds a fault); `None` at the end of the input.
    pub fn next_with<T>(
        &mut self,
        consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
    ) -> Option<Result<T, Rejection>> {
        match &mut self.inner {
            Inner::Jsonl(d) => d.next_item(consume),
            Inner::Csv(d) => d.next_item(consume),
            Inner::Batches(d) => d.next_item(consume),
        }
    }
}

impl Iterator for Source {
    type Item = Result<Record, Rejection>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(|record| Ok(record.to_record()))
    }
}
