//! Helpers for rule tests, without the engine (feature `testkit`): tables of rows in memory,
//! the metrics of a rule's plan computed over them with the meanings of [`Measure`], and the
//! rule evaluated as a run would.
//!
//! Rows are given as simple comma-separated text (a header line, then one line per row; no
//! quoting). A looked-up column is just a column named `<table>.<column>` in the fixture. A
//! row's day is the `YYYY-MM-DD` its date cell starts with (an empty or other cell has no day);
//! the engine's full timestamp grammar (offsets, naive timestamps) is tested in the engine.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;

use crate::metric::{
    is_empty, parse_number, DailySeries, Grouping, Measure, MetricRequest, MetricValue, Metrics,
};
use crate::rule::{Evaluated, Finding, Rule, RuleError, RunCtx, Scope, TableInfo};

/// One fixture table.
#[derive(Clone, Debug)]
struct Table {
    date_column: Option<String>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// A run over fixture tables.
#[derive(Clone, Debug)]
pub struct TestKit {
    expected_date: NaiveDate,
    scope: Scope,
    tables: BTreeMap<String, Table>,
}

impl TestKit {
    /// A run about `expected_date` (`YYYY-MM-DD`) in `scope`, with no tables yet.
    pub fn new(expected_date: &str, scope: Scope) -> Self {
        TestKit {
            expected_date: day(expected_date),
            scope,
            tables: BTreeMap::new(),
        }
    }

    /// Adds table `name`, dated by `date_column`, with the rows of `csv` (header first).
    pub fn table(mut self, name: &str, date_column: Option<&str>, csv: &str) -> Self {
        let mut lines = csv.lines().filter(|l| !l.is_empty());
        let split = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
        let header = lines.next().map(split).unwrap_or_default();
        let rows = lines.map(split).collect();
        self.tables.insert(
            name.to_string(),
            Table {
                date_column: date_column.map(str::to_string),
                header,
                rows,
            },
        );
        self
    }

    /// The run's context.
    pub fn ctx(&self) -> RunCtx {
        let tables = self
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), TableInfo::dated(t.date_column.as_deref())))
            .collect();
        RunCtx::new(self.expected_date, self.scope, tables)
    }

    /// The metrics of `requests` over the fixture tables.
    pub fn metrics(&self, requests: &[MetricRequest]) -> Metrics {
        let mut metrics = Metrics::default();
        for request in requests {
            metrics.insert(request.clone(), self.compute(request));
        }
        metrics
    }

    /// Plans, computes and evaluates `rule`, as a run does.
    pub fn evaluate(&self, rule: &dyn Rule) -> Result<Evaluated, RuleError> {
        let ctx = self.ctx().with_lookback(rule.lookback_days());
        let requests = rule.plan(&ctx)?;
        rule.evaluate(&ctx, &self.metrics(&requests))
    }

    fn compute(&self, request: &MetricRequest) -> Result<MetricValue, String> {
        let table = self
            .tables
            .get(&request.table)
            .ok_or_else(|| format!("table `{}` has no fixture", request.table))?;
        let position = |column: &str| {
            table
                .header
                .iter()
                .position(|c| c == column)
                .ok_or_else(|| format!("column `{column}` is not in table `{}`", request.table))
        };
        let measured = request.measure.column().map(position).transpose()?;
        let dimension = match &request.grouping {
            Grouping::DayBy(d) => Some(position(d)?),
            _ => None,
        };
        let conditions = match &request.filter {
            Some(f) => f
                .all
                .iter()
                .map(|c| position(&c.column))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let date = match (&request.grouping, &table.date_column) {
            (Grouping::Total, _) => None,
            (_, Some(column)) => Some(position(column)?),
            (_, None) => return Err(format!("table `{}` has no date column", request.table)),
        };
        let day_of = |row: &Vec<String>| {
            date.and_then(|i| row.get(i))
                .and_then(|c| c.get(..10))
                .and_then(|c| c.parse::<NaiveDate>().ok())
        };
        let mut span: BTreeSet<NaiveDate> = BTreeSet::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut groups: BTreeMap<(Option<NaiveDate>, String), Group> = BTreeMap::new();
        for row in &table.rows {
            let day = day_of(row);
            if let Some(d) = day {
                span.insert(d);
            }
            if request.grouping != Grouping::Total && day.is_none() {
                continue;
            }
            if let Some(f) = &request.filter {
                if !f.accepts(|i| cell(row, conditions[i])) {
                    continue;
                }
            }
            let dim = dimension
                .and_then(|i| row.get(i))
                .filter(|c| !is_empty(Some(c.as_bytes())))
                .cloned()
                .unwrap_or_default();
            let key = match request.grouping {
                Grouping::Total => (None, String::new()),
                _ => (day, dim),
            };
            let value = measured.and_then(|i| cell(row, i));
            let group = groups.entry(key).or_default();
            match &request.measure {
                Measure::Rows => group.sum += 1.0,
                Measure::Distinct(_) => {
                    if !is_empty(value) {
                        group.distinct.insert(value.unwrap_or_default().to_vec());
                    }
                }
                Measure::Sum(_) => group.sum += value.and_then(parse_number).unwrap_or(0.0),
                Measure::SumSquares(_) => {
                    group.sum += value
                        .and_then(parse_number)
                        .map_or(0.0, crate::metric::square)
                }
                Measure::Numeric(_) => {
                    group.sum += f64::from(u8::from(value.and_then(parse_number).is_some()))
                }
                Measure::Nulls(_) => group.sum += f64::from(u8::from(is_empty(value))),
                Measure::NonNumeric(_) => {
                    let text = !is_empty(value) && value.and_then(parse_number).is_none();
                    group.sum += f64::from(u8::from(text));
                }
                Measure::Duplicates(_) => {
                    let key = value
                        .filter(|v| !is_empty(Some(v)))
                        .unwrap_or_default()
                        .to_vec();
                    group.sum += f64::from(u8::from(!seen.insert(key)));
                }
                Measure::Where { cmp, value: c, .. } => {
                    let holds = value
                        .and_then(parse_number)
                        .is_some_and(|n| cmp.holds(n, c.0));
                    group.sum += f64::from(u8::from(holds));
                }
            }
        }
        let span_days: Vec<NaiveDate> = match (span.first(), span.last()) {
            (Some(first), Some(last)) => first.iter_days().take_while(|d| d <= last).collect(),
            _ => Vec::new(),
        };
        let value = |g: &Group| match request.measure {
            Measure::Distinct(_) => g.distinct.len() as f64,
            _ => g.sum,
        };
        Ok(match &request.grouping {
            Grouping::Total => MetricValue::Total(groups.values().next().map_or(0.0, value)),
            Grouping::Day => {
                let mut series: DailySeries = span_days.iter().map(|d| (*d, 0.0)).collect();
                for ((day, _), g) in &groups {
                    if let Some(d) = day {
                        *series.entry(*d).or_default() += value(g);
                    }
                }
                MetricValue::Daily(series)
            }
            _ => {
                let mut by: BTreeMap<NaiveDate, BTreeMap<String, f64>> =
                    span_days.iter().map(|d| (*d, BTreeMap::new())).collect();
                for ((day, dim), g) in &groups {
                    if let Some(d) = day {
                        by.entry(*d).or_default().insert(dim.clone(), value(g));
                    }
                }
                MetricValue::DailyBy(by)
            }
        })
    }
}

/// Cell `i` of a row (`None`: the row is short).
fn cell(row: &[String], i: usize) -> Option<&[u8]> {
    row.get(i).map(|c| c.as_bytes())
}

#[derive(Default)]
struct Group {
    sum: f64,
    distinct: HashSet<Vec<u8>>,
}

/// A day from `YYYY-MM-DD` (panics on a typo: for tests).
pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|_| panic!("not a date: {s}"))
}

/// The `n` days from `first` on.
pub fn days(first: &str, n: usize) -> Vec<NaiveDate> {
    day(first).iter_days().take(n).collect()
}

/// Noon UTC of a day, as a timestamp cell.
pub fn noon(day: NaiveDate) -> String {
    format!("{day}T12:00:00Z")
}

/// The severity, check, partition date and value of each finding, for exact comparisons.
pub fn summary(findings: &[Finding]) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    findings
        .iter()
        .map(|f| {
            (
                f.severity.to_string(),
                f.check.clone(),
                f.partition_date,
                f.value,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Cmp, Filter};

    const ORDERS: &str = "id,ts,revenue,source\n\
        A,2025-03-01T10:00:00Z,10,\n\
        B,2025-03-01T11:00:00Z,0,ads\n\
        B,2025-03-03T11:00:00Z,x,\n\
        C,,5,\n";

    fn kit() -> TestKit {
        TestKit::new("2025-03-03", Scope::Partition).table("orders", Some("ts"), ORDERS)
    }

    #[test]
    fn daily_metrics_fill_the_span_and_leave_undated_rows_out() {
        let rows = MetricRequest::daily("orders", Measure::Rows);
        let revenue = MetricRequest::daily("orders", Measure::Sum("revenue".into()));
        let dups = MetricRequest::daily("orders", Measure::Duplicates("id".into()));
        let total = MetricRequest::total("orders", Measure::Distinct("id".into()));
        let m = kit().metrics(&[rows.clone(), revenue.clone(), dups.clone(), total.clone()]);
        let d = |s| day(s);
        assert_eq!(
            m.daily(&rows).unwrap(),
            &DailySeries::from([
                (d("2025-03-01"), 2.0),
                (d("2025-03-02"), 0.0),
                (d("2025-03-03"), 1.0)
            ])
        );
        assert_eq!(m.daily(&revenue).unwrap()[&d("2025-03-01")], 10.0);
        assert_eq!(m.daily(&dups).unwrap()[&d("2025-03-03")], 1.0);
        assert_eq!(m.total(&total).unwrap(), 3.0);
    }

    #[test]
    fn filters_are_an_and_of_conditions() {
        let paid_without_source = MetricRequest::daily("orders", Measure::Rows)
            .filtered(Filter::compare("revenue", Cmp::Gt, 0.0).and(Filter::empty("source")));
        let m = kit().metrics(std::slice::from_ref(&paid_without_source));
        let series = m.daily(&paid_without_source).unwrap();
        // A (10, no source) counts; B (0, ads) fails both; B on 03-03 (x) holds no number.
        assert_eq!(series[&day("2025-03-01")], 1.0);
        assert_eq!(series[&day("2025-03-03")], 0.0);
    }

    #[test]
    fn a_missing_column_or_table_is_unavailable() {
        let typo = MetricRequest::daily("orders", Measure::Distinct("idd".into()));
        let other = MetricRequest::daily("sessions", Measure::Rows);
        let m = kit().metrics(&[typo.clone(), other.clone()]);
        assert!(m.daily(&typo).unwrap_err().to_string().contains("`idd`"));
        assert!(m
            .daily(&other)
            .unwrap_err()
            .to_string()
            .contains("no fixture"));
    }
}
