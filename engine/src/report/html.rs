//! `monitoring_report.html`: one self-contained page (no network fetch): the verdict, the
//! findings, every check of the partition (value, limits or baseline, result), the tables read,
//! and for each daily metric an inline SVG chart of its series on labelled axes (values, dates)
//! with the baseline band (center ± 3 spreads) or fixed limits, the baseline center, the flagged
//! days marked, a tooltip on every point and a legend.

use std::fmt::Write;

use chrono::NaiveDate;

use super::{check_rows, incident_note, numbers, verdict, RunInfo};
use crate::rule::{Observation, Severity, Unit};
use crate::runner::Evaluation;
use crate::state::incident::Status;
use crate::state::store::StoredPoint;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328;max-width:1200px}\
h1{margin:0 0 4px}\
.verdict{padding:14px 18px;border-radius:8px;color:#fff;margin-bottom:16px}\
.FAIL{background:#c62828}.WARN{background:#ef6c00}.PASS{background:#2e7d32}\
.meta{color:#57606a;font-size:14px;margin:2px 0}\
table{border-collapse:collapse;margin:8px 0 20px;font-size:14px;width:100%}\
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td:nth-child(3){white-space:nowrap}\
.sev{font-weight:600;border-radius:4px;padding:1px 6px;color:#fff;font-size:12px}\
.sev-ERROR{background:#c62828}.sev-WARN{background:#ef6c00}.sev-INFO{background:#1565c0}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}\
.chart{border:1px solid #d0d7de;border-radius:8px;padding:10px}\
.chart h3{font-size:14px;margin:0 0 4px}.chart p{font-size:12px;color:#57606a;margin:0 0 6px}\
.flagged{border-color:#c62828}\
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#57606a;margin-top:4px}\
.key{display:inline-flex;align-items:center;gap:5px}\
.num{text-align:right;white-space:nowrap}\
.checks tr.flagged td:last-child{color:#c62828;font-weight:600}\
.checks tr.skipped td:last-child,.checks tr.not-judged td:last-child{color:#ef6c00;font-weight:600}";

/// Renders the HTML report.
pub fn render(info: &RunInfo<'_>, eval: &Evaluation) -> String {
    let mut h = String::new();
    let verdict = verdict(eval);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>vigil {verdict}: partition {day}</title><style>{STYLE}</style></head><body>",
        day = eval.expected_date
    );
    let _ = write!(
        h,
        "<div class=\"verdict {verdict}\"><h1>{verdict}: partition {}</h1><div>{} ERROR · {} WARN · {} INFO</div></div>",
        eval.expected_date,
        eval.count(Severity::Error),
        eval.count(Severity::Warn),
        eval.count(Severity::Info)
    );
    let _ = write!(
        h,
        "<p class=\"meta\">Scope: {} · generated {} UTC · run <code>{}</code> · vigil {}</p>\
         <p class=\"meta\">Warehouse: <code>{}</code> · config: <code>{}</code></p>",
        eval.scope.as_str(),
        info.started.format("%Y-%m-%d %H:%M:%S"),
        escape(&info.run_id),
        env!("CARGO_PKG_VERSION"),
        escape(&info.warehouse),
        escape(&info.config.path.display().to_string()),
    );
    if let Some(Ok(path)) = &info.quarantine {
        let _ = write!(
            h,
            "<p class=\"meta\">Quarantined snapshot: <code>{}</code></p>",
            escape(&path.display().to_string())
        );
    }

    h.push_str("<h2>Findings</h2>");
    if eval.findings.is_empty() {
        h.push_str("<p>No issues detected.</p>");
    } else {
        h.push_str("<table><tr><th>severity</th><th>check</th><th>partition</th><th>message</th><th>value</th><th>threshold</th><th>incident</th></tr>");
        for f in &eval.findings {
            let _ = write!(
                h,
                "<tr><td><span class=\"sev sev-{sev}\">{sev}</span></td><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.check),
                f.subject.as_ref().map(|s| format!(" [{}]", escape(s))).unwrap_or_default(),
                f.partition_date.map(|d| d.to_string()).unwrap_or_default(),
                escape(&f.message),
                f.value.map(numbers::plain).unwrap_or_default(),
                f.threshold.map(numbers::plain).unwrap_or_default(),
                escape(&incident_note(info, f)),
                sev = f.severity
            );
        }
        h.push_str("</table>");
    }
    let resolved: Vec<_> = info
        .lifecycle
        .tracked
        .values()
        .filter(|t| t.status == Status::Resolved)
        .collect();
    if !resolved.is_empty() {
        h.push_str("<h2>Resolved since the last run</h2><table><tr><th>check</th><th>failing since</th><th>runs</th><th>last message</th></tr>");
        for t in resolved {
            let i = &t.incident;
            let _ = write!(
                h,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.check),
                i.subject
                    .as_ref()
                    .map(|s| format!(" [{}]", escape(s)))
                    .unwrap_or_default(),
                i.first_seen,
                i.runs,
                escape(&i.message)
            );
        }
        h.push_str("</table>");
    }
    for s in &info.lifecycle.expired {
        let _ = write!(
            h,
            "<p class=\"meta\">Silence of <code>{}</code> expired after {} ({}: {})</p>",
            escape(&s.check),
            s.until,
            escape(&s.created_by),
            escape(&s.reason)
        );
    }

    let rows = check_rows(eval);
    if !rows.is_empty() {
        let _ = write!(
            h,
            "<h2>Checks for {}</h2><table class=\"checks\"><tr><th>check</th><th>value</th><th>limits or baseline</th><th>z</th><th>change</th><th>result</th></tr>",
            eval.expected_date
        );
        for row in rows {
            let _ = write!(
                h,
                "<tr class=\"{}\"><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                row.outcome.label().replace(' ', "-"),
                escape(&row.name),
                escape(&row.value),
                escape(&row.against),
                row.z,
                row.change,
                row.outcome.label()
            );
        }
        h.push_str("</table>");
    }
    let charts: String = eval.observations.iter().map(chart).collect();
    if !charts.is_empty() {
        let _ = write!(
            h,
            "<h2>Daily metrics for {}</h2><div class=\"charts\">{charts}</div>",
            eval.expected_date
        );
    }
    if !info.judged.is_empty() {
        h.push_str("<h2>Judged values over the stored runs</h2><div class=\"charts\">");
        for o in &eval.observations {
            if let Some(stored) = info.judged.get(&o.metric) {
                h.push_str(&runs_chart(o, stored));
            }
        }
        h.push_str("</div>");
    }

    h.push_str("<h2>Rules</h2><table><tr><th>rule</th><th>origin</th></tr>");
    for rule in &info.config.rules {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(&rule.id),
            escape(&rule.origin.to_string())
        );
    }
    h.push_str("</table>");
    h.push_str("<h2>Tables</h2><table><tr><th>table</th><th>file</th><th>rows</th><th>days</th><th>first day</th><th>last day</th><th>unparsable dates</th></tr>");
    for scan in &eval.scans {
        let file = escape(&scan.path.display().to_string());
        match &scan.outcome {
            Ok(stats) => {
                let dates = stats.dates.as_ref();
                let span = dates.and_then(|d| d.span());
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td><code>{file}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&scan.table),
                    stats.rows,
                    dates.map(|d| d.rows_by_day.len().to_string()).unwrap_or_default(),
                    span.map(|s| s.0.to_string()).unwrap_or_default(),
                    span.map(|s| s.1.to_string()).unwrap_or_default(),
                    dates.map(|d| d.unparsable_total().to_string()).unwrap_or_default(),
                );
            }
            Err(problem) => {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td><code>{file}</code></td><td colspan=\"5\">{}</td></tr>",
                    escape(&scan.table),
                    escape(&format!("{problem:?}"))
                );
            }
        }
    }
    h.push_str("</table></body></html>\n");
    h
}

/// The legend entries a chart can have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Value,
    Band,
    Limits,
    Center,
    Flagged,
    Judged,
    Run,
}

impl Key {
    /// The entry: a small swatch drawn as in the chart, and its label.
    fn entry(self, label: &str) -> String {
        let swatch = match self {
            Key::Value => "<line x1=\"0\" y1=\"5\" x2=\"18\" y2=\"5\" stroke=\"#1f2328\" stroke-width=\"1.5\"/>",
            Key::Band => "<rect x=\"0\" y=\"0\" width=\"18\" height=\"10\" fill=\"#90caf9\" fill-opacity=\"0.6\"/>",
            Key::Limits => "<rect x=\"0\" y=\"0\" width=\"18\" height=\"10\" fill=\"#a5d6a7\" fill-opacity=\"0.6\"/>",
            Key::Center => "<line x1=\"0\" y1=\"5\" x2=\"18\" y2=\"5\" stroke=\"#1565c0\" stroke-dasharray=\"3 3\"/>",
            Key::Flagged => "<circle cx=\"9\" cy=\"5\" r=\"4\" fill=\"#c62828\"/>",
            Key::Judged => "<line x1=\"9\" y1=\"0\" x2=\"9\" y2=\"10\" stroke=\"#8c959f\" stroke-dasharray=\"2 2\"/>",
            Key::Run => "<circle cx=\"9\" cy=\"5\" r=\"3\" fill=\"#57606a\"/>",
        };
        format!(
            "<span class=\"key\"><svg width=\"18\" height=\"10\" aria-hidden=\"true\">{swatch}</svg>{}</span>",
            escape(label)
        )
    }
}

/// The z-score of a value against a baseline, `–` without one (or without spread).
fn point_z(value: f64, baseline: Option<(f64, f64)>) -> String {
    numbers::z(baseline.and_then(|(c, s)| (s > 0.0).then(|| (value - c) / s)))
}

/// One metric's chart (when it has at least two days): its series on a y axis of values and an
/// x axis of dates, the baseline band (center ± 3 spreads) and center line or the fixed limits,
/// the flagged days in red, the judged day marked, a tooltip on every point and a legend.
fn chart(o: &Observation) -> String {
    let points = &o.history;
    if points.len() < 2 {
        return String::new();
    }
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in points {
        lo = lo.min(p.value);
        hi = hi.max(p.value);
        if let Some((lower, upper)) = p.band() {
            // An open side of a fixed band (an infinite bound) does not stretch the chart.
            for edge in [lower, upper].into_iter().filter(|e| e.is_finite()) {
                lo = lo.min(edge);
                hi = hi.max(edge);
            }
        }
    }
    let Some(plot) = Plot::new(Plot::HEIGHT, points.len(), lo, hi, &o.unit) else {
        return String::new();
    };
    let (lo, hi) = (plot.lo, plot.hi);
    let (x, y) = (|i| plot.x(i), |v| plot.y(v));
    let days: Vec<NaiveDate> = points.iter().map(|p| p.day).collect();
    let mut svg = plot.open(&escape(&o.metric));
    svg.push_str(&plot.axes(&days, &o.unit));
    // The band (center ± 3 spreads, or fixed bounds clipped to the chart): upper edge left to
    // right, then lower edge back.
    let band: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.band().map(|(l, u)| (i, u.min(hi), l.max(lo))))
        .collect();
    let fixed = o.bounds.is_some();
    if band.len() > 1 {
        let upper = band
            .iter()
            .map(|(i, u, _)| format!("{:.1},{:.1}", x(*i), y(*u)));
        let lower = band
            .iter()
            .rev()
            .map(|(i, _, l)| format!("{:.1},{:.1}", x(*i), y(*l)));
        let polygon: Vec<String> = upper.chain(lower).collect();
        let _ = write!(
            svg,
            "<polygon class=\"band\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.35\"/>",
            polygon.join(" "),
            if fixed { "#a5d6a7" } else { "#90caf9" }
        );
    }
    let centers: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.baseline.map(|(c, _)| format!("{:.1},{:.1}", x(i), y(c))))
        .collect();
    if centers.len() > 1 {
        let _ = write!(svg, "<polyline class=\"baseline\" points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-dasharray=\"3 3\"/>", centers.join(" "));
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    let _ = write!(svg, "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"#1f2328\" stroke-width=\"1.5\"/>", line.join(" "));
    let last = points.len() - 1;
    let _ = write!(
        svg,
        "<line class=\"judged\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2:.1}\" stroke=\"#8c959f\" stroke-dasharray=\"2 2\"/>",
        x(last),
        Plot::TOP,
        plot.bottom()
    );
    for (i, p) in points.iter().enumerate() {
        let against = match (p.bounds, p.baseline) {
            (Some((lower, upper)), _) => numbers::limits(lower, upper, &o.unit),
            (None, Some((c, s))) => format!(
                "baseline {} · z {}",
                numbers::baseline(c, s, &o.unit),
                point_z(p.value, p.baseline)
            ),
            (None, None) => "no baseline".into(),
        };
        let tooltip = format!(
            "{}: {} · {against}{}",
            p.day,
            numbers::with_unit(p.value, &o.unit),
            if p.flagged { " · flagged" } else { "" }
        );
        let (class, r, fill) = if p.flagged {
            ("point flag", 4.5, "#c62828")
        } else {
            ("point", 3.0, "#1f2328")
        };
        let _ = write!(
            svg,
            "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{fill}\"><title>{}</title></circle>",
            x(i),
            y(p.value),
            escape(&tooltip)
        );
    }
    svg.push_str("</svg>");
    let mut legend = vec![Key::Value.entry("value")];
    if fixed {
        legend.push(Key::Limits.entry(&format!("allowed: {}", numbers::judged_against(o))));
    } else if band.len() > 1 {
        legend.push(Key::Band.entry("baseline band (center ± 3 spreads)"));
    }
    if centers.len() > 1 {
        legend.push(Key::Center.entry("baseline center"));
    }
    if points.iter().any(|p| p.flagged) {
        legend.push(Key::Flagged.entry("flagged day"));
    }
    legend.push(Key::Judged.entry(&format!("judged day {}", o.day)));
    let detail = format!(
        "value {} · {}{}",
        numbers::with_unit(o.value, &o.unit),
        numbers::judged_against(o),
        match (o.z, o.pct) {
            (None, None) => String::new(),
            (z, pct) => format!(" · z {} · change {}", numbers::z(z), numbers::change(pct)),
        }
    );
    format!(
        "<div class=\"chart{}\"><h3>{}{}</h3><p>{} · {} to {}</p>{svg}<div class=\"legend\">{}</div></div>",
        if o.flagged { " flagged" } else { "" },
        escape(&o.metric),
        if o.flagged { " — flagged" } else { "" },
        escape(&detail),
        points[0].day,
        o.day,
        legend.concat()
    )
}

/// A metric's value as each stored run judged it (one point per partition, the latest run of
/// each), then this run's, on axes of values and dates, with a tooltip per point and flagged
/// runs in red.
fn runs_chart(o: &Observation, stored: &[StoredPoint]) -> String {
    let mut points: Vec<StoredPoint> = stored
        .iter()
        .filter(|p| p.day != o.day && p.value.is_finite())
        .copied()
        .collect();
    if o.value.is_finite() {
        points.push(StoredPoint {
            day: o.day,
            value: o.value,
            flagged: o.flagged,
        });
    }
    points.sort_by_key(|p| p.day);
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.value), hi.max(p.value))
        });
    let Some(plot) = Plot::new(Plot::RUNS_HEIGHT, points.len(), lo, hi, &o.unit) else {
        return String::new();
    };
    let (x, y) = (|i| plot.x(i), |v| plot.y(v));
    let days: Vec<NaiveDate> = points.iter().map(|p| p.day).collect();
    let mut svg = plot.open(&format!("{} over runs", escape(&o.metric)));
    svg.push_str(&plot.axes(&days, &o.unit));
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"runs\" points=\"{}\" fill=\"none\" stroke=\"#57606a\"/>",
        line.join(" ")
    );
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            svg,
            "<circle class=\"point{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\"><title>run for {}: {}{}</title></circle>",
            if p.flagged { " flag" } else { "" },
            x(i),
            y(p.value),
            if p.flagged { 4.5 } else { 3.0 },
            if p.flagged { "#c62828" } else { "#57606a" },
            p.day,
            escape(&numbers::with_unit(p.value, &o.unit)),
            if p.flagged { " (flagged)" } else { "" }
        );
    }
    svg.push_str("</svg>");
    let mut legend = vec![Key::Run.entry("value the run judged")];
    if points.iter().any(|p| p.flagged) {
        legend.push(Key::Flagged.entry("flagged run"));
    }
    format!(
        "<div class=\"chart runs\"><h3>{}</h3><p>{} run(s), {} to {}</p>{svg}<div class=\"legend\">{}</div></div>",
        escape(&o.metric),
        points.len(),
        points
            .first()
            .map(|p| p.day.to_string())
            .unwrap_or_default(),
        o.day,
        legend.concat()
    )
}

/// Where point indexes and values land in a chart's SVG box, and its axes: values with
/// labelled ticks on the left, dates below.
struct Plot {
    height: f64,
    /// Gaps between points (at least 1).
    gaps: f64,
    /// The value axis: from `lo` to `hi` in steps of `step` (round numbers).
    lo: f64,
    hi: f64,
    step: f64,
}

impl Plot {
    const WIDTH: f64 = 480.0;
    /// Room for the value labels.
    const LEFT: f64 = 70.0;
    /// Room for half the last date label.
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 10.0;
    /// Room for the date labels.
    const BOTTOM: f64 = 28.0;
    /// Space between the axes and the first and last points (the first date label stays
    /// clear of the lowest value label).
    const INSET: f64 = 16.0;
    /// Height of a metric's chart.
    const HEIGHT: f64 = 230.0;
    /// Height of a chart over runs.
    const RUNS_HEIGHT: f64 = 190.0;
    /// Most date labels on the x axis.
    const DATE_LABELS: usize = 6;

    /// A box `height` high for `points` points whose values span `lo..=hi`, widened to round
    /// ticks (a flat series gets room around it); `None` when the span is not finite.
    fn new(height: f64, points: usize, lo: f64, hi: f64, unit: &Unit) -> Option<Plot> {
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        let (lo, hi) = if hi - lo > f64::EPSILON * lo.abs().max(1.0) {
            (lo, hi)
        } else {
            let room = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - room, hi + room)
        };
        let raw = (hi - lo) / 4.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = match raw / magnitude {
            n if n <= 1.0 => magnitude,
            n if n <= 2.0 => 2.0 * magnitude,
            n if n <= 5.0 => 5.0 * magnitude,
            _ => 10.0 * magnitude,
        };
        // Counts tick at whole numbers.
        let step = match unit {
            Unit::Count { .. } => step.max(1.0),
            _ => step,
        };
        if !step.is_finite() || step <= 0.0 {
            return None;
        }
        let lo = (lo / step).floor() * step;
        // At least three ticks (whole-number steps can span a small range in one).
        let hi = ((hi / step).ceil() * step).max(lo + 2.0 * step);
        Some(Plot {
            height,
            gaps: points.max(2) as f64 - 1.0,
            lo,
            hi,
            step,
        })
    }

    /// The y of the x axis.
    fn bottom(&self) -> f64 {
        self.height - Self::BOTTOM
    }

    /// The x of the `i`-th point.
    fn x(&self, i: usize) -> f64 {
        let left = Self::LEFT + Self::INSET;
        let right = Self::WIDTH - Self::RIGHT - Self::INSET;
        left + (right - left) * i as f64 / self.gaps
    }

    /// The y of a value.
    fn y(&self, v: f64) -> f64 {
        Self::TOP + (self.bottom() - Self::TOP) * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }

    /// The opening `<svg>` tag, with its (escaped) label.
    fn open(&self, label: &str) -> String {
        format!(
            "<svg class=\"plot\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" aria-label=\"{label}\">",
            Self::WIDTH,
            self.height
        )
    }

    /// The axes: a grid line and a label per value tick, and the dates of `days` (the points'
    /// days, in order) under the x axis, at most [`Self::DATE_LABELS`] of them, evenly spaced
    /// back from the last.
    fn axes(&self, days: &[NaiveDate], unit: &Unit) -> String {
        let mut out = String::from("<g class=\"axis y-axis\" font-size=\"11\" fill=\"#57606a\">");
        let ticks = ((self.hi - self.lo) / self.step).round() as usize;
        for k in 0..=ticks {
            let v = self.lo + self.step * k as f64;
            let y = self.y(v);
            let _ = write!(
                out,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                Self::LEFT,
                Self::WIDTH - Self::RIGHT,
                Self::LEFT - 6.0,
                y + 4.0,
                escape(&numbers::tick(v, self.step, unit))
            );
        }
        let _ = write!(
            out,
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2:.1}\" stroke=\"#8c959f\"/></g>\
             <g class=\"axis x-axis\" font-size=\"11\" fill=\"#57606a\">\
             <line x1=\"{0}\" x2=\"{3}\" y1=\"{2:.1}\" y2=\"{2:.1}\" stroke=\"#8c959f\"/>",
            Self::LEFT,
            Self::TOP,
            self.bottom(),
            Self::WIDTH - Self::RIGHT
        );
        let every = days.len().div_ceil(Self::DATE_LABELS).max(1);
        let last = days.len().saturating_sub(1);
        for (i, day) in days.iter().enumerate().rev().step_by(every) {
            let _ = write!(
                out,
                "<text class=\"date\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                self.x(i),
                self.bottom() + 16.0,
                day.format(if i == last { "%Y-%m-%d" } else { "%m-%d" })
            );
        }
        out.push_str("</g>");
        out
    }
}

/// Escapes text for HTML (entities, and hidden characters as visible escapes).
pub fn escape(s: &str) -> String {
    super::text::html(s)
}
