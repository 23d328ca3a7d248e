//! Timestamp decoding for the input side: turns the time cells of incoming records (date strings
//! or epoch numbers) into milliseconds since the Unix epoch, UTC.

use std::str::FromStr;

use super::SpecError;

/// How the time column of an input is interpreted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// Numbers (and numeric strings) are epoch seconds if below 1e11 in magnitude, else epoch
    /// milliseconds; other strings are parsed as dates (RFC 3339 and the usual export forms).
    #[default]
    Auto,
    /// Date strings only: RFC 3339 and `YYYY-MM-DD HH:MM:SS[.f][Z|±HH:MM|±HHMM|±HH]`.
    Rfc3339,
    /// Seconds since the epoch (fractions allowed).
    EpochS,
    /// Milliseconds since the epoch (fractions allowed, truncated toward -inf).
    EpochMs,
}

impl FromStr for TimeFormat {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TimeFormat::Auto),
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            "epoch_s" => Ok(TimeFormat::EpochS),
            "epoch_ms" => Ok(TimeFormat::EpochMs),
            other => Err(SpecError::UnknownChoice {
                what: "time format",
                given: other.to_owned(),
                expected: "auto, rfc3339, epoch_s, epoch_ms",
            }),
        }
    }
}

impl TimeFormat {
    /// A short description of what this format expects, for error messages.
    pub(crate) fn expectation(self) -> &'static str {
        match self {
            TimeFormat::Auto | TimeFormat::Rfc3339 => "a timestamp",
            TimeFormat::EpochS => "epoch seconds",
            TimeFormat::EpochMs => "epoch milliseconds",
        }
    }

    /// Converts a text cell to ms since the epoch, or `None` if it does not fit this format.
    pub(crate) fn parse_text(self, text: &str) -> Option<i64> {
        let text = text.trim();
        match self {
            TimeFormat::Rfc3339 => parse_datetime(text),
            TimeFormat::Auto => match parse_number(text) {
                Some(number) => self.millis_of_number(number),
                None => parse_datetime(text),
            },
            TimeFormat::EpochS | TimeFormat::EpochMs => self.millis_of_number(parse_number(text)?),
        }
    }

    /// Converts a numeric cell to ms since the epoch, or `None` if this format takes no numbers
    /// or the number is out of range.
    pub(crate) fn millis_of_number(self, number: Number) -> Option<i64> {
        let millis_per_unit = match self {
            TimeFormat::Rfc3339 => return None,
            TimeFormat::EpochS => 1000,
            TimeFormat::EpochMs => 1,
            TimeFormat::Auto => {
                let magnitude = match number {
                    Number::Int(i) => i.unsigned_abs() as f64,
                    Number::Float(f) => f.abs(),
                };
                if magnitude < 1e11 { 1000 } else { 1 }
            }
        };
        match number {
            Number::Int(i) => i.checked_mul(millis_per_unit),
            Number::Float(f) => {
                let ms = f * millis_per_unit as f64;
                // Round to whole microseconds before truncating, so that a decimal fraction
                // f64 cannot hold exactly keeps its last millisecond (1076801537.222 s is
                // 1076801537221.9999 ms as f64).
                let micros = (ms * 1000.0).round();
                if micros.abs() < 9.0e18 {
                    Some((micros as i64).div_euclid(1000))
                } else {
                    let ms = ms.floor();
                    (ms.is_finite() && ms.abs() < 9.0e18).then_some(ms as i64)
                }
            }
        }
    }
}

/// A numeric time cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
}

/// Parses a numeric string (`"1700000000"`, `"-12.5"`, `"1e9"`); `None` for anything else,
/// including `inf`/`nan`.
pub(crate) fn parse_number(text: &str) -> Option<Number> {
    let first = *text.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::Int(i));
    }
    let f = text.parse::<f64>().ok()?;
    f.is_finite().then_some(Number::Float(f))
}

/// Parses a date string to ms since the epoch, UTC: the fixed forms
/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][Z|±HH:MM|±HHMM|±HH]` (no offset means UTC) by hand,
/// then RFC 2822 through chrono.
pub(crate) fn parse_datetime(text: &str) -> Option<i64> {
    parse_iso(text.as_bytes()).or_else(|| chrono::DateTime::parse_from_rfc2822(text).ok().map(|t| t.timestamp_millis()))
}

/// The hand-written fast path for ISO-8601-like timestamps.
fn parse_iso(b: &[u8]) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if !matches!(b[10], b' ' | b'T' | b't') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    let mut pos = 16;
    let mut second = 0;
    if b.get(pos) == Some(&b':') {
        second = digits(b, pos + 1, 2)?;
        pos += 3;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    ms += (hour * 3600 + minute * 60 + second) * 1000;
    if matches!(b.get(pos), Some(b'.' | b',')) {
        pos += 1;
        let start = pos;
        let mut fraction_ms = 0;
        while let Some(d) = b.get(pos).filter(|d| d.is_ascii_digit()) {
            if pos - start < 3 {
                fraction_ms = fraction_ms * 10 + i64::from(d - b'0');
            }
            pos += 1;
        }
        let count = pos - start;
        if count == 0 {
            return None;
        }
        for _ in count..3 {
            fraction_ms *= 10;
        }
        ms += fraction_ms;
    }
    // One space may separate the offset (`… 09:00:00 +02:00`, `… 09:00:00 UTC`).
    if b.get(pos) == Some(&b' ') && pos + 1 < b.len() {
        pos += 1;
    }
    let offset_minutes = match b.get(pos) {
        None => 0,
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(b'U') if &b[pos..] == b"UTC" => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(b, pos + 1, 2)?;
            let minutes = match b.len() - (pos + 3) {
                0 => 0,
                2 => digits(b, pos + 3, 2)?,
                3 if b[pos + 3] == b':' => digits(b, pos + 4, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    Some(ms - offset_minutes * 60_000)
}

/// The number formed by the `count` ASCII digits at `start`, if they are all digits.
fn digits(b: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = b.get(start..start + count)?;
    slice.iter().try_fold(0i64, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_forms() {
        assert_eq!(parse_datetime("2011-10-11 13:45:40.276000+02:00"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11T11:45:40.276Z"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 11:45:40.2769"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 13:45:40.276+0200"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 13:45:40.276+02"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 13:45:40.276 +02:00"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 11:45:40.276 UTC"), Some(1318333540276));
        assert_eq!(parse_datetime("2011-10-11 11:45:40.276 "), None);
        assert_eq!(parse_datetime("2011-10-11 09:45:40.276-02:00"), Some(1318333540276));
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(parse_datetime("1969-12-31 23:59:59.999"), Some(-1));
        assert_eq!(parse_datetime("2024-02-29 00:00"), Some(1709164800000));
        assert_eq!(parse_datetime("Tue, 1 Jul 2003 10:52:37 +0200"), Some(1057049557000));
        for bad in [
            "2024-13-45",
            "2023-02-29",
            "2024-01-01 24:00:00",
            "2024-01-01 10:00:00+",
            "2024-01-01 10:00:00.",
            "2024-01-01X10:00",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn epochs() {
        assert_eq!(TimeFormat::Auto.parse_text("1700000000"), Some(1_700_000_000_000));
        assert_eq!(TimeFormat::Auto.parse_text("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(TimeFormat::Auto.parse_text("1.5"), Some(1500));
        assert_eq!(TimeFormat::EpochMs.parse_text("-0.5"), Some(-1));
        assert_eq!(TimeFormat::EpochS.parse_text("1076801537.222"), Some(1_076_801_537_222));
        assert_eq!(TimeFormat::EpochS.parse_text("1.001"), Some(1001));
        assert_eq!(TimeFormat::EpochS.parse_text("2024-01-01"), None);
        assert_eq!(TimeFormat::Rfc3339.parse_text("1700000000"), None);
        assert_eq!(TimeFormat::EpochS.millis_of_number(Number::Int(i64::MAX)), None);
        assert_eq!("epoch_ms".parse::<TimeFormat>(), Ok(TimeFormat::EpochMs));
        assert!("weekly".parse::<TimeFormat>().is_err());
    }
}
