//! Numbers as people read them, by what they measure ([`Unit`]): counts without decimals and
//! with thousands separated (`1,200`), shares as percentages (`5.0 %`), money with 2 decimals
//! (`22,885.00`), limits with their unit (`min 1,200 sessions/day`, `max 5.0 %`). The texts are
//! plain: each report escapes them for its format (a plugin names its own units).

use crate::rule::{Observation, Unit};

/// `v` with `decimals` decimals and the thousands of its integer part separated by commas.
fn grouped(v: f64, decimals: usize) -> String {
    let text = format!("{:.decimals$}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    for (i, digit) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    // No "-0": a negative value that rounds to zero is written as zero.
    if v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

/// A value without its unit's name: `1,187`, `63.5 %`, `22,885.00`, `0.6875`; `–` for NaN (no
/// value) and `∞` for infinities.
pub fn value(v: f64, unit: &Unit) -> String {
    if v.is_nan() {
        return "–".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "-∞" }.into();
    }
    match unit {
        Unit::Count { .. } => grouped(v, 0),
        Unit::Money => grouped(v, 2),
        Unit::Share => {
            let pct = v * 100.0;
            let decimals = if pct == 0.0 || pct.abs() >= 1.0 { 1 } else { 2 };
            format!("{} %", grouped(pct, decimals))
        }
        _ => plain(v),
    }
}

/// A number of unknown kind: integers and values of 100 or more without decimals, others with
/// 2 (from 1) or 4 decimals.
pub fn plain(v: f64) -> String {
    match v.abs() {
        a if a.is_nan() => "–".into(),
        a if a.is_infinite() => if v > 0.0 { "∞" } else { "-∞" }.into(),
        a if a >= 100.0 || v.fract() == 0.0 => grouped(v, 0),
        a if a >= 1.0 => grouped(v, 2),
        _ => grouped(v, 4),
    }
}

/// A value with its unit's name: `1,187 sessions/day`, `63.5 %`.
pub fn with_unit(v: f64, unit: &Unit) -> String {
    match unit {
        Unit::Count { of } if !of.is_empty() && !v.is_nan() => format!("{} {of}", value(v, unit)),
        _ => value(v, unit),
    }
}

/// Fixed limits: `min 1,200 sessions/day`, `max 5.0 %`, `exactly 0 days behind`,
/// `1 to 10 orders`, or `none` when both sides are open.
pub fn limits(lower: f64, upper: f64, unit: &Unit) -> String {
    match (lower.is_finite(), upper.is_finite()) {
        (true, false) => format!("min {}", with_unit(lower, unit)),
        (false, true) => format!("max {}", with_unit(upper, unit)),
        (true, true) if lower == upper => format!("exactly {}", with_unit(lower, unit)),
        (true, true) => format!("{} to {}", value(lower, unit), with_unit(upper, unit)),
        (false, false) => "none".into(),
    }
}

/// A baseline's center and spread: `20,202.00 ± 5,394.07`.
pub fn baseline(center: f64, spread: f64, unit: &Unit) -> String {
    format!("{} ± {}", value(center, unit), with_unit(spread, unit))
}

/// What an observation was held against: `min 1,000 sessions/day`, `baseline 976.11 ± 167.33`,
/// or `no baseline (too little history)`.
pub fn judged_against(o: &Observation) -> String {
    match (o.bounds, o.baseline) {
        (Some((lower, upper)), _) => limits(lower, upper, &o.unit),
        (None, Some((c, s))) => format!("baseline {}", baseline(c, s, &o.unit)),
        (None, None) => "no baseline (too little history)".into(),
    }
}

/// A z-score with 2 decimals, `–` when there is none.
pub fn z(z: Option<f64>) -> String {
    z.map_or("–".into(), |z| format!("{z:.2}"))
}

/// A change from the baseline as a signed percentage, `–` when there is none.
pub fn change(pct: Option<f64>) -> String {
    pct.map_or("–".into(), |p| format!("{:+.1}%", p * 100.0))
}

/// The label of an axis tick at `v` when ticks are `step` apart: as many decimals as the step
/// needs, with the unit's sign (`%`) but not its name.
pub fn tick(v: f64, step: f64, unit: &Unit) -> String {
    let needed = |step: f64| (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    match unit {
        Unit::Share => format!("{} %", grouped(v * 100.0, needed(step * 100.0))),
        _ => grouped(v, needed(step)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_and_grouped_shares_are_percentages_money_has_cents() {
        let sessions = Unit::count("sessions/day");
        assert_eq!(value(1234567.4, &sessions), "1,234,567");
        assert_eq!(with_unit(1200.0, &sessions), "1,200 sessions/day");
        assert_eq!(value(999.0, &sessions), "999");
        assert_eq!(value(0.6347, &Unit::Share), "63.5 %");
        assert_eq!(value(0.0045, &Unit::Share), "0.45 %");
        assert_eq!(value(0.0, &Unit::Share), "0.0 %");
        assert_eq!(value(22885.0, &Unit::Money), "22,885.00");
        assert_eq!(value(-1089.755, &Unit::Money), "-1,089.76");
        assert_eq!(value(-0.001, &Unit::Money), "0.00");
        assert_eq!(value(f64::NAN, &Unit::Money), "–");
        assert_eq!(value(0.6875, &Unit::Number), "0.6875");
        assert_eq!(value(12345.0, &Unit::Number), "12,345");
    }

    #[test]
    fn limits_name_their_side_and_unit() {
        let sessions = Unit::count("sessions/day");
        assert_eq!(
            limits(1200.0, f64::INFINITY, &sessions),
            "min 1,200 sessions/day"
        );
        assert_eq!(limits(f64::NEG_INFINITY, 0.05, &Unit::Share), "max 5.0 %");
        assert_eq!(
            limits(0.0, 0.0, &Unit::count("days behind")),
            "exactly 0 days behind"
        );
        assert_eq!(limits(1.0, 10.0, &Unit::count("orders")), "1 to 10 orders");
        assert_eq!(
            limits(f64::NEG_INFINITY, f64::INFINITY, &Unit::Number),
            "none"
        );
    }

    #[test]
    fn ticks_have_the_decimals_their_step_needs() {
        assert_eq!(tick(1500.0, 500.0, &Unit::count("sessions")), "1,500");
        assert_eq!(tick(0.25, 0.05, &Unit::Share), "25 %");
        assert_eq!(tick(0.025, 0.005, &Unit::Share), "2.5 %");
        assert_eq!(tick(0.3, 0.1, &Unit::Number), "0.3");
        assert_eq!(tick(20000.0, 5000.0, &Unit::Money), "20,000");
    }
}
