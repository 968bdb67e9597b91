//! `monitoring_report.junit.xml`: the checks as JUnit test cases (one per check and partition)
//! so that CI systems show them natively. ERROR findings are failures; WARN and INFO findings
//! pass with their message as output; judged metrics without a finding pass. The suite's
//! properties name the run (`run_id`), its partition and the vigil version. Every text is
//! escaped for XML 1.0 (characters XML does not allow become visible escapes such as `\x1b`).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::text::xml as escape;
use super::RunInfo;
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;

/// Renders the JUnit XML report.
pub fn render(info: &RunInfo<'_>, eval: &Evaluation) -> String {
    let mut cases = String::new();
    let mut named: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failures = 0;
    let case_name = |check: &str, day: String| (check.to_string(), day);
    for f in &eval.findings {
        let day = f
            .partition_date
            .map_or("all".to_string(), |d| d.to_string());
        named.insert(case_name(&f.check, day.clone()));
        let _ = write!(
            cases,
            "<testcase classname=\"vigil.{}\" name=\"{} {day}\">",
            escape(&f.rule),
            escape(&f.check)
        );
        let silence = info.lifecycle.of(f).and_then(|t| t.silence.as_ref());
        match (f.severity, silence) {
            // A silenced ERROR is a known problem: skipped with its reason, not a failure.
            (Severity::Error, Some(s)) => {
                let _ = write!(
                    cases,
                    "<skipped message=\"silenced through {} by {}: {}\"/><system-out>ERROR: {}</system-out>",
                    s.until,
                    escape(&s.created_by),
                    escape(&s.reason),
                    escape(&f.message)
                );
            }
            (Severity::Error, None) => {
                failures += 1;
                let _ = write!(
                    cases,
                    "<failure type=\"ERROR\" message=\"{}\">{}</failure>",
                    escape(&f.message),
                    escape(&details(f))
                );
            }
            (Severity::Warn | Severity::Info, _) => {
                let _ = write!(
                    cases,
                    "<system-out>{}: {}</system-out>",
                    f.severity,
                    escape(&f.message)
                );
            }
        }
        cases.push_str("</testcase>");
    }
    for o in &eval.observations {
        let check = o.metric.split_whitespace().next().unwrap_or(&o.metric);
        if named.contains(&case_name(check, o.day.to_string())) && o.flagged {
            continue;
        }
        let _ = write!(
            cases,
            "<testcase classname=\"vigil.metrics\" name=\"{} {}\"/>",
            escape(&o.metric),
            o.day
        );
    }
    let tests = cases.matches("<testcase ").count();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vigil\" tests=\"{tests}\" failures=\"{failures}\">\
         <testsuite name=\"vigil partition {day}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\
         <properties><property name=\"run_id\" value=\"{}\"/><property name=\"expected_partition_date\" value=\"{day}\"/>\
         <property name=\"vigil_version\" value=\"{}\"/></properties>{cases}</testsuite></testsuites>\n",
        escape(&info.run_id),
        env!("CARGO_PKG_VERSION"),
        day = eval.expected_date
    )
}

fn details(f: &Finding) -> String {
    let mut out = String::new();
    if let Some(v) = f.value {
        let _ = write!(out, "value={v} ");
    }
    if let Some(t) = f.threshold {
        let _ = write!(out, "threshold={t} ");
    }
    if let Some(c) = &f.context {
        let _ = write!(out, "context={}", serde_json::Value::Object(c.clone()));
    }
    out
}
