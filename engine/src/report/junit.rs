//! `monitoring_report.junit.xml`: the checks as JUnit test cases (one per check and partition)
//! so that CI systems show them natively. ERROR findings are failures; WARN and INFO findings
//! pass with their message as output; every other check that ran passes with its value and
//! limits (or baseline) as output; a check that could not run, or had nothing to judge, is
//! skipped. The suite's
//! properties name the run (`run_id`), its partition and the vigil version. Every text is
//! escaped for XML 1.0 (characters XML does not allow become visible escapes such as `\x1b`).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::text::xml as escape;
use super::{numbers, skipped_checks, Outcome, RunInfo};
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;

/// Renders the JUnit XML report.
pub fn render(info: &RunInfo<'_>, eval: &Evaluation) -> String {
    let mut cases = String::new();
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut failures = 0;
    let expected = eval.expected_date.to_string();
    for f in eval.findings.iter().filter(|f| !is_skip(f)) {
        let day = f
            .partition_date
            .map_or("all".to_string(), |d| d.to_string());
        let name = match &f.subject {
            Some(subject) => format!("{} {subject}", f.check),
            None => f.check.clone(),
        };
        // An undated finding (a whole-table check) stands for the partition's case too.
        if f.partition_date.is_none() {
            named.insert(format!("{name} {expected}"));
        }
        let name = format!("{name} {day}");
        named.insert(name.clone());
        let _ = write!(
            cases,
            "<testcase classname=\"vigil.{}\" name=\"{}\">",
            escape(&f.rule),
            escape(&name)
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
    // A check that could not run is skipped, not passed.
    for (check, reason) in skipped_checks(eval) {
        let name = format!("{check} {expected}");
        if named.insert(name.clone()) {
            let _ = write!(
                cases,
                "<testcase classname=\"vigil.checks\" name=\"{}\"><skipped message=\"{}\"/></testcase>",
                escape(&name),
                escape(reason)
            );
        }
    }
    // Every other check that ran: passed with its value and limits (or baseline), or skipped
    // when it had nothing to judge.
    for o in &eval.observations {
        let name = format!("{} {}", o.metric, o.day);
        if !named.insert(name.clone()) {
            continue;
        }
        let detail = format!(
            "value {}; {}{}",
            numbers::with_unit(o.value, &o.unit),
            numbers::judged_against(o),
            if o.flagged { "; flagged" } else { "" }
        );
        let body = match Outcome::of(o) {
            Outcome::NotJudged => format!("<skipped message=\"not judged: {}\"/>", escape(&detail)),
            _ => format!("<system-out>{}</system-out>", escape(&detail)),
        };
        let _ = write!(
            cases,
            "<testcase classname=\"vigil.checks\" name=\"{}\">{body}</testcase>",
            escape(&name),
        );
    }
    let tests = cases.matches("<testcase ").count();
    let skipped = cases.matches("<skipped ").count();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vigil\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\">\
         <testsuite name=\"vigil partition {day}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\
         <properties><property name=\"run_id\" value=\"{}\"/><property name=\"expected_partition_date\" value=\"{day}\"/>\
         <property name=\"vigil_version\" value=\"{}\"/></properties>{cases}</testsuite></testsuites>\n",
        escape(&info.run_id),
        env!("CARGO_PKG_VERSION"),
        day = eval.expected_date
    )
}

/// Whether a finding only says that checks were skipped (they get skipped cases instead).
fn is_skip(f: &Finding) -> bool {
    f.context
        .as_ref()
        .is_some_and(|c| c.contains_key("skipped") && c.contains_key("reason"))
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
