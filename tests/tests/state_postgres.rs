//! The state store in PostgreSQL (`--state postgres://...`), against a real server started by
//! the tests: the incident lifecycle across runs gives the same findings and incident states as
//! the SQLite store; silences and `vigil history`; two runs at once; a newer or foreign schema
//! and an unreachable server are exit 2 naming the database, never its password.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_tests::pg::Server;
use vigil_tests::{
    json_report, kill_runs_at, open_incidents, state_history, vigil, vigil_run, Output,
};

/// The demo warehouse of these tests (500 sessions a day) ending on `end`, into `dir`.
fn demo(dir: &Path, end: &str, faults: &str) -> PathBuf {
    vigil_tests::demo_warehouse(dir, end, faults, 500)
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("vigil.yml");
    std::fs::write(
        &path,
        "version: 1\nrules:\n  freshness: {}\n  revenue: {max_zero_revenue_orders: 1}\n",
    )
    .unwrap();
    path
}

/// `vigil run` of `dir/warehouse` for `day` with the store at `state`, reports in `dir/out`.
fn run(dir: &Path, out: &str, day: &str, state: &str) -> (Output, Value) {
    let config = dir.join("vigil.yml");
    let out_dir = dir.join(out);
    let run = vigil_run(
        &dir.join("warehouse"),
        &config,
        &out_dir,
        day,
        &["--state", state],
    );
    assert_eq!(run.code, 0, "{run:?}");
    (run, json_report(&out_dir))
}

/// What a report says of each finding and its incident, and the run's incident counts.
fn judged(report: &Value) -> Value {
    let findings: Vec<Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            serde_json::json!([
                f["fingerprint"],
                f["severity"],
                f["incident"]["status"],
                f["incident"]["first_seen"],
                f["incident"]["runs"]
            ])
        })
        .collect();
    serde_json::json!({
        "findings": findings,
        "incidents": report["state"]["incidents"],
        "resolved": report["state"]["resolved"].as_array().unwrap().len(),
    })
}

/// The incidents of a history without their ids.
fn incidents(history: &Value) -> Vec<Value> {
    history["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let mut i = i.clone();
            i.as_object_mut().unwrap().remove("id");
            i
        })
        .collect()
}

#[test]
fn incidents_open_continue_and_resolve_in_postgres_as_in_sqlite() {
    let server = Server::start();
    server.sql("postgres", "CREATE DATABASE state");
    // Any password: the test server trusts local connections; it must never show.
    let url = server
        .url("state")
        .replace("postgres@", "postgres:pw-s3cret@");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let sqlite = dir.path().join("state.sqlite").display().to_string();
    let mut reports = Vec::new();
    for (day, faults) in [
        ("2025-03-10", "negative-revenue"),
        ("2025-03-10", "negative-revenue"),
        ("2025-03-11", "negative-revenue"),
        ("2025-03-12", ""),
    ] {
        demo(dir.path(), day, faults);
        let (pg_run, pg) = run(dir.path(), "pg", day, &url);
        let (_, lite) = run(dir.path(), "lite", day, &sqlite);
        assert_eq!(judged(&pg), judged(&lite), "day {day}");
        let written =
            std::fs::read_to_string(dir.path().join("pg/monitoring_report.json")).unwrap();
        assert!(
            !written.contains("pw-s3cret") && !pg_run.stdout.contains("pw-s3cret"),
            "the password shows"
        );
        assert_eq!(
            pg["state"]["store"],
            Value::from(url.replace(":pw-s3cret@", ":***@"))
        );
        reports.push(pg);
    }
    let print = "revenue/orders:negative_revenue";
    let incident = |r: &Value| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fingerprint"] == print)
            .map(|f| f["incident"].clone())
            .unwrap_or_else(|| panic!("no {print} finding: {r}"))
    };
    assert_eq!(incident(&reports[0])["status"], "new");
    assert_eq!(incident(&reports[1])["status"], "ongoing");
    assert_eq!(reports[1]["state"]["incidents"]["new"], 0);
    assert_eq!(incident(&reports[1])["runs"], 1);
    assert_eq!(incident(&reports[2])["status"], "ongoing");
    assert_eq!(incident(&reports[2])["runs"], 2);
    assert_eq!(incident(&reports[2])["first_seen"], "2025-03-10");
    assert!(
        reports[3]["state"]["resolved"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["fingerprint"] == print),
        "{}",
        reports[3]["state"]
    );

    let pg = state_history(&url);
    assert_eq!(pg["runs"].as_array().unwrap().len(), 4);
    let lite = state_history(&sqlite);
    assert_eq!(incidents(&pg), incidents(&lite));
    let incident = incidents(&pg)
        .into_iter()
        .find(|i| i["fingerprint"] == print)
        .unwrap();
    assert_eq!(
        (
            &incident["status"],
            &incident["first_seen"],
            &incident["runs"],
            &incident["resolved_on"]
        ),
        (
            &Value::from("resolved"),
            &Value::from("2025-03-10"),
            &Value::from(2),
            &Value::from("2025-03-12")
        )
    );
    // The daily metrics view reads the stored series.
    server.sql(
        "state",
        "DO $$ BEGIN IF (SELECT count(*) FROM vigil_state.daily_metrics \
         WHERE day IS NOT NULL AND value IS NOT NULL) = 0 \
         THEN RAISE 'no daily metrics'; END IF; END $$",
    );
}

#[test]
fn silences_and_history_live_in_postgres() {
    let server = Server::start();
    server.sql("postgres", "CREATE DATABASE state");
    let url = server.url("state");

    // No store yet: listing is an error naming the database; nothing is created.
    let out = vigil(["silence", "list", "--state", &url]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("state store {url} does not exist")),
        "{out:?}"
    );

    let out = vigil([
        "silence",
        "add",
        "anomaly:channel_share",
        "--subject",
        "direct",
        "--until",
        "2025-03-20",
        "--reason",
        "campaign",
        "--state",
        &url,
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("silence #1 added: "), "{out:?}");
    let out = vigil(["silence", "list", "--state", &url, "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["silences"][0]["check"], "anomaly:channel_share");
    assert_eq!(list["silences"][0]["subject"], "direct");
    assert_eq!(list["silences"][0]["reason"], "campaign");
    let out = vigil(["silence", "remove", "1", "--state", &url]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = vigil(["silence", "remove", "1", "--state", &url]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = vigil(["silence", "list", "--state", &url]);
    assert!(out.stdout.starts_with("no silences in "), "{out:?}");

    // The history of a store without runs.
    let out = vigil(["history", "--state", &url]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("Runs (0):"), "{out:?}");
}

/// Runs one `vigil run` from the environment, for the concurrency and kill test (a child
/// process).
#[test]
#[ignore = "run as a child process by the test below"]
fn state_postgres_child() {
    let var = |name: &str| std::env::var(name).expect(name);
    let dir = PathBuf::from(var("VIGIL_TEST_DIR"));
    let out = vigil_run(
        &dir.join("warehouse"),
        &dir.join("vigil.yml"),
        &dir.join(var("VIGIL_TEST_OUT")),
        "2025-03-10",
        &["--state", &var("VIGIL_TEST_STATE")],
    );
    eprintln!("{}", out.stderr);
    std::process::exit(out.code);
}

#[test]
fn runs_at_once_open_each_incident_once_and_a_killed_run_leaves_no_trace() {
    let server = Server::start();
    server.sql("postgres", "CREATE DATABASE state");
    let url = server.url("state");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    demo(dir.path(), "2025-03-10", "negative-revenue");
    let spawn = |out: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state_postgres_child",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env("VIGIL_TEST_DIR", dir.path())
            .env("VIGIL_TEST_OUT", out)
            .env("VIGIL_TEST_STATE", &url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Twice, so the second pair also finds the store there.
    for round in 0..2 {
        let (a, b) = (spawn("ra"), spawn("rb"));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert_eq!(
            (a.status.code(), b.status.code()),
            (Some(0), Some(0)),
            "round {round}: {a:?} {b:?}"
        );
    }
    let after = state_history(&url);
    assert_eq!(after["runs"].as_array().unwrap().len(), 4);
    assert!(!open_incidents(&after).is_empty());

    // Killed at various moments: the database holds the previous state, or the whole new run
    // (the connection drops and the server aborts an uncommitted transaction).
    kill_runs_at(&url, &[5, 40, 120, 300, 700], || spawn("rk"));
}

#[test]
fn a_newer_or_foreign_store_or_an_unreachable_server_is_exit_2_without_the_password() {
    let server = Server::start();
    server.sql("postgres", "CREATE DATABASE state");
    server.sql("postgres", "CREATE DATABASE other");
    let url = server
        .url("state")
        .replace("postgres@", "postgres:pw-s3cret@");
    let shown = url.replace(":pw-s3cret@", ":***@");
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    demo(dir.path(), "2025-03-10", "");
    run(dir.path(), "first", "2025-03-10", &url);

    server.sql("state", "UPDATE vigil_state.vigil_version SET version = 99");
    let attempt = |state: &str, out: &str| {
        vigil_run(
            &dir.path().join("warehouse"),
            &dir.path().join("vigil.yml"),
            &dir.path().join(out),
            "2025-03-10",
            &["--state", state],
        )
    };
    let out = attempt(&url, "newer");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the state store {shown} was written by a newer vigil (store version 99"
        )),
        "{out:?}"
    );
    assert!(!out.stderr.contains("pw-s3cret"), "{out:?}");
    assert!(!dir.path().join("newer/monitoring_report.json").exists());
    let out = vigil(["history", "--state", &url]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("store version 99"), "{out:?}");

    // A schema `vigil_state` that is someone else's is left alone.
    server.sql(
        "other",
        "CREATE SCHEMA vigil_state; CREATE TABLE vigil_state.runs (x int)",
    );
    let other = server.url("other");
    let out = attempt(&other, "foreign");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("{other} is not a usable vigil state store"))
            && out.stderr.contains("it is not vigil's"),
        "{out:?}"
    );
    server.sql(
        "other",
        "DO $$ BEGIN IF (SELECT count(*) FROM pg_tables WHERE schemaname = 'vigil_state') <> 1 \
         THEN RAISE 'the foreign schema changed'; END IF; END $$",
    );

    // No server: exit 2 within the connect timeout, naming host, port, database and user.
    let started = Instant::now();
    let down = "postgres://vigil:pw-s3cret@127.0.0.1:1/wh";
    let out = vigil(["history", "--state", down]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        out.stderr
            .contains("cannot connect to PostgreSQL at 127.0.0.1:1, database `wh` as user `vigil`"),
        "{out:?}"
    );
    let out = attempt(down, "down");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        !out.stderr.contains("pw-s3cret") && !out.stdout.contains("pw-s3cret"),
        "{out:?}"
    );
}
