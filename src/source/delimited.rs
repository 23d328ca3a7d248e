//! CSV decoding on the input side: reads the header once to resolve mapped columns to indices,
//! then streams rows through one reused `ByteRecord` into the row decoder.

use std::io::Read;

use anyhow::Context;

use super::decode::{Cell, Fault, RowDecoder, SLOTS};
use super::input::BUFFER;
use super::{Record, Rejection};

/// Streams records out of a CSV input with a header row.
pub(crate) struct CsvDecoder {
    reader: csv::Reader<Box<dyn Read + Send>>,
    decoder: RowDecoder,
    slots: [Option<usize>; SLOTS],
    width: usize,
    source: String,
    record: csv::ByteRecord,
    done: bool,
}

impl CsvDecoder {
    /// Reads the header of `reader` and resolves the mapped columns; a missing required column is
    /// an error naming it.
    pub fn new(reader: Box<dyn Read + Send>, decoder: RowDecoder, source: String) -> anyhow::Result<CsvDecoder> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(BUFFER)
            .from_reader(reader);
        let header: Vec<String> = reader
            .byte_headers()
            .with_context(|| format!("cannot read the CSV header of {source}"))?
            .iter()
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .collect();
        let slots = decoder.resolve(&header, &format!("the CSV header of {source}"))?;
        Ok(CsvDecoder {
            reader,
            decoder,
            slots,
            width: header.len(),
            source,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    /// The next record or rejection.
    pub fn next_item(&mut self) -> Option<Result<Record, Rejection>> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                self.done = true;
                let line = e.position().map_or(0, |p| p.line());
                return Some(Err(Rejection::read_error(&self.source, line, &e)));
            }
        }
        let line = self.record.position().map_or(0, |p| p.line());
        Some(
            self.decode_row()
                .map_err(|fault| Rejection::from_fault(&self.source, line, fault, rejoin(&self.record))),
        )
    }

    fn decode_row(&self) -> Result<Record, Fault> {
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
                *cell = Cell::Str(std::str::from_utf8(bytes).map_err(|e| {
                    Fault::malformed(format!("invalid UTF-8 in column {index}: {e}"))
                })?);
            }
        }
        self.decoder.decode(&cells)
    }
}

/// The row written back as one CSV line (quoted where needed), for the dead-letter output.
fn rejoin(record: &csv::ByteRecord) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let joined = writer
        .write_byte_record(record)
        .ok()
        .and_then(|()| writer.into_inner().ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&joined).trim_end_matches('\n').to_string()
}
