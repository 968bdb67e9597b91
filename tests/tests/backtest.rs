//! `vigil backtest`: each day is the daily run on the warehouse as it stood that day (checked
//! against `vigil run` on copies cut at the day), rows dated later change nothing, the alerts
//! follow the incident lifecycle, and nothing of the user's is touched.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vigil_tests::{json_report, puffy, repo_root, vigil, vigil_run, Output};

/// `vigil backtest` over a warehouse folder with a config, writing into `out`.
fn backtest(
    warehouse: &Path,
    rules: &Path,
    out: &Path,
    range: (&str, &str),
    extra: &[&str],
) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "backtest".as_ref(),
        "--warehouse".as_ref(),
        warehouse.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--output_dir".as_ref(),
        out.as_os_str(),
        "--from".as_ref(),
        range.0.as_ref(),
        "--to".as_ref(),
        range.1.as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    vigil(args)
}

/// `backtest.json` written in `out`.
fn read_report(out: &Path) -> Value {
    let text = fs::read_to_string(out.join("backtest.json")).expect("backtest.json written");
    serde_json::from_str(&text).expect("backtest.json is JSON")
}

/// The day `date` of a backtest report.
fn day<'a>(report: &'a Value, date: &str) -> &'a Value {
    report["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no day {date}"))
}

/// Per day: date, verdict, ERROR, WARN, INFO, alerts sent, reminders.
fn summary(report: &Value) -> Vec<(String, String, u64, u64, u64, u64, u64)> {
    report["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| {
            let n = |v: &Value| v.as_u64().expect("a count");
            (
                d["date"].as_str().unwrap().to_string(),
                d["verdict"].as_str().unwrap().to_string(),
                n(&d["counts"]["ERROR"]),
                n(&d["counts"]["WARN"]),
                n(&d["counts"]["INFO"]),
                n(&d["alerts_sent"]),
                n(&d["reminders"]),
            )
        })
        .collect()
}

/// The checks of a day's findings, with their dates.
fn checks(day: &Value) -> Vec<(String, Value)> {
    day["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["partition_date"].clone(),
            )
        })
        .collect()
}

/// A small orders table, 2025-03-01 to 03-10, four orders a day; on 03-04, 03-05 and 03-06 one
/// order is written twice (a duplicate-transaction incident of three days). `before` rows are
/// written first.
fn orders_fixture(dir: &Path, before: &[String]) -> (PathBuf, PathBuf) {
    let warehouse = dir.join("warehouse");
    fs::create_dir_all(&warehouse).unwrap();
    let mut rows = vec!["transaction_id,client_id,order_ts,revenue".to_string()];
    rows.extend(before.iter().cloned());
    for d in 1..=10 {
        for i in 0..4 {
            rows.push(format!(
                "T{d:02}-{i},C{i},2025-03-{d:02}T1{i}:00:00Z,{}",
                100 + 10 * i
            ));
        }
        if (4..=6).contains(&d) {
            rows.push(format!("T{d:02}-0,C0,2025-03-{d:02}T20:00:00Z,100"));
        }
    }
    fs::write(warehouse.join("fct_orders.csv"), rows.join("\n") + "\n").unwrap();
    let config = dir.join("vigil.yml");
    fs::write(
        &config,
        "version: 1\n\
         tables:\n  orders: {file: fct_orders.csv, date_column: order_ts}\n\
         rules:\n  revenue:\n    null_rates: {table: orders, max: {client_id: 0.5}}\n\
         alert_routing:\n  error_channels: [\"pagerduty://team\", \"slack://#data-alerts\"]\n  warn_channels: []\n",
    )
    .unwrap();
    (warehouse, config)
}

#[test]
fn an_incident_of_three_days_alerts_once_reminds_on_slack_and_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = orders_fixture(dir.path(), &[]);
    let out = dir.path().join("backtest");
    let result = backtest(&warehouse, &config, &out, ("2025-03-02", "20250308"), &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let report = read_report(&out);
    assert_eq!(
        (&report["from"], &report["to"]),
        (&json!("2025-03-02"), &json!("2025-03-08"))
    );
    assert_eq!(report["config_path"], config.display().to_string());
    let s = |d: &str, v: &str, e, w, sent, reminders| {
        (d.to_string(), v.to_string(), e, w, 0, sent, reminders)
    };
    // The zero-revenue baseline needs seven days: a WARN (routed nowhere) until 03-07.
    assert_eq!(
        summary(&report),
        vec![
            s("2025-03-02", "warn", 0, 1, 0, 0),
            s("2025-03-03", "warn", 0, 1, 0, 0),
            s("2025-03-04", "error", 1, 1, 1, 0),
            s("2025-03-05", "error", 1, 1, 0, 1),
            s("2025-03-06", "error", 1, 1, 0, 1),
            s("2025-03-07", "warn", 0, 1, 1, 0),
            s("2025-03-08", "ok", 0, 0, 0, 0),
        ]
    );
    let both = json!(["pagerduty://team", "slack://#data-alerts"]);
    let alert = |notice: &str, channels: &Value| {
        json!([{
            "notice": notice,
            "fingerprint": "revenue/orders:duplicate_transactions",
            "severity": "ERROR",
            "channels": channels,
        }])
    };
    assert_eq!(day(&report, "2025-03-04")["alerts"], alert("open", &both));
    // PagerDuty's incident stays open by itself: the daily reminder goes to Slack only.
    let slack = json!(["slack://#data-alerts"]);
    assert_eq!(
        day(&report, "2025-03-05")["alerts"],
        alert("remind", &slack)
    );
    assert_eq!(
        day(&report, "2025-03-07")["alerts"],
        alert("resolve", &both)
    );
    assert_eq!(
        day(&report, "2025-03-05")["findings"][0],
        json!({
            "severity": "ERROR",
            "check": "orders:duplicate_transactions",
            "rule": "revenue",
            "subject": null,
            "partition_date": "2025-03-05",
            "message": "1 duplicate transactions (allowed: 0)",
            "value": 1.0,
            "threshold": 0.0,
        })
    );
    assert_eq!(
        report["totals"],
        json!({
            "days": 7, "error_days": 3, "warn_days": 3, "ok_days": 1,
            "counts": {"ERROR": 3, "WARN": 6, "INFO": 0},
            "alerts_sent": 2, "reminders": 2,
        })
    );
    let stdout = &result.stdout;
    assert!(
        stdout.contains(
            "2025-03-04  error        1     1     0       1          0\n    \
             ERROR orders:duplicate_transactions (2025-03-04): 1 duplicate transactions (allowed: 0)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "    alert: resolve ERROR revenue/orders:duplicate_transactions -> pagerduty://team, slack://#data-alerts\n"
        ),
        "{stdout}"
    );
    let html = fs::read_to_string(out.join("backtest.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    assert!(
        html.contains("<h2 id=\"d2025-03-04\">2025-03-04: error</h2>"),
        "{html}"
    );
    assert!(
        !html.contains("src=") && !html.contains("href=\"http"),
        "self-contained"
    );
    // No throwaway store is left behind.
    let mut left: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".vigil.lock", "backtest.html", "backtest.json"]);
}

#[test]
fn rows_dated_after_a_day_change_nothing_on_that_day() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = orders_fixture(&dir.path().join("clean"), &[]);
    // Written first: on 03-11, a thousand orders of 1e9 reusing the ids of 03-04 (so that in
    // file order each 03-04 order comes after its copy), and a row with a missing field.
    let mut spike: Vec<String> = (0..1000)
        .map(|n| format!("T04-{},C9,2025-03-11T09:00:00Z,1000000000", n % 4))
        .collect();
    spike.push("T11-9,C9,2025-03-11T10:00:00Z".into());
    let (spiked, spiked_config) = orders_fixture(&dir.path().join("spiked"), &spike);
    let clean_out = dir.path().join("clean-out");
    let spiked_out = dir.path().join("spiked-out");
    let range = ("2025-03-01", "2025-03-10");
    assert_eq!(
        backtest(&warehouse, &config, &clean_out, range, &[]).code,
        0
    );
    let result = backtest(&spiked, &spiked_config, &spiked_out, range, &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let (clean, spiked_report) = (read_report(&clean_out), read_report(&spiked_out));
    assert_eq!(clean["days"], spiked_report["days"]);
    assert_eq!(clean["totals"], spiked_report["totals"]);
    // A plain run of 03-04 on the same folder sees the later rows: four more duplicates, the
    // malformed row, and a latest partition ahead of the expected one.
    let run_out = dir.path().join("run-out");
    let run = vigil_run(
        &spiked,
        &spiked_config,
        &run_out,
        "2025-03-04",
        &["--no-state"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let findings = json_report(&run_out)["findings"].clone();
    let duplicates = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "orders:duplicate_transactions")
        .unwrap();
    assert_eq!(duplicates["value"], 5.0);
    assert!(findings
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "orders:malformed_rows"));
    // The backtest of 03-11 sees them.
    let late_out = dir.path().join("late-out");
    let late = backtest(
        &spiked,
        &spiked_config,
        &late_out,
        ("2025-03-11", "2025-03-11"),
        &[],
    );
    assert_eq!(late.code, 0, "{late:?}");
    let late = read_report(&late_out);
    let late_checks: Vec<String> = checks(day(&late, "2025-03-11"))
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(
        late_checks.contains(&"orders:duplicate_transactions".to_string()),
        "{late_checks:?}"
    );
    assert!(
        late_checks.contains(&"orders:malformed_rows".to_string()),
        "{late_checks:?}"
    );
}

/// Whether a cell starts with a `YYYY-MM-DD` date, and that date.
fn leading_date(cell: &str) -> Option<&str> {
    let date = cell.get(..10)?;
    let b = date.as_bytes();
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        _ => c.is_ascii_digit(),
    });
    shape.then_some(date)
}

/// Copies the rows of a CSV file that `keep` keeps.
fn copy_rows(
    from: &Path,
    to: &Path,
    keep: impl Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
) {
    let mut reader = csv::Reader::from_path(from).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut writer = csv::Writer::from_path(to).unwrap();
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        if keep(&header, &record) {
            writer.write_record(&record).unwrap();
        }
    }
    writer.flush().unwrap();
}

/// The cell of `column` in a record.
fn cell<'a>(header: &csv::StringRecord, record: &'a csv::StringRecord, column: &str) -> &'a str {
    let at = header.iter().position(|h| h == column).unwrap();
    record.get(at).unwrap_or("")
}

/// A copy of a demo warehouse without the rows dated after `day`: sessions by `session_start`,
/// orders by `order_ts`, attribution rows by their order's date (the first order row of the
/// id); rows without a date are kept.
fn cut(warehouse: &Path, day: &str, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let until = |cell: &str| leading_date(cell).is_none_or(|d| d <= day);
    copy_rows(
        &warehouse.join("fct_sessions.csv"),
        &into.join("fct_sessions.csv"),
        |h, r| until(cell(h, r, "session_start")),
    );
    copy_rows(
        &warehouse.join("fct_orders.csv"),
        &into.join("fct_orders.csv"),
        |h, r| until(cell(h, r, "order_ts")),
    );
    let mut ordered: HashMap<String, String> = HashMap::new();
    let mut reader = csv::Reader::from_path(warehouse.join("fct_orders.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    for record in reader.records() {
        let record = record.unwrap();
        let id = cell(&header, &record, "transaction_id").to_string();
        let ts = cell(&header, &record, "order_ts").to_string();
        ordered.entry(id).or_insert(ts);
    }
    copy_rows(
        &warehouse.join("fct_attribution.csv"),
        &into.join("fct_attribution.csv"),
        |h, r| {
            ordered
                .get(cell(h, r, "transaction_id"))
                .is_none_or(|ts| until(ts))
        },
    );
}

/// The findings of a report as (severity, check, date, message, value, threshold), with
/// `from` replaced by `to` in messages.
fn comparable(findings: &Value, from: &str, to: &str) -> Vec<Value> {
    findings
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            json!([
                f["severity"],
                f["check"],
                f["partition_date"],
                f["message"].as_str().unwrap().replace(from, to),
                f["value"],
                f["threshold"],
            ])
        })
        .collect()
}

#[test]
fn each_day_equals_the_run_of_that_day_on_the_warehouse_cut_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    vigil_tests::write_demo(
        &demo,
        30,
        400,
        "2025-03-20",
        "duplicates,channel-shift-to-direct",
    );
    let (warehouse, config) = (demo.join("warehouse"), demo.join("vigil.yml"));
    let out = dir.path().join("backtest");
    let result = backtest(&warehouse, &config, &out, ("2025-03-14", "2025-03-20"), &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let report = read_report(&out);
    // The faults sit on 03-20: the backtest shows them on that day only.
    for d in report["days"].as_array().unwrap() {
        let fired: Vec<String> = checks(d).into_iter().map(|c| c.0).collect();
        let on_last = d["date"] == "2025-03-20";
        assert_eq!(
            fired.contains(&"orders:duplicate_transactions".to_string()),
            on_last,
            "{d}"
        );
        let direct = d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["subject"] == "direct");
        assert_eq!(direct, on_last, "{d}");
    }
    let original = warehouse.display().to_string();
    for date in ["2025-03-14", "2025-03-17", "2025-03-19", "2025-03-20"] {
        let copy = dir.path().join(format!("cut-{date}"));
        cut(&warehouse, date, &copy);
        let run_out = dir.path().join(format!("run-{date}"));
        let run = vigil_run(
            &copy,
            &config,
            &run_out,
            date,
            &["--no-state", "--no-alerts", "--no-quarantine"],
        );
        assert!(run.code == 0, "{run:?}");
        let expected = comparable(
            &json_report(&run_out)["findings"],
            &copy.display().to_string(),
            &original,
        );
        let got = comparable(&day(&report, date)["findings"], "", "");
        assert_eq!(got, expected, "{date}");
    }
    // The cut matters: run on the whole warehouse, 03-17 sees partitions newer than itself.
    let whole_out = dir.path().join("whole");
    let whole = vigil_run(
        &warehouse,
        &config,
        &whole_out,
        "2025-03-17",
        &["--no-state", "--no-alerts"],
    );
    assert_eq!(whole.code, 0, "{whole:?}");
    let whole_checks = vigil_tests::checks(&json_report(&whole_out));
    assert!(
        whole_checks.contains(&"freshness:sessions_partition".to_string()),
        "{whole_checks:?}"
    );
    let cut_checks: Vec<String> = checks(day(&report, "2025-03-17"))
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(!cut_checks.contains(&"freshness:sessions_partition".to_string()));
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn the_users_store_reports_and_warehouse_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = orders_fixture(dir.path(), &[]);
    let reports = dir.path().join("reports");
    // The user's daily runs: their store and reports in `reports`, an incident open.
    for date in ["2025-03-03", "2025-03-04"] {
        let run = vigil_run(&warehouse, &config, &reports, date, &["--no-quarantine"]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let store = reports.join("vigil-state.sqlite");
    assert!(store.is_file());
    let before_reports = contents(&reports);
    let before_warehouse = contents(&warehouse);
    let result = backtest(
        &warehouse,
        &config,
        &reports,
        ("2025-03-01", "2025-03-10"),
        &[],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let after = contents(&reports);
    for (path, bytes) in &before_reports {
        if path.file_name().is_some_and(|n| n == ".vigil.lock") {
            continue;
        }
        assert_eq!(after.get(path), Some(bytes), "{} changed", path.display());
    }
    let added: Vec<String> = after
        .keys()
        .filter(|p| !before_reports.contains_key(*p))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(added, ["backtest.html", "backtest.json"]);
    assert_eq!(contents(&warehouse), before_warehouse);
    // The store still says what the user's runs left: the incident of 03-04 open.
    let history = vigil_tests::state_history(store.to_str().unwrap());
    assert_eq!(history["runs"].as_array().unwrap().len(), 2);
    assert_eq!(
        vigil_tests::open_incidents(&history),
        [
            "revenue/orders:duplicate_transactions",
            "revenue/orders:zero_revenue_spike_skipped"
        ]
    );
    // The ERROR days quarantined nothing.
    assert!(!dir.path().join("quarantine").exists());
}

#[test]
fn puffy_shows_the_03_04_referrer_incident() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = puffy().join("warehouse");
    let out = dir.path().join("example");
    let example = repo_root().join("schema/examples/puffy.yml");
    let result = backtest(
        &warehouse,
        &example,
        &out,
        ("2025-02-23", "2025-03-08"),
        &[],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let report = read_report(&out);
    assert_eq!(report["days"].as_array().unwrap().len(), 14);
    let share = |d: &Value| {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "anomaly:channel_session_share" && f["subject"] == "direct")
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(share(day(&report, "2025-03-03")), Vec::<String>::new());
    // The message may go on with the baseline's spread and z.
    let shifted = |date: &str, text: &str| {
        let found = share(day(&report, date));
        assert!(
            found.len() == 1 && found[0].starts_with(text),
            "{date}: {found:?}"
        );
    };
    shifted(
        "2025-03-04",
        "Channel 'direct' session share shifted: 62.4% vs baseline 36.0%",
    );
    shifted(
        "2025-03-08",
        "Channel 'direct' session share shifted: 63.5% vs baseline 36.0%",
    );
    let incident = "drift/anomaly:channel_session_share/direct";
    let said = |date: &str| -> Vec<String> {
        day(&report, date)["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["fingerprint"] == incident)
            .map(|a| a["notice"].as_str().unwrap().to_string())
            .collect()
    };
    // Opened on 03-04, then a daily reminder while it lasts.
    assert_eq!(said("2025-03-04"), ["open"]);
    for date in ["2025-03-05", "2025-03-06", "2025-03-07", "2025-03-08"] {
        assert_eq!(said(date), ["remind"], "{date}");
    }

    // The reference config judges history (`--scope all`): the direct revenue share of 03-04
    // first appears on 03-04, and the last day is the reference's 14 findings.
    let out = dir.path().join("reference");
    let reference = puffy().join("monitoring_rules.reference.yml");
    let result = backtest(
        &warehouse,
        &reference,
        &out,
        ("2025-03-03", "2025-03-08"),
        &["--scope", "all"],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let report = read_report(&out);
    let on_0304 = |d: &Value| {
        checks(d)
            .into_iter()
            .filter(|(c, date)| c == "anomaly:channel_share" && *date == "2025-03-04")
            .count()
    };
    assert_eq!(on_0304(day(&report, "2025-03-03")), 0);
    assert_eq!(on_0304(day(&report, "2025-03-04")), 1);
    let last = day(&report, "2025-03-08");
    assert_eq!(last["counts"], json!({"ERROR": 2, "WARN": 12, "INFO": 0}));
    let run_out = dir.path().join("run");
    let run = vigil_run(
        &warehouse,
        &reference,
        &run_out,
        "2025-03-08",
        &["--scope", "all", "--no-state", "--no-alerts"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        comparable(&last["findings"], "", ""),
        comparable(&json_report(&run_out)["findings"], "", "")
    );
}

#[test]
fn bad_ranges_and_missing_data_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (warehouse, config) = orders_fixture(dir.path(), &[]);
    let out = dir.path().join("out");
    let reversed = backtest(&warehouse, &config, &out, ("2025-03-08", "2025-03-02"), &[]);
    assert_eq!(reversed.code, 2);
    assert_eq!(
        reversed.stderr,
        "vigil: error: --from 2025-03-08 is after --to 2025-03-02: give the first day, then the last\n"
    );
    let empty = backtest(&warehouse, &config, &out, ("2024-01-01", "2024-01-05"), &[]);
    assert_eq!(empty.code, 2);
    assert_eq!(
        empty.stderr,
        "vigil: error: no table has rows dated from 2024-01-01 to 2024-01-05 (nor any day before)\n"
    );
    let after = backtest(&warehouse, &config, &out, ("2026-01-01", "2026-01-02"), &[]);
    assert_eq!(after.code, 2);
    assert_eq!(
        after.stderr,
        "vigil: error: no table has rows dated from 2026-01-01 to 2026-01-02 (their rows run from 2025-03-01 to 2025-03-10)\n"
    );
    assert!(!out.join("backtest.json").exists());
    let bad_date = backtest(&warehouse, &config, &out, ("2025-02-30", "2025-03-02"), &[]);
    assert_eq!(bad_date.code, 2);
    assert!(
        bad_date.stderr.contains("`2025-02-30` is not a date"),
        "{}",
        bad_date.stderr
    );
    let missing = backtest(
        &dir.path().join("nowhere"),
        &config,
        &out,
        ("2025-03-01", "2025-03-02"),
        &[],
    );
    assert_eq!(missing.code, 2, "{missing:?}");
    let inside = backtest(
        &warehouse,
        &config,
        &warehouse.join("bt"),
        ("2025-03-01", "2025-03-02"),
        &[],
    );
    assert_eq!(inside.code, 2);
    assert!(
        inside
            .stderr
            .contains("vigil never writes into the warehouse"),
        "{}",
        inside.stderr
    );
    assert!(!warehouse.join("bt").exists());
}

#[test]
fn a_parquet_warehouse_backtests_as_its_csv_copy() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("parquet");
    // Sessions and orders as datasets partitioned by day, attribution one file.
    vigil_tests::csv_folder_to_parquet(
        &puffy().join("warehouse"),
        &parquet,
        5000,
        &vigil_tests::BY_DAY,
    );
    let example = repo_root().join("schema/examples/puffy.yml");
    let range = ("2025-03-01", "2025-03-08");
    let (csv_out, parquet_out) = (dir.path().join("csv-out"), dir.path().join("parquet-out"));
    let csv = backtest(&puffy().join("warehouse"), &example, &csv_out, range, &[]);
    assert_eq!(csv.code, 0, "{csv:?}");
    let result = backtest(&parquet, &example, &parquet_out, range, &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let (csv, parquet) = (read_report(&csv_out), read_report(&parquet_out));
    assert!(
        vigil_tests::same_json(&csv["days"], &parquet["days"], 1e-9),
        "{}\n{}",
        csv["days"],
        parquet["days"]
    );
    assert_eq!(day(&parquet, "2025-03-04")["counts"]["WARN"], 3);
}
