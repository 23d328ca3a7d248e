//! Compaction of the durable event log: folds the newest checkpoint and the closed segments
//! after it into a new checkpoint of the consolidated input collections, then deletes what it
//! replaces. It runs on a thread of its own while the engine driver appends to the next segment.
//!
//! A checkpoint holds, in this order: the identities ever erased ([`Entry::Erased`]), the
//! events of everyone else in arrival order and the links present ([`Entry::Records`] chunks),
//! the most recent idempotency keys ([`Entry::Keys`]) and where ingest stood ([`Entry::End`]).
//! Replaying it gives the same views as replaying everything it replaces: the views are
//! functions of the input collections, and an erasure leaves them as if the person's records
//! had never been.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::entry::{self, Entry, LoggedIdentity, LoggedRecords, Resume};
use super::keys::RecentKeys;
use super::{Error, LogFile, files, frame, read_checkpoint, read_segment};

/// Events per batch entry of a checkpoint.
const CHUNK: usize = 16_384;

/// A checkpoint is forced to disk every this many bytes as it is written, not only at its end.
/// The driver's group commits force the log's segment meanwhile, and on ext4 a commit also
/// waits for the other files' data written since the last one, so a checkpoint forced in one
/// piece holds them up for as long as it takes to write, and slices bound that wait
/// (`benches/fsync_interference.py` measures it; BENCHMARKS.md, "Durability").
const SYNC_SLICE: u64 = 8 << 20;

/// The compaction thread.
pub struct Compactor {
    requests: Option<Sender<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// Starts the thread compacting the log in `dir`.
    pub fn start(dir: PathBuf) -> Result<Compactor, Error> {
        let (requests, received) = crossbeam_channel::unbounded();
        let path = dir.clone();
        let thread = std::thread::Builder::new()
            .name("stepstone-compactor".into())
            .spawn(move || run(&dir, &received))
            .map_err(Error::io("spawning the compactor of the log in", &path))?;
        Ok(Compactor { requests: Some(requests), thread: Some(thread) })
    }

    /// Asks for every segment before `boundary` (all closed) to be folded into a checkpoint.
    pub fn request(&self, boundary: u64) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(boundary);
        }
    }

    /// Waits for the requested compactions to finish.
    pub fn finish(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the log compactor panicked");
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The thread's loop: the latest boundary asked for, one compaction at a time.
fn run(dir: &Path, requests: &Receiver<u64>) {
    while let Ok(mut boundary) = requests.recv() {
        while let Ok(later) = requests.try_recv() {
            boundary = boundary.max(later);
        }
        match compact(dir, boundary) {
            Ok(Some(path)) => tracing::info!("log compacted into {}", path.display()),
            Ok(None) => {}
            Err(error) => tracing::error!("log compaction failed (the log stays as it was): {error}"),
        }
    }
}

/// Folds the newest checkpoint and the segments before `boundary` into checkpoint `boundary`
/// and removes them; `None` when there is nothing to fold.
pub fn compact(dir: &Path, boundary: u64) -> Result<Option<PathBuf>, Error> {
    let (segments, checkpoints) = files::list(dir)?;
    let base = checkpoints.iter().copied().filter(|&n| n <= boundary).max();
    if base == Some(boundary) {
        return Ok(None);
    }
    let start = base.unwrap_or(0);
    let folded: Vec<u64> = segments.into_iter().filter(|&n| n >= start && n < boundary).collect();
    let inputs = Inputs { dir, base, segments: &folded };

    // First pass: who is erased, which links are present, the recent keys, where ingest stood.
    let mut erased: HashSet<LoggedIdentity> = HashSet::new();
    let mut erased_order: Vec<LoggedIdentity> = Vec::new();
    let mut links: Vec<(LoggedIdentity, LoggedIdentity)> = Vec::new();
    let mut present: HashSet<(LoggedIdentity, LoggedIdentity)> = HashSet::new();
    let mut keys = RecentKeys::default();
    let mut resume = Resume::default();
    inputs.each(&mut |entry| {
        match entry {
            Entry::Erased(identities) => {
                for identity in identities {
                    if erased.insert(identity.clone()) {
                        erased_order.push(identity);
                    }
                }
            }
            Entry::Records(batch) => {
                resume.advance(batch.resume());
                for link in batch.links {
                    let pair = if link.customer <= link.other {
                        (link.customer, link.other)
                    } else {
                        (link.other, link.customer)
                    };
                    if link.unlink {
                        present.remove(&pair);
                    } else if present.insert(pair.clone()) {
                        links.push(pair);
                    }
                }
                if let Some(key) = batch.key {
                    keys.insert(key, batch.accepted);
                }
            }
            Entry::Keys(kept) => {
                for (key, accepted) in kept {
                    keys.insert(key, accepted);
                }
            }
            Entry::End(at) => resume.advance(at),
        }
        Ok(())
    })?;
    links.retain(|pair| present.contains(pair) && !erased.contains(&pair.0) && !erased.contains(&pair.1));

    // Second pass: the events of everyone not erased, in the order they came.
    let path = files::checkpoint(dir, boundary);
    let unfinished = path.with_extension("ckpt.tmp");
    let written = (|| {
        let mut out = Writer::create(&unfinished)?;
        out.put(&Entry::Erased(erased_order))?;
        let template = LoggedRecords {
            clock_latest: resume.clock_latest,
            watermark: resume.watermark,
            ..LoggedRecords::default()
        };
        let mut chunk = template.clone();
        inputs.each(&mut |entry| {
            if let Entry::Records(batch) = entry {
                for event in batch.events {
                    if !erased.contains(&event.identity()) {
                        chunk.events.push(event);
                    }
                    if chunk.events.len() == CHUNK {
                        out.put(&Entry::Records(std::mem::replace(&mut chunk, template.clone())))?;
                    }
                }
            }
            Ok(())
        })?;
        chunk.links =
            links.into_iter().map(|(customer, other)| entry::LoggedLink { customer, other, unlink: false }).collect();
        out.put(&Entry::Records(chunk))?;
        out.put(&Entry::Keys(keys.to_entries()))?;
        out.put(&Entry::End(resume))?;
        out.finish()
    })();
    if let Err(error) = written {
        // An unfinished checkpoint must not hold on to the space it took.
        let _ = fs::remove_file(&unfinished);
        return Err(error);
    }
    fs::rename(&unfinished, &path).map_err(Error::io("renaming the new checkpoint to", &path))?;
    files::sync_dir(dir).map_err(Error::io("syncing", dir))?;
    if let Some(base) = base {
        super::remove(&files::checkpoint(dir, base))?;
    }
    for number in folded {
        super::remove(&files::segment(dir, number))?;
    }
    files::sync_dir(dir).map_err(Error::io("syncing", dir))?;
    Ok(Some(path))
}

/// What one compaction reads.
struct Inputs<'a> {
    dir: &'a Path,
    base: Option<u64>,
    segments: &'a [u64],
}

impl Inputs<'_> {
    /// Hands every entry to `each`, the base checkpoint's first. A damaged closed segment
    /// stops the compaction.
    fn each(&self, each: &mut impl FnMut(Entry) -> Result<(), Error>) -> Result<(), Error> {
        if let Some(base) = self.base {
            read_checkpoint(&files::checkpoint(self.dir, base), each)?;
        }
        for &number in self.segments {
            let path = files::segment(self.dir, number);
            if let (_, Some((offset, reason))) = read_segment(&path, each)? {
                return Err(Error::Corrupt { file: LogFile::Segment(path), offset, reason });
            }
        }
        Ok(())
    }
}

/// Writes a checkpoint file.
struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes written since the file was last forced to disk.
    unsynced: u64,
}

impl Writer {
    fn create(path: &Path) -> Result<Writer, Error> {
        let file = File::create(path).map_err(Error::io("creating", path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(files::CHECKPOINT_MAGIC).map_err(Error::io("writing", path))?;
        Ok(Writer { path: path.to_owned(), out, unsynced: 0 })
    }

    /// Appends `entry`, forcing the file to disk once [`SYNC_SLICE`] bytes are pending.
    fn put(&mut self, entry: &Entry) -> Result<(), Error> {
        let frame = frame::encode(&entry::encode(entry));
        self.out.write_all(&frame).map_err(Error::io("writing", &self.path))?;
        self.unsynced += frame.len() as u64;
        if self.unsynced >= SYNC_SLICE {
            self.out.flush().map_err(Error::io("writing", &self.path))?;
            self.out.get_ref().sync_data().map_err(Error::io("syncing", &self.path))?;
            self.unsynced = 0;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        let file = self.out.into_inner().map_err(|e| Error::io("writing", &self.path)(e.into_error()))?;
        file.sync_all().map_err(Error::io("syncing", &self.path))
    }
}
