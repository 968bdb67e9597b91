//! vigil-engine: the runtime of vigil, a data-warehouse monitor and circuit breaker.
//!
//! Rules are written against `vigil-rule-api` (re-exported here as [`api`]); the engine never
//! changes for a new rule. It loads the config ([`config`]) and the rules (linked through
//! `inventory`, or plugins through [`plugin`]), plans the metrics every rule needs, computes
//! them in one pass per table ([`scan`]), evaluates the rules ([`runner`]), writes the reports
//! ([`report`]) and quarantines a snapshot on ERROR ([`quarantine`]). [`cli`] is the whole
//! command line.

pub mod alert;
pub mod backtest;
pub mod cli;
pub mod config;
pub mod demo;
pub mod docs;
mod failed;
pub mod history;
pub mod legacy;
pub mod loader;
pub mod plugin;
pub mod progress;
pub mod quarantine;
pub mod registry;
pub mod report;
pub mod runner;
pub mod scan;
pub mod schema;
pub mod source;
pub mod sql;
pub mod state;
pub mod suggest;
pub mod testing;
pub mod timestamp;

/// The rule API the engine runs rules through.
pub use vigil_rule_api as api;
pub use vigil_rule_api::{baseline, metric, rule};
