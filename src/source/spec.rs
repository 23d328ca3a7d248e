//! User-facing input specifications: which column feeds which event field (`--map`) and which
//! events count as conversions (`--conversion`), parsed once before any record is decoded.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A typed error in a user-facing specification: `--map`, `--conversion`, or a named choice
/// such as the input format or the time format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An item of the spec has no `=`.
    #[error("{spec}: expected FIELD=COLUMN, got {item:?}")]
    MissingEquals {
        /// Which spec (`--map` or `--conversion`).
        spec: &'static str,
        /// The offending item.
        item: String,
    },
    /// A field name that is not one of the event fields.
    #[error("{spec}: unknown field {field:?}; expected one of {expected}")]
    UnknownField {
        /// Which spec (`--map` or `--conversion`).
        spec: &'static str,
        /// The offending field name.
        field: String,
        /// The accepted field names.
        expected: &'static str,
    },
    /// A field given twice in one spec.
    #[error("--map: field {0:?} is mapped twice")]
    Duplicate(String),
    /// An empty column name or conversion value.
    #[error("{spec}: empty value in {item:?}")]
    Empty {
        /// Which spec (`--map` or `--conversion`).
        spec: &'static str,
        /// The offending item.
        item: String,
    },
    /// A name that is none of the choices of a setting.
    #[error("unknown {what} {given:?}; expected one of {expected}")]
    UnknownChoice {
        /// What was named (`input format`, `time format`, `late policy`).
        what: &'static str,
        /// The name given.
        given: String,
        /// The accepted names.
        expected: &'static str,
    },
}

/// An event field that an input column can be mapped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The customer id (required).
    Customer,
    /// The event time (required).
    Time,
    /// The contact point, e.g. a page type (required).
    ContactPoint,
    /// The channel, e.g. the traffic source.
    Channel,
    /// The event kind, e.g. `purchase`.
    Kind,
    /// The event value, a number.
    Value,
    /// A session id.
    Session,
    /// A device (or anonymous visitor) id. Read only when mapped.
    Device,
    /// For an `alias` or `unlink` record: the other customer id. Read only when mapped.
    PreviousId,
    /// Whether the customer consents to analytics; records without it count in no view.
    /// Read from `consent.analytics` unless mapped elsewhere; absent means consent.
    Consent,
}

impl Field {
    /// All fields, in slot order.
    pub const ALL: [Field; 10] = [
        Field::Customer,
        Field::Time,
        Field::ContactPoint,
        Field::Channel,
        Field::Kind,
        Field::Value,
        Field::Session,
        Field::Device,
        Field::PreviousId,
        Field::Consent,
    ];

    const NAMES: &'static str =
        "customer, time, contact_point, channel, kind, value, session, device, previous_id, consent";

    /// The field's name, which is also its default column name.
    pub fn name(self) -> &'static str {
        match self {
            Field::Customer => "customer",
            Field::Time => "time",
            Field::ContactPoint => "contact_point",
            Field::Channel => "channel",
            Field::Kind => "kind",
            Field::Value => "value",
            Field::Session => "session",
            Field::Device => "device",
            Field::PreviousId => "previous_id",
            Field::Consent => "consent",
        }
    }

    /// Whether a record without this field is rejected.
    pub fn required(self) -> bool {
        matches!(self, Field::Customer | Field::Time | Field::ContactPoint)
    }
}

impl FromStr for Field {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Field::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| SpecError::UnknownField {
            spec: "--map",
            field: s.to_string(),
            expected: Field::NAMES,
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The column of the analytics consent flag unless `consent` is mapped: a flat column
/// `consent.analytics`, or in JSON also `{"consent": {"analytics": …}}`.
pub const DEFAULT_CONSENT_COLUMN: &str = "consent.analytics";

/// Which input column feeds each event field. The default maps every field to the column of the
/// same name, but for the identity fields (`device`, `previous_id`), which are read only when
/// mapped: a column named `device` often holds a device type, not an id, and mapping either
/// turns identity stitching on. Deserializes from a table such as `{ customer = "user_id", time = "ts" }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    customer: String,
    time: String,
    contact_point: String,
    channel: String,
    kind: String,
    value: String,
    session: String,
    device: Option<String>,
    previous_id: Option<String>,
    consent: String,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            customer: "customer".into(),
            time: "time".into(),
            contact_point: "contact_point".into(),
            channel: "channel".into(),
            kind: "kind".into(),
            value: "value".into(),
            session: "session".into(),
            device: None,
            previous_id: None,
            consent: DEFAULT_CONSENT_COLUMN.into(),
        }
    }
}

impl Mapping {
    /// Parses `FIELD=COLUMN[,FIELD=COLUMN…]`, starting from the identity mapping. Items are split
    /// on `,` and each on its first `=` only, so column names may contain `:`, `=` or spaces
    /// (`customer=case:concept:name`); surrounding whitespace is trimmed.
    pub fn parse(spec: &str) -> Result<Mapping, SpecError> {
        let mut mapping = Mapping::default();
        let mut seen = Vec::new();
        for (field, column) in Mapping::pairs(spec)? {
            if seen.contains(&field) {
                return Err(SpecError::Duplicate(field.to_string()));
            }
            seen.push(field);
            mapping.set(field, column)?;
        }
        Ok(mapping)
    }

    /// The trimmed `(field, column)` pairs of a `FIELD=COLUMN[,FIELD=COLUMN…]` spec, in order,
    /// split as [`Mapping::parse`] splits them; fields are not checked here.
    pub fn pairs(spec: &str) -> Result<Vec<(&str, &str)>, SpecError> {
        spec.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| {
                let (field, column) = item
                    .split_once('=')
                    .ok_or_else(|| SpecError::MissingEquals { spec: "--map", item: item.to_string() })?;
                Ok((field.trim(), column.trim()))
            })
            .collect()
    }

    /// Maps `field` (a field name such as `customer`) to `column`.
    pub fn set(&mut self, field: &str, column: &str) -> Result<(), SpecError> {
        let field: Field = field.trim().parse()?;
        if column.is_empty() {
            return Err(SpecError::Empty { spec: "--map", item: format!("{field}=") });
        }
        let column = column.to_string();
        match field {
            Field::Customer => self.customer = column,
            Field::Time => self.time = column,
            Field::ContactPoint => self.contact_point = column,
            Field::Channel => self.channel = column,
            Field::Kind => self.kind = column,
            Field::Value => self.value = column,
            Field::Session => self.session = column,
            Field::Device => self.device = Some(column),
            Field::PreviousId => self.previous_id = Some(column),
            Field::Consent => self.consent = column,
        }
        Ok(())
    }

    /// The column that feeds `field`; `None` for an identity field that is not mapped.
    pub fn column(&self, field: Field) -> Option<&str> {
        match field {
            Field::Customer => Some(&self.customer),
            Field::Time => Some(&self.time),
            Field::ContactPoint => Some(&self.contact_point),
            Field::Channel => Some(&self.channel),
            Field::Kind => Some(&self.kind),
            Field::Value => Some(&self.value),
            Field::Session => Some(&self.session),
            Field::Device => self.device.as_deref(),
            Field::PreviousId => self.previous_id.as_deref(),
            Field::Consent => Some(&self.consent),
        }
    }

    /// Whether identities are stitched into profiles: `device` or `previous_id` is mapped.
    pub fn stitches(&self) -> bool {
        self.device.is_some() || self.previous_id.is_some()
    }
}

impl FromStr for Mapping {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mapping::parse(s)
    }
}

/// The field a conversion rule tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversionField {
    /// The event kind.
    Kind,
    /// The contact point.
    ContactPoint,
}

/// Which events are conversions: those whose `field` equals one of `values`
/// (`--conversion kind=purchase|signup`). Deserializes from the same string form.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Conversion {
    /// The field tested.
    pub field: ConversionField,
    /// The values that make an event converting.
    pub values: Vec<String>,
}

impl Conversion {
    /// Parses `FIELD=VALUE[|VALUE…]` where FIELD is `kind` or `contact_point`.
    pub fn parse(spec: &str) -> Result<Conversion, SpecError> {
        let (field, values) = spec
            .split_once('=')
            .ok_or_else(|| SpecError::MissingEquals { spec: "--conversion", item: spec.to_string() })?;
        let field = match field.trim() {
            "kind" => ConversionField::Kind,
            "contact_point" => ConversionField::ContactPoint,
            other => {
                return Err(SpecError::UnknownField {
                    spec: "--conversion",
                    field: other.to_string(),
                    expected: "kind, contact_point",
                });
            }
        };
        let values: Vec<String> = values.split('|').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(SpecError::Empty { spec: "--conversion", item: spec.to_string() });
        }
        Ok(Conversion { field, values })
    }

    /// Whether an event with this contact point and kind converts.
    pub fn matches(&self, contact_point: &str, kind: Option<&str>) -> bool {
        let tested = match self.field {
            ConversionField::Kind => kind,
            ConversionField::ContactPoint => Some(contact_point),
        };
        tested.is_some_and(|t| self.values.iter().any(|v| v == t))
    }
}

impl FromStr for Conversion {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Conversion::parse(s)
    }
}

impl TryFrom<String> for Conversion {
    type Error = SpecError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Conversion::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_spec() {
        let m = Mapping::parse("customer=case:concept:name, time = time:timestamp,kind=a=b").unwrap();
        assert_eq!(m.column(Field::Customer), Some("case:concept:name"));
        assert_eq!(m.column(Field::Time), Some("time:timestamp"));
        assert_eq!(m.column(Field::Kind), Some("a=b"));
        assert_eq!(m.column(Field::Channel), Some("channel"));
        assert_eq!(m.column(Field::Device), None);
        assert!(matches!(Mapping::parse("user=x"), Err(SpecError::UnknownField { .. })));
        assert!(matches!(Mapping::parse("customer"), Err(SpecError::MissingEquals { .. })));
        assert!(matches!(Mapping::parse("time=a,time=b"), Err(SpecError::Duplicate(_))));
        assert!(matches!(Mapping::parse("time="), Err(SpecError::Empty { .. })));
        assert_eq!(Mapping::parse("").unwrap(), Mapping::default());
    }

    #[test]
    fn conversion_spec() {
        let c: Conversion = "kind=purchase|signup".parse().unwrap();
        assert!(c.matches("home", Some("signup")));
        assert!(!c.matches("purchase", None));
        let c = Conversion::parse("contact_point=checkout").unwrap();
        assert!(c.matches("checkout", None));
        assert!(Conversion::parse("channel=x").is_err());
        assert!(Conversion::parse("kind").is_err());
        assert!(Conversion::parse("kind=a||b").is_err());
    }
}
