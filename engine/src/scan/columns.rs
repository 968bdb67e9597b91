//! Binding a table's requests to its columns, from the header: own columns by position,
//! looked-up columns (`<table>.<column>`) by lookup and position.

use std::collections::HashMap;

use crate::config::TableConfig;
use crate::metric::{Grouping, MetricRequest, MetricValue};

use super::{Export, LookupIndex, ScanInput};

/// Where a column's cells come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnRef {
    /// This table's column at that position.
    Own(usize),
    /// Of the lookup at the first position, the looked-up row's column at the second.
    Looked(usize, usize),
}

/// A request bound to the row cells it reads (indexes into [`Plan::cells`]).
#[derive(Clone, Debug)]
pub struct BoundRequest {
    /// The request.
    pub request: MetricRequest,
    /// The measured cell.
    pub column: Option<usize>,
    /// The dimension cell.
    pub dimension: Option<usize>,
    /// The cell of each of the filter's conditions.
    pub filter: Vec<usize>,
}

/// The key cell and the value cells of an export.
pub type ExportCells = (ColumnRef, Vec<ColumnRef>);

/// Everything a worker needs to read a table's records.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// Header names, in file order.
    pub header: Vec<String>,
    /// Required columns (and the date column) absent from the header.
    pub missing_columns: Vec<String>,
    /// Requests that can be computed.
    pub bound: Vec<BoundRequest>,
    /// Requests that cannot, with the reason.
    pub unavailable: Vec<(MetricRequest, Result<MetricValue, String>)>,
    /// The distinct cells the requests read, fetched once per row.
    pub cells: Vec<ColumnRef>,
    /// The date cell.
    pub date: Option<ColumnRef>,
    /// The lookups: index and key cell (`None` when unusable: they find nothing).
    pub lookups: Vec<(&'a LookupIndex, Option<ColumnRef>)>,
    /// The index another table needs: the export, its key cell and its value cells.
    pub export: Option<(&'a Export, Result<ExportCells, String>)>,
    /// The run's plausible days (see [`ScanInput::window`](super::ScanInput)).
    pub window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Rows dated after this day are left out (see [`ScanInput::until`](super::ScanInput)).
    pub until: Option<chrono::NaiveDate>,
}

/// Resolves column names of one table.
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

impl<'a> Plan<'a> {
    /// The plan of a table with this header.
    pub fn new(header: Vec<String>, config: &'a TableConfig, input: ScanInput<'a>) -> Plan<'a> {
        let mut own = HashMap::new();
        for (i, c) in header.iter().enumerate() {
            own.entry(c.as_str()).or_insert(i);
        }
        let columns = Columns {
            own,
            lookups: input.lookups.iter().map(|(index, _)| *index).collect(),
            file: &config.file,
        };
        let lookups = input
            .lookups
            .iter()
            .map(|(index, key)| {
                (
                    *index,
                    columns
                        .resolve(key)
                        .ok()
                        .filter(|_| index.problem.is_none()),
                )
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

        let mut cells: Vec<ColumnRef> = Vec::new();
        let mut cell = |r: ColumnRef| match cells.iter().position(|c| *c == r) {
            Some(i) => i,
            None => {
                cells.push(r);
                cells.len() - 1
            }
        };
        let mut bound = Vec::new();
        let mut unavailable = Vec::new();
        for request in input.requests {
            match bind(request, config, &columns, date.as_ref()) {
                Ok((column, dimension, filter)) => bound.push(BoundRequest {
                    request: request.clone(),
                    column: column.map(&mut cell),
                    dimension: dimension.map(&mut cell),
                    filter: filter.into_iter().map(&mut cell).collect(),
                }),
                Err(reason) => unavailable.push((request.clone(), Err(reason))),
            }
        }
        let export = input.export.map(|e| {
            let refs = columns.resolve(&e.key).and_then(|key| {
                let values: Result<Vec<ColumnRef>, String> =
                    e.columns.iter().map(|c| columns.resolve(c)).collect();
                Ok((key, values?))
            });
            (e, refs)
        });
        Plan {
            window: input.window,
            until: input.until,
            header,
            missing_columns,
            bound,
            unavailable,
            cells,
            date: date.and_then(Result::ok),
            lookups,
            export,
        }
    }

    /// The header positions the plan reads (for a columnar reader's projection), ascending.
    pub fn own_columns(&self) -> Vec<usize> {
        let mut own: Vec<usize> = self
            .cells
            .iter()
            .chain(self.date.iter())
            .chain(self.lookups.iter().filter_map(|(_, key)| key.as_ref()))
            .chain(
                self.export
                    .iter()
                    .filter_map(|(_, refs)| refs.as_ref().ok())
                    .flat_map(|(key, values)| std::iter::once(key).chain(values)),
            )
            .filter_map(|r| match r {
                ColumnRef::Own(i) => Some(*i),
                ColumnRef::Looked(..) => None,
            })
            .collect();
        own.sort_unstable();
        own.dedup();
        own
    }

    /// Whether the table can be read in parallel segments: no request depends on row order.
    pub fn splittable(&self) -> bool {
        self.export.is_none()
            && !self
                .bound
                .iter()
                .any(|b| matches!(b.request.measure, crate::metric::Measure::Duplicates(_)))
    }
}

type Bound = (Option<ColumnRef>, Option<ColumnRef>, Vec<ColumnRef>);

/// The cells a request reads (measure, dimension, filter), or why it cannot be computed.
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
        .iter()
        .flat_map(|f| &f.all)
        .map(|c| columns.resolve(&c.column))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((column, dimension, filter))
}
