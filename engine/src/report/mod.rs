//! Reports: `monitoring_report.json`, `monitoring_report.md` and the console routing summary.

pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Config;
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;

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

/// The paths of the report files in an output folder: JSON, Markdown, HTML, JUnit XML.
pub fn paths(output_dir: &Path) -> [PathBuf; 4] {
    [JSON_REPORT, MD_REPORT, HTML_REPORT, JUNIT_REPORT].map(|name| output_dir.join(name))
}

/// Writes the report files into the output folder (created if missing).
pub fn write_reports(info: &RunInfo<'_>, eval: &Evaluation) -> io::Result<[PathBuf; 4]> {
    std::fs::create_dir_all(info.output_dir)?;
    let paths = paths(info.output_dir);
    let [json_path, md_path, html_path, junit_path] = &paths;
    write_atomically(json_path, &json::render(info, eval))?;
    write_atomically(md_path, &markdown::render(info, eval))?;
    write_atomically(html_path, &html::render(info, eval))?;
    write_atomically(junit_path, &junit::render(eval))?;
    Ok(paths)
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a report.
pub fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// How one destination's delivery ended (the alert module delivers; the reports record it).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The destination's name.
    pub destination: String,
    /// `slack`, `pagerduty` or `webhook`.
    pub kind: &'static str,
    /// `sent`, `failed` or `dry_run`.
    pub status: &'static str,
    /// Findings routed to it.
    pub findings: usize,
    /// HTTP requests made (PagerDuty sends one event per finding).
    pub requests: usize,
    /// Attempts made, retries included.
    pub attempts: u32,
    /// Why it failed (no secret in it).
    pub error: Option<String>,
}

impl Delivery {
    /// The JSON form in `routing.deliveries`.
    pub fn to_json(&self) -> Value {
        json!({
            "destination": self.destination,
            "kind": self.kind,
            "status": self.status,
            "findings": self.findings,
            "requests": self.requests,
            "attempts": self.attempts,
            "error": self.error,
        })
    }
}
