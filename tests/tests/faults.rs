//! Fault injection: on a 90-day demo warehouse with weekly seasonality, each injected fault is
//! flagged on its day by the right check, and the clean warehouse gives no ERROR.

use std::path::Path;

use serde_json::Value;
use vigil_tests::vigil;

const END: &str = "2025-03-31";

/// Generates the demo warehouse with `faults` in `dir` and runs vigil on its last day.
fn run_demo(dir: &Path, faults: &str) -> Value {
    let mut args = vec![
        "demo".to_string(),
        "--out".into(),
        dir.display().to_string(),
        "--days".into(),
        "90".into(),
        "--sessions-per-day".into(),
        "1000".into(),
        "--end-date".into(),
        END.into(),
    ];
    if !faults.is_empty() {
        args.extend(["--faults".into(), faults.into()]);
    }
    let demo = vigil(&args);
    assert_eq!(demo.code, 0, "{demo:?}");
    let run = vigil([
        "run".as_ref(),
        "--warehouse_dir".as_ref(),
        dir.join("warehouse").as_os_str(),
        "--rules".as_ref(),
        dir.join("vigil.yml").as_os_str(),
        "--output_dir".as_ref(),
        dir.join("reports").as_os_str(),
        "--expected_run_date".as_ref(),
        END.as_ref(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(dir.join("reports/monitoring_report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn has(report: &Value, severity: &str, check: &str, on_end_day: bool) -> bool {
    report["findings"].as_array().unwrap().iter().any(|f| {
        f["severity"] == severity
            && f["check"] == check
            && (!on_end_day || f["partition_date"] == END)
    })
}

fn listing(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["severity"], f["check"], f["partition_date"]))
        .collect()
}

#[test]
fn a_clean_90_day_warehouse_with_weekly_seasonality_gives_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_demo(dir.path(), "");
    assert_eq!(report["counts"]["ERROR"], 0, "{:#?}", listing(&report));
    assert_eq!(report["verdict"], "PASS", "{:#?}", listing(&report));
    assert_eq!(report["tables"][2]["days_with_rows"], 90);
}

#[test]
fn every_injected_fault_is_flagged_by_the_right_check() {
    // (fault, severity, check, dated on the faulty day)
    let expectations = [
        (
            "missing-day",
            "ERROR",
            "completeness:sessions_missing_days",
            false,
        ),
        ("partial-load", "ERROR", "volume:sessions_floor", true),
        ("duplicates", "ERROR", "orders:duplicate_transactions", true),
        ("negative-revenue", "ERROR", "orders:negative_revenue", true),
        (
            "zero-revenue-spike",
            "ERROR",
            "orders:zero_revenue_orders",
            true,
        ),
        // The purchases are lost at payment (the sessions keep their checkout), so the step that
        // breaks is checkout to purchase.
        (
            "conversion-drop",
            "WARN",
            "funnel:checkout_started_to_purchases",
            true,
        ),
        ("revenue-spike", "ERROR", "anomaly:revenue", true),
        (
            "channel-shift-to-direct",
            "WARN",
            "anomaly:channel_session_share",
            true,
        ),
        (
            "channel-disappearing",
            "WARN",
            "anomaly:channel_disappeared",
            true,
        ),
        ("null-spike", "ERROR", "sessions:null_rate:client_id", true),
        (
            "unparsable-timestamps",
            "ERROR",
            "sessions:unparsable_dates",
            true,
        ),
        ("renamed-column", "ERROR", "orders:required_columns", false),
    ];
    let mut missed = Vec::new();
    for (fault, severity, check, dated) in expectations {
        let dir = tempfile::tempdir().unwrap();
        let report = run_demo(dir.path(), fault);
        if !has(&report, severity, check, dated) {
            missed.push(format!(
                "{fault}: no {severity} {check}; found {:?}",
                listing(&report)
            ));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn the_missing_day_and_the_disappeared_channel_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_demo(dir.path(), "missing-day,channel-disappearing");
    let findings = report["findings"].as_array().unwrap();
    let missing = findings
        .iter()
        .find(|f| f["check"] == "completeness:sessions_missing_days")
        .unwrap();
    assert_eq!(
        missing["context"]["missing_days"],
        serde_json::json!(["2025-03-28"])
    );
    let vanished = findings
        .iter()
        .find(|f| f["check"] == "anomaly:channel_disappeared")
        .unwrap();
    assert_eq!(vanished["context"]["channel"], "google_ads");
}
