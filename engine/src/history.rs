//! `vigil silence add|list|remove` and `vigil history`: the commands that edit and show the
//! state store.

use std::io::Write;

use chrono::{NaiveDate, Utc};
use clap::ValueEnum;
use serde_json::json;

use crate::report::text;
use crate::state::incident::Silence;
use crate::state::store::Store;
use crate::state::Location;

/// How `vigil history` and `vigil silence list` print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Text,
    /// One JSON document.
    Json,
}

/// `vigil silence add`: stores a silence and prints its id.
pub fn silence_add(
    path: &Location,
    check: String,
    subject: Option<String>,
    until: NaiveDate,
    reason: String,
    out: &mut dyn Write,
) -> Result<(), String> {
    if check.trim().is_empty() {
        return Err("give the check id to silence (e.g. anomaly:channel_share)".into());
    }
    if reason.trim().is_empty() {
        return Err("give the reason with --reason: every report shows it".into());
    }
    let store = Store::open(path, true).map_err(|e| e.to_string())?;
    let created_by = ["VIGIL_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let silence = Silence {
        id: None,
        check,
        subject,
        until,
        reason,
        created_by,
        expiry_reported: false,
        origin: "store",
    };
    let id = store
        .add_silence(&silence, Utc::now())
        .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "silence #{id} added: {} through partition {}: {} (store {})",
        text::console(&covered(&silence)),
        silence.until,
        text::console(&silence.reason),
        store.location()
    );
    Ok(())
}

/// What a silence covers: `check` or `check [subject]`.
fn covered(s: &Silence) -> String {
    match &s.subject {
        Some(subject) => format!("{} [{subject}]", s.check),
        None => s.check.clone(),
    }
}

/// `vigil silence list`: the silences not removed, with whether each is still active today
/// (UTC) — a run judges a silence by its partition date.
pub fn silence_list(path: &Location, format: Format, out: &mut dyn Write) -> Result<(), String> {
    let store = Store::open(path, false).map_err(|e| e.to_string())?;
    let silences = store.silences().map_err(|e| e.to_string())?;
    let today = Utc::now().date_naive();
    match format {
        Format::Json => {
            let list: Vec<_> = silences
                .iter()
                .map(|s| {
                    let mut shown = serde_json::to_value(s).unwrap_or_default();
                    shown["expired"] = json!(s.until < today);
                    shown
                })
                .collect();
            let _ = writeln!(out, "{}", json!({ "silences": list }));
        }
        Format::Text => {
            if silences.is_empty() {
                let _ = writeln!(out, "no silences in {}", store.location());
                return Ok(());
            }
            let rows: Vec<Vec<String>> = silences
                .iter()
                .map(|s| {
                    vec![
                        format!("#{}", s.id.unwrap_or_default()),
                        covered(s),
                        s.until.to_string(),
                        if s.until < today { "expired" } else { "active" }.into(),
                        format!("{} ({})", s.created_by, s.origin),
                        s.reason.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &["id", "covers", "until", "status", "by", "reason"],
                &rows,
            );
        }
    }
    Ok(())
}

/// `vigil silence remove ID`.
pub fn silence_remove(path: &Location, id: i64, out: &mut dyn Write) -> Result<(), String> {
    let store = Store::open(path, false).map_err(|e| e.to_string())?;
    if store
        .remove_silence(id, Utc::now())
        .map_err(|e| e.to_string())?
    {
        let _ = writeln!(out, "silence #{id} removed");
        Ok(())
    } else {
        Err(format!(
            "no active silence #{id} in {} (see `vigil silence list`)",
            store.location()
        ))
    }
}

/// `vigil history`: the runs, then the incidents.
pub fn show(
    path: &Location,
    check: Option<&str>,
    since: Option<NaiveDate>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), String> {
    let store = Store::open(path, false).map_err(|e| e.to_string())?;
    let runs = store.runs(since).map_err(|e| e.to_string())?;
    let incidents = store.incidents(check, since).map_err(|e| e.to_string())?;
    match format {
        Format::Json => {
            let _ = writeln!(out, "{}", json!({"runs": runs, "incidents": incidents}));
        }
        Format::Text => {
            let _ = writeln!(out, "Runs ({}):", runs.len());
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.expected_date.clone(),
                        r.verdict.clone(),
                        format!(
                            "{} ERROR, {} WARN, {} INFO",
                            r.counts[0], r.counts[1], r.counts[2]
                        ),
                        r.started.clone(),
                        r.warehouse_id.clone(),
                        r.id.clone(),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "partition",
                    "verdict",
                    "findings",
                    "started",
                    "warehouse",
                    "run",
                ],
                &rows,
            );
            let _ = writeln!(out, "\nIncidents ({}):", incidents.len());
            let rows: Vec<Vec<String>> = incidents
                .iter()
                .map(|i| {
                    vec![
                        format!("#{}", i.id),
                        match &i.resolved_on {
                            Some(day) => format!("resolved {day}"),
                            None => i.status.clone(),
                        },
                        i.severity.clone(),
                        i.fingerprint.clone(),
                        format!("{} .. {}", i.first_seen, i.last_seen),
                        i.runs.to_string(),
                        text::truncate(&i.message, 100).into_owned(),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "id",
                    "status",
                    "severity",
                    "fingerprint",
                    "seen",
                    "runs",
                    "message",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

/// Prints rows under a header in aligned columns (cells escaped for the terminal).
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) {
    let cells: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(
            rows.iter()
                .map(|r| r.iter().map(|c| text::console(c).into_owned()).collect()),
        )
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
}
