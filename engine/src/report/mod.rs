//! Reports: `monitoring_report.json`, `monitoring_report.md` and the console routing summary.

pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod numbers;
pub mod text;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Config;
use crate::rule::{Finding, Observation, Severity};
use crate::runner::Evaluation;
use crate::state::incident::{Lifecycle, Status};
use crate::state::store::StoredPoint;

/// File name of the JSON report.
pub const JSON_REPORT: &str = "monitoring_report.json";
/// File name of the Markdown report.
pub const MD_REPORT: &str = "monitoring_report.md";
/// File name of the HTML report.
pub const HTML_REPORT: &str = "monitoring_report.html";
/// File name of the JUnit XML report.
pub const JUNIT_REPORT: &str = "monitoring_report.junit.xml";

/// What the reports say about the run itself.
#[derive(Debug)]
pub struct RunInfo<'a> {
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Unique id of the run (start time and process id).
    pub run_id: String,
    /// The warehouse location (a folder, or a URL without its password).
    pub warehouse: String,
    /// The reports folder as given.
    pub output_dir: &'a Path,
    /// The config used.
    pub config: &'a Config,
    /// The quarantine snapshot, or why it failed; `None` when no quarantine was due.
    pub quarantine: Option<Result<PathBuf, String>>,
    /// How the alert deliveries went.
    pub deliveries: Vec<Delivery>,
    /// What the run did to the incidents (each finding's incident, those resolved, silences).
    pub lifecycle: Lifecycle,
    /// The warehouse's id in the state store and in alert dedup keys.
    pub warehouse_id: String,
    /// The state store as shown (a file, or a URL without its password), or `None` when the
    /// run keeps no history (`--no-state`).
    pub store: Option<String>,
    /// The values earlier runs judged for this run's metrics, by metric.
    pub judged: BTreeMap<String, Vec<StoredPoint>>,
}

impl RunInfo<'_> {
    /// The destinations configured for a severity.
    pub fn channels(&self, severity: Severity) -> &[String] {
        let routing = &self.config.alert_routing;
        match severity {
            Severity::Error => &routing.error_channels,
            Severity::Warn => &routing.warn_channels,
            Severity::Info => &routing.info_channels,
        }
    }
}

/// The one-word verdict of a run.
pub fn verdict(eval: &Evaluation) -> &'static str {
    if eval.count(Severity::Error) > 0 {
        "FAIL"
    } else if eval.count(Severity::Warn) > 0 {
        "WARN"
    } else {
        "PASS"
    }
}

/// `check (date): message`, as the console and the quarantine reason list findings.
pub fn one_line(f: &Finding) -> String {
    match f.partition_date {
        Some(day) => format!("{} ({day}): {}", f.check, f.message),
        None => format!("{}: {}", f.check, f.message),
    }
}

/// The checks that could not run, with why: each check a skip finding lists (`<check>_skipped`,
/// or `<rule>:skipped` for several checks with one reason), once, in the findings' order.
pub fn skipped_checks(eval: &Evaluation) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for f in &eval.findings {
        let Some(context) = f.context.as_ref() else {
            continue;
        };
        let (Some(reason), Some(checks)) = (
            context.get("reason").and_then(|r| r.as_str()),
            context.get("skipped").and_then(|c| c.as_array()),
        ) else {
            continue;
        };
        for check in checks.iter().filter_map(|c| c.as_str()) {
            if !out.iter().any(|(seen, _)| *seen == check) {
                out.push((check, reason));
            }
        }
    }
    out
}

/// How a check of the expected partition came out, as the reports' table of checks says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and its value is within its limits or baseline.
    Passed,
    /// Its value is outside its limits or stands out from its baseline.
    Flagged,
    /// It has no value for the partition, or too little history for a baseline.
    NotJudged,
    /// It could not run (a missing column or file); the reason is in the row.
    Skipped,
}

impl Outcome {
    /// Of an observation.
    pub fn of(o: &Observation) -> Self {
        if o.flagged {
            Outcome::Flagged
        } else if o.value.is_nan() || (o.bounds.is_none() && o.baseline.is_none()) {
            Outcome::NotJudged
        } else {
            Outcome::Passed
        }
    }

    /// The word in the reports.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Passed => "ok",
            Outcome::Flagged => "flagged",
            Outcome::NotJudged => "not judged",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One row of the reports' table of checks (plain text; each report escapes it).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// The check or metric, with its subject (`anomaly:channel_session_share direct`).
    pub name: String,
    /// Its value with its unit, `–` when none.
    pub value: String,
    /// Its limits or baseline, or why it was skipped.
    pub against: String,
    /// Its z-score, `–` when none.
    pub z: String,
    /// Its change from the baseline, `–` when none.
    pub change: String,
    /// How it came out.
    pub outcome: Outcome,
}

/// Every check of the run for its partition: each observation (a judged metric, or a check
/// with fixed limits, passing or not) by name, then each other skipped check with its reason.
/// An observation that was not judged because its check was skipped (too little history)
/// says so in its own row.
pub fn check_rows(eval: &Evaluation) -> Vec<CheckRow> {
    let skipped = skipped_checks(eval);
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|(check, _)| *check == name)
            .map(|(_, r)| *r)
    };
    let judged = eval.observations.iter().map(|o| {
        let (against, outcome) = match (Outcome::of(o), reason(&o.metric)) {
            (Outcome::NotJudged, Some(why)) => (format!("skipped: {why}"), Outcome::Skipped),
            (outcome, _) => (numbers::judged_against(o), outcome),
        };
        CheckRow {
            name: o.metric.clone(),
            value: numbers::with_unit(o.value, &o.unit),
            against,
            z: numbers::z(o.z),
            change: numbers::change(o.pct),
            outcome,
        }
    });
    let observed = |check: &str| eval.observations.iter().any(|o| o.metric == check);
    let others = skipped
        .iter()
        .filter(|(check, _)| !observed(check))
        .map(|(check, reason)| CheckRow {
            name: check.to_string(),
            value: "–".into(),
            against: format!("skipped: {reason}"),
            z: "–".into(),
            change: "–".into(),
            outcome: Outcome::Skipped,
        });
    judged.chain(others).collect()
}

/// What a person should know of a finding's incident: `new`, `since 2025-03-06, 3 runs`, and
/// `silenced through D by WHO: REASON` when a silence covers it.
pub fn incident_note(info: &RunInfo<'_>, f: &Finding) -> String {
    let Some(t) = info.lifecycle.of(f) else {
        return String::new();
    };
    let mut note = match t.status {
        Status::New => "new".to_string(),
        _ => format!(
            "since {}, {} run{}",
            t.incident.first_seen,
            t.incident.runs,
            if t.incident.runs == 1 { "" } else { "s" }
        ),
    };
    if let Some(s) = &t.silence {
        note.push_str(&format!(
            "; silenced through {} by {}: {}",
            s.until, s.created_by, s.reason
        ));
    }
    note
}

/// The paths of the report files in an output folder: JSON, Markdown, HTML, JUnit XML.
pub fn paths(output_dir: &Path) -> [PathBuf; 4] {
    [JSON_REPORT, MD_REPORT, HTML_REPORT, JUNIT_REPORT].map(|name| output_dir.join(name))
}

/// The lock file that keeps two runs out of one output folder.
pub const LOCK_FILE: &str = ".vigil.lock";
/// The start of the name of the hidden folder a run writes its reports into before moving them
/// into place.
pub const TEMP_PREFIX: &str = ".vigil-tmp-";

/// An exclusive lock on an output folder, held while a run writes into it (released when
/// dropped, or by the system when the process ends in any way).
#[derive(Debug)]
pub struct OutputLock {
    _file: std::fs::File,
}

/// Why an output folder could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another run holds it; what that run wrote into the lock file (its run id).
    Held(String),
    /// The folder or the lock file cannot be created or locked.
    Io(io::Error),
}

/// Takes the output folder's lock (creating the folder and `.vigil.lock` if missing) without
/// waiting, and writes `run_id` into the lock file.
pub fn lock_output(dir: &Path, run_id: &str) -> Result<OutputLock, LockError> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir).map_err(LockError::Io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(LockError::Held(holder.trim().to_string()));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
    }
    // Who holds it, for the message another run prints (best effort: the lock is what counts).
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{run_id} (pid {})", std::process::id()));
    Ok(OutputLock { _file: file })
}

/// Renders the four reports and writes them into the output folder as one set (see
/// [`write_set`]). Call it with the folder's [`OutputLock`] held.
pub fn write_reports(info: &RunInfo<'_>, eval: &Evaluation) -> io::Result<[PathBuf; 4]> {
    let files = [
        (JSON_REPORT, json::render(info, eval)),
        (MD_REPORT, markdown::render(info, eval)),
        (HTML_REPORT, html::render(info, eval)),
        (JUNIT_REPORT, junit::render(info, eval)),
    ];
    write_set(info.output_dir, &info.run_id, &files)?;
    Ok(paths(info.output_dir))
}

/// Rewrites the JSON report of a written set (same run, now with how the deliveries went), by
/// the same scheme as [`write_set`]. Call it with the folder's [`OutputLock`] held.
pub fn rewrite_json(info: &RunInfo<'_>, eval: &Evaluation) -> io::Result<PathBuf> {
    write_set(
        info.output_dir,
        &info.run_id,
        &[(JSON_REPORT, json::render(info, eval))],
    )?;
    Ok(info.output_dir.join(JSON_REPORT))
}

/// Writes files into `dir` as one unit: each is written and synced in a fresh hidden folder
/// `.vigil-tmp-<run id>/` inside `dir` (so on the same file system), and only when all are
/// complete are they renamed over the old ones, one after another. When a step fails, the old
/// files are put back (a hard link of each is kept until the end), the temporary folder is
/// removed and the error returned: a reader sees the old set or the new set, never half a file
/// or (after a failure) a mix. Temporaries left by a killed run are removed first; call it with
/// the folder's [`OutputLock`] held, so that no other run is writing.
pub fn write_set(dir: &Path, run_id: &str, files: &[(&str, String)]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    remove_stale_temporaries(dir);
    let tmp = dir.join(format!("{TEMP_PREFIX}{run_id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)?;
    let result = fill_and_install(dir, &tmp, files);
    let cleanup = std::fs::remove_dir_all(&tmp);
    result?;
    cleanup
}

fn fill_and_install(dir: &Path, tmp: &Path, files: &[(&str, String)]) -> io::Result<()> {
    use std::io::Write;
    for (name, contents) in files {
        let mut file = std::fs::File::create(tmp.join(name))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
    }
    // Keep the current files (hard links, or copies where links are not supported) to put
    // back if a rename fails.
    let previous = tmp.join("previous");
    std::fs::create_dir(&previous)?;
    for (name, _) in files {
        let current = dir.join(name);
        if current.exists() {
            let kept = previous.join(name);
            if std::fs::hard_link(&current, &kept).is_err() {
                std::fs::copy(&current, &kept)?;
            }
        }
    }
    for (done, (name, _)) in files.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp.join(name), dir.join(name)) {
            for (restored, _) in &files[..done] {
                let kept = previous.join(restored);
                let _ = if kept.exists() {
                    std::fs::rename(&kept, dir.join(restored))
                } else {
                    std::fs::remove_file(dir.join(restored))
                };
            }
            return Err(e);
        }
    }
    // Make the renames durable (best effort: not every file system syncs a folder).
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// Writes one file through a temporary sibling and a rename, so readers never see half of it;
/// on failure the temporary is removed.
pub fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = std::fs::write(&tmp, contents).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes what a killed run may have left in the output folder: `.vigil-tmp-*` folders, and
/// `monitoring_report.*.tmp-*` (earlier versions) and `quarantine_path.tmp-*` files.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if (name.starts_with("monitoring_report.") || name.starts_with("quarantine_path."))
            && name.contains(".tmp-")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// How one destination's delivery went (the alert module delivers; the reports record it).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The destination's name.
    pub destination: String,
    /// `slack`, `pagerduty` or `webhook`.
    pub kind: &'static str,
    /// `pending` (reports written, delivery not done yet), `sent` (every request accepted),
    /// `failed` (a request failed, or the destination could not be addressed), `incomplete`
    /// (none failed but the deadline left some unattempted), `not_attempted` (the deadline
    /// passed before any request), or `dry_run`.
    pub status: &'static str,
    /// Findings routed to it.
    pub findings: usize,
    /// One outcome per HTTP request (PagerDuty sends one event per finding).
    pub requests: Vec<RequestOutcome>,
    /// Why it failed or is incomplete (no secret in it).
    pub error: Option<String>,
}

/// How one HTTP request of a delivery went.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestOutcome {
    /// The PagerDuty dedup key of the event, if any.
    pub dedup_key: Option<String>,
    /// `pending`, `sent`, `failed`, `not_attempted` or `dry_run`.
    pub status: &'static str,
    /// Attempts made for this request, retries included.
    pub attempts: u32,
    /// Why it failed (status, a short excerpt of the answer's body; no secret in it).
    pub error: Option<String>,
}

impl Delivery {
    /// Requests with a status.
    pub fn count(&self, status: &str) -> usize {
        self.requests.iter().filter(|r| r.status == status).count()
    }

    /// Attempts made over all its requests.
    pub fn attempts(&self) -> u32 {
        self.requests.iter().map(|r| r.attempts).sum()
    }

    /// The JSON form in `routing.deliveries`.
    pub fn to_json(&self) -> Value {
        json!({
            "destination": self.destination,
            "kind": self.kind,
            "status": self.status,
            "findings": self.findings,
            "requests": self.requests.len(),
            "sent": self.count("sent"),
            "failed": self.count("failed"),
            "not_attempted": self.count("not_attempted"),
            "attempts": self.attempts(),
            "error": self.error,
            "outcomes": self.requests.iter().map(|r| json!({
                "dedup_key": r.dedup_key,
                "status": r.status,
                "attempts": r.attempts,
                "error": r.error,
            })).collect::<Vec<_>>(),
        })
    }
}
