//! The state store and the incident lifecycle, end to end: demo warehouses with faults judged
//! day after day against local PagerDuty, Slack and webhook servers; silences; schema changes;
//! a killed run; two runs at once; corrupt and newer stores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use vigil_tests::http::{Hit, Reply, Server};
use vigil_tests::{
    json_report, kill_runs_at, open_incidents, state_history, vigil, vigil_run, Output,
};

/// Tests that set environment variables (the alert secrets) run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The demo warehouse of these tests (1500 sessions a day) ending on `end`, into `dir`.
fn demo(dir: &Path, end: &str, faults: &str) -> PathBuf {
    vigil_tests::demo_warehouse(dir, end, faults, 1500)
}

/// A config with the demo's tables, `rules` and alerts to the three local servers: ERROR to
/// PagerDuty, Slack and the webhook, WARN to Slack and the webhook.
fn write_config(dir: &Path, rules: &str, extra: &str) -> PathBuf {
    let tables = "tables:\n  sessions: {file: fct_sessions.csv, date_column: session_start}\n  orders: {file: fct_orders.csv, date_column: order_ts}\n  attribution:\n    file: fct_attribution.csv\n    date_column: orders.order_ts\n    lookups: [{table: orders, key: transaction_id, columns: [order_ts, revenue]}]\n";
    let path = dir.join("vigil.yml");
    std::fs::write(
        &path,
        format!(
            "version: 1\n{tables}rules:\n{rules}{extra}alert_routing:\n  error_channels: [pd, chat, hook]\n  warn_channels: [chat, hook]\n  timeout_seconds: 2\n  retry_backoff_seconds: 0.01\n  destinations:\n    pd: {{kind: pagerduty, routing_key_env: VIGIL_STATE_TEST_PD_KEY, events_url: \"{}\"}}\n    chat: {{kind: slack, webhook_url_env: VIGIL_STATE_TEST_SLACK}}\n    hook: {{kind: webhook, url_env: VIGIL_STATE_TEST_HOOK}}\n",
            std::env::var("VIGIL_STATE_TEST_PD_URL").unwrap()
        ),
    )
    .unwrap();
    path
}

/// Three local servers (PagerDuty, Slack, webhook) whose URLs the config reads.
struct Servers {
    pd: Server,
    slack: Server,
    hook: Server,
}

impl Servers {
    fn start() -> Servers {
        let ok = |_| Reply::status(202, "{}");
        let servers = Servers {
            pd: Server::start(None, ok),
            slack: Server::start(None, ok),
            hook: Server::start(None, ok),
        };
        std::env::set_var("VIGIL_STATE_TEST_PD_URL", servers.pd.url());
        std::env::set_var("VIGIL_STATE_TEST_PD_KEY", "PDKEY");
        std::env::set_var("VIGIL_STATE_TEST_SLACK", servers.slack.url());
        std::env::set_var("VIGIL_STATE_TEST_HOOK", servers.hook.url());
        servers
    }

    /// How many requests each server has received so far.
    fn counts(&self) -> [usize; 3] {
        [
            self.pd.hits().len(),
            self.slack.hits().len(),
            self.hook.hits().len(),
        ]
    }
}

/// The PagerDuty events received after the first `from`: (action, dedup key).
fn events(hits: &[Hit], from: usize) -> Vec<(String, String)> {
    hits[from..]
        .iter()
        .map(|h| {
            (
                h.body["event_action"].as_str().unwrap().to_string(),
                h.body["dedup_key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn run(dir: &Path, config: &Path, day: &str, extra: &[&str]) -> (Output, Value) {
    let out = vigil_run(
        &dir.join("warehouse"),
        config,
        &dir.join("reports"),
        day,
        extra,
    );
    assert_ne!(out.code, 2, "{out:?}");
    (out, json_report(&dir.join("reports")))
}

/// A report's first finding of a check.
fn finding<'a>(report: &'a Value, check: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
}

/// The fingerprints of a report's findings of a severity.
fn fingerprints(report: &Value, severity: &str) -> Vec<String> {
    let mut prints: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["fingerprint"].as_str().unwrap().to_string())
        .collect();
    prints.dedup();
    prints
}

#[test]
fn an_incident_pages_once_is_reported_ongoing_and_resolves_with_the_same_key() {
    let _serial = serial();
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "  revenue: {max_zero_revenue_orders: 1}\n", "");

    // Day 1: three orders with negative revenue: ERROR -> one trigger per fingerprint.
    demo(dir.path(), "2025-03-10", "negative-revenue");
    let (out, report) = run(dir.path(), &config, "2025-03-10", &[]);
    let errors = fingerprints(&report, "ERROR");
    assert!(
        errors.contains(&"revenue/orders:negative_revenue".to_string()),
        "{errors:?} {}",
        out.stdout
    );
    let warehouse_id = report["state"]["warehouse_id"]
        .as_str()
        .unwrap()
        .to_string();
    let triggers = events(&servers.pd.hits(), 0);
    let expected: Vec<(String, String)> = errors
        .iter()
        .map(|p| ("trigger".to_string(), format!("vigil:{warehouse_id}:{p}")))
        .collect();
    assert_eq!(triggers, expected);
    let slack = servers.slack.hits();
    assert_eq!(slack.len(), 1);
    let text = slack[0].body["text"].as_str().unwrap();
    assert!(text.contains("*New* ("), "{text}");
    assert_eq!(report["state"]["incidents"]["new"], errors.len());
    let finding = &report["findings"][0];
    assert_eq!(finding["incident"]["status"], "new");
    assert_eq!(finding["incident"]["first_seen"], "2025-03-10");

    // The same day again: nothing new anywhere.
    let before = servers.counts();
    let (_, again) = run(dir.path(), &config, "2025-03-10", &[]);
    assert_eq!(servers.counts(), before, "a re-run sent something");
    assert_eq!(again["state"]["incidents"]["new"], 0);
    assert_eq!(again["findings"][0]["incident"]["status"], "ongoing");
    assert_eq!(again["findings"][0]["incident"]["runs"], 1);

    // The next day, still failing: no new PagerDuty incident, one Slack "still failing".
    demo(dir.path(), "2025-03-11", "negative-revenue");
    let before = servers.counts();
    let (_, next) = run(dir.path(), &config, "2025-03-11", &[]);
    let still = fingerprints(&next, "ERROR");
    assert_eq!(still, errors);
    assert!(
        events(&servers.pd.hits(), before[0]).is_empty(),
        "no new trigger for an ongoing incident"
    );
    let slack = servers.slack.hits();
    assert_eq!(slack.len(), before[1] + 1);
    let text = slack[before[1]].body["text"].as_str().unwrap();
    assert!(
        text.contains("*Still failing* (") && text.contains("since 2025-03-10, 2 runs"),
        "{text}"
    );
    let hook = &servers.hook.hits()[before[2]].body;
    assert_eq!(hook["findings"].as_array().unwrap().len(), 0);
    assert_eq!(hook["ongoing"].as_array().unwrap().len(), errors.len());
    assert_eq!(next["findings"][0]["incident"]["first_seen"], "2025-03-10");
    assert_eq!(next["findings"][0]["incident"]["runs"], 2);

    // Fixed: a resolve with the same key, and "resolved" on Slack and the webhook.
    demo(dir.path(), "2025-03-12", "");
    let before = servers.counts();
    let (_, fixed) = run(dir.path(), &config, "2025-03-12", &["--fail_on_error"]);
    assert!(fingerprints(&fixed, "ERROR").is_empty());
    let resolves = events(&servers.pd.hits(), before[0]);
    let expected: Vec<(String, String)> = errors
        .iter()
        .map(|p| ("resolve".to_string(), format!("vigil:{warehouse_id}:{p}")))
        .collect();
    assert_eq!(resolves, expected);
    let text = servers.slack.hits()[before[1]].body["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("*Resolved* ("), "{text}");
    let hook = &servers.hook.hits()[before[2]].body;
    assert_eq!(hook["resolved"].as_array().unwrap().len(), errors.len());
    assert_eq!(fixed["state"]["incidents"]["resolved"], errors.len());
    let md = std::fs::read_to_string(dir.path().join("reports/monitoring_report.md")).unwrap();
    assert!(md.contains("## Resolved since the last run"), "{md}");

    // The history lists the four runs and the resolved incidents.
    let history = vigil([
        "history".as_ref(),
        "--output_dir".as_ref(),
        dir.path().join("reports").as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(history.code, 0, "{history:?}");
    let history: Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(history["runs"].as_array().unwrap().len(), 4);
    let zero = history["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fingerprint"] == "revenue/orders:negative_revenue")
        .unwrap();
    assert_eq!(
        (
            &zero["status"],
            &zero["first_seen"],
            &zero["runs"],
            &zero["resolved_on"]
        ),
        (
            &Value::from("resolved"),
            &Value::from("2025-03-10"),
            &Value::from(2),
            &Value::from("2025-03-12")
        )
    );
}

#[test]
fn each_channel_finding_has_its_own_incident_and_dedup_key() {
    let _serial = serial();
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "  drift: {weightings: [sessions], abs_change_threshold: 0.02, baseline: {window_days: 28, min_points: 7}}\n",
        "",
    );
    demo(dir.path(), "2025-03-10", "channel-shift-to-direct");
    // Route the channel WARNs to PagerDuty too, to see their keys.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("warn_channels: [chat, hook]", "warn_channels: [pd]");
    std::fs::write(&config, text).unwrap();
    let (_, report) = run(dir.path(), &config, "2025-03-10", &[]);
    let channel: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "anomaly:channel_session_share")
        .collect();
    let checks: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["severity"], f["check"], f["subject"]))
        .collect();
    assert!(channel.len() >= 4, "{checks:#?}");
    let keys: std::collections::BTreeSet<String> = events(&servers.pd.hits(), 0)
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    for f in &channel {
        let subject = f["subject"].as_str().unwrap();
        assert!(
            keys.iter()
                .any(|k| k.ends_with(&format!("drift/anomaly:channel_session_share/{subject}"))),
            "{subject}: {keys:?}"
        );
    }
    assert_eq!(
        keys.len(),
        fingerprints(&report, "WARN").len() + fingerprints(&report, "ERROR").len()
    );
}

#[test]
fn a_silence_keeps_a_finding_reported_but_quiet_until_it_expires() {
    let _serial = serial();
    let servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "  revenue: {max_zero_revenue_orders: 1}\n", "");
    let store = dir.path().join("history.sqlite");
    let with_store = |args: &[&str]| {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.extend(["--state".as_ref(), store.as_os_str()]);
        vigil(all)
    };
    let added = with_store(&[
        "silence",
        "add",
        "orders:negative_revenue",
        "--until",
        "2025-03-10",
        "--reason",
        "known refund batch, ticket DATA-42",
    ]);
    assert_eq!(added.code, 0, "{added:?}");
    assert!(added.stdout.starts_with("silence #1 added"), "{added:?}");
    let listed = with_store(&["silence", "list"]);
    assert!(
        listed.stdout.contains("orders:negative_revenue")
            && listed.stdout.contains("known refund batch"),
        "{listed:?}"
    );

    // Silenced: in the report with its reason, not alerted, not failing the run.
    demo(dir.path(), "2025-03-10", "negative-revenue");
    let state = store.display().to_string();
    let (out, report) = run(
        dir.path(),
        &config,
        "2025-03-10",
        &["--fail_on_error", "--state", &state],
    );
    let zero = finding(&report, "orders:negative_revenue").unwrap();
    assert_eq!(
        zero["silenced"]["reason"],
        "known refund batch, ticket DATA-42"
    );
    assert_eq!(zero["silenced"]["until"], "2025-03-10");
    let others_error = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "ERROR" && f["silenced"].is_null());
    assert_eq!(out.code, i32::from(others_error), "{out:?}");
    assert!(!events(&servers.pd.hits(), 0)
        .iter()
        .any(|(_, k)| k.ends_with("revenue/orders:negative_revenue")));
    assert!(
        out.stdout.contains("silenced through 2025-03-10"),
        "{}",
        out.stdout
    );

    // The next day the silence has expired: reported once, and the finding pages.
    demo(dir.path(), "2025-03-11", "negative-revenue");
    let (out, _) = run(
        dir.path(),
        &config,
        "2025-03-11",
        &["--fail_on_error", "--state", &state],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("silence of orders:negative_revenue expired after 2025-03-10"),
        "{}",
        out.stdout
    );
    assert!(events(&servers.pd.hits(), 0)
        .iter()
        .any(|(a, k)| a == "trigger" && k.ends_with("revenue/orders:negative_revenue")));
    let (again, report) = run(dir.path(), &config, "2025-03-11", &["--state", &state]);
    assert!(!again.stdout.contains("expired after"), "{}", again.stdout);
    assert!(report["state"]["silences_expired"]
        .as_array()
        .unwrap()
        .is_empty());

    // A dry run reads the store and writes nothing; the history lists the runs and incidents.
    let runs = |text: &str| text.lines().filter(|l| l.contains("2025-03-1")).count();
    let shown = with_store(&["history"]);
    assert!(
        shown.stdout.starts_with("Runs (3):") && shown.stdout.contains("Incidents ("),
        "{shown:?}"
    );
    let (dry, _) = run(
        dir.path(),
        &config,
        "2025-03-11",
        &["--state", &state, "--no-alerts"],
    );
    assert!(dry.stdout.contains("1 ongoing"), "{dry:?}");
    assert_eq!(runs(&with_store(&["history"]).stdout), runs(&shown.stdout));

    // Remove it; removing it again is an error naming the id.
    assert_eq!(with_store(&["silence", "remove", "1"]).code, 0);
    let gone = with_store(&["silence", "remove", "1"]);
    assert_eq!(gone.code, 2);
    assert!(gone.stderr.contains("no active silence #1"), "{gone:?}");
    assert!(with_store(&["silence", "list"])
        .stdout
        .contains("no silences"));

    // Silences can be declared in the config too.
    let declared = write_config(
        dir.path(),
        "  revenue: {max_zero_revenue_orders: 1}\n",
        "state:\n  silences:\n    - {check: orders:negative_revenue, until: 2025-03-31, reason: declared}\n",
    );
    let (_, report) = run(dir.path(), &declared, "2025-03-11", &["--state", &state]);
    let zero = finding(&report, "orders:negative_revenue").unwrap();
    assert_eq!(zero["silenced"]["reason"], "declared");
    assert_eq!(zero["silenced"]["origin"], "config");
}

#[test]
fn a_changed_schema_is_a_warning_once() {
    let _serial = serial();
    let _servers = Servers::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "  freshness: {}\n", "");
    demo(dir.path(), "2025-03-10", "");
    let (_, first) = run(dir.path(), &config, "2025-03-10", &[]);
    assert!(!first.to_string().contains("columns_changed"));
    demo(dir.path(), "2025-03-11", "renamed-column");
    let (_, renamed) = run(dir.path(), &config, "2025-03-11", &[]);
    let change =
        finding(&renamed, "schema:orders_columns_changed").unwrap_or_else(|| panic!("{renamed:#}"));
    assert_eq!(change["severity"], "WARN");
    assert_eq!(
        change["context"]["renamed"],
        serde_json::json!([{"from": "revenue", "to": "order_revenue"}])
    );
    assert!(change["message"]
        .as_str()
        .unwrap()
        .contains("`revenue` -> `order_revenue`"));
    // The same columns the next run: no finding, the incident resolves.
    let (_, after) = run(dir.path(), &config, "2025-03-11", &[]);
    assert!(!after
        .to_string()
        .contains("schema:orders_columns_changed\",\"fingerprint"));
    assert!(after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["check"] != "schema:orders_columns_changed"));
    assert_eq!(
        after["state"]["resolved"][0]["check"],
        "schema:orders_columns_changed"
    );
}

/// Runs one `vigil run` from the environment, for the kill and concurrency tests (a child
/// process of this test binary).
#[test]
#[ignore = "run as a child process by the tests below"]
fn state_child() {
    let var = |name: &str| PathBuf::from(std::env::var_os(name).expect(name));
    let out = vigil_run(
        &var("VIGIL_TEST_WAREHOUSE"),
        &var("VIGIL_TEST_CONFIG"),
        &var("VIGIL_TEST_OUT"),
        &std::env::var("VIGIL_TEST_DAY").unwrap(),
        &[
            "--state",
            std::env::var("VIGIL_TEST_STATE").unwrap().as_str(),
        ],
    );
    eprintln!("{}", out.stderr);
    std::process::exit(out.code);
}

fn child(dir: &Path, config: &Path, out: &Path, day: &str, state: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "state_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env("VIGIL_TEST_WAREHOUSE", dir.join("warehouse"))
        .env("VIGIL_TEST_CONFIG", config)
        .env("VIGIL_TEST_OUT", out)
        .env("VIGIL_TEST_DAY", day)
        .env("VIGIL_TEST_STATE", state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

#[test]
fn a_killed_run_leaves_the_previous_state_and_two_runs_at_once_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.yml");
    std::fs::write(
        &config,
        "version: 1\nrules:\n  revenue: {max_zero_revenue_orders: 1}\n  anomaly: {}\n  drift: {}\n",
    )
    .unwrap();
    demo(dir.path(), "2025-03-10", "zero-revenue-spike");
    let state = dir.path().join("state.sqlite");
    let first = child(
        dir.path(),
        &config,
        &dir.path().join("r0"),
        "2025-03-10",
        &state,
    )
    .output()
    .unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let shown = state.display().to_string();
    assert_eq!(state_history(&shown)["runs"].as_array().unwrap().len(), 1);

    // Killed at various moments: the store holds the previous state, or the whole new run.
    let spawn = || {
        child(
            dir.path(),
            &config,
            &dir.path().join("r1"),
            "2025-03-11",
            &state,
        )
        .spawn()
        .unwrap()
    };
    kill_runs_at(&shown, &[5, 30, 80, 150, 300, 600], spawn);
    let runs = state_history(&shown)["runs"].as_array().unwrap().len();

    // Two runs at once (other reports folders, one store): both land, nothing is corrupt.
    let spawn = |name: &str| {
        child(
            dir.path(),
            &config,
            &dir.path().join(name),
            "2025-03-12",
            &state,
        )
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn("ra"), spawn("rb"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(
        (a.status.code(), b.status.code()),
        (Some(0), Some(0)),
        "{a:?} {b:?}"
    );
    let after = state_history(&shown);
    assert_eq!(after["runs"].as_array().unwrap().len(), runs + 2);
    open_incidents(&after);
}

#[test]
fn a_corrupt_foreign_or_newer_store_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "2025-03-10", "");
    let config = dir.path().join("vigil.yml");
    std::fs::write(&config, "version: 1\nrules:\n  freshness: {}\n").unwrap();
    let state = dir.path().join("state.sqlite");
    let attempt = |state: &Path| {
        let shown = state.display().to_string();
        vigil_run(
            &dir.path().join("warehouse"),
            &config,
            &dir.path().join("reports"),
            "2025-03-10",
            &["--state", &shown],
        )
    };

    std::fs::write(
        &state,
        b"this is not a database, just some text that was here before",
    )
    .unwrap();
    let out = attempt(&state);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&state.display().to_string())
            && out.stderr.contains("is not a usable vigil state store")
            && out.stderr.contains("never recreates it"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        b"this is not a database, just some text that was here before"
    );
    assert!(!dir.path().join("reports/monitoring_report.json").exists());

    // A good store, then made newer than this vigil.
    std::fs::remove_file(&state).unwrap();
    assert_eq!(attempt(&state).code, 0);
    let bytes = std::fs::read(&state).unwrap();
    // SQLite keeps user_version as a big-endian u32 at byte 60 of the header.
    let mut newer = bytes.clone();
    newer[60..64].copy_from_slice(&99u32.to_be_bytes());
    let newer_path = dir.path().join("newer.sqlite");
    std::fs::write(&newer_path, &newer).unwrap();
    let out = attempt(&newer_path);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("written by a newer vigil (store version 99"),
        "{out:?}"
    );

    // A store whose first page (the schema) was overwritten after the file header.
    let mut broken = bytes;
    broken[100..4096].fill(0xA5);
    let broken_path = dir.path().join("broken.sqlite");
    std::fs::write(&broken_path, &broken).unwrap();
    let out = attempt(&broken_path);
    assert!(
        out.code == 2 && out.stderr.contains("broken.sqlite"),
        "a damaged store must stop the run naming it: {out:?}"
    );
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_next_days_run_through_the_store_reads_only_the_changed_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    vigil_tests::write_demo(
        &csv,
        30,
        400,
        "2025-03-20",
        "null-spike,channel-shift-to-direct",
    );
    // Sessions partitioned by day; orders and attribution as single files.
    let full = dir.path().join("full");
    vigil_tests::csv_folder_to_parquet(
        &csv.join("warehouse"),
        &full,
        2_000,
        &vigil_tests::BY_DAY[..1],
    );
    // Yesterday's warehouse: without the 03-20 partition.
    let warehouse = dir.path().join("warehouse");
    copy_tree(&full, &warehouse);
    std::fs::remove_dir_all(warehouse.join("fct_sessions/session_date=2025-03-20")).unwrap();
    let config = csv.join("vigil.yml");
    let state = dir.path().join("state.sqlite");
    let shown = state.display().to_string();
    let day = |date: &str, out: &str, extra: &[&str]| {
        let run = vigil_run(&warehouse, &config, &dir.path().join(out), date, extra);
        assert_ne!(run.code, 2, "{run:?}");
        json_report(&dir.path().join(out))
    };
    let sessions = |report: &Value| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "sessions")
            .unwrap()["partitions"]
            .clone()
    };
    let first = day("2025-03-19", "r1", &["--state", &shown]);
    assert_eq!(sessions(&first)["read"], 29, "{}", sessions(&first));

    // Today's partition lands; the run for 03-20 reads it and the last 7 days', reuses the rest.
    copy_tree(
        &full.join("fct_sessions/session_date=2025-03-20"),
        &warehouse.join("fct_sessions/session_date=2025-03-20"),
    );
    let incremental = day("2025-03-20", "r2", &["--state", &shown]);
    assert_eq!(
        sessions(&incremental),
        serde_json::json!({"read": 8, "reused": 22, "full_scan_reason": null})
    );
    let whole = day("2025-03-20", "r3", &["--no-state"]);
    assert!(
        sessions(&whole).is_null(),
        "no store, no partition bookkeeping"
    );
    let checks = |report: &Value| -> Vec<Value> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                serde_json::json!([
                    f["severity"],
                    f["check"],
                    f["subject"],
                    f["partition_date"],
                    f["message"],
                    f["value"]
                ])
            })
            .collect()
    };
    assert_eq!(checks(&incremental), checks(&whole));
    assert!(!checks(&whole).is_empty());
    assert_eq!(incremental["observations"], whole["observations"]);
}
