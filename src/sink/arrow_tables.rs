//! Arrow record batches of the output tables: the schemas of the snapshot files and the
//! conversion of [`Tables`] into them, with rows in a deterministic order.
//!
//! The tables hold interned [`Sym`]s; every batch resolves them through the [`Symbols`] table
//! (which blocks no one) and sorts its rows by the resolved names, so the batches do not depend
//! on the order in which names were interned.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMillisecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use chrono::{DateTime, SecondsFormat};
use stepstone_dataflows::event::{END_OF_INPUT, NO_WATERMARK, micros_to_value};
use stepstone_dataflows::row::JourneyRow;
use stepstone_dataflows::segments::SegmentStats;
use stepstone_dataflows::symbols::{Names, Sym, Symbols};
use stepstone_dataflows::transitions::EdgeStats;

use super::Error;
use super::tables::{EdgeKey, Tables};

/// Schema metadata key: the logical time of the snapshot (decimal string).
pub const LOGICAL_TIME_KEY: &str = "stepstone.logical_time";
/// Schema metadata key: the watermark of the snapshot's logical time: every session that ended
/// before it is over (RFC 3339; `end` once the input has ended; absent before any watermark).
pub const WATERMARK_KEY: &str = "stepstone.watermark";
/// Schema metadata key: the wall-clock time the snapshot was taken (RFC 3339).
pub const WALL_TIME_KEY: &str = "stepstone.snapshot_wall_time";

/// The time zone of every timestamp column.
const UTC: &str = "UTC";

/// The record batches of one snapshot, all for the same logical time.
#[derive(Clone, Debug)]
pub struct SnapshotBatches {
    /// One row per journey, sorted by customer, then journey key (no key first), by name.
    pub journeys: RecordBatch,
    /// The contact-point transition graph, sorted by `from`, then `to`, by name.
    pub transitions: RecordBatch,
    /// The channel transition graph, sorted by `from`, then `to`, by name.
    pub channel_transitions: RecordBatch,
    /// One row per segment, sorted by segment name.
    pub segments: RecordBatch,
    /// Members per segment and channel, sorted by segment, then channel, by name.
    pub segment_channels: RecordBatch,
}

impl SnapshotBatches {
    /// Builds all batches from `tables`, resolving names through `symbols`. Every schema carries
    /// [`LOGICAL_TIME_KEY`] (omitted while no time has been applied), [`WATERMARK_KEY`] and
    /// [`WALL_TIME_KEY`] = `wall_time`.
    pub fn build(tables: &Tables, symbols: &Symbols, wall_time: &str) -> Result<Self, Error> {
        let metadata = snapshot_metadata(tables, wall_time);
        let names = symbols.names();
        let batch = |table| table_batch(tables, &names, &metadata, table).expect("a table of the snapshot");
        Ok(SnapshotBatches {
            journeys: batch("journeys")?,
            transitions: batch("transitions")?,
            channel_transitions: batch("channel_transitions")?,
            segments: batch("segments")?,
            segment_channels: batch("segment_channels")?,
        })
    }

    /// The batch of the one table `name` (`journeys`, `transitions`, `channel_transitions`,
    /// `segments` or `segment_channels`), built as [`SnapshotBatches::build`] builds it; `None`
    /// for another name.
    pub fn table(
        tables: &Tables,
        symbols: &Symbols,
        wall_time: &str,
        name: &str,
    ) -> Option<Result<RecordBatch, Error>> {
        table_batch(tables, &symbols.names(), &snapshot_metadata(tables, wall_time), name)
    }

    /// The batches with their table names, in a fixed order.
    pub fn named(&self) -> [(&'static str, &RecordBatch); 5] {
        [
            ("journeys", &self.journeys),
            ("transitions", &self.transitions),
            ("channel_transitions", &self.channel_transitions),
            ("segments", &self.segments),
            ("segment_channels", &self.segment_channels),
        ]
    }
}

/// A `Timestamp(Millisecond, "UTC")` type.
fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// The item field of the `path` and `channels` lists.
fn utf8_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Utf8, false))
}

/// The fields of the `channel_events` list entries.
fn channel_event_fields() -> Fields {
    Fields::from(vec![Field::new("channel", DataType::Utf8, false), Field::new("events", DataType::Int64, false)])
}

/// The item field of the `channel_events` list.
fn channel_event_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Struct(channel_event_fields()), false))
}

/// The schema of the `journeys` table (without metadata).
pub fn journeys_schema() -> Schema {
    Schema::new(vec![
        Field::new("customer", DataType::Utf8, false),
        Field::new("journey_key", DataType::Utf8, true),
        Field::new("first_time", timestamp_type(), false),
        Field::new("last_time", timestamp_type(), false),
        Field::new("events", DataType::Int64, false),
        Field::new("sessions", DataType::Int64, false),
        Field::new("session_start", timestamp_type(), false),
        Field::new("session_events", DataType::Int64, false),
        Field::new("session_duration_ms", DataType::Int64, false),
        Field::new("path", DataType::List(utf8_item()), false),
        Field::new("last_contact_point", DataType::Utf8, false),
        Field::new("channels", DataType::List(utf8_item()), false),
        Field::new("channel_events", DataType::List(channel_event_item()), false),
        Field::new("converted", DataType::Boolean, false),
        Field::new("conversions", DataType::Int64, false),
        Field::new("last_conversion_time", timestamp_type(), true),
        Field::new("value", DataType::Float64, false),
        Field::new("anonymous", DataType::Boolean, false),
    ])
}

/// The schema of the `transitions` and `channel_transitions` tables (without metadata).
pub fn edges_schema() -> Schema {
    Schema::new(vec![
        Field::new("from", DataType::Utf8, false),
        Field::new("to", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
        Field::new("dwell_ms_total", DataType::Int64, false),
        Field::new("dwell_ms_mean", DataType::Float64, false),
        Field::new("probability", DataType::Float64, false),
    ])
}

/// The schema of the `segments` table (without metadata).
pub fn segments_schema() -> Schema {
    Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("members", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("converted_members", DataType::Int64, false),
        Field::new("conversion_rate", DataType::Float64, false),
    ])
}

/// The schema of the `segment_channels` table (without metadata).
pub fn segment_channels_schema() -> Schema {
    Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("members", DataType::Int64, false),
    ])
}

/// `schema` with `metadata` attached.
/// The schema metadata of a snapshot of `tables` taken at `wall_time`.
fn snapshot_metadata(tables: &Tables, wall_time: &str) -> HashMap<String, String> {
    let mut metadata = HashMap::from([(WALL_TIME_KEY.to_owned(), wall_time.to_owned())]);
    if let Some(time) = tables.time() {
        metadata.insert(LOGICAL_TIME_KEY.to_owned(), time.to_string());
    }
    let watermark = match tables.watermark() {
        NO_WATERMARK => None,
        END_OF_INPUT => Some("end".to_owned()),
        ms => DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    };
    metadata.extend(watermark.map(|w| (WATERMARK_KEY.to_owned(), w)));
    metadata
}

fn with_metadata(schema: Schema, metadata: &HashMap<String, String>) -> SchemaRef {
    Arc::new(schema.with_metadata(metadata.clone()))
}

/// A count as an Arrow `Int64`, saturating (counts never come near the limit).
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `List<Utf8>` array with the lists of `values` that `lengths` delimit, one per row.
fn string_lists<'a>(
    lengths: impl IntoIterator<Item = usize>,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<ListArray, ArrowError> {
    let offsets = OffsetBuffer::from_lengths(lengths);
    let values = StringArray::from_iter_values(values);
    ListArray::try_new(utf8_item(), offsets, Arc::new(values), None)
}

/// The batch of the table `name` (`None` for another name), its names resolved through `names`,
/// its schema carrying `metadata`.
fn table_batch(
    tables: &Tables,
    names: &Names<'_>,
    metadata: &HashMap<String, String>,
    name: &str,
) -> Option<Result<RecordBatch, Error>> {
    let (table, built) = match name {
        "journeys" => ("journeys", journeys_batch(tables, names, metadata)),
        "transitions" => ("transitions", edges_batch(tables.transitions(), names, metadata).map_err(Failure::from)),
        "channel_transitions" => {
            ("channel_transitions", edges_batch(tables.channel_transitions(), names, metadata).map_err(Failure::from))
        }
        "segments" => ("segments", segments_batch(tables, names, metadata).map_err(Failure::from)),
        "segment_channels" => {
            ("segment_channels", segment_channels_batch(tables, names, metadata).map_err(Failure::from))
        }
        _ => return None,
    };
    Some(built.map_err(|failure| match failure {
        Failure::Arrow(source) => Error::Batch { table, source },
        Failure::Panicked => Error::BatchPanicked { table },
    }))
}

/// Why a batch could not be built; [`table_batch`] names the table.
enum Failure {
    /// Arrow refused a column or the batch.
    Arrow(ArrowError),
    /// A thread building columns panicked.
    Panicked,
}

impl From<ArrowError> for Failure {
    fn from(error: ArrowError) -> Self {
        Failure::Arrow(error)
    }
}

/// A journey id resolved to names: customer or profile, anonymous, journey key.
type JourneyName<'a> = (&'a str, bool, Option<&'a str>);

/// The first 16 bytes of `name` as a big-endian number, zero-padded: names with different
/// prefixes compare as their prefixes do, so a sort compares most names without reading them.
fn name_prefix(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let len = name.len().min(16);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    u128::from_be_bytes(bytes)
}

/// The `journeys` batch, sorted by customer name, then journey key name (no key first).
///
/// `path` keeps the stored order (oldest first); `channels` and `channel_events` are sorted by
/// channel name (the rows keep them in id order). The list columns are built on a second
/// thread while this one builds the others.
fn journeys_batch(
    tables: &Tables,
    names: &Names<'_>,
    metadata: &HashMap<String, String>,
) -> Result<RecordBatch, Failure> {
    let mut sorted: Vec<(u128, JourneyName<'_>, &JourneyRow)> = tables
        .journeys()
        .values()
        .map(|r| {
            let customer = names.get(r.journey.customer);
            (name_prefix(customer), (customer, r.journey.anonymous, r.journey.key.map(|k| names.get(k))), r)
        })
        .collect();
    // Journey ids are unique and so are their resolved names: no ties. A prefix orders as its
    // name does wherever two prefixes differ.
    sorted.sort_unstable_by(|(pa, a, _), (pb, b, _)| pa.cmp(pb).then_with(|| a.cmp(b)));
    let ids: Vec<JourneyName<'_>> = sorted.iter().map(|(_, id, _)| *id).collect();
    let rows: Vec<&JourneyRow> = sorted.into_iter().map(|(_, _, r)| r).collect();

    let (lists, scalars) = std::thread::scope(|scope| {
        let lists = scope.spawn(|| journey_list_columns(&rows, names));
        let scalars = journey_scalar_columns(&ids, &rows);
        (lists.join(), scalars)
    });
    let lists = lists.map_err(|_| Failure::Panicked)??;
    let (head, tail) = scalars;
    let columns: Vec<ArrayRef> = head.into_iter().chain(lists).chain(tail).collect();
    Ok(RecordBatch::try_new(with_metadata(journeys_schema(), metadata), columns)?)
}

/// The `path`, `last_contact_point`, `channels` and `channel_events` columns of `rows`.
fn journey_list_columns(rows: &[&JourneyRow], names: &Names<'_>) -> Result<[ArrayRef; 4], ArrowError> {
    // The channel events of all rows, each row's sorted by channel name.
    let mut channel_events: Vec<(&str, u64)> = Vec::new();
    for row in rows {
        let start = channel_events.len();
        channel_events.extend(row.channel_events.iter().map(|&(channel, n)| (names.get(channel), n)));
        channel_events[start..].sort_unstable();
    }
    let channel_lengths = || rows.iter().map(|r| r.channel_events.len());
    let channel_events_column = {
        let offsets = OffsetBuffer::from_lengths(channel_lengths());
        let channels = StringArray::from_iter_values(channel_events.iter().map(|(channel, _)| *channel));
        let events = Int64Array::from_iter_values(channel_events.iter().map(|(_, events)| count(*events)));
        let values = StructArray::try_new(
            channel_event_fields(),
            vec![Arc::new(channels) as ArrayRef, Arc::new(events) as ArrayRef],
            None,
        )?;
        ListArray::try_new(channel_event_item(), offsets, Arc::new(values), None)?
    };
    Ok([
        Arc::new(string_lists(
            rows.iter().map(|r| r.path.len()),
            rows.iter().flat_map(|r| r.path.iter().map(|&p| names.get(p))),
        )?),
        // An empty path (which the dataflows never produce) is written as "", as before interning.
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.path.last().map_or("", |&p| names.get(p))))),
        Arc::new(string_lists(channel_lengths(), channel_events.iter().map(|(channel, _)| *channel))?),
        Arc::new(channel_events_column),
    ])
}

/// The columns of the journeys batch other than the lists, for `rows` with their resolved `ids`:
/// those before the lists in the schema, and those after them.
fn journey_scalar_columns(ids: &[JourneyName<'_>], rows: &[&JourneyRow]) -> ([ArrayRef; 9], [ArrayRef; 5]) {
    let timestamps = |f: fn(&JourneyRow) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| f(r))).with_timezone(UTC))
    };
    let int64s =
        |f: fn(&JourneyRow) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| f(r)))) };
    let head: [ArrayRef; 9] = [
        Arc::new(StringArray::from_iter_values(ids.iter().map(|(customer, _, _)| *customer))),
        Arc::new(StringArray::from_iter(ids.iter().map(|(_, _, key)| *key))),
        timestamps(|r| r.first_time),
        timestamps(|r| r.last_time),
        int64s(|r| count(r.events)),
        int64s(|r| count(r.sessions)),
        timestamps(|r| r.session_start),
        int64s(|r| count(r.session_events)),
        int64s(JourneyRow::session_duration),
    ];
    let tail: [ArrayRef; 5] = [
        Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.converted())))),
        int64s(|r| count(r.conversions)),
        Arc::new(TimestampMillisecondArray::from_iter(rows.iter().map(|r| r.last_conversion_time)).with_timezone(UTC)),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| micros_to_value(r.value)))),
        Arc::new(BooleanArray::from_iter(ids.iter().map(|(_, anonymous, _)| Some(*anonymous)))),
    ];
    (head, tail)
}

/// A transitions batch, sorted by `from` name, then `to` name.
///
/// `dwell_ms_mean` is `dwell_ms_total / count` (0.0 when the count is 0); `probability` is the
/// edge's count over the total count of all edges leaving the same `from` (0.0 when that total
/// is 0), so the probabilities of each `from` sum to 1.
fn edges_batch(
    edges: &rustc_hash::FxHashMap<EdgeKey, EdgeStats>,
    names: &Names<'_>,
    metadata: &HashMap<String, String>,
) -> Result<RecordBatch, ArrowError> {
    let mut out_totals: HashMap<Sym, i64> = HashMap::new();
    for (&(from, _), &(n, _)) in edges {
        *out_totals.entry(from).or_default() += n;
    }
    let mut rows: Vec<(&str, &str, EdgeStats, i64)> =
        edges.iter().map(|(&(from, to), &stats)| (names.get(from), names.get(to), stats, out_totals[&from])).collect();
    // Edges are unique and so are their resolved names: the sort is decided by the names.
    rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let ratio = |num: f64, den: i64| if den == 0 { 0.0 } else { num / den as f64 };

    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(from, _, _, _)| *from))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, to, _, _)| *to))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, _, (n, _), _)| *n))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, _, (_, dwell), _)| *dwell))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, _, (n, dwell), _)| ratio(*dwell as f64, *n)))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, _, (n, _), total)| ratio(*n as f64, *total)))),
    ];
    RecordBatch::try_new(with_metadata(edges_schema(), metadata), columns)
}

/// The `segments` batch, sorted by segment name; declared segments appear even without members.
///
/// `conversion_rate` is `converted_members / members`, and 0.0 for a segment without members.
fn segments_batch(
    tables: &Tables,
    names: &Names<'_>,
    metadata: &HashMap<String, String>,
) -> Result<RecordBatch, ArrowError> {
    let mut rows: Vec<(&str, SegmentStats)> =
        tables.segments().into_iter().map(|(segment, stats)| (names.get(segment), stats)).collect();
    rows.sort_unstable_by_key(|(name, _)| *name);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(name, _)| *name))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, (members, _, _))| *members))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, (_, value, _))| micros_to_value(*value)))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, (_, _, converted))| *converted))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, (members, _, converted))| {
            if *members == 0 { 0.0 } else { *converted as f64 / *members as f64 }
        }))),
    ];
    RecordBatch::try_new(with_metadata(segments_schema(), metadata), columns)
}

/// The `segment_channels` batch, sorted by segment name, then channel name.
fn segment_channels_batch(
    tables: &Tables,
    names: &Names<'_>,
    metadata: &HashMap<String, String>,
) -> Result<RecordBatch, ArrowError> {
    let mut rows: Vec<(&str, &str, i64)> = tables
        .segment_channels()
        .iter()
        .map(|(&(segment, channel), &members)| (names.get(segment), names.get(channel), members))
        .collect();
    rows.sort_unstable();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(segment, _, _)| *segment))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, channel, _)| *channel))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, _, members)| *members))),
    ];
    RecordBatch::try_new(with_metadata(segment_channels_schema(), metadata), columns)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::name_prefix;

    #[test]
    fn names_sort_by_prefix_then_name_as_by_name() {
        let mut rng = StdRng::seed_from_u64(7);
        let alphabet = ["a", "b", "\0", "é", "z", "0", "9", "\u{10ffff}"];
        let mut names: Vec<String> = (0..2000)
            .map(|_| {
                let shared = if rng.random_bool(0.5) { "customer-000000000" } else { "" };
                let len = rng.random_range(0..24);
                let tail: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
                format!("{}{tail}", &shared[..rng.random_range(0..=shared.len())])
            })
            .collect();
        names.extend(["", "\0", "a", "a\0", "a\0\0", "customer-0000000", "customer-00000000"].map(String::from));
        let mut by_prefix = names.clone();
        by_prefix.sort_unstable_by(|a, b| name_prefix(a).cmp(&name_prefix(b)).then_with(|| a.cmp(b)));
        names.sort_unstable();
        assert_eq!(by_prefix, names);
    }
}
