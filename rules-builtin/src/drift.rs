//! The `drift` rule: the daily channel mix (share of revenue, orders or sessions per marketing
//! channel) of the top channels against a rolling baseline.

use std::collections::BTreeMap;

use vigil_rule_api::metric::DailyByDimension;
use vigil_rule_api::prelude::*;

/// What a channel's share is a share of.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Attributed order revenue (check `anomaly:channel_share`).
    Revenue,
    /// Attributed orders (check `anomaly:channel_order_share`).
    Orders,
    /// Sessions by the sessions table's channel column (check `anomaly:channel_session_share`).
    Sessions,
}

impl Weighting {
    fn check(self) -> &'static str {
        match self {
            Weighting::Revenue => "anomaly:channel_share",
            Weighting::Orders => "anomaly:channel_order_share",
            Weighting::Sessions => "anomaly:channel_session_share",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Weighting::Revenue => "revenue",
            Weighting::Orders => "order",
            Weighting::Sessions => "session",
        }
    }
}

/// Where attributed orders come from.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionSource {
    /// The attribution table (dated by its order through the table's lookup).
    pub table: String,
    /// The channel column.
    pub channel_column: String,
    /// The attribution model column; rows whose model contains `model` (ignoring case) are
    /// used, or all rows when none does or the column is absent.
    pub model_column: String,
    /// The attribution model to use, e.g. `last` for last click.
    pub model: String,
    /// The order id column (for the `orders` weighting).
    pub order_id_column: String,
    /// The revenue column, usually looked up from orders (for the `revenue` weighting).
    pub revenue_column: String,
}

impl Default for AttributionSource {
    fn default() -> Self {
        AttributionSource {
            table: "attribution".into(),
            channel_column: "attributed_source".into(),
            model_column: "model".into(),
            model: "last".into(),
            order_id_column: "transaction_id".into(),
            revenue_column: "orders.revenue".into(),
        }
    }
}

/// Where sessions come from (for the `sessions` weighting).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSource {
    /// The sessions table.
    pub table: String,
    /// Its channel column.
    pub channel_column: String,
    /// Its session id column.
    pub session_id_column: String,
}

impl Default for SessionSource {
    fn default() -> Self {
        SessionSource {
            table: "sessions".into(),
            channel_column: "marketing_source".into(),
            session_id_column: "session_id".into(),
        }
    }
}

/// `rules.drift`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DriftParams {
    /// The mixes to monitor.
    #[serde(deserialize_with = "weightings_or_default")]
    #[schemars(with = "Option<Vec<Weighting>>", length(min = 1))]
    pub weightings: Vec<Weighting>,
    /// How many channels are monitored: the largest over the baseline window (with scope
    /// `all`, over all history).
    pub top_channels: usize,
    /// A channel is flagged when its share moves at least this far from its baseline share
    /// (0.15 = 15 points).
    #[schemars(range(min = 0, max = 1))]
    pub abs_change_threshold: f64,
    /// A channel whose baseline share is at least this, that had a share on every day of the
    /// window, and whose share falls to 0 is flagged as disappeared
    /// (`anomaly:channel_disappeared`), even below `abs_change_threshold`.
    pub disappearance_min_share: f64,
    /// With scope `partition`, a shift must also be at least this many standard errors of a
    /// share estimated from the day's orders (or sessions): a share of twenty orders moves by
    /// 10 points by chance. 0 disables this gate.
    pub significance_z: f64,
    /// Severity of both checks.
    pub severity: Level,
    /// How each day's baseline share is built (with scope `all`, `window_days` counts the
    /// channel's own earlier observations, as the reference monitor does).
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<BaselineParams>")]
    pub baseline: BaselineParams,
    /// Attributed orders, for the `revenue` and `orders` weightings.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<AttributionSource>")]
    pub attribution: AttributionSource,
    /// Sessions, for the `sessions` weighting.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<SessionSource>")]
    pub sessions: SessionSource,
}

fn weightings_or_default<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Weighting>, D::Error> {
    empty_or(d, || DriftParams::default().weightings)
}

impl Default for DriftParams {
    fn default() -> Self {
        DriftParams {
            weightings: vec![Weighting::Revenue],
            top_channels: 6,
            abs_change_threshold: 0.15,
            disappearance_min_share: 0.05,
            significance_z: 3.0,
            severity: Level::Warn,
            baseline: BaselineParams::default(),
            attribution: AttributionSource::default(),
            sessions: SessionSource::default(),
        }
    }
}

/// The drift rule, built from its params.
#[derive(Debug)]
pub struct Drift {
    params: DriftParams,
}

vigil_rule_api::register_rule! {
    /// Each top channel's share of revenue (or orders, or sessions) stays near its baseline.
    ///
    /// ## What it checks
    /// Per day, each channel's share of the day's total (last-click revenue by default). For
    /// the `top_channels` largest channels:
    /// - `anomaly:channel_share` (and `channel_order_share`, `channel_session_share` for the
    ///   other weightings): the expected partition's share is at least `abs_change_threshold`
    ///   away from the channel's baseline share;
    /// - `anomaly:channel_disappeared`: a channel with a baseline share of at least
    ///   `disappearance_min_share`, present on every day of the window, has no revenue (orders,
    ///   sessions) at all that day.
    ///
    /// A channel with no rows on a day has share 0 that day: a channel that vanishes is seen.
    /// The baseline leaves out the judged day and earlier flagged days.
    ///
    /// ## Why
    /// A lost referrer, a broken UTM tag or a tracking change moves traffic and revenue
    /// between channels without changing totals; marketing-mix dashboards then credit the
    /// wrong channel. Session weighting sees such breaks on thousands of sessions a day, where
    /// revenue shares of a few dozen orders are noisy.
    ///
    /// ## Scope `all`
    /// As the reference monitor: every day of history, the top channels by revenue over all
    /// history, each channel's series made only of the days it has rows (so a disappearing
    /// channel is not seen), the baseline the mean of its last `window_days` observations.
    Drift {
        id: "drift",
        default_severity: Warn,
        example: "weightings: [revenue, sessions]\ntop_channels: 6\nabs_change_threshold: 0.15\nbaseline:\n  window_days: 28\n  min_points: 7\n",
    }
}

impl RuleSpec for Drift {
    type Params = DriftParams;

    fn new(params: DriftParams) -> Result<Self, ParamsError> {
        if !(0.0..=1.0).contains(&params.abs_change_threshold) {
            return Err(ParamsError::at(
                "abs_change_threshold",
                "is a share change between 0 and 1",
            ));
        }
        if params.weightings.is_empty() {
            return Err(ParamsError::at("weightings", "lists no mix to monitor"));
        }
        params.baseline.check()?;
        Ok(Drift { params })
    }
}

/// The requests of one measure: filtered by model, unfiltered, and the filtered row count.
#[derive(Clone)]
struct Source {
    by_model: Option<MetricRequest>,
    all: MetricRequest,
    model_rows: Option<MetricRequest>,
}

impl Source {
    fn requests(&self) -> impl Iterator<Item = MetricRequest> {
        [
            self.by_model.clone(),
            Some(self.all.clone()),
            self.model_rows.clone(),
        ]
        .into_iter()
        .flatten()
    }

    /// Per day and channel: the model's rows when it has any, else all rows.
    fn resolve<'m>(&self, m: &'m Metrics) -> Result<&'m DailyByDimension, MetricError> {
        if let (Some(by_model), Some(rows)) = (&self.by_model, &self.model_rows) {
            if m.total(rows).is_ok_and(|n| n > 0.0) {
                return m.daily_by(by_model);
            }
        }
        m.daily_by(&self.all)
    }
}

/// Sums a day's values over the known channels (rows without a channel count toward no
/// channel and no total, as in the reference).
fn day_totals(by_channel: &DailyByDimension) -> BTreeMap<NaiveDate, f64> {
    by_channel
        .iter()
        .map(|(day, channels)| {
            let known = channels.iter().filter(|(c, _)| !c.is_empty());
            (*day, known.map(|(_, w)| w).sum())
        })
        .collect()
}

impl Drift {
    fn attributed(&self, measure: Measure) -> Source {
        let a = &self.params.attribution;
        let filter = Filter::contains_ignore_case(&a.model_column, &a.model);
        let all = MetricRequest::daily_by(&a.table, measure, &a.channel_column);
        Source {
            by_model: Some(all.clone().filtered(filter.clone())),
            model_rows: Some(MetricRequest::total(&a.table, Measure::Rows).filtered(filter)),
            all,
        }
    }

    /// The weights of a mix and the counts (orders or sessions) behind them.
    fn sources(&self, weighting: Weighting) -> (Source, Source) {
        let a = &self.params.attribution;
        let orders = || self.attributed(Measure::Distinct(a.order_id_column.clone()));
        match weighting {
            Weighting::Revenue => (
                self.attributed(Measure::Sum(a.revenue_column.clone())),
                orders(),
            ),
            Weighting::Orders => (orders(), orders()),
            Weighting::Sessions => {
                let s = &self.params.sessions;
                let sessions = Source {
                    by_model: None,
                    all: MetricRequest::daily_by(
                        &s.table,
                        Measure::Distinct(s.session_id_column.clone()),
                        &s.channel_column,
                    ),
                    model_rows: None,
                };
                (sessions.clone(), sessions)
            }
        }
    }

    fn check_weighting(
        &self,
        cx: &RunCtx,
        m: &Metrics,
        weighting: Weighting,
        observations: &mut Vec<Observation>,
    ) -> Vec<Finding> {
        let p = &self.params;
        let id = Self::META.id;
        let (weight_source, count_source) = self.sources(weighting);
        let (weights, counts) = match (weight_source.resolve(m), count_source.resolve(m)) {
            (Ok(w), Ok(c)) => (w, day_totals(c)),
            (Err(reason), _) | (_, Err(reason)) => {
                return vec![Finding::skipped(id, weighting.check(), reason)]
            }
        };
        let Some(severity) = p.severity.severity() else {
            return Vec::new();
        };
        let window_start = cx
            .expected_date
            .checked_sub_days(chrono::Days::new(u64::from(p.baseline.window_days)))
            .unwrap_or(NaiveDate::MIN);
        let ranked_days = match cx.scope {
            Scope::All => weights.range(..),
            Scope::Partition => weights.range(window_start..=cx.expected_date),
        };
        let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
        for channels in ranked_days.map(|(_, c)| c) {
            for (channel, w) in channels {
                *totals.entry(channel.as_str()).or_default() += w;
            }
        }
        let mut top: Vec<(&str, f64)> = totals.into_iter().filter(|(c, _)| !c.is_empty()).collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        top.truncate(p.top_channels);

        let day_totals = day_totals(weights);
        let day_count = counts.get(&cx.expected_date).copied().unwrap_or(0.0);
        let share = |day: &NaiveDate, channel: &str| {
            let total = day_totals[day];
            let w = weights[day].get(channel).copied().unwrap_or(0.0);
            if total > 0.0 {
                w / total
            } else {
                0.0
            }
        };
        let mut findings = Vec::new();
        for (channel, _) in top {
            let dense: DailySeries = weights
                .keys()
                .filter(|d| day_totals[*d] > 0.0)
                .map(|d| (*d, share(d, channel)))
                .collect();
            let sparse: Vec<(NaiveDate, Option<f64>)> = weights
                .iter()
                .filter(|(_, channels)| channels.contains_key(channel))
                .map(|(d, _)| (*d, Some(share(d, channel))))
                .collect();
            // A channel that is sometimes absent anyway (a few orders a day) does not vanish.
            let always_present = dense
                .range(window_start..cx.expected_date)
                .all(|(_, v)| *v > 0.0);
            let disappeared = |value: f64, center: f64| {
                cx.scope == Scope::Partition
                    && value == 0.0
                    && center >= p.disappearance_min_share
                    && always_present
            };
            // With scope partition, a shift must also be significant for the day's count of
            // orders (or sessions): a share of a few orders moves a lot by chance.
            let significant = |value: f64, center: f64| {
                let standard_error = (center * (1.0 - center) / day_count.max(1.0)).sqrt();
                cx.scope == Scope::All
                    || (value - center).abs() >= p.significance_z * standard_error
            };
            let metric = format!("{} {channel}", weighting.check());
            let series = Series {
                metric: &metric,
                dense: &dense,
                sparse: &sparse,
                noise: Noise::None,
            };
            let flags =
                match flag_days(cx, series, &p.baseline, observations, |value, center, _| {
                    ((value - center).abs() >= p.abs_change_threshold && significant(value, center))
                        || disappeared(value, center)
                }) {
                    Ok(flags) => flags,
                    Err(too_little) => {
                        findings.push(Finding::skipped(id, weighting.check(), too_little));
                        continue;
                    }
                };
            for flag in flags {
                // The disappearance check serves every weighting: its subject names both.
                let (check, subject, message) = if disappeared(flag.value, flag.center) {
                    (
                        "anomaly:channel_disappeared",
                        format!("{channel} ({})", weighting.noun()),
                        format!(
                            "Channel '{channel}' has no {} on {} against a baseline share of {:.1}%",
                            weighting.noun(),
                            flag.day,
                            flag.center * 100.0
                        ),
                    )
                } else {
                    (
                        weighting.check(),
                        channel.to_string(),
                        format!(
                            "Channel '{channel}' {} share shifted: {:.1}% vs baseline {:.1}%",
                            weighting.noun(),
                            flag.value * 100.0,
                            flag.center * 100.0
                        ),
                    )
                };
                let mut context = json!({
                    "channel": channel,
                    "baseline_share": flag.center,
                    "weighting": weighting.noun(),
                });
                if let (Some(target), Some(extra)) =
                    (context.as_object_mut(), flag.context.as_object())
                {
                    for key in [
                        "baseline_points",
                        "baseline_window",
                        "excluded_flagged_days",
                    ] {
                        if let Some(v) = extra.get(key) {
                            target.insert(key.into(), v.clone());
                        }
                    }
                }
                findings.push(
                    Finding::new(severity, id, check, message)
                        .about(subject)
                        .on(flag.day)
                        .value(flag.value)
                        .threshold(p.abs_change_threshold)
                        .context(context),
                );
            }
        }
        findings
    }
}

impl Rule for Drift {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(self
            .params
            .weightings
            .iter()
            .flat_map(|w| {
                let (weights, counts) = self.sources(*w);
                weights
                    .requests()
                    .chain(counts.requests())
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    fn warnings(&self) -> Vec<ParamsError> {
        let p = &self.params;
        let mut warnings: Vec<ParamsError> = p.baseline.warning().into_iter().collect();
        if p.top_channels == 0 {
            warnings.push(ParamsError::at(
                "top_channels",
                "is 0: no channel is monitored",
            ));
        }
        if p.disappearance_min_share > 1.0 {
            warnings.push(ParamsError::at(
                "disappearance_min_share",
                "is above 1, which no share is: no channel is ever flagged as disappeared",
            ));
        }
        if p.severity == Level::Off {
            warnings.push(ParamsError::at(
                "severity",
                "is `off`: the rule reports nothing",
            ));
        }
        warnings
    }

    fn evaluate(&self, cx: &RunCtx, metrics: &Metrics) -> Result<Evaluated, RuleError> {
        let mut observations = Vec::new();
        let mut findings = Vec::new();
        for weighting in &self.params.weightings {
            findings.extend(self.check_weighting(cx, metrics, *weighting, &mut observations));
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
