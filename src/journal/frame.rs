//! The framing of the durable event log: each entry is written as its length, a CRC-32 of its
//! bytes and the bytes themselves, so that reading back can tell a whole entry from one that a
//! crash cut short or the disk garbled.
//!
//! A file starts with an 8-byte magic naming its kind (a log segment or a checkpoint) and
//! format version. A frame is `length: u32 LE`, `crc32: u32 LE` (of the payload), `payload`.
//! What can be wrong with a file's bytes, in its frames or in the entries they hold, is a
//! [`Damage`].

use std::io::{self, Read};

/// Bytes of a frame's header (length and checksum).
pub const HEADER: usize = 8;

/// The largest payload a frame may hold; a larger length in a header is damage.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The frame of `payload`: header and bytes.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// What is wrong with the bytes of a log file at some offset.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// The file is shorter than its magic (created, then cut off by a crash).
    #[error("the file is shorter than its 8-byte header")]
    HeaderCutShort,
    /// A frame's header is cut short.
    #[error("a frame header cut short after {got} of {HEADER} bytes")]
    FrameHeaderCutShort {
        /// The bytes of it that are there.
        got: usize,
    },
    /// A frame's header gives a length over [`MAX_PAYLOAD`].
    #[error("a frame length of {length} bytes, over the limit of {MAX_PAYLOAD}")]
    FrameTooLong {
        /// The length in the header.
        length: usize,
    },
    /// A frame's payload is cut short.
    #[error("a frame of {length} bytes cut short after {got}")]
    FrameCutShort {
        /// The length in the header.
        length: usize,
        /// The bytes of the payload that are there.
        got: usize,
    },
    /// A frame's payload does not have the checksum of its header.
    #[error("a frame of {length} bytes whose checksum does not match")]
    ChecksumMismatch {
        /// The payload's length.
        length: usize,
    },
    /// A frame holds an entry and more bytes after it.
    #[error("an entry of {used} bytes followed by {extra} more")]
    TrailingBytes {
        /// The bytes of the entry.
        used: usize,
        /// The bytes after it.
        extra: usize,
    },
    /// A frame's payload does not decode as an entry.
    #[error("not a log entry: {0}")]
    Undecodable(#[source] bincode::error::DecodeError),
    /// A checkpoint ends (after whole frames) before its last entry.
    #[error("the file ends before the checkpoint's last entry")]
    MissingEnd,
}

/// What reading the next frame found.
#[derive(Debug)]
pub enum Next {
    /// A whole frame whose checksum matches: its payload.
    Frame(Vec<u8>),
    /// The end of the file, exactly after the previous frame.
    End,
    /// A frame that is cut short or whose checksum does not match: how.
    Damaged(Damage),
}

/// Reads frames from a reader positioned after the file's magic.
pub struct FrameReader<R> {
    reader: R,
    /// Offset of the next frame from the start of the file.
    offset: u64,
}

impl<R: Read> FrameReader<R> {
    /// A reader of the frames of `reader`, whose next byte is at `offset` in its file.
    pub fn new(reader: R, offset: u64) -> Self {
        FrameReader { reader, offset }
    }

    /// The offset of the next frame: after the last whole frame read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> io::Result<Next> {
        let mut header = [0u8; HEADER];
        let got = read_full(&mut self.reader, &mut header)?;
        if got == 0 {
            return Ok(Next::End);
        }
        if got < HEADER {
            return Ok(Next::Damaged(Damage::FrameHeaderCutShort { got }));
        }
        let length = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
        let checksum = u32::from_le_bytes(header[4..].try_into().expect("four bytes"));
        if length > MAX_PAYLOAD {
            return Ok(Next::Damaged(Damage::FrameTooLong { length }));
        }
        let mut payload = vec![0u8; length];
        let got = read_full(&mut self.reader, &mut payload)?;
        if got < length {
            return Ok(Next::Damaged(Damage::FrameCutShort { length, got }));
        }
        if crc32fast::hash(&payload) != checksum {
            return Ok(Next::Damaged(Damage::ChecksumMismatch { length }));
        }
        self.offset += (HEADER + length) as u64;
        Ok(Next::Frame(payload))
    }
}

/// Reads until `buffer` is full or the reader ends; how many bytes were read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Next> {
        let mut reader = FrameReader::new(bytes, 0);
        let mut found = Vec::new();
        loop {
            let next = reader.next_frame().unwrap();
            let last = !matches!(next, Next::Frame(_));
            found.push(next);
            if last {
                return found;
            }
        }
    }

    #[test]
    fn whole_frames_read_back_and_every_cut_or_flipped_byte_is_damage() {
        let mut bytes = encode(b"first");
        bytes.extend(encode(b""));
        bytes.extend(encode(b"third entry"));
        let payloads: Vec<Option<Vec<u8>>> = frames(&bytes)
            .into_iter()
            .map(|next| match next {
                Next::Frame(payload) => Some(payload),
                Next::End => None,
                Next::Damaged(damage) => panic!("{damage}"),
            })
            .collect();
        assert_eq!(payloads, [Some(b"first".to_vec()), Some(Vec::new()), Some(b"third entry".to_vec()), None]);
        let whole = bytes.len() - encode(b"third entry").len();
        for cut in whole + 1..bytes.len() {
            let found = frames(&bytes[..cut]);
            assert_eq!(found.len(), 3, "cut at {cut}");
            assert!(matches!(found[2], Next::Damaged(_)), "cut at {cut}: {:?}", found[2]);
        }
        for flip in whole..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[flip] ^= 0x10;
            assert!(matches!(frames(&damaged)[2], Next::Damaged(_)), "flipped byte {flip}");
        }
    }

    #[test]
    fn the_offset_stays_after_the_last_whole_frame() {
        let mut bytes = encode(b"one");
        let after_one = bytes.len() as u64;
        bytes.extend(&encode(b"two")[..5]);
        let mut reader = FrameReader::new(&bytes[..], 0);
        assert!(matches!(reader.next_frame().unwrap(), Next::Frame(payload) if payload == b"one"));
        assert!(matches!(reader.next_frame().unwrap(), Next::Damaged(Damage::FrameHeaderCutShort { got: 5 })));
        assert_eq!(reader.offset(), after_one);
    }
}
