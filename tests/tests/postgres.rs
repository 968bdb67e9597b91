//! The PostgreSQL source's errors against a real server: an unreachable server and an unknown
//! user are exit 2 with host, port and database named and no password; a missing relation is
//! the missing-table finding; a statement timeout is exit 2 (nothing written), not a hang; the location may
//! come from VIGIL_WAREHOUSE; the reports never show the password.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_tests::pg::Server;
use vigil_tests::{column_values, json_report, on_day, puffy, repo_root, vigil, vigil_run};

#[test]
fn an_unreachable_server_or_unknown_user_is_exit_2_without_the_password() {
    let config = repo_root().join("schema/examples/puffy.yml");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = vigil([
        "run".as_ref(),
        "--warehouse".as_ref(),
        "postgres://vigil:s3cret@127.0.0.1:1/wh?connect_timeout=3".as_ref(),
        "--rules".as_ref(),
        config.as_os_str(),
        "--output_dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        out.stderr
            .contains("cannot connect to PostgreSQL at 127.0.0.1:1, database `wh` as user `vigil`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);

    let server = Server::start();
    let unknown = format!("{}?user=nobody&password=s3cret", server.url("postgres"));
    let out = vigil([
        "run".as_ref(),
        "--warehouse".as_ref(),
        unknown.as_ref(),
        "--rules".as_ref(),
        config.as_os_str(),
        "--output_dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("role \"nobody\" does not exist"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn missing_relations_are_findings_and_a_statement_timeout_is_exit_2_not_a_hang() {
    let server = Server::start();
    server.sql("postgres", "CREATE DATABASE part");
    server.load_table("part", &puffy().join("warehouse/fct_sessions.csv"));
    let config = repo_root().join("schema/examples/puffy.yml");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let location = server.url("part").replace("postgres@", "postgres:pw@");
    let run = vigil_run(location.as_ref(), &config, &out, "2025-03-08", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = json_report(&out);
    let checks: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in ["orders:missing_file", "attribution:missing_file"] {
        assert!(checks.contains(&check), "{checks:?}");
    }
    assert!(!checks.contains(&"sessions:missing_file"), "{checks:?}");
    let text = std::fs::read_to_string(out.join("monitoring_report.json")).unwrap();
    assert!(!text.contains(":pw@"), "the password is in the report");
    assert!(report["warehouse_dir"].as_str().unwrap().contains(":***@"));

    // A statement past its timeout is a failure of the source: exit 2, nothing written.
    let timeout = format!("{}?statement_timeout=0.001", server.url("part"));
    let out = dir.path().join("timeout");
    let started = Instant::now();
    let run = vigil_run(timeout.as_ref(), &config, &out, "2025-03-08", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(run.stderr.contains("statement timeout"), "{run:?}");
    assert!(!out.join("monitoring_report.json").exists());
}

#[test]
fn the_location_may_come_from_the_environment() {
    let server = Server::start();
    server.load_warehouse("puffy", &puffy().join("warehouse"));
    let config = repo_root().join("schema/examples/puffy.yml");
    let dir = tempfile::tempdir().unwrap();
    // The only test of this binary that sets it.
    std::env::set_var("VIGIL_WAREHOUSE", server.url("puffy"));
    let out = vigil([
        "run".as_ref(),
        "--rules".as_ref(),
        config.as_os_str(),
        "--output_dir".as_ref(),
        dir.path().as_os_str(),
        "--expected_run_date".as_ref(),
        "2025-03-08".as_ref(),
    ]);
    std::env::remove_var("VIGIL_WAREHOUSE");
    assert_eq!(out.code, 0, "{out:?}");
    let report = json_report(dir.path());
    assert_eq!(report["warehouse_dir"], server.url("puffy"));
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "anomaly:channel_session_share"));
}

/// The values of `column` in the rows of a CSV file that `keep` accepts, sorted.
#[test]
fn quarantine_exports_the_judged_partitions_rows_within_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let demo = vigil([
        "demo".as_ref(),
        "--out".as_ref(),
        dir.path().as_os_str(),
        "--days".as_ref(),
        "20".as_ref(),
        "--sessions-per-day".as_ref(),
        "300".as_ref(),
        "--end-date".as_ref(),
        "2025-03-31".as_ref(),
        "--faults".as_ref(),
        "null-spike".as_ref(),
    ]);
    assert_eq!(demo.code, 0, "{demo:?}");
    let warehouse = dir.path().join("warehouse");
    let server = Server::start();
    server.load_warehouse("demo", &warehouse);
    let target = dir.path().join("snapshots");
    let config_text = std::fs::read_to_string(dir.path().join("vigil.yml")).unwrap();
    let with_limit = |limit: u64| {
        let text = config_text.replace(
            "quarantine_target_dir: quarantine",
            &format!(
                "quarantine_target_dir: {}\n  quarantine_max_bytes: {limit}",
                target.display()
            ),
        );
        assert_ne!(text, config_text, "the demo config quarantines");
        let path = dir.path().join(format!("vigil-{limit}.yml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let out = dir.path().join("reports");
    let run = vigil_run(
        server.url("demo").as_ref(),
        &with_limit(1 << 30),
        &out,
        "2025-03-31",
        &["--no-alerts", "--quarantine"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let snapshot = PathBuf::from(std::fs::read_to_string(out.join("quarantine_path.txt")).unwrap());
    assert!(snapshot.starts_with(&target), "{snapshot:?}");

    // Exactly the rows of 2025-03-31, each table under its own file name, with its columns.
    let day = "2025-03-31";
    let sessions = |file: &Path| {
        column_values(file, "session_id", |r, h| {
            on_day(r, h, "session_start", day)
        })
    };
    let orders =
        |file: &Path| column_values(file, "transaction_id", |r, h| on_day(r, h, "order_ts", day));
    let (header, expected_sessions) = sessions(&warehouse.join("fct_sessions.csv"));
    let (exported_header, exported_sessions) =
        column_values(&snapshot.join("fct_sessions.csv"), "session_id", |_, _| {
            true
        });
    assert_eq!(exported_header, header);
    assert!(expected_sessions.len() > 100, "{}", expected_sessions.len());
    assert_eq!(exported_sessions, expected_sessions);
    let (_, expected_orders) = orders(&warehouse.join("fct_orders.csv"));
    let (_, exported_orders) = column_values(
        &snapshot.join("fct_orders.csv"),
        "transaction_id",
        |_, _| true,
    );
    assert!(!expected_orders.is_empty());
    assert_eq!(exported_orders, expected_orders);
    // Attribution rows are dated by their order.
    let (_, expected_attribution) = column_values(
        &warehouse.join("fct_attribution.csv"),
        "transaction_id",
        |r, _| expected_orders.binary_search(&r[0].to_string()).is_ok(),
    );
    let (_, exported_attribution) = column_values(
        &snapshot.join("fct_attribution.csv"),
        "transaction_id",
        |_, _| true,
    );
    assert_eq!(exported_attribution, expected_attribution);
    // Exported timestamps read back with the CSV grammar: the snapshot is a warehouse itself.
    let check = vigil_run(
        &snapshot,
        &with_limit(1 << 30),
        &dir.path().join("check"),
        day,
        &["--no-alerts", "--quarantine"],
    );
    let report = json_report(&dir.path().join("check"));
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"].as_str().unwrap().ends_with("unparsable_dates")),
        "{check:?}"
    );
    let reason = std::fs::read_to_string(snapshot.join("REASON.txt")).unwrap();
    assert!(
        reason.contains(&format!(
            "- sessions (fct_sessions): {} rows of 2025-03-31 exported to fct_sessions.csv",
            expected_sessions.len()
        )),
        "{reason}"
    );
    assert!(!reason.contains("left out"), "{reason}");

    // A limit below the sessions' rows leaves that table out, listed and warned about.
    let sessions_bytes = std::fs::metadata(snapshot.join("fct_sessions.csv"))
        .unwrap()
        .len();
    let small = sessions_bytes / 2;
    let run = vigil_run(
        server.url("demo").as_ref(),
        &with_limit(small),
        &out,
        day,
        &["--no-alerts", "--quarantine"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let snapshot = PathBuf::from(std::fs::read_to_string(out.join("quarantine_path.txt")).unwrap());
    assert!(!snapshot.join("fct_sessions.csv").exists());
    assert!(snapshot.join("fct_attribution.csv").exists());
    let reason = std::fs::read_to_string(snapshot.join("REASON.txt")).unwrap();
    let line = format!(
        "sessions (fct_sessions): left out: its rows would exceed the snapshot limit of {small} bytes"
    );
    assert!(reason.contains(&line), "{reason}");
    assert!(
        run.stderr
            .contains(&format!("vigil: warning: quarantine: {line}")),
        "{}",
        run.stderr
    );
    // A relative target is beside the reports folder (a database has no folder of its own).
    let relative = dir.path().join("relative.yml");
    std::fs::write(
        &relative,
        config_text.replace(
            "quarantine_target_dir: quarantine",
            "quarantine_target_dir: snaps",
        ),
    )
    .unwrap();
    let run = vigil_run(
        server.url("demo").as_ref(),
        &relative,
        &out,
        day,
        &["--no-alerts", "--quarantine"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let snapshot = PathBuf::from(std::fs::read_to_string(out.join("quarantine_path.txt")).unwrap());
    assert_eq!(snapshot.parent().unwrap(), dir.path().join("snaps"));
    // Nothing partial in the snapshot folder.
    for entry in std::fs::read_dir(&target).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with("warehouse_quarantine_"), "{name}");
    }
}
