//! For sources that compute the metrics themselves (a SQL engine): the same binding of requests
//! to columns as the CSV scan (missing columns, unavailable requests and their reasons), and
//! the same assembly of the computed values into a [`TableScan`] (every day of the table's
//! date span present), so a metric means the same whatever computed it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::columns::{ColumnRef, Plan};
use super::{DateStats, LookupIndex, ScanInput, TableProblem, TableScan, TableStats};
use crate::config::TableConfig;
use crate::metric::{MetricRequest, MetricValue};

/// A request bound to header positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The request.
    pub request: MetricRequest,
    /// The measured column.
    pub column: Option<usize>,
    /// The dimension column.
    pub dimension: Option<usize>,
    /// The column of each filter condition.
    pub filter: Vec<usize>,
}

/// A table's requests bound to its columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The columns (a joined column is named `<table>.<column>`).
    pub header: Vec<String>,
    /// Required columns (and the date column) that are missing.
    pub missing_columns: Vec<String>,
    /// The date column's position, when it exists.
    pub date: Option<usize>,
    /// The requests that can be computed.
    pub bound: Vec<Bound>,
    /// The requests that cannot, with the reason.
    pub unavailable: Vec<(MetricRequest, Result<MetricValue, String>)>,
}

/// A lookup the source cannot join (the looked-up table or one of its columns is missing):
/// its columns are unavailable with the reason, as when the CSV scan's index has a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedLookup {
    /// The looked-up table's name.
    pub table: String,
    /// The columns the lookup takes.
    pub columns: Vec<String>,
    /// Why it cannot be joined.
    pub problem: String,
}

/// Binds `requests` to `header` as the CSV scan does.
pub fn bind(
    header: Vec<String>,
    config: &TableConfig,
    requests: &[MetricRequest],
    failed: &[FailedLookup],
) -> Binding {
    let indexes: Vec<LookupIndex> = failed
        .iter()
        .map(|f| LookupIndex {
            table: f.table.clone(),
            columns: f.columns.clone(),
            problem: Some(f.problem.clone()),
            ..LookupIndex::default()
        })
        .collect();
    let lookups: Vec<(&LookupIndex, &str)> = indexes.iter().map(|i| (i, "")).collect();
    let input = ScanInput {
        requests,
        lookups: &lookups,
        ..ScanInput::default()
    };
    let plan = Plan::new(header, config, input);
    let own = |cell: usize| match plan.cells[cell] {
        ColumnRef::Own(i) => i,
        ColumnRef::Looked(..) => unreachable!("no lookup index is handed to a pushed-down table"),
    };
    let date = plan.date.map(|r| match r {
        ColumnRef::Own(i) => i,
        ColumnRef::Looked(..) => unreachable!("no lookup index is handed to a pushed-down table"),
    });
    Binding {
        bound: plan
            .bound
            .iter()
            .map(|b| Bound {
                request: b.request.clone(),
                column: b.column.map(own),
                dimension: b.dimension.map(own),
                filter: b.filter.iter().map(|c| own(*c)).collect(),
            })
            .collect(),
        date,
        missing_columns: plan.missing_columns,
        unavailable: plan.unavailable,
        header: plan.header,
    }
}

/// A computed metric before the table's date span is filled in.
#[derive(Clone, Debug, PartialEq)]
pub enum Grouped {
    /// Over the table.
    Total(f64),
    /// Per day with rows.
    Daily(BTreeMap<NaiveDate, f64>),
    /// Per day and dimension value with rows.
    DailyBy(BTreeMap<NaiveDate, BTreeMap<String, f64>>),
}

/// What a source computed for a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    /// Rows of the table.
    pub rows: u64,
    /// Per looked-up table, rows whose non-empty key it does not have.
    pub lookup_misses: BTreeMap<String, u64>,
    /// The date column's parsing, when it exists.
    pub dates: Option<DateStats>,
    /// One value per bound request, in order.
    pub values: Vec<Grouped>,
}

/// The table's scan from what a source computed (or why it could not).
pub fn assemble(
    name: &str,
    location: PathBuf,
    binding: Binding,
    computed: Result<Computed, TableProblem>,
    input: ScanInput<'_>,
) -> TableScan {
    let mut computed = match computed {
        Ok(c) => c,
        Err(problem) => {
            return super::table_scan(name, location, Err(problem), input);
        }
    };
    if let Some(dates) = computed.dates.as_mut() {
        dates.keep_within(input.window);
    }
    let span = computed.dates.as_ref().and_then(DateStats::span);
    let within = |d: &NaiveDate| super::DateStats::in_span(span, d);
    let span_days: Vec<NaiveDate> = span
        .into_iter()
        .flat_map(|(first, last)| first.iter_days().take_while(move |d| *d <= last))
        .collect();
    let mut metrics = binding.unavailable;
    for (b, value) in binding.bound.into_iter().zip(computed.values) {
        let value = match value {
            Grouped::Total(v) => MetricValue::Total(v),
            Grouped::Daily(days) => {
                let mut series: BTreeMap<NaiveDate, f64> =
                    span_days.iter().map(|d| (*d, 0.0)).collect();
                series.extend(days.into_iter().filter(|(d, _)| within(d)));
                MetricValue::Daily(series)
            }
            Grouped::DailyBy(days) => {
                let mut series: BTreeMap<NaiveDate, BTreeMap<String, f64>> =
                    span_days.iter().map(|d| (*d, BTreeMap::new())).collect();
                for (day, dims) in days.into_iter().filter(|(d, _)| within(d)) {
                    series.entry(day).or_default().extend(dims);
                }
                MetricValue::DailyBy(series)
            }
        };
        metrics.push((b.request, Ok(value)));
    }
    TableScan {
        table: name.to_string(),
        path: location,
        outcome: Ok(TableStats {
            multiline: Default::default(),
            rows: computed.rows,
            columns: binding.header,
            column_types: Vec::new(),
            missing_columns: binding.missing_columns,
            malformed_rows: 0,
            lookup_misses: computed.lookup_misses,
            dates: computed.dates,
        }),
        metrics,
        index: None,
        partitions: None,
    }
}
