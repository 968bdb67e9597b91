//! `monitoring_report.html`: one self-contained page (no network fetch): the verdict, the
//! findings, the tables read, and for each judged daily metric an inline SVG chart of its
//! series with the baseline band (center ± 3 spreads) and the flagged days marked.

use std::fmt::Write;

use super::{incident_note, verdict, RunInfo};
use crate::rule::{Observation, Severity};
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
.flagged{border-color:#c62828}";

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
                f.value.map(number).unwrap_or_default(),
                f.threshold.map(number).unwrap_or_default(),
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

    if !eval.observations.is_empty() {
        let _ = write!(
            h,
            "<h2>Daily metrics for {}</h2><div class=\"charts\">",
            eval.expected_date
        );
        for o in &eval.observations {
            h.push_str(&chart(o));
        }
        h.push_str("</div>");
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

/// One metric's chart: its series, the baseline band, the flagged days and the judged day.
fn chart(o: &Observation) -> String {
    let points = &o.history;
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
    let Some(plot) = Plot::new(130.0, points.len(), lo, hi) else {
        return String::new();
    };
    let (lo, hi) = (plot.lo, plot.hi);
    let (x, y) = (|i| plot.x(i), |v| plot.y(v));
    let mut svg = plot.open(&escape(&o.metric));
    // The band (center ± 3 spreads, or fixed bounds clipped to the chart): upper edge left to
    // right, then lower edge back.
    let band: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.band().map(|(l, u)| (i, u.min(hi), l.max(lo))))
        .collect();
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
            "<polygon class=\"band\" points=\"{}\" fill=\"#90caf9\" fill-opacity=\"0.35\"/>",
            polygon.join(" ")
        );
        let centers: Vec<String> = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.baseline.map(|(c, _)| format!("{:.1},{:.1}", x(i), y(c))))
            .collect();
        let _ = write!(svg, "<polyline class=\"baseline\" points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-dasharray=\"3 3\"/>", centers.join(" "));
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    let _ = write!(svg, "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"#1f2328\" stroke-width=\"1.5\"/>", line.join(" "));
    let last = points.len().saturating_sub(1);
    let _ = write!(svg, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{1}\" stroke=\"#8c959f\" stroke-dasharray=\"2 2\"/>", x(last), plot.height);
    for (i, p) in points.iter().enumerate().filter(|(_, p)| p.flagged) {
        let _ = write!(svg, "<circle class=\"flag\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#c62828\"><title>{}: {}</title></circle>", x(i), y(p.value), p.day, number(p.value));
    }
    svg.push_str("</svg>");
    let detail = match (o.baseline, o.bounds) {
        (_, Some((lower, upper))) => format!(
            "value {} · allowed {} to {}",
            number(o.value),
            number(lower),
            number(upper)
        ),
        (Some((c, s)), None) => format!(
            "value {} · baseline {} ± {} · z {} · change {}",
            number(o.value),
            number(c),
            number(s),
            o.z.map_or("∞".into(), |z| format!("{z:.2}")),
            o.pct.map_or("∞".into(), |p| format!("{:+.1}%", p * 100.0))
        ),
        (None, None) => format!(
            "value {} · too little history for a baseline",
            number(o.value)
        ),
    };
    format!(
        "<div class=\"chart{}\"><h3>{}{}</h3><p>{detail} · {} to {}</p>{svg}</div>",
        if o.flagged { " flagged" } else { "" },
        escape(&o.metric),
        if o.flagged { " — flagged" } else { "" },
        points
            .first()
            .map(|p| p.day.to_string())
            .unwrap_or_default(),
        o.day
    )
}

/// A metric's value as each stored run judged it (one point per partition, the latest run of
/// each), then this run's, with a tooltip per point and flagged runs in red.
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
    let Some(plot) = Plot::new(100.0, points.len(), lo, hi) else {
        return String::new();
    };
    let (x, y) = (|i| plot.x(i), |v| plot.y(v));
    let mut svg = plot.open(&format!("{} over runs", escape(&o.metric)));
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
            "<circle class=\"run\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>run for {}: {}{}</title></circle>",
            x(i),
            y(p.value),
            if p.flagged { "#c62828" } else { "#57606a" },
            p.day,
            number(p.value),
            if p.flagged { " (flagged)" } else { "" }
        );
    }
    svg.push_str("</svg>");
    format!(
        "<div class=\"chart\"><h3>{}</h3><p>{} run(s), {} to {} · from {} to {}</p>{svg}</div>",
        escape(&o.metric),
        points.len(),
        points
            .first()
            .map(|p| p.day.to_string())
            .unwrap_or_default(),
        o.day,
        number(plot.lo),
        number(plot.hi)
    )
}

/// Where point indexes and values land in a chart's SVG box (360 wide, 8 of padding).
struct Plot {
    height: f64,
    /// Gaps between points (at least 1).
    gaps: f64,
    lo: f64,
    hi: f64,
}

impl Plot {
    const WIDTH: f64 = 360.0;
    const PAD: f64 = 8.0;

    /// A box `height` high for `points` points whose values span `lo..=hi` (a flat series gets
    /// a range of 1); `None` when the span is not finite (no finite value).
    fn new(height: f64, points: usize, lo: f64, hi: f64) -> Option<Plot> {
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        Some(Plot {
            height,
            gaps: points.max(2) as f64 - 1.0,
            lo,
            hi: if (hi - lo).abs() < f64::EPSILON {
                lo + 1.0
            } else {
                hi
            },
        })
    }

    /// The x of the `i`-th point.
    fn x(&self, i: usize) -> f64 {
        Self::PAD + (Self::WIDTH - 2.0 * Self::PAD) * i as f64 / self.gaps
    }

    /// The y of a value.
    fn y(&self, v: f64) -> f64 {
        Self::PAD + (self.height - 2.0 * Self::PAD) * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }

    /// The opening `<svg>` tag, with its (escaped) label.
    fn open(&self, label: &str) -> String {
        format!(
            "<svg viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" aria-label=\"{label}\">",
            Self::WIDTH,
            self.height
        )
    }
}

/// A number as people read it.
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "-∞" }.into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() < 1.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.2}")
    }
}

/// Escapes text for HTML (entities, and hidden characters as visible escapes).
pub fn escape(s: &str) -> String {
    super::text::html(s)
}
