//! The files of the durable event log's directory: numbered segments, checkpoints, the lock,
//! and how each kind starts.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Error;
use super::frame::Damage;

/// The first bytes of a log segment.
pub const SEGMENT_MAGIC: &[u8; 8] = b"STEPLOG1";

/// The first bytes of a checkpoint.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"STEPCKP1";

/// The path of segment `number` in `dir`.
pub fn segment(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("segment-{number:020}.log"))
}

/// The path of the checkpoint that replaces every segment before `number`.
pub fn checkpoint(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("checkpoint-{number:020}.ckpt"))
}

/// The numbers of the segments and of the checkpoints in `dir`, each ascending; unfinished
/// checkpoints (`.tmp`, left by a crash) are removed.
pub fn list(dir: &Path) -> Result<(Vec<u64>, Vec<u64>), Error> {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    for item in fs::read_dir(dir).map_err(Error::io("listing the log directory", dir))? {
        let item = item.map_err(Error::io("listing the log directory", dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)).and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(n) = number("segment-", ".log") {
            segments.push(n);
        } else if let Some(n) = number("checkpoint-", ".ckpt") {
            checkpoints.push(n);
        } else if number("checkpoint-", ".ckpt.tmp").is_some() {
            fs::remove_file(item.path()).map_err(Error::io("removing the unfinished checkpoint", &item.path()))?;
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok((segments, checkpoints))
}

/// Opens `path` for reading and checks that it starts with `magic`; `Ok(Err(`[`Damage::HeaderCutShort`]`))`
/// when the file is shorter than the magic (created, then cut off by a crash).
pub fn open_checked(path: &Path, magic: &[u8; 8]) -> Result<Result<File, Damage>, Error> {
    let mut file = File::open(path).map_err(Error::io("opening", path))?;
    let mut start = [0u8; 8];
    let mut filled = 0;
    while filled < start.len() {
        match file.read(&mut start[filled..]) {
            Ok(0) => return Ok(Err(Damage::HeaderCutShort)),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Error::io("reading", path)(error)),
        }
    }
    if &start != magic {
        return Err(Error::Foreign { path: path.to_owned(), found: start, expected: *magic });
    }
    Ok(Ok(file))
}

/// Makes the entries of `dir` (new, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
