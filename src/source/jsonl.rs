//! JSON Lines decoding on the input side: reads one line at a time and picks only the mapped
//! keys out of each object (no per-record map), handing the cells to the row decoder.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::decode::{Cell, Fault, RowDecoder, SLOTS};
use super::input::BUFFER;
use super::time::Number;
use super::{ReasonKind, RecordRef, Rejection, oversized_raw};

/// Streams records out of a JSON Lines input.
pub(crate) struct JsonlDecoder {
    reader: BufReader<Box<dyn Read + Send>>,
    decoder: RowDecoder,
    source: String,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlDecoder {
    /// A decoder reading `reader`, labelled `source` in rejections.
    pub fn new(reader: Box<dyn Read + Send>, decoder: RowDecoder, source: String) -> JsonlDecoder {
        JsonlDecoder {
            reader: BufReader::with_capacity(BUFFER, reader),
            decoder,
            source,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next record, handed to `consume`, or rejection; blank lines and a UTF-8 byte order
    /// mark are skipped.
    pub fn next_item<T>(
        &mut self,
        consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
    ) -> Option<Result<T, Rejection>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            let max_bytes = self.decoder.limits().max_bytes;
            let length = match read_line(&mut self.reader, &mut self.buf, max_bytes) {
                Ok(0) => return None,
                Ok(length) => length,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Rejection::read_error(&self.source, self.line + 1, &e)));
                }
            };
            self.line += 1;
            if length > max_bytes {
                let fault = too_large(length, max_bytes);
                return Some(Err(Rejection::from_fault(
                    &self.source,
                    self.line,
                    fault,
                    oversized_raw(&self.buf, length),
                )));
            }
            let mut line = self.buf.as_slice();
            if self.line == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let result = match std::str::from_utf8(line) {
                Ok(text) => decode_line(&self.decoder, text, consume),
                Err(e) => Err(Fault::malformed(format!("invalid UTF-8: {e}"))),
            };
            return Some(result.map_err(|fault| {
                Rejection::from_fault(&self.source, self.line, fault, String::from_utf8_lossy(line).into_owned())
            }));
        }
    }
}

/// Reads one line (up to and including its `\n`, or to the end of the input) into `buf`, keeping
/// at most `max_bytes` of it plus the start of a longer one, and returns its whole length
/// (0 at the end of the input). A line longer than `max_bytes` is read through without being
/// kept, so that no line can exhaust memory.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max_bytes: usize) -> std::io::Result<usize> {
    let mut length = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(length);
        }
        let (taken, ended) = match memchr::memchr(b'\n', available) {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        let room = (max_bytes + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&available[..taken.min(room)]);
        length += taken;
        reader.consume(taken);
        if ended {
            return Ok(length);
        }
    }
}

/// How the error of an object with too many keys begins.
const TOO_MANY_FIELDS: &str = "more than max-fields";

/// The fault of a record of `length` bytes over the limit of `max_bytes`.
fn too_large(length: usize, max_bytes: usize) -> Fault {
    Fault {
        kind: ReasonKind::TooLarge,
        field: None,
        reason: format!("record of {length} bytes is larger than max-record-bytes ({max_bytes})"),
    }
}

/// Decodes one line, handing its record to `consume`.
pub(crate) fn decode_line<T>(
    decoder: &RowDecoder,
    text: &str,
    consume: impl FnOnce(RecordRef<'_>) -> Result<T, Fault>,
) -> Result<T, Fault> {
    let max_bytes = decoder.limits().max_bytes;
    if text.len() > max_bytes {
        return Err(too_large(text.len(), max_bytes));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let cells =
        RowSeed { decoder }.deserialize(&mut de).and_then(|cells| de.end().map(|()| cells)).map_err(|e| {
            match e.to_string().starts_with(TOO_MANY_FIELDS) {
                true => Fault { kind: ReasonKind::TooLarge, field: None, reason: e.to_string() },
                false => Fault::malformed(format!("malformed JSON: {e}")),
            }
        })?;
    let cells: [Cell<'_>; SLOTS] = std::array::from_fn(|slot| cells[slot].as_cell());
    decoder.decode(&cells).and_then(consume)
}

/// A JSON value of a wanted key.
#[derive(Clone, Debug)]
enum JsonCell<'de> {
    Absent,
    Null,
    Str(Cow<'de, str>),
    Num(Number),
    BigUInt(u64),
    Bool(bool),
    Other(&'static str),
}

impl JsonCell<'_> {
    /// The cell of a value inside a nested object.
    fn of_value(value: &serde_json::Value) -> JsonCell<'static> {
        use serde_json::Value;
        match value {
            Value::Null => JsonCell::Null,
            Value::Bool(b) => JsonCell::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => JsonCell::Num(Number::Int(i)),
                (None, Some(u), _) => JsonCell::BigUInt(u),
                (None, None, f) => JsonCell::Num(Number::Float(f.unwrap_or(f64::NAN))),
            },
            Value::String(s) => JsonCell::Str(Cow::Owned(s.clone())),
            Value::Array(_) => JsonCell::Other("an array"),
            Value::Object(_) => JsonCell::Other("an object"),
        }
    }

    fn as_cell(&self) -> Cell<'_> {
        match self {
            JsonCell::Absent => Cell::Absent,
            JsonCell::Null => Cell::Null,
            JsonCell::Str(s) => Cell::Str(s),
            JsonCell::Num(n) => Cell::Num(*n),
            JsonCell::BigUInt(u) => Cell::BigUInt(*u),
            JsonCell::Bool(b) => Cell::Bool(*b),
            JsonCell::Other(t) => Cell::Other(t),
        }
    }
}

impl<'de> de::Deserialize<'de> for JsonCell<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CellVisitor;
        impl<'de> Visitor<'de> for CellVisitor {
            type Value = JsonCell<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(JsonCell::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(JsonCell::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
                Ok(JsonCell::Num(Number::Int(i)))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(u).map_or(JsonCell::BigUInt(u), |i| JsonCell::Num(Number::Int(i))))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
                Ok(JsonCell::Num(Number::Float(f)))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(JsonCell::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonCell::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonCell::Other("an object"))
            }
        }
        deserializer.deserialize_any(CellVisitor)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Deserializes one JSON object into the cells of the mapped keys.
struct RowSeed<'a> {
    decoder: &'a RowDecoder,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = [JsonCell<'de>; SLOTS];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = [JsonCell<'de>; SLOTS];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut cells: [JsonCell<'de>; SLOTS] = std::array::from_fn(|_| JsonCell::Absent);
        let max_fields = self.decoder.limits().max_fields;
        let mut fields = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            fields += 1;
            if fields > max_fields {
                return Err(de::Error::custom(format_args!("{TOO_MANY_FIELDS} ({max_fields}) fields")));
            }
            let mut wanted = self
                .decoder
                .columns
                .iter()
                .enumerate()
                .filter(|(_, column)| column.as_deref() == Some(&*key))
                .map(|(slot, _)| slot);
            match wanted.next() {
                // A dotted column (`consent.analytics`) also names a key of a nested object.
                None if self.decoder.nests_under(&key) => {
                    let value: serde_json::Value = map.next_value()?;
                    for (slot, column) in self.decoder.columns.iter().enumerate() {
                        let Some(path) = column.as_deref().and_then(|c| c.strip_prefix(&*key)?.strip_prefix('.'))
                        else {
                            continue;
                        };
                        let nested = path.split('.').try_fold(&value, |value, step| value.get(step));
                        if let Some(nested) = nested {
                            cells[slot] = JsonCell::of_value(nested);
                        }
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(first) => {
                    let value: JsonCell<'de> = map.next_value()?;
                    for slot in wanted {
                        cells[slot] = value.clone();
                    }
                    cells[first] = value;
                }
            }
        }
        Ok(cells)
    }
}
