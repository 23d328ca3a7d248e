//! Parquet and Arrow IPC decoding on the input side: iterates record batches, resolves mapped
//! columns against the schema once, and reads typed cells (strings, numbers, native timestamps
//! and dates) row by row into the row decoder.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date64Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::decode::{Cell, Fault, RowDecoder, SLOTS};
use super::input::{BUFFER, Opened, open_file};
use super::time::Number;
use super::{Error, RecordRef, Rejection};

/// Rows per batch read from Parquet.
const BATCH_ROWS: usize = 8192;

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// Progress of a Parquet file, estimated from rows decoded (Parquet reads are not sequential).
struct RowProgress {
    bytes_read: Arc<AtomicU64>,
    total_bytes: u64,
    total_rows: u64,
}

/// Streams records out of record batches (Parquet or Arrow IPC).
pub(crate) struct BatchDecoder {
    batches: Batches,
    decoder: RowDecoder,
    slots: [Option<usize>; SLOTS],
    source: String,
    progress: Option<RowProgress>,
    batch: Option<(RecordBatch, [Column; SLOTS])>,
    index: usize,
    row: u64,
    done: bool,
}

/// Opens a Parquet file, reading only the mapped columns. Returns the decoder, the progress
/// counter and the file size.
pub(crate) fn open_parquet(
    path: &str,
    decoder: RowDecoder,
) -> Result<(BatchDecoder, Arc<AtomicU64>, Option<u64>), Error> {
    let unreadable = |source| Error::Parquet { path: path.to_owned(), source };
    let file = open_file(path)?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let slots = decoder.resolve(&names, &format!("the schema of {path}"))?;
    let mut roots: Vec<usize> = slots.iter().flatten().copied().collect();
    roots.sort_unstable();
    roots.dedup();
    let slots = slots.map(|slot| slot.and_then(|index| roots.iter().position(|&r| r == index)));
    let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(unreadable)?;
    let bytes_read = Arc::new(AtomicU64::new(0));
    let progress = RowProgress { bytes_read: bytes_read.clone(), total_bytes, total_rows };
    let decoder = BatchDecoder::new(Box::new(reader), decoder, slots, path.to_string(), Some(progress));
    Ok((decoder, bytes_read, Some(total_bytes)))
}

/// Opens an Arrow IPC input, file or stream format (the file format is read sequentially as
/// the stream it contains, so compressed files and stdin work too).
pub(crate) fn open_arrow(opened: Opened, decoder: RowDecoder, source: String) -> Result<BatchDecoder, Error> {
    let unreadable = |error| Error::Read { action: "read Arrow input", input: source.clone(), source: error };
    let mut reader = opened.reader;
    let mut head = Vec::with_capacity(8);
    (&mut reader).take(8).read_to_end(&mut head).map_err(unreadable)?;
    let rest: Box<dyn Read + Send> = if head.starts_with(b"ARROW1") && head.len() == 8 {
        // The file format pads the magic with zeros to the writer's alignment (8 bytes for
        // most writers, 64 for arrow-rs); skip the padding word by word, since no message
        // starts with a zero word.
        let mut word = Vec::with_capacity(4);
        loop {
            word.clear();
            (&mut reader).take(4).read_to_end(&mut word).map_err(unreadable)?;
            if word != [0; 4] {
                break;
            }
        }
        Box::new(Cursor::new(word).chain(reader))
    } else {
        Box::new(Cursor::new(head).chain(reader))
    };
    let stream = StreamReader::try_new(std::io::BufReader::with_capacity(BUFFER, rest), None)
        .map_err(|error| Error::Arrow { input: source.clone(), source: error })?;
    let names: Vec<String> = stream.schema().fields().iter().map(|f| f.name().clone()).collect();
    let slots = decoder.resolve(&names, &format!("the schema of {source}"))?;
    Ok(BatchDecoder::new(Box::new(stream), decoder, slots, source, None))
}

impl BatchDecoder {
    fn new(
        batches: Batches,
        decoder: RowDecoder,
        slots: [Option<usize>; SLOTS],
        source: String,
        progress: Option<RowProgress>,
    ) -> BatchDecoder {
        BatchDecoder { batches, decoder, slots, source, progress, batch: None, index: 0, row: 0, done: false }
    }

    /// The next record, handed to `consume`, or rejection.
    pub fn next_item<T>(
        &mut self,
        consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
    ) -> Option<Result<T, Rejection>> {
        loop {
            if self.done {
                return None;
            }
            if let Some((batch, columns)) = &self.batch
                && self.index < batch.num_rows()
            {
                let i = self.index;
                self.index += 1;
                self.row += 1;
                let result = decode_row(&self.decoder, columns, i)
                    .and_then(consume)
                    .map_err(|fault| Rejection::from_fault(&self.source, self.row, fault, row_json(batch, i)));
                return Some(result);
            }
            match self.batches.next() {
                None => return None,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(Rejection::read_error(&self.source, self.row + 1, &e)));
                }
                Some(Ok(batch)) => {
                    let columns = self.slots.map(|slot| match slot {
                        Some(index) => Column::new(batch.column(index)),
                        None => Column::Absent,
                    });
                    if let Some(p) = &self.progress {
                        let rows = self.row + batch.num_rows() as u64;
                        let estimate = p.total_bytes as u128 * rows as u128 / p.total_rows.max(1) as u128;
                        p.bytes_read.store(estimate.min(p.total_bytes as u128) as u64, Ordering::Relaxed);
                    }
                    self.batch = Some((batch, columns));
                    self.index = 0;
                }
            }
        }
    }
}

fn decode_row<'a>(decoder: &RowDecoder, columns: &'a [Column; SLOTS], i: usize) -> Result<RecordRef<'a>, Fault> {
    let cells: [Cell<'_>; SLOTS] = std::array::from_fn(|slot| columns[slot].cell(i));
    decoder.decode(&cells)
}

/// How a native time column converts to ms.
#[derive(Clone, Copy)]
enum Scale {
    Mul(i64),
    Div(i64),
}

/// A batch column, downcast once per batch to the type its cells are read as.
enum Column {
    Absent,
    AllNull,
    Str(StringArray),
    LargeStr(LargeStringArray),
    View(StringViewArray),
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
    Time(Int64Array, Scale),
    Bool(BooleanArray),
    Other(ArrayRef, &'static str),
}

impl Column {
    fn new(array: &ArrayRef) -> Column {
        use DataType::*;
        let casted = |to: &DataType| cast(array, to).map(|a| Column::new(&a));
        let column = match array.data_type() {
            Null => Ok(Column::AllNull),
            Utf8 => Ok(Column::Str(array.as_string::<i32>().clone())),
            LargeUtf8 => Ok(Column::LargeStr(array.as_string::<i64>().clone())),
            Utf8View => Ok(Column::View(array.as_string_view().clone())),
            Int64 => Ok(Column::Int(array.as_primitive::<Int64Type>().clone())),
            UInt64 => Ok(Column::UInt(array.as_primitive().clone())),
            Float64 => Ok(Column::Float(array.as_primitive().clone())),
            Boolean => Ok(Column::Bool(array.as_boolean().clone())),
            Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 => casted(&Int64),
            Float16 | Float32 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => casted(&Float64),
            Dictionary(_, values) => casted(values),
            Date32 => casted(&Date64),
            Date64 => {
                Ok(Column::Time(array.as_primitive::<Date64Type>().reinterpret_cast::<Int64Type>(), Scale::Div(1)))
            }
            Timestamp(unit, _) => Ok(match unit {
                TimeUnit::Second => {
                    Column::Time(array.as_primitive::<TimestampSecondType>().reinterpret_cast(), Scale::Mul(1000))
                }
                TimeUnit::Millisecond => {
                    Column::Time(array.as_primitive::<TimestampMillisecondType>().reinterpret_cast(), Scale::Div(1))
                }
                TimeUnit::Microsecond => {
                    Column::Time(array.as_primitive::<TimestampMicrosecondType>().reinterpret_cast(), Scale::Div(1000))
                }
                TimeUnit::Nanosecond => Column::Time(
                    array.as_primitive::<TimestampNanosecondType>().reinterpret_cast(),
                    Scale::Div(1_000_000),
                ),
            }),
            other => Err(ArrowError::CastError(type_name(other).to_string())),
        };
        column.unwrap_or_else(|_| Column::Other(array.clone(), type_name(array.data_type())))
    }

    fn cell(&self, i: usize) -> Cell<'_> {
        match self {
            Column::Absent => Cell::Absent,
            Column::AllNull => Cell::Null,
            Column::Str(a) if a.is_valid(i) => Cell::Str(a.value(i)),
            Column::LargeStr(a) if a.is_valid(i) => Cell::Str(a.value(i)),
            Column::View(a) if a.is_valid(i) => Cell::Str(a.value(i)),
            Column::Int(a) if a.is_valid(i) => Cell::Num(Number::Int(a.value(i))),
            Column::UInt(a) if a.is_valid(i) => {
                let u = a.value(i);
                i64::try_from(u).map_or(Cell::BigUInt(u), |v| Cell::Num(Number::Int(v)))
            }
            Column::Float(a) if a.is_valid(i) => Cell::Num(Number::Float(a.value(i))),
            Column::Time(a, scale) if a.is_valid(i) => {
                let v = a.value(i);
                match scale {
                    Scale::Mul(m) => v.checked_mul(*m).map_or(Cell::Other("a timestamp out of range"), Cell::TimeMs),
                    Scale::Div(d) => Cell::TimeMs(v.div_euclid(*d)),
                }
            }
            Column::Bool(a) if a.is_valid(i) => Cell::Bool(a.value(i)),
            Column::Other(a, name) if a.is_valid(i) => Cell::Other(name),
            _ => Cell::Null,
        }
    }
}

/// A phrase naming an Arrow type no field accepts.
fn type_name(data_type: &DataType) -> &'static str {
    use DataType::*;
    match data_type {
        Boolean => "a boolean",
        List(_) | LargeList(_) | FixedSizeList(..) | ListView(_) | LargeListView(_) => "a list",
        Struct(_) => "a struct",
        Map(..) => "a map",
        Binary | LargeBinary | FixedSizeBinary(_) | BinaryView => "binary data",
        Time32(_) | Time64(_) => "a time of day",
        Duration(_) => "a duration",
        Interval(_) => "an interval",
        _ => "an unsupported type",
    }
}

/// One row of a batch as a JSON object (numbers as numbers, the rest as displayed text), for
/// the dead-letter output.
fn row_json(batch: &RecordBatch, i: usize) -> String {
    let options = FormatOptions::default();
    let mut object = serde_json::Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = if column.is_null(i) {
            serde_json::Value::Null
        } else {
            let text =
                ArrayFormatter::try_new(column.as_ref(), &options).map(|f| f.value(i).to_string()).unwrap_or_default();
            match column.data_type() {
                t if t.is_numeric() => text
                    .parse::<serde_json::Number>()
                    .map_or(serde_json::Value::String(text), serde_json::Value::Number),
                _ => serde_json::Value::String(text),
            }
        };
        object.insert(field.name().clone(), value);
    }
    serde_json::Value::Object(object).to_string()
}
