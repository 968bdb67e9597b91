//! `vigil run` end to end on the real Puffy warehouse and on damaged copies of it.

use std::fs;
use std::path::Path;

use serde_json::Value;
use vigil_tests::{checks, json_report, puffy, puffy_copy, vigil, vigil_run, Output};

fn run(warehouse: &Path, out: &Path, date: &str, extra: &[&str]) -> Output {
    let rules = puffy().join("monitoring_rules.reference.yml");
    vigil_run(warehouse, &rules, out, date, extra)
}

fn report(out: &Path) -> Value {
    json_report(out)
}

#[test]
fn the_puffy_partition_of_03_08_passes_and_both_reports_are_written() {
    let out = tempfile::tempdir().unwrap();
    let result = run(
        &puffy().join("warehouse"),
        out.path(),
        "2025-03-08",
        &["--fail_on_error"],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let json = report(out.path());
    assert_eq!(json["expected_partition_date"], "2025-03-08");
    assert_eq!(
        json["counts"],
        serde_json::json!({"ERROR": 0, "WARN": 0, "INFO": 0})
    );
    assert_eq!(
        json["routing"]["routing_plan"]["ERROR"][0],
        "pagerduty://puffy-analytics"
    );
    assert_eq!(json["config_format"], "reference");
    assert_eq!(json["vigil_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["verdict"], "PASS");
    let sessions = &json["tables"].as_array().unwrap()[2];
    assert_eq!(sessions["table"], "sessions");
    // All 38,267 sessions parse, including the 36 whole-second timestamps the reference drops.
    assert_eq!(sessions["rows"], 38267);
    assert_eq!(sessions["unparsable_dates"], 0);
    assert_eq!(
        (
            sessions["first_day"].as_str(),
            sessions["last_day"].as_str()
        ),
        (Some("2025-02-23"), Some("2025-03-08"))
    );
    let md = fs::read_to_string(out.path().join("monitoring_report.md")).unwrap();
    assert!(md.starts_with("# Daily Monitoring Report: PASS\n"), "{md}");
    assert!(md.contains("No issues detected."));
    assert!(
        result
            .stdout
            .contains("vigil: PASS for partition 2025-03-08: 0 ERROR, 0 WARN, 0 INFO"),
        "{}",
        result.stdout
    );
}

#[test]
fn the_example_config_sees_the_referrer_incident_on_03_08() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    let example = vigil_tests::repo_root().join("schema/examples/puffy.yml");
    let result = vigil_run(
        &copy.path().join("warehouse"),
        &example,
        &out,
        "2025-03-08",
        &[],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let json = report(&out);
    assert_eq!(json["config_format"], "native");
    // The referrer column is missing from the raw events since 03-04: sessions fall back to
    // `direct`, whose session share stays near 63% against a baseline of 36%, and
    // `google_organic` and `internal` vanish; each is named as a level since 03-04.
    assert_eq!(
        checks(&json),
        [
            "anomaly:channel_disappeared",
            "anomaly:channel_disappeared",
            "anomaly:channel_session_share",
            "funnel:checkout_started_to_purchases"
        ]
    );
    let subjects: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["context"]["channel"].as_str())
        .collect();
    assert_eq!(subjects, ["google_organic", "internal", "direct"]);
    for finding in &json["findings"].as_array().unwrap()[..3] {
        let message = finding["message"].as_str().unwrap();
        assert!(
            message.ends_with("; new level since 2025-03-04 (5 days)"),
            "{message}"
        );
    }
    let shift = &json["findings"][2];
    assert_eq!(
        (
            shift["severity"].as_str(),
            shift["context"]["channel"].as_str()
        ),
        (Some("WARN"), Some("direct"))
    );
    assert!(
        (shift["value"].as_f64().unwrap() - 0.635).abs() < 0.001,
        "{shift}"
    );
    assert_eq!(json["findings"][3]["severity"], "INFO");
}

#[test]
fn a_late_partition_fails_quarantines_an_identical_snapshot_and_exits_1() {
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    let out = copy.path().join("reports");
    let result = run(&warehouse, &out, "2025-03-09", &["--fail_on_error"]);
    assert_eq!(result.code, 1, "{result:?}");
    let json = report(&out);
    assert_eq!(
        checks(&json),
        ["freshness:orders_partition", "freshness:sessions_partition"]
    );
    let finding = &json["findings"][1];
    assert_eq!(finding["severity"], "ERROR");
    assert_eq!(finding["partition_date"], "2025-03-09");
    assert_eq!(finding["value"], 1.0);
    assert_eq!(finding["context"]["latest_partition"], "2025-03-08");
    assert!(result.stdout.starts_with(
        "[ERROR] 2 finding(s) -> pagerduty://puffy-analytics, slack://#data-alerts\n"
    ));

    // The snapshot: next to the warehouse (relative target, resolved against its parent).
    let recorded = fs::read_to_string(out.join("quarantine_path.txt")).unwrap();
    let snapshot = Path::new(&recorded);
    assert_eq!(snapshot.parent().unwrap(), copy.path().join("quarantine"));
    assert_eq!(json["quarantine_path"], recorded.as_str());
    for entry in fs::read_dir(&warehouse).unwrap() {
        let entry = entry.unwrap();
        let copied = fs::read(snapshot.join(entry.file_name())).unwrap();
        assert!(
            copied == fs::read(entry.path()).unwrap(),
            "{:?} differs",
            entry.file_name()
        );
    }
    let reason = fs::read_to_string(snapshot.join("REASON.txt")).unwrap();
    assert!(
        reason.contains("- ERROR freshness:sessions_partition (2025-03-09)"),
        "{reason}"
    );
    // Nothing else was left in the quarantine folder (no partial snapshot).
    assert_eq!(
        fs::read_dir(copy.path().join("quarantine"))
            .unwrap()
            .count(),
        1
    );

    // Without --fail_on_error the same run exits 0, and makes a second, distinct snapshot.
    let again = run(&warehouse, &out, "2025-03-09", &[]);
    assert_eq!(again.code, 0);
    assert_eq!(
        fs::read_dir(copy.path().join("quarantine"))
            .unwrap()
            .count(),
        2
    );

    // A later clean run removes the stale quarantine_path.txt.
    let clean = run(&warehouse, &out, "2025-03-08", &[]);
    assert_eq!(clean.code, 0);
    assert!(!out.join("quarantine_path.txt").exists());
}

#[test]
fn a_missing_table_file_is_a_finding_and_the_reports_are_still_written() {
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    fs::remove_file(warehouse.join("fct_orders.csv")).unwrap();
    let out = copy.path().join("reports");
    let result = run(&warehouse, &out, "2025-03-08", &["--fail_on_error"]);
    assert_eq!(result.code, 1, "{result:?}");
    let json = report(&out);
    assert_eq!(
        checks(&json),
        [
            "orders:missing_file",
            "anomaly:channel_share_skipped",
            "anomaly:skipped",
            "freshness:orders_skipped",
            "revenue:skipped"
        ]
    );
    assert!(json["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("fct_orders.csv does not exist"));
    assert_eq!(json["tables"][1]["status"], "missing");
}

#[test]
fn a_missing_required_column_is_a_finding_and_only_dependent_checks_skip() {
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    let path = warehouse.join("fct_sessions.csv");
    let text = fs::read_to_string(&path).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    fs::write(
        &path,
        format!("{}\n{rest}", header.replace("session_id", "sess_id")),
    )
    .unwrap();
    let out = copy.path().join("reports");
    let result = run(&warehouse, &out, "2025-03-08", &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let json = report(&out);
    assert_eq!(
        checks(&json),
        [
            "sessions:required_columns",
            "anomaly:channel_session_share_skipped",
            "anomaly:skipped",
            "volume:sessions_floor_skipped"
        ]
    );
    assert_eq!(
        json["findings"][0]["context"]["missing"],
        serde_json::json!(["session_id"])
    );
    let skipped = json["findings"][3]["message"].as_str().unwrap();
    assert_eq!(
        skipped,
        "Check `volume:sessions_floor` skipped: column `session_id` is missing from fct_sessions.csv"
    );
}

#[test]
fn a_zero_byte_file_is_a_finding() {
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    fs::write(warehouse.join("fct_attribution.csv"), "").unwrap();
    let out = copy.path().join("reports");
    let result = run(&warehouse, &out, "2025-03-08", &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let json = report(&out);
    assert_eq!(
        checks(&json),
        ["attribution:empty_file", "anomaly:channel_share_skipped"]
    );
    assert_eq!(json["tables"][0]["status"], "empty");
}

#[test]
fn invocation_errors_exit_2_with_a_clear_message() {
    let out = tempfile::tempdir().unwrap();
    let warehouse = puffy().join("warehouse");
    let bad_date = run(&warehouse, out.path(), "08/03/2025", &[]);
    assert_eq!(bad_date.code, 2);
    assert!(
        bad_date
            .stderr
            .contains("`08/03/2025` is not a date; use YYYY-MM-DD"),
        "{}",
        bad_date.stderr
    );

    let no_warehouse = run(&out.path().join("nope"), out.path(), "2025-03-08", &[]);
    assert_eq!(no_warehouse.code, 2);
    assert!(
        no_warehouse
            .stderr
            .contains("does not exist or is not a folder"),
        "{}",
        no_warehouse.stderr
    );

    let no_config = vigil([
        "run",
        "--warehouse_dir",
        "x",
        "--rules",
        "/nonexistent/rules.yml",
    ]);
    assert_eq!(no_config.code, 2);
    assert!(
        no_config
            .stderr
            .contains("/nonexistent/rules.yml: cannot read config"),
        "{}",
        no_config.stderr
    );

    let unknown_flag = vigil(["run", "--warehouse_dir", "x", "--bogus"]);
    assert_eq!(unknown_flag.code, 2);
    assert!(!fs::exists(out.path().join("monitoring_report.json")).unwrap());
}

#[test]
fn reference_flags_work_in_kebab_case_and_as_prefixes() {
    let out = tempfile::tempdir().unwrap();
    let warehouse = puffy().join("warehouse");
    let rules = puffy().join("monitoring_rules.reference.yml");
    let kebab = vigil([
        "run".as_ref(),
        "--warehouse-dir".as_ref(),
        warehouse.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--output-dir".as_ref(),
        out.path().as_os_str(),
        "--expected-run-date".as_ref(),
        "20250308".as_ref(),
        "--fail-on-error".as_ref(),
    ]);
    assert_eq!(kebab.code, 0, "{kebab:?}");
    let prefix = vigil([
        "run".as_ref(),
        "--warehouse".as_ref(),
        warehouse.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--output".as_ref(),
        out.path().as_os_str(),
        "--expected".as_ref(),
        "2025-03-08T23:00:00Z".as_ref(),
    ]);
    assert_eq!(prefix.code, 0, "{prefix:?}");
    assert_eq!(report(out.path())["expected_partition_date"], "2025-03-08");
}

#[test]
fn help_documents_the_exit_codes() {
    let help = vigil(["run", "--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout
            .contains("1  ERROR findings and --fail_on_error"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("--expected_run_date <DATE>"));
}

#[test]
fn sixteen_threads_give_exactly_what_one_thread_gives() {
    let dir = tempfile::tempdir().unwrap();
    let demo = vigil_tests::vigil([
        "demo".as_ref(),
        "--out".as_ref(),
        dir.path().as_os_str(),
        "--days".as_ref(),
        "35".as_ref(),
        "--sessions-per-day".as_ref(),
        "3000".as_ref(),
        "--end-date".as_ref(),
        "2025-03-31".as_ref(),
        "--faults".as_ref(),
        "unparsable-timestamps,channel-shift-to-direct".as_ref(),
    ]);
    assert_eq!(demo.code, 0, "{demo:?}");
    let warehouse = dir.path().join("warehouse");
    let sessions = fs::metadata(warehouse.join("fct_sessions.csv"))
        .unwrap()
        .len();
    assert!(
        sessions > 32 << 20,
        "large enough to be read in parallel: {sessions} bytes"
    );
    let run = |threads: &str| {
        let out = dir.path().join(format!("reports-{threads}"));
        let metrics = dir.path().join(format!("metrics-{threads}.json"));
        let result = vigil_tests::vigil_run(
            &warehouse,
            &dir.path().join("vigil.yml"),
            &out,
            "2025-03-31",
            &[
                "--no-alerts",
                "--threads",
                threads,
                "--metrics-out",
                metrics.to_str().unwrap(),
            ],
        );
        assert_eq!(result.code, 0, "{result:?}");
        let report = report(&out);
        let metrics: Value = serde_json::from_str(&fs::read_to_string(metrics).unwrap()).unwrap();
        (
            metrics,
            report["findings"].clone(),
            report["observations"].clone(),
        )
    };
    let one = run("1");
    let sixteen = run("16");
    assert!(one.1.as_array().unwrap().len() >= 2, "{}", one.1);
    // Sums may be added in another order: equal within 1e-12 relative, all else exactly.
    let same = |a: &Value, b: &Value| vigil_tests::same_json(a, b, 1e-12);
    assert!(same(&one.0, &sixteen.0), "metrics differ");
    assert_eq!(one.1, sixteen.1);
    assert!(same(&one.2, &sixteen.2), "observations differ");
}

#[test]
fn quarantine_follows_the_flags_keeps_the_last_snapshots_and_never_writes_into_the_warehouse() {
    let copy = puffy_copy();
    let warehouse = copy.path().join("warehouse");
    let target = copy.path().join("snapshots");
    let config = copy.path().join("vigil.yml");
    let text = fs::read_to_string(vigil_tests::repo_root().join("schema/examples/puffy.yml"))
        .unwrap()
        .replace(
            "quarantine_target_dir: quarantine",
            &format!(
                "quarantine_target_dir: {}\n  quarantine_keep_last: 2",
                target.display()
            ),
        );
    fs::write(&config, &text).unwrap();
    let out = copy.path().join("reports");
    let snapshots = || -> usize { fs::read_dir(&target).map(|d| d.count()).unwrap_or(0) };
    // 03-09 is late: ERROR. A dry run or --no-quarantine takes no snapshot.
    for flags in [&["--no-alerts"][..], &["--no-quarantine"]] {
        let run = vigil_run(&warehouse, &config, &out, "2025-03-09", flags);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(snapshots(), 0, "{flags:?}");
        assert!(!out.join("quarantine_path.txt").exists());
    }
    // Three snapshots asked for, the last two kept.
    for n in 1..=3 {
        let run = vigil_run(
            &warehouse,
            &config,
            &out,
            "2025-03-09",
            &["--no-alerts", "--quarantine"],
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(snapshots(), n.min(2));
        if n == 3 {
            assert!(
                run.stderr.contains("removed 1 older snapshot(s)"),
                "{}",
                run.stderr
            );
        }
        let recorded = fs::read_to_string(out.join("quarantine_path.txt")).unwrap();
        assert!(Path::new(&recorded).exists(), "the newest is kept");
    }
    // Reports or snapshots inside the warehouse folder: refused before anything is read.
    let inside = warehouse.join("reports");
    let run = vigil_run(&warehouse, &config, &inside, "2025-03-09", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("is inside the warehouse folder")
            && run.stderr.contains("vigil never writes into the warehouse"),
        "{}",
        run.stderr
    );
    assert!(!inside.exists());
    fs::write(
        &config,
        text.replace(
            &target.display().to_string(),
            &warehouse.join("q").display().to_string(),
        ),
    )
    .unwrap();
    let run = vigil_run(&warehouse, &config, &out, "2025-03-09", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("the quarantine folder"),
        "{}",
        run.stderr
    );
    assert!(!warehouse.join("q").exists());
}
