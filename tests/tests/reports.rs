//! The HTML, JUnit, JSON and Markdown reports of the Puffy run with the example config, and the
//! set written as one unit: one run per output folder (a lock), no temporary left behind and
//! the previous set kept whole when writing fails (disk full, unwritable folder).

use std::fs;
use std::path::Path;

use serde_json::Value;
use vigil_tests::{puffy_copy, repo_root, vigil_run};

struct Reports {
    json: Value,
    md: String,
    html: String,
    junit: String,
}

fn puffy_reports(date: &str) -> Reports {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    let example = repo_root().join("schema/examples/puffy.yml");
    let result = vigil_run(&copy.path().join("warehouse"), &example, &out, date, &[]);
    assert_eq!(result.code, 0, "{result:?}");
    let read = |name: &str| fs::read_to_string(out.join(name)).unwrap();
    Reports {
        json: serde_json::from_str(&read("monitoring_report.json")).unwrap(),
        md: read("monitoring_report.md"),
        html: read("monitoring_report.html"),
        junit: read("monitoring_report.junit.xml"),
    }
}

#[test]
fn the_html_report_is_self_contained_with_a_chart_per_judged_metric() {
    let r = puffy_reports("2025-03-08");
    let html = &r.html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<div class=\"verdict WARN\"><h1>WARN: partition 2025-03-08</h1>"),
        "verdict first"
    );
    // Nothing is fetched: no external script, style, image or font.
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
    let observations = r.json["observations"].as_array().unwrap();
    // Every check is in the table; those with a daily history are charted, each with a band.
    assert_eq!(
        html.matches("<tr class=\"").count(),
        observations.len(),
        "a row per check (none skipped)"
    );
    let charted = observations
        .iter()
        .filter(|o| {
            r.json["daily_metrics"][o["metric"].as_str().unwrap()]
                .as_object()
                .unwrap()
                .len()
                > 1
        })
        .count();
    assert_eq!(
        (charted, observations.len()),
        (24, 46),
        "the metrics judged against baselines and the volume floors are charted"
    );
    // A single-value check is in the table, not charted.
    assert!(html.contains("<td><code>freshness:sessions_partition</code></td>"));
    assert!(!html.contains("aria-label=\"freshness:sessions_partition\""));
    assert_eq!(html.matches("<svg class=\"plot\"").count(), charted);
    assert_eq!(html.matches("class=\"band\"").count(), charted);
    // The findings table has one row per finding.
    let findings = r.json["findings"].as_array().unwrap().len();
    assert_eq!(html.matches("<span class=\"sev sev-").count(), findings);
    // The flagged metrics are marked, with their flagged days as red dots.
    let flagged = observations.iter().filter(|o| o["flagged"] == true).count();
    assert_eq!(
        html.matches("<div class=\"chart flagged\">").count(),
        flagged
    );
    let direct = html
        .split("<div class=\"chart")
        .skip(1)
        .find(|c| c.contains("anomaly:channel_session_share direct"))
        .unwrap();
    assert!(direct.contains("— flagged"));
    assert_eq!(
        direct.matches("<circle class=\"point flag\"").count(),
        6,
        "03-01 and 03-04..03-08"
    );
}

#[test]
fn the_json_report_has_the_judged_metrics_and_their_series() {
    let r = puffy_reports("2025-03-08");
    let observations = r.json["observations"].as_array().unwrap();
    let revenue = observations
        .iter()
        .find(|o| o["metric"] == "anomaly:revenue")
        .unwrap();
    assert_eq!(revenue["value"], 22885.0);
    assert_eq!(revenue["flagged"], false);
    let series = &r.json["daily_metrics"]["anomaly:revenue"];
    assert_eq!(series.as_object().unwrap().len(), 14);
    assert_eq!(series["2025-03-01"], 30585.0);
    assert!(r.md.contains(
        "## Checks for 2025-03-08\n| check | value | limits or baseline | z | change | result |"
    ));
    // Each value as what it is: money with cents, counts per day, shares as percentages. The
    // revenue's spread is its noise floor, √(center × ΣQ/ΣY) over the orders before 03-08
    // (5,961.62, above the baseline's standard deviation of 5,393.83).
    for row in [
        "| `anomaly:revenue` | 22,885.00 | baseline 20,202.42 ± 5,961.62 | 0.45 | +13.3% | ok |",
        "| `anomaly:sessions` | 2,587 sessions/day | baseline 2,745 ± 325 sessions/day | -0.49 | -5.7% | ok |",
        "| `anomaly:channel_session_share direct` | 63.5 % | baseline 36.0 % ± 6.9 % | 3.96 | +76.4% | **flagged** |",
        "| `volume:sessions_floor` | 2,587 sessions/day | min 1,000 sessions/day | – | – | ok |",
        "| `sessions:null_rate:client_id` | 0.0 % | max 5.0 % | – | – | ok |",
        "| `freshness:sessions_partition` | 0 days behind | exactly 0 days behind | – | – | ok |",
    ] {
        assert!(r.md.contains(row), "{row}\n{}", r.md);
    }
    let findings_at = r.md.find("## Findings").unwrap();
    assert!(
        r.md.find("## Checks for").unwrap() < findings_at,
        "checks above the findings"
    );
}

#[test]
fn the_junit_report_has_a_case_per_check_and_fails_on_error() {
    let late = puffy_reports("2025-03-09");
    let errors = late.json["counts"]["ERROR"].as_u64().unwrap();
    assert!(errors >= 2);
    let junit = &late.junit;
    assert!(
        junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vigil\"")
    );
    assert_eq!(junit.matches("<failure ").count() as u64, errors);
    assert!(junit.contains(&format!("failures=\"{errors}\"")));
    assert!(junit.contains("<testcase classname=\"vigil.freshness\" name=\"freshness:sessions_partition 2025-03-09\"><failure type=\"ERROR\""));
    let tests: usize = junit
        .split("tests=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(junit.matches("<testcase ").count(), tests);
    // The JUnit report names its run, as the others do.
    let run_id = late.json["run_id"].as_str().unwrap();
    assert!(
        junit.contains(&format!("<property name=\"run_id\" value=\"{run_id}\"/>")),
        "{junit}"
    );
    assert_eq!(
        junit.matches("<testcase ").count(),
        junit.matches("</testcase>").count()
    );
}

const REPORTS: [&str; 4] = [
    "monitoring_report.json",
    "monitoring_report.md",
    "monitoring_report.html",
    "monitoring_report.junit.xml",
];

/// The run id every report in `out` names (a failure when they differ or one is missing).
fn one_run_id(out: &Path) -> String {
    let json: Value =
        serde_json::from_str(&fs::read_to_string(out.join(REPORTS[0])).unwrap()).unwrap();
    let run_id = json["run_id"].as_str().unwrap().to_string();
    for name in &REPORTS[1..] {
        let text = fs::read_to_string(out.join(name)).unwrap();
        assert!(text.contains(&run_id), "{name} is not from run {run_id}");
    }
    run_id
}

/// Files in `out` other than the reports, the lock file and the quarantine record.
fn leftovers(out: &Path) -> Vec<String> {
    fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            // The state store and (after a failed write) its SQLite journal, which the next
            // open recovers, are not report temporaries.
            !REPORTS.contains(&n.as_str())
                && ![".vigil.lock", "quarantine_path.txt"].contains(&n.as_str())
                && !n.starts_with("vigil-state.sqlite")
        })
        .collect()
}

/// A run of the freshness rule alone on the copy (its config written by the first call).
fn freshness_run(copy: &Path, date: &str) -> vigil_tests::Output {
    let config = copy.join("freshness.yml");
    if !config.exists() {
        fs::write(&config, "rules:\n  freshness: {}\n").unwrap();
    }
    vigil_run(
        &copy.join("warehouse"),
        &config,
        &copy.join("reports"),
        date,
        &[],
    )
}

#[test]
fn a_run_into_a_folder_another_run_holds_exits_2_naming_it() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    let lock = vigil_engine::report::lock_output(&out, "holder-run").unwrap();
    let result = freshness_run(copy.path(), "2025-03-09");
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result.stderr.contains(&format!(
            "another vigil run (run holder-run (pid {})) is writing into {}",
            std::process::id(),
            out.display()
        )),
        "{}",
        result.stderr
    );
    assert!(!out.join("monitoring_report.json").exists());
    drop(lock);
    let result = freshness_run(copy.path(), "2025-03-09");
    assert_eq!(result.code, 0, "{result:?}");
    one_run_id(&out);
}

#[test]
fn concurrent_runs_into_one_folder_never_mix_their_reports() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    assert_eq!(freshness_run(copy.path(), "2025-03-08").code, 0);
    for round in 0..6 {
        let codes: Vec<i32> = std::thread::scope(|scope| {
            let runs: Vec<_> = ["2025-03-08", "2025-03-09"]
                .into_iter()
                .map(|date| {
                    let dir = copy.path();
                    scope.spawn(move || freshness_run(dir, date))
                })
                .collect();
            runs.into_iter()
                .map(|r| {
                    let result = r.join().unwrap();
                    assert!(
                        result.code == 0
                            || (result.code == 2 && result.stderr.contains("another vigil run")),
                        "{result:?}"
                    );
                    result.code
                })
                .collect()
        });
        assert!(codes.contains(&0), "round {round}: {codes:?}");
        one_run_id(&out);
        assert_eq!(leftovers(&out), Vec::<String>::new(), "round {round}");
    }
}

#[test]
fn an_unwritable_output_folder_exits_2_and_still_prints_every_finding() {
    let copy = puffy_copy();
    let blocker = copy.path().join("not-a-folder");
    fs::write(&blocker, "a file").unwrap();
    let config = copy.path().join("vigil.yml");
    fs::write(
        &config,
        "rules:\n  freshness: {}\nalert_routing:\n  emit_console_notifications: false\n",
    )
    .unwrap();
    let result = vigil_run(
        &copy.path().join("warehouse"),
        &config,
        &blocker.join("reports"),
        "2025-03-09",
        &[],
    );
    assert_eq!(result.code, 2, "{result:?}");
    assert!(
        result.stderr.contains(&format!(
            "cannot write reports to {}",
            blocker.join("reports").display()
        )),
        "{}",
        result.stderr
    );
    // The console is the only record left: every finding is there.
    for check in ["freshness:orders_partition", "freshness:sessions_partition"] {
        assert!(result.stdout.contains(check), "{}", result.stdout);
    }
}

/// The child of the disk-full test: a run into `VIGIL_TEST_FULL_DIR`, in a process whose files
/// may not grow past 1 KiB (`ulimit -f`, SIGXFSZ ignored, so a write fails with EFBIG).
#[test]
#[ignore = "run by a_full_disk_keeps_the_previous_set_whole_and_leaves_no_temporary"]
fn full_disk_child() {
    let dir = std::env::var("VIGIL_TEST_FULL_DIR").expect("run by its parent test");
    let copy = Path::new(&dir);
    let result = freshness_run(copy, "2025-03-09");
    println!("CHILD-CODE {}", result.code);
    println!("CHILD-STDOUT {}", result.stdout);
    println!("CHILD-STDERR {}", result.stderr);
}

#[test]
fn a_full_disk_keeps_the_previous_set_whole_and_leaves_no_temporary() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    // The previous set, from a run that could write.
    let first = freshness_run(copy.path(), "2025-03-08");
    assert_eq!(first.code, 0, "{first:?}");
    let before = one_run_id(&out);
    let contents: Vec<Vec<u8>> = REPORTS
        .iter()
        .map(|n| fs::read(out.join(n)).unwrap())
        .collect();
    // The JSON report is above the limit; the lock file fits.
    assert!(
        contents[0].len() > 1024,
        "{:?}",
        contents.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let exe = std::env::current_exe().unwrap();
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2; exec \"$0\" --exact full_disk_child --ignored --nocapture --test-threads=1")
        .arg(&exe)
        .env("VIGIL_TEST_FULL_DIR", copy.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(stdout.contains("CHILD-CODE 2"), "{stdout}");
    assert!(stdout.contains("cannot write reports to"), "{stdout}");
    assert!(stdout.contains("freshness:sessions_partition"), "{stdout}");
    // The previous set is untouched and nothing temporary is left.
    assert_eq!(one_run_id(&out), before);
    for (name, old) in REPORTS.iter().zip(&contents) {
        assert_eq!(&fs::read(out.join(name)).unwrap(), old, "{name}");
    }
    assert_eq!(leftovers(&out), Vec::<String>::new());
}

/// A warehouse of three days of sessions (3, 3 and 2 distinct sessions; `session_id`
/// required) and no orders file, and a freshness config that floors sessions at 3 a day and also checks orders; returns the
/// run's output and its reports folder.
fn floor_run(dir: &Path) -> (vigil_tests::Output, std::path::PathBuf) {
    let warehouse = dir.join("warehouse");
    fs::create_dir_all(&warehouse).unwrap();
    fs::write(
        warehouse.join("fct_sessions.csv"),
        "session_id,session_start\n\
         s1,2025-03-01T09:00:00Z\ns2,2025-03-01T10:00:00Z\ns3,2025-03-01T11:00:00Z\n\
         s4,2025-03-02T09:00:00Z\ns5,2025-03-02T10:00:00Z\ns6,2025-03-02T11:00:00Z\n\
         s7,2025-03-03T09:00:00Z\ns8,2025-03-03T10:00:00Z\ns8,2025-03-03T12:00:00Z\n",
    )
    .unwrap();
    let config = dir.join("vigil.yml");
    fs::write(
        &config,
        "version: 1\n\
         tables:\n  \
           sessions: {file: fct_sessions.csv, date_column: session_start, required_columns: [session_id]}\n  \
           orders: {file: fct_orders.csv, date_column: order_ts}\n\
         rules:\n  \
           freshness:\n    \
             tables:\n      \
               sessions: {count_distinct: session_id, min_per_day: 3}\n      \
               orders: {}\n",
    )
    .unwrap();
    let out = dir.join("reports");
    let result = vigil_run(&warehouse, &config, &out, "2025-03-03", &[]);
    (result, out)
}

#[test]
fn every_check_that_ran_is_in_the_markdown_table_and_junit_passing_failing_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (result, out) = floor_run(dir.path());
    assert_eq!(result.code, 0, "{result:?}");
    let md = fs::read_to_string(out.join("monitoring_report.md")).unwrap();
    let junit = fs::read_to_string(out.join("monitoring_report.junit.xml")).unwrap();
    let reason = format!(
        "table file {} is missing",
        dir.path().join("warehouse/fct_orders.csv").display()
    );
    // Markdown escapes the underscores of the path.
    let md_reason = reason.replace('_', "\\_");
    let table = format!(
        "## Checks for 2025-03-03\n\
         | check | value | limits or baseline | z | change | result |\n\
         |---|---:|---|---:|---:|---|\n\
         | `completeness:sessions_baseline_gaps` | 0 missing days | max 0 missing days | – | – | ok |\n\
         | `completeness:sessions_missing_days` | 0 missing days | max 0 missing days | – | – | ok |\n\
         | `freshness:sessions_partition` | 0 days behind | exactly 0 days behind | – | – | ok |\n\
         | `sessions:empty_dates` | 0 rows | max 0 rows | – | – | ok |\n\
         | `sessions:out_of_window_dates` | 0 rows | max 0 rows | – | – | ok |\n\
         | `sessions:required_columns` | 0 missing columns | max 0 missing columns | – | – | ok |\n\
         | `volume:sessions_floor` | 2 sessions/day | min 3 sessions/day | – | – | **flagged** |\n\
         | `freshness:orders` | – | skipped: {md_reason} | – | – | **skipped** |\n"
    );
    assert!(md.contains(&table), "{md}");
    // The floor fails; freshness and completeness pass with their value and limit; the orders
    // checks could not run: skipped, not passed.
    assert!(
        junit.contains(
            "<testcase classname=\"vigil.freshness\" name=\"volume:sessions_floor 2025-03-03\">\
             <failure type=\"ERROR\" message=\"`sessions` volume below floor on 2025-03-03: \
             2 distinct `session_id` &lt; 3\">"
        ),
        "{junit}"
    );
    for passed in [
        "<testcase classname=\"vigil.checks\" name=\"freshness:sessions_partition 2025-03-03\">\
         <system-out>value 0 days behind; exactly 0 days behind</system-out></testcase>",
        "<testcase classname=\"vigil.checks\" name=\"completeness:sessions_missing_days 2025-03-03\">\
         <system-out>value 0 missing days; max 0 missing days</system-out></testcase>",
        "<testcase classname=\"vigil.checks\" name=\"sessions:required_columns 2025-03-03\">\
         <system-out>value 0 missing columns; max 0 missing columns</system-out></testcase>",
    ] {
        assert!(junit.contains(passed), "{passed}\n{junit}");
    }
    assert!(
        junit.contains(&format!(
            "<testcase classname=\"vigil.checks\" name=\"freshness:orders 2025-03-03\">\
             <skipped message=\"{reason}\"/></testcase>"
        )),
        "{junit}"
    );
    assert_eq!(junit.matches("<testcase ").count(), 9, "{junit}");
    assert!(
        junit.contains("tests=\"9\" failures=\"2\" skipped=\"1\""),
        "{junit}"
    );
    // The console line of a dated finding names its day.
    assert!(
        result.stdout.contains(
            "  - volume:sessions_floor (2025-03-03): `sessions` volume below floor on 2025-03-03"
        ),
        "{}",
        result.stdout
    );
}

#[test]
fn scope_all_fills_the_observations_and_daily_metrics_as_scope_partition_does() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    let example = repo_root().join("schema/examples/puffy.yml");
    let warehouse = copy.path().join("warehouse");
    let result = vigil_run(
        &warehouse,
        &example,
        &out,
        "2025-03-08",
        &["--scope", "all"],
    );
    assert!(result.code == 0 || result.code == 1, "{result:?}");
    let json: Value =
        serde_json::from_str(&fs::read_to_string(out.join("monitoring_report.json")).unwrap())
            .unwrap();
    let observations = json["observations"].as_array().unwrap();
    let revenue = observations
        .iter()
        .find(|o| o["metric"] == "anomaly:revenue")
        .unwrap();
    assert_eq!(revenue["value"], 22885.0);
    assert_eq!(revenue["unit"]["kind"], "money");
    let series = &json["daily_metrics"]["anomaly:revenue"];
    assert_eq!(series.as_object().unwrap().len(), 14);
    assert_eq!(series["2025-03-01"], 30585.0);
    // The expected day is flagged exactly when a finding names it.
    let flagged_today = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["check"] == "anomaly:revenue" && f["partition_date"] == "2025-03-08");
    assert_eq!(revenue["flagged"], flagged_today);
    let md = fs::read_to_string(out.join("monitoring_report.md")).unwrap();
    assert!(
        md.contains("| `anomaly:revenue` | 22,885.00 | baseline "),
        "{md}"
    );
    let html = fs::read_to_string(out.join("monitoring_report.html")).unwrap();
    assert!(html.contains("aria-label=\"anomaly:revenue\""));
}

#[test]
fn a_metric_with_too_little_history_is_skipped_not_passed() {
    // 2025-02-25 has two earlier days; the example config's baselines need four.
    let r = puffy_reports("2025-02-25");
    let reason = "too little history for a baseline: 2 usable day(s) in the window, 4 needed";
    assert!(
        r.md.contains(&format!(
            "| `anomaly:revenue` | 13,543.00 | skipped: {reason} | – | – | **skipped** |"
        )),
        "{}",
        r.md
    );
    // A skip that names no observed metric has a row of its own, once.
    let row = format!(
        "| `anomaly:channel_session_share` | – | skipped: {reason} | – | – | **skipped** |"
    );
    assert_eq!(r.md.matches(&row).count(), 1, "{}", r.md);
    assert!(r.junit.contains(&format!(
        "<testcase classname=\"vigil.checks\" name=\"anomaly:revenue 2025-02-25\"><skipped message=\"{reason}\"/></testcase>"
    )));
    assert!(r.junit.contains(
        "<testcase classname=\"vigil.checks\" name=\"anomaly:channel_session_share direct 2025-02-25\">\
         <skipped message=\"not judged: value 44.2 %; no baseline (too little history)\"/></testcase>"
    ), "{}", r.junit);
    assert_eq!(r.junit.matches("<failure ").count(), 0);
}
