//! Snapshot writer: writes the current tables as Arrow IPC files (and optionally Parquet files),
//! each atomically replaced through a temporary file in the same directory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use chrono::{SecondsFormat, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use stepstone_dataflows::symbols::Symbols;

use super::arrow_tables::SnapshotBatches;
use super::tables::Tables;

/// Distinguishes the temporary files of concurrent writes within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes snapshots of [`Tables`] into one directory.
///
/// Each call of [`SnapshotWriter::write`] writes `journeys.arrow`, `transitions.arrow`,
/// `channel_transitions.arrow`, `segments.arrow` and `segment_channels.arrow` (Arrow IPC file
/// format), and with `parquet` also the same tables as `*.parquet` (zstd-compressed). Every file
/// is first written to a hidden temporary file in the directory, then renamed over the old one,
/// so readers see either the previous or the new complete file. Names are resolved through the
/// shared [`Symbols`] table, and every table's rows are sorted by name.
#[derive(Clone)]
pub struct SnapshotWriter {
    /// The output directory, created when needed.
    dir: PathBuf,
    /// Whether Parquet files are written as well.
    parquet: bool,
    /// The interned names the tables refer to.
    symbols: Arc<Symbols>,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter").field("dir", &self.dir).field("parquet", &self.parquet).finish_non_exhaustive()
    }
}

/// What one snapshot wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The logical time of the snapshot (`None` when no time had been applied).
    pub time: Option<u64>,
    /// The wall-clock time of the snapshot (RFC 3339), as stored in the schema metadata.
    pub wall_time: String,
    /// Rows of the `journeys` table.
    pub journeys: usize,
    /// Rows of the `transitions` table.
    pub transitions: usize,
    /// Rows of the `channel_transitions` table.
    pub channel_transitions: usize,
    /// Rows of the `segments` table.
    pub segments: usize,
    /// Rows of the `segment_channels` table.
    pub segment_channels: usize,
    /// The files written, in writing order.
    pub files: Vec<PathBuf>,
}

impl SnapshotWriter {
    /// A writer into `dir`, also writing Parquet files when `parquet` is set, resolving names
    /// through `symbols`.
    pub fn new(dir: impl Into<PathBuf>, parquet: bool, symbols: Arc<Symbols>) -> Self {
        SnapshotWriter { dir: dir.into(), parquet, symbols }
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot of `tables`; all files of one call are for the same logical time.
    ///
    /// The names are resolved while the batches are built, before any file is written.
    pub fn write(&self, tables: &Tables) -> anyhow::Result<SnapshotInfo> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating the snapshot directory {}", self.dir.display()))?;
        let wall_time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let batches = SnapshotBatches::build(tables, &self.symbols, &wall_time)?;

        let mut files = Vec::new();
        for (name, batch) in batches.named() {
            let path = self.dir.join(format!("{name}.arrow"));
            write_atomically(&path, |file| write_ipc(file, batch))?;
            files.push(path);
        }
        if self.parquet {
            for (name, batch) in batches.named() {
                let path = self.dir.join(format!("{name}.parquet"));
                write_atomically(&path, |file| write_parquet(file, batch))?;
                files.push(path);
            }
        }
        tracing::debug!(time = ?tables.time(), dir = %self.dir.display(), files = files.len(), "snapshot written");

        Ok(SnapshotInfo {
            time: tables.time(),
            wall_time,
            journeys: batches.journeys.num_rows(),
            transitions: batches.transitions.num_rows(),
            channel_transitions: batches.channel_transitions.num_rows(),
            segments: batches.segments.num_rows(),
            segment_channels: batches.segment_channels.num_rows(),
            files,
        })
    }
}

/// Writes `path` through a temporary file in the same directory that `fill` writes and that is
/// then synced and renamed over `path`; the temporary file is removed when anything fails.
fn write_atomically(path: &Path, fill: impl FnOnce(File) -> anyhow::Result<File>) -> anyhow::Result<()> {
    let dir = path.parent().context("snapshot path has no directory")?;
    let name = path.file_name().context("snapshot path has no file name")?.to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let file = fill(file).with_context(|| format!("writing {}", path.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", temp.display()))?;
        fs::rename(&temp, path).with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
    })();
    if result.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes `batch` to `file` in the Arrow IPC file format.
fn write_ipc(file: File, batch: &RecordBatch) -> anyhow::Result<File> {
    let mut writer = FileWriter::try_new(BufWriter::new(file), &batch.schema()).context("starting the IPC file")?;
    writer.write(batch).context("writing the IPC record batch")?;
    writer.finish().context("finishing the IPC file")?;
    let mut buffered = writer.into_inner().context("closing the IPC writer")?;
    buffered.flush().context("flushing the IPC file")?;
    buffered.into_inner().map_err(|e| e.into_error()).context("flushing the IPC file")
}

/// Writes `batch` to `file` as zstd-compressed Parquet, with the Arrow schema embedded. The
/// schema metadata (logical and wall-clock time) is also written as Parquet key-value metadata,
/// for readers that do not decode the embedded Arrow schema.
fn write_parquet(file: File, batch: &RecordBatch) -> anyhow::Result<File> {
    let mut metadata: Vec<KeyValue> =
        batch.schema().metadata().iter().map(|(key, value)| KeyValue::new(key.clone(), value.clone())).collect();
    metadata.sort_by(|a, b| a.key.cmp(&b.key));
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).context("starting the Parquet file")?;
    writer.write(batch).context("writing the Parquet record batch")?;
    writer.into_inner().context("finishing the Parquet file")
}
