//! Metric requests (what a rule asks for) and computed metrics (what it gets back).
//!
//! Requests are plain, hashable values so the engine can deduplicate the requests of all rules
//! and compute each one once, in a single pass over its table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;

/// A numeric constant inside a request, hashable and totally ordered.
#[derive(Clone, Copy, Debug)]
pub struct Number(pub f64);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Number {}
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Number {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A comparison of a numeric cell with a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cmp {
    /// `cell < constant`
    Lt,
    /// `cell == constant`
    Eq,
    /// `cell > constant`
    Gt,
}

impl Cmp {
    /// Applies the comparison.
    pub fn holds(self, cell: f64, constant: f64) -> bool {
        match self {
            Cmp::Lt => cell < constant,
            Cmp::Eq => cell == constant,
            Cmp::Gt => cell > constant,
        }
    }
}

/// What to measure over the rows of a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Number of rows.
    Rows,
    /// Number of distinct non-empty values of a column.
    Distinct(String),
    /// Sum of the numeric cells of a column (empty and non-numeric cells are skipped).
    Sum(String),
    /// Number of cells of a column that hold a number.
    Numeric(String),
    /// Number of empty cells of a column.
    Nulls(String),
    /// Number of non-empty cells of a column that are not numbers.
    NonNumeric(String),
    /// Number of rows whose value of a column already appeared in an earlier row of the table
    /// (empty cells count as equal to each other).
    Duplicates(String),
    /// Number of rows whose numeric cell of `column` satisfies `cmp` against `value`.
    Where {
        /// The numeric column.
        column: String,
        /// The comparison.
        cmp: Cmp,
        /// The constant.
        value: Number,
    },
}

impl Measure {
    /// The column this measure reads, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            Measure::Rows => None,
            Measure::Distinct(c)
            | Measure::Sum(c)
            | Measure::Numeric(c)
            | Measure::Nulls(c)
            | Measure::NonNumeric(c)
            | Measure::Duplicates(c)
            | Measure::Where { column: c, .. } => Some(c),
        }
    }
}

/// How rows are grouped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grouping {
    /// One value over the whole table (rows without a date included).
    Total,
    /// One value per day of the table's date column (rows without a date excluded).
    Day,
    /// One value per day and per value of a dimension column (empty cells grouped under "").
    DayBy(String),
}

/// How a row filter compares a cell with its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterOp {
    /// The cell equals the text exactly.
    Equals,
    /// The cell contains the text, ignoring ASCII case.
    ContainsIgnoreCase,
}

/// Only rows whose `column` matches `text` count toward a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    /// The column tested.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// The text compared with.
    pub text: String,
}

impl Filter {
    /// Whether a cell passes the filter (an absent cell never does).
    pub fn accepts(&self, cell: Option<&[u8]>) -> bool {
        let Some(cell) = cell else { return false };
        let text = self.text.as_bytes();
        match self.op {
            FilterOp::Equals => cell == text,
            FilterOp::ContainsIgnoreCase => {
                text.is_empty()
                    || cell
                        .windows(text.len())
                        .any(|w| w.eq_ignore_ascii_case(text))
            }
        }
    }
}

/// One metric a rule needs: a measure over a table's rows (optionally filtered), grouped.
///
/// Columns are the table's own, or `<table>.<column>` for a column its `lookup` brings from
/// another table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricRequest {
    /// The table name from the config (`sessions`, `orders`, ...).
    pub table: String,
    /// What to measure.
    pub measure: Measure,
    /// How to group the rows.
    pub grouping: Grouping,
    /// Which rows count; all when `None`.
    pub filter: Option<Filter>,
}

impl MetricRequest {
    /// A per-day metric.
    pub fn daily(table: impl Into<String>, measure: Measure) -> Self {
        MetricRequest {
            table: table.into(),
            measure,
            grouping: Grouping::Day,
            filter: None,
        }
    }

    /// A whole-table metric.
    pub fn total(table: impl Into<String>, measure: Measure) -> Self {
        MetricRequest {
            table: table.into(),
            measure,
            grouping: Grouping::Total,
            filter: None,
        }
    }

    /// A per-day, per-dimension-value metric.
    pub fn daily_by(
        table: impl Into<String>,
        measure: Measure,
        dimension: impl Into<String>,
    ) -> Self {
        MetricRequest {
            table: table.into(),
            measure,
            grouping: Grouping::DayBy(dimension.into()),
            filter: None,
        }
    }

    /// The same request counting only rows that pass `filter`.
    pub fn filtered(self, filter: Filter) -> Self {
        MetricRequest {
            filter: Some(filter),
            ..self
        }
    }
}

impl fmt::Display for MetricRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} grouped by {:?}",
            self.table, self.measure, self.grouping
        )
    }
}

/// A per-day series. Counts and sums hold 0 on every day of the table's date span that has no
/// rows; days outside the span are absent.
pub type DailySeries = BTreeMap<NaiveDate, f64>;

/// A per-day, per-dimension-value series.
pub type DailyByDimension = BTreeMap<NaiveDate, BTreeMap<String, f64>>;

/// A computed metric.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// For [`Grouping::Total`].
    Total(f64),
    /// For [`Grouping::Day`].
    Daily(DailySeries),
    /// For [`Grouping::DayBy`].
    DailyBy(DailyByDimension),
}

/// Why a metric is not available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricError {
    /// The data could not provide it (missing file or column); the reason says which.
    Unavailable(String),
    /// The rule did not request it in `plan` (a bug in the rule).
    NotPlanned(String),
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Unavailable(reason) => f.write_str(reason),
            MetricError::NotPlanned(req) => write!(f, "metric was not planned: {req}"),
        }
    }
}

impl From<MetricError> for crate::rule::RuleError {
    fn from(e: MetricError) -> Self {
        crate::rule::RuleError(e.to_string())
    }
}

/// All metrics computed for a run, looked up by request.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    values: HashMap<MetricRequest, Result<MetricValue, String>>,
}

impl Metrics {
    /// Records the outcome of one request.
    pub fn insert(&mut self, req: MetricRequest, value: Result<MetricValue, String>) {
        self.values.insert(req, value);
    }

    /// The computed value of a request.
    pub fn get(&self, req: &MetricRequest) -> Result<&MetricValue, MetricError> {
        match self.values.get(req) {
            Some(Ok(v)) => Ok(v),
            Some(Err(reason)) => Err(MetricError::Unavailable(reason.clone())),
            None => Err(MetricError::NotPlanned(req.to_string())),
        }
    }

    /// A per-day series.
    pub fn daily(&self, req: &MetricRequest) -> Result<&DailySeries, MetricError> {
        match self.get(req)? {
            MetricValue::Daily(s) => Ok(s),
            _ => Err(MetricError::NotPlanned(req.to_string())),
        }
    }

    /// A whole-table value.
    pub fn total(&self, req: &MetricRequest) -> Result<f64, MetricError> {
        match self.get(req)? {
            MetricValue::Total(v) => Ok(*v),
            _ => Err(MetricError::NotPlanned(req.to_string())),
        }
    }

    /// A per-day, per-dimension series.
    pub fn daily_by(&self, req: &MetricRequest) -> Result<&DailyByDimension, MetricError> {
        match self.get(req)? {
            MetricValue::DailyBy(s) => Ok(s),
            _ => Err(MetricError::NotPlanned(req.to_string())),
        }
    }
}

/// `numerator / denominator` on the days where the denominator is positive.
pub fn ratio(numerator: &DailySeries, denominator: &DailySeries) -> DailySeries {
    denominator
        .iter()
        .filter(|(_, d)| **d > 0.0)
        .map(|(day, d)| (*day, numerator.get(day).copied().unwrap_or(0.0) / d))
        .collect()
}

/// The days with at least one row, from a per-day row count.
pub fn days_with_rows(rows: &DailySeries) -> std::collections::BTreeSet<NaiveDate> {
    rows.iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(d, _)| *d)
        .collect()
}
