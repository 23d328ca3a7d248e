//! The format-independent middle of the input side: resolves mapped columns against a file's
//! header once, then turns one row of cells (whatever the format) into a [`RecordRef`] borrowing
//! the format's buffers, or a fault.

use std::borrow::Cow;

use stepstone_dataflows::event::value_to_micros;

use super::spec::Field;
use super::time::Number;
use super::{ALIAS_KIND, DecodeOptions, Error, ReasonKind, RecordLimits, RecordLink, RecordRef, UNLINK_KIND};

/// Number of cell slots per row: the ten [`Field`]s, then the journey key.
pub(crate) const SLOTS: usize = 11;
/// The slot of the journey-key column.
pub(crate) const JOURNEY_SLOT: usize = 10;

/// One cell of a row, borrowed from the format's buffers.
#[derive(Clone, Debug)]
pub(crate) enum Cell<'a> {
    /// The column is not in this row (or not in the file at all).
    Absent,
    /// An explicit null.
    Null,
    /// Text.
    Str(&'a str),
    /// A number.
    Num(Number),
    /// An unsigned integer too large for `i64`.
    BigUInt(u64),
    /// A native timestamp, already in ms since the epoch.
    TimeMs(i64),
    /// A boolean.
    Bool(bool),
    /// A value of a type no field accepts (object, list, …), named for the error message.
    Other(&'static str),
}

/// Why a row was not decoded; the format adds where it came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Fault {
    /// The category.
    pub kind: ReasonKind,
    /// The field at fault, if one.
    pub field: Option<&'static str>,
    /// Human-readable reason.
    pub reason: String,
}

impl Fault {
    /// A fault not tied to a field.
    pub fn malformed(reason: String) -> Fault {
        Fault { kind: ReasonKind::Malformed, field: None, reason }
    }
}

/// The earliest accepted event time: 0000-01-01T00:00:00Z.
const MIN_TIME_MS: i64 = -62_167_219_200_000;
/// The latest accepted event time: 9999-12-31T23:59:59.999Z.
const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Decodes rows of cells into records according to the options.
pub(crate) struct RowDecoder {
    /// Column name per slot; `None` for the journey key when none is configured.
    pub columns: [Option<String>; SLOTS],
    /// The first parts of the dotted columns (`consent` of `consent.analytics`): JSON keys
    /// whose objects hold mapped values.
    nest_roots: Vec<String>,
    options: DecodeOptions,
}

impl RowDecoder {
    /// A decoder for `options`.
    pub fn new(options: &DecodeOptions) -> RowDecoder {
        let columns = std::array::from_fn(|slot| match Field::ALL.get(slot) {
            Some(&field) => options.mapping.column(field).map(str::to_string),
            None => options.journey_key.clone(),
        });
        let nest_roots = columns.iter().flatten().filter_map(|c| Some(c.split_once('.')?.0.to_owned())).collect();
        RowDecoder { columns, nest_roots, options: options.clone() }
    }

    /// The limits on one record.
    pub fn limits(&self) -> RecordLimits {
        self.options.limits
    }

    /// Whether some column is a dotted path into the JSON object under `key` (`key.…`).
    pub fn nests_under(&self, key: &str) -> bool {
        self.nest_roots.iter().any(|root| root == key)
    }

    /// Finds each slot's column among `available` (a header or schema). A missing required column
    /// is an error naming it and listing the available ones; a missing optional column (or
    /// journey key, with a warning) leaves its slot `None`.
    pub fn resolve(&self, available: &[String], what: &str) -> Result<[Option<usize>; SLOTS], Error> {
        let mut slots = [None; SLOTS];
        for (slot, column) in self.columns.iter().enumerate() {
            let Some(column) = column else { continue };
            slots[slot] = available.iter().position(|c| c == column);
            if slots[slot].is_some() {
                continue;
            }
            // With device ids, records need not have a customer id.
            let optional_customer = slot == Field::Customer as usize && self.columns[Field::Device as usize].is_some();
            match Field::ALL.get(slot) {
                Some(&field) if field.required() && !optional_customer => {
                    return Err(Error::MissingColumn {
                        column: column.clone(),
                        field,
                        within: what.to_owned(),
                        available: available.to_vec(),
                    });
                }
                None => tracing::warn!(
                    "journey-key column {column:?} not found in {what}; every record gets no journey key"
                ),
                Some(_) => {}
            }
        }
        Ok(slots)
    }

    /// Decodes one row given its cells in slot order.
    pub fn decode<'a>(&self, cells: &[Cell<'a>; SLOTS]) -> Result<RecordRef<'a>, Fault> {
        let text = |field: Field| self.optional_text(field.name(), &cells[field as usize]);
        let customer = text(Field::Customer)?;
        let device = text(Field::Device)?;
        let previous_id = text(Field::PreviousId)?;
        let time = self.time(&cells[Field::Time as usize])?;
        let channel = text(Field::Channel)?;
        let kind = text(Field::Kind)?;
        let value = self.value(&cells[Field::Value as usize])?;
        let session = text(Field::Session)?;
        let journey_key = self.optional_text("journey_key", &cells[JOURNEY_SLOT])?;
        let consent = consent(&cells[Field::Consent as usize])?;
        let stitching = self.options.mapping.stitches();
        let link_kind = match kind.as_deref() {
            Some(ALIAS_KIND) if stitching => Some(false),
            Some(UNLINK_KIND) if stitching => Some(true),
            _ => None,
        };
        if let Some(unlink) = link_kind {
            // A link only: the customer id and the other identity.
            let customer = customer.ok_or_else(|| self.missing(Field::Customer))?;
            let link = match (previous_id, device) {
                (Some(other), _) => RecordLink { other, device: false, unlink },
                (None, Some(other)) if unlink => RecordLink { other, device: true, unlink },
                (None, _) => return Err(self.missing(Field::PreviousId)),
            };
            return Ok(RecordRef {
                customer,
                anonymous: false,
                consent,
                link: Some(link),
                interaction: false,
                journey_key,
                time,
                contact_point: Cow::Borrowed(""),
                channel,
                kind,
                session,
                converting: false,
                value,
            });
        }
        let (customer, anonymous, link) = match (customer, device) {
            (Some(customer), device) => {
                (customer, false, device.map(|other| RecordLink { other, device: true, unlink: false }))
            }
            (None, Some(device)) => (device, true, None),
            (None, None) => return Err(self.missing(Field::Customer)),
        };
        let contact_point = self.required_text(Field::ContactPoint, &cells[Field::ContactPoint as usize])?;
        let converting = self.options.conversion.as_ref().is_some_and(|c| c.matches(&contact_point, kind.as_deref()));
        Ok(RecordRef {
            customer,
            anonymous,
            consent,
            link,
            interaction: true,
            journey_key,
            time,
            contact_point,
            channel,
            kind,
            session,
            converting,
            value,
        })
    }

    fn missing(&self, field: Field) -> Fault {
        let column = self.columns[field as usize].as_deref().unwrap_or_default();
        let device = self.columns[Field::Device as usize].as_deref().filter(|_| field == Field::Customer);
        let reason = match device {
            Some(device) => format!("{field}: missing (column {column:?}), and no device id (column {device:?})"),
            None => format!("{field}: missing (column {column:?})"),
        };
        Fault { kind: ReasonKind::MissingField, field: Some(field.name()), reason }
    }

    fn required_text<'a>(&self, field: Field, cell: &Cell<'a>) -> Result<Cow<'a, str>, Fault> {
        self.optional_text(field.name(), cell)?.ok_or_else(|| self.missing(field))
    }

    fn optional_text<'a>(&self, name: &'static str, cell: &Cell<'a>) -> Result<Option<Cow<'a, str>>, Fault> {
        Ok(match *cell {
            Cell::Absent | Cell::Null => None,
            Cell::Str(s) if is_blank(s) => None,
            Cell::Str(s) => Some(Cow::Borrowed(s)),
            Cell::Num(Number::Int(i)) | Cell::TimeMs(i) => Some(Cow::Owned(i.to_string())),
            Cell::Num(Number::Float(f)) => Some(Cow::Owned(render_float(f))),
            Cell::BigUInt(u) => Some(Cow::Owned(u.to_string())),
            Cell::Bool(_) => return Err(bad_type(name, "text or a number", "a boolean")),
            Cell::Other(t) => return Err(bad_type(name, "text or a number", t)),
        })
    }

    /// The event time of `cell` in ms, within the years 0000–9999 so that differences and sums
    /// of times (dwell) cannot overflow.
    fn time(&self, cell: &Cell<'_>) -> Result<i64, Fault> {
        let format = self.options.time_format;
        let parsed = match *cell {
            Cell::Absent | Cell::Null | Cell::Str("") => return Err(self.missing(Field::Time)),
            Cell::TimeMs(ms) => Some(ms),
            Cell::Str(s) => format.parse_text(s),
            Cell::Num(n) => format.millis_of_number(n),
            Cell::BigUInt(_) => None,
            Cell::Bool(_) => return Err(bad_type("time", "a timestamp", "a boolean")),
            Cell::Other(t) => return Err(bad_type("time", "a timestamp", t)),
        };
        // The cell as the error messages show it, rendered only on error.
        let shown = || match *cell {
            Cell::TimeMs(ms) => format!("{ms} ms"),
            Cell::Str(s) => format!("{s:?}"),
            Cell::Num(Number::Int(i)) => i.to_string(),
            Cell::Num(Number::Float(f)) => f.to_string(),
            Cell::BigUInt(u) => u.to_string(),
            Cell::Absent | Cell::Null | Cell::Bool(_) | Cell::Other(_) => String::new(),
        };
        let millis = parsed.ok_or_else(|| Fault {
            kind: ReasonKind::BadTime,
            field: Some("time"),
            reason: format!("time: cannot parse {} as {}", shown(), format.expectation()),
        })?;
        if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&millis) {
            return Err(Fault {
                kind: ReasonKind::BadTime,
                field: Some("time"),
                reason: format!("time: {} is outside the years 0000 to 9999", shown()),
            });
        }
        Ok(millis)
    }

    fn value(&self, cell: &Cell<'_>) -> Result<i64, Fault> {
        let value = match *cell {
            Cell::Absent | Cell::Null => return Ok(0),
            Cell::Str(s) if is_blank(s) => return Ok(0),
            Cell::Str(s) => s.trim().parse::<f64>().map_err(|_| Fault {
                kind: ReasonKind::BadValue,
                field: Some("value"),
                reason: format!("value: cannot parse {s:?} as a number"),
            })?,
            Cell::Num(Number::Int(i)) | Cell::TimeMs(i) => i as f64,
            Cell::Num(Number::Float(f)) => f,
            Cell::BigUInt(u) => u as f64,
            Cell::Bool(_) => return Err(bad_type("value", "a number", "a boolean")),
            Cell::Other(t) => return Err(bad_type("value", "a number", t)),
        };
        value_to_micros(value).ok_or_else(|| Fault {
            kind: ReasonKind::BadValue,
            field: Some("value"),
            reason: format!("value out of range: {value}"),
        })
    }
}

/// Whether the consent flag `cell` grants analytics consent: absent, null or blank grants it
/// (no flag, no objection); `true`/`false`, `1`/`0`, `yes`/`no`, `granted`/`denied` (in any
/// case) say it; anything else is a bad value.
fn consent(cell: &Cell<'_>) -> Result<bool, Fault> {
    let bad = |shown: String| Fault {
        kind: ReasonKind::BadValue,
        field: Some("consent"),
        reason: format!("consent: expected true or false, got {shown}"),
    };
    match *cell {
        Cell::Absent | Cell::Null => Ok(true),
        Cell::Str(s) if is_blank(s) => Ok(true),
        Cell::Bool(b) => Ok(b),
        Cell::Num(Number::Int(1)) => Ok(true),
        Cell::Num(Number::Int(0)) => Ok(false),
        Cell::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "granted" => Ok(true),
            "false" | "0" | "no" | "denied" => Ok(false),
            _ => Err(bad(format!("{s:?}"))),
        },
        Cell::Num(Number::Int(i)) | Cell::TimeMs(i) => Err(bad(i.to_string())),
        Cell::Num(Number::Float(f)) => Err(bad(f.to_string())),
        Cell::BigUInt(u) => Err(bad(u.to_string())),
        Cell::Other(t) => Err(bad(t.to_owned())),
    }
}

/// Whether `s` is empty or only white space; decided by the first byte for most text.
fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii() && !b.is_ascii_whitespace() => false,
        Some(_) => s.trim().is_empty(),
    }
}

fn bad_type(field: &'static str, expected: &str, got: &str) -> Fault {
    Fault { kind: ReasonKind::BadType, field: Some(field), reason: format!("{field}: expected {expected}, got {got}") }
}

/// Renders a float id as text: integral values without a fraction (`173688.0` → `"173688"`).
fn render_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() }
}
