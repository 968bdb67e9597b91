//! `monitoring_report.md`: the verdict, the tables read, and the findings, for people.

use std::fmt::Write;

use super::text::{md as md_text, md_cell_code, md_code};
use super::{verdict, RunInfo};
use crate::rule::Severity;
use crate::runner::Evaluation;

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

    if !eval.observations.is_empty() {
        let _ = writeln!(
            md,
            "\n## Metrics for {}\n| metric | value | baseline | z | change | flagged |\n|---|---:|---:|---:|---:|---|",
            eval.expected_date
        );
        for o in &eval.observations {
            let baseline = match (o.bounds, o.baseline) {
                (Some((lower, upper)), _) => format!("limits {} to {}", short(lower), short(upper)),
                (None, Some((c, s))) => format!("{} ± {}", short(c), short(s)),
                (None, None) => "–".to_string(),
            };
            let z = o.z.map_or("–".to_string(), |z| format!("{z:.2}"));
            let pct = o
                .pct
                .map_or("–".to_string(), |p| format!("{:+.1}%", p * 100.0));
            let _ = writeln!(
                md,
                "| {} | {} | {baseline} | {z} | {pct} | {} |",
                md_cell_code(&o.metric),
                short(o.value),
                if o.flagged { "**yes**" } else { "" }
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
        md.push('\n');
    }
    md
}

/// A number in a table: four significant digits or so.
fn short(v: f64) -> String {
    match v.abs() {
        a if a.is_infinite() => if v > 0.0 { "∞" } else { "-∞" }.into(),
        a if a >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
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
