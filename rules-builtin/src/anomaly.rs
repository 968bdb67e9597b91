//! The `anomaly` rule: daily sessions, orders, revenue, AOV and conversion rate against their
//! baseline, flagged when both the z-score and the percent change pass their thresholds.

use std::collections::{BTreeMap, BTreeSet};

use vigil_rule_api::baseline::Direction;
use vigil_rule_api::prelude::*;

/// A monitored daily metric.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    /// Distinct sessions per day.
    Sessions,
    /// Distinct orders per day.
    Orders,
    /// Sum of order revenue per day.
    Revenue,
    /// Average order value: mean revenue of the day's orders (zero-revenue orders included).
    Aov,
    /// Sessions with a purchase / sessions.
    ConversionRate,
}

impl MetricName {
    const ALL: [MetricName; 5] = [
        MetricName::Sessions,
        MetricName::Orders,
        MetricName::Revenue,
        MetricName::Aov,
        MetricName::ConversionRate,
    ];

    fn id(self) -> &'static str {
        match self {
            MetricName::Sessions => "sessions",
            MetricName::Orders => "orders",
            MetricName::Revenue => "revenue",
            MetricName::Aov => "aov",
            MetricName::ConversionRate => "conversion_rate",
        }
    }

    /// What its values are, for the reports.
    fn unit(self) -> Unit {
        match self {
            MetricName::Sessions => Unit::count("sessions/day"),
            MetricName::Orders => Unit::count("orders/day"),
            MetricName::Revenue | MetricName::Aov => Unit::Money,
            MetricName::ConversionRate => Unit::Share,
        }
    }

    /// Default severities: losing orders, revenue or conversion pages; rises only warn.
    fn default_levels(self) -> DirectionLevels {
        let (drop, spike) = match self {
            MetricName::Sessions => (Level::Warn, Level::Info),
            MetricName::Orders | MetricName::Revenue | MetricName::ConversionRate => {
                (Level::Error, Level::Warn)
            }
            MetricName::Aov => (Level::Warn, Level::Warn),
        };
        DirectionLevels { drop, spike }
    }
}

/// Where the metrics come from.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalySources {
    /// The sessions table.
    pub sessions_table: String,
    /// Its session id column.
    pub session_id_column: String,
    /// Its purchases count column (a session converts when it is > 0).
    pub purchases_column: String,
    /// The orders table.
    pub orders_table: String,
    /// Its order id column.
    pub order_id_column: String,
    /// Its revenue column.
    pub revenue_column: String,
}

impl Default for AnomalySources {
    fn default() -> Self {
        AnomalySources {
            sessions_table: "sessions".into(),
            session_id_column: "session_id".into(),
            purchases_column: "purchases".into(),
            orders_table: "orders".into(),
            order_id_column: "transaction_id".into(),
            revenue_column: "revenue".into(),
        }
    }
}

/// `rules.anomaly`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyParams {
    /// A day is anomalous only if |z| is at least this...
    #[schemars(range(min = 0))]
    pub z_threshold: f64,
    /// ...and its |percent change| from the baseline is at least this (0.3 = 30%).
    #[schemars(range(min = 0))]
    pub pct_threshold: f64,
    /// How each day's baseline is built. With scope `all`, `window_days` is the number of
    /// earlier observations (the reference monitor's `baseline_days`).
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<BaselineParams>")]
    pub baseline: BaselineParams,
    /// The metrics to monitor, each with its severity per direction (`error`, `warn`, `info`
    /// or `off`). Default: all five; drops of orders, revenue and conversion are ERRORs.
    #[serde(deserialize_with = "metrics_or_default")]
    #[schemars(schema_with = "metrics_schema")]
    pub metrics: BTreeMap<MetricName, DirectionLevels>,
    /// Tables and columns the metrics are computed from.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<AnomalySources>")]
    pub sources: AnomalySources,
    /// With scope `partition`, a flagged day at least this many times its baseline, or at most
    /// its baseline divided by this, is an ERROR whatever its direction's level (unless `off`):
    /// a doubled or halved metric is a broken load or price more often than business. `null`
    /// keeps the levels as they are.
    #[schemars(range(min = 1))]
    pub error_beyond_factor: Option<f64>,
}

/// `metrics`: only metric names as keys, each with its levels; empty means the default.
fn metrics_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {
                "type": "object",
                "propertyNames": generator.subschema_for::<MetricName>(),
                "additionalProperties": generator.subschema_for::<DirectionLevels>(),
            },
            {"type": "null"},
        ]
    })
}

fn metrics_or_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<MetricName, DirectionLevels>, D::Error> {
    empty_or(d, || AnomalyParams::default().metrics)
}

impl Default for AnomalyParams {
    fn default() -> Self {
        AnomalyParams {
            z_threshold: 3.0,
            pct_threshold: 0.3,
            baseline: BaselineParams::default(),
            metrics: MetricName::ALL
                .iter()
                .map(|m| (*m, m.default_levels()))
                .collect(),
            sources: AnomalySources::default(),
            error_beyond_factor: Some(2.0),
        }
    }
}

/// The anomaly rule, built from its params.
#[derive(Debug)]
pub struct Anomaly {
    params: AnomalyParams,
}

vigil_rule_api::register_rule! {
    /// Daily sessions, orders, revenue, AOV and conversion rate stay near their baseline.
    ///
    /// ## What it checks
    /// For each configured metric, `anomaly:<metric>` flags the expected partition when both
    /// |z| ≥ `z_threshold` and |percent change| ≥ `pct_threshold` against the day's baseline.
    /// The z gate ignores changes that are normal noise; the percent gate ignores tiny changes
    /// of a very stable series. The finding's context carries the whole baseline: mean, std,
    /// z, percent change, direction, points used, window and the days left out.
    ///
    /// The baseline is built over calendar days before the judged day (never including it),
    /// leaving out days already flagged so an incident does not become the new normal, with a
    /// minimum number of points, optionally per weekday (`seasonality: day_of_week`) and robust
    /// (`center: median`). A day without sessions or orders counts as 0, not as missing; AOV
    /// and conversion have no value on a day without orders or sessions. A zero spread or a
    /// zero baseline never produces an infinity: the change is unbounded and judged by the
    /// other gate.
    ///
    /// Severity depends on the direction: by default a drop of orders, revenue or conversion
    /// is an ERROR and a rise a WARN.
    ///
    /// ## Default severities, and why
    /// - Drops of orders, revenue and conversion: ERROR. Lost sales or a broken checkout or
    ///   tag; a dashboard showing them misleads every decision made that day.
    /// - Drops of sessions: WARN. Traffic varies with campaigns and weather; sessions alone
    ///   rarely decide a refresh.
    /// - Rises: WARN (sessions: INFO). Often real (a sale, a campaign), worth a look.
    /// - Any flagged day at least `error_beyond_factor` (2) times its baseline or at most half
    ///   of it: ERROR. A tripled revenue or a halved AOV is a duplicated load, a currency or
    ///   unit bug far more often than business; it must not reach a dashboard unreviewed.
    /// - A level shift that lasts (`baseline.adapt_after_days`, 7) becomes the new normal: its
    ///   later days say "new level since D" and stop once the baseline has adapted.
    ///
    /// ## Why
    /// A broken tracking tag, a failed load or a pricing bug shows first as a daily metric
    /// that leaves its usual range. Gating on z-score AND percent change keeps the alert
    /// count low without missing real breaks.
    ///
    /// ## Scope `all`
    /// Judges every day of history exactly as the reference monitor: the first 4 days are
    /// skipped, the baseline is the last `window_days` observations (flagged days included),
    /// the standard deviation is the population one, and each metric has one two-sided
    /// severity (the more severe of its two directions).
    Anomaly {
        id: "anomaly",
        default_severity: Error,
        example: "z_threshold: 3.0\npct_threshold: 0.3\nbaseline:\n  window_days: 56\n  min_points: 7\n  seasonality: day_of_week\nmetrics:\n  revenue: {drop: error, spike: info}\n  orders: {drop: error, spike: warn}\n  sessions: {drop: warn, spike: off}\n",
    }
}

impl RuleSpec for Anomaly {
    type Params = AnomalyParams;

    fn new(params: AnomalyParams) -> Result<Self, ParamsError> {
        if params.z_threshold < 0.0 || params.pct_threshold < 0.0 {
            let field = if params.z_threshold < 0.0 {
                "z_threshold"
            } else {
                "pct_threshold"
            };
            return Err(ParamsError::at(field, "must not be negative"));
        }
        if params
            .error_beyond_factor
            .is_some_and(|f| f.is_nan() || f < 1.0)
        {
            return Err(ParamsError::at(
                "error_beyond_factor",
                "is a factor of at least 1 (2 = doubled or halved)",
            ));
        }
        params.baseline.check()?;
        Ok(Anomaly { params })
    }
}

/// The requests of the rule, named.
struct Requests {
    session_rows: MetricRequest,
    sessions: MetricRequest,
    purchase_sessions: MetricRequest,
    order_rows: MetricRequest,
    orders: MetricRequest,
    revenue: MetricRequest,
    revenue_squares: MetricRequest,
    priced_orders: MetricRequest,
}

impl Requests {
    fn of(s: &AnomalySources) -> Self {
        let sessions = |m| MetricRequest::daily(&s.sessions_table, m);
        let orders = |m| MetricRequest::daily(&s.orders_table, m);
        Requests {
            session_rows: sessions(Measure::Rows),
            sessions: sessions(Measure::Distinct(s.session_id_column.clone())),
            purchase_sessions: sessions(Measure::Where {
                column: s.purchases_column.clone(),
                cmp: Cmp::Gt,
                value: Number(0.0),
            }),
            order_rows: orders(Measure::Rows),
            orders: orders(Measure::Distinct(s.order_id_column.clone())),
            revenue: orders(Measure::Sum(s.revenue_column.clone())),
            revenue_squares: orders(Measure::SumSquares(s.revenue_column.clone())),
            priced_orders: orders(Measure::Numeric(s.revenue_column.clone())),
        }
    }

    fn all(self) -> Vec<MetricRequest> {
        vec![
            self.session_rows,
            self.sessions,
            self.purchase_sessions,
            self.order_rows,
            self.orders,
            self.revenue,
            self.revenue_squares,
            self.priced_orders,
        ]
    }
}

impl Anomaly {
    /// The metric's daily series, the row count of the table it comes from, and its noise.
    fn dense<'m>(
        &self,
        metric: MetricName,
        m: &'m Metrics,
        r: &Requests,
    ) -> Result<(DailySeries, MetricRequest, Noise<'m>), MetricError> {
        Ok(match metric {
            MetricName::Sessions => (
                m.daily(&r.sessions)?.clone(),
                r.session_rows.clone(),
                Noise::Counts,
            ),
            MetricName::Orders => (
                m.daily(&r.orders)?.clone(),
                r.order_rows.clone(),
                Noise::Counts,
            ),
            MetricName::Revenue => (
                m.daily(&r.revenue)?.clone(),
                r.order_rows.clone(),
                Noise::Sums {
                    squares: m.daily(&r.revenue_squares)?,
                    sums: m.daily(&r.revenue)?,
                },
            ),
            MetricName::Aov => (
                ratio(m.daily(&r.revenue)?, m.daily(&r.priced_orders)?),
                r.order_rows.clone(),
                Noise::Means {
                    squares: m.daily(&r.revenue_squares)?,
                    sums: m.daily(&r.revenue)?,
                    counts: m.daily(&r.priced_orders)?,
                },
            ),
            MetricName::ConversionRate => {
                let sessions = m.daily(&r.sessions)?;
                (
                    ratio(m.daily(&r.purchase_sessions)?, sessions),
                    r.session_rows.clone(),
                    Noise::Shares(sessions),
                )
            }
        })
    }

    /// The series as the reference monitor sees it: over the days either table has rows, a
    /// value where the metric's own table has rows (0.0 where a mean or rate is undefined).
    fn sparse(
        &self,
        dense: &DailySeries,
        own_rows: &MetricRequest,
        m: &Metrics,
        r: &Requests,
    ) -> Vec<(NaiveDate, Option<f64>)> {
        let days = |req: &MetricRequest| m.daily(req).map(days_with_rows).unwrap_or_default();
        let present = days(own_rows);
        let merged: BTreeSet<NaiveDate> = days(&r.session_rows)
            .union(&days(&r.order_rows))
            .copied()
            .collect();
        merged
            .into_iter()
            .map(|d| {
                (
                    d,
                    present
                        .contains(&d)
                        .then(|| dense.get(&d).copied().unwrap_or(0.0)),
                )
            })
            .collect()
    }
}

impl Rule for Anomaly {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(Requests::of(&self.params.sources).all())
    }

    fn lookback_days(&self) -> u32 {
        self.params.baseline.window_days
    }

    fn warnings(&self) -> Vec<ParamsError> {
        let p = &self.params;
        let mut warnings: Vec<ParamsError> = p.baseline.warning().into_iter().collect();
        let off = DirectionLevels::both(Level::Off);
        if p.metrics.values().all(|levels| *levels == off) {
            warnings.push(ParamsError::at(
                "metrics",
                "every metric is `off` in both directions: the rule reports no anomaly",
            ));
        }
        warnings
    }

    fn evaluate(&self, cx: &RunCtx, metrics: &Metrics) -> Result<Evaluated, RuleError> {
        let p = &self.params;
        let requests = Requests::of(&p.sources);
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        for (&metric, levels) in &p.metrics {
            let check = format!("anomaly:{}", metric.id());
            let (dense, own_rows, noise) = match self.dense(metric, metrics, &requests) {
                Ok(s) => s,
                Err(reason) => {
                    findings.push(Finding::skipped(Self::META.id, &check, reason));
                    continue;
                }
            };
            let sparse = match cx.scope {
                Scope::All => self.sparse(&dense, &own_rows, metrics, &requests),
                Scope::Partition => Vec::new(),
            };
            let series = Series {
                metric: &check,
                dense: &dense,
                sparse: &sparse,
                noise,
                unit: metric.unit(),
            };
            let flags = match flag_days(
                cx,
                series,
                &p.baseline,
                &mut observations,
                |_, _, _, score| score.exceeds(p.z_threshold, p.pct_threshold),
            ) {
                Ok(flags) => flags,
                Err(too_little) => {
                    findings.push(Finding::skipped(Self::META.id, &check, too_little));
                    continue;
                }
            };
            for flag in flags {
                let severity = levels.in_scope(cx.scope, flag.direction() == Direction::Drop);
                let Some(mut severity) = severity else {
                    continue;
                };
                let gross = p.error_beyond_factor.is_some_and(|factor| {
                    let (value, center) = (flag.value.abs(), flag.center.abs());
                    value >= factor * center || value * factor <= center
                });
                if cx.scope == Scope::Partition && gross {
                    severity = Severity::Error;
                }
                findings.push(
                    Finding::new(
                        severity,
                        Self::META.id,
                        &check,
                        format!(
                            "{} {:.2} is a {} against its baseline (mean {:.2}, std {:.2}): {}{}",
                            metric.id(),
                            flag.value,
                            flag.direction().as_str(),
                            flag.center,
                            flag.spread,
                            flag.score.describe(),
                            flag.since_note()
                        ),
                    )
                    .on(flag.day)
                    .value(flag.value)
                    .threshold(p.z_threshold)
                    .context(flag.context.clone()),
                );
            }
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
