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
    assert_eq!(html.matches("<svg ").count(), observations.len());
    assert_eq!(html.matches("class=\"band\"").count(), observations.len());
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
        .find(|c| c.contains("anomaly:channel_session_share direct"))
        .unwrap();
    assert!(direct.contains("— flagged"));
    assert_eq!(
        direct.matches("<circle class=\"flag\"").count(),
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
        "## Metrics for 2025-03-08\n| metric | value | baseline | z | change | flagged |"
    ));
    assert!(
        r.md.contains("| `anomaly:revenue` | 22885 | 20202 ± 5394 | 0.50 | +13.3% |  |"),
        "{}",
        r.md
    );
    let findings_at = r.md.find("## Findings").unwrap();
    assert!(
        r.md.find("## Metrics for").unwrap() < findings_at,
        "metrics above the findings"
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
        junit.matches("<testcase").count(),
        junit.matches("</testcase>").count() + junit.matches("\"/>").count()
            - junit.matches("<property ").count()
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
