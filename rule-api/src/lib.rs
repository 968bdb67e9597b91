//! vigil-rule-api: what a vigil rule author links against, and nothing more.
//!
//! A rule never reads rows. It declares the metrics it needs ([`rule::Rule::plan`] returns
//! [`metric::MetricRequest`]s), the engine computes them once for all rules in one pass per
//! table (CSV scan, Parquet read or one SQL query), and the rule turns the small daily series
//! into [`rule::Finding`]s and [`rule::Observation`]s ([`rule::Rule::evaluate`]).
//!
//! - [`rule`]: the `Rule` trait, findings, severities, the run context;
//! - [`metric`]: metric requests, filters and computed metrics;
//! - [`baseline`]: the shared statistics (baselines, z-score, percent change, MAD);
//! - [`registry`]: typed params ([`registry::RuleSpec`]) and [`register_rule!`];
//! - [`protocol`]: the plugin protocol and [`declare_plugin!`];
//! - `testkit` (feature `testkit`): rule tests over in-memory rows.
//!
//! It depends on serde, serde_json, schemars, chrono and inventory (plus the tiny
//! serde_path_to_error for locating params errors), so a rule crate builds in seconds.

pub mod baseline;
pub mod metric;
pub mod protocol;
pub mod registry;
pub mod rule;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wire;

/// Re-exported for `register_rule!`.
pub use inventory;

/// What a rule crate needs, in one import.
pub mod prelude {
    pub use crate::baseline::{flag_days, BaselineParams, Flag, Noise, Series};
    pub use crate::metric::{days_with_rows, ratio, DailyByDimension, DailySeries};
    pub use crate::metric::{
        Cmp, Condition, Filter, FilterOp, Grouping, Measure, MetricError, MetricRequest,
        MetricValue, Metrics, Number,
    };
    pub use crate::register_rule;
    pub use crate::registry::{empty_is_default, empty_or, Described, ParamsError, RuleSpec};
    pub use crate::rule::{
        DirectionLevels, Evaluated, Finding, HistoryPoint, Level, Observation, Rule, RuleError,
        RunCtx, Scope, Severity, Unit,
    };
    pub use chrono::NaiveDate;
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;
}
