//! The Spark source on a real standalone cluster (one master, two 1-core workers, the Spark
//! Connect server; see `vigil_tests::spark`): the same rows as CSV files and as Parquet tables
//! in the cluster give identical findings (severity, check, date, message; numbers within 1e-9
//! relative) and row counts, on the Puffy warehouse with the native and the reference config
//! (both scopes, the reference's 14 findings in `--scope all`), as plain files and as
//! hive-partitioned datasets, on demo warehouses with each fault, with hostile names and with
//! text numbers at the edges of the grammar; a quarantine exports the judged partition's rows
//! as CSV that reads back; both workers run tasks.
//! A missing relation is a finding; an unreachable server or a query past its timeout is exit 2
//! in seconds.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_tests::equivalence::{
    all_metrics, assert_hostile_channel_counted, assert_same_findings, assert_same_metrics,
    assert_same_rows, demo, edge_numbers_warehouse, hostile_warehouse, run, to_parquet, Layout,
    DEMO_FAULTS,
};
use vigil_tests::spark::{Cluster, Proxy};
use vigil_tests::{checks, column_values, on_day, puffy, repo_root, vigil_run};

/// Runs `config` on the CSV warehouse and on its Parquet copy (in `layout`) registered as
/// database `db` of the cluster; the findings and rows read agree. Returns the Spark report.
fn assert_equivalent(
    cluster: &Cluster,
    csv_dir: &Path,
    config: &Path,
    date: &str,
    extra: &[&str],
    (db, layout): (&str, Layout),
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (code, csv) = run(csv_dir, config, &dir.path().join("csv"), date, extra);
    let parquet = dir.path().join("parquet");
    to_parquet(csv_dir, &parquet, layout);
    let location = cluster.register(db, &parquet);
    let warehouse = Path::new(&location);
    let (spark_code, spark) = run(warehouse, config, &dir.path().join("spark"), date, extra);
    let what = format!("Spark {layout:?} {} {date} {extra:?}", config.display());
    assert_eq!(code, spark_code, "{what}");
    assert_same_findings((&csv, csv_dir), (&spark, warehouse), &what);
    assert_same_rows(&csv, &spark, &what);
    spark
}

#[test]
fn a_spark_cluster_gives_the_csv_findings_and_both_workers_run_tasks() {
    let cluster = Cluster::start();
    let warehouse = puffy().join("warehouse");
    let native = repo_root().join("schema/examples/puffy.yml");
    let reference = puffy().join("monitoring_rules.reference.yml");
    let files = ("puffy_files", Layout::Files);
    let report = assert_equivalent(&cluster, &warehouse, &native, "2025-03-08", &[], files);
    assert!(!report["findings"].as_array().unwrap().is_empty());
    assert_equivalent(&cluster, &warehouse, &reference, "2025-03-08", &[], files);
    for layout in [files, ("puffy_partitioned", Layout::Partitioned)] {
        let all = assert_equivalent(
            &cluster,
            &warehouse,
            &reference,
            "2025-03-08",
            &["--scope", "all"],
            layout,
        );
        // The reference's 14 findings, reproduced on the cluster.
        assert_eq!(all["findings"].as_array().unwrap().len(), 14, "{layout:?}");
    }

    for (n, fault) in DEMO_FAULTS.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = demo(dir.path(), fault);
        let config = dir.path().join("vigil.yml");
        let db = format!("demo{n}");
        assert_equivalent(
            &cluster,
            &warehouse,
            &config,
            "2025-03-31",
            &[],
            (&db, Layout::Files),
        );
    }

    // Names and values that would end a quoted string are data, not SQL.
    let dir = tempfile::tempdir().unwrap();
    let (hostile, config) = hostile_warehouse(dir.path());
    let hostile_db = ("hostile", Layout::Files);
    let report = assert_equivalent(&cluster, &hostile, &config, "2025-03-08", &[], hostile_db);
    assert_hostile_channel_counted(&report);

    // Text numbers at the edges of the grammar mean what they mean in CSV.
    let dir = tempfile::tempdir().unwrap();
    let edges = edge_numbers_warehouse(dir.path());
    let parquet = dir.path().join("parquet");
    to_parquet(&edges, &parquet, Layout::Files);
    let location = cluster.register("edges", &parquet);
    let csv = all_metrics(&edges, dir.path(), "csv");
    let spark = all_metrics(Path::new(&location), dir.path(), "spark");
    assert_same_metrics(&csv, &spark, "Spark");

    // An ERROR quarantines the judged partition's rows, exported from the cluster as CSV that
    // reads back as the same warehouse (timestamps keep their zone).
    let dir = tempfile::tempdir().unwrap();
    let demo_warehouse = demo(dir.path(), "null-spike");
    let parquet = dir.path().join("parquet");
    to_parquet(&demo_warehouse, &parquet, Layout::Files);
    let location = cluster.register("quarantined", &parquet);
    let target = dir.path().join("snapshots");
    let config_text = std::fs::read_to_string(dir.path().join("vigil.yml")).unwrap();
    let config = dir.path().join("quarantine.yml");
    let quarantining = config_text.replace(
        "quarantine_target_dir: quarantine",
        &format!("quarantine_target_dir: {}", target.display()),
    );
    assert_ne!(quarantining, config_text, "the demo config quarantines");
    std::fs::write(&config, quarantining).unwrap();
    let out = dir.path().join("reports");
    let day = "2025-03-31";
    let flags = ["--no-alerts", "--quarantine"];
    let result = vigil_run(Path::new(&location), &config, &out, day, &flags);
    assert_eq!(result.code, 0, "{result:?}");
    let snapshot = std::fs::read_to_string(out.join("quarantine_path.txt")).unwrap();
    let snapshot = Path::new(&snapshot);
    let sessions = |file: &Path, all: bool| {
        column_values(file, "session_id", |r, h| {
            all || on_day(r, h, "session_start", day)
        })
    };
    let (header, expected) = sessions(&demo_warehouse.join("fct_sessions.csv"), false);
    let (exported_header, exported) = sessions(&snapshot.join("fct_sessions.csv"), true);
    assert_eq!(exported_header, header);
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(exported, expected);
    let check = dir.path().join("check");
    vigil_run(snapshot, &config, &check, day, &["--no-alerts"]);
    let again = checks(&vigil_tests::json_report(&check));
    assert!(
        !again.iter().any(|c| c.ends_with("unparsable_dates")),
        "{again:?}"
    );

    // The queries ran on the cluster: both workers' executors ran tasks.
    let tasks = cluster.tasks_per_executor();
    let busy = tasks.iter().filter(|(_, n)| *n > 0).count();
    assert!(busy >= 2, "executors and their tasks: {tasks:?}");

    // Puffy as Parquet files, kept registered for the rest of the test.
    let kept = tempfile::tempdir().unwrap();
    to_parquet(&warehouse, kept.path(), Layout::Files);
    let files_location = std::path::PathBuf::from(cluster.register("puffy_kept", kept.path()));

    // A relation that is not there is a finding; the others are read.
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("parquet");
    to_parquet(&warehouse, &parquet, Layout::Files);
    std::fs::remove_file(parquet.join("fct_orders.parquet")).unwrap();
    let location = cluster.register("puffy_no_orders", &parquet);
    let out = dir.path().join("reports");
    let (code, report) = run(Path::new(&location), &native, &out, "2025-03-08", &[]);
    assert_eq!(code, 0);
    let found = checks(&report);
    assert!(
        found.contains(&"orders:missing_file".to_string()),
        "{found:?}"
    );
    assert!(
        !found.contains(&"sessions:missing_file".to_string()),
        "{found:?}"
    );

    // An executor killed mid-run: Spark runs its tasks again elsewhere, the findings are the
    // same. The Connect server lost mid-run: exit 2 within the timeout, nothing written.
    let (code, csv) = run(
        &warehouse,
        &reference,
        &dir.path().join("csv"),
        "2025-03-08",
        &[],
    );
    let started = Instant::now();
    let (_, spark) = run(
        &files_location,
        &reference,
        &dir.path().join("again"),
        "2025-03-08",
        &[],
    );
    let half = started.elapsed() / 2;
    assert_same_findings(
        (&csv, &warehouse),
        (&spark, &files_location),
        "before the kill",
    );
    let app = cluster.application();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(half);
        kill_one_executor(&app)
    });
    let out = dir.path().join("killed");
    let (killed_code, killed) = run(&files_location, &reference, &out, "2025-03-08", &[]);
    assert!(
        killer.join().unwrap(),
        "no executor of the application to kill"
    );
    assert_eq!(code, killed_code);
    assert_same_findings(
        (&csv, &warehouse),
        (&killed, &files_location),
        "executor killed",
    );

    let proxy = Proxy::to(cluster.url.trim_start_matches("sc://"));
    let through = format!(
        "sc://127.0.0.1:{}/;database=puffy_kept;timeout=15",
        proxy.port
    );
    let out = dir.path().join("cut");
    let started = Instant::now();
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(half);
        proxy.cut();
    });
    let result = vigil_run(Path::new(&through), &reference, &out, "2025-03-08", &[]);
    cutter.join().unwrap();
    assert_eq!(result.code, 2, "{result:?}");
    assert!(result.stderr.contains("cannot read table"), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{result:?}");
    assert!(!out.join("monitoring_report.json").exists());

    // A query past its timeout stops the run with exit 2, in seconds, and writes nothing.
    let out = dir.path().join("timeout");
    let started = Instant::now();
    let slow = format!("{}/;database=puffy_kept;timeout=0.05", cluster.url);
    let result = vigil_run(Path::new(&slow), &native, &out, "2025-03-08", &[]);
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result.stderr.contains("no answer within 0.05 s"),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.join("monitoring_report.json").exists());

    // A database that does not exist is named at once.
    let result = vigil_run(
        Path::new(&format!("{}/;database=no_such_db", cluster.url)),
        &native,
        &out,
        "2025-03-08",
        &[],
    );
    assert_eq!(result.code, 2, "{result:?}");
    assert!(result.stderr.contains("no_such_db"), "{result:?}");
}

#[test]
fn a_result_stream_the_server_ends_early_is_exit_2_not_a_partial_answer() {
    // A Connect server that ends every result stream after 50 ms (the client should reattach;
    // this one takes the end for the whole answer): no table may be read as empty.
    let cluster = Cluster::own("spark.connect.execute.reattachable.senderMaxStreamDuration=50ms");
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("parquet");
    to_parquet(&puffy().join("warehouse"), &parquet, Layout::Files);
    let location = cluster.register("puffy", &parquet);
    let out = dir.path().join("reports");
    let config = puffy().join("monitoring_rules.reference.yml");
    let result = vigil_run(Path::new(&location), &config, &out, "2025-03-08", &[]);
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result.stderr.contains("before its end")
            && result.stderr.contains("senderMaxStreamDuration"),
        "{result:?}"
    );
    assert!(!out.join("monitoring_report.json").exists());
}

#[test]
fn an_unreachable_spark_server_is_exit_2_at_once_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo_root().join("schema/examples/puffy.yml");
    let started = Instant::now();
    let result = vigil_run(
        Path::new("sc://127.0.0.1:1/;token=s3cret"),
        &config,
        &dir.path().join("out"),
        "2025-03-08",
        &[],
    );
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result
            .stderr
            .contains("cannot connect to the Spark Connect server at sc://127.0.0.1:1/;token=***"),
        "{result:?}"
    );
    assert!(!result.stderr.contains("s3cret"), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Kills (SIGKILL) one executor process of the Spark application `app`; whether one was found.
fn kill_one_executor(app: &str) -> bool {
    let listed = std::process::Command::new("pgrep")
        .args(["-f", &format!("CoarseGrainedExecutorBackend.*{app}")])
        .output()
        .expect("pgrep runs");
    let pids = String::from_utf8_lossy(&listed.stdout);
    let Some(pid) = pids.split_whitespace().next() else {
        return false;
    };
    std::process::Command::new("kill")
        .args(["-9", pid])
        .status()
        .is_ok_and(|s| s.success())
}
