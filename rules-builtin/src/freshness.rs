//! The `freshness` rule: latest partition, missing days and per-day volume floors.

use std::collections::BTreeMap;

use vigil_rule_api::metric::DailySeries;
use vigil_rule_api::prelude::*;

/// Settings of one table under `rules.freshness.tables`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TableFreshness {
    /// Days without rows allowed in the checked range before an ERROR.
    pub allowed_missing_days: u32,
    /// With scope `partition`, a missing day among this many days ending at the expected
    /// partition is an ERROR (with scope `all`, in the whole history). Older missing days that
    /// fall inside the longest baseline window of the run's rules are a WARN
    /// (`completeness:<table>_baseline_gaps`): they distort every baseline that spans them.
    pub completeness_window_days: u32,
    /// Minimum volume of a day; 0 disables the floor.
    pub min_per_day: u64,
    /// Volume is the number of distinct non-empty values of this column (e.g. `session_id`);
    /// the number of rows when unset.
    pub count_distinct: Option<String>,
    /// Severity of a day below the floor.
    pub floor_severity: Severity,
    /// Severity when the latest partition is newer than the expected one (a wrong expected date,
    /// or rows dated in the future).
    pub ahead_severity: Severity,
}

impl Default for TableFreshness {
    fn default() -> Self {
        TableFreshness {
            allowed_missing_days: 0,
            completeness_window_days: 7,
            min_per_day: 0,
            count_distinct: None,
            floor_severity: Severity::Error,
            ahead_severity: Severity::Warn,
        }
    }
}

/// `rules.freshness`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FreshnessParams {
    /// The tables to check, by table name, with their settings. Default: `sessions` (volume =
    /// distinct `session_id`) and `orders` (volume = distinct `transaction_id`), no floors.
    #[serde(deserialize_with = "tables_or_default")]
    #[schemars(with = "Option<BTreeMap<String, TableFreshness>>")]
    pub tables: BTreeMap<String, TableFreshness>,
}

fn tables_or_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, TableFreshness>, D::Error> {
    empty_or(d, || FreshnessParams::default().tables)
}

impl Default for FreshnessParams {
    fn default() -> Self {
        let table = |column: &str| TableFreshness {
            count_distinct: Some(column.into()),
            ..TableFreshness::default()
        };
        FreshnessParams {
            tables: BTreeMap::from([
                ("sessions".into(), table("session_id")),
                ("orders".into(), table("transaction_id")),
            ]),
        }
    }
}

/// The freshness rule, built from its params.
#[derive(Debug)]
pub struct Freshness {
    params: FreshnessParams,
}

vigil_rule_api::register_rule! {
    /// Latest partition is the expected one, no day is missing, and each day has enough rows.
    ///
    /// ## What it checks
    /// For each configured table, from its date column:
    /// - `freshness:<table>_partition` (ERROR): the latest day with rows is older than the
    ///   expected partition (the table is stale). A latest day *newer* than expected is reported
    ///   with `ahead_severity` (WARN by default).
    /// - `freshness:<table>_missing_dates` (ERROR): no row has a parsable date at all.
    /// - `completeness:<table>_missing_days` (ERROR): days without rows inside the checked range
    ///   exceed `allowed_missing_days`. The range is the table's history up to the expected
    ///   partition, limited to `completeness_window_days` with scope `partition`.
    /// - `completeness:<table>_baseline_gaps` (WARN, scope `partition`): days without rows
    ///   before that range but inside the longest baseline window of the run's rules (e.g. 28
    ///   days for `anomaly`): a hole there turns into a zero or a gap in every baseline.
    ///
    /// ## Default severities, and why
    /// A stale table or a recent missing day is an ERROR: today's dashboard would show wrong
    /// totals. An older hole is a WARN: today's numbers are right, but the baselines that judge
    /// them are not, and a backfill is due. A day below the volume floor is an ERROR by default
    /// (`floor_severity`): a half-loaded day is the most common silent failure.
    /// - `volume:<table>_floor` (`floor_severity`): a day's volume (rows, or distinct values of
    ///   `count_distinct`) is below `min_per_day`. A day with zero rows inside the history is
    ///   judged as 0, not skipped.
    ///
    /// ## Why
    /// A dashboard refreshed on a stale or half-loaded table shows yesterday's numbers as
    /// today's, or a drop that is only a late load. These checks say so before the refresh.
    ///
    /// ## Scope
    /// With scope `partition` (the default) the floor judges only the expected partition; with
    /// `all` it judges every day of history, as the reference monitor does.
    Freshness {
        id: "freshness",
        default_severity: Error,
        example: "tables:\n  sessions:\n    count_distinct: session_id\n    min_per_day: 1000\n  orders:\n    count_distinct: transaction_id\n    min_per_day: 5\n    floor_severity: warn\n",
    }
}

impl RuleSpec for Freshness {
    type Params = FreshnessParams;

    fn new(params: FreshnessParams) -> Result<Self, ParamsError> {
        Ok(Freshness { params })
    }
}

impl Freshness {
    fn requests(table: &str, settings: &TableFreshness) -> (MetricRequest, Option<MetricRequest>) {
        let rows = MetricRequest::daily(table, Measure::Rows);
        let volume = (settings.min_per_day > 0).then(|| match &settings.count_distinct {
            Some(column) => MetricRequest::daily(table, Measure::Distinct(column.clone())),
            None => rows.clone(),
        });
        (rows, volume)
    }

    fn check_table(
        &self,
        cx: &RunCtx,
        metrics: &Metrics,
        table: &str,
        settings: &TableFreshness,
        observations: &mut Vec<Observation>,
    ) -> Vec<Finding> {
        let (rows_request, volume_request) = Self::requests(table, settings);
        let finding = |severity, check: String, message: String| {
            Finding::new(severity, Self::META.id, check, message)
        };
        let rows = match metrics.daily(&rows_request) {
            Ok(rows) => rows,
            Err(reason) => {
                return vec![Finding::skipped(
                    Self::META.id,
                    &format!("freshness:{table}"),
                    reason,
                )]
            }
        };
        let present: Vec<NaiveDate> = rows
            .iter()
            .filter(|(_, n)| **n > 0.0)
            .map(|(d, _)| *d)
            .collect();
        let (Some(&first), Some(&latest)) = (present.first(), present.last()) else {
            let column = cx
                .tables
                .get(table)
                .and_then(|t| t.date_column.as_deref())
                .unwrap_or("date");
            return vec![finding(
                Severity::Error,
                format!("freshness:{table}_missing_dates"),
                format!(
                    "No row of `{table}` has a parsable `{column}`; freshness cannot be evaluated"
                ),
            )];
        };
        let expected = cx.expected_date;
        let mut out = Vec::new();
        observations.push(
            Observation::check(
                format!("freshness:{table}_partition"),
                expected,
                (expected - latest).num_days() as f64,
                0.0,
                0.0,
            )
            .unit(Unit::count("days behind")),
        );

        if latest != expected {
            let behind = latest < expected;
            let days = (expected - latest).num_days().abs();
            let message = if behind {
                format!("Latest `{table}` partition is {latest} but {expected} is expected: {days} day(s) behind")
            } else {
                format!("Latest `{table}` partition {latest} is {days} day(s) newer than the expected {expected}")
            };
            let severity = if behind {
                Severity::Error
            } else {
                settings.ahead_severity
            };
            out.push(
                finding(severity, format!("freshness:{table}_partition"), message)
                    .on(expected)
                    .value(days as f64)
                    .threshold(0.0)
                    .context(json!({
                        "latest_partition": latest.to_string(),
                        "expected_partition": expected.to_string(),
                        "days_behind": if behind { days } else { -days },
                    })),
            );
        }

        let end = latest.min(expected);
        // `days` before `end`, no earlier than the first day with rows.
        let back = |days: u32| {
            first.max(
                end.checked_sub_days(chrono::Days::new(u64::from(days)))
                    .unwrap_or(first),
            )
        };
        let start = match cx.scope {
            Scope::All => first,
            Scope::Partition => back(settings.completeness_window_days.max(1) - 1),
        };
        let missing_between = |from: NaiveDate, to: NaiveDate| -> Vec<NaiveDate> {
            from.iter_days()
                .take_while(|d| *d < to)
                .filter(|d| rows.get(d).copied().unwrap_or(0.0) == 0.0)
                .collect()
        };
        let missing = missing_between(start, end.succ_opt().unwrap_or(end));
        if cx.scope == Scope::Partition {
            let reach = cx.lookback_days;
            let gaps = missing_between(back(reach), start);
            observations.push(
                Observation::check(
                    format!("completeness:{table}_baseline_gaps"),
                    expected,
                    gaps.len() as f64,
                    f64::NEG_INFINITY,
                    0.0,
                )
                .unit(Unit::count("missing days")),
            );
            if let (Some(from), Some(to)) = (gaps.first(), gaps.last()) {
                let list: Vec<String> = gaps.iter().map(NaiveDate::to_string).collect();
                out.push(
                    finding(
                        Severity::Warn,
                        format!("completeness:{table}_baseline_gaps"),
                        format!(
                            "Missing `{table}` days inside the {reach}-day baseline window: {} \
                             (baselines that span them are distorted; backfill {from}..{to})",
                            list.join(", ")
                        ),
                    )
                    .on(expected)
                    .value(gaps.len() as f64)
                    .threshold(0.0)
                    .context(json!({
                        "missing_days": list,
                        "range": [from.to_string(), to.to_string()],
                        "baseline_days": reach,
                    })),
                );
            }
        }
        observations.push(
            Observation::check(
                format!("completeness:{table}_missing_days"),
                expected,
                missing.len() as f64,
                f64::NEG_INFINITY,
                f64::from(settings.allowed_missing_days),
            )
            .unit(Unit::count("missing days")),
        );
        if missing.len() > settings.allowed_missing_days as usize {
            let list: Vec<String> = missing.iter().map(NaiveDate::to_string).collect();
            out.push(
                finding(
                    Severity::Error,
                    format!("completeness:{table}_missing_days"),
                    format!(
                        "Missing `{table}` days between {start} and {end}: {}",
                        list.join(", ")
                    ),
                )
                .value(missing.len() as f64)
                .threshold(f64::from(settings.allowed_missing_days))
                .context(
                    json!({"missing_days": list, "range": [start.to_string(), end.to_string()]}),
                ),
            );
        }

        if let Some(volume_request) = volume_request {
            match metrics.daily(&volume_request) {
                Ok(volume) => {
                    // Days without rows inside the history count as 0, as the floor judges them.
                    let dense: DailySeries = first
                        .iter_days()
                        .take_while(|d| *d <= latest)
                        .map(|d| (d, volume.get(&d).copied().unwrap_or(0.0)))
                        .collect();
                    let per_day = match settings.count_distinct {
                        Some(_) => format!("{table}/day"),
                        None => format!("{table} rows/day"),
                    };
                    observations.push(
                        Observation::bounded(
                            format!("volume:{table}_floor"),
                            expected,
                            &dense,
                            settings.min_per_day as f64,
                            f64::INFINITY,
                        )
                        .unit(Unit::count(per_day)),
                    );
                    out.extend(self.floors(cx, table, settings, volume, first, latest))
                }
                Err(reason) => out.push(Finding::skipped(
                    Self::META.id,
                    &format!("volume:{table}_floor"),
                    reason,
                )),
            }
        }
        out
    }

    fn floors(
        &self,
        cx: &RunCtx,
        table: &str,
        settings: &TableFreshness,
        volume: &DailySeries,
        first: NaiveDate,
        latest: NaiveDate,
    ) -> Vec<Finding> {
        let floor = settings.min_per_day as f64;
        let measure = match &settings.count_distinct {
            Some(column) => format!("distinct `{column}`"),
            None => "rows".to_string(),
        };
        first
            .iter_days()
            .take_while(|d| *d <= latest)
            .filter(|d| cx.judges(*d))
            .filter_map(|day| {
                let v = volume.get(&day).copied().unwrap_or(0.0);
                (v < floor).then(|| {
                    Finding::new(
                        settings.floor_severity,
                        Self::META.id,
                        format!("volume:{table}_floor"),
                        format!("`{table}` volume below floor on {day}: {v} {measure} < {floor}"),
                    )
                    .on(day)
                    .value(v)
                    .threshold(floor)
                    .context(json!({"measure": measure}))
                })
            })
            .collect()
    }
}

impl Rule for Freshness {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(self
            .params
            .tables
            .iter()
            .flat_map(|(table, settings)| {
                let (rows, volume) = Self::requests(table, settings);
                std::iter::once(rows).chain(volume)
            })
            .collect())
    }

    fn warnings(&self) -> Vec<ParamsError> {
        let never =
            |t: &&TableFreshness| t.allowed_missing_days >= t.completeness_window_days.max(1);
        self.params
            .tables
            .iter()
            .filter(|(_, settings)| never(settings))
            .map(|(table, settings)| {
                ParamsError::at(
                    format!("tables.{table}.allowed_missing_days"),
                    format!(
                        "is {} but with scope `partition` the completeness window holds {} \
                         day(s): no day is ever reported missing",
                        settings.allowed_missing_days,
                        settings.completeness_window_days.max(1)
                    ),
                )
            })
            .collect()
    }

    fn evaluate(&self, cx: &RunCtx, metrics: &Metrics) -> Result<Evaluated, RuleError> {
        let mut observations = Vec::new();
        let findings = self
            .params
            .tables
            .iter()
            .flat_map(|(table, settings)| {
                self.check_table(cx, metrics, table, settings, &mut observations)
            })
            .collect();
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
