//! The `revenue` rule: duplicate, negative, zero, null and non-numeric revenue, and null rates.

use std::collections::BTreeMap;

use vigil_rule_api::baseline::{normal_tail, poisson_tail};
use vigil_rule_api::prelude::*;

/// Null-rate limits of one table's columns.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NullRates {
    /// The table whose columns are checked.
    pub table: String,
    /// Highest share of empty cells allowed per column (0.05 = 5%). Default: the reference
    /// config's `client_id: 0.05, marketing_source: 0.1`.
    #[serde(deserialize_with = "rates_or_default")]
    #[schemars(schema_with = "rates_schema")]
    pub max: BTreeMap<String, f64>,
}

/// `null_rates.max`: a share from 0 to 1 per column; empty means the default.
fn rates_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["object", "null"],
        "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
    })
}

fn rates_or_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, f64>, D::Error> {
    empty_or(d, || NullRates::default().max)
}

impl Default for NullRates {
    fn default() -> Self {
        NullRates {
            table: "sessions".into(),
            max: BTreeMap::from([("client_id".into(), 0.05), ("marketing_source".into(), 0.1)]),
        }
    }
}

/// How a day's zero-revenue rate is judged against its baseline.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ZeroRevenueSpike {
    /// The day's share of zero-revenue orders must reach this z-score above its baseline...
    pub z_threshold: f64,
    /// ...and the day must have at least this many zero-revenue orders.
    pub min_count: u64,
    /// The baseline of the zero-revenue share.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<BaselineParams>")]
    pub baseline: BaselineParams,
}

impl Default for ZeroRevenueSpike {
    fn default() -> Self {
        ZeroRevenueSpike {
            z_threshold: 3.0,
            min_count: 3,
            baseline: BaselineParams::default(),
        }
    }
}

/// `rules.revenue`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RevenueParams {
    /// The orders table.
    pub orders_table: String,
    /// Its order id column.
    pub order_id_column: String,
    /// Its revenue column.
    pub revenue_column: String,
    /// Orders whose id already appeared in an earlier row, allowed per day.
    pub max_duplicate_transactions: u64,
    /// Orders with negative revenue allowed per day.
    pub max_negative_revenue: u64,
    /// Orders with empty or non-numeric revenue allowed per day.
    pub max_invalid_revenue: u64,
    /// Zero-revenue orders allowed per day (a WARN above it).
    pub max_zero_revenue_orders: u64,
    /// With scope `partition`, zero-revenue orders above the allowance that make up at least
    /// this share of the day's orders are an ERROR instead (0.25 = a quarter). `null` keeps them
    /// a WARN.
    #[schemars(range(min = 0, max = 1))]
    pub zero_revenue_error_share: Option<f64>,
    /// A day whose zero-revenue share stands out from its baseline is a WARN too.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<ZeroRevenueSpike>")]
    pub zero_revenue_spike: ZeroRevenueSpike,
    /// Null-rate limits per column, judged per day.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<NullRates>")]
    pub null_rates: NullRates,
}

impl Default for RevenueParams {
    fn default() -> Self {
        RevenueParams {
            orders_table: "orders".into(),
            order_id_column: "transaction_id".into(),
            revenue_column: "revenue".into(),
            max_duplicate_transactions: 0,
            max_negative_revenue: 0,
            max_invalid_revenue: 0,
            max_zero_revenue_orders: 5,
            zero_revenue_error_share: Some(0.25),
            zero_revenue_spike: ZeroRevenueSpike::default(),
            null_rates: NullRates::default(),
        }
    }
}

/// The revenue rule, built from its params.
#[derive(Debug)]
pub struct Revenue {
    params: RevenueParams,
}

vigil_rule_api::register_rule! {
    /// Orders are unique, revenue is a non-negative number, zero-revenue orders and nulls stay rare.
    ///
    /// ## What it checks
    /// On the expected partition:
    /// - `orders:duplicate_transactions` (ERROR): orders whose id already appeared in an
    ///   earlier row (of that day or before) exceed `max_duplicate_transactions`.
    /// - `orders:negative_revenue` (ERROR): negative revenue exceeds `max_negative_revenue`.
    /// - `orders:invalid_revenue` (ERROR): empty or non-numeric revenue exceeds
    ///   `max_invalid_revenue` (the reference monitor counts these nowhere).
    /// - `orders:zero_revenue_orders` (WARN): the day's zero-revenue orders exceed
    ///   `max_zero_revenue_orders`; an ERROR when they are at least `zero_revenue_error_share`
    ///   of the day's orders.
    /// - `orders:zero_revenue_spike` (WARN): the day's share of zero-revenue orders stands out
    ///   from its baseline (z ≥ `zero_revenue_spike.z_threshold`, at least `min_count` orders,
    ///   and that many as unlikely under the baseline share as a z-threshold move by the exact
    ///   Poisson tail: 3 zero-revenue orders where 0.6 are usual is a 1-in-43 day, not 3.5σ).
    /// - `<table>:null_rate:<column>` (ERROR): the day's share of empty cells exceeds its limit.
    ///
    /// ## Why
    /// Duplicated orders inflate revenue, negative or non-numeric revenue breaks every sum,
    /// and a burst of zero-revenue orders or of null ids is a broken checkout or tag. Judging
    /// each day on its own catches a one-day spike that a table-wide count dilutes, and does
    /// not fire forever once history holds a few old cases.
    ///
    /// ## Default severities, and why
    /// - Duplicated orders, negative, empty or non-numeric revenue: ERROR (none allowed). Each
    ///   one corrupts revenue sums directly.
    /// - A few zero-revenue orders (above 5): WARN. Free replacements and 100% coupons exist.
    /// - A quarter of the day's orders or more at zero revenue: ERROR. That is a broken price
    ///   feed or checkout, and revenue and AOV on the dashboard are wrong by that much.
    /// - Null rates above their limit: ERROR. Attribution and dedup by those ids break.
    ///
    /// ## Scope `all`
    /// As the reference monitor: each count and null rate is taken over the whole table, and
    /// there is no spike check.
    Revenue {
        id: "revenue",
        default_severity: Error,
        example: "max_duplicate_transactions: 0\nmax_zero_revenue_orders: 5\nnull_rates:\n  table: sessions\n  max: {client_id: 0.05, marketing_source: 0.1}\n",
    }
}

impl RuleSpec for Revenue {
    type Params = RevenueParams;

    fn new(params: RevenueParams) -> Result<Self, ParamsError> {
        if let Some((column, rate)) = params
            .null_rates
            .max
            .iter()
            .find(|(_, r)| !(0.0..=1.0).contains(*r))
        {
            return Err(ParamsError::at(
                format!("null_rates.max.{column}"),
                format!("is {rate}; a rate is between 0 and 1"),
            ));
        }
        params
            .zero_revenue_spike
            .baseline
            .check()
            .map_err(|e| e.under("zero_revenue_spike"))?;
        Ok(Revenue { params })
    }
}

/// One count check: a measure of the orders table held against a maximum.
struct CountCheck {
    check: &'static str,
    severity: Severity,
    measures: Vec<Measure>,
    max: u64,
    what: &'static str,
}

impl Revenue {
    fn count_checks(&self) -> [CountCheck; 4] {
        let p = &self.params;
        let revenue = || p.revenue_column.clone();
        let compare = |cmp| Measure::Where {
            column: revenue(),
            cmp,
            value: Number(0.0),
        };
        [
            CountCheck {
                check: "orders:duplicate_transactions",
                severity: Severity::Error,
                measures: vec![Measure::Duplicates(p.order_id_column.clone())],
                max: p.max_duplicate_transactions,
                what: "duplicate transactions",
            },
            CountCheck {
                check: "orders:negative_revenue",
                severity: Severity::Error,
                measures: vec![compare(Cmp::Lt)],
                max: p.max_negative_revenue,
                what: "orders with negative revenue",
            },
            CountCheck {
                check: "orders:invalid_revenue",
                severity: Severity::Error,
                measures: vec![Measure::Nulls(revenue()), Measure::NonNumeric(revenue())],
                max: p.max_invalid_revenue,
                what: "orders with empty or non-numeric revenue",
            },
            CountCheck {
                check: "orders:zero_revenue_orders",
                severity: Severity::Warn,
                measures: vec![compare(Cmp::Eq)],
                max: p.max_zero_revenue_orders,
                what: "zero-revenue orders",
            },
        ]
    }

    fn request(&self, cx: &RunCtx, table: &str, measure: Measure) -> MetricRequest {
        match cx.scope {
            Scope::All => MetricRequest::total(table, measure),
            Scope::Partition => MetricRequest::daily(table, measure),
        }
    }

    /// The value of a measure for the judged scope: the expected day, or the whole table.
    fn value(
        &self,
        cx: &RunCtx,
        m: &Metrics,
        table: &str,
        measure: Measure,
    ) -> Result<f64, MetricError> {
        let request = self.request(cx, table, measure);
        match cx.scope {
            Scope::All => m.total(&request),
            Scope::Partition => Ok(m
                .daily(&request)?
                .get(&cx.expected_date)
                .copied()
                .unwrap_or(0.0)),
        }
    }

    fn zero_share_requests(&self) -> (MetricRequest, MetricRequest) {
        let p = &self.params;
        let zero = Measure::Where {
            column: p.revenue_column.clone(),
            cmp: Cmp::Eq,
            value: Number(0.0),
        };
        (
            MetricRequest::daily(&p.orders_table, zero),
            MetricRequest::daily(&p.orders_table, Measure::Rows),
        )
    }

    /// With scope `partition`, why `zero` zero-revenue orders are an ERROR: they are at least
    /// `zero_revenue_error_share` of the expected day's orders.
    fn zero_error_share(&self, cx: &RunCtx, m: &Metrics, zero: f64) -> Option<String> {
        let limit = self.params.zero_revenue_error_share?;
        let (_, rows) = self.zero_share_requests();
        let orders = m.daily(&rows).ok()?.get(&cx.expected_date).copied()?;
        let share = zero / orders;
        (cx.scope == Scope::Partition && orders > 0.0 && share >= limit).then(|| {
            format!(
                ": {:.1}% of the day's {orders} orders, at least {:.1}% is an ERROR",
                share * 100.0,
                limit * 100.0
            )
        })
    }

    fn zero_spike(
        &self,
        cx: &RunCtx,
        m: &Metrics,
        observations: &mut Vec<Observation>,
    ) -> Result<Option<Finding>, MetricError> {
        let spike = &self.params.zero_revenue_spike;
        let (zero_request, rows_request) = self.zero_share_requests();
        let zero = m.daily(&zero_request)?;
        let rows = m.daily(&rows_request)?;
        let share = ratio(zero, rows);
        let count = zero.get(&cx.expected_date).copied().unwrap_or(0.0);
        let series = Series {
            metric: "orders:zero_revenue_share",
            dense: &share,
            sparse: &[],
            noise: Noise::Shares(rows),
            unit: Unit::Share,
        };
        let flags = match flag_days(
            cx,
            series,
            &spike.baseline,
            observations,
            |day, value, center, score| {
                // A handful of zero-revenue orders is a rare count: judged by its exact Poisson
                // tail, as unlikely as a z_threshold move, besides the z-score.
                let orders = rows.get(&day).copied().unwrap_or(0.0);
                let unlikely =
                    poisson_tail(value * orders, center * orders) <= normal_tail(spike.z_threshold);
                value > center && score.z.is_none_or(|z| z >= spike.z_threshold) && unlikely
            },
        ) {
            Ok(flags) => flags,
            Err(too_little) => {
                return Ok(Some(Finding::skipped(
                    Self::META.id,
                    "orders:zero_revenue_spike",
                    too_little,
                )))
            }
        };
        Ok(flags
            .into_iter()
            .find(|_| count >= spike.min_count as f64)
            .map(|flag| {
                Finding::new(
                    Severity::Warn,
                    Self::META.id,
                    "orders:zero_revenue_spike",
                    format!(
                        "{count} zero-revenue orders ({:.1}% of orders) against a usual {:.1}% (spread {:.1} points): {}{}",
                        flag.value * 100.0,
                        flag.center * 100.0,
                        flag.spread * 100.0,
                        flag.score.describe(),
                        flag.since_note()
                    ),
                )
                .on(flag.day)
                .value(flag.value)
                .threshold(spike.z_threshold)
                .context(flag.context)
            }))
    }
}

impl Rule for Revenue {
    fn plan(&self, cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        let p = &self.params;
        let mut requests: Vec<MetricRequest> = self
            .count_checks()
            .into_iter()
            .flat_map(|c| c.measures)
            .map(|measure| self.request(cx, &p.orders_table, measure))
            .collect();
        let nulls = &p.null_rates;
        requests.push(self.request(cx, &nulls.table, Measure::Rows));
        for column in nulls.max.keys() {
            requests.push(self.request(cx, &nulls.table, Measure::Nulls(column.clone())));
        }
        if cx.scope == Scope::Partition {
            let (zero, rows) = self.zero_share_requests();
            requests.extend([zero, rows]);
        }
        Ok(requests)
    }

    fn lookback_days(&self) -> u32 {
        self.params.zero_revenue_spike.baseline.window_days
    }

    fn warnings(&self) -> Vec<ParamsError> {
        let p = &self.params;
        let spike = p.zero_revenue_spike.baseline.warning();
        let never_above = p.null_rates.max.iter().filter(|(_, max)| **max >= 1.0);
        spike
            .map(|w| w.under("zero_revenue_spike"))
            .into_iter()
            .chain(never_above.map(|(column, _)| {
                ParamsError::at(
                    format!("null_rates.max.{column}"),
                    "is 1: a null rate is never above it, so this check never fires",
                )
            }))
            .collect()
    }

    fn evaluate(&self, cx: &RunCtx, m: &Metrics) -> Result<Evaluated, RuleError> {
        let p = &self.params;
        let id = Self::META.id;
        let on_day = |f: Finding| match cx.scope {
            Scope::All => f,
            Scope::Partition => f.on(cx.expected_date),
        };
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        let mut zero_count_fired = false;
        for c in self.count_checks() {
            let counts: Result<Vec<f64>, MetricError> = c
                .measures
                .iter()
                .map(|measure| self.value(cx, m, &p.orders_table, measure.clone()))
                .collect();
            let n: f64 = match counts {
                Ok(counts) => counts.iter().sum(),
                Err(reason) => {
                    findings.push(Finding::skipped(id, c.check, reason));
                    continue;
                }
            };
            observations.push(
                Observation::check(
                    c.check,
                    cx.expected_date,
                    n,
                    f64::NEG_INFINITY,
                    c.max as f64,
                )
                .unit(Unit::count("orders")),
            );
            if n > c.max as f64 {
                let zero = c.check == "orders:zero_revenue_orders";
                zero_count_fired |= zero;
                let (severity, share_note) = match (zero, self.zero_error_share(cx, m, n)) {
                    (true, Some(note)) => (Severity::Error, note),
                    _ => (c.severity, String::new()),
                };
                findings.push(on_day(
                    Finding::new(
                        severity,
                        id,
                        c.check,
                        format!("{n} {} (allowed: {}){share_note}", c.what, c.max),
                    )
                    .value(n)
                    .threshold(c.max as f64),
                ));
            }
        }
        if cx.scope == Scope::Partition && !zero_count_fired {
            match self.zero_spike(cx, m, &mut observations) {
                Ok(found) => findings.extend(found),
                Err(reason) => {
                    findings.push(Finding::skipped(id, "orders:zero_revenue_spike", reason))
                }
            }
        }
        let nulls = &p.null_rates;
        for (column, &limit) in &nulls.max {
            let check = format!("{}:null_rate:{column}", nulls.table);
            let rows = self.value(cx, m, &nulls.table, Measure::Rows);
            let empty = self.value(cx, m, &nulls.table, Measure::Nulls(column.clone()));
            match (rows, empty) {
                (Ok(rows), Ok(empty)) => {
                    // No rows: no rate to judge (shown as such).
                    let rate = if rows > 0.0 { empty / rows } else { f64::NAN };
                    observations.push(
                        Observation::check(
                            &check,
                            cx.expected_date,
                            rate,
                            f64::NEG_INFINITY,
                            limit,
                        )
                        .unit(Unit::Share),
                    );
                    if rate <= limit || rate.is_nan() {
                        continue;
                    }
                    findings.push(on_day(
                        Finding::new(
                            Severity::Error,
                            id,
                            &check,
                            format!(
                                "High null rate of `{column}`: {:.2}% ({empty} of {rows} rows)",
                                rate * 100.0
                            ),
                        )
                        .value(rate)
                        .threshold(limit),
                    ));
                }
                (Err(reason), _) | (_, Err(reason)) => {
                    findings.push(Finding::skipped(id, &check, reason))
                }
            }
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
