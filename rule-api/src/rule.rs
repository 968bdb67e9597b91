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

use crate::metric::{MetricError, MetricRequest, Metrics};
use crate::wire;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Stable check id, e.g. `freshness:sessions_partition`.
    pub check: String,
    /// Id of the rule (or engine component) that produced it.
    pub rule: String,
    /// The partition (day) the finding is about, if any.
    pub partition_date: Option<NaiveDate>,
    /// What the check judged when one check judges several things (a channel, a column), so
    /// that each has its own incident and alert; `None` when the check id says it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// One sentence a person can act on.
    pub message: String,
    /// The observed value, if the check measures one.
    #[serde(with = "wire::opt_f64")]
    pub value: Option<f64>,
    /// The threshold the value was held against.
    #[serde(with = "wire::opt_f64")]
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
            subject: None,
            message: message.into(),
            value: None,
            threshold: None,
            context: None,
        }
    }

    /// The WARN finding `<check>_skipped` of a configured check that could not run, with the
    /// reason (a check that silently does not run is how monitors miss incidents). The runner
    /// merges the skips of one rule that share a reason into one finding.
    pub fn skipped(rule: &str, check: &str, reason: impl fmt::Display) -> Self {
        let reason = reason.to_string();
        Finding::new(
            Severity::Warn,
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

    /// Sets the subject: what of several things the check judged (a channel, a column).
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
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
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// The day.
    pub day: NaiveDate,
    /// Its value.
    #[serde(with = "wire::f64")]
    pub value: f64,
    /// Its baseline's center and spread, when it had one (charted as center ± 3 spreads).
    #[serde(with = "wire::opt_pair")]
    pub baseline: Option<(f64, f64)>,
    /// Fixed lower and upper bounds the value is held against (a threshold band), when the
    /// rule judges against fixed limits instead of a baseline. Either may be infinite.
    #[serde(default, with = "wire::opt_pair")]
    pub bounds: Option<(f64, f64)>,
    /// Whether it stood out from its baseline or bounds.
    pub flagged: bool,
}

impl HistoryPoint {
    /// A day's value judged against a baseline's center and spread (or none).
    pub fn new(day: NaiveDate, value: f64, baseline: Option<(f64, f64)>, flagged: bool) -> Self {
        HistoryPoint {
            day,
            value,
            baseline,
            bounds: None,
            flagged,
        }
    }

    /// A day's value held against fixed bounds; flagged when outside them.
    pub fn bounded(day: NaiveDate, value: f64, lower: f64, upper: f64) -> Self {
        HistoryPoint {
            day,
            value,
            baseline: None,
            bounds: Some((lower, upper)),
            flagged: value < lower || value > upper,
        }
    }

    /// The band a chart draws: the fixed bounds, else center ± 3 spreads.
    pub fn band(&self) -> Option<(f64, f64)> {
        band(self.bounds, self.baseline)
    }
}

/// Fixed bounds, else center ± 3 spreads.
fn band(bounds: Option<(f64, f64)>, baseline: Option<(f64, f64)>) -> Option<(f64, f64)> {
    bounds.or(baseline.map(|(c, s)| (c - 3.0 * s, c + 3.0 * s)))
}

/// What a metric's values are, so that reports write them as people read them: counts without
/// decimals (thousands separated), shares as percentages, money with 2 decimals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unit {
    /// A number of unknown kind (what a rule that sets no unit reports).
    #[default]
    Number,
    /// A count of things, named by `of` (e.g. `sessions/day`, `orders`, `days behind`).
    Count {
        /// What is counted, written after the number.
        of: String,
    },
    /// A share or rate from 0 to 1, written as a percentage.
    Share,
    /// An amount of money, written with 2 decimals.
    Money,
}

impl Unit {
    /// A count of `of` (e.g. `Unit::count("sessions/day")`).
    pub fn count(of: impl Into<String>) -> Self {
        Unit::Count { of: of.into() }
    }
}

/// A daily metric as a rule judged it for the expected partition, or a check it ran with its
/// value and fixed limits: what the reports tabulate and chart, whether or not it was flagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Observation {
    /// What was judged, e.g. `anomaly:revenue` or `anomaly:channel_session_share direct`.
    pub metric: String,
    /// The expected partition.
    pub day: NaiveDate,
    /// Its value (NaN when the expected partition has none).
    #[serde(with = "wire::f64")]
    pub value: f64,
    /// Its baseline's center and spread, when it had one.
    #[serde(with = "wire::opt_pair")]
    pub baseline: Option<(f64, f64)>,
    /// Fixed lower and upper bounds, when the rule judges against fixed limits.
    #[serde(default, with = "wire::opt_pair")]
    pub bounds: Option<(f64, f64)>,
    /// Its z-score (`None`: no baseline, or unbounded).
    #[serde(with = "wire::opt_f64")]
    pub z: Option<f64>,
    /// Its change from the baseline (`None`: no baseline, or unbounded).
    #[serde(with = "wire::opt_f64")]
    pub pct: Option<f64>,
    /// Whether it was flagged.
    pub flagged: bool,
    /// The metric's days up to the expected partition.
    pub history: Vec<HistoryPoint>,
    /// What its values are (counts, shares, money), for the reports' formatting.
    #[serde(default)]
    pub unit: Unit,
}

impl Observation {
    /// A rule's own daily numbers held against fixed bounds (`lower`/`upper`, either may be
    /// infinite), for the reports' metrics table and charts. `history` holds the days up to
    /// `day`; the value of `day` is taken from it (NaN when absent).
    pub fn bounded(
        metric: impl Into<String>,
        day: NaiveDate,
        history: &crate::metric::DailySeries,
        lower: f64,
        upper: f64,
    ) -> Self {
        let history: Vec<HistoryPoint> = history
            .range(..=day)
            .map(|(d, v)| HistoryPoint::bounded(*d, *v, lower, upper))
            .collect();
        let today = history.iter().find(|p| p.day == day);
        Observation {
            metric: metric.into(),
            day,
            value: today.map_or(f64::NAN, |p| p.value),
            baseline: None,
            bounds: Some((lower, upper)),
            z: None,
            pct: None,
            flagged: today.is_some_and(|p| p.flagged),
            history,
            unit: Unit::Number,
        }
    }

    /// A check that ran once for `day` (no daily history): its `value` held against fixed
    /// bounds (`lower`/`upper`, either may be infinite), so that the reports list it, passing
    /// or failing. A NaN value (nothing to measure) is not flagged.
    pub fn check(
        metric: impl Into<String>,
        day: NaiveDate,
        value: f64,
        lower: f64,
        upper: f64,
    ) -> Self {
        let point = HistoryPoint::bounded(day, value, lower, upper);
        Observation {
            metric: metric.into(),
            day,
            value,
            baseline: None,
            bounds: Some((lower, upper)),
            z: None,
            pct: None,
            flagged: point.flagged,
            history: if value.is_nan() {
                Vec::new()
            } else {
                vec![point]
            },
            unit: Unit::Number,
        }
    }

    /// Sets what its values are (counts, shares, money).
    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }

    /// A judged metric with a baseline (what [`crate::baseline::flag_days`] records).
    #[allow(clippy::too_many_arguments)]
    pub fn with_baseline(
        metric: impl Into<String>,
        day: NaiveDate,
        value: f64,
        baseline: Option<(f64, f64)>,
        z: Option<f64>,
        pct: Option<f64>,
        flagged: bool,
        history: Vec<HistoryPoint>,
    ) -> Self {
        Observation {
            metric: metric.into(),
            day,
            value,
            baseline,
            bounds: None,
            z,
            pct,
            flagged,
            history,
            unit: Unit::Number,
        }
    }

    /// The band a chart draws for the expected partition: fixed bounds, else center ± 3
    /// spreads.
    pub fn band(&self) -> Option<(f64, f64)> {
        band(self.bounds, self.baseline)
    }
}

/// What the run tells a rule about one configured table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TableInfo {
    /// The column that dates its rows (`<table>.<column>` when looked up), if any.
    pub date_column: Option<String>,
}

impl TableInfo {
    /// A table dated by `date_column`.
    pub fn dated(date_column: Option<&str>) -> Self {
        TableInfo {
            date_column: date_column.map(str::to_string),
        }
    }
}

/// What a rule knows about the run when it plans and evaluates. Plain data: it is `Sync` and
/// crosses the plugin boundary as a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunCtx {
    /// The partition the run is about (`--expected_run_date`, or today minus the lag).
    pub expected_date: NaiveDate,
    /// Which days are judged.
    pub scope: Scope,
    /// The configured tables, by name.
    pub tables: BTreeMap<String, TableInfo>,
    /// The longest stretch of calendar days before the expected partition that the run's rules
    /// build baselines from ([`Rule::lookback_days`]): a day missing in it distorts a baseline.
    #[serde(default)]
    pub lookback_days: u32,
}

impl RunCtx {
    /// The context of a run about `expected_date` in `scope` over `tables`.
    pub fn new(
        expected_date: NaiveDate,
        scope: Scope,
        tables: BTreeMap<String, TableInfo>,
    ) -> Self {
        RunCtx {
            expected_date,
            scope,
            tables,
            lookback_days: 0,
        }
    }

    /// The same context for rules whose baselines reach `days` back.
    pub fn with_lookback(self, days: u32) -> Self {
        RunCtx {
            lookback_days: days,
            ..self
        }
    }

    /// Whether findings about `day` should be reported in this run's scope.
    pub fn judges(&self, day: NaiveDate) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::Partition => day == self.expected_date,
        }
    }
}

/// The step of a rule that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Building the rule from its params.
    Build,
    /// Planning its metric requests.
    Plan,
    /// Evaluating the computed metrics.
    Evaluate,
}

impl Step {
    /// The step's name in check ids (`<rule>:<step>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Build => "build",
            Step::Plan => "plan",
            Step::Evaluate => "evaluate",
        }
    }
}

/// Why a rule could not produce findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuleError {
    /// A metric it needs is not available (or was not planned).
    Metric {
        /// Why.
        message: String,
    },
    /// The rule's own failure.
    Failed {
        /// Why.
        message: String,
    },
    /// The rule panicked; the run goes on without it.
    Panicked {
        /// The step that panicked.
        step: Step,
        /// The panic message.
        message: String,
    },
    /// A plugin rule could not be reached or answered something this vigil cannot read.
    Plugin {
        /// What went wrong.
        message: String,
    },
}

impl RuleError {
    /// The rule's own failure, with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        RuleError::Failed {
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Metric { message } | RuleError::Failed { message } => f.write_str(message),
            RuleError::Panicked { step, message } => {
                write!(f, "panicked in {}: {message}", step.as_str())
            }
            RuleError::Plugin { message } => write!(f, "plugin error: {message}"),
        }
    }
}

impl std::error::Error for RuleError {}

impl From<MetricError> for RuleError {
    fn from(e: MetricError) -> Self {
        RuleError::Metric {
            message: e.to_string(),
        }
    }
}

/// What a rule's evaluation returns: its findings and the metrics it judged (for the reports'
/// metrics table and charts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evaluated {
    /// The findings.
    pub findings: Vec<Finding>,
    /// The judged metrics of the expected partition.
    pub observations: Vec<Observation>,
}

impl Evaluated {
    /// Findings and observations.
    pub fn new(findings: Vec<Finding>, observations: Vec<Observation>) -> Self {
        Evaluated {
            findings,
            observations,
        }
    }
}

impl From<Vec<Finding>> for Evaluated {
    fn from(findings: Vec<Finding>) -> Self {
        Evaluated {
            findings,
            observations: Vec::new(),
        }
    }
}

/// A configured rule, ready to run. Built from its typed params by the registry.
pub trait Rule: Send + Sync {
    /// The metrics this rule needs, given its params and the run. The columns they name are
    /// the columns the rule reads: a column missing from its table is an ERROR finding.
    fn plan(&self, cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError>;

    /// How many calendar days before the judged day this rule's baselines read (0: none). The
    /// run's completeness check covers at least the longest of them.
    fn lookback_days(&self) -> u32 {
        0
    }

    /// Findings (and judged metrics) from the computed metrics. Pure: no I/O.
    ///
    /// A metric that could not be computed (missing column, missing file) is an `Err` in
    /// `metrics`; a rule reports the checks it must skip with [`Finding::skipped`] and goes on.
    fn evaluate(&self, cx: &RunCtx, metrics: &Metrics) -> Result<Evaluated, RuleError>;

    /// Settings that are valid but under which a check can never report (a threshold no value
    /// reaches, a baseline that can never be built), located like [`ParamsError::at`]:
    /// `vigil validate` prints them as warnings. Default: none.
    ///
    /// [`ParamsError::at`]: crate::registry::ParamsError::at
    fn warnings(&self) -> Vec<crate::registry::ParamsError> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run context and findings are plain data that threads share.
    #[test]
    fn the_run_context_and_findings_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<RunCtx>();
        shared::<Finding>();
        shared::<Evaluated>();
    }

    #[test]
    fn findings_cross_json_with_their_severity_by_name() {
        let finding = Finding::new(Severity::Error, "r", "r:check", "message")
            .value(f64::INFINITY)
            .on(NaiveDate::from_ymd_opt(2025, 3, 8).unwrap());
        let text = serde_json::to_string(&finding).unwrap();
        assert!(text.contains("\"severity\":\"error\""), "{text}");
        assert!(text.contains("\"value\":\"inf\""), "{text}");
        assert_eq!(serde_json::from_str::<Finding>(&text).unwrap(), finding);
    }
}
