//! Writes a CSV table as Parquet with typed columns, as a warehouse export would: each column
//! gets the narrowest type all its non-empty cells fit (integer, float, timestamp with or
//! without time zone, date, else string). Empty cells (``, `NULL`, `null`) of typed columns
//! become nulls; string cells are kept as written. Used by the tests (the same data as CSV and
//! as Parquet must give the same findings) and by the benchmark.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    Date32Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// How to write a table.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rows per row group (small groups exercise parallel reading).
    pub row_group_rows: usize,
    /// Write a hive-partitioned folder: the partition key and the column whose date (its first
    /// ten characters) is the key's value, e.g. `("order_date", "order_ts")`.
    pub partition: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            row_group_rows: 1 << 17,
            partition: None,
        }
    }
}

/// The type a column's cells fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 64-bit integers.
    Int,
    /// Finite floats.
    Float,
    /// Timestamps with a UTC offset.
    Zoned,
    /// Timestamps without one.
    Naive,
    /// Dates.
    Date,
    /// Anything else.
    Text,
}

/// Whether a cell is empty as vigil reads it (typed columns hold it as null).
pub fn is_empty_cell(cell: &str) -> bool {
    empty(cell)
}

/// The header of a CSV table and the type each column's cells fit.
pub fn infer_columns(csv_path: &Path) -> Result<Vec<(String, Kind)>, String> {
    let (header, records) = read_csv(csv_path)?;
    let all: Vec<&csv::StringRecord> = records.iter().collect();
    Ok(header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), infer(all.iter().map(|r| r.get(i).unwrap_or("")))))
        .collect())
}

/// A CSV table's header (byte order mark dropped) and records.
fn read_csv(csv_path: &Path) -> Result<(Vec<String>, Vec<csv::StringRecord>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(csv_path)
        .map_err(|e| e.to_string())?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok((header, records))
}

/// Whether a cell is empty as vigil reads it.
fn empty(cell: &str) -> bool {
    matches!(cell, "" | "NULL" | "null")
}

fn zoned(cell: &str) -> Option<i64> {
    let t = cell.replacen(' ', "T", 1);
    DateTime::parse_from_rfc3339(&t)
        .ok()
        .map(|d| d.timestamp_micros())
}

fn naive(cell: &str) -> Option<i64> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(cell, f).ok())
        .map(|d| d.and_utc().timestamp_micros())
}

fn date(cell: &str) -> Option<i32> {
    let day = NaiveDate::parse_from_str(cell, "%Y-%m-%d").ok()?;
    Some(
        day.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days() as i32,
    )
}

fn float(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The narrowest kind every non-empty cell fits.
fn infer(cells: impl Iterator<Item = impl AsRef<str>>) -> Kind {
    let mut fits = [Kind::Int, Kind::Float, Kind::Zoned, Kind::Naive, Kind::Date].to_vec();
    let mut any = false;
    for cell in cells {
        let cell = cell.as_ref();
        if empty(cell) {
            continue;
        }
        any = true;
        fits.retain(|k| match k {
            Kind::Int => cell.parse::<i64>().is_ok(),
            Kind::Float => float(cell).is_some(),
            Kind::Zoned => zoned(cell).is_some(),
            Kind::Naive => naive(cell).is_some(),
            Kind::Date => date(cell).is_some(),
            Kind::Text => true,
        });
        if fits.is_empty() {
            return Kind::Text;
        }
    }
    if any {
        fits[0]
    } else {
        Kind::Text
    }
}

/// A cell of a typed column, `None` when empty.
fn typed(cell: &str) -> Option<&str> {
    (!empty(cell)).then_some(cell)
}

/// The Arrow column of `rows`' cells at `i`, as `kind`.
fn column(kind: Kind, rows: &[&csv::StringRecord], i: usize) -> ArrayRef {
    let cells = rows.iter().map(|r| r.get(i).unwrap_or(""));
    match kind {
        Kind::Int => Arc::new(
            Int64Builder::new().tap_all(cells.map(|c| typed(c).and_then(|c| c.parse().ok()))),
        ),
        Kind::Float => {
            Arc::new(Float64Builder::new().tap_all(cells.map(|c| typed(c).and_then(float))))
        }
        Kind::Zoned => Arc::new(
            TimestampMicrosecondBuilder::new()
                .tap_all(cells.map(|c| typed(c).and_then(zoned)))
                .with_timezone("UTC"),
        ),
        Kind::Naive => Arc::new(
            TimestampMicrosecondBuilder::new().tap_all(cells.map(|c| typed(c).and_then(naive))),
        ),
        Kind::Date => {
            Arc::new(Date32Builder::new().tap_all(cells.map(|c| typed(c).and_then(date))))
        }
        Kind::Text => {
            let mut b = StringBuilder::new();
            for c in cells {
                b.append_value(c);
            }
            Arc::new(b.finish())
        }
    }
}

/// Appends every value to a primitive builder and finishes it.
trait TapAll<T> {
    type Out;
    fn tap_all(self, values: impl Iterator<Item = Option<T>>) -> Self::Out;
}

macro_rules! tap_all {
    ($builder:ty, $t:ty, $out:ty) => {
        impl TapAll<$t> for $builder {
            type Out = $out;
            fn tap_all(mut self, values: impl Iterator<Item = Option<$t>>) -> $out {
                for v in values {
                    self.append_option(v);
                }
                self.finish()
            }
        }
    };
}

tap_all!(Int64Builder, i64, arrow_array::Int64Array);
tap_all!(Float64Builder, f64, arrow_array::Float64Array);
tap_all!(
    TimestampMicrosecondBuilder,
    i64,
    arrow_array::TimestampMicrosecondArray
);
tap_all!(Date32Builder, i32, arrow_array::Date32Array);

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Zoned => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Naive => DataType::Timestamp(TimeUnit::Microsecond, None),
        Kind::Date => DataType::Date32,
        Kind::Text => DataType::Utf8,
    }
}

/// Writes the CSV table at `csv` as Parquet at `out` (a file, or with `options.partition` a
/// dataset folder); returns the number of rows.
pub fn csv_to_parquet(csv_path: &Path, out: &Path, options: &Options) -> Result<u64, String> {
    let (header, records) = read_csv(csv_path)?;
    let all: Vec<&csv::StringRecord> = records.iter().collect();
    let kinds: Vec<Kind> = (0..header.len())
        .map(|i| infer(all.iter().map(|r| r.get(i).unwrap_or(""))))
        .collect();
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| Field::new(name, data_type(*kind), true))
            .collect::<Vec<_>>(),
    ));
    let write = |path: &Path, rows: &[&csv::StringRecord]| -> Result<(), String> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .build();
        let file = File::create(path).map_err(|e| e.to_string())?;
        let mut writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
        for chunk in rows.chunks(options.row_group_rows.max(1)) {
            let columns: Vec<ArrayRef> = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| column(*kind, chunk, i))
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        writer.close().map_err(|e| e.to_string())?;
        Ok(())
    };
    match &options.partition {
        None => write(out, &all)?,
        Some((key, column)) => {
            let at = header
                .iter()
                .position(|h| h == column)
                .ok_or_else(|| format!("no column `{column}` to partition by"))?;
            let mut groups: BTreeMap<String, Vec<&csv::StringRecord>> = BTreeMap::new();
            for r in &all {
                let cell = r.get(at).unwrap_or("");
                let day = cell
                    .get(..10)
                    .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
                    .unwrap_or("__HIVE_DEFAULT_PARTITION__");
                groups.entry(day.to_string()).or_default().push(r);
            }
            for (value, rows) in groups {
                let dir = out.join(format!("{key}={value}"));
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                write(&dir.join("part-0.parquet"), &rows)?;
            }
        }
    }
    Ok(all.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_get_the_narrowest_type_their_cells_fit() {
        assert_eq!(infer(["1", "", "-3"].iter()), Kind::Int);
        assert_eq!(infer(["1", "2.5", "NULL"].iter()), Kind::Float);
        assert_eq!(
            infer(["2025-02-23 12:54:35.166000+00:00"].iter()),
            Kind::Zoned
        );
        assert_eq!(infer(["2025-02-23T12:54:35"].iter()), Kind::Naive);
        assert_eq!(infer(["2025-02-23"].iter()), Kind::Date);
        assert_eq!(
            infer(["2025-02-23T12:54:35Z", "yesterday"].iter()),
            Kind::Text
        );
        assert_eq!(infer(["", ""].iter()), Kind::Text);
    }
}
