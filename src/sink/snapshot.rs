//! Snapshot writer: writes the current tables as Arrow IPC files (and optionally Parquet files),
//! each atomically replaced through a temporary file in the same directory.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use chrono::{SecondsFormat, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use stepstone_dataflows::symbols::Symbols;

use super::Error;
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
    pub fn write(&self, tables: &Tables) -> Result<SnapshotInfo, Error> {
        fs::create_dir_all(&self.dir).map_err(Error::io("creating the snapshot directory", &self.dir))?;
        let wall_time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let batches = SnapshotBatches::build(tables, &self.symbols, &wall_time)?;

        let mut files = Vec::new();
        for (name, batch) in batches.named() {
            let file_name = format!("{name}.arrow");
            let path = write_atomically(&self.dir, &file_name, |file, path| write_ipc(file, batch, path))?;
            files.push(path);
        }
        if self.parquet {
            for (name, batch) in batches.named() {
                let file_name = format!("{name}.parquet");
                let path = write_atomically(&self.dir, &file_name, |file, path| write_parquet(file, batch, path))?;
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

/// Writes the file `name` in `dir` through a temporary file in the same directory that `fill`
/// writes (its errors naming the file's path) and that is then synced and renamed over the
/// file; the temporary file is removed when anything fails. Returns the file's path.
fn write_atomically(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(File, &Path) -> Result<File, Error>,
) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let file = File::create(&temp).map_err(Error::io("creating", &temp))?;
        let file = fill(file, &path)?;
        file.sync_all().map_err(Error::io("syncing", &temp))?;
        fs::rename(&temp, &path).map_err(|source| Error::Rename { from: temp.clone(), to: path.clone(), source })
    })();
    if result.is_err() {
        // Best effort: the error being returned is the one that matters.
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| path)
}

/// Writes `batch` to `file` in the Arrow IPC file format, as the snapshot file `path`.
fn write_ipc(file: File, batch: &RecordBatch, path: &Path) -> Result<File, Error> {
    let failed = |step| move |source| Error::Ipc { path: path.to_owned(), step, source };
    let mut writer =
        FileWriter::try_new(BufWriter::new(file), &batch.schema()).map_err(failed("starting the IPC file"))?;
    writer.write(batch).map_err(failed("writing the IPC record batch"))?;
    writer.finish().map_err(failed("finishing the IPC file"))?;
    let mut buffered = writer.into_inner().map_err(failed("closing the IPC writer"))?;
    buffered.flush().map_err(Error::io("flushing the Arrow IPC file", path))?;
    buffered.into_inner().map_err(|e| Error::io("flushing the Arrow IPC file", path)(e.into_error()))
}

/// Writes `batch` to `file` as zstd-compressed Parquet, with the Arrow schema embedded. The
/// schema metadata (logical and wall-clock time) is also written as Parquet key-value metadata,
/// for readers that do not decode the embedded Arrow schema.
fn write_parquet(file: File, batch: &RecordBatch, path: &Path) -> Result<File, Error> {
    let failed = |step| move |source| Error::Parquet { path: path.to_owned(), step, source };
    let mut metadata: Vec<KeyValue> =
        batch.schema().metadata().iter().map(|(key, value)| KeyValue::new(key.clone(), value.clone())).collect();
    metadata.sort_by(|a, b| a.key.cmp(&b.key));
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(failed("starting the Parquet file"))?;
    writer.write(batch).map_err(failed("writing the Parquet record batch"))?;
    writer.into_inner().map_err(failed("finishing the Parquet file"))
}
