//! `monitoring_report.json`: the reference's fields plus run metadata and table health.
//! Always valid JSON: a non-finite number is written as `null`.

use serde_json::{json, Map, Value};

use super::{verdict, RunInfo};
use crate::config::ConfigFormat;
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;
use crate::scan::TableScan;
use crate::state::incident::{Silence, Status, Tracked};
use crate::state::{dedup_key, fingerprint};

/// Renders the JSON report (pretty, with a trailing newline).
pub fn render(info: &RunInfo<'_>, eval: &Evaluation) -> String {
    let counts: Map<String, Value> = Severity::ALL
        .iter()
        .map(|s| (s.label().to_string(), json!(eval.count(*s))))
        .collect();
    let plan: Map<String, Value> = Severity::ALL
        .iter()
        .map(|s| (s.label().to_string(), json!(info.channels(*s))))
        .collect();
    let (quarantine_path, quarantine_error) = match &info.quarantine {
        Some(Ok(path)) => (json!(path.display().to_string()), Value::Null),
        Some(Err(e)) => (Value::Null, json!(e)),
        None => (Value::Null, Value::Null),
    };
    let report = json!({
        "generated_utc": info.started.date_naive().to_string(),
        "run_started_utc": info.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "run_id": info.run_id,
        "vigil_version": env!("CARGO_PKG_VERSION"),
        "config_path": info.config.path.display().to_string(),
        "config_format": match info.config.format {
            ConfigFormat::Native => "native",
            ConfigFormat::Reference => "reference",
        },
        "warehouse_dir": info.warehouse,
        "expected_partition_date": eval.expected_date.to_string(),
        "scope": eval.scope.as_str(),
        "verdict": verdict(eval),
        "counts": counts,
        "routing": {
            "counts": counts,
            "routing_plan": plan,
            "deliveries": info.deliveries.iter().map(super::Delivery::to_json).collect::<Vec<_>>(),
        },
        "quarantine_path": quarantine_path,
        "quarantine_error": quarantine_error,
        "rules": info.config.rules.iter()
            .map(|r| json!({"id": r.id, "origin": r.origin.to_string()}))
            .collect::<Vec<_>>(),
        "tables": eval.scans.iter().map(table).collect::<Vec<_>>(),
        "observations": eval.observations.iter().map(|o| json!({
            "metric": o.metric,
            "partition_date": o.day.to_string(),
            "value": o.value,
            "baseline_mean": o.baseline.map(|b| b.0),
            "baseline_std": o.baseline.map(|b| b.1),
            "bounds": o.bounds.map(|(lower, upper)| json!({
                // JSON has no infinity: an open side is null.
                "lower": lower.is_finite().then_some(lower),
                "upper": upper.is_finite().then_some(upper),
            })),
            "z": o.z,
            "pct_change": o.pct,
            "flagged": o.flagged,
            "unit": o.unit,
        })).collect::<Vec<_>>(),
        "daily_metrics": eval.observations.iter().map(|o| (
            o.metric.clone(),
            o.history.iter().map(|p| (p.day.to_string(), json!(p.value))).collect::<Map<String, Value>>().into(),
        )).collect::<Map<String, Value>>(),
        "findings": eval.findings.iter().map(|f| finding(info, f)).collect::<Vec<_>>(),
        "state": state(info),
    });
    let mut text = serde_json::to_string_pretty(&report).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Every computed metric, per table: each request with its value, or why it is unavailable
/// (`vigil run --metrics-out`).
pub fn metrics(eval: &Evaluation) -> String {
    let tables: Map<String, Value> = eval
        .scans
        .iter()
        .map(|scan| {
            let metrics: Vec<Value> = scan
                .metrics
                .iter()
                .map(|(request, value)| match value {
                    Ok(v) => json!({"request": request, "value": v}),
                    Err(reason) => json!({"request": request, "unavailable": reason}),
                })
                .collect();
            (scan.table.clone(), Value::Array(metrics))
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&tables).expect("metrics serialize");
    text.push('\n');
    text
}

fn table(scan: &TableScan) -> Value {
    let mut out = json!({
        "table": scan.table,
        "file": scan.path.display().to_string(),
    });
    match &scan.outcome {
        Ok(stats) => {
            let dates = stats.dates.as_ref();
            let span = dates.and_then(|d| d.span());
            out["status"] = json!("read");
            out["rows"] = json!(stats.rows);
            out["columns"] = json!(stats.columns.len());
            out["missing_columns"] = json!(stats.missing_columns);
            out["malformed_rows"] = json!(stats.malformed_rows);
            out["first_day"] = json!(span.map(|s| s.0.to_string()));
            out["last_day"] = json!(span.map(|s| s.1.to_string()));
            out["days_with_rows"] = json!(dates.map(|d| d.rows_by_day.len()));
            out["null_dates"] = json!(dates.map(|d| d.nulls));
            out["unparsable_dates"] = json!(dates.map(|d| d.unparsable_total()));
        }
        Err(problem) => out["status"] = json!(format!("{problem:?}").to_lowercase()),
    }
    if let Some(p) = &scan.partitions {
        out["partitions"] = json!({
            "read": p.read,
            "reused": p.reused,
            "full_scan_reason": p.full_scan_reason,
        });
    }
    out
}

fn finding(info: &RunInfo<'_>, f: &Finding) -> Value {
    let tracked = info.lifecycle.of(f);
    json!({
        "severity": f.severity.label(),
        "check": f.check,
        "rule": f.rule,
        "subject": f.subject,
        "fingerprint": fingerprint(f),
        "partition_date": f.partition_date.map(|d| d.to_string()),
        "message": f.message,
        "value": f.value,
        "threshold": f.threshold,
        "context": f.context,
        "incident": tracked.map(|t| incident(info, t)),
        "silenced": tracked.and_then(|t| t.silence.as_ref()).map(silence),
    })
}

fn incident(info: &RunInfo<'_>, t: &Tracked) -> Value {
    json!({
        "status": t.status,
        "first_seen": t.incident.first_seen.to_string(),
        "last_seen": t.incident.last_seen.to_string(),
        "runs": t.incident.runs,
        "dedup_key": dedup_key(&info.warehouse_id, &t.incident.fingerprint),
    })
}

fn silence(s: &Silence) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// The run's history: where it is kept, the incidents this run resolved, expired silences.
fn state(info: &RunInfo<'_>) -> Value {
    let lifecycle = &info.lifecycle;
    json!({
        "store": info.store,
        "warehouse_id": info.warehouse_id,
        "advances_incidents": lifecycle.advances,
        "incidents": {
            "new": lifecycle.count(Status::New),
            "ongoing": lifecycle.count(Status::Ongoing),
            "resolved": lifecycle.count(Status::Resolved),
        },
        "resolved": lifecycle.tracked.values()
            .filter(|t| t.status == Status::Resolved)
            .map(|t| json!({
                "fingerprint": t.incident.fingerprint,
                "check": t.incident.check,
                "subject": t.incident.subject,
                "severity": t.incident.severity.label(),
                "first_seen": t.incident.first_seen.to_string(),
                "last_seen": t.incident.last_seen.to_string(),
                "runs": t.incident.runs,
                "message": t.incident.message,
                "dedup_key": dedup_key(&info.warehouse_id, &t.incident.fingerprint),
            }))
            .collect::<Vec<_>>(),
        "silences_expired": lifecycle.expired.iter().map(silence).collect::<Vec<_>>(),
    })
}
