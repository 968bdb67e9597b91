//! The stable rule interface: [`Rule`], [`Finding`], [`Severity`] and the run context.
//!
//! A rule never reads rows. It declares the metrics it needs ([`Rule::plan`]), the engine computes
//! them once for all rules, and the rule turns the small daily series into findings
//! ([`Rule::evaluate`]). That keeps a rule a pure function of numbers.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::TableConfig;
use crate::metric::{MetricRequest, Metrics};

/// How serious a finding is. ERROR halts the refresh (with `--fail_on_error`) and quarantines.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nobody is paged.
    Info,
    /// Needs a look today; the refresh goes on.
    Warn,
    /// The data is not safe to show; the refresh must stop.
    Error,
}

impl Severity {
    /// All severities, most severe first (the order of reports and routing).
    pub const ALL: [Severity; 3] = [Severity::Error, Severity::Warn, Severity::Info];

    /// The upper-case label used in reports (`ERROR`, `WARN`, `INFO`).
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Warn => "WARN",
            Severity::Info => "INFO",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A severity, or `off` to report nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Report as ERROR.
    Error,
    /// Report as WARN.
    Warn,
    /// Report as INFO.
    Info,
    /// Do not report.
    Off,
}

impl Level {
    /// The severity, or `None` for `off`.
    pub fn severity(self) -> Option<Severity> {
        match self {
            Level::Error => Some(Severity::Error),
            Level::Warn => Some(Severity::Warn),
            Level::Info => Some(Severity::Info),
            Level::Off => None,
        }
    }
}

/// The severity of a change in each direction, e.g. a revenue drop pages, a rise does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectionLevels {
    /// Severity of a drop below the baseline.
    pub drop: Level,
    /// Severity of a spike above the baseline.
    pub spike: Level,
}

impl DirectionLevels {
    /// Both directions at one level.
    pub const fn both(level: Level) -> Self {
        DirectionLevels {
            drop: level,
            spike: level,
        }
    }

    /// The severity of a change in a direction (`None`: not reported).
    pub fn of(&self, drop: bool) -> Option<Severity> {
        if drop { self.drop } else { self.spike }.severity()
    }

    /// The more severe of the two (for a two-sided test, as the reference monitor runs).
    pub fn two_sided(&self) -> Option<Severity> {
        self.drop.severity().max(self.spike.severity())
    }

    /// The severity of a change in a run's scope: per direction, or with scope `all` the more
    /// severe of the two, as the reference monitor's two-sided test.
    pub fn in_scope(&self, scope: Scope, drop: bool) -> Option<Severity> {
        match scope {
            Scope::All => self.two_sided(),
            Scope::Partition => self.of(drop),
        }
    }
}

/// Which partitions a run judges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Judge only the expected partition; older days are baseline and context.
    #[default]
    Partition,
    /// Judge every day of history, as the reference Python monitor does.
    All,
}

impl Scope {
    /// The config/CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Partition => "partition",
            Scope::All => "all",
        }
    }
}

/// One problem found in the data (or in running a rule).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Stable check id, e.g. `freshness:sessions_partition`.
    pub check: String,
    /// Id of the rule (or engine component) that produced it.
    pub rule: String,
    /// The partition (day) the finding is about, if any.
    pub partition_date: Option<NaiveDate>,
    /// One sentence a person can act on.
    pub message: String,
    /// The observed value, if the check measures one.
    pub value: Option<f64>,
    /// The threshold the value was held against.
    pub threshold: Option<f64>,
    /// Extra numbers that explain the finding (baseline, counts, samples).
    pub context: Option<Map<String, Value>>,
}

impl Finding {
    /// A finding with the required fields; add the rest with the builder methods.
    pub fn new(
        severity: Severity,
        rule: impl Into<String>,
        check: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            check: check.into(),
            rule: rule.into(),
            partition_date: None,
            message: message.into(),
            value: None,
            threshold: None,
            context: None,
        }
    }

    /// The INFO finding `<check>_skipped` of a check that could not run, with the reason.
    /// The runner merges the skips of one rule that share a reason into one finding.
    pub fn skipped(rule: &str, check: &str, reason: impl fmt::Display) -> Self {
        let reason = reason.to_string();
        Finding::new(
            Severity::Info,
            rule,
            format!("{check}_skipped"),
            format!("Check `{check}` skipped: {reason}"),
        )
        .context(serde_json::json!({"skipped": [check], "reason": reason}))
    }

    /// Sets the partition date.
    pub fn on(mut self, day: NaiveDate) -> Self {
        self.partition_date = Some(day);
        self
    }

    /// Sets the observed value.
    pub fn value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets the threshold.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = Some(threshold);
        self
    }

    /// Sets the context object. Non-objects are wrapped as `{"value": ...}`.
    pub fn context(mut self, context: Value) -> Self {
        self.context = Some(match context {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_string(), other)]),
        });
        self
    }
}

/// One day of a judged metric's history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryPoint {
    /// The day.
    pub day: NaiveDate,
    /// Its value.
    pub value: f64,
    /// Its baseline's center and spread, when it had one.
    pub baseline: Option<(f64, f64)>,
    /// Whether it stood out from its baseline.
    pub flagged: bool,
}

/// A daily metric as a rule judged it for the expected partition: what the reports tabulate
/// and chart, whether or not it was flagged.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// What was judged, e.g. `anomaly:revenue` or `anomaly:channel_session_share direct`.
    pub metric: String,
    /// The expected partition.
    pub day: NaiveDate,
    /// Its value.
    pub value: f64,
    /// Its baseline's center and spread, when it had one.
    pub baseline: Option<(f64, f64)>,
    /// Its z-score (`None`: no baseline, or unbounded).
    pub z: Option<f64>,
    /// Its change from the baseline (`None`: no baseline, or unbounded).
    pub pct: Option<f64>,
    /// Whether it was flagged.
    pub flagged: bool,
    /// The metric's days up to the expected partition.
    pub history: Vec<HistoryPoint>,
}

/// What a rule knows about the run when it plans and evaluates.
#[derive(Clone, Debug)]
pub struct RunCtx<'a> {
    /// The partition the run is about (`--expected_run_date`, or today minus the lag).
    pub expected_date: NaiveDate,
    /// Which days are judged.
    pub scope: Scope,
    /// The configured tables, by name.
    pub tables: &'a BTreeMap<String, TableConfig>,
    /// The judged metrics of the run, for the reports ([`RunCtx::observe`]).
    pub observations: &'a std::cell::RefCell<Vec<Observation>>,
}

impl RunCtx<'_> {
    /// Records a judged metric for the reports.
    pub fn observe(&self, observation: Observation) {
        self.observations.borrow_mut().push(observation);
    }

    /// Whether findings about `day` should be reported in this run's scope.
    pub fn judges(&self, day: NaiveDate) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::Partition => day == self.expected_date,
        }
    }
}

/// Why a rule could not produce findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// A configured rule, ready to run. Built from its typed params by the registry.
pub trait Rule: Send + Sync {
    /// The metrics this rule needs, given its params and the run.
    fn plan(&self, cx: &RunCtx<'_>) -> Vec<MetricRequest>;

    /// Findings from the computed metrics. Pure: no I/O.
    ///
    /// A metric that could not be computed (missing column, missing file) is an `Err` in
    /// `metrics`; a rule reports the checks it must skip as INFO findings and goes on.
    fn evaluate(&self, cx: &RunCtx<'_>, metrics: &Metrics) -> Result<Vec<Finding>, RuleError>;
}
