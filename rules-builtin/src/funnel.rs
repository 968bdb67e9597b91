//! The `funnel` rule: session-to-purchase conversion and the step rates of the funnel
//! (pageview, add to cart, checkout, purchase) against their baselines.

use vigil_rule_api::baseline::Direction;
use vigil_rule_api::prelude::*;

/// One funnel step: sessions that reached it have a positive count in `column`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FunnelStep {
    /// Name used in check ids, e.g. `add_to_cart`.
    pub name: String,
    /// The sessions table's count column of this step.
    pub column: String,
}

/// `rules.funnel`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FunnelParams {
    /// The sessions table (one row per session).
    pub sessions_table: String,
    /// Its session id column.
    pub session_id_column: String,
    /// The steps, in funnel order; the last one is the purchase.
    #[serde(deserialize_with = "steps_or_default")]
    #[schemars(with = "Option<Vec<FunnelStep>>", length(min = 1))]
    pub steps: Vec<FunnelStep>,
    /// A rate is anomalous only if |z| is at least this...
    pub z_threshold: f64,
    /// ...and its |percent change| from the baseline is at least this.
    pub pct_threshold: f64,
    /// How each day's baseline is built.
    #[serde(deserialize_with = "empty_is_default")]
    #[schemars(with = "Option<BaselineParams>")]
    pub baseline: BaselineParams,
    /// Severity of a change of the session-to-purchase conversion, per direction.
    pub conversion: DirectionLevels,
    /// Severity of a change of a step-to-step rate, per direction.
    pub steps_levels: DirectionLevels,
    /// Severity when a step's column is missing (its rates cannot be computed).
    pub missing_column: Level,
}

fn steps_or_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FunnelStep>, D::Error> {
    empty_or(d, || FunnelParams::default().steps)
}

impl Default for FunnelParams {
    fn default() -> Self {
        let step = |name: &str| FunnelStep {
            name: name.into(),
            column: name.into(),
        };
        FunnelParams {
            sessions_table: "sessions".into(),
            session_id_column: "session_id".into(),
            steps: ["pageviews", "add_to_cart", "checkout_started", "purchases"]
                .into_iter()
                .map(step)
                .collect(),
            z_threshold: 3.0,
            pct_threshold: 0.3,
            baseline: BaselineParams::default(),
            conversion: DirectionLevels {
                drop: Level::Error,
                spike: Level::Warn,
            },
            steps_levels: DirectionLevels {
                drop: Level::Warn,
                spike: Level::Info,
            },
            missing_column: Level::Error,
        }
    }
}

/// The funnel rule, built from its params.
#[derive(Debug)]
pub struct Funnel {
    params: FunnelParams,
}

vigil_rule_api::register_rule! {
    /// Session-to-purchase conversion and each funnel step rate stay near their baseline.
    ///
    /// ## What it checks
    /// From the sessions table, per day: sessions, and sessions that reached each step (count
    /// column > 0). Then:
    /// - `funnel:conversion`: sessions that reached the last step / sessions;
    /// - `funnel:<a>_to_<b>`: sessions that reached step b / sessions that reached step a
    ///   (the first step against all sessions: `funnel:sessions_to_<first>`);
    /// each flagged when |z| ≥ `z_threshold` and |percent change| ≥ `pct_threshold` against
    /// the day's baseline (severity per direction: a conversion drop is an ERROR).
    /// - `funnel:missing_column` (ERROR): a step's column is missing. The reference monitor
    ///   silently reports a conversion of 0 when `purchases` disappears.
    ///
    /// ## Why
    /// A checkout or tag break shows as one step rate falling while traffic looks normal; the
    /// step that fell says where to look.
    ///
    /// ## Default severities, and why
    /// - A drop of the overall conversion: ERROR, lost sales whatever the step; a rise: WARN
    ///   (often a campaign, worth a look).
    /// - A drop of one step: WARN (a rise: INFO). A single step moves with page or campaign
    ///   changes; the conversion and `anomaly` page when sales are really lost.
    /// - A missing step column: ERROR. Without it the funnel reads as 0 everywhere.
    ///
    /// ## Scope `all`
    /// Every day of history, with the reference monitor's baseline statistics and the more
    /// severe level of the two directions.
    Funnel {
        id: "funnel",
        default_severity: Error,
        example: "steps:\n  - {name: add_to_cart, column: add_to_cart}\n  - {name: checkout, column: checkout_started}\n  - {name: purchase, column: purchases}\nconversion: {drop: error, spike: warn}\nbaseline:\n  window_days: 56\n  seasonality: day_of_week\n",
    }
}

impl RuleSpec for Funnel {
    type Params = FunnelParams;

    fn new(params: FunnelParams) -> Result<Self, ParamsError> {
        if params.steps.is_empty() {
            return Err(ParamsError::at("steps", "lists no funnel step"));
        }
        params.baseline.check()?;
        Ok(Funnel { params })
    }
}

impl Funnel {
    fn sessions_request(&self) -> MetricRequest {
        let p = &self.params;
        MetricRequest::daily(
            &p.sessions_table,
            Measure::Distinct(p.session_id_column.clone()),
        )
    }

    fn step_request(&self, step: &FunnelStep) -> MetricRequest {
        MetricRequest::daily(
            &self.params.sessions_table,
            Measure::Where {
                column: step.column.clone(),
                cmp: Cmp::Gt,
                value: Number(0.0),
            },
        )
    }

    /// Judges `numerator / denominator` and turns the flagged days into findings.
    fn judge(
        &self,
        cx: &RunCtx,
        check: &str,
        numerator: &DailySeries,
        denominator: &DailySeries,
        levels: &DirectionLevels,
        observations: &mut Vec<Observation>,
    ) -> Vec<Finding> {
        let p = &self.params;
        let rate = ratio(numerator, denominator);
        let sparse: Vec<(NaiveDate, Option<f64>)> =
            rate.iter().map(|(d, v)| (*d, Some(*v))).collect();
        let series = Series {
            metric: check,
            dense: &rate,
            sparse: &sparse,
            noise: Noise::Shares(denominator),
            unit: Unit::Share,
        };
        let flags = match flag_days(cx, series, &p.baseline, observations, |_, _, _, score| {
            score.exceeds(p.z_threshold, p.pct_threshold)
        }) {
            Ok(flags) => flags,
            Err(too_little) => return vec![Finding::skipped(Self::META.id, check, too_little)],
        };
        flags
            .into_iter()
            .filter_map(|flag| {
                let severity = levels.in_scope(cx.scope, flag.direction() == Direction::Drop)?;
                Some(
                    Finding::new(
                        severity,
                        Self::META.id,
                        check,
                        format!(
                            "{check} rate {:.2}% is a {} against its baseline {:.2}% (spread {:.2} points): {}{}",
                            flag.value * 100.0,
                            flag.direction().as_str(),
                            flag.center * 100.0,
                            flag.spread * 100.0,
                            flag.score.describe(),
                            flag.since_note()
                        ),
                    )
                    .on(flag.day)
                    .value(flag.value)
                    .threshold(p.z_threshold)
                    .context(flag.context),
                )
            })
            .collect()
    }
}

impl Rule for Funnel {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(std::iter::once(self.sessions_request())
            .chain(self.params.steps.iter().map(|s| self.step_request(s)))
            .collect())
    }

    fn lookback_days(&self) -> u32 {
        self.params.baseline.window_days
    }

    fn warnings(&self) -> Vec<ParamsError> {
        let p = &self.params;
        let mut warnings: Vec<ParamsError> = p.baseline.warning().into_iter().collect();
        let off = DirectionLevels::both(Level::Off);
        if p.conversion == off && p.steps_levels == off {
            warnings.push(ParamsError::at(
                "conversion",
                "`conversion` and `steps_levels` are `off` in both directions: the rule reports \
                 no rate change",
            ));
        }
        warnings
    }

    fn evaluate(&self, cx: &RunCtx, m: &Metrics) -> Result<Evaluated, RuleError> {
        let p = &self.params;
        let id = Self::META.id;
        let sessions = match m.daily(&self.sessions_request()) {
            Ok(s) => s,
            Err(reason) => return Ok(vec![Finding::skipped(id, "funnel", reason)].into()),
        };
        let mut findings = Vec::new();
        let mut observations = Vec::new();
        let mut counts: Vec<(&str, Option<&DailySeries>)> = vec![("sessions", Some(sessions))];
        for step in &p.steps {
            match m.daily(&self.step_request(step)) {
                Ok(series) => counts.push((&step.name, Some(series))),
                Err(reason) => {
                    counts.push((&step.name, None));
                    if let Some(severity) = p.missing_column.severity() {
                        findings.push(
                            Finding::new(
                                severity,
                                id,
                                "funnel:missing_column",
                                format!(
                                    "Funnel step `{}` cannot be measured, its rates are skipped: {reason}",
                                    step.name
                                ),
                            )
                            .context(json!({"step": step.name, "column": step.column})),
                        );
                    }
                }
            }
        }
        if let Some((_, Some(last))) = counts.last().filter(|_| counts.len() > 1) {
            findings.extend(self.judge(
                cx,
                "funnel:conversion",
                last,
                sessions,
                &p.conversion,
                &mut observations,
            ));
        }
        for pair in counts.windows(2) {
            if let [(from, Some(denominator)), (to, Some(numerator))] = pair {
                let check = format!("funnel:{from}_to_{to}");
                findings.extend(self.judge(
                    cx,
                    &check,
                    numerator,
                    denominator,
                    &p.steps_levels,
                    &mut observations,
                ));
            }
        }
        Ok(Evaluated::new(findings, observations))
    }
}

#[cfg(test)]
mod tests;
