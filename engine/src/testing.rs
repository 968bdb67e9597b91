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
        relation: None,
        date_column: date_column.map(str::to_string),
        required_columns: Vec::new(),
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
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
        false,
        |name, config, requests| {
            let source = data
                .get(name)
                .map(|text| text.as_bytes())
                .ok_or(TableProblem::Missing);
            scan_source(name, config, PathBuf::from(&config.file), source, requests)
        },
    )
}

pub use crate::api::testkit::{day, days, noon};

/// The severity, check, partition date and value of each finding, for exact comparisons.
pub fn summary(eval: &Evaluation) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    crate::api::testkit::summary(&eval.findings)
}
