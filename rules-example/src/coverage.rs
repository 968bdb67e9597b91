//! The `attribution_coverage` rule: every order has exactly one attribution row per model, and
//! every attributed session exists.

use vigil_rule_api::prelude::*;

/// `rules.attribution_coverage`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageParams {
    /// The orders table.
    pub orders_table: String,
    /// The attribution table (dated by its order through a lookup).
    pub attribution_table: String,
    /// The order id column, in both tables.
    pub order_id_column: String,
    /// The attribution model column.
    pub model_column: String,
    /// The models every order must have exactly one row of.
    pub models: Vec<String>,
    /// The attribution table's session column (empty when nothing was attributed).
    pub session_column: String,
    /// The same column looked up in the sessions table, `<table>.<column>`: the attribution
    /// table needs a lookup into sessions by `session_column` for this check.
    pub looked_up_session_column: String,
    /// Share of a day's orders allowed to miss a model's row, or to have more than one.
    pub max_violation_rate: f64,
    /// Attribution rows allowed per day to name a session that does not exist.
    pub max_unknown_sessions: u64,
    /// Severity of every check of this rule.
    pub severity: Level,
}

impl Default for CoverageParams {
    fn default() -> Self {
        CoverageParams {
            orders_table: "orders".into(),
            attribution_table: "attribution".into(),
            order_id_column: "transaction_id".into(),
            model_column: "model".into(),
            models: vec!["first_click".into(), "last_click".into()],
            session_column: "attributed_session_id".into(),
            looked_up_session_column: "sessions.session_id".into(),
            max_violation_rate: 0.0,
            max_unknown_sessions: 0,
            severity: Level::Error,
        }
    }
}

/// The attribution coverage rule, built from its params.
#[derive(Debug)]
pub struct AttributionCoverage {
    params: CoverageParams,
}

vigil_rule_api::register_rule! {
    /// Every order has exactly one attribution row per model, and attributed sessions exist.
    ///
    /// ## What it checks
    /// Per day (the order's day):
    /// - `attribution:missing_<model>`: orders with no row of that model, as a share of the
    ///   day's orders, above `max_violation_rate`;
    /// - `attribution:duplicate_<model>`: orders with more than one row of that model;
    /// - `attribution:unknown_sessions`: rows whose `session_column` is set but names no
    ///   session of the sessions table (needs a lookup of the attribution table into sessions).
    ///
    /// The reports chart each model's missing share against the fixed band
    /// `[0, max_violation_rate]`.
    ///
    /// ## Why
    /// Marketing-mix dashboards credit channels through the attribution table. An order without
    /// a last-click row vanishes from every channel; a duplicated row counts its revenue twice;
    /// a session that does not exist means the attribution was computed from stale sessions.
    ///
    /// ## Config
    /// The attribution table must look up its orders (for the date) and, for the session
    /// check, its sessions:
    ///
    /// ```yaml
    /// tables:
    ///   attribution:
    ///     file: fct_attribution.csv
    ///     date_column: orders.order_ts
    ///     lookups:
    ///       - {table: orders, key: transaction_id, columns: [order_ts, revenue]}
    ///       - {table: sessions, key: attributed_session_id, foreign_key: session_id, columns: [session_id]}
    /// ```
    AttributionCoverage {
        id: "attribution_coverage",
        default_severity: Error,
        example: "models: [first_click, last_click]\nmax_violation_rate: 0.0\nmax_unknown_sessions: 0\n",
    }
}

impl RuleSpec for AttributionCoverage {
    type Params = CoverageParams;

    fn new(params: CoverageParams) -> Result<Self, ParamsError> {
        if !(0.0..=1.0).contains(&params.max_violation_rate) {
            return Err(ParamsError::at(
                "max_violation_rate",
                "is a share between 0 and 1",
            ));
        }
        Ok(AttributionCoverage { params })
    }
}

/// The requests of the rule, named.
struct Requests {
    orders: MetricRequest,
    /// Per model: its rows and its distinct orders.
    models: Vec<(String, MetricRequest, MetricRequest)>,
    empty_sessions: MetricRequest,
    unknown_or_empty_sessions: MetricRequest,
}

impl AttributionCoverage {
    fn requests(&self) -> Requests {
        let p = &self.params;
        let attribution = |measure| MetricRequest::daily(&p.attribution_table, measure);
        let models = p
            .models
            .iter()
            .map(|model| {
                let filter = Filter::equals(&p.model_column, model);
                (
                    model.clone(),
                    attribution(Measure::Rows).filtered(filter.clone()),
                    attribution(Measure::Distinct(p.order_id_column.clone())).filtered(filter),
                )
            })
            .collect();
        Requests {
            orders: MetricRequest::daily(
                &p.orders_table,
                Measure::Distinct(p.order_id_column.clone()),
            ),
            models,
            empty_sessions: attribution(Measure::Nulls(p.session_column.clone())),
            unknown_or_empty_sessions: attribution(Measure::Nulls(
                p.looked_up_session_column.clone(),
            )),
        }
    }

    fn finding(
        &self,
        check: String,
        day: NaiveDate,
        message: String,
        value: f64,
        threshold: f64,
    ) -> Option<Finding> {
        let severity = self.params.severity.severity()?;
        Some(
            Finding::new(severity, Self::META.id, check, message)
                .on(day)
                .value(value)
                .threshold(threshold),
        )
    }
}

impl Rule for AttributionCoverage {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        let r = self.requests();
        let mut requests = vec![r.orders, r.empty_sessions, r.unknown_or_empty_sessions];
        for (_, rows, orders) in r.models {
            requests.extend([rows, orders]);
        }
        Ok(requests)
    }

    fn evaluate(&self, cx: &RunCtx, m: &Metrics) -> Result<Evaluated, RuleError> {
        let p = &self.params;
        let id = Self::META.id;
        let r = self.requests();
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        let orders = m.daily(&r.orders)?;
        let judged = || orders.iter().filter(|(day, _)| cx.judges(**day));
        for (model, rows_request, orders_request) in &r.models {
            let (rows, covered) = match (m.daily(rows_request), m.daily(orders_request)) {
                (Ok(rows), Ok(covered)) => (rows, covered),
                (Err(reason), _) | (_, Err(reason)) => {
                    findings.push(Finding::skipped(
                        id,
                        &format!("attribution:{model}"),
                        reason,
                    ));
                    continue;
                }
            };
            // The model's missing share per day, charted against the fixed band.
            let missing_share: DailySeries = orders
                .iter()
                .filter(|(_, n)| **n > 0.0)
                .map(|(&day, &n)| {
                    (
                        day,
                        (n - covered.get(&day).copied().unwrap_or(0.0)).max(0.0) / n,
                    )
                })
                .collect();
            if cx.scope == Scope::Partition && missing_share.contains_key(&cx.expected_date) {
                observations.push(
                    Observation::bounded(
                        format!("attribution:missing_{model}"),
                        cx.expected_date,
                        &missing_share,
                        0.0,
                        p.max_violation_rate,
                    )
                    // A share: the reports write it as a percentage.
                    .unit(Unit::Share),
                );
            }
            for (&day, &n) in judged().filter(|(_, n)| **n > 0.0) {
                let with_row = covered.get(&day).copied().unwrap_or(0.0);
                let missing = (n - with_row).max(0.0);
                let extra = rows.get(&day).copied().unwrap_or(0.0) - with_row;
                for (kind, count) in [("missing", missing), ("duplicate", extra)] {
                    if count / n > p.max_violation_rate {
                        let message = format!(
                            "{count} of {n} orders on {day} have {} `{model}` attribution row",
                            if kind == "missing" {
                                "no"
                            } else {
                                "more than one"
                            }
                        );
                        findings.extend(self.finding(
                            format!("attribution:{kind}_{model}"),
                            day,
                            message,
                            count / n,
                            p.max_violation_rate,
                        ));
                    }
                }
            }
        }
        match (
            m.daily(&r.empty_sessions),
            m.daily(&r.unknown_or_empty_sessions),
        ) {
            (Ok(empty), Ok(unknown_or_empty)) => {
                for (&day, &both) in unknown_or_empty.iter().filter(|(day, _)| cx.judges(**day)) {
                    let unknown = both - empty.get(&day).copied().unwrap_or(0.0);
                    if unknown > p.max_unknown_sessions as f64 {
                        let message = format!("{unknown} attribution rows on {day} name a session that does not exist");
                        findings.extend(self.finding(
                            "attribution:unknown_sessions".into(),
                            day,
                            message,
                            unknown,
                            p.max_unknown_sessions as f64,
                        ));
                    }
                }
            }
            (Err(reason), _) | (_, Err(reason)) => {
                findings.push(Finding::skipped(id, "attribution:unknown_sessions", reason));
            }
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
