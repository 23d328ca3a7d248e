//! The framing of the durable event log: each entry is written as its length, a CRC-32 of its
//! bytes and the bytes themselves, so that reading back can tell a whole entry from one that a
//! crash cut short or the disk garbled.
//!
//! A file starts with an 8-byte magic naming its kind (a log segment or a checkpoint) and
//! format version. A frame is `length: u32 LE`, `crc32: u32 LE` (of the payload), `payload`.

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

/// What reading the next frame found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole frame whose checksum matches: its payload.
    Frame(Vec<u8>),
    /// The end of the file, exactly after the previous frame.
    End,
    /// A frame that is cut short or whose checksum does not match: why.
    Damaged(String),
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
            return Ok(Next::Damaged(format!("a frame header cut short after {got} of {HEADER} bytes")));
        }
        let length = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
        let checksum = u32::from_le_bytes(header[4..].try_into().expect("four bytes"));
        if length > MAX_PAYLOAD {
            return Ok(Next::Damaged(format!("a frame length of {length} bytes, over the limit of {MAX_PAYLOAD}")));
        }
        let mut payload = vec![0u8; length];
        let got = read_full(&mut self.reader, &mut payload)?;
        if got < length {
            return Ok(Next::Damaged(format!("a frame of {length} bytes cut short after {got}")));
        }
        if crc32fast::hash(&payload) != checksum {
            return Ok(Next::Damaged(format!("a frame of {length} bytes whose checksum does not match")));
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
            let last = next != Next::End && !matches!(next, Next::Frame(_));
            let end = next == Next::End;
            found.push(next);
            if last || end {
                return found;
            }
        }
    }

    #[test]
    fn whole_frames_read_back_and_every_cut_or_flipped_byte_is_damage() {
        let mut bytes = encode(b"first");
        bytes.extend(encode(b""));
        bytes.extend(encode(b"third entry"));
        assert_eq!(
            frames(&bytes),
            [Next::Frame(b"first".to_vec()), Next::Frame(Vec::new()), Next::Frame(b"third entry".to_vec()), Next::End]
        );
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
        assert_eq!(reader.next_frame().unwrap(), Next::Frame(b"one".to_vec()));
        assert!(matches!(reader.next_frame().unwrap(), Next::Damaged(_)));
        assert_eq!(reader.offset(), after_one);
    }
}
