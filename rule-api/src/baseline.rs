//! Shared statistics for rules: baselines over calendar days (optionally same weekday only,
//! mean/std or median/MAD, flagged days left out, a minimum number of points), z-score and
//! percent change without infinities, and the reference monitor's baseline for parity.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::metric::DailySeries;
use crate::rule::{HistoryPoint, Observation, RunCtx, Scope, Unit};

/// Which statistic is the baseline's center and spread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Center {
    /// Mean and sample standard deviation.
    #[default]
    Mean,
    /// Median and median absolute deviation × 1.4826 (robust to outliers in the window).
    Median,
}

/// Which earlier days are comparable with the judged day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// Every day of the window.
    #[default]
    None,
    /// Only the same weekday (a Monday against earlier Mondays).
    DayOfWeek,
}

/// How a rule builds the baseline of a day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineParams {
    /// Calendar days before the judged day that may form its baseline (the judged day itself is
    /// never part of it). With `day_of_week`, use a multiple of 7 (e.g. 56 for 8 weeks).
    #[schemars(range(min = 1))]
    pub window_days: u32,
    /// Fewer usable days than this and the day is not judged (too little history).
    pub min_points: u32,
    /// `mean` (with the sample standard deviation) or `median` (with the scaled MAD).
    pub center: Center,
    /// `none`, or `day_of_week` to compare only the same weekday.
    pub seasonality: Seasonality,
    /// Leave days already flagged as anomalous out of later baselines, so an incident does not
    /// become the new normal.
    pub exclude_flagged: bool,
    /// A level shift that lasts this many consecutive flagged days (same direction) becomes the
    /// new normal: its days rejoin the baseline, which then adapts, and the days after it are
    /// reported as "new level since D" until they stop standing out. It adapts sooner when
    /// leaving the shift out would leave fewer than `min_points` days in the window. 0 keeps
    /// excluding flagged days however long the shift lasts (until too few days are left).
    pub adapt_after_days: u32,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            window_days: 28,
            min_points: 7,
            center: Center::Mean,
            seasonality: Seasonality::None,
            exclude_flagged: true,
            adapt_after_days: 7,
        }
    }
}

/// A day's baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// Mean or median.
    pub center: f64,
    /// Standard deviation, or scaled MAD with the scaled mean absolute deviation as its floor.
    pub spread: f64,
    /// The days used.
    pub days: Vec<NaiveDate>,
    /// Days of the window left out because they were flagged.
    pub excluded: Vec<NaiveDate>,
    /// First and last day of the window.
    pub window: (NaiveDate, NaiveDate),
    /// The smallest spread the z-score divides by (see [`Noise`]); 0 unless a rule sets it.
    pub noise_floor: f64,
}

/// Not enough history for a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insufficient {
    /// Usable days found.
    pub points: usize,
    /// Days needed.
    pub needed: usize,
}

impl std::fmt::Display for Insufficient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too little history for a baseline: {} usable day(s) in the window, {} needed",
            self.points, self.needed
        )
    }
}

impl BaselineParams {
    /// Refuses settings under which no day could ever be judged (a zero window, more points
    /// than the window has days), naming the field under `baseline`.
    pub fn check(&self) -> Result<(), crate::registry::ParamsError> {
        use crate::registry::ParamsError;
        if self.window_days == 0 {
            return Err(ParamsError::at(
                "baseline.window_days",
                "must be at least 1: a window of 0 days never holds a baseline",
            ));
        }
        if self.min_points > self.window_days {
            return Err(ParamsError::at(
                "baseline.min_points",
                format!(
                    "is {} but the window has only {} day(s): no day could ever be judged",
                    self.min_points, self.window_days
                ),
            ));
        }
        Ok(())
    }

    /// After how many consecutive flagged days a shift becomes the new level: `adapt_after_days`,
    /// or sooner if leaving out more days would leave fewer than `min_points` in the window.
    fn adapts_after(&self) -> u32 {
        let starving = self.window_days.saturating_sub(self.min_points.max(2)) + 1;
        self.adapt_after_days.min(starving.max(1))
    }

    /// Why no day could ever be judged (with scope `partition`) although the settings pass
    /// [`check`](Self::check): with `day_of_week`, the window holds only `window_days / 7` days
    /// of the judged weekday, and a baseline needs `min_points` of them (at least 2).
    pub fn warning(&self) -> Option<crate::registry::ParamsError> {
        let same_weekdays = self.window_days / 7;
        let needed = self.min_points.max(2);
        (self.seasonality == Seasonality::DayOfWeek && needed > same_weekdays).then(|| {
            crate::registry::ParamsError::at(
                "baseline.min_points",
                format!(
                    "a baseline needs {needed} day(s) of the judged weekday but with \
                     `day_of_week` a window of {} days holds only {same_weekdays}: with scope \
                     `partition` no day is ever judged",
                    self.window_days
                ),
            )
        })
    }

    /// The baseline of `day` from the values of `series` on earlier days of the window, leaving
    /// out `flagged` days (when `exclude_flagged`), days without a value and values that are not
    /// finite (an overflowed sum).
    pub fn baseline(
        &self,
        series: &DailySeries,
        day: NaiveDate,
        flagged: &BTreeSet<NaiveDate>,
    ) -> Result<Baseline, Insufficient> {
        let first = day
            .checked_sub_days(Days::new(u64::from(self.window_days.max(1))))
            .unwrap_or(NaiveDate::MIN);
        let last = day.pred_opt().unwrap_or(NaiveDate::MIN);
        let mut days = Vec::new();
        let mut excluded = Vec::new();
        let mut excluded_values = Vec::new();
        let mut values = Vec::new();
        for (&d, &v) in series.range(first..day) {
            if !v.is_finite() {
                continue;
            }
            if self.seasonality == Seasonality::DayOfWeek && d.weekday() != day.weekday() {
                continue;
            }
            if self.exclude_flagged && flagged.contains(&d) {
                excluded.push(d);
                excluded_values.push(v);
                continue;
            }
            days.push(d);
            values.push(v);
        }
        let needed = (self.min_points as usize).max(2);
        // Flagged days are left out only while enough days remain: when adapting, the oldest
        // rejoin rather than leave the day without a baseline.
        let short = needed.saturating_sub(values.len()).min(excluded.len());
        if self.adapt_after_days > 0 && short > 0 {
            days.extend(excluded.drain(..short));
            days.sort();
            values.extend(excluded_values.drain(..short));
        }
        if values.len() < needed {
            return Err(Insufficient {
                points: values.len(),
                needed,
            });
        }
        let (center, spread) = match self.center {
            Center::Mean => {
                let mean = mean(&values);
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (values.len() - 1) as f64;
                (mean, var.sqrt())
            }
            Center::Median => {
                let median = median(&mut values.clone());
                let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
                (median, robust_spread(&mut deviations))
            }
        };
        Ok(Baseline {
            center,
            spread,
            days,
            excluded,
            window: (first, last),
            noise_floor: 0.0,
        })
    }
}

/// How far a value is from its baseline. `None` means unbounded: the baseline has no spread
/// (for z) or is zero (for the percent change) and the value differs from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// (value − center) / spread.
    pub z: Option<f64>,
    /// (value − center) / |center|.
    pub pct: Option<f64>,
}

impl Score {
    /// Scores `value` against a center and spread, without infinities or NaN (a value that is
    /// not finite is unbounded in both).
    pub fn new(value: f64, center: f64, spread: f64) -> Self {
        let ratio = |num: f64, den: f64| {
            if !num.is_finite() {
                None
            } else if den != 0.0 {
                Some(num / den)
            } else if num == 0.0 {
                Some(0.0)
            } else {
                None
            }
        };
        Score {
            z: ratio(value - center, spread),
            pct: ratio(value - center, center.abs()),
        }
    }

    /// True when both |z| ≥ `z_threshold` and |percent change| ≥ `pct_threshold` (an unbounded
    /// score exceeds any threshold).
    pub fn exceeds(&self, z_threshold: f64, pct_threshold: f64) -> bool {
        self.z.is_none_or(|z| z.abs() >= z_threshold)
            && self.pct.is_none_or(|p| p.abs() >= pct_threshold)
    }

    /// `z=3.17, change=+66.67%`, with `∞` for unbounded values.
    pub fn describe(&self) -> String {
        let z = self.z.map_or("∞".to_string(), |z| format!("{z:.2}"));
        let pct = self
            .pct
            .map_or("∞".to_string(), |p| format!("{:+.2}%", p * 100.0));
        format!("z={z}, change={pct}")
    }
}

/// Which way a value moved from its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Above the baseline.
    Spike,
    /// Below the baseline.
    Drop,
}

impl Direction {
    /// The direction of `value` relative to `center` (equal counts as a spike; it never fires).
    pub fn of(value: f64, center: f64) -> Self {
        if value < center {
            Direction::Drop
        } else {
            Direction::Spike
        }
    }

    /// `spike` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Spike => "spike",
            Direction::Drop => "drop",
        }
    }
}

/// One day judged against its baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The day's value.
    pub value: f64,
    /// Its baseline, or why there is none.
    pub baseline: Result<Baseline, Insufficient>,
    /// Its score, when it has a baseline.
    pub score: Option<Score>,
    /// Whether it exceeded the thresholds.
    pub flagged: bool,
    /// The first day of the level shift a flagged day continues (consecutive flagged days in
    /// the same direction), when it began before this day.
    pub since: Option<NaiveDate>,
}

impl Judgement {
    /// The explanation of a flagged day, for a finding's context.
    pub fn context(&self) -> Value {
        match (&self.baseline, &self.score) {
            (Ok(b), Some(s)) => json!({
                "baseline_mean": b.center,
                "baseline_std": b.spread,
                "noise_floor": b.noise_floor,
                "spread_used": b.spread.max(b.noise_floor),
                "level_since": self.since.map(|d| d.to_string()),
                "z": s.z,
                "pct_change": s.pct,
                "direction": Direction::of(self.value, b.center).as_str(),
                "baseline_points": b.days.len(),
                "baseline_window": [b.window.0.to_string(), b.window.1.to_string()],
                "excluded_flagged_days": b.excluded.iter().map(NaiveDate::to_string).collect::<Vec<_>>(),
            }),
            (Err(i), _) => json!({"baseline_points": i.points, "min_points": i.needed}),
            _ => Value::Null,
        }
    }
}

/// The sampling noise a day's value has in any case: the z-score divides by at least this, so
/// a window that happens to be calm does not make an ordinary wobble look significant.
#[derive(Clone, Copy)]
pub enum Noise<'a> {
    /// No floor.
    None,
    /// Counts (sessions, orders): at least the Poisson noise √mean.
    Counts,
    /// A share of the day's trials (conversion = purchases / sessions): at least the binomial
    /// noise √(p(1−p)/n), with `n` the day's trials from this series.
    Shares(&'a DailySeries),
    /// A sum of values (revenue = the sum of order values): at least the compound-Poisson noise
    /// √(c·Q/Y) of a day summing to the baseline's center `c` with the usual mix of values (`Q`
    /// and `Y` the sums of squared values and of values over the days before; the day itself
    /// when none has values, so a day of tripled values does not widen its own floor).
    Sums {
        /// The day's sum of squared values.
        squares: &'a DailySeries,
        /// The day's sum of values.
        sums: &'a DailySeries,
    },
    /// A mean of values (AOV): at least its standard error √(v/n) for the day's `n` values, with
    /// `v` the variance of the values over the days before, Q/N − (Y/N)² (the day itself when
    /// none has values).
    Means {
        /// The day's sum of squared values.
        squares: &'a DailySeries,
        /// The day's sum of values.
        sums: &'a DailySeries,
        /// The day's number of values.
        counts: &'a DailySeries,
    },
    /// A rule's own floor, given the day and the baseline's center (e.g. the standard error of
    /// a revenue share from the day's order values).
    Floor(&'a dyn Fn(NaiveDate, f64) -> f64),
}

impl std::fmt::Debug for Noise<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Noise::None => "None",
            Noise::Counts => "Counts",
            Noise::Shares(_) => "Shares",
            Noise::Sums { .. } => "Sums",
            Noise::Means { .. } => "Means",
            Noise::Floor(_) => "Floor",
        })
    }
}

impl Noise<'_> {
    /// The floor of the spread on `day` for a baseline centred on `center`.
    pub fn floor(&self, day: NaiveDate, center: f64) -> f64 {
        match self {
            Noise::None => 0.0,
            Noise::Counts => center.max(0.0).sqrt(),
            Noise::Shares(trials) => match trials.get(&day) {
                Some(&n) if n > 0.0 => {
                    (center.clamp(0.0, 1.0) * (1.0 - center.clamp(0.0, 1.0)) / n).sqrt()
                }
                _ => 0.0,
            },
            Noise::Sums { squares, sums } => {
                let [q, y] = usual(day, [squares, sums]);
                if y > 0.0 {
                    (center.max(0.0) * q / y).sqrt()
                } else {
                    0.0
                }
            }
            Noise::Means {
                squares,
                sums,
                counts,
            } => {
                let [q, y, total] = usual(day, [squares, sums, counts]);
                let n = at(counts, day);
                if n > 0.0 && total > 0.0 {
                    let mean = y / total;
                    ((q / total - mean * mean).max(0.0) / n).sqrt()
                } else {
                    0.0
                }
            }
            Noise::Floor(floor) => floor(day, center),
        }
    }
}

/// The totals of `series` over the days before `day` on which the first has a value, or their
/// values on `day` itself when no earlier day has one.
fn usual<const N: usize>(day: NaiveDate, series: [&DailySeries; N]) -> [f64; N] {
    let earlier: Vec<NaiveDate> = series
        .first()
        .map(|s| {
            s.range(..day)
                .filter(|(_, v)| **v > 0.0)
                .map(|(d, _)| *d)
                .collect()
        })
        .unwrap_or_default();
    let days = if earlier.is_empty() {
        vec![day]
    } else {
        earlier
    };
    series.map(|s| days.iter().map(|d| at(s, *d)).sum())
}

/// The value of `day` in a series, 0 when it has none.
fn at(series: &DailySeries, day: NaiveDate) -> f64 {
    series.get(&day).copied().unwrap_or(0.0)
}

/// Judges every day of `series` up to and including `until`, in date order, each against a
/// baseline that leaves out the days flagged before it, its spread no smaller than `noise`.
/// `fires(day, value, center, score)` decides whether a day is flagged.
///
/// A run of consecutive flagged days in one direction is a level shift: each of its days after
/// the first carries the day it began (`since`). Once it has lasted `adapt_after_days`, its days
/// rejoin later baselines (the new level becomes normal) and the rest of the run is neither
/// left out nor reported.
pub fn judge_history(
    series: &DailySeries,
    params: &BaselineParams,
    noise: Noise<'_>,
    until: NaiveDate,
    fires: impl Fn(NaiveDate, f64, f64, &Score) -> bool,
) -> Vec<(NaiveDate, Judgement)> {
    let mut flagged = BTreeSet::new();
    let mut shift: Option<Shift> = None;
    let mut out = Vec::new();
    for (&day, &value) in series.range(..=until) {
        let baseline = params.baseline(series, day, &flagged).map(|mut b| {
            b.noise_floor = noise.floor(day, b.center);
            b
        });
        let score = baseline
            .as_ref()
            .ok()
            .map(|b| Score::new(value, b.center, b.spread.max(b.noise_floor)));
        let direction = match (&baseline, &score) {
            (Ok(b), Some(s)) if fires(day, value, b.center, s) => {
                Some(Direction::of(value, b.center))
            }
            _ => None,
        };
        shift = direction.map(|direction| match shift.take() {
            Some(s) if s.direction == direction => Shift {
                days: s.days + 1,
                ..s
            },
            _ => Shift {
                start: day,
                direction,
                days: 1,
                accepted: false,
            },
        });
        let mut reported = direction.is_some();
        if let Some(s) = &mut shift {
            if s.accepted {
                // The new level is normal already: the day joins later baselines unreported.
                reported = false;
            } else if params.adapt_after_days > 0 && s.days >= params.adapts_after() {
                s.accepted = true;
                let start = s.start;
                flagged.retain(|d| *d < start);
            } else {
                flagged.insert(day);
            }
        }
        out.push((
            day,
            Judgement {
                value,
                baseline,
                score,
                flagged: reported,
                since: shift.as_ref().map(|s| s.start).filter(|s| *s < day),
            },
        ));
    }
    out
}

/// A run of consecutive flagged days in one direction.
#[derive(Clone, Copy, Debug)]
struct Shift {
    start: NaiveDate,
    direction: Direction,
    days: u32,
    accepted: bool,
}

/// A day a series check flagged, with the numbers that explain it.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    /// The flagged day.
    pub day: NaiveDate,
    /// Its value.
    pub value: f64,
    /// The baseline's mean (or median).
    pub center: f64,
    /// The spread the score was computed with: the baseline's standard deviation (or scaled
    /// MAD), or the noise floor when that is larger.
    pub spread: f64,
    /// The score (`None` where unbounded).
    pub score: Score,
    /// The first day of the level shift this day continues, when it began earlier.
    pub since: Option<NaiveDate>,
    /// Baseline details for a finding's context: `baseline_mean`, `baseline_std`, `z`,
    /// `pct_change`, points, window, excluded days.
    pub context: Value,
}

impl Flag {
    /// Which way the value moved.
    pub fn direction(&self) -> Direction {
        Direction::of(self.value, self.center)
    }

    /// `; at this level since D (N days)` for a day that continues a level shift, else empty.
    pub fn since_note(&self) -> String {
        self.since.map_or_else(String::new, |since| {
            format!(
                "; new level since {since} ({} days)",
                (self.day - since).num_days() + 1
            )
        })
    }
}

/// A daily metric as [`flag_days`] judges it.
#[derive(Clone, Debug)]
pub struct Series<'a> {
    /// Its name in reports, e.g. `anomaly:revenue`.
    pub metric: &'a str,
    /// A value on every day that has one (0 on days without rows for counts and sums).
    pub dense: &'a DailySeries,
    /// The days the reference monitor sees, `None` where it has no value (scope `all`).
    pub sparse: &'a [(NaiveDate, Option<f64>)],
    /// The noise the values have anyway (scope `partition`).
    pub noise: Noise<'a>,
    /// What its values are (counts, shares, money), for the reports.
    pub unit: Unit,
}

/// Flags the days of a daily metric that `fires` says stand out from their baseline, as the
/// run's scope asks:
/// - [`Scope::Partition`]: only the expected day, against a calendar baseline from `params`
///   (earlier flagged days left out) built over `series.dense`, its spread at least the noise;
/// - [`Scope::All`]: every position of `series.sparse`, against the reference's baseline of the
///   last `params.window_days` observations.
///
/// `fires(day, value, center, score)` decides; unbounded scores (zero spread or center) count as
/// exceeding any threshold. An `Err` says the expected day has a value but too little history
/// to be judged. The judged metric of the expected day (with its history) is pushed onto
/// `observations`, for the reports.
pub fn flag_days(
    cx: &RunCtx,
    series: Series<'_>,
    params: &BaselineParams,
    observations: &mut Vec<Observation>,
    fires: impl Fn(NaiveDate, f64, f64, &Score) -> bool,
) -> Result<Vec<Flag>, Insufficient> {
    let Series {
        metric,
        dense,
        sparse,
        noise,
        unit,
    } = series;
    match cx.scope {
        Scope::Partition => {
            let judged = judge_history(dense, params, noise, cx.expected_date, &fires);
            if judged.iter().any(|(day, _)| *day == cx.expected_date) {
                observations.push(observation(metric, cx.expected_date, &judged).unit(unit));
            }
            let Some((day, j)) = judged.into_iter().find(|(day, _)| *day == cx.expected_date)
            else {
                return Ok(Vec::new());
            };
            let baseline = j.baseline.as_ref().map_err(|i| *i)?;
            Ok(j.score
                .filter(|_| j.flagged)
                .map(|score| Flag {
                    day,
                    value: j.value,
                    center: baseline.center,
                    spread: baseline.spread.max(baseline.noise_floor),
                    score,
                    since: j.since,
                    context: j.context(),
                })
                .into_iter()
                .collect())
        }
        Scope::All => {
            let values: Vec<Option<f64>> = sparse.iter().map(|(_, v)| *v).collect();
            let n = params.window_days as usize;
            let expected = reference_observation(metric, cx.expected_date, sparse, n, &fires);
            observations.extend(expected.map(|o| o.unit(unit)));
            Ok(sparse
                .iter()
                .enumerate()
                .filter_map(|(i, (day, value))| {
                    let value = (*value)?;
                    let (mean, std, score) = reference_scored(&values, i, n, value)?;
                    fires(*day, value, mean, &score).then(|| Flag {
                        day: *day,
                        value,
                        center: mean,
                        spread: std,
                        score,
                        since: None,
                        context: json!({
                            "baseline_mean": mean,
                            "baseline_std": std,
                            "z": score.z,
                            "pct_change": score.pct,
                            "baseline_points": values[..i].iter().flatten().count().min(n),
                        }),
                    })
                })
                .collect())
        }
    }
}

/// The reference monitor's baseline of position `i` of `values` (see [`reference_baseline`])
/// and the score of `value` against it, without infinities.
fn reference_scored(
    values: &[Option<f64>],
    i: usize,
    n: usize,
    value: f64,
) -> Option<(f64, f64, Score)> {
    let (mean, std) = reference_baseline(values, i, n)?;
    let (z, pct) = reference_score(value, mean, std);
    let finite = |x: f64| x.is_finite().then_some(x);
    let score = Score {
        z: finite(z),
        pct: finite(pct),
    };
    Some((mean, std, score))
}

/// The observation of `day` in scope `all`, for the reports: its value, reference baseline and
/// score, and the days of `sparse` up to it (`None` when `day` has no value).
fn reference_observation(
    metric: &str,
    day: NaiveDate,
    sparse: &[(NaiveDate, Option<f64>)],
    n: usize,
    fires: &impl Fn(NaiveDate, f64, f64, &Score) -> bool,
) -> Option<Observation> {
    let values: Vec<Option<f64>> = sparse.iter().map(|(_, v)| *v).collect();
    let judged: Vec<(HistoryPoint, Option<Score>)> = sparse
        .iter()
        .enumerate()
        .take_while(|(_, (d, _))| *d <= day)
        .filter_map(|(i, (d, value))| {
            let value = (*value)?;
            let scored = reference_scored(&values, i, n, value);
            let flagged = scored
                .as_ref()
                .is_some_and(|(mean, _, score)| fires(*d, value, *mean, score));
            let baseline = scored.as_ref().map(|(mean, std, _)| (*mean, *std));
            let point = HistoryPoint::new(*d, value, baseline, flagged);
            Some((point, scored.map(|(.., score)| score)))
        })
        .collect();
    let (today, score) = judged.last().filter(|(p, _)| p.day == day)?;
    Some(Observation::with_baseline(
        metric,
        day,
        today.value,
        today.baseline,
        score.and_then(|s| s.z),
        score.and_then(|s| s.pct),
        today.flagged,
        judged.iter().map(|(p, _)| *p).collect(),
    ))
}

/// The observation of a judged history whose last day is the expected one, for the reports.
fn observation(metric: &str, day: NaiveDate, judged: &[(NaiveDate, Judgement)]) -> Observation {
    let today = judged.iter().find(|(d, _)| *d == day).map(|(_, j)| j);
    let baseline = |j: &Judgement| {
        j.baseline
            .as_ref()
            .ok()
            .map(|b| (b.center, b.spread.max(b.noise_floor)))
    };
    Observation::with_baseline(
        metric,
        day,
        today.map_or(f64::NAN, |j| j.value),
        today.and_then(baseline),
        today.and_then(|j| j.score?.z),
        today.and_then(|j| j.score?.pct),
        today.is_some_and(|j| j.flagged),
        judged
            .iter()
            .map(|(d, j)| HistoryPoint::new(*d, j.value, baseline(j), j.flagged))
            .collect(),
    )
}

/// The reference monitor's baseline of position `i` of a series (`None` = no value that day):
/// positions before 4 are never judged; the baseline is the last `n` values before `i`
/// (observations, not days; earlier anomalies included), with the population standard
/// deviation; at least 3 values are needed.
pub fn reference_baseline(series: &[Option<f64>], i: usize, n: usize) -> Option<(f64, f64)> {
    if i < 4 {
        return None;
    }
    let prior: Vec<f64> = series[..i].iter().flatten().copied().collect();
    if prior.len() < 3 {
        return None;
    }
    let window = &prior[prior.len().saturating_sub(n.max(1))..];
    let mean = mean(window);
    let var = window.iter().map(|v| (mean - v).powi(2)).sum::<f64>() / window.len() as f64;
    Some((mean, var.sqrt()))
}

/// The reference monitor's score: infinities where it divides by zero (`z` is +∞ even for a
/// drop). Reports must write them as `null`.
pub fn reference_score(value: f64, mean: f64, std: f64) -> (f64, f64) {
    let z = if std == 0.0 {
        if value == mean {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (value - mean) / std
    };
    let pct = if mean == 0.0 {
        if value != 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    } else {
        (value - mean) / mean
    };
    (z, pct)
}

/// The probability that a standard normal exceeds `z` (Abramowitz and Stegun 7.1.26, error
/// below 1.5e-7).
pub fn normal_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

/// The probability that a Poisson count of mean `lambda` is at least `k` (1 for `k` ≤ 0),
/// summed exactly: for the rare counts (a handful of zero-revenue orders) where a normal
/// approximation calls ordinary days significant.
pub fn poisson_tail(k: f64, lambda: f64) -> f64 {
    if k <= 0.0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // P(X < k) = sum over i < k of e^-λ λ^i / i!, with the terms built up in order.
    let mut term = (-lambda).exp();
    let mut below = 0.0;
    let mut i = 0.0;
    while i < k.ceil() {
        below += term;
        i += 1.0;
        term *= lambda / i;
    }
    (1.0 - below).max(0.0)
}

/// Arithmetic mean, summed in order (as numpy does for short arrays).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The spread of values from their absolute deviations around the median, scaled to a normal
/// distribution's σ: the MAD (× 1.4826), no smaller than the 75th percentile of the deviations
/// (× 0.8694), so that half the window equal to the median (a MAD of 0) does not make every
/// other value unbounded; when three quarters are equal, the mean absolute deviation (× 1.2533).
fn robust_spread(deviations: &mut [f64]) -> f64 {
    deviations.sort_by(f64::total_cmp);
    let mad = 1.4826 * median(deviations);
    let upper = 0.8694 * quantile(deviations, 0.75);
    let spread = mad.max(upper);
    if spread > 0.0 {
        spread
    } else {
        1.2533 * mean(deviations)
    }
}

/// The `q` quantile of sorted values, interpolated linearly between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = q * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests;
