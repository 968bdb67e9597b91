//! The console routing summary: per severity, the count, the destinations and the first
//! findings, then one line with the verdict and where the reports are.

use std::fmt::Write;

use super::{one_line, verdict, RunInfo};
use crate::rule::Severity;
use crate::runner::Evaluation;

/// How many findings per severity the console lists.
const LISTED: usize = 10;

/// Renders the routing summary (empty when console notifications are off) and the verdict line.
pub fn render(info: &RunInfo<'_>, eval: &Evaluation, reports: &[std::path::PathBuf]) -> String {
    let mut out = String::new();
    if info.config.alert_routing.emit_console_notifications {
        for severity in Severity::ALL {
            let findings: Vec<_> = eval
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .collect();
            if findings.is_empty() {
                continue;
            }
            let channels = info.channels(severity);
            let destinations = if channels.is_empty() {
                "(no destination configured)".to_string()
            } else {
                channels.join(", ")
            };
            let _ = writeln!(
                out,
                "[{severity}] {} finding(s) -> {destinations}",
                findings.len()
            );
            for f in findings.iter().take(LISTED) {
                let _ = writeln!(out, "  - {}", one_line(f));
            }
            if findings.len() > LISTED {
                let _ = writeln!(out, "  ... (+{} more)", findings.len() - LISTED);
            }
        }
    }
    let _ = writeln!(
        out,
        "vigil: {} for partition {}: {} ERROR, {} WARN, {} INFO",
        verdict(eval),
        eval.expected_date,
        eval.count(Severity::Error),
        eval.count(Severity::Warn),
        eval.count(Severity::Info),
    );
    for path in reports {
        let _ = writeln!(out, "vigil: wrote {}", path.display());
    }
    for d in &info.deliveries {
        let _ = match &d.error {
            Some(e) => writeln!(
                out,
                "vigil: alert to {} ({}) FAILED after {} attempt(s): {e}",
                d.destination, d.kind, d.attempts
            ),
            None => writeln!(
                out,
                "vigil: alert to {} ({}): {} ({} finding(s))",
                d.destination, d.kind, d.status, d.findings
            ),
        };
    }
    if let Some(Ok(path)) = &info.quarantine {
        let _ = writeln!(
            out,
            "vigil: quarantined a warehouse snapshot to {}",
            path.display()
        );
    }
    out
}
