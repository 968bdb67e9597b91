//! Typed Arrow values as the text a CSV export of the same table holds, so that the engine's
//! scan gives every format one meaning: strings as they are (no copy), integers in decimal,
//! floats in their shortest exact form (`1449`, `0.1`), decimals with their scale, booleans as
//! `true`/`false`, dates as `YYYY-MM-DD`, timestamps with a time zone as their UTC instant
//! (`2025-03-01T10:00:00.000001Z`) and timestamps without one as naive (`2025-03-01T10:00:00`).
//! A null is an absent cell. Nested types (lists, structs, maps) have no text form: their cells
//! are absent, and the reason is given by [`unsupported`].

use std::io::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, Timelike};

/// One column of a batch as text cells.
pub enum Text<'a> {
    /// Strings or bytes, read in place.
    Borrowed(&'a dyn Array, BytesKind),
    /// Values of a dictionary, by row.
    Dictionary {
        /// Per row, the value's index (`None`: null).
        keys: Vec<Option<usize>>,
        /// The dictionary's values.
        values: Box<Text<'a>>,
    },
    /// Values written as text: the bytes of every row, each row's end, and which are null.
    Written {
        /// All rows' text.
        bytes: Vec<u8>,
        /// Each row's end in `bytes`.
        ends: Vec<usize>,
        /// Each row's validity.
        valid: Vec<bool>,
    },
    /// The same value on every row (a hive partition value).
    Constant(&'a [u8]),
    /// No value on any row.
    Absent,
}

/// Which string or bytes array a borrowed column is.
#[derive(Clone, Copy, Debug)]
pub enum BytesKind {
    /// `Utf8`.
    Utf8,
    /// `LargeUtf8`.
    LargeUtf8,
    /// `Utf8View`.
    Utf8View,
    /// `Binary`.
    Binary,
    /// `LargeBinary`.
    LargeBinary,
    /// `BinaryView`.
    BinaryView,
}

/// Why a column's type has no text form, or `None` when it has one.
pub fn unsupported(data_type: &DataType) -> Option<String> {
    match Text::from_array_type(data_type) {
        true => None,
        false => Some(format!("type {data_type} has no text form in vigil")),
    }
}

impl<'a> Text<'a> {
    /// Whether values of a type can be written as text.
    fn from_array_type(data_type: &DataType) -> bool {
        match data_type {
            DataType::Dictionary(_, values) => Text::from_array_type(values),
            DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView => true,
            _ => false,
        }
    }

    /// The text cells of an array.
    pub fn of(array: &'a dyn Array) -> Text<'a> {
        let borrowed = |kind| Text::Borrowed(array, kind);
        match array.data_type() {
            DataType::Utf8 => borrowed(BytesKind::Utf8),
            DataType::LargeUtf8 => borrowed(BytesKind::LargeUtf8),
            DataType::Utf8View => borrowed(BytesKind::Utf8View),
            DataType::Binary => borrowed(BytesKind::Binary),
            DataType::LargeBinary => borrowed(BytesKind::LargeBinary),
            DataType::BinaryView => borrowed(BytesKind::BinaryView),
            DataType::Dictionary(..) => {
                let dictionary = array
                    .as_any_dictionary_opt()
                    .expect("a dictionary type is a dictionary array");
                let keys = dictionary
                    .normalized_keys()
                    .into_iter()
                    .enumerate()
                    .map(|(row, key)| array.is_valid(row).then_some(key))
                    .collect();
                Text::Dictionary {
                    keys,
                    values: Box::new(Text::of(dictionary.values().as_ref())),
                }
            }
            DataType::Null => Text::Absent,
            data_type if !Text::from_array_type(data_type) => Text::Absent,
            _ => write_all(array),
        }
    }

    /// The cell of a row (`None`: null or absent).
    pub fn get(&self, row: usize) -> Option<&[u8]> {
        match self {
            Text::Borrowed(array, kind) => {
                if array.is_null(row) {
                    return None;
                }
                Some(match kind {
                    BytesKind::Utf8 => array.as_string::<i32>().value(row).as_bytes(),
                    BytesKind::LargeUtf8 => array.as_string::<i64>().value(row).as_bytes(),
                    BytesKind::Utf8View => array.as_string_view().value(row).as_bytes(),
                    BytesKind::Binary => array.as_binary::<i32>().value(row),
                    BytesKind::LargeBinary => array.as_binary::<i64>().value(row),
                    BytesKind::BinaryView => array.as_binary_view().value(row),
                })
            }
            Text::Dictionary { keys, values } => values.get(keys.get(row).copied().flatten()?),
            Text::Written { bytes, ends, valid } => {
                if !*valid.get(row)? {
                    return None;
                }
                let start = if row == 0 { 0 } else { ends[row - 1] };
                Some(&bytes[start..ends[row]])
            }
            Text::Constant(value) => Some(value),
            Text::Absent => None,
        }
    }
}

/// Writes every row of a typed array as text.
fn write_all(array: &dyn Array) -> Text<'static> {
    let mut out = Written::with_rows(array.len());
    macro_rules! each {
        ($t:ty, |$v:ident, $s:ident| $body:expr) => {{
            let typed: &PrimitiveArray<$t> = array.as_primitive::<$t>();
            for row in 0..typed.len() {
                if typed.is_null(row) {
                    out.null();
                } else {
                    let $v = typed.value(row);
                    let $s = &mut out.bytes;
                    $body;
                    out.end();
                }
            }
        }};
    }
    match array.data_type() {
        DataType::Boolean => {
            let typed = array.as_boolean();
            for row in 0..typed.len() {
                if typed.is_null(row) {
                    out.null();
                } else {
                    let text: &[u8] = if typed.value(row) { b"true" } else { b"false" };
                    out.bytes.extend_from_slice(text);
                    out.end();
                }
            }
        }
        DataType::Int8 => each!(Int8Type, |v, s| integer(s, i128::from(v))),
        DataType::Int16 => each!(Int16Type, |v, s| integer(s, i128::from(v))),
        DataType::Int32 => each!(Int32Type, |v, s| integer(s, i128::from(v))),
        DataType::Int64 => each!(Int64Type, |v, s| integer(s, i128::from(v))),
        DataType::UInt8 => each!(UInt8Type, |v, s| integer(s, i128::from(v))),
        DataType::UInt16 => each!(UInt16Type, |v, s| integer(s, i128::from(v))),
        DataType::UInt32 => each!(UInt32Type, |v, s| integer(s, i128::from(v))),
        DataType::UInt64 => each!(UInt64Type, |v, s| integer(s, i128::from(v))),
        DataType::Float16 => each!(Float16Type, |v, s| display(s, f32::from(v))),
        DataType::Float32 => each!(Float32Type, |v, s| display(s, v)),
        DataType::Float64 => each!(Float64Type, |v, s| display(s, v)),
        DataType::Decimal128(_, scale) => {
            let scale = *scale;
            each!(Decimal128Type, |v, s| decimal(s, &v.to_string(), scale))
        }
        DataType::Decimal256(_, scale) => {
            let scale = *scale;
            each!(Decimal256Type, |v, s| decimal(s, &v.to_string(), scale))
        }
        DataType::Date32 => each!(Date32Type, |v, s| date(s, i64::from(v))),
        DataType::Date64 => each!(Date64Type, |v, s| date(s, v.div_euclid(86_400_000))),
        DataType::Timestamp(unit, zone) => {
            let zoned = zone.is_some();
            match unit {
                TimeUnit::Second => each!(TimestampSecondType, |v, s| timestamp(
                    s,
                    v,
                    1_000_000_000,
                    zoned
                )),
                TimeUnit::Millisecond => {
                    each!(TimestampMillisecondType, |v, s| timestamp(
                        s, v, 1_000_000, zoned
                    ))
                }
                TimeUnit::Microsecond => {
                    each!(TimestampMicrosecondType, |v, s| timestamp(
                        s, v, 1_000, zoned
                    ))
                }
                TimeUnit::Nanosecond => {
                    each!(TimestampNanosecondType, |v, s| timestamp(s, v, 1, zoned))
                }
            }
        }
        _ => return Text::Absent,
    }
    out.into_text()
}

/// Rows written so far.
struct Written {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl Written {
    fn with_rows(rows: usize) -> Self {
        Written {
            bytes: Vec::with_capacity(rows * 8),
            ends: Vec::with_capacity(rows),
            valid: Vec::with_capacity(rows),
        }
    }

    fn end(&mut self) {
        self.ends.push(self.bytes.len());
        self.valid.push(true);
    }

    fn null(&mut self) {
        self.ends.push(self.bytes.len());
        self.valid.push(false);
    }

    fn into_text(self) -> Text<'static> {
        Text::Written {
            bytes: self.bytes,
            ends: self.ends,
            valid: self.valid,
        }
    }
}

/// A value of a primitive type, as `Display` writes it (the shortest exact form for floats).
fn display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// `value` in exactly `width` decimal digits (it has at most that many).
fn digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for at in (start..start + width).rev() {
        out[at] = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A date as `YYYY-MM-DD`, as chrono's `%Y-%m-%d` writes it.
fn ymd(out: &mut Vec<u8>, day: NaiveDate) {
    match u32::try_from(day.year()) {
        Ok(year) if year <= 9999 => {
            digits(out, year, 4);
            out.push(b'-');
            digits(out, day.month(), 2);
            out.push(b'-');
            digits(out, day.day(), 2);
        }
        _ => display(out, day.format("%Y-%m-%d")),
    }
}

/// An integer in decimal.
fn integer(out: &mut Vec<u8>, value: i128) {
    let Ok(mut left) = u64::try_from(value.unsigned_abs()) else {
        return display(out, value);
    };
    if value < 0 {
        out.push(b'-');
    }
    let mut buffer = [0u8; 20];
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (left % 10) as u8;
        left /= 10;
        if left == 0 {
            break;
        }
    }
    out.extend_from_slice(&buffer[at..]);
}

/// An unscaled decimal's digits with `scale` digits after the point (`12345`, 2: `123.45`).
fn decimal(out: &mut Vec<u8>, digits: &str, scale: i8) {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits),
    };
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    out.extend_from_slice(whole.as_bytes());
    out.push(b'.');
    out.extend_from_slice(fraction.as_bytes());
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (out of chrono's range: not written, so unparsable).
fn date(out: &mut Vec<u8>, days: i64) {
    let day = i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(719_163))
        .and_then(NaiveDate::from_num_days_from_ce_opt);
    match day {
        Some(day) => ymd(out, day),
        None => out.extend_from_slice(format!("{days} days since 1970-01-01").as_bytes()),
    }
}

/// A timestamp of `value` units (each `nanos` nanoseconds) since the epoch: a UTC instant
/// (`Z`) when the column has a time zone, else naive.
fn timestamp(out: &mut Vec<u8>, value: i64, nanos: i64, zoned: bool) {
    let total = i128::from(value) * i128::from(nanos);
    let secs = total.div_euclid(1_000_000_000);
    let sub = total.rem_euclid(1_000_000_000) as u32;
    let instant = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, sub));
    let Some(instant) = instant else {
        out.extend_from_slice(format!("{value} units since 1970-01-01").as_bytes());
        return;
    };
    // As chrono's `%Y-%m-%dT%H:%M:%S%.f`: a fraction of 0, 3, 6 or 9 digits, as needed.
    let naive = instant.naive_utc();
    ymd(out, naive.date());
    out.push(b'T');
    let time = naive.time();
    digits(out, time.hour(), 2);
    out.push(b':');
    digits(out, time.minute(), 2);
    out.push(b':');
    digits(out, time.second(), 2);
    let nanos = time.nanosecond();
    match nanos {
        0 => {}
        n if n % 1_000_000 == 0 => {
            out.push(b'.');
            digits(out, n / 1_000_000, 3);
        }
        n if n % 1_000 == 0 => {
            out.push(b'.');
            digits(out, n / 1_000, 6);
        }
        n => {
            out.push(b'.');
            digits(out, n, 9);
        }
    }
    if zoned {
        out.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Decimal128Array, Float32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };

    use super::*;

    fn texts(array: ArrayRef) -> Vec<Option<String>> {
        let text = Text::of(array.as_ref());
        (0..array.len())
            .map(|row| {
                text.get(row)
                    .map(|b| String::from_utf8(b.to_vec()).unwrap())
            })
            .collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn numbers_are_written_in_their_shortest_exact_form() {
        let floats = Arc::new(Float64Array::from(vec![1449.0, 0.1, -2.5e-7, 1e300]));
        assert_eq!(
            texts(floats),
            some(&["1449", "0.1", "-0.00000025", &1e300.to_string()])
        );
        let singles = Arc::new(Float32Array::from(vec![0.1f32]));
        assert_eq!(texts(singles), some(&["0.1"]));
        let ints = Arc::new(Int64Array::from(vec![Some(-7), None, Some(i64::MAX)]));
        assert_eq!(
            texts(ints),
            vec![Some("-7".into()), None, Some(i64::MAX.to_string())]
        );
        let decimals = Decimal128Array::from(vec![12345, -5, 7])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            texts(Arc::new(decimals)),
            some(&["123.45", "-0.05", "0.07"])
        );
    }

    #[test]
    fn timestamps_keep_their_zone_or_stay_naive() {
        let micros = vec![1_740_829_200_000_001, -1];
        let zoned = TimestampMicrosecondArray::from(micros.clone()).with_timezone("+02:00");
        assert_eq!(
            texts(Arc::new(zoned)),
            some(&["2025-03-01T11:40:00.000001Z", "1969-12-31T23:59:59.999999Z"])
        );
        let naive = TimestampMicrosecondArray::from(micros);
        assert_eq!(
            texts(Arc::new(naive)),
            some(&["2025-03-01T11:40:00.000001", "1969-12-31T23:59:59.999999"])
        );
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for value in [
            0,
            7,
            -7,
            10,
            -10,
            i128::from(i64::MIN),
            i128::from(u64::MAX),
            i128::MIN,
            i128::MAX,
        ]
        .into_iter()
        .chain((0..1000).map(|i| i * 7919 - 3_000_000))
        {
            let mut fast = Vec::new();
            integer(&mut fast, value);
            assert_eq!(String::from_utf8(fast).unwrap(), value.to_string());
        }
    }

    #[test]
    fn dates_and_timestamps_are_written_as_chrono_formats_them() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut cases: Vec<i64> = vec![0, -1, 1, 999, 1_000, 1_000_000, -86_400_000_000_000];
        // Nanoseconds from year 1678 to 2261, with every precision of fraction.
        for _ in 0..20_000 {
            let value = rng.i64(..);
            cases.push(match rng.u8(0..4) {
                0 => value - value % 1_000_000_000,
                1 => value - value % 1_000_000,
                2 => value - value % 1_000,
                _ => value,
            });
        }
        for nanos in cases {
            let mut fast = Vec::new();
            timestamp(&mut fast, nanos, 1, true);
            let instant = DateTime::from_timestamp_nanos(nanos).naive_utc();
            let expected = format!("{}Z", instant.format("%Y-%m-%dT%H:%M:%S%.f"));
            assert_eq!(String::from_utf8(fast).unwrap(), expected, "{nanos}");
        }
        for days in [
            -719_162i64,
            -1,
            0,
            1,
            10_000,
            2_932_896,
            -800_000,
            3_000_000,
        ] {
            let mut fast = Vec::new();
            date(&mut fast, days);
            let expected = NaiveDate::from_num_days_from_ce_opt(days as i32 + 719_163)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string();
            assert_eq!(String::from_utf8(fast).unwrap(), expected, "{days}");
        }
    }

    #[test]
    fn strings_are_read_in_place_and_nulls_are_absent() {
        let strings = Arc::new(StringArray::from(vec![Some("direct"), None, Some("")]));
        assert_eq!(
            texts(strings),
            vec![Some("direct".into()), None, Some(String::new())]
        );
    }
}
