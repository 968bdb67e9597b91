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
    /// Per looked-up table, rows whose (non-empty) key was not found in it.
    pub lookup_misses: BTreeMap<String, u64>,
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
    /// The rows by key that another table looks up, when one does.
    pub index: Option<LookupIndex>,
}

/// What another table looks up in this one: its key column and the columns it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The key column of this table.
    pub key: String,
    /// The columns handed over.
    pub columns: Vec<String>,
}

/// A table's rows by key, for another table's lookup (the first row of each key wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupIndex {
    /// The looked-up table; its columns are known as `<table>.<column>`.
    pub table: String,
    /// The exported columns, in order.
    pub columns: Vec<String>,
    /// Exported values by key.
    pub rows: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Why the index is empty, when the looked-up table could not provide it.
    pub problem: Option<String>,
}

/// What to compute while reading a table.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanInput<'a> {
    /// The metrics requested of the table.
    pub requests: &'a [MetricRequest],
    /// The index another table needs from this one.
    pub export: Option<&'a Export>,
    /// The indexes of the tables this one looks up, each with the key column of this table.
    pub lookups: &'a [(&'a LookupIndex, &'a str)],
}

/// Where a column's cells come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnRef {
    /// This table's column at that position.
    Own(usize),
    /// Of the lookup at the first position, the looked-up row's column at the second.
    Looked(usize, usize),
}

/// A request bound to its columns.
struct Bound {
    request: MetricRequest,
    column: Option<ColumnRef>,
    dimension: Option<ColumnRef>,
    filter: Option<ColumnRef>,
    state: State,
}

/// Reads `config.file` under `dir` once and computes what `input` asks for.
pub fn scan_table(name: &str, config: &TableConfig, dir: &Path, input: ScanInput<'_>) -> TableScan {
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
        input,
    )
}

/// Computes what `input` asks for from an opened table (or the reason it could not be opened);
/// `path` is what findings and reports call it.
pub fn scan_source(
    name: &str,
    config: &TableConfig,
    path: PathBuf,
    source: Result<impl Read, TableProblem>,
    input: ScanInput<'_>,
) -> TableScan {
    match source.and_then(|s| read(name, s, config, input)) {
        Ok((stats, metrics, index)) => TableScan {
            table: name.to_string(),
            path,
            outcome: Ok(stats),
            metrics,
            index,
        },
        Err(problem) => {
            let reason = match &problem {
                TableProblem::Missing => format!("table file {} is missing", path.display()),
                TableProblem::Empty => format!("table file {} is empty", path.display()),
                TableProblem::Unreadable(e) => {
                    format!("table file {} is unreadable: {e}", path.display())
                }
            };
            let metrics = input
                .requests
                .iter()
                .map(|r| (r.clone(), Err(reason.clone())))
                .collect();
            let index = input.export.map(|e| LookupIndex {
                table: name.to_string(),
                columns: e.columns.clone(),
                problem: Some(reason),
                ..LookupIndex::default()
            });
            TableScan {
                table: name.to_string(),
                path,
                outcome: Err(problem),
                metrics,
                index,
            }
        }
    }
}

type Computed = Vec<(MetricRequest, Result<MetricValue, String>)>;

/// Resolves column names of one table (own, or looked up as `<table>.<column>`).
struct Columns<'a> {
    own: HashMap<&'a str, usize>,
    lookups: Vec<&'a LookupIndex>,
    file: &'a str,
}

impl Columns<'_> {
    fn resolve(&self, name: &str) -> Result<ColumnRef, String> {
        if let Some(&i) = self.own.get(name) {
            return Ok(ColumnRef::Own(i));
        }
        match self.looked_up(name) {
            Some((l, j, None)) => Ok(ColumnRef::Looked(l, j)),
            Some((_, _, Some(problem))) => Err(format!("`{name}` cannot be looked up: {problem}")),
            None => Err(format!("column `{name}` is missing from {}", self.file)),
        }
    }

    /// The lookup and position of a looked-up column `<table>.<column>`, with the lookup's
    /// problem if any.
    fn looked_up(&self, name: &str) -> Option<(usize, usize, Option<&str>)> {
        self.lookups.iter().enumerate().find_map(|(l, lookup)| {
            let column = name
                .strip_prefix(lookup.table.as_str())?
                .strip_prefix('.')?;
            let j = lookup.columns.iter().position(|c| c == column)?;
            Some((l, j, lookup.problem.as_deref()))
        })
    }
}

fn read(
    name: &str,
    source: impl Read,
    config: &TableConfig,
    input: ScanInput<'_>,
) -> Result<(TableStats, Computed, Option<LookupIndex>), TableProblem> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(source);
    let header = reader
        .byte_headers()
        .map_err(|e| TableProblem::Unreadable(e.to_string()))?
        .clone();
    if header.iter().all(|h| h.trim_ascii().is_empty()) {
        return Err(TableProblem::Empty);
    }
    let header_names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let mut own = HashMap::new();
    for (i, c) in header_names.iter().enumerate() {
        own.entry(c.as_str()).or_insert(i);
    }
    let columns = Columns {
        own,
        lookups: input.lookups.iter().map(|(index, _)| *index).collect(),
        file: &config.file,
    };
    // Each lookup with its key column; lookups whose index or key is unusable find nothing.
    let keys: Vec<Option<ColumnRef>> = input
        .lookups
        .iter()
        .map(|(index, key)| {
            columns
                .resolve(key)
                .ok()
                .filter(|_| index.problem.is_none())
        })
        .collect();
    let date = config.date_column.as_deref().map(|c| columns.resolve(c));
    let mut missing_columns: Vec<String> = config
        .required_columns
        .iter()
        .filter(|c| !columns.own.contains_key(c.as_str()))
        .chain(
            config
                .date_column
                .iter()
                .filter(|c| matches!(date, Some(Err(_))) && columns.looked_up(c).is_none()),
        )
        .cloned()
        .collect();
    missing_columns.dedup();

    let mut unavailable: Computed = Vec::new();
    let mut bound: Vec<Bound> = Vec::new();
    for request in input.requests {
        match bind(request, config, &columns, date.as_ref()) {
            Ok(b) => bound.push(b),
            Err(reason) => unavailable.push((request.clone(), Err(reason))),
        }
    }
    let export = match input.export {
        Some(e) => {
            let key = columns.resolve(&e.key);
            let values: Result<Vec<ColumnRef>, String> =
                e.columns.iter().map(|c| columns.resolve(c)).collect();
            Some((e, key, values))
        }
        None => None,
    };
    let mut index_rows: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();

    let date_ref = date.and_then(Result::ok);
    let mut dates = date_ref.map(|_| DateStats {
        column: config.date_column.clone().unwrap_or_default(),
        ..DateStats::default()
    });
    let mut rows = 0u64;
    let mut malformed_rows = 0u64;
    let mut lookup_misses = vec![0u64; input.lookups.len()];
    let mut looked: Vec<Option<&Vec<Vec<u8>>>> = vec![None; input.lookups.len()];
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
        for (l, ((index, _), key)) in input.lookups.iter().zip(&keys).enumerate() {
            let k = key
                .and_then(|key| cell(&record, &[], key))
                .filter(|k| !k.is_empty());
            looked[l] = k.and_then(|k| index.rows.get(k));
            if k.is_some() && looked[l].is_none() {
                lookup_misses[l] += 1;
            }
        }
        let day = match (date_ref, dates.as_mut()) {
            (Some(ColumnRef::Looked(l, _)), Some(_)) if looked[l].is_none() => None,
            (Some(r), Some(stats)) => day_of(cell(&record, &looked, r), config, stats),
            _ => None,
        };
        for b in &mut bound {
            if let (Some(filter), Some(r)) = (&b.request.filter, b.filter) {
                if !filter.accepts(cell(&record, &looked, r)) {
                    continue;
                }
            }
            let value = Cell::classify(b.column.and_then(|r| cell(&record, &looked, r)));
            let dim = b
                .dimension
                .and_then(|r| cell(&record, &looked, r))
                .unwrap_or_default();
            b.state.update(day, value, dim);
        }
        if let Some((_, Ok(key), Ok(values))) = &export {
            let k = cell(&record, &[], *key).unwrap_or_default();
            if !index_rows.contains_key(k) {
                let exported = values
                    .iter()
                    .map(|r| cell(&record, &[], *r).unwrap_or_default().to_vec())
                    .collect();
                index_rows.insert(k.to_vec(), exported);
            }
        }
    }

    let index = export.map(|(e, key, values)| {
        let problem = key.err().or_else(|| values.err());
        LookupIndex {
            table: name.to_string(),
            columns: e.columns.clone(),
            rows: if problem.is_none() {
                index_rows
            } else {
                HashMap::new()
            },
            problem,
        }
    });
    let span = dates.as_ref().and_then(DateStats::span);
    let mut metrics = unavailable;
    metrics.extend(
        bound
            .into_iter()
            .map(|b| (b.request, Ok(b.state.finish(span)))),
    );
    let stats = TableStats {
        rows,
        columns: header_names,
        missing_columns,
        malformed_rows,
        lookup_misses: input
            .lookups
            .iter()
            .zip(lookup_misses)
            .map(|((index, _), misses)| (index.table.clone(), misses))
            .collect(),
        dates,
    };
    Ok((stats, metrics, index))
}

/// Binds a request to the columns it reads, or says why it cannot be computed.
fn bind(
    request: &MetricRequest,
    config: &TableConfig,
    columns: &Columns<'_>,
    date: Option<&Result<ColumnRef, String>>,
) -> Result<Bound, String> {
    if request.grouping != Grouping::Total {
        match date {
            None => {
                return Err(format!(
                    "table file {} has no date_column configured",
                    config.file
                ))
            }
            Some(Err(reason)) => return Err(reason.clone()),
            Some(Ok(_)) => {}
        }
    }
    let column = request
        .measure
        .column()
        .map(|c| columns.resolve(c))
        .transpose()?;
    let dimension = match &request.grouping {
        Grouping::DayBy(dim) => Some(columns.resolve(dim)?),
        _ => None,
    };
    let filter = request
        .filter
        .as_ref()
        .map(|f| columns.resolve(&f.column))
        .transpose()?;
    Ok(Bound {
        request: request.clone(),
        column,
        dimension,
        filter,
        state: State::new(&request.measure, &request.grouping),
    })
}

/// A cell of the current row: the record's own, or a looked-up row's.
fn cell<'r>(
    record: &'r csv::ByteRecord,
    looked: &[Option<&'r Vec<Vec<u8>>>],
    r: ColumnRef,
) -> Option<&'r [u8]> {
    match r {
        ColumnRef::Own(i) => record.get(i),
        ColumnRef::Looked(l, j) => looked
            .get(l)
            .copied()
            .flatten()
            .and_then(|row| row.get(j))
            .map(Vec::as_slice),
    }
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
