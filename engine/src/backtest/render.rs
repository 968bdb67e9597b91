//! What a backtest shows: the console table, `backtest.json` and `backtest.html` (one
//! self-contained page).

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::{Alert, Backtest, Day};
use crate::report::text;
use crate::rule::{Finding, Severity};
use crate::state::incident::Notice;

/// The JSON file a backtest writes.
pub const JSON_FILE: &str = "backtest.json";
/// The HTML file a backtest writes.
pub const HTML_FILE: &str = "backtest.html";

/// How an alert's notice is named in the outputs.
fn notice_name(notice: Notice) -> &'static str {
    match notice {
        Notice::Open => "open",
        Notice::Remind => "remind",
        Notice::Resolve => "resolve",
    }
}

/// `{"ERROR": n, "WARN": n, "INFO": n}` of `count`.
fn counts(count: impl Fn(Severity) -> usize) -> Map<String, Value> {
    Severity::ALL
        .iter()
        .map(|s| (s.label().to_string(), json!(count(*s))))
        .collect()
}

/// `backtest.json` (pretty, with a trailing newline). A non-finite value is `null`.
pub fn json(backtest: &Backtest) -> String {
    let finding = |f: &Finding| {
        json!({
            "severity": f.severity.label(),
            "check": f.check,
            "rule": f.rule,
            "subject": f.subject,
            "partition_date": f.partition_date.map(|d| d.to_string()),
            "message": f.message,
            "value": f.value,
            "threshold": f.threshold,
        })
    };
    let alert = |a: &Alert| {
        json!({
            "notice": notice_name(a.notice),
            "fingerprint": a.fingerprint,
            "severity": a.severity.label(),
            "channels": a.channels,
        })
    };
    let days: Vec<Value> = backtest
        .days
        .iter()
        .map(|d| {
            json!({
                "date": d.date.to_string(),
                "verdict": d.verdict(),
                "counts": counts(|s| d.count(s)),
                "alerts_sent": d.alerts_sent(),
                "reminders": d.reminders(),
                "alerts": d.alerts.iter().map(alert).collect::<Vec<_>>(),
                "findings": d.findings.iter().map(finding).collect::<Vec<_>>(),
            })
        })
        .collect();
    let days_with = |verdict: &str| {
        backtest
            .days
            .iter()
            .filter(|d| d.verdict() == verdict)
            .count()
    };
    let report = json!({
        "from": backtest.from.to_string(),
        "to": backtest.to.to_string(),
        "config_path": backtest.config_path.display().to_string(),
        "warehouse": backtest.warehouse,
        "scope": backtest.scope.as_str(),
        "vigil_version": env!("CARGO_PKG_VERSION"),
        "days": days,
        "totals": {
            "days": backtest.days.len(),
            "error_days": days_with("error"),
            "warn_days": days_with("warn"),
            "ok_days": days_with("ok"),
            "counts": counts(|s| backtest.days.iter().map(|d| d.count(s)).sum()),
            "alerts_sent": backtest.days.iter().map(Day::alerts_sent).sum::<usize>(),
            "reminders": backtest.days.iter().map(Day::reminders).sum::<usize>(),
        },
    });
    let mut out = serde_json::to_string_pretty(&report).unwrap_or_default();
    out.push('\n');
    out
}

/// `check (date): message` of a finding, made safe for a terminal.
fn line(f: &Finding) -> String {
    text::console(&crate::report::one_line(f)).into_owned()
}

/// The console table: a row per day (date, verdict, counts, alerts), each followed by its
/// findings and alerts, then the totals.
pub fn console(backtest: &Backtest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vigil backtest {} to {} ({} days, scope {}): {}",
        backtest.from,
        backtest.to,
        backtest.days.len(),
        backtest.scope.as_str(),
        text::console(&backtest.warehouse)
    );
    let _ = writeln!(
        out,
        "{:<10}  {:<7}  {:>5}  {:>4}  {:>4}  {:>6}  {:>9}",
        "date", "verdict", "ERROR", "WARN", "INFO", "alerts", "reminders"
    );
    for day in &backtest.days {
        let _ = writeln!(
            out,
            "{:<10}  {:<7}  {:>5}  {:>4}  {:>4}  {:>6}  {:>9}",
            day.date,
            day.verdict(),
            day.count(Severity::Error),
            day.count(Severity::Warn),
            day.count(Severity::Info),
            day.alerts_sent(),
            day.reminders()
        );
        for f in &day.findings {
            let _ = writeln!(out, "    {:<5} {}", f.severity.label(), line(f));
        }
        for a in day.alerts.iter().filter(|a| a.notice != Notice::Remind) {
            let _ = writeln!(
                out,
                "    alert: {} {} {} -> {}",
                notice_name(a.notice),
                a.severity.label(),
                text::console(&a.fingerprint),
                text::console(&a.channels.join(", "))
            );
        }
    }
    let total = |s: Severity| -> usize { backtest.days.iter().map(|d| d.count(s)).sum() };
    let _ = writeln!(
        out,
        "total: {} ERROR, {} WARN, {} INFO; {} alert(s) would have been sent (new, escalated \
         and resolved incidents) and {} reminder(s)",
        total(Severity::Error),
        total(Severity::Warn),
        total(Severity::Info),
        backtest.days.iter().map(Day::alerts_sent).sum::<usize>(),
        backtest.days.iter().map(Day::reminders).sum::<usize>()
    );
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;max-width:1200px}\
h1{margin:0 0 4px}h2{margin:24px 0 4px;font-size:18px}\
.meta{color:#57606a;font-size:14px;margin:2px 0}\
table{border-collapse:collapse;margin:8px 0 20px;font-size:14px;width:100%}\
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right}\
.v{font-weight:600;border-radius:4px;padding:1px 6px;color:#fff;font-size:12px}\
.v-error,.sev-ERROR{background:#c62828}.v-warn,.sev-WARN{background:#ef6c00}\
.v-ok{background:#2e7d32}.sev-INFO{background:#1565c0}\
.sev{font-weight:600;border-radius:4px;padding:1px 6px;color:#fff;font-size:12px}";

/// `backtest.html`: the per-day table, then each day's findings and alerts.
pub fn html(backtest: &Backtest) -> String {
    let e = |s: &str| text::html(s);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vigil backtest {} to {}</title><style>{STYLE}</style></head><body>\
         <h1>Backtest {} to {}</h1>\
         <p class=\"meta\">Warehouse: <code>{}</code> · config: <code>{}</code> · scope: {} · vigil {}</p>\
         <p class=\"meta\">Each day is the daily run as of that day: rows dated later are left out. \
         Alerts: new, escalated and resolved incidents, each counted once whatever the number of channels; \
         reminders of ongoing incidents apart.</p>",
        backtest.from,
        backtest.to,
        backtest.from,
        backtest.to,
        e(&backtest.warehouse),
        e(&backtest.config_path.display().to_string()),
        backtest.scope.as_str(),
        env!("CARGO_PKG_VERSION"),
    );
    h.push_str(
        "<table><tr><th>Date</th><th>Verdict</th><th>ERROR</th><th>WARN</th><th>INFO</th>\
         <th>Alerts sent</th><th>Reminders</th></tr>",
    );
    for day in &backtest.days {
        let _ = write!(
            h,
            "<tr><td><a href=\"#d{date}\">{date}</a></td><td><span class=\"v v-{v}\">{v}</span></td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            day.count(Severity::Error),
            day.count(Severity::Warn),
            day.count(Severity::Info),
            day.alerts_sent(),
            day.reminders(),
            date = day.date,
            v = day.verdict(),
        );
    }
    h.push_str("</table>");
    for day in &backtest.days {
        let _ = write!(
            h,
            "<h2 id=\"d{date}\">{date}: {v}</h2>",
            date = day.date,
            v = day.verdict()
        );
        if day.findings.is_empty() {
            h.push_str("<p class=\"meta\">No finding.</p>");
        } else {
            h.push_str(
                "<table><tr><th>Severity</th><th>Check</th><th>Date</th><th>Message</th>\
                 <th>Value</th><th>Threshold</th></tr>",
            );
            for f in &day.findings {
                let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
                let _ = write!(
                    h,
                    "<tr><td><span class=\"sev sev-{s}\">{s}</span></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    e(&f.check),
                    f.partition_date.map(|d| d.to_string()).unwrap_or_default(),
                    e(&f.message),
                    number(f.value),
                    number(f.threshold),
                    s = f.severity.label(),
                );
            }
            h.push_str("</table>");
        }
        if !day.alerts.is_empty() {
            h.push_str(
                "<table><tr><th>Alert</th><th>Severity</th><th>Incident</th><th>Channels</th></tr>",
            );
            for a in &day.alerts {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    notice_name(a.notice),
                    a.severity.label(),
                    e(&a.fingerprint),
                    e(&a.channels.join(", ")),
                );
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</body></html>\n");
    h
}
