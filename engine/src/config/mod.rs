//! The config: typed sections (serde + schemars), loading in the native or the reference
//! format, and errors that name the file, line, column and key path.

pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::registry::Origin;
use crate::rule::{Level, Rule, RunCtx, Scope, TableInfo};
use crate::timestamp::NaiveTimestamps;
use vigil_rule_api::registry::{empty_is_default, empty_or};
use yaml::YamlError;

/// A vigil config file (native format).
///
/// A mapping or list key left empty (nothing after `key:`) means the same as the key left out:
/// its default. Leave out `rules` (or leave it empty) to run every registered rule with its
/// defaults; list rule ids under `rules` to run exactly those.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Config format version. Only `1` exists.
    #[serde(default = "version_one", deserialize_with = "only_version_one")]
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// How the run picks and judges its partition.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<RunConfig>")]
    pub run: RunConfig,
    /// The warehouse tables, by name. Defaults to the Puffy layout: `sessions`
    /// (`fct_sessions.csv`), `orders` (`fct_orders.csv`) and `attribution`
    /// (`fct_attribution.csv`).
    #[serde(default = "default_tables", deserialize_with = "tables_or_default")]
    #[schemars(with = "Option<BTreeMap<String, TableConfig>>")]
    #[schemars(extend("defaultSnippets" = [{
        "label": "a table with a date column",
        "body": {"${1:sessions}": {"file": "${2:fct_sessions.csv}", "date_column": "${3:session_start}"}},
    }]))]
    pub tables: BTreeMap<String, TableConfig>,
    /// One section per rule id; the rule's settings (checked against the rule's own schema).
    #[serde(default)]
    #[schemars(skip)]
    pub rules: serde::de::IgnoredAny,
    /// Quarantine on ERROR.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Operations>")]
    pub operations: Operations,
    /// Where alerts of each severity go.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<AlertRouting>")]
    pub alert_routing: AlertRouting,
    /// Plugin libraries to load before the rules are read (paths relative to this file), in
    /// addition to `--plugin`.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<PathBuf>>")]
    pub plugins: Vec<PathBuf>,
    /// The run history: where runs, incidents and silences are kept between runs.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<StateConfig>")]
    pub state: StateConfig,
}

/// `tables:` left empty is the Puffy layout, as when it is left out.
fn tables_or_default<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, TableConfig>, D::Error> {
    empty_or(d, default_tables)
}

fn version_one() -> u32 {
    1
}

fn only_version_one<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match u32::deserialize(d)? {
        1 => Ok(1),
        other => Err(serde::de::Error::custom(format!(
            "unsupported config version {other}; this vigil reads version 1"
        ))),
    }
}

/// `run:` how the run picks and judges its partition.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Without `--expected_run_date`, the expected partition is today (UTC) minus this many days.
    pub expected_lag_days: u32,
    /// `partition` judges only the expected partition (history is baseline); `all` judges every
    /// day of history, as the reference monitor does. `--scope` overrides it.
    pub scope: Scope,
    /// Rows dated more than this many days before the expected partition are implausible
    /// (`0001-01-01`): counted in an ERROR `<table>:out_of_window_dates`, not put in daily
    /// metrics.
    pub max_history_days: u32,
    /// Rows dated more than this many days after the expected partition are implausible
    /// (`9999-12-31`), as above.
    pub max_future_days: u32,
    /// Incremental runs (a run given a state store): partitions of a partitioned table
    /// (Parquet `key=YYYY-MM-DD/` folders) dated this many days before the expected partition
    /// or later are always read again; older ones whose files are unchanged (same paths, sizes
    /// and modification times) reuse the metrics stored by the previous run. 0 reads again
    /// only the expected partition and later ones.
    pub recompute_days: u32,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            expected_lag_days: 1,
            scope: Scope::Partition,
            max_history_days: 3660,
            max_future_days: 366,
            recompute_days: 7,
        }
    }
}

/// One warehouse table: a CSV file in the warehouse folder.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// File name of the table's CSV (header row, comma separated, RFC 4180 quoting), relative
    /// to the warehouse folder. Its stem (`fct_sessions`) also names the table elsewhere: the
    /// relation in a database, `fct_sessions.parquet` or a `fct_sessions/` Parquet dataset in a
    /// folder without the CSV file.
    pub file: String,
    /// The table's name in a database or as a Parquet file or dataset, when it is not the
    /// file's stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// Column whose date or timestamp assigns each row to a day (its UTC calendar date). Leave
    /// it out for tables without one.
    #[serde(default)]
    pub date_column: Option<String>,
    /// Columns that must exist. Each missing one is an ERROR finding
    /// `<table>:required_columns`, and the checks that need it are skipped with a reason.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<String>>")]
    pub required_columns: Vec<String>,
    /// How to read a timestamp with no UTC offset: `reject` counts it as unparsable, `utc` takes
    /// it as UTC. A date column taken through a lookup (`orders.order_ts`) follows the
    /// looked-up table's setting.
    #[serde(default)]
    pub naive_timestamps: NaiveTimestamps,
    /// Date cells per day (or without a readable day) that may fail to parse before an ERROR
    /// `<table>:unparsable_dates`.
    #[serde(default)]
    pub max_unparsable_dates: u64,
    /// Rows with an empty date cell that may be tolerated before an ERROR
    /// `<table>:empty_dates` (they belong to no day, so every daily metric leaves them out).
    #[serde(default)]
    pub max_empty_dates: u64,
    /// CSV rows that may run over more than one line (a quoted cell with a line break) before
    /// an ERROR `<table>:multiline_rows`: in bulk they are the sign of a quote that is not
    /// closed, which merges the rows after it.
    #[serde(default)]
    pub max_multiline_rows: u64,
    /// Columns this table takes from the rows of other tables with the same key (for example
    /// attribution rows take their order's date and revenue from orders).
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<LookupConfig>>")]
    pub lookups: Vec<LookupConfig>,
}

/// `tables.<name>.lookups[]`: a join on a key, one looked-up row per key (the first).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The table looked up; it is read first and must not have a lookup itself.
    pub table: String,
    /// The key column of this table.
    pub key: String,
    /// The key column of the looked-up table; default: the same name as `key`.
    #[serde(default)]
    pub foreign_key: Option<String>,
    /// The columns taken. Rules and `date_column` name them `<table>.<column>`, e.g.
    /// `orders.order_ts`. Rows whose non-empty key is not found are counted
    /// (`<table>:lookup_misses`).
    pub columns: Vec<String>,
}

impl TableConfig {
    /// The table's name in a database or as a Parquet file or dataset: `relation`, else the
    /// file name without its extension.
    pub fn relation(&self) -> &str {
        self.relation.as_deref().unwrap_or_else(|| {
            Path::new(&self.file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(&self.file)
        })
    }
}

impl LookupConfig {
    /// The key column in the looked-up table.
    pub fn foreign_key(&self) -> &str {
        self.foreign_key.as_deref().unwrap_or(&self.key)
    }
}

fn default_tables() -> BTreeMap<String, TableConfig> {
    let table = |file: &str, date: Option<&str>, required: &[&str]| TableConfig {
        file: file.into(),
        relation: None,
        date_column: date.map(str::to_string),
        required_columns: required.iter().map(|c| c.to_string()).collect(),
        naive_timestamps: NaiveTimestamps::Reject,
        max_unparsable_dates: 0,
        max_empty_dates: 0,
        max_multiline_rows: 0,
        lookups: Vec::new(),
    };
    BTreeMap::from([
        (
            "sessions".into(),
            table(
                "fct_sessions.csv",
                Some("session_start"),
                &["session_id", "session_start"],
            ),
        ),
        (
            "orders".into(),
            table(
                "fct_orders.csv",
                Some("order_ts"),
                &["transaction_id", "order_ts", "revenue"],
            ),
        ),
        (
            "attribution".into(),
            TableConfig {
                lookups: vec![attribution_lookup("order_ts")],
                ..table(
                    "fct_attribution.csv",
                    Some("orders.order_ts"),
                    &["transaction_id", "model", "attributed_source"],
                )
            },
        ),
    ])
}

/// Attribution rows take their order's date and revenue from `orders` by `transaction_id`.
pub fn attribution_lookup(order_date_column: &str) -> LookupConfig {
    LookupConfig {
        table: "orders".into(),
        key: "transaction_id".into(),
        foreign_key: None,
        columns: vec![order_date_column.to_string(), "revenue".into()],
    }
}

/// `operations:` what happens on ERROR.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Operations {
    /// Snapshot the warehouse into `quarantine_target_dir` when any ERROR is found.
    pub quarantine_on_error: bool,
    /// Folder for snapshots. A relative path is resolved against the warehouse folder's parent,
    /// as the reference monitor does (for a database, beside the reports folder).
    pub quarantine_target_dir: String,
    /// Put the warehouse's data into the snapshot (otherwise only `REASON.txt`): a folder's CSV
    /// files and its tables' Parquet data are copied; a database's tables export the judged
    /// partition's rows (every row with `scope: all`) as CSV files.
    pub copy_warehouse: bool,
    /// Most bytes a snapshot's data may take. A file, dataset or table that would go beyond is
    /// left out and listed in `REASON.txt`.
    pub quarantine_max_bytes: u64,
    /// Keep at most this many snapshots in `quarantine_target_dir`: after a new one, the
    /// oldest beyond it are removed. Leave it out to keep every snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_keep_last: Option<u32>,
    /// Keep the snapshots in `quarantine_target_dir` under this many bytes in all: after a new
    /// one, the oldest are removed until they fit (the newest always stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_max_total_bytes: Option<u64>,
}

impl Default for Operations {
    fn default() -> Self {
        Operations {
            quarantine_on_error: false,
            quarantine_target_dir: "quarantine".into(),
            copy_warehouse: true,
            quarantine_max_bytes: 1 << 30,
            quarantine_keep_last: None,
            quarantine_max_total_bytes: None,
        }
    }
}

/// `state:` the run history (runs, findings, metrics, incidents, silences) kept between runs,
/// so an incident is alerted once, reported as ongoing and resolved when it clears.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// The SQLite file of the history, or a PostgreSQL URL (`postgres://user@host:5432/db`:
    /// the history in its schema `vigil_state`; give the password in `PGPASSWORD`, not here). A
    /// relative path is resolved against the reports folder (`--output_dir`). `--state` and the
    /// environment variable `VIGIL_STATE` override it.
    pub path: String,
    /// The warehouse's name in the history and in alert dedup keys. Default: derived from the
    /// warehouse location; set it to keep the history when the location changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// Silenced ERROR findings still fail `--fail_on_error` and quarantine a snapshot.
    pub silenced_errors_fail: bool,
    /// Severity of a change of a table's columns since the last run.
    pub schema_change_severity: Level,
    /// Silences declared in this file (beside those added with `vigil silence add`).
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<SilenceConfig>>")]
    pub silences: Vec<SilenceConfig>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: "vigil-state.sqlite".into(),
            warehouse_id: None,
            silenced_errors_fail: false,
            schema_change_severity: Level::Warn,
            silences: Vec::new(),
        }
    }
}

/// One silence: the findings of a check (and subject) are reported, marked silenced, and not
/// alerted, through a day.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// The check id (`anomaly:channel_share`) or a finding's fingerprint.
    pub check: String,
    /// The subject (a channel, a column); leave it out for every subject of the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The last partition date it covers (YYYY-MM-DD).
    #[schemars(with = "String", extend("format" = "date"))]
    pub until: NaiveDate,
    /// Why the findings are expected.
    pub reason: String,
}

/// `alert_routing:` destinations per severity.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRouting {
    /// Destinations of ERROR findings, e.g. `pagerduty://team`, `slack://#data-alerts`. A name
    /// defined under `destinations` is delivered to; any other is shown in the routing plan.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<String>>")]
    pub error_channels: Vec<String>,
    /// Destinations of WARN findings.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<String>>")]
    pub warn_channels: Vec<String>,
    /// Destinations of INFO findings.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Vec<String>>")]
    pub info_channels: Vec<String>,
    /// Print the routing summary (per severity: count, destinations, first findings) on stdout.
    pub emit_console_notifications: bool,
    /// The destinations alerts are delivered to, by the name the channel lists use. Secrets
    /// (webhook URLs, routing keys) come from environment variables named here, never from
    /// this file.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<BTreeMap<String, Destination>>")]
    pub destinations: BTreeMap<String, Destination>,
    /// Seconds one HTTP request may take (connect, send, answer): above 0, at most 3600.
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 3600))]
    pub timeout_seconds: f64,
    /// Retries after a server error (5xx) or a failed connection; a 4xx is not retried. At
    /// most 10.
    #[schemars(range(max = 10))]
    pub retries: u32,
    /// Seconds before the first retry; each further retry waits twice as long. At most 600.
    #[schemars(range(min = 0, max = 600))]
    pub retry_backoff_seconds: f64,
    /// Seconds all deliveries of a run may take together (they start after the reports are
    /// written); requests still unsent then are recorded as `not_attempted`. Above 0, at most
    /// 3600.
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 3600))]
    pub deadline_seconds: f64,
}

impl Default for AlertRouting {
    fn default() -> Self {
        AlertRouting {
            error_channels: Vec::new(),
            warn_channels: Vec::new(),
            info_channels: Vec::new(),
            emit_console_notifications: true,
            destinations: BTreeMap::new(),
            timeout_seconds: 10.0,
            retries: 3,
            retry_backoff_seconds: 1.0,
            deadline_seconds: 60.0,
        }
    }
}

impl RunConfig {
    /// The first and last plausible day of a run judging `expected`.
    pub fn window(&self, expected: NaiveDate) -> (NaiveDate, NaiveDate) {
        let days = |n: u32| chrono::Days::new(u64::from(n));
        (
            expected
                .checked_sub_days(days(self.max_history_days))
                .unwrap_or(NaiveDate::MIN),
            expected
                .checked_add_days(days(self.max_future_days))
                .unwrap_or(NaiveDate::MAX),
        )
    }
}

impl AlertRouting {
    /// The first setting outside what a delivery can use (its key path and why): a run must
    /// never wait on alerts without bound.
    pub fn out_of_range(&self) -> Option<(&'static str, String)> {
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 3600.0) {
            return Some((
                "alert_routing.timeout_seconds",
                format!(
                    "is {} but must be above 0 and at most 3600",
                    self.timeout_seconds
                ),
            ));
        }
        if !(0.0..=600.0).contains(&self.retry_backoff_seconds) {
            return Some((
                "alert_routing.retry_backoff_seconds",
                format!(
                    "is {} but must be from 0 to 600",
                    self.retry_backoff_seconds
                ),
            ));
        }
        if !(self.deadline_seconds > 0.0 && self.deadline_seconds <= 3600.0) {
            return Some((
                "alert_routing.deadline_seconds",
                format!(
                    "is {} but must be above 0 and at most 3600",
                    self.deadline_seconds
                ),
            ));
        }
        if self.retries > 10 {
            return Some((
                "alert_routing.retries",
                format!("is {} but must be at most 10", self.retries),
            ));
        }
        None
    }
}

/// A place alerts are delivered to.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// A Slack incoming webhook: one message per run with the routed findings.
    Slack {
        /// Environment variable holding the webhook URL.
        webhook_url_env: String,
    },
    /// PagerDuty Events API v2: one `trigger` event per routed finding, with a dedup key per
    /// check and partition so that a re-run does not page twice.
    Pagerduty {
        /// Environment variable holding the integration's routing key.
        routing_key_env: String,
        /// The Events API endpoint.
        #[serde(default = "pagerduty_events_url")]
        events_url: String,
    },
    /// Any HTTP endpoint: one JSON document per run (run id, verdict, counts, findings, report
    /// paths).
    Webhook {
        /// Environment variable holding the URL.
        url_env: String,
    },
}

fn pagerduty_events_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

/// Which format a config file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFormat {
    /// vigil's own format: `tables`, `rules`, `operations`, ...
    Native,
    /// The reference monitor's format: `schemas`, `hard_rules`, `anomaly_detection`, ...
    Reference,
}

/// A rule configured for a run.
pub struct ConfiguredRule {
    /// The rule id.
    pub id: String,
    /// Where the rule comes from.
    pub origin: Origin,
    /// The rule, built from its params.
    pub rule: Box<dyn Rule>,
}

impl fmt::Debug for ConfiguredRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfiguredRule({}, {})", self.id, self.origin)
    }
}

/// A loaded, validated config.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Its format.
    pub format: ConfigFormat,
    /// `run:`
    pub run: RunConfig,
    /// `tables:`
    pub tables: BTreeMap<String, TableConfig>,
    /// The rules to run, in config order (or by id when all run with defaults).
    pub rules: Vec<ConfiguredRule>,
    /// `operations:`
    pub operations: Operations,
    /// `alert_routing:`
    pub alert_routing: AlertRouting,
    /// `state:`
    pub state: StateConfig,
    /// Settings that are valid but under which a check can never report, located.
    pub warnings: Vec<YamlError>,
}

/// A config that cannot be used, located in its file where possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// What is wrong and where.
    pub error: YamlError,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.error.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.error.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// What rules are told about the run: the expected partition, the scope and each table's
    /// date column.
    pub fn run_ctx(&self, expected_date: NaiveDate, scope: Scope) -> RunCtx {
        table_ctx(&self.tables, expected_date, scope)
    }
}

/// The run context of a set of configured tables.
pub fn table_ctx(
    tables: &BTreeMap<String, TableConfig>,
    expected_date: NaiveDate,
    scope: Scope,
) -> RunCtx {
    let tables = tables
        .iter()
        .map(|(name, t)| (name.clone(), TableInfo::dated(t.date_column.as_deref())))
        .collect();
    RunCtx::new(expected_date, scope, tables)
}

/// An error without a position in the file.
pub fn unlocated(path: &str, message: String) -> YamlError {
    YamlError {
        line: None,
        column: None,
        path: path.to_string(),
        message,
    }
}
