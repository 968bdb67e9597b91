//! The HTML, JUnit, JSON and Markdown reports of the Puffy run with the example config.

use std::fs;

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
    assert_eq!(
        junit.matches("<testcase").count(),
        junit.matches("</testcase>").count() + junit.matches("\"/>").count()
    );
}
