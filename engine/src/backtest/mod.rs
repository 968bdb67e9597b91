//! `vigil backtest`: replays the daily run for each day of a range, each seeing the warehouse
//! as it stood that day (rows dated later left out: each table read up to the day, or read once
//! for the range and cut at each day where that is exact), and replays the incident lifecycle
//! in a throwaway state store, so that it says what would have fired and which alerts would
//! have been sent each day. Nothing is delivered, quarantined or written to the warehouse or to
//! the user's state store.

mod cut;
pub mod render;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};

use crate::config::Config;
use crate::rule::{Finding, Scope, Severity};
use crate::runner::Evaluation;
use crate::source::Source;
use crate::state::incident::{self, Notice, Silence};
use crate::state::store::{Delivered, RunRecord, StateError, Store};
use crate::state::{self, Location};

/// One alert the daily run of a day would have sent about one incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// What is said: `Open` (new or escalated), `Remind` (still failing) or `Resolve`.
    pub notice: Notice,
    /// The incident's fingerprint (rule, check, subject).
    pub fingerprint: String,
    /// The incident's severity (for a resolution, the severity it was announced at).
    pub severity: Severity,
    /// The channels it goes to, in name order.
    pub channels: Vec<String>,
}

/// What the daily run of one day would have found and sent.
#[derive(Clone, Debug)]
pub struct Day {
    /// The expected partition of the run.
    pub date: NaiveDate,
    /// Its findings, most severe first.
    pub findings: Vec<Finding>,
    /// The alerts it would have sent, openings first, then reminders, then resolutions.
    pub alerts: Vec<Alert>,
}

impl Day {
    /// `error`, `warn` or `ok`, by the most severe finding.
    pub fn verdict(&self) -> &'static str {
        if self.count(Severity::Error) > 0 {
            "error"
        } else if self.count(Severity::Warn) > 0 {
            "warn"
        } else {
            "ok"
        }
    }

    /// Findings of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Alerts that announce something: new or escalated incidents and resolutions (one per
    /// incident, however many channels it goes to). Reminders are counted apart.
    pub fn alerts_sent(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.notice != Notice::Remind)
            .count()
    }

    /// "Still failing" reminders of ongoing incidents (sent to Slack and webhooks daily).
    pub fn reminders(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.notice == Notice::Remind)
            .count()
    }
}

/// A backtest over a range of days.
#[derive(Clone, Debug)]
pub struct Backtest {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// The config file.
    pub config_path: PathBuf,
    /// The warehouse as shown (no password).
    pub warehouse: String,
    /// The scope every day was judged with.
    pub scope: Scope,
    /// One entry per day, in order.
    pub days: Vec<Day>,
}

/// Why a backtest cannot run.
#[derive(Debug)]
pub enum BacktestError {
    /// The first day is after the last.
    Range {
        /// The first day.
        from: NaiveDate,
        /// The last day.
        to: NaiveDate,
    },
    /// The source does not read rows (a database judged by pushed-down queries): it cannot
    /// see the warehouse as it stood on a day.
    Unsupported(String),
    /// No table has a row dated within the range.
    NoData {
        /// The first day.
        from: NaiveDate,
        /// The last day.
        to: NaiveDate,
        /// The first and last day the tables have rows of up to `to`, when they have any.
        span: Option<(NaiveDate, NaiveDate)>,
    },
    /// A table could not be read because the source failed.
    Source {
        /// The table.
        table: String,
        /// Why.
        message: String,
    },
    /// The throwaway state store failed.
    State(StateError),
    /// The throwaway store's folder could not be made.
    Scratch(PathBuf, std::io::Error),
}

impl fmt::Display for BacktestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BacktestError::Range { from, to } => write!(
                f,
                "--from {from} is after --to {to}: give the first day, then the last"
            ),
            BacktestError::Unsupported(source) => write!(
                f,
                "backtest reads a warehouse folder (CSV or Parquet files); {source} is judged \
                 by queries that cannot leave out later rows"
            ),
            BacktestError::NoData { from, to, span } => {
                write!(f, "no table has rows dated from {from} to {to}")?;
                match span {
                    Some((first, last)) => write!(f, " (their rows run from {first} to {last})"),
                    None => write!(f, " (nor any day before)"),
                }
            }
            BacktestError::Source { table, message } => write!(
                f,
                "cannot read table {table}: {message}; nothing was judged or written"
            ),
            BacktestError::State(e) => write!(f, "the backtest's own state store failed: {e}"),
            BacktestError::Scratch(path, e) => {
                write!(f, "cannot make the folder {}: {e}", path.display())
            }
        }
    }
}

impl std::error::Error for BacktestError {}

impl From<StateError> for BacktestError {
    fn from(e: StateError) -> Self {
        BacktestError::State(e)
    }
}

/// A folder removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replays the daily runs from `from` to `to` (inclusive) over `source`, with `scope`. The
/// incident lifecycle runs in a throwaway SQLite store in a hidden folder of `scratch_dir`
/// (removed at the end); the silences are those of the config. Days are judged `workers` at a
/// time.
pub fn run(
    config: &Config,
    source: &dyn Source,
    from: NaiveDate,
    to: NaiveDate,
    scope: Scope,
    scratch_dir: &Path,
    workers: usize,
) -> Result<Backtest, BacktestError> {
    if from > to {
        return Err(BacktestError::Range { from, to });
    }
    if source.folder().is_none() {
        return Err(BacktestError::Unsupported(source.describe()));
    }
    // Named as the reports' temporaries, so that the next run removes one a killed backtest
    // left.
    let folder = scratch_dir.join(format!(
        "{}backtest-{}",
        crate::report::TEMP_PREFIX,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).map_err(|e| BacktestError::Scratch(folder.clone(), e))?;
    let scratch = Scratch(folder);
    let store = Store::open(&Location::File(scratch.0.join("state.sqlite")), true)?;
    let warehouse = source.describe();
    let warehouse_id = state::warehouse_id(&config.state, &warehouse);
    let declared: Vec<Silence> = config.state.silences.iter().map(Silence::from).collect();
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let mut days = Vec::with_capacity(dates.len());
    let mut span: Option<(NaiveDate, NaiveDate)> = None;
    let mut dated = false;
    let shared = cut::Shared::read(config, source, from, to, scope);
    for chunk in dates.chunks(workers.max(1)) {
        let evals = judge(config, source, &shared, chunk, scope);
        for mut eval in evals {
            if let Some((table, message)) = eval.source_failure() {
                return Err(BacktestError::Source {
                    table: table.to_string(),
                    message: message.to_string(),
                });
            }
            let day = eval.expected_date;
            dated |= has_rows(&eval, day);
            span = widen(span, &eval);
            let previous = store.previous(&warehouse_id, &declared)?;
            eval.add_schema_changes(&config.state, &previous.columns);
            let lifecycle = incident::advance(
                previous.open,
                &previous.silences,
                previous.latest,
                &eval.findings,
                day,
            );
            let routed =
                crate::alert::would_send(&config.alert_routing, &lifecycle, &eval.findings);
            let alerts = alerts(&routed, &lifecycle);
            let notified = |notice: Notice| {
                alerts
                    .iter()
                    .filter(|a| a.notice == notice)
                    .map(|a| a.fingerprint.clone())
                    .collect()
            };
            let delivered = Delivered {
                opened: notified(Notice::Open),
                reminded: notified(Notice::Remind),
            };
            let run_id = format!("backtest-{day}");
            store.commit(
                &RunRecord {
                    run_id: &run_id,
                    warehouse_id: &warehouse_id,
                    warehouse: &warehouse,
                    started: Utc::now(),
                    config_hash: "",
                    verdict: crate::report::verdict(&eval),
                    eval: &eval,
                    lifecycle: &lifecycle,
                    delivered: &delivered,
                    cache: None,
                },
                &declared,
            )?;
            days.push(Day {
                date: day,
                findings: eval.findings,
                alerts,
            });
        }
    }
    if !dated {
        return Err(BacktestError::NoData { from, to, span });
    }
    Ok(Backtest {
        from,
        to,
        config_path: config.path.clone(),
        warehouse,
        scope,
        days,
    })
}

/// The runs of `days`, each on its own thread, in order.
fn judge(
    config: &Config,
    source: &dyn Source,
    shared: &cut::Shared,
    days: &[NaiveDate],
    scope: Scope,
) -> Vec<Evaluation> {
    std::thread::scope(|s| {
        let handles: Vec<_> = days
            .iter()
            .map(|day| s.spawn(move || cut::evaluate(config, source, shared, *day, scope)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a backtest day's run panicked"))
            .collect()
    })
}

/// Whether some table has rows dated `day`.
fn has_rows(eval: &Evaluation, day: NaiveDate) -> bool {
    eval.scans.iter().any(|scan| {
        scan.outcome
            .as_ref()
            .ok()
            .and_then(|stats| stats.dates.as_ref())
            .is_some_and(|dates| dates.rows_by_day.contains_key(&day))
    })
}

/// `span` widened to the days the tables of `eval` have rows of.
fn widen(
    span: Option<(NaiveDate, NaiveDate)>,
    eval: &Evaluation,
) -> Option<(NaiveDate, NaiveDate)> {
    let spans = eval.scans.iter().filter_map(|scan| {
        let dates = scan.outcome.as_ref().ok()?.dates.as_ref()?;
        dates.span()
    });
    spans
        .chain(span)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// The alerts of a day from what each channel would be told: one per incident and notice,
/// with its channels.
fn alerts(
    routed: &[(String, Vec<(String, Notice)>)],
    lifecycle: &incident::Lifecycle,
) -> Vec<Alert> {
    let mut by_notice: BTreeMap<(u8, &str), Vec<String>> = BTreeMap::new();
    for (channel, covers) in routed {
        for (print, notice) in covers {
            let order = match notice {
                Notice::Open => 0,
                Notice::Remind => 1,
                Notice::Resolve => 2,
            };
            by_notice
                .entry((order, print))
                .or_default()
                .push(channel.clone());
        }
    }
    by_notice
        .into_iter()
        .filter_map(|((_, print), channels)| {
            let tracked = lifecycle.tracked.get(print)?;
            let notice = tracked.notice?;
            let incident = &tracked.incident;
            let severity = match notice {
                Notice::Resolve => incident.notified.unwrap_or(incident.severity),
                _ => incident.severity,
            };
            Some(Alert {
                notice,
                fingerprint: print.to_string(),
                severity,
                channels,
            })
        })
        .collect()
}
