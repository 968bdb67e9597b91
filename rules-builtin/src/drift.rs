//! The `drift` rule: the daily channel mix (share of revenue, orders or sessions per marketing
//! channel) of the top channels against a rolling baseline.

use std::collections::BTreeMap;

use vigil_rule_api::baseline::{normal_tail, Score};
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

    fn units(self) -> &'static str {
        match self {
            Weighting::Revenue | Weighting::Orders => "orders",
            Weighting::Sessions => "sessions",
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
    /// The mixes to monitor. Default: revenue and sessions (thousands of sessions a day see a
    /// lost referrer that the revenue shares of a few dozen orders cannot).
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
    /// A channel (any, not only the top ones) whose baseline share is at least this and whose
    /// share falls to 0 is flagged as disappeared (`anomaly:channel_disappeared`), even below
    /// `abs_change_threshold`, when the orders (sessions) it should have had make none as
    /// unlikely as a `significance_z` move (about 7 expected at 3).
    pub disappearance_min_share: f64,
    /// A channel without any weight in the baseline window that reaches this share of the day,
    /// with as many orders (sessions) as `disappearance_min_share` asks, is flagged as appeared
    /// (`anomaly:channel_appeared`): a new UTM value or a renamed source.
    #[schemars(range(min = 0, max = 1))]
    pub appearance_min_share: f64,
    /// With scope `partition`, a shift must also be at least this many standard errors: the
    /// larger of the baseline's own spread and the share's sampling error from the day's
    /// orders (sessions). A revenue share's sampling error is the ratio estimator's, from each
    /// channel's sum of squared order values: order values vary (CV 0.84 on Puffy), so a
    /// revenue share is noisier than an order share. 0 disables this gate.
    pub significance_z: f64,
    /// The mixes judged with scope `all` (default: `weightings`). The reference config judges
    /// only revenue there, as the reference monitor.
    #[schemars(length(min = 1))]
    pub scope_all_weightings: Option<Vec<Weighting>>,
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
            weightings: vec![Weighting::Revenue, Weighting::Sessions],
            top_channels: 6,
            abs_change_threshold: 0.15,
            disappearance_min_share: 0.05,
            appearance_min_share: 0.05,
            significance_z: 3.0,
            scope_all_weightings: None,
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
    /// - `anomaly:channel_disappeared`: any channel with a baseline share of at least
    ///   `disappearance_min_share` has no revenue (orders, sessions) at all that day, although
    ///   at its baseline share having none is as unlikely as a `significance_z` move (a Poisson
    ///   count: about 7 expected orders or sessions at z = 3);
    /// - `anomaly:channel_appeared`: a channel with nothing in the baseline window has at least
    ///   `appearance_min_share` of the day, with as many orders or sessions.
    ///
    /// A channel with no rows on a day has share 0 that day: a channel that vanishes is seen on
    /// its first day. The baseline leaves out the judged day and earlier flagged days (until a
    /// lasting shift becomes the new level, see `baseline.adapt_after_days`).
    ///
    /// A shift must also be significant (`significance_z`): it is divided by the larger of the
    /// baseline's spread and the share's standard error on that day. For revenue that error is
    /// the ratio estimator's, √((1−p)²·Q_c + p²·(Q − Q_c)) / Y with Q_c and Q the sums of
    /// squared order values of the channel and of all channels and Y the day's revenue; for
    /// orders and sessions it is the binomial √(p(1−p)/n).
    ///
    /// ## Default severities, and why
    /// WARN: a mix shift misattributes spend but the totals are right; the revenue and order
    /// checks of `anomaly` page for lost sales.
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
        if params
            .scope_all_weightings
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            return Err(ParamsError::at(
                "scope_all_weightings",
                "lists no mix to monitor",
            ));
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

/// What a mix is built from: per day and channel, the weights (revenue, orders or sessions),
/// the counts behind them (orders or sessions), and the weights' squares (`None`: each unit
/// weighs 1, so the squares are the weights).
struct MixSources {
    weights: Source,
    counts: Source,
    squares: Option<Source>,
}

impl MixSources {
    fn requests(&self) -> Vec<MetricRequest> {
        let squares = self.squares.iter().flat_map(Source::requests);
        self.weights
            .requests()
            .chain(self.counts.requests())
            .chain(squares)
            .collect()
    }
}

/// A day's mix over the known channels: weights, their squares and counts.
struct Mix<'m> {
    weights: &'m DailyByDimension,
    squares: &'m DailyByDimension,
    counts: &'m DailyByDimension,
    totals: BTreeMap<NaiveDate, f64>,
    square_totals: BTreeMap<NaiveDate, f64>,
    count_totals: BTreeMap<NaiveDate, f64>,
}

impl<'m> Mix<'m> {
    fn new(
        weights: &'m DailyByDimension,
        squares: &'m DailyByDimension,
        counts: &'m DailyByDimension,
    ) -> Self {
        Mix {
            weights,
            squares,
            counts,
            totals: day_totals(weights),
            square_totals: day_totals(squares),
            count_totals: day_totals(counts),
        }
    }

    fn of(by: &DailyByDimension, day: NaiveDate, channel: &str) -> f64 {
        by.get(&day)
            .and_then(|c| c.get(channel))
            .copied()
            .unwrap_or(0.0)
    }

    /// The channel's share of the day's weight (0 on a day without weight).
    fn share(&self, day: NaiveDate, channel: &str) -> f64 {
        match self.totals.get(&day) {
            Some(&total) if total > 0.0 => Self::of(self.weights, day, channel) / total,
            _ => 0.0,
        }
    }

    /// The standard error of the channel's share on `day` if its true share were `p`: the
    /// ratio estimator's √((1−p)²·Q_c + p²·(Q − Q_c)) / Y.
    fn standard_error(&self, day: NaiveDate, channel: &str, p: f64) -> f64 {
        let total = self.totals.get(&day).copied().unwrap_or(0.0);
        if total <= 0.0 {
            return 0.0;
        }
        let p = p.clamp(0.0, 1.0);
        let own = Self::of(self.squares, day, channel);
        let all = self.square_totals.get(&day).copied().unwrap_or(0.0);
        let variance = (1.0 - p).powi(2) * own + p.powi(2) * (all - own).max(0.0);
        variance.max(0.0).sqrt() / total
    }

    /// The day's count (orders, sessions) of the channel and of all channels.
    fn counts(&self, day: NaiveDate, channel: &str) -> (f64, f64) {
        (
            Self::of(self.counts, day, channel),
            self.count_totals.get(&day).copied().unwrap_or(0.0),
        )
    }
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

    /// The sources of a mix.
    fn sources(&self, weighting: Weighting) -> MixSources {
        let a = &self.params.attribution;
        let orders = || self.attributed(Measure::Distinct(a.order_id_column.clone()));
        match weighting {
            Weighting::Revenue => MixSources {
                weights: self.attributed(Measure::Sum(a.revenue_column.clone())),
                counts: orders(),
                squares: Some(self.attributed(Measure::SumSquares(a.revenue_column.clone()))),
            },
            Weighting::Orders => MixSources {
                weights: orders(),
                counts: orders(),
                squares: None,
            },
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
                MixSources {
                    weights: sessions.clone(),
                    counts: sessions,
                    squares: None,
                }
            }
        }
    }

    /// The mixes judged in the run's scope.
    fn weightings(&self, scope: Scope) -> &[Weighting] {
        match (scope, &self.params.scope_all_weightings) {
            (Scope::All, Some(weightings)) => weightings,
            _ => &self.params.weightings,
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
        let sources = self.sources(weighting);
        let squares = sources.squares.as_ref().unwrap_or(&sources.weights);
        let mix = match (
            sources.weights.resolve(m),
            squares.resolve(m),
            sources.counts.resolve(m),
        ) {
            (Ok(w), Ok(q), Ok(c)) => Mix::new(w, q, c),
            (Err(reason), _, _) | (_, Err(reason), _) | (_, _, Err(reason)) => {
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
            Scope::All => mix.weights.range(..),
            Scope::Partition => mix.weights.range(window_start..=cx.expected_date),
        };
        let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
        for channels in ranked_days.map(|(_, c)| c) {
            for (channel, w) in channels {
                *totals.entry(channel.as_str()).or_default() += w;
            }
        }
        totals.remove("");
        let mut ranked: Vec<(&str, f64)> = totals.iter().map(|(c, w)| (*c, *w)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let top: Vec<&str> = ranked
            .iter()
            .take(p.top_channels)
            .map(|(c, _)| *c)
            .collect();
        let z = p.significance_z;
        // Enough expected units (orders, sessions) that seeing none is as unlikely as a z-sigma
        // move: a Poisson count of mean `units` is 0 with probability e^−units.
        let tail = normal_tail(z);
        let enough = move |units: f64| units > 0.0 && (-units).exp() <= tail;
        let mut findings = Vec::new();
        // Every channel of the window is judged for disappearance; the top ones for shifts.
        let judged: Vec<&str> = match cx.scope {
            Scope::All => top.clone(),
            Scope::Partition => ranked.iter().map(|(c, _)| *c).collect(),
        };
        for channel in judged {
            let in_top = top.contains(&channel);
            let dense: DailySeries = mix
                .weights
                .keys()
                .filter(|d| mix.totals[*d] > 0.0)
                .map(|d| (*d, mix.share(*d, channel)))
                .collect();
            let sparse: Vec<(NaiveDate, Option<f64>)> = mix
                .weights
                .iter()
                .filter(|(_, channels)| channels.contains_key(channel))
                .map(|(d, _)| (*d, Some(mix.share(*d, channel))))
                .collect();
            // The units the day would have had at the baseline share: the others' count scaled.
            let disappeared = |day: NaiveDate, value: f64, center: f64| {
                let others = mix.counts(day, channel).1;
                cx.scope == Scope::Partition
                    && value == 0.0
                    && center >= p.disappearance_min_share
                    && center < 1.0
                    && enough(others * center / (1.0 - center))
            };
            let significant = |score: &Score| {
                cx.scope == Scope::All || z == 0.0 || score.z.is_none_or(|s| s.abs() >= z)
            };
            let floor = |day: NaiveDate, center: f64| mix.standard_error(day, channel, center);
            let metric = format!("{} {channel}", weighting.check());
            let series = Series {
                metric: &metric,
                dense: &dense,
                sparse: &sparse,
                noise: Noise::Floor(&floor),
                unit: Unit::Share,
            };
            // Channels outside the top are judged for disappearance only, without observation.
            let mut unreported = Vec::new();
            let recorded = if in_top {
                &mut *observations
            } else {
                &mut unreported
            };
            let fires = |day: NaiveDate, value: f64, center: f64, score: &Score| {
                let shifted = in_top
                    && (value - center).abs() >= p.abs_change_threshold
                    && significant(score);
                shifted || disappeared(day, value, center)
            };
            let flags = match flag_days(cx, series, &p.baseline, recorded, fires) {
                Ok(flags) => flags,
                Err(too_little) if in_top => {
                    findings.push(Finding::skipped(id, weighting.check(), too_little));
                    continue;
                }
                Err(_) => continue,
            };
            for flag in flags {
                findings.push(self.finding(severity, weighting, channel, &flag, disappeared));
            }
        }
        if cx.scope == Scope::Partition {
            findings.extend(self.appeared(cx, &mix, weighting, severity, window_start, enough));
        }
        findings
    }

    /// The finding of a flagged day of a channel's share.
    fn finding(
        &self,
        severity: Severity,
        weighting: Weighting,
        channel: &str,
        flag: &Flag,
        disappeared: impl Fn(NaiveDate, f64, f64) -> bool,
    ) -> Finding {
        let p = &self.params;
        let noun = weighting.noun();
        // The disappearance check serves every weighting: its subject names both.
        let (check, subject, message) = if disappeared(flag.day, flag.value, flag.center) {
            (
                "anomaly:channel_disappeared",
                format!("{channel} ({noun})"),
                format!(
                    "Channel '{channel}' has no {noun} on {} against a baseline share of {:.1}%{}",
                    flag.day,
                    flag.center * 100.0,
                    flag.since_note()
                ),
            )
        } else {
            (
                weighting.check(),
                channel.to_string(),
                format!(
                    "Channel '{channel}' {noun} share shifted: {:.1}% vs baseline {:.1}% \
                     (spread {:.1} points, {}){}",
                    flag.value * 100.0,
                    flag.center * 100.0,
                    flag.spread * 100.0,
                    flag.score.describe(),
                    flag.since_note()
                ),
            )
        };
        let mut context = json!({
            "channel": channel,
            "baseline_share": flag.center,
            "weighting": noun,
        });
        if let (Some(target), Some(extra)) = (context.as_object_mut(), flag.context.as_object()) {
            for key in [
                "baseline_points",
                "baseline_window",
                "excluded_flagged_days",
                "baseline_std",
                "noise_floor",
                "spread_used",
                "z",
                "level_since",
            ] {
                if let Some(v) = extra.get(key) {
                    target.insert(key.into(), v.clone());
                }
            }
        }
        Finding::new(severity, Self::META.id, check, message)
            .about(subject)
            .on(flag.day)
            .value(flag.value)
            .threshold(p.abs_change_threshold)
            .context(context)
    }

    /// Channels with nothing in the baseline window that hold at least `appearance_min_share`
    /// of the expected day, with enough units not to be chance.
    fn appeared(
        &self,
        cx: &RunCtx,
        mix: &Mix<'_>,
        weighting: Weighting,
        severity: Severity,
        window_start: NaiveDate,
        enough: impl Fn(f64) -> bool,
    ) -> Vec<Finding> {
        let p = &self.params;
        let day = cx.expected_date;
        let history: Vec<&BTreeMap<String, f64>> = mix
            .weights
            .range(window_start..day)
            .filter(|(d, _)| mix.totals[*d] > 0.0)
            .map(|(_, c)| c)
            .collect();
        if history.len() < (p.baseline.min_points as usize).max(2) {
            return Vec::new();
        }
        let Some(today) = mix.weights.get(&day) else {
            return Vec::new();
        };
        let noun = weighting.noun();
        today
            .keys()
            .filter(|c| !c.is_empty())
            .filter(|c| history.iter().all(|h| h.get(*c).is_none_or(|w| *w == 0.0)))
            .filter_map(|channel| {
                let share = mix.share(day, channel);
                let (units, _) = mix.counts(day, channel);
                (share >= p.appearance_min_share && enough(units)).then(|| {
                    Finding::new(
                        severity,
                        Self::META.id,
                        "anomaly:channel_appeared",
                        format!(
                            "Channel '{channel}' appeared on {day} with {:.1}% of the {noun} \
                             ({units} {}), after nothing in the {} days before",
                            share * 100.0,
                            weighting.units(),
                            history.len()
                        ),
                    )
                    .about(format!("{channel} ({noun})"))
                    .on(day)
                    .value(share)
                    .threshold(p.appearance_min_share)
                    .context(json!({
                        "channel": channel,
                        "weighting": noun,
                        "units": units,
                        "baseline_days": history.len(),
                    }))
                })
            })
            .collect()
    }
}

impl Rule for Drift {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(self
            .params
            .weightings
            .iter()
            .chain(self.params.scope_all_weightings.iter().flatten())
            .flat_map(|w| self.sources(*w).requests())
            .collect())
    }

    fn lookback_days(&self) -> u32 {
        self.params.baseline.window_days
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
        for weighting in self.weightings(cx.scope) {
            findings.extend(self.check_weighting(cx, metrics, *weighting, &mut observations));
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
