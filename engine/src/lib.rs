//! vigil-engine: the stable rule API and the runtime of vigil, a data-warehouse monitor and
//! circuit breaker.
//!
//! A rule crate depends on this crate, implements [`rule::Rule`] and [`registry::RuleSpec`] for
//! its rule types and registers them with [`register_rule!`]. The engine loads the config
//! ([`config`]), plans the metrics every rule needs ([`metric`]), computes them in one pass per
//! table ([`scan`]), evaluates the rules ([`runner`]), writes the reports ([`report`]) and
//! quarantines a snapshot on ERROR ([`quarantine`]). [`cli`] is the whole command line.

pub mod alert;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod demo;
pub mod docs;
pub mod legacy;
pub mod metric;
pub mod plugin;
pub mod progress;
pub mod quarantine;
pub mod registry;
pub mod report;
pub mod rule;
pub mod runner;
pub mod scan;
pub mod schema;
pub mod suggest;
pub mod testing;
pub mod timestamp;

/// Re-exported for `register_rule!`.
pub use inventory;

/// What a rule crate needs, in one import.
pub mod prelude {
    pub use crate::baseline::{flag_days, BaselineParams, Flag, Noise, Series};
    pub use crate::legacy::LegacyConfig;
    pub use crate::metric::{days_with_rows, ratio, DailySeries};
    pub use crate::metric::{
        Cmp, Filter, FilterOp, Grouping, Measure, MetricError, MetricRequest, MetricValue, Metrics,
        Number,
    };
    pub use crate::register_rule;
    pub use crate::registry::{Described, RuleSpec};
    pub use crate::rule::{
        DirectionLevels, Finding, Level, Rule, RuleError, RunCtx, Scope, Severity,
    };
    pub use chrono::NaiveDate;
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;
}
