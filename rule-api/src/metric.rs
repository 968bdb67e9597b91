//! Metric requests (what a rule asks for) and computed metrics (what it gets back).
//!
//! Requests are plain, hashable values so the engine can deduplicate the requests of all rules
//! and compute each one once, in a single pass over its table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::wire::Float;

/// A numeric constant inside a request, hashable and totally ordered.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(from = "Float", into = "Float")]
pub struct Number(pub f64);

impl From<Float> for Number {
    fn from(f: Float) -> Self {
        Number(f.0)
    }
}

impl From<Number> for Float {
    fn from(n: Number) -> Self {
        Float(n.0)
    }
}

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cmp {
    /// `cell < constant`
    Lt,
    /// `cell <= constant`
    Le,
    /// `cell == constant`
    Eq,
    /// `cell != constant`
    Ne,
    /// `cell >= constant`
    Ge,
    /// `cell > constant`
    Gt,
}

impl Cmp {
    /// Applies the comparison.
    pub fn holds(self, cell: f64, constant: f64) -> bool {
        match self {
            Cmp::Lt => cell < constant,
            Cmp::Le => cell <= constant,
            Cmp::Eq => cell == constant,
            Cmp::Ne => cell != constant,
            Cmp::Ge => cell >= constant,
            Cmp::Gt => cell > constant,
        }
    }

    /// The operator as written in SQL and messages (`<`, `<=`, `=`, `<>`, `>=`, `>`).
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// What to measure over the rows of a group. Exhaustive on purpose: every source computes
/// every measure, so a new one is a protocol change.
///
/// A cell is *empty* when it is absent (a short row, a lookup that found nothing), empty, or
/// `NULL`/`null`; a cell *holds a number* when, trimmed of ASCII spaces, it parses as a finite
/// decimal or scientific number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Number of rows.
    Rows,
    /// Number of distinct non-empty values of a column.
    Distinct(String),
    /// Sum of the numeric cells of a column (empty and non-numeric cells are skipped).
    Sum(String),
    /// Sum of the squares of the numeric cells of a column (each as [`square`]): with
    /// [`Sum`](Measure::Sum) and a count it gives the spread of the values (the variance of a
    /// revenue share).
    SumSquares(String),
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

/// Below this magnitude a number's square counts as 0, above [`SQUARE_MAX`] as +∞: every
/// source squares the same way (PostgreSQL refuses squares that underflow or overflow).
pub const SQUARE_MIN: f64 = 1e-150;
/// See [`SQUARE_MIN`].
pub const SQUARE_MAX: f64 = 1e150;

/// A number's square as [`Measure::SumSquares`] adds it.
pub fn square(x: f64) -> f64 {
    match x.abs() {
        a if a < SQUARE_MIN => 0.0,
        a if a > SQUARE_MAX => f64::INFINITY,
        _ => x * x,
    }
}

impl Measure {
    /// The column this measure reads, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            Measure::Rows => None,
            Measure::Distinct(c)
            | Measure::Sum(c)
            | Measure::SumSquares(c)
            | Measure::Numeric(c)
            | Measure::Nulls(c)
            | Measure::NonNumeric(c)
            | Measure::Duplicates(c)
            | Measure::Where { column: c, .. } => Some(c),
        }
    }
}

/// How rows are grouped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One value over the whole table (rows without a date included).
    Total,
    /// One value per day of the table's date column (rows without a date excluded).
    Day,
    /// One value per day and per value of a dimension column (empty cells grouped under
    /// `""`): every dimension value with a row on the day has a value (possibly 0); every day
    /// of the table's date span is present (an empty map on a day without such rows).
    DayBy(String),
}

/// What a filter condition asks of one cell. See [`Measure`] for what *empty* and *holds a
/// number* mean.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// The cell equals the text byte for byte (an absent cell never does; `""` matches a
    /// present empty cell only).
    Equals(String),
    /// The cell contains the text, ignoring ASCII case (an absent cell never does).
    ContainsIgnoreCase(String),
    /// The cell is empty (absent, empty, `NULL` or `null`).
    Empty,
    /// The cell is not empty.
    NotEmpty,
    /// The cell holds a number that compares so with the constant (a cell that holds no
    /// number never matches).
    Compare(Cmp, Number),
}

/// One condition of a [`Filter`]: a column and what its cell must satisfy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Condition {
    /// The column tested (`<table>.<column>` for a looked-up one).
    pub column: String,
    /// The test.
    pub op: FilterOp,
}

impl Condition {
    /// Whether a cell (`None`: absent) satisfies the condition.
    pub fn accepts(&self, cell: Option<&[u8]>) -> bool {
        match &self.op {
            FilterOp::Equals(text) => cell == Some(text.as_bytes()),
            FilterOp::ContainsIgnoreCase(text) => {
                let text = text.as_bytes();
                cell.is_some_and(|cell| {
                    text.is_empty()
                        || cell
                            .windows(text.len())
                            .any(|w| w.eq_ignore_ascii_case(text))
                })
            }
            FilterOp::Empty => is_empty(cell),
            FilterOp::NotEmpty => !is_empty(cell),
            FilterOp::Compare(cmp, value) => cell
                .and_then(parse_number)
                .is_some_and(|n| cmp.holds(n, value.0)),
        }
    }
}

/// Whether a cell is empty: absent, empty, `NULL` or `null`.
pub fn is_empty(cell: Option<&[u8]>) -> bool {
    matches!(cell, None | Some(b"" | b"NULL" | b"null"))
}

/// The number a cell holds: trimmed of ASCII spaces, a finite decimal or scientific number.
pub fn parse_number(cell: &[u8]) -> Option<f64> {
    let s = cell.trim_ascii();
    if !s.is_empty() && s.len() <= 15 && s.iter().all(u8::is_ascii_digit) {
        return Some(s.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')) as f64);
    }
    let n: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    n.is_finite().then_some(n)
}

/// Only rows that satisfy every condition count toward a request (an AND).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Filter {
    /// The conditions, all of which must hold.
    pub all: Vec<Condition>,
}

impl Filter {
    /// One condition.
    pub fn new(column: impl Into<String>, op: FilterOp) -> Self {
        Filter {
            all: vec![Condition {
                column: column.into(),
                op,
            }],
        }
    }

    /// `column` equals `text` exactly.
    pub fn equals(column: impl Into<String>, text: impl Into<String>) -> Self {
        Filter::new(column, FilterOp::Equals(text.into()))
    }

    /// `column` contains `text`, ignoring ASCII case.
    pub fn contains_ignore_case(column: impl Into<String>, text: impl Into<String>) -> Self {
        Filter::new(column, FilterOp::ContainsIgnoreCase(text.into()))
    }

    /// `column` is empty.
    pub fn empty(column: impl Into<String>) -> Self {
        Filter::new(column, FilterOp::Empty)
    }

    /// `column` is not empty.
    pub fn not_empty(column: impl Into<String>) -> Self {
        Filter::new(column, FilterOp::NotEmpty)
    }

    /// `column` holds a number with `cmp` against `value`, e.g. `revenue > 0`.
    pub fn compare(column: impl Into<String>, cmp: Cmp, value: f64) -> Self {
        Filter::new(column, FilterOp::Compare(cmp, Number(value)))
    }

    /// Both this filter's conditions and `other`'s.
    pub fn and(mut self, other: Filter) -> Self {
        self.all.extend(other.all);
        self
    }

    /// Whether a row passes, given the cell of each condition in order (`None`: absent).
    pub fn accepts<'a>(&self, mut cells: impl FnMut(usize) -> Option<&'a [u8]>) -> bool {
        self.all
            .iter()
            .enumerate()
            .all(|(i, c)| c.accepts(cells(i)))
    }
}

/// One metric a rule needs: a measure over a table's rows (optionally filtered), grouped.
///
/// Columns are the table's own, or `<table>.<column>` for a column its `lookup` brings from
/// another table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// The same request counting only rows that pass `filter` (and the filter it had).
    pub fn filtered(self, filter: Filter) -> Self {
        let filter = match self.filter {
            Some(had) => had.and(filter),
            None => filter,
        };
        MetricRequest {
            filter: Some(filter),
            ..self
        }
    }

    /// Every column the request reads: the measured one, the dimension, the filter's.
    pub fn columns(&self) -> Vec<&str> {
        let mut columns: Vec<&str> = self.measure.column().into_iter().collect();
        if let Grouping::DayBy(dimension) = &self.grouping {
            columns.push(dimension);
        }
        if let Some(filter) = &self.filter {
            columns.extend(filter.all.iter().map(|c| c.column.as_str()));
        }
        columns
    }
}

impl fmt::Display for MetricRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} grouped by {:?}",
            self.table, self.measure, self.grouping
        )?;
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let conditions: Vec<String> = filter
            .all
            .iter()
            .map(|c| match &c.op {
                FilterOp::Equals(text) => format!("{} = {text:?}", c.column),
                FilterOp::ContainsIgnoreCase(text) => format!("{} contains {text:?}", c.column),
                FilterOp::Empty => format!("{} is empty", c.column),
                FilterOp::NotEmpty => format!("{} is not empty", c.column),
                FilterOp::Compare(cmp, value) => {
                    format!("{} {} {}", c.column, cmp.symbol(), value.0)
                }
            })
            .collect();
        write!(f, " where {}", conditions.join(" and "))
    }
}

/// A per-day series. Counts and sums hold 0 on every day of the table's date span that has no
/// rows; days outside the span are absent.
pub type DailySeries = BTreeMap<NaiveDate, f64>;

/// A per-day, per-dimension-value series: every day of the table's date span, each with the
/// dimension values that have rows that day.
pub type DailyByDimension = BTreeMap<NaiveDate, BTreeMap<String, f64>>;

/// A computed metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireValue", into = "WireValue")]
pub enum MetricValue {
    /// For [`Grouping::Total`].
    Total(f64),
    /// For [`Grouping::Day`].
    Daily(DailySeries),
    /// For [`Grouping::DayBy`].
    DailyBy(DailyByDimension),
}

/// [`MetricValue`] on the wire: lists of pairs (JSON maps need string keys) and numbers that
/// keep infinities.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireValue {
    Total(Float),
    Daily(Vec<(NaiveDate, Float)>),
    DailyBy(Vec<(NaiveDate, Vec<(String, Float)>)>),
}

impl From<MetricValue> for WireValue {
    fn from(v: MetricValue) -> Self {
        match v {
            MetricValue::Total(x) => WireValue::Total(Float(x)),
            MetricValue::Daily(s) => {
                WireValue::Daily(s.into_iter().map(|(d, x)| (d, Float(x))).collect())
            }
            MetricValue::DailyBy(s) => WireValue::DailyBy(
                s.into_iter()
                    .map(|(d, by)| (d, by.into_iter().map(|(k, x)| (k, Float(x))).collect()))
                    .collect(),
            ),
        }
    }
}

impl From<WireValue> for MetricValue {
    fn from(v: WireValue) -> Self {
        match v {
            WireValue::Total(x) => MetricValue::Total(x.0),
            WireValue::Daily(s) => {
                MetricValue::Daily(s.into_iter().map(|(d, x)| (d, x.0)).collect())
            }
            WireValue::DailyBy(s) => MetricValue::DailyBy(
                s.into_iter()
                    .map(|(d, by)| (d, by.into_iter().map(|(k, x)| (k, x.0)).collect()))
                    .collect(),
            ),
        }
    }
}

/// Why a metric is not available.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// All metrics computed for a run, looked up by request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<WireEntry>", into = "Vec<WireEntry>")]
pub struct Metrics {
    values: HashMap<MetricRequest, Result<MetricValue, String>>,
}

/// One entry of [`Metrics`] on the wire.
#[derive(Serialize, Deserialize)]
struct WireEntry {
    request: MetricRequest,
    #[serde(flatten)]
    outcome: WireOutcome,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireOutcome {
    Value(MetricValue),
    Unavailable(String),
}

impl From<Metrics> for Vec<WireEntry> {
    fn from(m: Metrics) -> Self {
        let mut entries: Vec<WireEntry> = m
            .values
            .into_iter()
            .map(|(request, outcome)| WireEntry {
                request,
                outcome: match outcome {
                    Ok(v) => WireOutcome::Value(v),
                    Err(e) => WireOutcome::Unavailable(e),
                },
            })
            .collect();
        entries.sort_by(|a, b| a.request.cmp(&b.request));
        entries
    }
}

impl From<Vec<WireEntry>> for Metrics {
    fn from(entries: Vec<WireEntry>) -> Self {
        let values = entries
            .into_iter()
            .map(|e| {
                let outcome = match e.outcome {
                    WireOutcome::Value(v) => Ok(v),
                    WireOutcome::Unavailable(reason) => Err(reason),
                };
                (e.request, outcome)
            })
            .collect();
        Metrics { values }
    }
}

impl Metrics {
    /// The outcomes of `requests` only (what a plugin rule planned), unplanned ones left out.
    pub fn subset<'a>(&self, requests: impl IntoIterator<Item = &'a MetricRequest>) -> Metrics {
        let values = requests
            .into_iter()
            .filter_map(|r| Some((r.clone(), self.values.get(r)?.clone())))
            .collect();
        Metrics { values }
    }

    /// Every request with its outcome (`Err`: why it could not be computed).
    pub fn iter(&self) -> impl Iterator<Item = (&MetricRequest, &Result<MetricValue, String>)> {
        self.values.iter()
    }

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
