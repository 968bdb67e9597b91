//! Strict timestamp parsing: a cell of the date column to its UTC calendar day.
//!
//! Accepted, byte for byte (surrounding spaces ignored):
//! `YYYY-MM-DD`, or `YYYY-MM-DD` + `T`/`t`/space + `HH:MM[:SS[.fraction]]` + an optional zone
//! `Z`/`z`, `+HH:MM`, `+HHMM` or `+HH` (or `-`). Every field is range-checked. A timestamp without
//! a zone is naive: it is taken as UTC only under [`NaiveTimestamps::Utc`]. Anything else is an
//! error, which the scanner counts and reports: nothing is dropped silently.

use chrono::{Datelike, Days, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do with a timestamp that has a time but no UTC offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NaiveTimestamps {
    /// Count it as unparsable (the safe default: its day is unknown).
    #[default]
    Reject,
    /// Take it as UTC.
    Utc,
}

/// Why a cell has no day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateError {
    /// Not an ISO-8601 / RFC 3339 date or timestamp.
    Unparsable,
    /// A timestamp with no offset while naive timestamps are rejected.
    Naive,
}

const SECONDS_PER_DAY: i32 = 86_400;

/// Parses a date or timestamp cell to its UTC calendar day.
pub fn parse_day(cell: &[u8], naive: NaiveTimestamps) -> Result<NaiveDate, DateError> {
    DayParser::default().parse(cell, naive)
}

/// [`parse_day`] for a column: remembers the last date part, since consecutive rows mostly
/// share it (the time and offset are still checked on every cell).
#[derive(Clone, Debug, Default)]
pub struct DayParser {
    prefix: [u8; 10],
    date: Option<NaiveDate>,
}

impl DayParser {
    /// Parses a date or timestamp cell to its UTC calendar day.
    pub fn parse(&mut self, cell: &[u8], naive: NaiveTimestamps) -> Result<NaiveDate, DateError> {
        let s = cell.trim_ascii();
        let date = match s.get(..10) {
            Some(prefix) if prefix == self.prefix => self.date,
            Some(prefix) => {
                self.prefix.copy_from_slice(prefix);
                self.date = leading_date(s);
                self.date
            }
            None => None,
        };
        time_part(s, date.ok_or(DateError::Unparsable)?, naive)
    }
}

/// Checks what follows the date part and moves the day by the offset.
fn time_part(s: &[u8], date: NaiveDate, naive: NaiveTimestamps) -> Result<NaiveDate, DateError> {
    if s.len() == 10 {
        return Ok(date);
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return Err(DateError::Unparsable);
    }
    let mut p = Cursor { s, i: 11 };
    let hour = p.two_digits(23)?;
    p.expect(b':')?;
    let minute = p.two_digits(59)?;
    let mut second = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.two_digits(59)?;
        if matches!(p.peek(), Some(b'.' | b',')) {
            p.i += 1;
            let start = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            if p.i == start {
                return Err(DateError::Unparsable);
            }
        }
    }
    let local_seconds = (hour * 3600 + minute * 60 + second) as i32;
    let offset = match p.peek() {
        None => match naive {
            NaiveTimestamps::Utc => 0,
            NaiveTimestamps::Reject => return Err(DateError::Naive),
        },
        Some(b'Z' | b'z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let h = p.two_digits(23)?;
            let m = match p.peek() {
                None => 0,
                Some(b':') => {
                    p.i += 1;
                    p.two_digits(59)?
                }
                Some(_) => p.two_digits(59)?,
            };
            let secs = (h * 3600 + m * 60) as i32;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        Some(_) => return Err(DateError::Unparsable),
    };
    if p.i != s.len() {
        return Err(DateError::Unparsable);
    }
    let utc_seconds = local_seconds - offset;
    let shifted = if utc_seconds < 0 {
        date.checked_sub_days(Days::new(1))
    } else if utc_seconds >= SECONDS_PER_DAY {
        date.checked_add_days(Days::new(1))
    } else {
        Some(date)
    };
    shifted.ok_or(DateError::Unparsable)
}

/// The valid `YYYY-MM-DD` date at the start of a cell, if any. Used to attribute an
/// unparsable timestamp to its day when the date part is intact.
pub fn leading_date(s: &[u8]) -> Option<NaiveDate> {
    let s = s.trim_ascii_start();
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        s[r].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    // Reject years chrono accepts but no warehouse holds in a partition column (e.g. 0000).
    (date.year() >= 1).then_some(date)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), DateError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(DateError::Unparsable)
        }
    }

    fn two_digits(&mut self, max: u32) -> Result<u32, DateError> {
        match self.s.get(self.i..self.i + 2) {
            Some([a @ b'0'..=b'9', b @ b'0'..=b'9']) => {
                self.i += 2;
                let v = u32::from(a - b'0') * 10 + u32::from(b - b'0');
                if v <= max {
                    Ok(v)
                } else {
                    Err(DateError::Unparsable)
                }
            }
            _ => Err(DateError::Unparsable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ok(cell: &str) -> NaiveDate {
        parse_day(cell.as_bytes(), NaiveTimestamps::Reject)
            .unwrap_or_else(|e| panic!("{cell:?}: {e:?}"))
    }

    #[test]
    fn accepts_the_layouts_pandas_and_rfc3339_write() {
        assert_eq!(ok("2025-02-24 16:48:56.994000+00:00"), day("2025-02-24"));
        assert_eq!(ok("2025-03-01 16:55:01+00:00"), day("2025-03-01"));
        assert_eq!(ok("2025-03-01T16:55:01Z"), day("2025-03-01"));
        assert_eq!(ok("2025-03-01t16:55:01.5z"), day("2025-03-01"));
        assert_eq!(ok("2025-03-01T16:55:01,123456789+0000"), day("2025-03-01"));
        assert_eq!(ok("2025-03-01T16:55+00"), day("2025-03-01"));
        assert_eq!(ok("2025-03-01"), day("2025-03-01"));
        assert_eq!(ok("  2025-03-01T00:00:00Z "), day("2025-03-01"));
    }

    #[test]
    fn offsets_move_the_day_in_both_directions() {
        assert_eq!(ok("2025-03-01T23:30:00-02:00"), day("2025-03-02"));
        assert_eq!(ok("2025-03-01T01:30:00+05:00"), day("2025-02-28"));
        assert_eq!(ok("2024-12-31T22:00:00-03:00"), day("2025-01-01"));
        assert_eq!(ok("2025-03-01T05:00:00+05:00"), day("2025-03-01"));
    }

    #[test]
    fn naive_timestamps_follow_the_policy() {
        let cell = b"2025-03-01 10:00:00";
        assert_eq!(
            parse_day(cell, NaiveTimestamps::Reject),
            Err(DateError::Naive)
        );
        assert_eq!(parse_day(cell, NaiveTimestamps::Utc), Ok(day("2025-03-01")));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "garbage",
            "2025-13-01",
            "2025-02-30T00:00:00Z",
            "2025-03-01T24:00:00Z",
            "2025-03-01T10:60:00Z",
            "2025-03-01T10:00:61Z",
            "2025-03-01T10:00:00.Z",
            "2025-03-01T10:00:00+25:00",
            "2025-03-01T10:00:00 UTC",
            "2025-03-01X10:00:00Z",
            "2025-3-1",
            "20250301",
            "01/03/2025",
            "2025-03-01T10Z",
        ] {
            assert_eq!(
                parse_day(bad.as_bytes(), NaiveTimestamps::Utc),
                Err(DateError::Unparsable),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_column_parser_reuses_the_date_part_but_checks_every_time() {
        let mut p = DayParser::default();
        let utc = NaiveTimestamps::Utc;
        assert_eq!(p.parse(b"2025-03-01 10:00:00Z", utc), Ok(day("2025-03-01")));
        assert_eq!(
            p.parse(b"2025-03-01 23:30:00-02:00", utc),
            Ok(day("2025-03-02"))
        );
        assert_eq!(
            p.parse(b"2025-03-01 25:00:00Z", utc),
            Err(DateError::Unparsable)
        );
        assert_eq!(p.parse(b"2025-03-01", utc), Ok(day("2025-03-01")));
        assert_eq!(
            p.parse(b"2025-02-30 10:00:00Z", utc),
            Err(DateError::Unparsable)
        );
        assert_eq!(
            p.parse(b"2025-02-30 11:00:00Z", utc),
            Err(DateError::Unparsable)
        );
        assert_eq!(p.parse(b"2025-02-28 11:00:00Z", utc), Ok(day("2025-02-28")));
        assert_eq!(p.parse(b"2025-02", utc), Err(DateError::Unparsable));
    }

    #[test]
    fn leading_date_recovers_the_day_of_a_bad_timestamp() {
        assert_eq!(leading_date(b"2025-03-01 25:99"), Some(day("2025-03-01")));
        assert_eq!(leading_date(b"2025-02-30 10:00"), None);
        assert_eq!(leading_date(b"nope"), None);
    }
}
