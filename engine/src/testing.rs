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

/// A [`PartitionCache`](crate::scan::cache::PartitionCache) in memory, for tests and tools: it
/// keeps every entry put (the state store forgets those a run does not touch) and counts the
/// entries asked for and stored.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: std::sync::Mutex<BTreeMap<(String, String), Vec<u8>>>,
    gets: std::sync::atomic::AtomicUsize,
    puts: std::sync::atomic::AtomicUsize,
}

impl MemoryCache {
    /// Every entry: (table, key) and bytes.
    pub fn entries(&self) -> BTreeMap<(String, String), Vec<u8>> {
        self.lock().clone()
    }

    /// Sets the bytes of an entry (to load a saved cache, or to damage one in a test).
    pub fn insert(&self, table: &str, key: &str, bytes: Vec<u8>) {
        self.lock()
            .insert((table.to_string(), key.to_string()), bytes);
    }

    /// Removes an entry.
    pub fn remove(&self, table: &str, key: &str) {
        self.lock().remove(&(table.to_string(), key.to_string()));
    }

    /// Entries asked for and entries stored since the last call (then counts from zero).
    pub fn take_counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.gets.swap(0, Relaxed), self.puts.swap(0, Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Vec<u8>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl crate::scan::cache::PartitionCache for MemoryCache {
    fn get(&self, table: &str, key: &str) -> Option<Vec<u8>> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock()
            .get(&(table.to_string(), key.to_string()))
            .cloned()
    }

    fn put(&self, table: &str, key: &str, bytes: Vec<u8>) {
        self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.insert(table, key, bytes);
    }
}
