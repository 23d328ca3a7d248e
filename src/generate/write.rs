//! Output writers of `stepstone generate`: JSONL and CSV (optionally gzip/zstd) and Arrow IPC.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{ArrayRef, Float64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::ipc::writer::FileWriter;

use super::model::{CHANNELS, DEVICES, INTENTS, KINDS, cp_name};

/// One generated event, in compact form.
#[derive(Clone, Copy)]
pub struct Record {
    /// Customer index (written as `c000123`).
    pub customer: u32,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// Index into [`CHANNELS`].
    pub channel: u8,
    /// Contact point index.
    pub cp: u8,
    /// Index into [`KINDS`].
    pub kind: u8,
    /// Index into [`INTENTS`].
    pub intent: u8,
    /// Index into [`DEVICES`].
    pub device: u8,
    /// Purchase value in cents.
    pub value: Option<u32>,
}

/// Ways a record is broken.
#[derive(Clone, Copy)]
pub enum Malformed {
    /// No customer (null in Arrow).
    MissingCustomer,
    /// `"2026-13-45 99:00"` as time (null in Arrow).
    BadTime,
    /// `"abc"` as value.
    BadValue,
    /// A truncated JSON line or a CSV row with too few fields.
    Broken,
}

impl Malformed {
    /// The malformations the output format can represent.
    pub fn choices(arrow: bool) -> &'static [Malformed] {
        use Malformed::*;
        if arrow { &[MissingCustomer, BadTime] } else { &[MissingCustomer, BadTime, BadValue, Broken] }
    }
}

/// Where a text output goes, with its compression; counts the bytes that reach the target.
enum Sink {
    Plain(Counting),
    Gzip(flate2::write::GzEncoder<Counting>),
    Zstd(zstd::Encoder<'static, Counting>),
}

/// A writer counting the bytes passing through.
struct Counting {
    inner: Box<dyn Write>,
    bytes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Sink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn finish(self) -> io::Result<u64> {
        let mut inner = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        inner.flush()?;
        Ok(inner.bytes)
    }
}

/// Text records are collected here and handed to the sink in chunks of this size.
const CHUNK: usize = 1 << 17;

/// Rows per Arrow record batch.
const BATCH_ROWS: usize = 1 << 16;

/// Writes records as JSON lines or CSV rows.
pub struct TextWriter {
    csv: bool,
    sink: Sink,
    buf: Vec<u8>,
    /// The day of `date` (days since the epoch) and its `YYYY-MM-DDT` text.
    day: i64,
    date: [u8; 11],
}

/// Writes records into an Arrow IPC file.
pub struct ArrowWriter {
    writer: FileWriter<Counting>,
    schema: Arc<Schema>,
    rows: usize,
    customer: StringBuilder,
    time: TimestampMillisecondBuilder,
    channel: StringBuilder,
    cp: StringBuilder,
    kind: StringBuilder,
    value: Float64Builder,
    intent: StringBuilder,
    device: StringBuilder,
}

/// A writer for any supported output.
pub enum Writer {
    /// JSONL or CSV.
    Text(TextWriter),
    /// Arrow IPC file.
    Arrow(Box<ArrowWriter>),
}

impl Writer {
    /// Opens `out`, choosing format and compression from its extension; `-` is JSONL on stdout.
    pub fn open(out: &Path) -> anyhow::Result<Self> {
        let counting = |inner: Box<dyn Write>| Counting { inner, bytes: 0 };
        if out.as_os_str() == "-" {
            return Ok(Writer::Text(TextWriter::new(false, Sink::Plain(counting(Box::new(io::stdout().lock()))))?));
        }
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        let (stem, compression) = match name.rsplit_once('.') {
            Some((stem, "gz")) => (stem, "gz"),
            Some((stem, "zst")) => (stem, "zst"),
            _ => (name.as_str(), ""),
        };
        let format = match stem.rsplit_once('.').map(|(_, ext)| ext) {
            Some("jsonl" | "ndjson" | "json") => "jsonl",
            Some("csv") => "csv",
            Some("arrow" | "ipc" | "feather") => "arrow",
            _ => bail!("{}: unknown output format (use .jsonl, .csv or .arrow, optionally .gz/.zst)", out.display()),
        };
        if format == "arrow" && !compression.is_empty() {
            bail!("{}: Arrow IPC output cannot be compressed with .{compression}", out.display());
        }
        let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let file = counting(Box::new(io::BufWriter::with_capacity(1 << 18, file)));
        if format == "arrow" {
            return Ok(Writer::Arrow(Box::new(ArrowWriter::new(file)?)));
        }
        let sink = match compression {
            "gz" => Sink::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::default())),
            "zst" => Sink::Zstd(zstd::Encoder::new(file, 3)?),
            _ => Sink::Plain(file),
        };
        Ok(Writer::Text(TextWriter::new(format == "csv", sink)?))
    }

    /// Whether this is Arrow output (which can only hold some malformations).
    pub fn is_arrow(&self) -> bool {
        matches!(self, Writer::Arrow(_))
    }

    /// Writes one record, broken in the given way if `malformed`.
    pub fn write(&mut self, r: &Record, malformed: Option<Malformed>) -> anyhow::Result<()> {
        match self {
            Writer::Text(w) => w.write(r, malformed),
            Writer::Arrow(w) => w.write(r, malformed),
        }
    }

    /// Flushes and closes the output; returns the bytes written.
    pub fn finish(self) -> anyhow::Result<u64> {
        match self {
            Writer::Text(w) => w.finish(),
            Writer::Arrow(w) => w.finish(),
        }
    }
}

/// The field names, in output order.
const HEADER: &[u8] = b"customer,time,channel,contact_point,kind,value,intent,device\n";

impl TextWriter {
    fn new(csv: bool, sink: Sink) -> io::Result<Self> {
        let mut w = TextWriter { csv, sink, buf: Vec::with_capacity(CHUNK + 512), day: i64::MIN, date: [0; 11] };
        if csv {
            w.buf.extend_from_slice(HEADER);
        }
        Ok(w)
    }

    fn write(&mut self, r: &Record, malformed: Option<Malformed>) -> anyhow::Result<()> {
        let start = self.buf.len();
        if self.csv {
            self.csv_row(r, malformed)
        } else {
            self.json_line(r, malformed)
        }
        if let Some(Malformed::Broken) = malformed
            && !self.csv
        {
            // Cut the line in the middle of the time string.
            self.buf.truncate(start + 40);
            self.buf.push(b'\n');
        }
        if self.buf.len() >= CHUNK {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn json_line(&mut self, r: &Record, malformed: Option<Malformed>) {
        if let Some(Malformed::MissingCustomer) = malformed {
            self.buf.extend_from_slice(b"{\"time\":\"");
        } else {
            self.buf.extend_from_slice(b"{\"customer\":\"");
            push_customer(&mut self.buf, r.customer);
            self.buf.extend_from_slice(b"\",\"time\":\"");
        }
        self.push_time(r.time, malformed);
        self.buf.extend_from_slice(b"\",\"channel\":\"");
        self.buf.extend_from_slice(CHANNELS[r.channel as usize].as_bytes());
        self.buf.extend_from_slice(b"\",\"contact_point\":\"");
        self.buf.extend_from_slice(cp_name(r.cp).as_bytes());
        self.buf.extend_from_slice(b"\",\"kind\":\"");
        self.buf.extend_from_slice(KINDS[r.kind as usize].as_bytes());
        self.buf.push(b'"');
        if let Some(Malformed::BadValue) = malformed {
            self.buf.extend_from_slice(b",\"value\":\"abc\"");
        } else if let Some(cents) = r.value {
            self.buf.extend_from_slice(b",\"value\":");
            push_cents(&mut self.buf, cents);
        }
        self.buf.extend_from_slice(b",\"intent\":\"");
        self.buf.extend_from_slice(INTENTS[r.intent as usize].as_bytes());
        self.buf.extend_from_slice(b"\",\"device\":\"");
        self.buf.extend_from_slice(DEVICES[r.device as usize].as_bytes());
        self.buf.extend_from_slice(b"\"}\n");
    }

    fn csv_row(&mut self, r: &Record, malformed: Option<Malformed>) {
        if !matches!(malformed, Some(Malformed::MissingCustomer)) {
            push_customer(&mut self.buf, r.customer);
        }
        self.buf.push(b',');
        self.push_time(r.time, malformed);
        self.buf.push(b',');
        self.buf.extend_from_slice(CHANNELS[r.channel as usize].as_bytes());
        self.buf.push(b',');
        self.buf.extend_from_slice(cp_name(r.cp).as_bytes());
        self.buf.push(b',');
        self.buf.extend_from_slice(KINDS[r.kind as usize].as_bytes());
        if let Some(Malformed::Broken) = malformed {
            // A row with five of the eight fields.
            self.buf.push(b'\n');
            return;
        }
        self.buf.push(b',');
        if let Some(Malformed::BadValue) = malformed {
            self.buf.extend_from_slice(b"abc");
        } else if let Some(cents) = r.value {
            push_cents(&mut self.buf, cents);
        }
        self.buf.push(b',');
        self.buf.extend_from_slice(INTENTS[r.intent as usize].as_bytes());
        self.buf.push(b',');
        self.buf.extend_from_slice(DEVICES[r.device as usize].as_bytes());
        self.buf.push(b'\n');
    }

    /// Appends `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (or the unparseable time if so malformed).
    fn push_time(&mut self, time: i64, malformed: Option<Malformed>) {
        if let Some(Malformed::BadTime) = malformed {
            self.buf.extend_from_slice(b"2026-13-45 99:00");
            return;
        }
        let day = time.div_euclid(86_400_000);
        if day != self.day {
            self.day = day;
            let (y, m, d) = civil_from_days(day);
            let text = format!("{y:04}-{m:02}-{d:02}T");
            self.date.copy_from_slice(&text.as_bytes()[..11]);
        }
        self.buf.extend_from_slice(&self.date);
        let ms = time.rem_euclid(86_400_000) as u32;
        let (h, min, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let digit = |v: u32| b'0' + v as u8;
        self.buf.extend_from_slice(&[
            digit(h / 10),
            digit(h % 10),
            b':',
            digit(min / 10),
            digit(min % 10),
            b':',
            digit(s / 10),
            digit(s % 10),
            b'.',
            digit(milli / 100),
            digit(milli / 10 % 10),
            digit(milli % 10),
            b'Z',
        ]);
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.sink.write_all(&self.buf)?;
        Ok(self.sink.finish()?)
    }
}

/// Appends `c` and the customer index, zero-padded to six digits.
fn push_customer(buf: &mut Vec<u8>, customer: u32) {
    buf.push(b'c');
    let mut digits = [b'0'; 10];
    let mut n = customer;
    let mut at = digits.len();
    while n > 0 || at > digits.len() - 6 {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits[at..]);
}

/// Appends cents as a decimal number with two places.
fn push_cents(buf: &mut Vec<u8>, cents: u32) {
    let _ = write!(buf, "{}.{:02}", cents / 100, cents % 100);
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl ArrowWriter {
    fn new(file: Counting) -> anyhow::Result<Self> {
        let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
        let schema = Arc::new(Schema::new(vec![
            utf8("customer", true),
            Field::new("time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
            utf8("channel", false),
            utf8("contact_point", false),
            utf8("kind", false),
            Field::new("value", DataType::Float64, true),
            utf8("intent", false),
            utf8("device", false),
        ]));
        Ok(ArrowWriter {
            writer: FileWriter::try_new(file, &schema)?,
            schema,
            rows: 0,
            customer: StringBuilder::new(),
            time: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            channel: StringBuilder::new(),
            cp: StringBuilder::new(),
            kind: StringBuilder::new(),
            value: Float64Builder::new(),
            intent: StringBuilder::new(),
            device: StringBuilder::new(),
        })
    }

    fn write(&mut self, r: &Record, malformed: Option<Malformed>) -> anyhow::Result<()> {
        if let Some(Malformed::MissingCustomer) = malformed {
            self.customer.append_null();
        } else {
            let mut id = Vec::with_capacity(8);
            push_customer(&mut id, r.customer);
            self.customer.append_value(std::str::from_utf8(&id)?);
        }
        if let Some(Malformed::BadTime) = malformed {
            self.time.append_null();
        } else {
            self.time.append_value(r.time);
        }
        self.channel.append_value(CHANNELS[r.channel as usize]);
        self.cp.append_value(cp_name(r.cp));
        self.kind.append_value(KINDS[r.kind as usize]);
        self.value.append_option(r.value.map(|c| f64::from(c) / 100.0));
        self.intent.append_value(INTENTS[r.intent as usize]);
        self.device.append_value(DEVICES[r.device as usize]);
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> anyhow::Result<()> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.customer.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.cp.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.intent.finish()),
            Arc::new(self.device.finish()),
        ];
        self.writer.write(&RecordBatch::try_new(self.schema.clone(), columns)?)?;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        if self.rows > 0 {
            self.flush_batch()?;
        }
        let mut file = self.writer.into_inner()?;
        file.flush()?;
        Ok(file.bytes)
    }
}
