//! CSV decoding on the input side: reads the header once to resolve mapped columns to indices,
//! then streams rows through one reused `ByteRecord` into the row decoder.

use std::io::{self, Read};

use super::decode::{Cell, Fault, RowDecoder, SLOTS};
use super::input::BUFFER;
use super::{Error, ReasonKind, RecordRef, Rejection, oversized_raw};

/// Streams records out of a CSV input with a header row.
pub(crate) struct CsvDecoder {
    reader: csv::Reader<Tee>,
    decoder: RowDecoder,
    slots: [Option<usize>; SLOTS],
    width: usize,
    source: String,
    record: csv::ByteRecord,
    /// The line after the last record (or the header) read.
    next_line: u64,
    done: bool,
}

/// A reader that keeps the last chunk it read, to tell how a CSV record ended.
struct Tee {
    inner: Box<dyn Read + Send>,
    /// The stream offset of `chunk[0]`.
    start: u64,
    chunk: Vec<u8>,
    /// The byte just before `chunk`.
    before: Option<u8>,
}

impl Tee {
    /// The byte at stream offset `offset`, if still kept. The CSV reader reads a new chunk only
    /// once it has consumed the previous one, so the byte before its position is always kept.
    fn byte_at(&self, offset: u64) -> Option<u8> {
        match offset.checked_sub(self.start) {
            Some(i) => self.chunk.get(usize::try_from(i).ok()?).copied(),
            None if offset + 1 == self.start => self.before,
            None => None,
        }
    }
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.before = self.chunk.last().copied().or(self.before);
        self.start += self.chunk.len() as u64;
        self.chunk.clear();
        self.chunk.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl CsvDecoder {
    /// Reads the header of `reader` and resolves the mapped columns; a missing required column is
    /// an error naming it.
    pub fn new(reader: Box<dyn Read + Send>, decoder: RowDecoder, source: String) -> Result<CsvDecoder, Error> {
        let tee = Tee { inner: reader, start: 0, chunk: Vec::new(), before: None };
        let mut reader = csv::ReaderBuilder::new().flexible(true).buffer_capacity(BUFFER).from_reader(tee);
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(error) => return Err(Error::CsvHeader { input: source, source: error }),
        };
        let max_fields = decoder.limits().max_fields;
        if header.len() > max_fields {
            return Err(Error::TooManyColumns { input: source, columns: header.len(), max_fields });
        }
        let names: Vec<String> = header.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
        let slots = decoder.resolve(&names, &format!("the CSV header of {source}"))?;
        let mut csv = CsvDecoder {
            reader,
            decoder,
            slots,
            width: header.len(),
            source,
            record: header,
            next_line: 1,
            done: false,
        };
        csv.next_line = csv.end_line() + 1;
        Ok(csv)
    }

    /// The next record, handed to `consume`, or rejection.
    pub fn next_item<T>(
        &mut self,
        consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
    ) -> Option<Result<T, Rejection>> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                self.done = true;
                return Some(Err(Rejection::read_error(&self.source, self.next_line, &e)));
            }
        }
        let end = self.end_line();
        self.next_line = end + 1;
        let newlines = self.record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        let line = end.saturating_sub(newlines).max(self.record.position().map_or(1, |p| p.line()));
        let (size, max_bytes) = (self.record.as_slice().len(), self.decoder.limits().max_bytes);
        if size > max_bytes {
            let fault = Fault {
                kind: ReasonKind::TooLarge,
                field: None,
                reason: format!("row of {size} bytes is larger than max-record-bytes ({max_bytes})"),
            };
            return Some(Err(Rejection::from_fault(
                &self.source,
                line,
                fault,
                oversized_raw(self.record.as_slice(), size),
            )));
        }
        Some(
            self.decode_row()
                .and_then(consume)
                .map_err(|fault| Rejection::from_fault(&self.source, line, fault, rejoin(&self.record))),
        )
    }

    /// The line the record just read ends on. The reader counts the line ends it consumed; a
    /// record ending in a bare `\n` has consumed its own, one ending in `\r` (CRLF) or at the end
    /// of the input has not. (The reader's own record positions also count the blank lines it
    /// skipped before a record and the `\n` of the previous CRLF, so they cannot be used.)
    fn end_line(&self) -> u64 {
        let after = self.reader.position();
        let last = after.byte().checked_sub(1);
        let ended_by_newline = last.and_then(|last| self.reader.get_ref().byte_at(last)) == Some(b'\n');
        after.line() - u64::from(ended_by_newline)
    }

    fn decode_row(&self) -> Result<RecordRef<'_>, Fault> {
        if self.record.len() != self.width {
            return Err(Fault::malformed(format!(
                "CSV row has {} fields, the header has {}",
                self.record.len(),
                self.width
            )));
        }
        let mut cells: [Cell<'_>; SLOTS] = std::array::from_fn(|_| Cell::Absent);
        for (cell, slot) in cells.iter_mut().zip(self.slots) {
            if let Some(index) = slot {
                let bytes = &self.record[index];
                *cell = Cell::Str(
                    std::str::from_utf8(bytes)
                        .map_err(|e| Fault::malformed(format!("invalid UTF-8 in column {index}: {e}")))?,
                );
            }
        }
        self.decoder.decode(&cells)
    }
}

/// The row written back as one CSV line (quoted where needed), for the dead-letter output.
fn rejoin(record: &csv::ByteRecord) -> String {
    let mut writer =
        csv::WriterBuilder::new().flexible(true).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let joined = writer.write_byte_record(record).ok().and_then(|()| writer.into_inner().ok()).unwrap_or_default();
    String::from_utf8_lossy(&joined).trim_end_matches('\n').to_string()
}
