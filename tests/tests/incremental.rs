//! Incremental runs on a hive-partitioned Parquet warehouse: a run given a partition cache
//! reads only the partitions that changed since the previous run (and those of the last
//! `run.recompute_days`), and finds exactly what a run without a cache finds: the same findings,
//! table health and metrics. Damaged cache entries are ignored, never trusted.

use std::path::{Path, PathBuf};

use vigil_engine::config::Config;
use vigil_engine::metric::{Measure, MetricValue};
use vigil_engine::rule::Scope;
use vigil_engine::runner::{evaluate, evaluate_cached, Evaluation};
use vigil_engine::scan::cache::PartitionCache;
use vigil_engine::scan::PartitionStats;
use vigil_engine::source::Source;
use vigil_engine::testing::{day, MemoryCache};
use vigil_tests::{registry, same_json};

/// Days of the warehouse; its last day carries the faults.
const DAYS: u32 = 20;
/// The last day of the warehouse (the second run's partition).
const LAST: &str = "2025-03-20";

/// A demo warehouse with faults on its last day, as Parquet: sessions and orders partitioned
/// by day (small row groups: several per partition), attribution one file. Returns the
/// warehouse folder and the config.
fn warehouse(dir: &Path) -> (PathBuf, Config) {
    let csv = dir.join("csv");
    vigil_tests::write_demo(
        &csv,
        DAYS,
        300,
        LAST,
        "unparsable-timestamps,duplicates,null-spike",
    );
    let warehouse = dir.join("warehouse");
    vigil_tests::csv_folder_to_parquet(
        &csv.join("warehouse"),
        &warehouse,
        100,
        &vigil_tests::BY_DAY,
    );
    let config = Config::load(&csv.join("vigil.yml"), &registry()).unwrap();
    (warehouse, config)
}

fn open(warehouse: &Path) -> Box<dyn Source> {
    // Naming the crate keeps its format registration linked.
    let _ = vigil_source_parquet::Parquet;
    vigil_engine::source::open(warehouse.to_str().unwrap()).unwrap()
}

/// Runs for `date` with `cache` and without; the two agree exactly (findings, every table's
/// health and metrics). Returns the cached run.
fn run_both(
    warehouse: &Path,
    config: &Config,
    date: &str,
    cache: &dyn PartitionCache,
) -> Evaluation {
    let source = open(warehouse);
    let cached = evaluate_cached(
        config,
        source.as_ref(),
        day(date),
        Scope::Partition,
        Some(cache),
    );
    let full = evaluate(config, source.as_ref(), day(date), Scope::Partition);
    let json = |e: &Evaluation| serde_json::to_value(&e.findings).unwrap();
    assert!(
        same_json(&json(&cached), &json(&full), 1e-12),
        "{date}: findings differ:\n{:#?}\nvs\n{:#?}",
        cached.findings,
        full.findings
    );
    assert!(!full.findings.is_empty());
    for (a, b) in cached.scans.iter().zip(&full.scans) {
        assert_eq!(a.table, b.table);
        assert_eq!(a.outcome, b.outcome, "{date}: health of {}", a.table);
        assert_eq!(a.metrics, b.metrics, "{date}: metrics of {}", a.table);
        assert_eq!(
            b.partitions, None,
            "a run without a cache reports no partitions"
        );
    }
    cached
}

/// How the table's partitions were read.
fn stats(eval: &Evaluation, table: &str) -> PartitionStats {
    let scan = eval.scans.iter().find(|s| s.table == table).unwrap();
    scan.partitions.clone().expect("partition stats")
}

/// The sessions partition folder of a day.
fn sessions(warehouse: &Path, d: &str) -> PathBuf {
    warehouse
        .join("fct_sessions")
        .join(format!("session_date={d}"))
}

/// 1 when the sessions have an undated partition (rows whose timestamp has no valid day),
/// read by every run.
fn undated(warehouse: &Path) -> usize {
    usize::from(
        warehouse
            .join("fct_sessions/session_date=__HIVE_DEFAULT_PARTITION__")
            .is_dir(),
    )
}

/// Gives every file of a partition folder a new modification time (same content).
fn touch(folder: &Path) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        file.set_modified(later).unwrap();
    }
}

/// Moves the last day's partitions out of the datasets (into `aside`) or back.
fn last_day(warehouse: &Path, aside: &Path, back: bool) {
    for (table, key) in [
        ("fct_sessions", "session_date"),
        ("fct_orders", "order_date"),
    ] {
        let inside = warehouse.join(table).join(format!("{key}={LAST}"));
        let outside = aside.join(table);
        std::fs::create_dir_all(aside).unwrap();
        if back {
            std::fs::rename(&outside, &inside).unwrap();
        } else {
            std::fs::rename(&inside, &outside).unwrap();
        }
    }
}

#[test]
fn the_next_days_run_reads_only_changed_partitions_and_finds_what_a_full_run_finds() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = warehouse(dir.path());
    assert_eq!(config.run.recompute_days, 7);
    let aside = dir.path().join("aside");
    let cache = MemoryCache::default();
    let undated = undated(&warehouse);

    // Day 19: every partition is read and stored.
    last_day(&warehouse, &aside, false);
    let first = run_both(&warehouse, &config, "2025-03-19", &cache);
    let s = stats(&first, "sessions");
    assert_eq!(
        (s.read, s.reused, s.full_scan_reason),
        (19 + undated, 0, None)
    );
    // Orders (duplicates, an index for attribution) is read by partition too; attribution, one
    // file dated through its lookup of orders, is read whole.
    let o = stats(&first, "orders");
    assert_eq!((o.read, o.reused, o.full_scan_reason), (19, 0, None));
    let attribution = stats(&first, "attribution").full_scan_reason.unwrap();
    assert!(
        attribution.contains("not partitioned by day"),
        "{attribution}"
    );

    // Day 20 arrives (with unparsable timestamps: an undated default partition too), day 3 is
    // rewritten (new modification time), day 5 is deleted.
    last_day(&warehouse, &aside, true);
    touch(&sessions(&warehouse, "2025-03-03"));
    std::fs::remove_dir_all(sessions(&warehouse, "2025-03-05")).unwrap();
    let second = run_both(&warehouse, &config, LAST, &cache);
    // Read: 03-13..03-20 (recompute_days 7), the rewritten 03-03 and the undated partition;
    // reused: 03-01..03-12 but 03-03 and the deleted 03-05.
    let s = stats(&second, "sessions");
    assert_eq!(
        (s.read, s.reused, s.full_scan_reason),
        (9 + undated, 10, None)
    );
    let o = stats(&second, "orders");
    assert_eq!((o.read, o.reused, o.full_scan_reason), (8, 12, None));

    // The same day again with nothing changed: only the recomputed days are read.
    let again = run_both(&warehouse, &config, LAST, &cache);
    let s = stats(&again, "sessions");
    assert_eq!((s.read, s.reused), (8 + undated, 11));

    // With recompute_days 0, only the expected partition (and the undated one) is read.
    let mut zero = Config::load(&dir.path().join("csv/vigil.yml"), &registry()).unwrap();
    zero.run.recompute_days = 0;
    let s = stats(&run_both(&warehouse, &zero, LAST, &cache), "sessions");
    assert_eq!((s.read, s.reused), (1 + undated, 18));
}

#[test]
fn rows_of_a_reused_day_in_another_partition_make_it_read_again_and_counts_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = warehouse(dir.path());
    let cache = MemoryCache::default();
    run_both(&warehouse, &config, LAST, &cache);
    // A copy of 03-02's rows in another folder: the same session ids on the same day, so the
    // distinct count of 03-02 must not double. The stored 03-02 kept counts only.
    let copy = warehouse.join("fct_sessions").join("session_date=copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        sessions(&warehouse, "2025-03-02").join("part-0.parquet"),
        copy.join("part-0.parquet"),
    )
    .unwrap();
    // A copy of 03-02's orders in a folder read before every other: its rows come first, so
    // the rows of the (reused) 03-02 partition become the duplicates, and the copy's rows the
    // ones attribution looks up.
    let orders = warehouse.join("fct_orders");
    let early = orders.join("order_date=0-copy");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::copy(
        orders.join("order_date=2025-03-02/part-0.parquet"),
        early.join("part-0.parquet"),
    )
    .unwrap();
    let second = run_both(&warehouse, &config, LAST, &cache);
    let undated = undated(&warehouse);
    // Read: the 8 recomputed days, the copy, 03-02 again, and the undated partition.
    let s = stats(&second, "sessions");
    assert_eq!((s.read, s.reused), (10 + undated, 11));
    // Orders: the recomputed days and the copy are read; 03-02, which kept only counts for
    // its distinct transactions, is read again.
    let o = stats(&second, "orders");
    assert_eq!((o.read, o.reused), (10, 11));
    let orders = second.scans.iter().find(|s| s.table == "orders").unwrap();
    let duplicates = orders
        .metrics
        .iter()
        .find(|(r, _)| matches!(r.measure, Measure::Duplicates(_)))
        .and_then(|(_, value)| value.clone().ok());
    let Some(MetricValue::Daily(daily)) = duplicates else {
        panic!("{duplicates:?}")
    };
    assert!(daily[&day("2025-03-02")] > 0.0, "{daily:?}");
    // Stored again with the hashes of 03-02 (shared with the copy): now reusable.
    let third = run_both(&warehouse, &config, LAST, &cache);
    let s = stats(&third, "sessions");
    assert_eq!((s.read, s.reused), (9 + undated, 12));
}

#[test]
fn damaged_cache_entries_are_ignored_and_their_partitions_read() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = warehouse(dir.path());
    let cache = MemoryCache::default();
    run_both(&warehouse, &config, LAST, &cache);
    let entries = cache.entries();
    let key = |d: &str| ("sessions".to_string(), format!("session_date={d}"));
    let valid = entries[&key("2025-03-02")].clone();
    // A day held by one partition keeps its distinct counts, not its ~300 session hashes.
    assert!(valid.len() < 1000, "{} bytes", valid.len());
    // Garbage, a truncated entry, one bit flipped, an empty one, another partition's entry.
    cache.insert(
        "sessions",
        "session_date=2025-03-01",
        b"not an entry".to_vec(),
    );
    cache.insert(
        "sessions",
        "session_date=2025-03-02",
        valid[..valid.len() / 2].to_vec(),
    );
    let mut flipped = entries[&key("2025-03-03")].clone();
    flipped[40] ^= 1;
    cache.insert("sessions", "session_date=2025-03-03", flipped);
    cache.insert("sessions", "session_date=2025-03-04", Vec::new());
    cache.insert("sessions", "session_date=2025-03-06", valid.clone());
    cache.remove("sessions", "session_date=2025-03-07");
    let _ = cache.take_counts();
    let second = run_both(&warehouse, &config, LAST, &cache);
    let undated = undated(&warehouse);
    let s = stats(&second, "sessions");
    assert_eq!((s.read, s.reused), (8 + 6 + undated, 6));
    // Every partition read is stored again (and only those).
    let (_, puts) = cache.take_counts();
    assert_eq!(puts, s.read + stats(&second, "orders").read);
    let s = stats(&run_both(&warehouse, &config, LAST, &cache), "sessions");
    assert_eq!((s.read, s.reused), (8 + undated, 12));
}
