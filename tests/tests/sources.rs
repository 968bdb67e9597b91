//! Sources: the same rows as CSV files, as Parquet files, as a hive-partitioned Parquet
//! dataset and in a real PostgreSQL server (typed tables loaded with COPY) give identical
//! findings (severity, check, date, message; numbers within 1e-9
//! relative), on the Puffy warehouse with the native and the reference config (both scopes)
//! and on demo warehouses with each fault. And bad Parquet input is a finding, never a crash.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vigil_tests::equivalence::{
    all_metrics, assert_hostile_channel_counted, assert_same_findings, assert_same_metrics,
    assert_same_rows, demo, edge_numbers_warehouse, hostile_warehouse, run, to_parquet, Layout,
    DEMO_FAULTS,
};
use vigil_tests::pg::Server;
use vigil_tests::{puffy, repo_root, vigil};

/// Where the same rows are read from.
#[derive(Clone, Debug)]
enum Copy {
    Parquet(Layout),
    /// A database of the server, named.
    Postgres(String),
}

/// Runs `config` on the CSV warehouse, on both Parquet layouts of it and on its copy in
/// database `db` of `pg`; the findings agree. Returns the CSV report.
fn assert_equivalent(
    csv_dir: &Path,
    config: &Path,
    date: &str,
    extra: &[&str],
    pg: (&Server, &str),
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (code, csv) = run(csv_dir, config, &dir.path().join("csv"), date, extra);
    let (server, db) = pg;
    let copies = [
        Copy::Parquet(Layout::Files),
        Copy::Parquet(Layout::Partitioned),
        Copy::Postgres(db.to_string()),
    ];
    for copy in copies {
        let warehouse = match &copy {
            Copy::Parquet(layout) => {
                let warehouse = dir.path().join(format!("{layout:?}"));
                to_parquet(csv_dir, &warehouse, *layout);
                warehouse
            }
            Copy::Postgres(db) => PathBuf::from(server.url(db)),
        };
        let layout = &copy;
        let out = dir
            .path()
            .join(format!("{layout:?}-reports").replace(['"', '(', ')'], ""));
        let (parquet_code, parquet) = run(&warehouse, config, &out, date, extra);
        let what = format!("{layout:?} {} {date} {extra:?}", config.display());
        assert_eq!(code, parquet_code, "{what}");
        assert_same_findings((&csv, csv_dir), (&parquet, &warehouse), &what);
        assert_same_rows(&csv, &parquet, &what);
    }
    csv
}

#[test]
fn puffy_as_parquet_and_in_postgres_gives_the_csv_findings_with_the_native_and_reference_configs() {
    let warehouse = puffy().join("warehouse");
    let server = Server::start();
    server.load_warehouse("puffy", &warehouse);
    let pg = (&server, "puffy");
    let native = repo_root().join("schema/examples/puffy.yml");
    let reference = puffy().join("monitoring_rules.reference.yml");
    let report = assert_equivalent(&warehouse, &native, "2025-03-08", &[], pg);
    assert!(!report["findings"].as_array().unwrap().is_empty());
    assert_equivalent(&warehouse, &reference, "2025-03-08", &[], pg);
    let all = assert_equivalent(
        &warehouse,
        &reference,
        "2025-03-08",
        &["--scope", "all"],
        pg,
    );
    // The reference's 14 findings, reproduced on every source.
    assert_eq!(all["findings"].as_array().unwrap().len(), 14);
}

#[test]
fn demo_warehouses_with_each_fault_give_the_same_findings_as_parquet() {
    let listed = vigil(["demo", "--help"]).stdout;
    for fault in DEMO_FAULTS.iter().filter(|f| !f.is_empty()) {
        assert!(
            listed.contains(fault),
            "demo has no fault `{fault}`:\n{listed}"
        );
    }
    let server = Server::start();
    for (n, fault) in DEMO_FAULTS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = demo(dir.path(), fault);
        let config = dir.path().join("vigil.yml");
        let db = format!("demo{n}");
        server.load_warehouse(&db, &warehouse);
        assert_equivalent(&warehouse, &config, "2025-03-31", &[], (&server, &db));
    }
}

#[test]
fn bad_parquet_input_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = dir.path().join("warehouse");
    to_parquet(&puffy().join("warehouse"), &warehouse, Layout::Partitioned);
    let config = repo_root().join("schema/examples/puffy.yml");
    // A truncated file, a file that is not Parquet, a folder that is not a partition.
    let attribution = warehouse.join("fct_attribution.parquet");
    let bytes = std::fs::read(&attribution).unwrap();
    std::fs::write(&attribution, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        warehouse.join("fct_sessions/session_date=2025-03-01/extra.parquet"),
        "not parquet",
    )
    .unwrap();
    std::fs::create_dir(warehouse.join("fct_sessions/backup")).unwrap();
    let out = dir.path().join("reports");
    let (_, report) = run(&warehouse, &config, &out, "2025-03-08", &[]);
    let finding = |check: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no {check}: {}", report["findings"]))
            .clone()
    };
    let truncated = finding("attribution:unreadable_file");
    assert_eq!(truncated["severity"], "ERROR");
    let sessions = finding("sessions:unreadable_file");
    let message = sessions["message"].as_str().unwrap();
    assert!(message.contains("2 part(s) cannot be read"), "{message}");
    assert!(message.contains("extra.parquet"), "{message}");
    assert!(
        message.contains("folder `backup` is not a partition (`key=value`)"),
        "{message}"
    );
}

#[test]
fn hostile_column_and_channel_names_are_data_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = hostile_warehouse(dir.path());
    let server = Server::start();
    server.load_warehouse("hostile", &warehouse);
    let report = assert_equivalent(&warehouse, &config, "2025-03-08", &[], (&server, "hostile"));
    // The hostile channel is a channel like any other, and every table is still there.
    assert_hostile_channel_counted(&report);
    for table in ["fct_sessions", "fct_orders", "fct_attribution"] {
        server.sql("hostile", &format!("SELECT 1 FROM \"{table}\" LIMIT 1"));
    }
}

#[test]
fn text_numbers_and_their_edges_mean_the_same_in_postgres_as_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = edge_numbers_warehouse(dir.path());
    let server = Server::start();
    server.load_warehouse("edges", &warehouse);
    let csv = all_metrics(&warehouse, dir.path(), "csv");
    let pg = all_metrics(Path::new(&server.url("edges")), dir.path(), "pg");
    assert_same_metrics(&csv, &pg, "PostgreSQL");
}
