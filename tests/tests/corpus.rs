//! The bad-input corpus (`tests/corpus/*/case.yml`, described in `tests/corpus/README.md`):
//! every case's own expectations, and for every run no panic, a consistent set of reports and
//! an unchanged warehouse.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;
use vigil_tests::{puffy, repo_root, vigil, Output};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default = "puffy_warehouse")]
    warehouse: String,
    #[serde(default = "example_config")]
    config: String,
    #[serde(default)]
    edits: Vec<Edit>,
    #[serde(default = "run_command")]
    command: Vec<String>,
    expect: Expect,
}

fn puffy_warehouse() -> String {
    "puffy".into()
}

fn example_config() -> String {
    "example".into()
}

fn run_command() -> Vec<String> {
    ["run", "--expected_run_date", "2025-03-08"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    file: String,
    regex: Option<String>,
    with: Option<String>,
    count: Option<usize>,
    write: Option<String>,
    append: Option<String>,
    truncate: Option<u64>,
    #[serde(default)]
    remove: bool,
    symlink: Option<PathBuf>,
    #[serde(default)]
    fifo: bool,
    rename: Option<PathBuf>,
    /// Replace the file by an (empty) folder.
    #[serde(default)]
    mkdir: bool,
    /// `write` and `append` (and `with`) are written this many times over.
    repeat: Option<usize>,
    /// `with`, `write` and `append` are bytes: each character U+0000..=U+00FF is one byte
    /// (`"\xff"` is the byte 0xFF, invalid UTF-8), not its UTF-8 encoding.
    #[serde(default)]
    bytes: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    #[serde(default)]
    findings: Vec<Expected>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    stderr: Vec<String>,
    #[serde(default)]
    stdout: Vec<String>,
    /// Regular expressions stderr must match (e.g. a `file:line:col:` location).
    #[serde(default)]
    stderr_matches: Vec<String>,
    #[serde(default = "sixty")]
    max_seconds: u64,
    /// Lines the quarantine's REASON.txt must contain (a snapshot must have been taken).
    #[serde(default)]
    quarantine: Vec<String>,
}

fn sixty() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    check: String,
    severity: Option<String>,
    message: Option<String>,
    date: Option<String>,
}

/// The bytes of a string of the case: UTF-8, or with `bytes`, one byte per character.
fn encode(text: &str, bytes: bool, repeat: Option<usize>) -> Result<Vec<u8>, String> {
    let one = if bytes {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("{c:?} is not a byte")))
            .collect::<Result<Vec<u8>, String>>()?
    } else {
        text.as_bytes().to_vec()
    };
    Ok(one.repeat(repeat.unwrap_or(1)))
}

/// Applies one edit to the warehouse copy.
fn apply(warehouse: &Path, edit: &Edit) -> Result<(), String> {
    let path = warehouse.join(&edit.file);
    let io = |e: std::io::Error| format!("{}: {e}", edit.file);
    if let Some(pattern) = &edit.regex {
        let regex = regex::bytes::Regex::new(pattern).map_err(|e| e.to_string())?;
        let text = fs::read(&path).map_err(io)?;
        let with = encode(edit.with.as_deref().unwrap_or(""), edit.bytes, edit.repeat)?;
        let found = regex.find_iter(&text).count();
        let wanted = edit.count.unwrap_or(found);
        if found < wanted || found == 0 {
            return Err(format!(
                "{}: `{pattern}` matches {found} time(s), the case needs {wanted}",
                edit.file
            ));
        }
        fs::write(&path, regex.replacen(&text, wanted, with.as_slice())).map_err(io)?;
    }
    if let Some(text) = &edit.write {
        fs::write(&path, encode(text, edit.bytes, edit.repeat)?).map_err(io)?;
    }
    if let Some(text) = &edit.append {
        let mut bytes = fs::read(&path).map_err(io)?;
        bytes.extend(encode(text, edit.bytes, edit.repeat)?);
        fs::write(&path, bytes).map_err(io)?;
    }
    if let Some(len) = edit.truncate {
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .map_err(io)?;
    }
    if edit.remove {
        fs::remove_file(&path).map_err(io)?;
    }
    if let Some(to) = &edit.rename {
        let to = warehouse.join(to);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::rename(&path, to).map_err(io)?;
    }
    if let Some(target) = &edit.symlink {
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path).map_err(io)?;
    }
    if edit.mkdir {
        let _ = fs::remove_file(&path);
        fs::create_dir_all(&path).map_err(io)?;
    }
    if edit.fifo {
        let _ = fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .map_err(io)?;
        if !made.success() {
            return Err(format!("mkfifo {} failed", path.display()));
        }
    }
    Ok(())
}

/// Every entry of a folder (links not followed): bytes or link target, and modification time.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).expect("metadata");
        let content = if meta.file_type().is_symlink() {
            fs::read_link(&path)
                .expect("link")
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_file() {
            fs::read(&path).unwrap_or_else(|e| format!("(unreadable: {e})").into_bytes())
        } else if meta.is_dir() {
            out.extend(fingerprint(&path));
            Vec::new()
        } else {
            b"(special file)".to_vec()
        };
        out.insert(path, (content, meta.modified().ok()));
    }
    out
}

/// Runs vigil in-process on a thread, waiting at most `limit`.
fn run_bounded(args: Vec<std::ffi::OsString>, limit: Duration) -> Result<Output, String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| vigil(args));
        let _ = send.send(result);
    });
    match receive.recv_timeout(limit) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(_)) => Err("vigil panicked".into()),
        Err(_) => Err(format!("vigil did not finish within {} s", limit.as_secs())),
    }
}

/// What is wrong with one case's outcome (empty: nothing).
fn check_case(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join("case.yml")).expect("case.yml");
    let case: Case = match serde_yaml::from_str(&text) {
        Ok(case) => case,
        Err(e) => return vec![format!("case.yml: {e}")],
    };
    assert!(
        !case.about.trim().is_empty(),
        "{dir:?}: say what the case is"
    );
    let work = tempfile::tempdir().expect("temp dir");
    let warehouse = work.path().join("warehouse");
    fs::create_dir(&warehouse).expect("mkdir");
    let source = match case.warehouse.as_str() {
        "puffy" => puffy().join("warehouse"),
        "own" => dir.join("warehouse"),
        other => return vec![format!("unknown warehouse `{other}`")],
    };
    for entry in fs::read_dir(&source).expect("warehouse source").flatten() {
        fs::copy(entry.path(), warehouse.join(entry.file_name())).expect("copy");
    }
    for edit in &case.edits {
        if let Err(e) = apply(&warehouse, edit) {
            return vec![format!("edit: {e}")];
        }
    }
    let config = match case.config.as_str() {
        "example" => repo_root().join("schema/examples/puffy.yml"),
        "reference" => puffy().join("monitoring_rules.reference.yml"),
        file => dir.join(file),
    };
    let out = work.path().join("reports");
    let mut args: Vec<std::ffi::OsString> = case
        .command
        .iter()
        .map(|arg| {
            arg.replace("{warehouse}", &warehouse.to_string_lossy())
                .replace("{config}", &config.to_string_lossy())
                .replace("{out}", &out.to_string_lossy())
                .replace("{work}", &work.path().to_string_lossy())
                .into()
        })
        .collect();
    if case.command.first().map(String::as_str) == Some("run") {
        // Each of the flags the case does not give itself.
        let given = |names: &[&str]| {
            case.command.iter().any(|a| {
                names
                    .iter()
                    .any(|n| a == n || a.starts_with(&format!("{n}=")))
            })
        };
        let mut added: Vec<std::ffi::OsString> = vec!["--no-alerts".into()];
        if !given(&["--warehouse", "--warehouse_dir", "--warehouse-dir"]) {
            added.extend(["--warehouse".into(), warehouse.clone().into_os_string()]);
        }
        if !given(&["--rules"]) {
            added.extend(["--rules".into(), config.clone().into_os_string()]);
        }
        if !given(&["--output_dir", "--output-dir"]) {
            added.extend(["--output_dir".into(), out.clone().into_os_string()]);
        }
        args.splice(1..1, added);
    }
    let before = fingerprint(&warehouse);
    let output = match run_bounded(args, Duration::from_secs(case.expect.max_seconds)) {
        Ok(output) => output,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    if output.code != case.expect.exit {
        problems.push(format!(
            "exit {} instead of {}; stderr: {}",
            output.code, case.expect.exit, output.stderr
        ));
    }
    for part in &case.expect.stderr {
        if !output.stderr.contains(part.as_str()) {
            problems.push(format!(
                "stderr lacks `{part}`: {}",
                output.stderr.trim_end()
            ));
        }
    }
    for pattern in &case.expect.stderr_matches {
        match regex::Regex::new(pattern) {
            Ok(regex) if regex.is_match(&output.stderr) => {}
            Ok(_) => problems.push(format!(
                "stderr does not match `{pattern}`: {}",
                output.stderr.trim_end()
            )),
            Err(e) => problems.push(format!("stderr_matches `{pattern}`: {e}")),
        }
    }
    for part in &case.expect.stdout {
        if !output.stdout.contains(part.as_str()) {
            problems.push(format!(
                "stdout lacks `{part}`: {}",
                output.stdout.trim_end()
            ));
        }
    }
    if fingerprint(&warehouse) != before {
        problems.push("the warehouse was modified".into());
    }
    if case.command.first().map(String::as_str) == Some("run") && output.code != 2 {
        problems.extend(check_reports(&out, &case.expect));
    }
    if !case.expect.quarantine.is_empty() {
        let reason = fs::read_to_string(out.join("quarantine_path.txt"))
            .and_then(|snapshot| fs::read_to_string(Path::new(&snapshot).join("REASON.txt")));
        match reason {
            Ok(reason) => {
                for line in &case.expect.quarantine {
                    if !reason.contains(line.as_str()) {
                        problems.push(format!("REASON.txt lacks `{line}`:\n{reason}"));
                    }
                }
            }
            Err(e) => problems.push(format!("no quarantine snapshot: {e}")),
        }
    }
    problems
}

/// The reports of a run: all written by the same run; the expected findings there.
fn check_reports(out: &Path, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    let json: Value = match fs::read_to_string(out.join("monitoring_report.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(json) => json,
        Err(e) => return vec![format!("monitoring_report.json: {e}")],
    };
    let run_id = json["run_id"].as_str().unwrap_or_default().to_string();
    for report in [
        "monitoring_report.md",
        "monitoring_report.html",
        "monitoring_report.junit.xml",
    ] {
        match fs::read_to_string(out.join(report)) {
            Ok(text) if text.contains(&run_id) => {}
            Ok(_) => problems.push(format!("{report} is not from run {run_id}")),
            Err(e) => problems.push(format!("{report}: {e}")),
        }
    }
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    let shown = || {
        findings
            .iter()
            .map(|f| format!("{} {} {}", f["severity"], f["check"], f["message"]))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    for want in &expect.findings {
        let found = findings.iter().any(|f| {
            f["check"] == want.check.as_str()
                && want
                    .severity
                    .as_ref()
                    .is_none_or(|s| f["severity"] == s.as_str())
                && want.message.as_ref().is_none_or(|m| {
                    f["message"]
                        .as_str()
                        .is_some_and(|text| text.contains(m.as_str()))
                })
                && want
                    .date
                    .as_ref()
                    .is_none_or(|d| f["partition_date"] == d.as_str())
        });
        if !found {
            problems.push(format!("no finding {want:?} among:\n  {}", shown()));
        }
    }
    for check in &expect.absent {
        if findings.iter().any(|f| f["check"] == check.as_str()) {
            problems.push(format!("finding {check} is reported:\n  {}", shown()));
        }
    }
    problems
}

#[test]
fn every_corpus_case_has_its_expected_outcome_and_leaves_the_warehouse_alone() {
    // VIGIL_CORPUS=tests/corpus-pending runs the cases vigil does not pass yet;
    // VIGIL_CORPUS_CASES=part,part runs only the cases whose folder name contains a part.
    let folder = std::env::var("VIGIL_CORPUS").unwrap_or_else(|_| "tests/corpus".into());
    let only = std::env::var("VIGIL_CORPUS_CASES").unwrap_or_default();
    let root = repo_root().join(folder);
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .expect("the corpus folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("case.yml").exists())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            only.is_empty() || only.split(',').any(|part| name.contains(part))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in {}", root.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| {
            let problems = check_case(dir);
            (!problems.is_empty()).then(|| {
                format!(
                    "{}:\n- {}",
                    dir.file_name().unwrap().to_string_lossy(),
                    problems.join("\n- ")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
