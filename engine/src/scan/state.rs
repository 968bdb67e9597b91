//! Mergeable metric states: one per request, updated row by row, finished into a
//! [`MetricValue`]. Memory is bounded by the number of distinct keys (days, dimension values,
//! distinct cells), never by the number of rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;

use crate::metric::{Grouping, Measure, MetricValue};

/// Per-group slots of a state: one value for the table, per day, or per day and dimension value.
#[derive(Debug)]
pub enum Groups<T> {
    /// One slot for the whole table.
    Total(T),
    /// One slot per day.
    Day(HashMap<NaiveDate, T>),
    /// One slot per day and dimension value.
    DayBy(HashMap<NaiveDate, HashMap<Vec<u8>, T>>),
}

impl<T: Default> Groups<T> {
    fn new(grouping: &Grouping) -> Self {
        match grouping {
            Grouping::Total => Groups::Total(T::default()),
            Grouping::Day => Groups::Day(HashMap::new()),
            Grouping::DayBy(_) => Groups::DayBy(HashMap::new()),
        }
    }

    /// The slot of a row; `None` when the grouping needs a day and the row has none.
    fn slot(&mut self, day: Option<NaiveDate>, dim: &[u8]) -> Option<&mut T> {
        match self {
            Groups::Total(t) => Some(t),
            Groups::Day(days) => Some(days.entry(day?).or_default()),
            Groups::DayBy(days) => {
                let dims = days.entry(day?).or_default();
                if !dims.contains_key(dim) {
                    dims.insert(dim.to_vec(), T::default());
                }
                dims.get_mut(dim)
            }
        }
    }

    fn finish(self, span: Option<(NaiveDate, NaiveDate)>, value: impl Fn(T) -> f64) -> MetricValue {
        match self {
            Groups::Total(t) => MetricValue::Total(value(t)),
            Groups::Day(days) => {
                let mut series: BTreeMap<NaiveDate, f64> =
                    span_days(span).map(|d| (d, 0.0)).collect();
                series.extend(days.into_iter().map(|(d, t)| (d, value(t))));
                MetricValue::Daily(series)
            }
            Groups::DayBy(days) => {
                let mut series: BTreeMap<NaiveDate, BTreeMap<String, f64>> =
                    span_days(span).map(|d| (d, BTreeMap::new())).collect();
                for (day, dims) in days {
                    let slot = series.entry(day).or_default();
                    for (dim, t) in dims {
                        slot.insert(String::from_utf8_lossy(&dim).into_owned(), value(t));
                    }
                }
                MetricValue::DailyBy(series)
            }
        }
    }
}

fn span_days(span: Option<(NaiveDate, NaiveDate)>) -> impl Iterator<Item = NaiveDate> {
    span.into_iter()
        .flat_map(|(first, last)| first.iter_days().take_while(move |d| *d <= last))
}

/// A cell as the measures see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Empty, or the literal `NULL`/`null`, or absent from a short row.
    Null,
    /// A finite number.
    Number(f64, &'a [u8]),
    /// Any other text.
    Text(&'a [u8]),
}

impl<'a> Cell<'a> {
    /// Classifies raw cell bytes.
    pub fn classify(raw: Option<&'a [u8]>) -> Self {
        match raw {
            None | Some(b"" | b"NULL" | b"null") => Cell::Null,
            Some(bytes) => match std::str::from_utf8(bytes.trim_ascii())
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                Some(n) if n.is_finite() => Cell::Number(n, bytes),
                _ => Cell::Text(bytes),
            },
        }
    }

    fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Cell::Null => None,
            Cell::Number(_, b) | Cell::Text(b) => Some(b),
        }
    }
}

/// The running state of one request.
#[derive(Debug)]
pub enum State {
    /// A sum or count per group.
    Sum {
        /// The measure.
        measure: Measure,
        /// Running totals.
        groups: Groups<f64>,
        /// Values seen so far (only for [`Measure::Duplicates`]).
        seen: HashSet<Vec<u8>>,
    },
    /// Distinct values per group.
    Distinct(Groups<HashSet<Vec<u8>>>),
}

impl State {
    /// A fresh state for a request.
    pub fn new(measure: &Measure, grouping: &Grouping) -> Self {
        match measure {
            Measure::Distinct(_) => State::Distinct(Groups::new(grouping)),
            other => State::Sum {
                measure: other.clone(),
                groups: Groups::new(grouping),
                seen: HashSet::new(),
            },
        }
    }

    /// Folds one row in: its day, the measured cell and the dimension cell.
    pub fn update(&mut self, day: Option<NaiveDate>, cell: Cell<'_>, dim: &[u8]) {
        match self {
            State::Distinct(groups) => {
                if let (Some(bytes), Some(set)) = (cell.bytes(), groups.slot(day, dim)) {
                    if !set.contains(bytes) {
                        set.insert(bytes.to_vec());
                    }
                }
            }
            State::Sum {
                measure,
                groups,
                seen,
            } => {
                let add = match (&*measure, cell) {
                    (Measure::Rows, _) => 1.0,
                    (Measure::Sum(_), Cell::Number(n, _)) => n,
                    (Measure::Numeric(_), Cell::Number(..)) => 1.0,
                    (Measure::Nulls(_), Cell::Null) => 1.0,
                    (Measure::NonNumeric(_), Cell::Text(_)) => 1.0,
                    (Measure::Where { cmp, value, .. }, Cell::Number(n, _)) => {
                        f64::from(u8::from(cmp.holds(n, value.0)))
                    }
                    (Measure::Duplicates(_), cell) => {
                        let key = cell.bytes().unwrap_or_default();
                        if seen.contains(key) {
                            1.0
                        } else {
                            seen.insert(key.to_vec());
                            0.0
                        }
                    }
                    _ => 0.0,
                };
                if let Some(slot) = groups.slot(day, dim) {
                    *slot += add;
                }
            }
        }
    }

    /// The metric value; per-day series are filled with 0 over the table's date span.
    pub fn finish(self, span: Option<(NaiveDate, NaiveDate)>) -> MetricValue {
        match self {
            State::Distinct(groups) => groups.finish(span, |set| set.len() as f64),
            State::Sum { groups, .. } => groups.finish(span, |v| v),
        }
    }
}
