//! The durable event log of `stepstone serve`: every accepted ingest request is appended here
//! before it is acknowledged, and a restarted service replays it to reach the state it had.
//!
//! In the data path it sits between decoding and the dataflows: the engine driver appends a
//! request's accepted records ([`Entry::Records`]), makes them durable by the [`Fsync`] policy,
//! acknowledges them, and only then feeds them to the engine. Erasures are logged as the
//! identities they removed ([`Entry::Erased`]).
//!
//! The log is a directory of numbered segment files of checksummed frames ([`frame`]). When
//! the segments since the last checkpoint grow past a bound, or after an erasure, a background
//! compaction ([`compact`]) folds the previous checkpoint and the closed segments into a new
//! checkpoint, the consolidated input collections (events without the erased people's, the
//! links present, the erased identities, recent idempotency keys, where ingest stood), and
//! deletes what it replaces, so recovery reads one checkpoint and a bounded tail, and erased
//! people's records leave the disk. A torn or garbled frame at the end of the last segment (a
//! crash in the middle of a write) is reported and cut off; damage anywhere else stops the start.

pub mod compact;
pub mod entry;
mod error;
pub mod files;
pub mod frame;
pub mod keys;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use entry::Entry;
pub use error::{Error, LogFile};
pub use frame::Damage;

use compact::Compactor;
use frame::{FrameReader, Next};

/// When appended entries are forced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before any request of a logical time is acknowledged (group commit): an acknowledged
    /// event survives a power loss.
    Batch,
    /// At most this long after an append; requests are acknowledged once written to the
    /// operating system, which keeps them through a crash of the process but not of the machine.
    Every(Duration),
}

impl std::str::FromStr for Fsync {
    type Err = InvalidFsync;

    /// `batch`, or a duration (`100ms`).
    fn from_str(text: &str) -> Result<Fsync, InvalidFsync> {
        if text == "batch" {
            return Ok(Fsync::Batch);
        }
        humantime::parse_duration(text).map(Fsync::Every).map_err(|_| InvalidFsync(text.to_owned()))
    }
}

/// A fsync policy that is neither `batch` nor a duration.
#[derive(Debug, thiserror::Error)]
#[error("log fsync {0:?}: expected \"batch\" or a duration such as \"100ms\"")]
pub struct InvalidFsync(pub String);

/// The checked settings of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The log's directory.
    pub dir: PathBuf,
    /// When appends are forced to disk.
    pub fsync: Fsync,
    /// A segment is closed and the next begun once it holds this many bytes.
    pub segment_bytes: u64,
    /// A compaction starts once the segments written since the last one hold this many bytes,
    /// or a [`TAIL_SHARE`]th of the log's size if that is more.
    pub checkpoint_bytes: u64,
}

/// A compaction rewrites the whole history, so it waits at least until the segments since the
/// last one are this fraction (1/n) of the log: the bytes written by compactions then stay
/// proportional to the bytes appended (each about five times), and recovery reads at most a
/// quarter more than the checkpoint.
pub const TAIL_SHARE: u64 = 4;

/// What recovery found and did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The checkpoint it started from, if any.
    pub checkpoint: Option<PathBuf>,
    /// Segments read after it.
    pub segments: usize,
    /// Entries replayed, the checkpoint's included.
    pub entries: u64,
    /// A torn or garbled tail cut off.
    pub truncated: Option<Truncated>,
}

/// A torn or garbled tail that recovery cut off the last segment (a crash in the middle of a
/// write).
#[derive(Debug)]
pub struct Truncated {
    /// The segment.
    pub segment: PathBuf,
    /// The offset it was cut at: the end of its last whole entry.
    pub offset: u64,
    /// The bytes dropped.
    pub dropped: u64,
    /// What was wrong at `offset`.
    pub reason: Damage,
}

/// The open log, appending to its newest segment.
pub struct Journal {
    settings: Settings,
    /// Held while the log is open, so that no second service appends to it.
    _lock: File,
    /// The segment appended to.
    segment: File,
    /// Its number.
    number: u64,
    /// Its length: everything written.
    written: u64,
    /// The length known to be on disk.
    synced: u64,
    /// Bytes appended since the last compaction was asked for.
    since_compaction: u64,
    /// The log's size when the last compaction was asked for (or when it was opened): what the
    /// next compaction rewrites, at most.
    history: u64,
    /// When the last forced write was.
    last_sync: Instant,
    /// The background compaction.
    compactor: Compactor,
}

impl Journal {
    /// Opens the log in `settings.dir` (creating it), hands every entry it holds to `replay`
    /// in order (the newest checkpoint's first), cuts off a torn tail, and returns the log ready
    /// to append, with what recovery found. The caller's error type `E` takes the log's own
    /// errors as well as those of `replay`, which stop the opening.
    pub fn open<E: From<Error>>(
        settings: Settings,
        mut replay: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(Journal, Recovered), E> {
        let dir = settings.dir.clone();
        fs::create_dir_all(&dir).map_err(Error::io("creating the log directory", &dir))?;
        let lock = lock(&dir)?;
        let (segments, checkpoints) = files::list(&dir)?;
        let mut recovered = Recovered::default();
        let start = checkpoints.last().copied().unwrap_or(0);
        if let Some(&number) = checkpoints.last() {
            let path = files::checkpoint(&dir, number);
            recovered.entries += read_checkpoint(&path, &mut replay)?;
            recovered.checkpoint = Some(path);
        }
        // What an interrupted compaction had already replaced.
        for &old in checkpoints.iter().rev().skip(1) {
            remove(&files::checkpoint(&dir, old))?;
        }
        for &old in segments.iter().filter(|&&n| n < start) {
            remove(&files::segment(&dir, old))?;
        }
        let tail: Vec<u64> = segments.into_iter().filter(|&n| n >= start).collect();
        for (i, &number) in tail.iter().enumerate() {
            let path = files::segment(&dir, number);
            let last = i + 1 == tail.len();
            let (entries, damage) = read_segment(&path, &mut replay)?;
            recovered.entries += entries;
            recovered.segments += 1;
            if let Some((offset, reason)) = damage {
                if !last {
                    return Err(Error::Corrupt { file: LogFile::Segment(path), offset, reason }.into());
                }
                let length = length(&path)?;
                let dropped = length.saturating_sub(offset);
                recovered.truncated = Some(Truncated { segment: path, offset, dropped, reason });
            }
        }
        let mut history = match &recovered.checkpoint {
            Some(path) => length(path)?,
            None => 0,
        };
        for &number in &tail {
            history += length(&files::segment(&dir, number))?;
        }
        let compactor = Compactor::start(dir.clone())?;
        let (segment, number, written) = match tail.last() {
            Some(&number) => {
                let path = files::segment(&dir, number);
                let end = match &recovered.truncated {
                    Some(truncated) => truncated.offset,
                    None => length(&path)?,
                };
                let mut file =
                    OpenOptions::new().read(true).write(true).open(&path).map_err(Error::io("opening", &path))?;
                if end < SEGMENT_START {
                    file.set_len(0).map_err(Error::io("truncating", &path))?;
                    file.write_all(files::SEGMENT_MAGIC).map_err(Error::io("writing", &path))?;
                } else {
                    file.set_len(end).map_err(Error::io("truncating", &path))?;
                }
                file.sync_all().map_err(Error::io("syncing", &path))?;
                let written = end.max(SEGMENT_START);
                file.seek(SeekFrom::Start(written)).map_err(Error::io("seeking in", &path))?;
                (file, number, written)
            }
            None => (create_segment(&dir, start)?, start, SEGMENT_START),
        };
        let journal = Journal {
            settings,
            _lock: lock,
            segment,
            number,
            written,
            synced: written,
            since_compaction: 0,
            history,
            last_sync: Instant::now(),
            compactor,
        };
        Ok((journal, recovered))
    }

    /// The settings the log was opened with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Appends `entry` (written to the operating system, not yet forced to disk). On failure
    /// nothing of it stays in the log.
    pub fn append(&mut self, entry: &Entry) -> Result<(), Error> {
        let bytes = frame::encode(&entry::encode(entry));
        if let Err(error) = self.segment.write_all(&bytes) {
            self.cut_back(self.written);
            return Err(Error::io("appending to the log in", &self.settings.dir)(error));
        }
        self.written += bytes.len() as u64;
        self.since_compaction += bytes.len() as u64;
        Ok(())
    }

    /// Whether appends are waiting to be forced to disk.
    pub fn dirty(&self) -> bool {
        self.synced < self.written
    }

    /// How long until the [`Fsync::Every`] policy wants the appends forced to disk (zero: now);
    /// `None` when nothing waits or the policy is [`Fsync::Batch`].
    pub fn sync_due(&self) -> Option<Duration> {
        match self.settings.fsync {
            Fsync::Every(interval) if self.dirty() => Some(interval.saturating_sub(self.last_sync.elapsed())),
            _ => None,
        }
    }

    /// Forces the appends to disk. On failure the appends since the last success are cut off
    /// (their requests must not be acknowledged), when the policy is [`Fsync::Batch`].
    pub fn sync(&mut self) -> Result<(), Error> {
        if !self.dirty() {
            return Ok(());
        }
        if let Err(error) = self.segment.sync_data() {
            if self.settings.fsync == Fsync::Batch {
                self.cut_back(self.synced);
            }
            return Err(Error::io(FORCING, &self.settings.dir)(error));
        }
        self.synced = self.written;
        self.last_sync = Instant::now();
        // The appends are durable whatever happens next: a segment that cannot be begun (a full
        // disk) is reported, and appending goes on in the current one until one can.
        let due = self.settings.checkpoint_bytes.max(self.history / TAIL_SHARE);
        let next = if self.since_compaction >= due {
            self.compact()
        } else if self.written >= self.settings.segment_bytes {
            self.rotate()
        } else {
            Ok(())
        };
        if let Err(error) = next {
            tracing::error!("the log could not begin its next segment; appending goes on in the current one: {error}");
        }
        Ok(())
    }

    /// Starts a compaction of everything appended so far (after an erasure, so that the erased
    /// people's records leave the disk). Forces the appends to disk first. On failure whatever
    /// was appended stays in the log, durable if the failure came after the forced write.
    pub fn compact(&mut self) -> Result<(), Error> {
        if self.dirty() {
            self.segment.sync_data().map_err(Error::io(FORCING, &self.settings.dir))?;
            self.synced = self.written;
        }
        self.rotate()?;
        self.history += std::mem::take(&mut self.since_compaction);
        self.compactor.request(self.number);
        Ok(())
    }

    /// Closes the log: forces it to disk and waits for a running compaction.
    pub fn close(mut self) -> Result<(), Error> {
        let synced = self.sync();
        self.compactor.finish();
        synced
    }

    /// Closes the current (synced) segment and begins the next.
    fn rotate(&mut self) -> Result<(), Error> {
        let next = create_segment(&self.settings.dir, self.number + 1)?;
        self.segment = next;
        self.number += 1;
        self.written = SEGMENT_START;
        self.synced = SEGMENT_START;
        Ok(())
    }

    /// Cuts the segment back to `length` after a failed write; a log that cannot be cut back
    /// is reported (its next appends are likely to fail as well; recovery cuts the torn tail).
    fn cut_back(&mut self, length: u64) {
        let cut = self.segment.set_len(length).and_then(|()| self.segment.seek(SeekFrom::Start(length)).map(drop));
        match cut {
            Ok(()) => self.written = length,
            Err(error) => tracing::error!(
                "cannot cut log segment {} back to {length} bytes after a failed write: {error}",
                files::segment(&self.settings.dir, self.number).display()
            ),
        }
    }
}

/// The length of a segment that holds no entry yet.
const SEGMENT_START: u64 = files::SEGMENT_MAGIC.len() as u64;

/// The action of a failed forced write, before the log's directory.
const FORCING: &str = "forcing the log to disk in";

/// The length of the file at `path`.
fn length(path: &Path) -> Result<u64, Error> {
    Ok(fs::metadata(path).map_err(Error::io("reading", path))?.len())
}

/// Takes the lock of the log directory `dir`: [`Error::Locked`] while another process holds it.
fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join("LOCK");
    let file =
        OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(Error::io("opening", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { dir: dir.to_owned() }),
        Err(fs::TryLockError::Error(error)) => Err(Error::io("locking", &path)(error)),
    }
}

/// Creates segment `number` in `dir`, with its magic, durably.
fn create_segment(dir: &Path, number: u64) -> Result<File, Error> {
    let path = files::segment(dir, number);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(Error::io("creating log segment", &path))?;
    file.write_all(files::SEGMENT_MAGIC)
        .and_then(|()| file.sync_all())
        .and_then(|()| files::sync_dir(dir))
        .map_err(Error::io("creating log segment", &path))?;
    Ok(file)
}

/// Removes `path`, which an earlier compaction replaced.
fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(Error::io("removing the replaced log file", path)(error))
        }
        _ => Ok(()),
    }
}

/// Replays the whole checkpoint at `path`; damage there is an error ([`Error::Corrupt`]).
/// Returns its entry count. The caller's error type `E` takes the log's errors as well as
/// those of `replay`.
pub fn read_checkpoint<E: From<Error>>(path: &Path, replay: &mut impl FnMut(Entry) -> Result<(), E>) -> Result<u64, E> {
    let corrupt = |offset, reason| Error::Corrupt { file: LogFile::Checkpoint(path.to_owned()), offset, reason };
    let file = files::open_checked(path, files::CHECKPOINT_MAGIC)?.map_err(|reason| corrupt(0, reason))?;
    let mut frames = FrameReader::new(io::BufReader::with_capacity(1 << 20, file), SEGMENT_START);
    let mut entries = 0;
    loop {
        let offset = frames.offset();
        let payload = match frames.next_frame().map_err(Error::io("reading", path))? {
            Next::Frame(payload) => payload,
            Next::End => return Err(corrupt(offset, Damage::MissingEnd).into()),
            Next::Damaged(reason) => return Err(corrupt(offset, reason).into()),
        };
        let entry = entry::decode(&payload).map_err(|reason| corrupt(offset, reason))?;
        let end = matches!(entry, Entry::End(_));
        entries += 1;
        replay(entry)?;
        if end {
            return Ok(entries);
        }
    }
}

/// Replays the segment at `path` up to its end or its first damaged frame; returns the entries
/// replayed and, if damaged, where (the end of the last whole entry) and how. The caller's
/// error type `E` takes the log's errors as well as those of `replay`.
pub fn read_segment<E: From<Error>>(
    path: &Path,
    replay: &mut impl FnMut(Entry) -> Result<(), E>,
) -> Result<(u64, Option<(u64, Damage)>), E> {
    let file = match files::open_checked(path, files::SEGMENT_MAGIC)? {
        Ok(file) => file,
        Err(reason) => return Ok((0, Some((0, reason)))),
    };
    let mut frames = FrameReader::new(io::BufReader::with_capacity(1 << 20, file), SEGMENT_START);
    let mut entries = 0;
    loop {
        let offset = frames.offset();
        let payload = match frames.next_frame().map_err(Error::io("reading", path))? {
            Next::Frame(payload) => payload,
            Next::End => return Ok((entries, None)),
            Next::Damaged(reason) => return Ok((entries, Some((offset, reason)))),
        };
        match entry::decode(&payload) {
            Ok(entry) => {
                entries += 1;
                replay(entry)?;
            }
            Err(reason) => return Ok((entries, Some((offset, reason)))),
        }
    }
}

#[cfg(test)]
mod tests;
