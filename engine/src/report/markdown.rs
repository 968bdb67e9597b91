//! `monitoring_report.md`: the verdict, the tables read, and the findings, for people.

use std::fmt::Write;

use super::text::{md as md_text, md_cell_code, md_code};
use super::{check_rows, incident_note, verdict, Outcome, RunInfo};
use crate::rule::Severity;
use crate::runner::Evaluation;
use crate::state::incident::Status;

/// Renders the Markdown report.
pub fn render(info: &RunInfo<'_>, eval: &Evaluation) -> String {
    let mut md = String::new();
    let counts = |s| eval.count(s);
    let _ = writeln!(
        md,
        "# Daily Monitoring Report: {}\n\n\
         - Expected partition date: **{}** (scope: {})\n\
         - Generated (UTC): {} (run `{}`, vigil {})\n\
         - Warehouse: {}\n\
         - Config: {}",
        verdict(eval),
        eval.expected_date,
        eval.scope.as_str(),
        info.started.format("%Y-%m-%d %H:%M:%S"),
        info.run_id,
        env!("CARGO_PKG_VERSION"),
        md_code(&info.warehouse),
        md_code(&info.config.path.display().to_string()),
    );
    match &info.quarantine {
        Some(Ok(path)) => {
            let _ = writeln!(
                md,
                "- Quarantined snapshot: {}",
                md_code(&path.display().to_string())
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(md, "- Quarantine FAILED: {}", md_text(e));
        }
        None => {}
    }
    let _ = writeln!(
        md,
        "\n## Summary\n- ERROR: **{}** | WARN: **{}** | INFO: **{}**",
        counts(Severity::Error),
        counts(Severity::Warn),
        counts(Severity::Info)
    );

    let rows = check_rows(eval);
    if !rows.is_empty() {
        let _ = writeln!(
            md,
            "\n## Checks for {}\n| check | value | limits or baseline | z | change | result |\n|---|---:|---|---:|---:|---|",
            eval.expected_date
        );
        for row in rows {
            let result = match row.outcome {
                Outcome::Passed => row.outcome.label().to_string(),
                other => format!("**{}**", other.label()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {result} |",
                md_cell_code(&row.name),
                md_text(&row.value),
                md_text(&row.against),
                row.z,
                row.change,
            );
        }
    }

    let _ = writeln!(md, "\n## Rules\n| rule | origin |\n|---|---|");
    for rule in &info.config.rules {
        let _ = writeln!(
            md,
            "| {} | {} |",
            md_cell_code(&rule.id),
            md_text(&rule.origin.to_string())
        );
    }

    let _ = writeln!(md, "\n## Tables\n| table | file | rows | days | first day | last day | unparsable dates |\n|---|---|---:|---:|---|---|---:|");
    for scan in &eval.scans {
        let file = scan
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &scan.outcome {
            Ok(stats) => {
                let dates = stats.dates.as_ref();
                let span = dates.and_then(|d| d.span());
                let show = |v: Option<String>| v.unwrap_or_else(|| "–".into());
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md_text(&scan.table),
                    md_cell_code(&file),
                    stats.rows,
                    show(dates.map(|d| d.rows_by_day.len().to_string())),
                    show(span.map(|s| s.0.to_string())),
                    show(span.map(|s| s.1.to_string())),
                    show(dates.map(|d| d.unparsable_total().to_string())),
                );
            }
            Err(problem) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | – | – | – | – |",
                    md_text(&scan.table),
                    md_cell_code(&file),
                    md_text(&format!("{problem:?}"))
                );
            }
        }
    }

    let _ = writeln!(md, "\n## Findings");
    if eval.findings.is_empty() {
        let _ = writeln!(md, "No issues detected.");
    }
    for f in &eval.findings {
        let _ = write!(md, "- **{}** {}", f.severity, md_code(&f.check));
        if let Some(day) = f.partition_date {
            let _ = write!(md, " ({day})");
        }
        let _ = write!(md, ": {}", md_text(&f.message));
        if let Some(t) = f.threshold {
            let _ = write!(md, " (threshold={})", number(t));
        }
        if let Some(v) = f.value {
            let _ = write!(md, " value={}", number(v));
        }
        let note = incident_note(info, f);
        if !note.is_empty() {
            let _ = write!(md, " — _{}_", md_text(&note));
        }
        md.push('\n');
    }
    history(&mut md, info);
    md
}

/// The incidents this run resolved and the silences that expired.
fn history(md: &mut String, info: &RunInfo<'_>) {
    let lifecycle = &info.lifecycle;
    let resolved: Vec<_> = lifecycle
        .tracked
        .values()
        .filter(|t| t.status == Status::Resolved)
        .collect();
    if !resolved.is_empty() {
        let _ = writeln!(md, "\n## Resolved since the last run");
        for t in resolved {
            let i = &t.incident;
            let subject = i
                .subject
                .as_ref()
                .map(|s| format!(" [{}]", md_text(s)))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- {}{subject}: failing since {}, {} run(s); last: {}",
                md_code(&i.check),
                i.first_seen,
                i.runs,
                md_text(&i.message)
            );
        }
    }
    if !lifecycle.expired.is_empty() {
        let _ = writeln!(md, "\n## Silences expired");
        for s in &lifecycle.expired {
            let _ = writeln!(
                md,
                "- {} expired after {} (by {}: {})",
                md_code(&s.check),
                s.until,
                md_text(&s.created_by),
                md_text(&s.reason)
            );
        }
    }
    match &info.store {
        Some(path) => {
            let _ = writeln!(
                md,
                "\nHistory: {} incident(s); state store {} (warehouse `{}`).",
                lifecycle.summary(),
                md_code(path),
                md_text(&info.warehouse_id)
            );
        }
        None => {
            let _ = writeln!(md, "\nHistory: none kept (`--no-state`).");
        }
    }
}

/// A number as a person reads it: integers without a fraction, others as written by Rust.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}
