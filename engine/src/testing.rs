//! Helpers for rule tests: run rules over small in-memory CSV tables, exactly as a real run
//! does (same planning, same scanner, same table findings), without touching the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;

use crate::config::TableConfig;
use crate::rule::{Rule, Scope};
use crate::runner::{evaluate_with, Evaluation};
use crate::scan::{scan_source, TableProblem};
use crate::timestamp::NaiveTimestamps;

/// A table with a date column and no required columns, for fixtures.
pub fn table(file: &str, date_column: Option<&str>) -> TableConfig {
    TableConfig {
        file: file.into(),
        date_column: date_column.map(str::to_string),
        required_columns: Vec::new(),
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        lookups: Vec::new(),
    }
}

/// Runs `rules` over `tables`, whose files hold the CSV text of `data` (by table name; a table
/// absent from `data` reads as a missing file).
pub fn evaluate(
    rules: &[(&str, &dyn Rule)],
    tables: &BTreeMap<String, TableConfig>,
    data: &[(&str, &str)],
    expected_date: NaiveDate,
    scope: Scope,
) -> Evaluation {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    evaluate_with(
        rules,
        tables,
        expected_date,
        scope,
        |name, config, requests| {
            let source = data
                .get(name)
                .map(|text| text.as_bytes())
                .ok_or(TableProblem::Missing);
            scan_source(name, config, PathBuf::from(&config.file), source, requests)
        },
    )
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
pub fn summary(eval: &Evaluation) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    eval.findings
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
