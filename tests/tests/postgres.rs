//! The PostgreSQL source's errors against a real server: an unreachable server and an unknown
//! user are exit 2 with host, port and database named and no password; a missing relation is
//! the missing-table finding; a statement timeout is a finding, not a hang; the location may
//! come from VIGIL_WAREHOUSE; the reports never show the password.

use std::time::{Duration, Instant};

use vigil_tests::pg::Server;
use vigil_tests::{json_report, puffy, repo_root, vigil, vigil_run};

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
fn missing_relations_are_findings_and_a_statement_timeout_is_not_a_hang() {
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

    let timeout = format!("{}?statement_timeout=0.001", server.url("part"));
    let started = Instant::now();
    let run = vigil_run(timeout.as_ref(), &config, &out, "2025-03-08", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = json_report(&out);
    let unreadable = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "sessions:unreadable_file")
        .unwrap_or_else(|| panic!("{}", report["findings"]));
    assert!(
        unreadable["message"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{unreadable}"
    );
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
