//! The command line: `vigil run | backtest | validate | rules | explain | schema`, and more.
//!
//! All logic lives here (not in the binary) so that tests and team binaries call it in-process:
//! `vigil_engine::cli::main()` is the whole `main` of a binary that links its rule crates.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{Days, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::backtest::render;
use crate::config::{Config, ConfigFormat};
use crate::demo::{DemoSpec, Fault, Magnitude};
use crate::docs::{self, DocFormat};
use crate::history;
use crate::quarantine;
use crate::registry::Registry;
use crate::report::{self, RunInfo};
use crate::rule::{Scope, Severity};
use crate::runner::{self, Evaluation};
use crate::state;
use crate::state::incident::{self, Silence};
use crate::state::store::{CacheView, Delivered, RunRecord, StateError, Store};
use crate::suggest::closest;
use crate::timestamp::{leading_date, parse_day, NaiveTimestamps};

/// The environment variable that may hold the warehouse location.
pub const WAREHOUSE_ENV: &str = "VIGIL_WAREHOUSE";

/// Exit code: no ERROR finding, or ERROR findings without `--fail_on_error`.
pub const EXIT_OK: i32 = 0;
/// Exit code: ERROR findings with `--fail_on_error`.
pub const EXIT_DATA_ERROR: i32 = 1;
/// Exit code: usage, config or I/O error.
pub const EXIT_USAGE: i32 = 2;

const EXIT_CODES: &str = "\
Exit codes:
  0  no ERROR finding (or ERROR findings without --fail_on_error)
  1  ERROR findings and --fail_on_error: halt the refresh
  2  usage, config or I/O error (bad flag, bad config, missing warehouse folder, unwritable output)";

const BACKTEST_EXIT_CODES: &str = "\
Exit codes:
  0  the backtest ran (whatever it found)
  2  usage, config, warehouse or I/O error (bad range, a range with no data, unwritable output)";

/// vigil: checks that today's warehouse data is safe to show, before the dashboards refresh.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Load a rule plugin (a shared library built with `declare_plugin!()`); repeatable.
    #[arg(long = "plugin", value_name = "PATH", global = true)]
    plugins: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the warehouse, write monitoring_report.{json,md}, quarantine a snapshot on ERROR.
    #[command(after_help = EXIT_CODES, infer_long_args = true)]
    Run(RunArgs),
    /// Replay the daily run for each day of a range, each seeing only the rows dated up to
    /// that day, and show what would have fired and which alerts would have been sent; writes
    /// backtest.{json,html}. Sends, quarantines and records nothing.
    #[command(after_help = BACKTEST_EXIT_CODES)]
    Backtest(BacktestArgs),
    /// Check a config file (no data access); exit 2 with file:line:col on error.
    Validate(ValidateArgs),
    /// List the registered rules.
    Rules {
        /// Output format.
        #[arg(long, value_enum, default_value_t = DocFormat::Text)]
        format: DocFormat,
    },
    /// Show a rule's documentation, params and example.
    Explain {
        /// The rule id, as listed by `vigil rules`.
        rule_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DocFormat::Text)]
        format: DocFormat,
    },
    /// Write a realistic sample warehouse (optionally with faults) and a config for it.
    #[command(
        after_help = "Then: vigil run --warehouse_dir OUT/warehouse --rules OUT/vigil.yml --output_dir OUT/reports --expected_run_date END"
    )]
    Demo(DemoArgs),
    /// Work with rule plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Silence a known problem: its findings stay in the reports, marked silenced, and are not
    /// alerted (nor fail `--fail_on_error`) through a day.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// List the runs and incidents kept in the state store.
    History(HistoryArgs),
    /// Print the config's JSON schema (draft-07), including every registered rule's params.
    Schema {
        /// Write it to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a plugin library and print its protocol version, rules and params schemas; exit 2
    /// when this vigil would refuse it.
    Check {
        /// The shared library (`lib<name>.so`), built with `declare_plugin!()`.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DocFormat::Text)]
        format: DocFormat,
    },
}

/// Where the state store is, for the commands that read or edit it.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The state store: a SQLite file, or a database URL (`postgres://user@host/db`; the
    /// password from PGPASSWORD). Default: VIGIL_STATE, else `state.path` of the config (given
    /// with --rules) in --output_dir.
    #[arg(long, value_name = "FILE|URL")]
    pub state: Option<PathBuf>,
    /// The reports folder of the runs (where the store is by default).
    #[arg(
        long = "output_dir",
        visible_alias = "output-dir",
        value_name = "DIR",
        default_value = "reports"
    )]
    pub output_dir: PathBuf,
    /// The config whose `state.path` names the store.
    #[arg(long = "rules", visible_alias = "config", value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SilenceCommand {
    /// Add a silence.
    Add {
        /// The check id (e.g. `anomaly:channel_share`) or a finding's fingerprint.
        check: String,
        /// Only this subject of the check (a channel, a column).
        #[arg(long)]
        subject: Option<String>,
        /// The last partition date it covers (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = parse_run_date)]
        until: NaiveDate,
        /// Why the findings are expected (shown in every report).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the silences.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = history::Format::Text)]
        format: history::Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a silence by its id (as listed).
    Remove {
        /// The silence's id.
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
struct HistoryArgs {
    /// Only incidents of this check id (or fingerprint).
    #[arg(long)]
    check: Option<String>,
    /// Only runs of partitions and incidents seen on or after this date.
    #[arg(long, value_name = "DATE", value_parser = parse_run_date)]
    since: Option<NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = history::Format::Text)]
    format: history::Format,
    #[command(flatten)]
    store: StoreArgs,
}

/// The warehouse and the config, as `vigil run` and `vigil backtest` take them.
#[derive(Debug, Args)]
struct SourceArgs {
    /// Where the warehouse tables are: a folder (CSV or Parquet files), or a URL such as
    /// `postgres://user@host:5432/db`. Default: the environment variable VIGIL_WAREHOUSE (so a
    /// password stays off the command line).
    #[arg(
        long = "warehouse",
        visible_aliases = ["warehouse_dir", "warehouse-dir"],
        value_name = "LOCATION"
    )]
    warehouse: Option<String>,
    /// Config file, in vigil's format or the reference monitor's.
    #[arg(
        long = "rules",
        visible_alias = "config",
        value_name = "FILE",
        default_value = "config/monitoring_rules.yml"
    )]
    rules: PathBuf,
}

impl SourceArgs {
    /// Loads the config and opens the warehouse (`--warehouse`, else VIGIL_WAREHOUSE).
    fn open(
        &self,
        registry: &Registry,
    ) -> Result<(Config, Box<dyn crate::source::Source>), String> {
        let config = Config::load(&self.rules, registry).map_err(|e| e.to_string())?;
        let location = self
            .warehouse
            .clone()
            .or_else(|| std::env::var(WAREHOUSE_ENV).ok())
            .ok_or_else(|| {
                format!("give the warehouse with --warehouse LOCATION or in {WAREHOUSE_ENV}")
            })?;
        let source = crate::source::open(&location).map_err(|e| e.to_string())?;
        Ok((config, source))
    }
}

/// Refuses an output folder that is a file, and any path vigil writes (`written`: what it is,
/// and the path) inside the warehouse folder `folder`: vigil never writes into the warehouse.
fn check_written(
    output_dir: &Path,
    folder: Option<&Path>,
    written: &[(&str, Option<PathBuf>)],
) -> Result<(), String> {
    if output_dir.exists() && !output_dir.is_dir() {
        return Err(format!(
            "--output_dir {} is a file, not a folder",
            output_dir.display()
        ));
    }
    let Some(folder) = folder else { return Ok(()) };
    for (what, path) in written {
        if let Some(path) = path.as_ref().filter(|p| inside(p, folder)) {
            return Err(format!(
                "the {what} {} is inside the warehouse folder {}: vigil never writes into the warehouse",
                path.display(),
                folder.display()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Folder for the reports (created if missing).
    #[arg(
        long = "output_dir",
        visible_alias = "output-dir",
        value_name = "DIR",
        default_value = "reports"
    )]
    output_dir: PathBuf,
    /// Exit 1 when any ERROR finding exists, so the orchestrator halts the refresh.
    #[arg(long = "fail_on_error", visible_alias = "fail-on-error")]
    fail_on_error: bool,
    /// The partition to judge (YYYY-MM-DD, YYYYMMDD or an ISO timestamp; its date is used).
    /// Default: today (UTC) minus `run.expected_lag_days`.
    #[arg(
        long = "expected_run_date",
        visible_alias = "expected-run-date",
        value_name = "DATE",
        value_parser = parse_run_date
    )]
    expected_run_date: Option<NaiveDate>,
    /// `partition` judges only the expected partition; `all` judges every day of history as the
    /// reference monitor does. Default: `run.scope` of the config.
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// Send no alert: print what would be sent to each destination instead.
    #[arg(long = "no-alerts", visible_alias = "dry-run")]
    no_alerts: bool,
    /// Take no quarantine snapshot, whatever the config says.
    #[arg(long = "no-quarantine", conflicts_with = "quarantine")]
    no_quarantine: bool,
    /// Take the quarantine snapshot on ERROR in a dry run too (`--no-alerts` skips it).
    #[arg(long)]
    quarantine: bool,
    /// Also write every metric the rules asked for, as computed (per table: the request and
    /// its value per day, or why it is unavailable), as JSON to this file.
    #[arg(long = "metrics-out", value_name = "FILE")]
    metrics_out: Option<PathBuf>,
    /// Read each table on at most N threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// The state store (run history, incidents, silences): a SQLite file, or a database URL
    /// (`postgres://user@host/db`; the password from PGPASSWORD). Default: VIGIL_STATE, else
    /// `state.path` of the config in --output_dir.
    #[arg(long, value_name = "FILE|URL", conflicts_with = "no_state")]
    state: Option<PathBuf>,
    /// Keep no history: every finding is new, nothing is resolved, nothing is stored.
    #[arg(long = "no-state")]
    no_state: bool,
}

#[derive(Debug, Args)]
struct BacktestArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The first day to replay (as `vigil run --expected_run_date` takes it).
    #[arg(long, value_name = "DATE", value_parser = parse_run_date)]
    from: NaiveDate,
    /// The last day to replay (inclusive).
    #[arg(long, value_name = "DATE", value_parser = parse_run_date)]
    to: NaiveDate,
    /// Folder for backtest.json and backtest.html (created if missing).
    #[arg(
        long = "output_dir",
        visible_alias = "output-dir",
        value_name = "DIR",
        default_value = "backtest"
    )]
    output_dir: PathBuf,
    /// `partition` judges each day's partition; `all` every day of history up to it. Default:
    /// `run.scope` of the config.
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// Days judged at the same time (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Folder to write `warehouse/` and `vigil.yml` into.
    #[arg(long, value_name = "DIR", default_value = "demo")]
    out: PathBuf,
    /// Number of days.
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// Sessions of an average weekday (orders are about 1.2% of sessions).
    #[arg(long = "sessions-per-day", default_value_t = 3000)]
    sessions_per_day: u32,
    /// The last day (the partition to judge); default: yesterday (UTC).
    #[arg(long = "end-date", value_name = "DATE", value_parser = parse_run_date)]
    end_date: Option<NaiveDate>,
    /// Seed of the random generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults to inject into the last day (comma separated); their sizes at each magnitude
    /// are listed as subtle / clear / gross.
    #[arg(long, value_enum, value_delimiter = ',')]
    faults: Vec<Fault>,
    /// How large the faults are. subtle: a defect that noise or a campaign could also explain;
    /// clear: unmistakable; gross (the default, the demo's faults before magnitudes existed):
    /// the day is plainly broken.
    #[arg(long, value_enum, default_value_t = Magnitude::Gross)]
    magnitude: Magnitude,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The config file.
    #[arg(value_name = "FILE", required_unless_present = "rules")]
    file: Option<PathBuf>,
    /// The config file (the same flag as `vigil run`).
    #[arg(long = "rules", visible_alias = "config", value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Also check the tables against a warehouse (a folder or a URL): every table exists and
    /// every column a rule reads is in it (with "did you mean").
    #[arg(
        long = "warehouse",
        visible_alias = "warehouse_dir",
        value_name = "LOCATION"
    )]
    warehouse: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScopeArg {
    Partition,
    All,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Partition => Scope::Partition,
            ScopeArg::All => Scope::All,
        }
    }
}

/// Parses `--expected_run_date` like the reference (Python `fromisoformat(..).date()`).
fn parse_run_date(s: &str) -> Result<NaiveDate, String> {
    let bytes = s.as_bytes();
    if bytes.len() == 8 && bytes.iter().all(u8::is_ascii_digit) {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y%m%d") {
            return Ok(day);
        }
    }
    match (parse_day(bytes, NaiveTimestamps::Utc), leading_date(bytes)) {
        (Ok(_), Some(day)) => Ok(day),
        _ => Err(format!(
            "`{s}` is not a date; use YYYY-MM-DD (e.g. 2025-03-08), YYYYMMDD or an ISO-8601 timestamp"
        )),
    }
}

/// The whole `main` of a vigil binary: parses `std::env::args`, runs, returns the exit code.
pub fn main() -> ExitCode {
    let code = run_cli(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// Runs the CLI with explicit arguments and output streams; returns the exit code.
pub fn run_cli<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                EXIT_USAGE
            } else {
                let _ = write!(out, "{text}");
                EXIT_OK
            };
        }
    };
    let config_file = match &cli.command {
        Command::Run(args) => Some(args.source.rules.clone()),
        Command::Backtest(args) => Some(args.source.rules.clone()),
        Command::History(args) => args.store.rules.clone(),
        Command::Silence(
            SilenceCommand::Add { store, .. }
            | SilenceCommand::List { store, .. }
            | SilenceCommand::Remove { store, .. },
        ) => store.rules.clone(),
        Command::Validate(args) => args.file.clone().or_else(|| args.rules.clone()),
        _ => None,
    };
    let registry = match registry(&cli.plugins, config_file.as_deref()) {
        Ok(r) => r,
        Err(message) => return fail(err, &message),
    };
    match cli.command {
        Command::Run(args) => run(args, &registry, out, err),
        Command::Backtest(args) => backtest(args, &registry, out, err),
        Command::Validate(args) => {
            let file = args.file.or(args.rules).expect("clap requires one");
            validate(&file, args.warehouse.as_deref(), &registry, out, err)
        }
        Command::Rules { format } => {
            let _ = write!(out, "{}", docs::rules_list(&registry, format));
            EXIT_OK
        }
        Command::Explain { rule_id, format } => match registry.get(&rule_id) {
            Some(rule) => {
                let _ = write!(out, "{}", docs::explain(rule, format));
                EXIT_OK
            }
            None => {
                let hint = closest(&rule_id, registry.ids())
                    .map(|b| format!("; did you mean `{b}`?"))
                    .unwrap_or_default();
                let known: Vec<_> = registry.ids().collect();
                fail(
                    err,
                    &format!(
                        "unknown rule `{rule_id}`{hint} (registered: {}); a plugin's rules need \
                         its library: `vigil --plugin PATH explain {rule_id}`",
                        known.join(", ")
                    ),
                )
            }
        },
        Command::Plugin(PluginCommand::Check { file, format }) => {
            plugin_check(&file, &registry, format, out, err)
        }
        Command::Demo(args) => demo(args, out, err),
        Command::Silence(command) => {
            let result = match command {
                SilenceCommand::Add {
                    check,
                    subject,
                    until,
                    reason,
                    store,
                } => store_location(&store, &registry).and_then(|path| {
                    history::silence_add(&path, check, subject, until, reason, out)
                }),
                SilenceCommand::List { format, store } => store_location(&store, &registry)
                    .and_then(|path| history::silence_list(&path, format, out)),
                SilenceCommand::Remove { id, store } => store_location(&store, &registry)
                    .and_then(|path| history::silence_remove(&path, id, out)),
            };
            result.map_or_else(|e| fail(err, &e), |()| EXIT_OK)
        }
        Command::History(args) => store_location(&args.store, &registry)
            .and_then(|path| {
                history::show(&path, args.check.as_deref(), args.since, args.format, out)
            })
            .map_or_else(|e| fail(err, &e), |()| EXIT_OK),
        Command::Schema { output } => {
            let schema = crate::schema::render(&registry);
            match output {
                Some(path) => match std::fs::write(&path, schema) {
                    Ok(()) => EXIT_OK,
                    Err(e) => fail(err, &format!("cannot write {}: {e}", path.display())),
                },
                None => {
                    let _ = write!(out, "{schema}");
                    EXIT_OK
                }
            }
        }
    }
}

/// The linked rules plus the plugins named by `--plugin` and by the config's `plugins:`.
fn registry(cli_plugins: &[PathBuf], config_file: Option<&Path>) -> Result<Registry, String> {
    let mut registry = Registry::linked().map_err(|e| e.to_string())?;
    let mut plugins = cli_plugins.to_vec();
    if let Some(file) = config_file.filter(|f| f.is_file()) {
        plugins.extend(crate::loader::plugin_paths(file).map_err(|e| e.to_string())?);
    }
    for path in plugins {
        registry.load_plugin(&path).map_err(|e| e.to_string())?;
    }
    Ok(registry)
}

/// `vigil plugin check FILE`: what the plugin says of itself, and whether this vigil takes it.
fn plugin_check(
    file: &Path,
    registry: &Registry,
    format: DocFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let plugin = match crate::plugin::Plugin::open(file) {
        Ok(plugin) => plugin,
        Err(e) => return fail(err, &e.to_string()),
    };
    let mut with = registry.clone();
    let accepted = with.load_plugin(file).map(|_| ());
    let _ = write!(out, "{}", docs::plugin_report(&plugin, format));
    match accepted {
        Ok(()) => EXIT_OK,
        Err(e) => fail(err, &e.to_string()),
    }
}

/// The store of `vigil silence` and `vigil history`.
fn store_location(args: &StoreArgs, registry: &Registry) -> Result<state::Location, String> {
    let config = match &args.rules {
        Some(file) => {
            Config::load(file, registry)
                .map_err(|e| e.to_string())?
                .state
        }
        None => crate::config::StateConfig::default(),
    };
    Ok(state::store_location(
        args.state.as_deref(),
        std::env::var(state::STATE_ENV).ok(),
        &config,
        &args.output_dir,
    ))
}

fn fail(err: &mut dyn Write, message: &str) -> i32 {
    let _ = writeln!(err, "vigil: error: {message}");
    EXIT_USAGE
}

fn demo(args: DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let end = args
        .end_date
        .unwrap_or_else(|| Utc::now().date_naive().pred_opt().unwrap_or(NaiveDate::MIN));
    let spec = DemoSpec {
        end,
        days: args.days.max(1),
        sessions_per_day: args.sessions_per_day,
        seed: args.seed,
        faults: args.faults,
        magnitude: args.magnitude,
    };
    match crate::demo::write_dir(&spec, &args.out) {
        Ok((warehouse, written)) => {
            let faults: Vec<String> = spec.faults.iter().map(|f| f.name()).collect();
            let _ = writeln!(
                out,
                "vigil: wrote {} sessions, {} orders and {} attribution rows ({} days to {end}{}) to {}",
                written.sessions,
                written.orders,
                written.attribution,
                spec.days,
                if faults.is_empty() { String::new() } else { format!(", faults: {} ({})", faults.join(", "), spec.magnitude.name()) },
                warehouse.display()
            );
            let _ = writeln!(
                out,
                "vigil: next: vigil run --warehouse_dir {} --rules {} --output_dir {} --expected_run_date {end}",
                warehouse.display(),
                args.out.join("vigil.yml").display(),
                args.out.join("reports").display()
            );
            EXIT_OK
        }
        Err(e) => fail(
            err,
            &format!("cannot write the demo into {}: {e}", args.out.display()),
        ),
    }
}

fn validate(
    file: &Path,
    warehouse: Option<&str>,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match Config::load(file, registry) {
        Ok(config) => {
            if let Some(location) = warehouse {
                let source = match crate::source::open(location) {
                    Ok(source) => source,
                    Err(e) => return fail(err, &e.to_string()),
                };
                let problems = warehouse_problems(&config, source.as_ref());
                if !problems.is_empty() {
                    for problem in &problems {
                        let _ = writeln!(err, "vigil: error: {}: {problem}", file.display());
                    }
                    return EXIT_USAGE;
                }
            }
            for warning in &config.warnings {
                let located = crate::config::ConfigError {
                    file: file.to_path_buf(),
                    error: warning.clone(),
                };
                let _ = writeln!(err, "vigil: warning: {located}");
            }
            let format = match config.format {
                ConfigFormat::Native => "vigil",
                ConfigFormat::Reference => "reference monitor",
            };
            let rules: Vec<_> = config.rules.iter().map(|r| r.id.as_str()).collect();
            let tables: Vec<_> = config.tables.keys().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "{}: valid ({format} format); rules: {}; tables: {}",
                file.display(),
                if rules.is_empty() {
                    "none".into()
                } else {
                    rules.join(", ")
                },
                tables.join(", ")
            );
            EXIT_OK
        }
        Err(e) => fail(err, &e.to_string()),
    }
}

/// What `validate --warehouse` finds: tables that cannot be read, and required, date, lookup
/// and rule columns that the tables lack.
fn warehouse_problems(config: &Config, source: &dyn crate::source::Source) -> Vec<String> {
    let mut problems = Vec::new();
    let mut headers = std::collections::BTreeMap::new();
    let place = |table: &crate::config::TableConfig| match source.folder() {
        Some(dir) => dir.join(&table.file).display().to_string(),
        None => format!("relation `{}` of {}", table.relation(), source.describe()),
    };
    // `column` is not in `table`, whose header is `header`.
    let absent = |column: &str, table: &crate::config::TableConfig, header: &[String]| {
        let hint = closest(column, header.iter().map(String::as_str))
            .map(|b| format!("; did you mean `{b}`?"))
            .unwrap_or_default();
        format!("column `{column}` is not in {}{hint}", place(table))
    };
    for (name, table) in &config.tables {
        match source.header(table) {
            Ok(header) => {
                let missing: Vec<String> = table
                    .required_columns
                    .iter()
                    .chain(table.date_column.iter().filter(|c| !c.contains('.')))
                    .filter(|c| !header.contains(c))
                    .cloned()
                    .collect();
                for column in &missing {
                    problems.push(format!("tables.{name}: {}", absent(column, table, &header)));
                }
                headers.insert(name.as_str(), (header, missing));
            }
            Err(problem) => problems.push(format!("tables.{name}: {} {problem}", place(table))),
        }
    }
    // A lookup's key is a column of its table; its foreign key and columns, of the table
    // looked up.
    for (name, table) in &config.tables {
        for (n, lookup) in table.lookups.iter().enumerate() {
            let foreign = std::iter::once(lookup.foreign_key())
                .chain(lookup.columns.iter().map(String::as_str));
            let wanted = std::iter::once((name.as_str(), lookup.key.as_str()))
                .chain(foreign.map(|c| (lookup.table.as_str(), c)));
            for (owner, column) in wanted {
                let Some((header, _)) = headers.get(owner) else {
                    continue;
                };
                if !header.iter().any(|c| c == column) {
                    let problem = absent(column, &config.tables[owner], header);
                    problems.push(format!("tables.{name}.lookups[{n}]: {problem}"));
                }
            }
        }
    }
    let cx = config.run_ctx(NaiveDate::MIN, config.run.scope);
    let mut plans: Vec<(&str, Vec<crate::metric::MetricRequest>)> = Vec::new();
    for r in &config.rules {
        // A rule that fails or panics in `plan` is a problem of the config, not a crash.
        let plan = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.rule.plan(&cx)));
        match plan {
            Ok(Ok(plan)) => plans.push((r.id.as_str(), plan)),
            Ok(Err(e)) => problems.push(format!("rules.{}: the rule cannot plan: {e}", r.id)),
            Err(panic) => problems.push(format!(
                "rules.{}: the rule panicked in plan: {}",
                r.id,
                crate::api::protocol::panic_message(panic.as_ref())
            )),
        }
    }
    let plans: Vec<(&str, &[crate::metric::MetricRequest])> =
        plans.iter().map(|(id, p)| (*id, p.as_slice())).collect();
    let views = headers
        .iter()
        .map(|(name, (columns, reported))| (*name, runner::Header { columns, reported }))
        .collect();
    for unknown in runner::unknown_columns(&plans, &config.tables, &views) {
        let table = &config.tables[&unknown.table];
        problems.push(format!(
            "rules.{}: {}",
            unknown.rule,
            unknown.message(&place(table))
        ));
    }
    problems
}

fn run(args: RunArgs, registry: &Registry, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let started = Utc::now();
    let run_id = format!(
        "{}-{}",
        started.format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let (config, source) = match args.source.open(registry) {
        Ok(opened) => opened,
        Err(e) => return fail(err, &e),
    };
    let state_path = (!args.no_state).then(|| {
        state::store_location(
            args.state.as_deref(),
            std::env::var(state::STATE_ENV).ok(),
            &config.state,
            &args.output_dir,
        )
    });
    // Nothing vigil writes may land in the warehouse it reads.
    let quarantines = config.operations.quarantine_on_error
        && !args.no_quarantine
        && (!args.no_alerts || args.quarantine);
    let target = quarantines
        .then(|| {
            quarantine::resolve_target(
                source.folder(),
                &args.output_dir,
                Path::new(&config.operations.quarantine_target_dir),
            )
            .ok()
        })
        .flatten();
    let written = [
        ("reports folder", Some(args.output_dir.clone())),
        ("quarantine folder", target),
        (
            "state store",
            state_path
                .as_ref()
                .and_then(|s| s.file().map(Path::to_path_buf)),
        ),
    ];
    if let Err(e) = check_written(&args.output_dir, source.folder(), &written) {
        return fail(err, &e);
    }
    let expected_date = args.expected_run_date.unwrap_or_else(|| {
        started
            .date_naive()
            .checked_sub_days(Days::new(config.run.expected_lag_days.into()))
            .unwrap_or(NaiveDate::MIN)
    });
    let scope = args.scope.map_or(config.run.scope, Scope::from);
    // One run at a time per output folder: a second one stops here. A folder that cannot be
    // locked (not creatable, not writable) does not stop the run: its findings still reach the
    // console and the alerts, and it exits 2 for the reports it could not write.
    let lock = match report::lock_output(&args.output_dir, &run_id) {
        Ok(lock) => Ok(lock),
        Err(report::LockError::Held(holder)) => {
            return fail(err, &held(&args.output_dir, &holder));
        }
        Err(report::LockError::Io(e)) => Err(e),
    };
    // The history: opened (created on the first run) before the warehouse is read. A store
    // that is not one, is corrupt or is newer stops the run (a person must look at it); one
    // that cannot be written (an unwritable folder, a full disk) leaves the run without history:
    // its findings still reach the reports, the console and the alerts, and it exits 2.
    let mut history_problem: Option<String> = None;
    let warehouse_id = state::warehouse_id(&config.state, &source.describe());
    let declared: Vec<Silence> = config.state.silences.iter().map(Silence::from).collect();
    let opened = state_path
        .as_ref()
        .map(|location| {
            Store::open(location, true).and_then(|store| {
                let previous = store.previous(&warehouse_id, &declared)?;
                Ok((store, previous))
            })
        })
        .transpose();
    // Without a store, the config's silences are all there is.
    let unstored = || state::store::Previous {
        silences: declared.clone(),
        ..Default::default()
    };
    let (store, previous) = match opened {
        Ok(Some((store, previous))) => (Some(store), previous),
        Ok(None) => (None, unstored()),
        Err(e @ (StateError::NotAStore(..) | StateError::Newer(..))) => {
            return fail(err, &e.to_string())
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "vigil: warning: {e}; this run goes on without its history (every finding is new)"
            );
            history_problem = Some(e.to_string());
            (None, unstored())
        }
    };
    let cache = store.as_ref().map(|s| CacheView::new(s, &warehouse_id));
    crate::scan::set_workers(args.threads.map_or(0, usize::from));
    // Partitioned tables reuse the stored results of unchanged partitions (a dry run too: it
    // reads the store, and writes nothing).
    let mut eval = runner::evaluate_cached(
        &config,
        source.as_ref(),
        expected_date,
        scope,
        cache
            .as_ref()
            .map(|c| c as &dyn crate::scan::cache::PartitionCache),
    );
    // A source that failed (an unreachable cluster, a query that did not finish) leaves
    // nothing to judge: no report, alert, snapshot or history of a run that did not see the
    // warehouse.
    if let Some((table, e)) = eval.source_failure() {
        return fail(
            err,
            &format!(
                "cannot read table {table} from {}: {e}; nothing was judged, written or sent",
                source.describe()
            ),
        );
    }
    eval.add_schema_changes(&config.state, &previous.columns);
    let lifecycle = incident::advance(
        previous.open,
        &previous.silences,
        previous.latest,
        &eval.findings,
        eval.expected_date,
    );
    if let Some(path) = &args.metrics_out {
        if let Err(e) = std::fs::write(path, report::json::metrics(&eval)) {
            return fail(err, &format!("cannot write {}: {e}", path.display()));
        }
    }

    // Silenced ERRORs neither quarantine nor fail the run, unless the config says they do.
    let errors = eval
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .filter(|f| config.state.silenced_errors_fail || !lifecycle.silenced(f))
        .count();
    let quarantine = (errors > 0 && quarantines)
        .then(|| quarantine_snapshot(&args, source.as_ref(), &config, &eval, started, err));
    if let Some(signal) = quarantine::interrupted_by() {
        let _ = writeln!(
            err,
            "vigil: interrupted (signal {signal}) while taking the quarantine snapshot: its \
             partial folder was removed; no report was written (the previous ones are intact)"
        );
        return 128 + signal;
    }
    let mut info = RunInfo {
        started,
        run_id,
        warehouse: source.describe(),
        output_dir: &args.output_dir,
        config: &config,
        quarantine,
        deliveries: Vec::new(),
        judged: match &store {
            Some(store) => {
                let metrics = eval
                    .observations
                    .iter()
                    .map(|o| o.metric.as_str())
                    .collect();
                store.judged(&warehouse_id, &metrics).unwrap_or_default()
            }
            None => Default::default(),
        },
        lifecycle,
        warehouse_id,
        store: store.as_ref().map(|s| s.location().to_string()),
    };
    // Reports first (deliveries `pending` in them), then the alerts within their deadline, then
    // the JSON report once more with how the deliveries went: a delivery that hangs or a run
    // killed while delivering never costs the reports.
    let env = |var: &str| std::env::var(var).ok();
    let planned = crate::alert::plan(&info, &eval, &report::paths(&args.output_dir), &env);
    info.deliveries = planned.iter().map(|p| p.delivery().clone()).collect();
    // The lock is held (`_lock`) until the run returns.
    let (_lock, written) = match lock {
        Ok(lock) => (Some(lock), report::write_reports(&info, &eval)),
        Err(e) => (None, Err(e)),
    };
    let written =
        written.map_err(|e| format!("cannot write reports to {}: {e}", args.output_dir.display()));
    let planned = match &written {
        Ok(_) => planned,
        // The webhooks are told of no report when none was written.
        Err(_) => crate::alert::plan(&info, &eval, &[], &env),
    };
    let covers = crate::alert::covers(&planned);
    info.deliveries = crate::alert::deliver(&config.alert_routing, planned, args.no_alerts, out);
    // The history, in one transaction, once the deliveries are known (an incident counts as
    // announced only when its alert went out). A dry run reads the store and writes nothing.
    let committed = match (&store, args.no_alerts) {
        (Some(store), false) => {
            let delivered: Delivered = crate::alert::delivered(&covers, &info.deliveries);
            let config_hash = std::fs::read(&config.path)
                .map(|bytes| format!("{:016x}", state::fnv1a(&bytes)))
                .unwrap_or_default();
            store
                .commit(
                    &RunRecord {
                        run_id: &info.run_id,
                        warehouse_id: &info.warehouse_id,
                        warehouse: &info.warehouse,
                        started,
                        config_hash: &config_hash,
                        verdict: report::verdict(&eval),
                        eval: &eval,
                        lifecycle: &info.lifecycle,
                        delivered: &delivered,
                        cache: cache.as_ref(),
                    },
                    &declared,
                )
                .map_err(|e| e.to_string())
        }
        _ => Ok(()),
    };
    let committed = committed.and_then(|()| history_problem.map_or(Ok(()), Err));
    let reports = match written {
        Ok(paths) => paths,
        Err(message) => {
            let _ = write!(out, "{}", report::console::render(&info, &eval, &[], true));
            return fail(err, &message);
        }
    };
    if !info.deliveries.is_empty() {
        if let Err(e) = report::rewrite_json(&info, &eval) {
            let _ = writeln!(
                err,
                "vigil: warning: cannot record the alert deliveries in {}: {e}; it lists them as pending",
                reports[0].display()
            );
        }
    }
    let snapshot = info.quarantine.as_ref().and_then(|q| q.as_ref().ok());
    if let Err(e) = quarantine::record_path(&args.output_dir, snapshot.map(PathBuf::as_path)) {
        let _ = writeln!(
            err,
            "vigil: warning: cannot update {}: {e}",
            quarantine::PATH_FILE
        );
    }
    if let Some(Err(e)) = &info.quarantine {
        let _ = writeln!(err, "vigil: warning: quarantine failed: {e}");
    }
    let _ = write!(
        out,
        "{}",
        report::console::render(&info, &eval, &reports, false)
    );
    if let Err(e) = committed {
        return fail(
            err,
            &format!("the run's history was not recorded (the next run will alert again): {e}"),
        );
    }
    if errors > 0 && args.fail_on_error {
        EXIT_DATA_ERROR
    } else {
        EXIT_OK
    }
}

/// Why a run cannot write into `output_dir`: another one (`holder`) holds its lock.
fn held(output_dir: &Path, holder: &str) -> String {
    let by = if holder.is_empty() {
        String::new()
    } else {
        format!(" (run {holder})")
    };
    format!(
        "another vigil run{by} is writing into {}; wait for it to finish or use another --output_dir (lock file {})",
        output_dir.display(),
        output_dir.join(report::LOCK_FILE).display()
    )
}

/// `vigil backtest`: the daily runs of a range of days, each as of its day; prints the table
/// and writes backtest.{json,html} into `--output_dir` as one set.
fn backtest(
    args: BacktestArgs,
    registry: &Registry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if args.from > args.to {
        let range = crate::backtest::BacktestError::Range {
            from: args.from,
            to: args.to,
        };
        return fail(err, &range.to_string());
    }
    let (config, source) = match args.source.open(registry) {
        Ok(opened) => opened,
        Err(e) => return fail(err, &e),
    };
    let written = [("output folder", Some(args.output_dir.clone()))];
    if let Err(e) = check_written(&args.output_dir, source.folder(), &written) {
        return fail(err, &e);
    }
    let run_id = format!(
        "backtest-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let _lock = match report::lock_output(&args.output_dir, &run_id) {
        Ok(lock) => lock,
        Err(report::LockError::Held(holder)) => return fail(err, &held(&args.output_dir, &holder)),
        Err(report::LockError::Io(e)) => {
            return fail(
                err,
                &format!("cannot write into {}: {e}", args.output_dir.display()),
            )
        }
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let scope = args.scope.map_or(config.run.scope, Scope::from);
    let backtest = match crate::backtest::run(
        &config,
        source.as_ref(),
        args.from,
        args.to,
        scope,
        &args.output_dir,
        jobs,
    ) {
        Ok(backtest) => backtest,
        Err(e) => return fail(err, &e.to_string()),
    };
    let files = [
        (render::JSON_FILE, render::json(&backtest)),
        (render::HTML_FILE, render::html(&backtest)),
    ];
    if let Err(e) = report::write_set(&args.output_dir, &run_id, &files) {
        let _ = write!(out, "{}", render::console(&backtest));
        return fail(
            err,
            &format!(
                "cannot write the backtest to {}: {e}",
                args.output_dir.display()
            ),
        );
    }
    let _ = write!(out, "{}", render::console(&backtest));
    let _ = writeln!(
        out,
        "wrote {} and {}",
        args.output_dir.join(render::JSON_FILE).display(),
        args.output_dir.join(render::HTML_FILE).display()
    );
    EXIT_OK
}

/// Whether `path` is `folder` or inside it (both made absolute; links in the folder resolved
/// when it exists).
fn inside(path: &Path, folder: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let folder = folder.canonicalize().unwrap_or_else(|_| absolute(folder));
    // The path may not exist yet: resolve its longest existing ancestor.
    let path = absolute(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name);
        existing = parent;
    }
    let mut resolved = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    resolved.starts_with(&folder)
}

fn quarantine_snapshot(
    args: &RunArgs,
    source: &dyn crate::source::Source,
    config: &Config,
    eval: &Evaluation,
    now: chrono::DateTime<Utc>,
    err: &mut dyn Write,
) -> Result<PathBuf, String> {
    let ops = &config.operations;
    let target = quarantine::resolve_target(
        source.folder(),
        &args.output_dir,
        Path::new(&ops.quarantine_target_dir),
    )
    .map_err(|e| format!("cannot resolve {}: {e}", ops.quarantine_target_dir))?;
    match quarantine::sweep_partials(&target) {
        Ok(swept) if !swept.is_empty() => {
            let _ = writeln!(
                err,
                "vigil: removed {} partial snapshot(s) that interrupted runs left in {}",
                swept.len(),
                target.display()
            );
        }
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(
                err,
                "vigil: warning: cannot remove partial snapshots in {}: {e}",
                target.display()
            );
        }
    }
    let errors: Vec<String> = eval
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("- ERROR {}", report::one_line(f)))
        .collect();
    let mut left_out = Vec::new();
    let fill = |dir: &Path| -> std::io::Result<String> {
        let mut budget = quarantine::Budget::new(ops.quarantine_max_bytes);
        let contents = if !ops.copy_warehouse {
            quarantine::Contents {
                lines: vec!["no data: operations.copy_warehouse is off".into()],
                left_out: Vec::new(),
            }
        } else if let Some(folder) = source.folder() {
            let files: Vec<PathBuf> = config
                .tables
                .values()
                .filter_map(|t| source.table_files(t))
                .collect();
            quarantine::copy_folder(folder, &files, dir, &mut budget)?
        } else {
            let day = (eval.scope == crate::rule::Scope::Partition).then_some(eval.expected_date);
            quarantine::export_tables(source, &config.tables, day, dir, &mut budget)?
        };
        left_out = contents.left_out;
        Ok(format!(
            "Quarantined by vigil {} at {} because of {} ERROR finding(s) for partition {}.\n\
             Warehouse: {}\nReport: {}\n\n{}\n\nSnapshot:\n{}\n",
            env!("CARGO_PKG_VERSION"),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            errors.len(),
            eval.expected_date,
            source.describe(),
            args.output_dir.join(report::MD_REPORT).display(),
            errors.join("\n"),
            contents
                .lines
                .iter()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    };
    let snapshot = quarantine::snapshot(&target, now, fill)
        .map_err(|e| format!("cannot snapshot into {}: {e}", target.display()))?;
    match quarantine::prune(
        &target,
        ops.quarantine_keep_last,
        ops.quarantine_max_total_bytes,
    ) {
        Ok(removed) if !removed.is_empty() => {
            let names: Vec<String> = removed
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            let _ = writeln!(
                err,
                "vigil: removed {} older snapshot(s) (operations.quarantine_keep_last, quarantine_max_total_bytes): {}",
                removed.len(),
                names.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(err, "vigil: warning: cannot remove older snapshots: {e}");
        }
    }
    for line in left_out {
        let _ = writeln!(err, "vigil: warning: quarantine: {line}");
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dates_parse_like_the_reference() {
        let d = |s: &str| parse_run_date(s);
        let mar8 = NaiveDate::from_ymd_opt(2025, 3, 8).unwrap();
        assert_eq!(d("2025-03-08"), Ok(mar8));
        assert_eq!(d("20250308"), Ok(mar8));
        assert_eq!(d("2025-03-08T23:00:00"), Ok(mar8));
        assert_eq!(d("2025-03-08T23:00:00Z"), Ok(mar8));
        assert_eq!(d("2025-03-08T23:00:00-05:00"), Ok(mar8));
        for bad in [
            "08/03/2025",
            "2025-02-30",
            "yesterday",
            "",
            "2025-03-08T25:00",
        ] {
            assert!(d(bad).unwrap_err().contains("is not a date"), "{bad}");
        }
    }
}
