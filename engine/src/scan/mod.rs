//! The CSV executor: reads one table file in one streaming pass and computes every metric
//! requested of it, plus the table's own health (header, required columns, date parsing).

mod state;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::TableConfig;
use crate::metric::{Grouping, MetricRequest, MetricValue};
use crate::timestamp::{leading_date, parse_day, DateError};
use state::{Cell, State};

/// How the date column of a table parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DateStats {
    /// The date column.
    pub column: String,
    /// Rows per day that parsed.
    pub rows_by_day: BTreeMap<NaiveDate, u64>,
    /// Empty date cells.
    pub nulls: u64,
    /// Unparsable cells per day (when the cell starts with a valid date) or `None` (no day).
    pub unparsable: BTreeMap<Option<NaiveDate>, u64>,
    /// Of the unparsable cells, those rejected only for lacking a UTC offset.
    pub naive: u64,
    /// Up to five unparsable cells, as written.
    pub samples: Vec<String>,
}

impl DateStats {
    /// First and last day with rows.
    pub fn span(&self) -> Option<(NaiveDate, NaiveDate)> {
        Some((
            *self.rows_by_day.keys().next()?,
            *self.rows_by_day.keys().next_back()?,
        ))
    }

    /// Total unparsable cells.
    pub fn unparsable_total(&self) -> u64 {
        self.unparsable.values().sum()
    }
}

/// What reading a table found.
#[derive(Clone, Debug, PartialEq)]
pub struct TableStats {
    /// Data rows (header excluded).
    pub rows: u64,
    /// Header names, in file order.
    pub columns: Vec<String>,
    /// Required columns (and the date column) absent from the header, in config order.
    pub missing_columns: Vec<String>,
    /// Rows whose field count differs from the header's (their missing cells read as null).
    pub malformed_rows: u64,
    /// Date parsing, when the table has a date column present in the file.
    pub dates: Option<DateStats>,
}

/// Why a table could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableProblem {
    /// The file does not exist.
    Missing,
    /// The file has no header row (0 bytes or blank).
    Empty,
    /// The file could not be read; the message says why.
    Unreadable(String),
}

/// One table's scan: its file, its health and its metrics.
#[derive(Clone, Debug)]
pub struct TableScan {
    /// Table name from the config.
    pub table: String,
    /// The file read.
    pub path: PathBuf,
    /// What was found, or why nothing could be.
    pub outcome: Result<TableStats, TableProblem>,
    /// The requested metrics, each computed or with the reason it is unavailable.
    pub metrics: Vec<(MetricRequest, Result<MetricValue, String>)>,
}

/// A request bound to its column positions.
struct Bound {
    request: MetricRequest,
    column: Option<usize>,
    dimension: Option<usize>,
    state: State,
}

/// Reads `config.file` under `dir` once and computes `requests` (all of this table).
pub fn scan_table(
    name: &str,
    config: &TableConfig,
    dir: &Path,
    requests: &[MetricRequest],
) -> TableScan {
    let path = dir.join(&config.file);
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TableProblem::Missing,
        _ => TableProblem::Unreadable(e.to_string()),
    });
    scan_source(
        name,
        config,
        path,
        file.map(|f| BufReader::with_capacity(1 << 20, f)),
        requests,
    )
}

/// Computes `requests` from an opened table (or the reason it could not be opened); `path` is
/// what findings and reports call it.
pub fn scan_source(
    name: &str,
    config: &TableConfig,
    path: PathBuf,
    source: Result<impl Read, TableProblem>,
    requests: &[MetricRequest],
) -> TableScan {
    let (outcome, metrics) = match source.and_then(|s| read(s, config, requests)) {
        Ok((stats, metrics)) => (Ok(stats), metrics),
        Err(problem) => {
            let reason = match &problem {
                TableProblem::Missing => format!("table file {} is missing", path.display()),
                TableProblem::Empty => format!("table file {} is empty", path.display()),
                TableProblem::Unreadable(e) => {
                    format!("table file {} is unreadable: {e}", path.display())
                }
            };
            let metrics = requests
                .iter()
                .map(|r| (r.clone(), Err(reason.clone())))
                .collect();
            (Err(problem), metrics)
        }
    };
    TableScan {
        table: name.to_string(),
        path,
        outcome,
        metrics,
    }
}

type Computed = Vec<(MetricRequest, Result<MetricValue, String>)>;

fn read(
    source: impl Read,
    config: &TableConfig,
    requests: &[MetricRequest],
) -> Result<(TableStats, Computed), TableProblem> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(source);
    let header = reader
        .byte_headers()
        .map_err(|e| TableProblem::Unreadable(e.to_string()))?
        .clone();
    if header.iter().all(|h| h.trim_ascii().is_empty()) {
        return Err(TableProblem::Empty);
    }
    let columns: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, c) in columns.iter().enumerate() {
        index.entry(c.as_str()).or_insert(i);
    }
    let mut missing_columns: Vec<String> = config
        .required_columns
        .iter()
        .chain(config.date_column.as_ref())
        .filter(|c| !index.contains_key(c.as_str()))
        .cloned()
        .collect();
    missing_columns.dedup();
    let date_index = config
        .date_column
        .as_ref()
        .and_then(|c| index.get(c.as_str()).copied());

    let mut unavailable: Computed = Vec::new();
    let mut bound: Vec<Bound> = Vec::new();
    for request in requests {
        let missing = |col: &str| format!("column `{col}` is missing from {}", config.file);
        let needs_day = request.grouping != Grouping::Total;
        let problem = if needs_day && config.date_column.is_none() {
            Some(format!(
                "table file {} has no date_column configured",
                config.file
            ))
        } else if needs_day && date_index.is_none() {
            Some(missing(config.date_column.as_deref().unwrap_or_default()))
        } else {
            None
        };
        let column = request
            .measure
            .column()
            .map(|c| index.get(c).copied().ok_or_else(|| missing(c)));
        let dimension = match &request.grouping {
            Grouping::DayBy(dim) => {
                Some(index.get(dim.as_str()).copied().ok_or_else(|| missing(dim)))
            }
            _ => None,
        };
        match (problem, column.transpose(), dimension.transpose()) {
            (Some(reason), _, _) | (None, Err(reason), _) | (None, Ok(_), Err(reason)) => {
                unavailable.push((request.clone(), Err(reason)));
            }
            (None, Ok(column), Ok(dimension)) => bound.push(Bound {
                request: request.clone(),
                column,
                dimension,
                state: State::new(&request.measure, &request.grouping),
            }),
        }
    }

    let mut dates = date_index.map(|_| DateStats {
        column: config.date_column.clone().unwrap_or_default(),
        ..DateStats::default()
    });
    let mut rows = 0u64;
    let mut malformed_rows = 0u64;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(TableProblem::Unreadable(format!("after row {rows}: {e}"))),
        }
        rows += 1;
        if record.len() != header.len() {
            malformed_rows += 1;
        }
        let day = match (date_index, dates.as_mut()) {
            (Some(i), Some(stats)) => day_of(record.get(i), config, stats),
            _ => None,
        };
        for b in &mut bound {
            let cell = Cell::classify(b.column.and_then(|i| record.get(i)));
            let dim = b.dimension.and_then(|i| record.get(i)).unwrap_or_default();
            b.state.update(day, cell, dim);
        }
    }

    let span = dates.as_ref().and_then(DateStats::span);
    let mut metrics = unavailable;
    metrics.extend(
        bound
            .into_iter()
            .map(|b| (b.request, Ok(b.state.finish(span)))),
    );
    let stats = TableStats {
        rows,
        columns,
        missing_columns,
        malformed_rows,
        dates,
    };
    Ok((stats, metrics))
}

/// Parses one date cell, recording it in the stats.
fn day_of(cell: Option<&[u8]>, config: &TableConfig, stats: &mut DateStats) -> Option<NaiveDate> {
    let cell = cell.unwrap_or_default();
    if cell.trim_ascii().is_empty() {
        stats.nulls += 1;
        return None;
    }
    match parse_day(cell, config.naive_timestamps) {
        Ok(day) => {
            *stats.rows_by_day.entry(day).or_default() += 1;
            Some(day)
        }
        Err(error) => {
            if error == DateError::Naive {
                stats.naive += 1;
            }
            *stats.unparsable.entry(leading_date(cell)).or_default() += 1;
            if stats.samples.len() < 5 {
                stats
                    .samples
                    .push(String::from_utf8_lossy(cell).into_owned());
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
