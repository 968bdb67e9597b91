use std::collections::BTreeMap;

use vigil_engine::config::{attribution_lookup, TableConfig};
use vigil_engine::testing::{day, days, evaluate, noon, summary, table};

use super::*;

fn tables() -> BTreeMap<String, TableConfig> {
    BTreeMap::from([
        ("orders".to_string(), table("o.csv", Some("order_ts"))),
        (
            "attribution".to_string(),
            TableConfig {
                lookups: vec![attribution_lookup("order_ts")],
                ..table("a.csv", Some("orders.order_ts"))
            },
        ),
    ])
}

/// Per day, the last-click revenue of each channel (one order per channel), plus a
/// first-click row crediting `decoy` with a large amount that must be ignored.
fn warehouse(mix: &[Vec<(&str, f64)>]) -> (String, String) {
    let mut orders = String::from("transaction_id,order_ts,revenue\n");
    let mut attribution = String::from("transaction_id,model,attributed_source\n");
    for (i, d) in days("2025-03-01", mix.len()).into_iter().enumerate() {
        for (channel, revenue) in &mix[i] {
            let id = format!("{i}-{channel}");
            orders.push_str(&format!("{id},{},{revenue}\n", noon(d)));
            attribution.push_str(&format!(
                "{id},last_click,{channel}\n{id},first_click,decoy\n"
            ));
        }
    }
    (orders, attribution)
}

fn steady(n: usize, today: Vec<(&'static str, f64)>) -> Vec<Vec<(&'static str, f64)>> {
    let mut mix = vec![vec![("direct", 500.0), ("google", 300.0), ("meta", 200.0)]; n - 1];
    mix.push(today);
    mix
}

fn rule(params: DriftParams) -> Drift {
    Drift::new(params).unwrap()
}

/// The defaults without the significance gate: these fixtures have three orders a day.
fn ungated() -> DriftParams {
    DriftParams {
        significance_z: 0.0,
        ..DriftParams::default()
    }
}

fn run(
    rule: &Drift,
    mix: &[Vec<(&str, f64)>],
    scope: Scope,
) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    let (orders, attribution) = warehouse(mix);
    let expected = day("2025-03-01") + chrono::Days::new(mix.len() as u64 - 1);
    summary(&evaluate(
        &[("drift", rule)],
        &tables(),
        &[("orders", &orders), ("attribution", &attribution)],
        expected,
        scope,
    ))
}

fn row(check: &str, date: &str, value: f64) -> (String, String, Option<NaiveDate>, Option<f64>) {
    ("WARN".into(), check.into(), Some(day(date)), Some(value))
}

#[test]
fn a_stable_mix_passes_and_first_click_rows_are_ignored() {
    let mix = steady(
        10,
        vec![("direct", 500.0), ("google", 300.0), ("meta", 200.0)],
    );
    assert_eq!(
        run(&rule(DriftParams::default()), &mix, Scope::Partition),
        []
    );
}

#[test]
fn a_shift_flags_the_channels_that_moved() {
    let mix = steady(
        10,
        vec![("direct", 800.0), ("google", 100.0), ("meta", 100.0)],
    );
    assert_eq!(
        run(&rule(ungated()), &mix, Scope::Partition),
        [
            row("anomaly:channel_share", "2025-03-10", 0.8),
            row("anomaly:channel_share", "2025-03-10", 0.1),
        ]
    );
}

#[test]
fn a_shift_must_be_significant_for_the_day_s_order_count() {
    // Three orders a day: direct moving from 50% to 80% of revenue is 1.04 standard errors.
    let mix = steady(
        10,
        vec![("direct", 800.0), ("google", 100.0), ("meta", 100.0)],
    );
    assert_eq!(
        run(&rule(DriftParams::default()), &mix, Scope::Partition),
        []
    );
    // The reference-compatible scope has no such gate.
    assert_eq!(
        run(&rule(DriftParams::default()), &mix, Scope::All).len(),
        2
    );
    let lenient = DriftParams {
        significance_z: 1.0,
        ..DriftParams::default()
    };
    // At one standard error direct's move passes (0.3 vs 0.29) and google's does not (0.2 vs 0.26).
    assert_eq!(
        run(&rule(lenient), &mix, Scope::Partition),
        [row("anomaly:channel_share", "2025-03-10", 0.8)]
    );
}

#[test]
fn a_vanished_channel_is_flagged_even_below_the_change_threshold() {
    // meta (20%) disappears; direct and google absorb it (62.5% / 37.5%: +12.5 and +7.5 points).
    let mix = steady(10, vec![("direct", 500.0), ("google", 300.0)]);
    let (orders, attribution) = warehouse(&mix);
    let eval = evaluate(
        &[("drift", &rule(DriftParams::default()))],
        &tables(),
        &[("orders", &orders), ("attribution", &attribution)],
        day("2025-03-10"),
        Scope::Partition,
    );
    assert_eq!(
        summary(&eval),
        [row("anomaly:channel_disappeared", "2025-03-10", 0.0)]
    );
    let f = &eval.findings[0];
    assert_eq!(
        f.message,
        "Channel 'meta' has no revenue on 2025-03-10 against a baseline share of 20.0%"
    );
    let c = f.context.as_ref().unwrap();
    assert_eq!(c["channel"], "meta");
    assert!((c["baseline_share"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    // The reference cannot see it: the channel's own series simply ends.
    assert_eq!(run(&rule(DriftParams::default()), &mix, Scope::All), []);
}

#[test]
fn only_the_top_channels_are_monitored() {
    let mix = steady(
        10,
        vec![("direct", 800.0), ("google", 100.0), ("meta", 100.0)],
    );
    let top_one = DriftParams {
        top_channels: 1,
        ..ungated()
    };
    assert_eq!(
        run(&rule(top_one), &mix, Scope::Partition),
        [row("anomaly:channel_share", "2025-03-10", 0.8)]
    );
}

#[test]
fn session_weighting_uses_the_sessions_table() {
    let mut sessions = String::from("session_id,session_start,marketing_source\n");
    for (i, d) in days("2025-03-01", 10).into_iter().enumerate() {
        let direct = if i == 9 { 90 } else { 40 };
        for s in 0..100 {
            let channel = if s < direct { "direct" } else { "google" };
            sessions.push_str(&format!("{i}-{s},{},{channel}\n", noon(d)));
        }
    }
    let params = DriftParams {
        weightings: vec![Weighting::Sessions],
        ..DriftParams::default()
    };
    let tables = BTreeMap::from([(
        "sessions".to_string(),
        table("s.csv", Some("session_start")),
    )]);
    let eval = evaluate(
        &[("drift", &rule(params))],
        &tables,
        &[("sessions", &sessions)],
        day("2025-03-10"),
        Scope::Partition,
    );
    assert_eq!(
        summary(&eval),
        // google is the larger channel over the window, so it comes first.
        [
            row("anomaly:channel_session_share", "2025-03-10", 0.1),
            row("anomaly:channel_session_share", "2025-03-10", 0.9),
        ]
    );
}

#[test]
fn scope_all_uses_the_reference_baseline_of_each_channel() {
    // Day 6 moves direct from 50% to 80%: judged from the fifth observation on, as the reference.
    let mut mix = steady(
        8,
        vec![("direct", 500.0), ("google", 300.0), ("meta", 200.0)],
    );
    mix[5] = vec![("direct", 800.0), ("google", 100.0), ("meta", 100.0)];
    assert_eq!(
        run(&rule(DriftParams::default()), &mix, Scope::All),
        [
            row("anomaly:channel_share", "2025-03-06", 0.8),
            row("anomaly:channel_share", "2025-03-06", 0.1),
            // Day 7 is back to normal, but its 7-observation baseline now holds day 6.
        ]
    );
}

#[test]
fn invalid_params_are_refused() {
    let err = Drift::new(DriftParams {
        abs_change_threshold: 1.5,
        ..DriftParams::default()
    })
    .unwrap_err();
    assert_eq!(
        err,
        ParamsError::at("abs_change_threshold", "is a share change between 0 and 1")
    );
}
