//! Helpers shared by vigil's cross-crate tests: paths to the repo and to the shared Puffy data,
//! and an in-process `vigil` command with the builtin rules linked.

use std::path::{Path, PathBuf};

// Naming the crate keeps its `inventory` registrations linked into every test binary.
use vigil_rules_builtin as _;
use vigil_source_parquet as _;
use vigil_source_postgres as _;
use vigil_source_spark as _;

pub mod editor;
pub mod equivalence;
pub mod http;
pub mod pg;
pub mod spark;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// `../shared/data/puffy` next to the repo: the real 14-day warehouse and the reference config.
pub fn puffy() -> PathBuf {
    let dir = repo_root().join("../shared/data/puffy");
    assert!(
        dir.is_dir(),
        "the shared Puffy data is expected at {}",
        dir.display()
    );
    dir
}

/// What one in-process `vigil` invocation returned.
#[derive(Debug)]
pub struct Output {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `vigil ARGS...` in-process.
pub fn vigil<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut argv = vec![std::ffi::OsString::from("vigil")];
    argv.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = vigil_engine::cli::run_cli(argv, &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8(out).expect("utf-8 stdout"),
        stderr: String::from_utf8(err).expect("utf-8 stderr"),
    }
}

/// A copy of the Puffy warehouse in a temporary folder (tests may damage it).
pub fn puffy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let warehouse = dir.path().join("warehouse");
    std::fs::create_dir(&warehouse).expect("mkdir");
    for entry in std::fs::read_dir(puffy().join("warehouse")).expect("read warehouse") {
        let entry = entry.expect("entry");
        let dest = warehouse.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).expect("copy");
        let mut perms = std::fs::metadata(&dest).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&dest, perms).expect("chmod");
    }
    dir
}

/// `vigil demo --out OUT`: `days` days of `sessions_per_day` sessions ending on `end`, with
/// `faults` (comma separated, none when empty) on that day; `OUT/warehouse` and
/// `OUT/vigil.yml` are then written (the command must succeed).
pub fn write_demo(out: &Path, days: u32, sessions_per_day: u32, end: &str, faults: &str) {
    let mut args = vec![
        "demo".to_string(),
        "--out".into(),
        out.display().to_string(),
        "--days".into(),
        days.to_string(),
        "--sessions-per-day".into(),
        sessions_per_day.to_string(),
        "--end-date".into(),
        end.into(),
    ];
    if !faults.is_empty() {
        args.extend(["--faults".into(), faults.into()]);
    }
    let result = vigil(&args);
    assert_eq!(result.code, 0, "{result:?}");
}

/// Writes a 40-day demo warehouse ending on `end` (with `faults`, comma separated, on that day)
/// into `dir/warehouse`, replacing what was there: the same folder, so the same warehouse id,
/// day after day.
pub fn demo_warehouse(dir: &Path, end: &str, faults: &str, sessions_per_day: u32) -> PathBuf {
    let scratch = tempfile::tempdir().expect("temp dir");
    write_demo(scratch.path(), 40, sessions_per_day, end, faults);
    let warehouse = dir.join("warehouse");
    let _ = std::fs::remove_dir_all(&warehouse);
    std::fs::rename(scratch.path().join("warehouse"), &warehouse).expect("move the warehouse");
    warehouse
}

/// `vigil history --state STATE --format json` (a file or a database URL), parsed.
pub fn state_history(state: &str) -> serde_json::Value {
    let out = vigil(["history", "--state", state, "--format", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).expect("history is JSON")
}

/// Kills a run started by `spawn` after each of `delays` (milliseconds): after each, the store
/// at `state` holds exactly what it held before, or that plus the whole killed run.
pub fn kill_runs_at(state: &str, delays: &[u64], mut spawn: impl FnMut() -> std::process::Child) {
    let mut previous = state_history(state);
    let mut runs = previous["runs"].as_array().expect("runs").len();
    for &delay in delays {
        let mut process = spawn();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = process.kill();
        let _ = process.wait();
        let now = state_history(state);
        let count = now["runs"].as_array().expect("runs").len();
        assert!(
            count == runs || count == runs + 1,
            "{count} runs after {runs}"
        );
        if count == runs {
            assert_eq!(now, previous, "a killed run changed the store");
        }
        runs = count;
        previous = now;
    }
}

/// The fingerprints of a history's open incidents, checking that none is open twice.
pub fn open_incidents(history: &serde_json::Value) -> Vec<String> {
    let mut open: Vec<String> = history["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["status"] == "open")
        .map(|i| i["fingerprint"].as_str().expect("fingerprint").to_string())
        .collect();
    open.sort_unstable();
    let count = open.len();
    open.dedup();
    assert_eq!(open.len(), count, "an incident was opened twice: {history}");
    open
}

/// The sessions and orders tables partitioned by the day of their date column: (file stem,
/// partition key, date column), for [`csv_folder_to_parquet`].
pub const BY_DAY: [(&str, &str, &str); 2] = [
    ("fct_sessions", "session_date", "session_start"),
    ("fct_orders", "order_date", "order_ts"),
];

/// Rewrites every CSV table of `csv_dir` into `out` as Parquet with `row_group_rows` rows per
/// row group: a table named in `partitioned` (file stem, partition key, date column) as a
/// hive-partitioned dataset folder `<stem>/`, the others as `<stem>.parquet`.
pub fn csv_folder_to_parquet(
    csv_dir: &Path,
    out: &Path,
    row_group_rows: usize,
    partitioned: &[(&str, &str, &str)],
) {
    use vigil_source_parquet::convert::{csv_to_parquet, Options};
    std::fs::create_dir_all(out).expect("create the Parquet folder");
    for entry in std::fs::read_dir(csv_dir).expect("read the CSV folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 name");
        let partition = partitioned
            .iter()
            .find(|(table, _, _)| *table == stem)
            .map(|(_, key, column)| (key.to_string(), column.to_string()));
        let target = match partition {
            Some(_) => out.join(stem),
            None => out.join(format!("{stem}.parquet")),
        };
        let options = Options {
            row_group_rows,
            partition,
        };
        csv_to_parquet(&path, &target, &options).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
}

/// The registry of this test binary: the builtin rules (linked through this crate).
pub fn registry() -> vigil_engine::registry::Registry {
    vigil_engine::registry::Registry::linked().expect("no duplicate rule ids")
}

/// Runs `vigil run` in-process on a warehouse folder with a config, for one partition, with
/// extra flags.
pub fn vigil_run(warehouse: &Path, rules: &Path, out: &Path, date: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--warehouse_dir".as_ref(),
        warehouse.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--output_dir".as_ref(),
        out.as_os_str(),
        "--expected_run_date".as_ref(),
        date.as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    vigil(args)
}

/// The JSON report written in `out`.
pub fn json_report(out: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(out.join("monitoring_report.json")).expect("json report written");
    serde_json::from_str(&text).expect("the report is valid JSON")
}

/// Runs rule `rule` (configured `{at: <step>}`) beside `freshness` on the Puffy warehouse for
/// 03-09 with `--fail_on_error`, for each step, and checks that its panic is an ERROR finding
/// `<rule>:<step>` whose message starts with `rule `<rule>` panicked in <step>: <panic>`,
/// that freshness still reported and that every report was written. `panic(step)` is the
/// start of the panic message.
pub fn assert_panics_are_isolated(rule: &str, extra: &[&str], panic: impl Fn(&str) -> String) {
    for step in ["build", "plan", "evaluate"] {
        let copy = puffy_copy();
        let config = copy.path().join("vigil.yml");
        std::fs::write(
            &config,
            format!("rules:\n  {rule}: {{at: {step}}}\n  freshness: {{}}\n"),
        )
        .expect("config written");
        // `validate --warehouse` plans every rule: a panic there is a problem it names.
        let mut args: Vec<&std::ffi::OsStr> = extra.iter().map(std::ffi::OsStr::new).collect();
        let warehouse = copy.path().join("warehouse");
        args.extend([
            "validate".as_ref(),
            config.as_os_str(),
            "--warehouse".as_ref(),
            warehouse.as_os_str(),
        ]);
        let validate = vigil(args);
        if step == "plan" {
            assert_eq!(validate.code, 2, "{validate:?}");
            // A linked rule unwinds; a plugin's panic comes back as its error.
            let stderr = &validate.stderr;
            assert!(
                stderr.contains(&format!("rules.{rule}: the rule "))
                    && stderr.contains("panicked in plan: ")
                    && stderr.contains(&panic(step)),
                "{validate:?}"
            );
        }
        let out = copy.path().join("reports");
        let mut flags = extra.to_vec();
        flags.push("--fail_on_error");
        let result = vigil_run(
            &copy.path().join("warehouse"),
            &config,
            &out,
            "2025-03-09",
            &flags,
        );
        assert_eq!(result.code, 1, "{step}: {result:?}");
        let report = json_report(&out);
        let checks: Vec<&str> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["check"].as_str())
            .collect();
        // freshness still ran (the partition of 03-09 is late).
        let check = format!("{rule}:{step}");
        assert_eq!(
            checks,
            [
                "freshness:orders_partition",
                "freshness:sessions_partition",
                check.as_str()
            ],
            "{step}"
        );
        let finding = &report["findings"][2];
        assert_eq!(finding["severity"], "ERROR");
        let expected = format!("rule `{rule}` panicked in {step}: {}", panic(step));
        let message = finding["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&expected), "{message}");
        for format in ["md", "html", "junit.xml"] {
            assert!(
                out.join(format!("monitoring_report.{format}")).exists(),
                "{step}: {format}"
            );
        }
    }
}

/// Whether two JSON values are equal, numbers within `relative` of each other (sums may be
/// added in another order by another engine or thread count).
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value, relative: f64) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= relative * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y, relative))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w, relative)))
        }
        _ => a == b,
    }
}

/// The values of `column` in the rows of a CSV file that `keep` keeps, sorted, and the file's
/// header.
pub fn column_values(
    file: &Path,
    column: &str,
    keep: impl Fn(&csv::StringRecord, &[String]) -> bool,
) -> (Vec<String>, Vec<String>) {
    let mut reader = csv::Reader::from_path(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at = header.iter().position(|h| h == column).unwrap();
    let mut values: Vec<String> = reader
        .records()
        .map(Result::unwrap)
        .filter(|r| keep(r, &header))
        .map(|r| r[at].to_string())
        .collect();
    values.sort();
    (header, values)
}

/// Whether a row's `column` holds a timestamp of `day` (the demo writes UTC timestamps).
pub fn on_day(record: &csv::StringRecord, header: &[String], column: &str, day: &str) -> bool {
    let at = header.iter().position(|h| h == column).unwrap();
    record[at].starts_with(day)
}

/// The checks of a report's findings, in order.
pub fn checks(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["check"].as_str().expect("a check").to_string())
        .collect()
}
