//! Reports: `monitoring_report.json`, `monitoring_report.md` and the console routing summary.

pub mod console;
pub mod json;
pub mod markdown;

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;

/// File name of the JSON report.
pub const JSON_REPORT: &str = "monitoring_report.json";
/// File name of the Markdown report.
pub const MD_REPORT: &str = "monitoring_report.md";

/// What the reports say about the run itself.
#[derive(Debug)]
pub struct RunInfo<'a> {
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Unique id of the run (start time and process id).
    pub run_id: String,
    /// The warehouse folder as given.
    pub warehouse_dir: &'a Path,
    /// The reports folder as given.
    pub output_dir: &'a Path,
    /// The config used.
    pub config: &'a Config,
    /// The quarantine snapshot, or why it failed; `None` when no quarantine was due.
    pub quarantine: Option<Result<PathBuf, String>>,
    /// How the alert deliveries went.
    pub deliveries: Vec<crate::alert::Delivery>,
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

/// The paths of the report files in an output folder.
pub fn paths(output_dir: &Path) -> [PathBuf; 2] {
    [output_dir.join(JSON_REPORT), output_dir.join(MD_REPORT)]
}

/// Writes both report files into the output folder (created if missing).
pub fn write_reports(info: &RunInfo<'_>, eval: &Evaluation) -> io::Result<[PathBuf; 2]> {
    std::fs::create_dir_all(info.output_dir)?;
    let [json_path, md_path] = paths(info.output_dir);
    write_atomically(&json_path, &json::render(info, eval))?;
    write_atomically(&md_path, &markdown::render(info, eval))?;
    Ok([json_path, md_path])
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a report.
pub fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
