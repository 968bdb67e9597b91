//! The reference monitor's config format (`monitoring_rules.yml`), read unchanged.
//!
//! The types mirror the reference's keys, with its required and optional keys (SPEC section 3),
//! and reject unknown keys. [`LegacyConfig::into_parts`] maps the engine's sections (tables, run,
//! operations, routing) and [`LegacyConfig::rule_params`] the builtin rules' sections: the
//! reference format is translated into the native one, so rules know nothing of it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{attribution_lookup, AlertRouting, Operations, RunConfig, TableConfig};
use crate::timestamp::NaiveTimestamps;
use vigil_rule_api::registry::empty_is_default;

/// A YAML mapping that keeps the file's key order (the reference evaluates null-rate limits in
/// config order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    pairs.push(entry);
                }
                Ok(OrderedMap(pairs))
            }
        }
        d.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

/// A config in the reference monitor's format (`monitoring_rules.yml`), read unchanged and
/// mapped onto the builtin rules. Its optional sections left empty take their defaults.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegacyConfig {
    /// Required columns and date columns per table.
    pub schemas: Schemas,
    /// Table-wide integrity limits.
    pub hard_rules: HardRules,
    /// Baseline and thresholds of the anomaly and channel-share checks.
    pub anomaly_detection: AnomalyDetection,
    /// Freshness, completeness and volume floors.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<Freshness>")]
    pub freshness: Freshness,
    /// Quarantine settings.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<LegacyOperations>")]
    pub operations: LegacyOperations,
    /// Routing plan per severity.
    #[serde(default, deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<AlertRouting>")]
    pub alert_routing: AlertRouting,
}

/// A share from 0 to 1 per column.
fn rates(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    })
}

/// `schemas:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schemas {
    /// Required columns of `fct_sessions.csv`.
    pub sessions_required: Vec<String>,
    /// Required columns of `fct_orders.csv`.
    pub orders_required: Vec<String>,
    /// Required columns of `fct_attribution.csv`.
    pub attrib_required: Vec<String>,
    /// Date column of sessions.
    pub sessions_date_col: String,
    /// Date column of orders.
    pub orders_date_col: String,
    /// Date column of attribution (unused by the reference).
    #[serde(default)]
    pub attrib_date_col: Option<String>,
}

/// `hard_rules:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HardRules {
    /// Duplicate transaction ids allowed.
    pub max_duplicate_transactions: u64,
    /// Zero-revenue orders allowed.
    pub max_zero_revenue_orders: u64,
    /// Null-rate limit per sessions column (a share from 0 to 1), in file order.
    #[schemars(schema_with = "rates")]
    pub max_null_rate: OrderedMap<f64>,
}

/// `anomaly_detection:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyDetection {
    /// Baseline length (the reference counts observations, not days); at least 1.
    #[schemars(range(min = 1))]
    pub baseline_days: u32,
    /// |z| threshold.
    #[schemars(range(min = 0))]
    pub z_score_threshold: f64,
    /// |percent change| threshold (0.3 = 30%).
    #[schemars(range(min = 0))]
    pub pct_change_threshold: f64,
    /// Channels monitored by revenue share.
    #[serde(default)]
    pub top_channels_to_monitor: Option<u32>,
    /// Absolute share change that flags a channel (0.15 = 15 points, at most 1).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    pub channel_share_abs_change_threshold: Option<f64>,
}

/// `freshness:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Freshness {
    /// Expected partition = today minus this many days.
    pub expected_lag_days: u32,
    /// Missing days allowed inside the data's date range.
    pub allowed_missing_days: u32,
    /// Floor of distinct sessions per day.
    pub min_sessions_per_day: u64,
    /// Floor of distinct orders per day.
    pub min_orders_per_day: u64,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            expected_lag_days: 1,
            allowed_missing_days: 0,
            min_sessions_per_day: 0,
            min_orders_per_day: 0,
        }
    }
}

/// `operations:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LegacyOperations {
    /// Snapshot the warehouse when any ERROR is found.
    pub quarantine_on_error: bool,
    /// Where snapshots go (relative to the warehouse folder's parent).
    pub quarantine_target_dir: String,
    /// Copy the warehouse files into the snapshot (the reference ignores this key).
    pub warehouse_copy_on_quarantine: bool,
}

impl Default for LegacyOperations {
    fn default() -> Self {
        LegacyOperations {
            quarantine_on_error: false,
            quarantine_target_dir: "quarantine".into(),
            warehouse_copy_on_quarantine: true,
        }
    }
}

/// The engine's sections of a native config, as mapped from a reference config.
#[derive(Clone, Debug)]
pub struct EngineParts {
    /// The three tables with the reference's files, date columns and required columns.
    pub tables: BTreeMap<String, TableConfig>,
    /// Expected lag.
    pub run: RunConfig,
    /// Quarantine.
    pub operations: Operations,
    /// Routing.
    pub alert_routing: AlertRouting,
}

impl LegacyConfig {
    /// Maps the engine's sections. Naive timestamps are taken as UTC, as the reference does.
    pub fn into_parts(&self) -> EngineParts {
        let s = &self.schemas;
        let table = |file: &str, date: Option<String>, required: &[String]| TableConfig {
            file: file.into(),
            relation: None,
            date_column: date,
            required_columns: required.to_vec(),
            naive_timestamps: NaiveTimestamps::Utc,
            max_unparsable_dates: 0,
            max_empty_dates: 0,
            max_multiline_rows: 0,
            lookups: Vec::new(),
        };
        let tables = BTreeMap::from([
            (
                "sessions".to_string(),
                table(
                    "fct_sessions.csv",
                    Some(s.sessions_date_col.clone()),
                    &s.sessions_required,
                ),
            ),
            (
                "orders".to_string(),
                table(
                    "fct_orders.csv",
                    Some(s.orders_date_col.clone()),
                    &s.orders_required,
                ),
            ),
            (
                // The reference dates attribution rows by their order (attrib_date_col is unused).
                "attribution".to_string(),
                TableConfig {
                    lookups: vec![attribution_lookup(&s.orders_date_col)],
                    ..table(
                        "fct_attribution.csv",
                        Some(format!("orders.{}", s.orders_date_col)),
                        &s.attrib_required,
                    )
                },
            ),
        ]);
        EngineParts {
            tables,
            run: RunConfig {
                expected_lag_days: self.freshness.expected_lag_days,
                ..RunConfig::default()
            },
            operations: Operations {
                quarantine_on_error: self.operations.quarantine_on_error,
                quarantine_target_dir: self.operations.quarantine_target_dir.clone(),
                copy_warehouse: self.operations.warehouse_copy_on_quarantine,
                ..Operations::default()
            },
            alert_routing: self.alert_routing.clone(),
        }
    }
}

impl LegacyConfig {
    /// The native params the reference gives rule `id`, if it configures it.
    pub fn params_of(&self, id: &str) -> Option<Value> {
        self.rule_params()
            .into_iter()
            .find(|(rule, _)| *rule == id)
            .map(|(_, params)| params)
    }

    /// The native params of each builtin rule the reference configures, by rule id.
    pub fn rule_params(&self) -> Vec<(&'static str, Value)> {
        let a = &self.anomaly_detection;
        let f = &self.freshness;
        let h = &self.hard_rules;
        // The reference counts `baseline_days` observations and judges a day from its fifth
        // observation on, with at least 3 earlier values: at least 4 usable points.
        let baseline = json!({
            "window_days": a.baseline_days,
            "min_points": a.baseline_days.min(4),
        });
        let freshness_table = |column: &str, floor: u64, floor_severity: &str| {
            json!({
                "allowed_missing_days": f.allowed_missing_days,
                "min_per_day": floor,
                "count_distinct": column,
                "floor_severity": floor_severity,
            })
        };
        // With scope `partition`, sessions (thousands a day) judge the mix too: revenue shares
        // of a few dozen orders miss a lost referrer. Scope `all` stays the reference's.
        let mut drift = json!({
            "baseline": baseline,
            "weightings": ["revenue", "sessions"],
            "scope_all_weightings": ["revenue"],
        });
        if let Some(n) = a.top_channels_to_monitor {
            drift["top_channels"] = json!(n);
        }
        if let Some(t) = a.channel_share_abs_change_threshold {
            drift["abs_change_threshold"] = json!(t);
        }
        let null_rates: serde_json::Map<String, Value> = h
            .max_null_rate
            .0
            .iter()
            .map(|(column, max)| (column.clone(), json!(max)))
            .collect();
        vec![
            (
                "anomaly",
                json!({
                    "z_threshold": a.z_score_threshold,
                    "pct_threshold": a.pct_change_threshold,
                    "baseline": baseline,
                }),
            ),
            ("drift", drift),
            (
                "freshness",
                json!({"tables": {
                    "sessions": freshness_table("session_id", f.min_sessions_per_day, "error"),
                    "orders": freshness_table("transaction_id", f.min_orders_per_day, "warn"),
                }}),
            ),
            (
                "revenue",
                json!({
                    "max_duplicate_transactions": h.max_duplicate_transactions,
                    "max_zero_revenue_orders": h.max_zero_revenue_orders,
                    "null_rates": {"table": "sessions", "max": null_rates},
                }),
            ),
        ]
    }
}
