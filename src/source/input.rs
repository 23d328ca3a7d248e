//! The byte level of the input side: opens a file or stdin, counts the raw (compressed) bytes
//! consumed for progress reporting, and undoes gzip/zstd compression chosen by file extension.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::Error;

/// Buffer size for reading inputs.
pub(crate) const BUFFER: usize = 256 * 1024;

/// The compression of an input, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Not compressed.
    None,
    /// `.gz`
    Gzip,
    /// `.zst`
    Zstd,
}

impl Compression {
    /// The compression of `path` and the path with the compression extension stripped.
    pub fn detect(path: &str) -> (Compression, &str) {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".gz") {
            (Compression::Gzip, &path[..path.len() - 3])
        } else if lower.ends_with(".zst") {
            (Compression::Zstd, &path[..path.len() - 4])
        } else {
            (Compression::None, path)
        }
    }
}

/// A reader that adds the bytes it reads to a shared counter.
pub(crate) struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How often a followed file is checked for new data at its end.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// A file read as it grows: at its end, waits for more data instead of ending, until `stop`
/// is set.
pub(crate) struct Follow {
    file: File,
    stop: Arc<AtomicBool>,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || buf.is_empty() || self.stop.load(Ordering::Relaxed) {
                return Ok(n);
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// An opened input stream, decompressed, with its progress counters.
pub(crate) struct Opened {
    /// The decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    /// Raw bytes consumed so far.
    pub bytes_read: Arc<AtomicU64>,
    /// The raw size, if known (not for stdin).
    pub total_bytes: Option<u64>,
}

/// Opens `path` (`-` is stdin) as a decompressed byte stream; with `follow`, an uncompressed
/// file is read as it grows until the flag is set.
pub(crate) fn open_stream(
    path: &str,
    compression: Compression,
    follow: Option<&Arc<AtomicBool>>,
) -> Result<Opened, Error> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (raw, total_bytes): (Box<dyn Read + Send>, _) = if path == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = open_file(path)?;
        let size = file.metadata().ok().map(|m| m.len());
        match follow {
            Some(stop) => {
                if compression != Compression::None {
                    return Err(Error::CompressedFollow { path: path.to_owned() });
                }
                (Box::new(Follow { file, stop: stop.clone() }), None)
            }
            None => (Box::new(file), size),
        }
    };
    let counted = BufReader::with_capacity(BUFFER, Counting { inner: raw, count: bytes_read.clone() });
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(counted),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(counted).map_err(|source| Error::Read {
            action: "start zstd decoding of",
            input: path.to_owned(),
            source,
        })?),
    };
    Ok(Opened { reader, bytes_read, total_bytes })
}

/// Opens a file, with an error naming the path.
pub(crate) fn open_file(path: &str) -> Result<File, Error> {
    File::open(Path::new(path)).map_err(|source| Error::Open { path: path.to_owned(), source })
}
