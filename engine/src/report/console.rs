//! The console routing summary: per severity, the count, the destinations and the first
//! findings, then one line with the verdict and where the reports are, then how each alert
//! delivery went. Every text from the data or the config is shown with its control characters
//! as visible escapes (`\x1b`), so that no value can drive the terminal.

use std::fmt::Write;

use super::text::console as shown;
use super::{incident_note, one_line, verdict, RunInfo};
use crate::rule::Severity;
use crate::runner::Evaluation;

/// How many findings per severity the console lists.
const LISTED: usize = 10;

/// Renders the routing summary (empty when console notifications are off) and the verdict
/// line. `reports` are the files written; when none could be written, pass `every_finding`
/// so that every finding is listed (the console is then the only record).
pub fn render(
    info: &RunInfo<'_>,
    eval: &Evaluation,
    reports: &[std::path::PathBuf],
    every_finding: bool,
) -> String {
    let mut out = String::new();
    if info.config.alert_routing.emit_console_notifications || every_finding {
        let listed = if every_finding { usize::MAX } else { LISTED };
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
                shown(&channels.join(", ")).into_owned()
            };
            let _ = writeln!(
                out,
                "[{severity}] {} finding(s) -> {destinations}",
                findings.len()
            );
            for f in findings.iter().take(listed) {
                let note = incident_note(info, f);
                let note = if note.is_empty() {
                    note
                } else {
                    format!(" [{note}]")
                };
                let _ = writeln!(out, "  - {}{}", shown(&one_line(f)), shown(&note));
            }
            if findings.len() > listed {
                let _ = writeln!(out, "  ... (+{} more)", findings.len() - listed);
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
    let lifecycle = &info.lifecycle;
    if info.store.is_some() {
        let silenced = eval
            .findings
            .iter()
            .filter(|f| lifecycle.silenced(f))
            .count();
        let _ = writeln!(
            out,
            "vigil: incidents: {}; {silenced} finding(s) silenced{}",
            lifecycle.summary(),
            if lifecycle.advances {
                ""
            } else {
                " (a partition older than the last run's: incidents left as they were)"
            }
        );
    }
    for s in &lifecycle.expired {
        let _ = writeln!(
            out,
            "vigil: silence of {} expired after {} ({})",
            shown(&s.check),
            s.until,
            shown(&s.reason)
        );
    }
    for path in reports {
        let _ = writeln!(out, "vigil: wrote {}", shown(&path.display().to_string()));
    }
    out.push_str(&deliveries(info));
    if let Some(Ok(path)) = &info.quarantine {
        let _ = writeln!(
            out,
            "vigil: quarantined a warehouse snapshot to {}",
            shown(&path.display().to_string())
        );
    }
    out
}

/// One line per alert delivery: sent, dry run, failed (with the attempts of a single request,
/// or per-request counts), not attempted or incomplete (the deadline).
pub fn deliveries(info: &RunInfo<'_>) -> String {
    let mut out = String::new();
    for d in &info.deliveries {
        let name = shown(&d.destination);
        let error = shown(d.error.as_deref().unwrap_or("")).into_owned();
        let _ = match (d.status, d.requests.len()) {
            ("failed", 1) => writeln!(
                out,
                "vigil: alert to {name} ({}) FAILED after {} attempt(s): {error}",
                d.kind, d.requests[0].attempts
            ),
            ("failed", _) => writeln!(out, "vigil: alert to {name} ({}) FAILED: {error}", d.kind),
            ("not_attempted", _) => writeln!(
                out,
                "vigil: alert to {name} ({}) NOT ATTEMPTED ({} finding(s)): {error}",
                d.kind, d.findings
            ),
            ("incomplete", _) => writeln!(
                out,
                "vigil: alert to {name} ({}) INCOMPLETE ({} finding(s)): {error}",
                d.kind, d.findings
            ),
            (status, _) => writeln!(
                out,
                "vigil: alert to {name} ({}): {status} ({} finding(s))",
                d.kind, d.findings
            ),
        };
    }
    out
}
