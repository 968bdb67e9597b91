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
    let orders: Vec<Vec<(&str, Vec<f64>)>> = mix
        .iter()
        .map(|day| day.iter().map(|(c, r)| (*c, vec![*r])).collect())
        .collect();
    order_warehouse(&orders)
}

/// Per day and channel, the revenue of each of its orders (last click), plus a first-click
/// row per order crediting `decoy`, which must be ignored.
fn order_warehouse(mix: &[Vec<(&str, Vec<f64>)>]) -> (String, String) {
    let mut orders = String::from("transaction_id,order_ts,revenue\n");
    let mut attribution = String::from("transaction_id,model,attributed_source\n");
    for (i, d) in days("2025-03-01", mix.len()).into_iter().enumerate() {
        for (channel, revenues) in &mix[i] {
            for (n, revenue) in revenues.iter().enumerate() {
                let id = format!("{i}-{channel}-{n}");
                orders.push_str(&format!("{id},{},{revenue}\n", noon(d)));
                attribution.push_str(&format!(
                    "{id},last_click,{channel}\n{id},first_click,decoy\n"
                ));
            }
        }
    }
    (orders, attribution)
}

/// Order values with a spread like real baskets (mean 600, CV 0.78).
const PRICES: [f64; 5] = [200.0, 300.0, 400.0, 600.0, 1500.0];

/// `n` orders cycling through [`PRICES`].
fn basket(n: usize) -> Vec<f64> {
    (0..n).map(|i| PRICES[i % PRICES.len()]).collect()
}

/// 40 orders a day: direct 15, google 10, meta 10, bing 5 (revenue shares 37.5%, 25%, 25%,
/// 12.5%), for `n - 1` days, then `today`.
fn busy(n: usize, today: Vec<(&'static str, Vec<f64>)>) -> Vec<Vec<(&'static str, Vec<f64>)>> {
    let normal = vec![
        ("direct", basket(15)),
        ("google", basket(10)),
        ("meta", basket(10)),
        ("bing", basket(5)),
    ];
    let mut mix = vec![normal; n - 1];
    mix.push(today);
    mix
}

fn evaluate_orders(
    rule: &Drift,
    mix: &[Vec<(&str, Vec<f64>)>],
) -> vigil_engine::runner::Evaluation {
    let (orders, attribution) = order_warehouse(mix);
    let expected = day("2025-03-01") + chrono::Days::new(mix.len() as u64 - 1);
    evaluate(
        &[("drift", rule)],
        &tables(),
        &[("orders", &orders), ("attribution", &attribution)],
        expected,
        Scope::Partition,
    )
}

fn steady(n: usize, today: Vec<(&'static str, f64)>) -> Vec<Vec<(&'static str, f64)>> {
    let mut mix = vec![vec![("direct", 500.0), ("google", 300.0), ("meta", 200.0)]; n - 1];
    mix.push(today);
    mix
}

/// The defaults judging revenue only: these fixtures have no sessions table.
fn revenue_only() -> DriftParams {
    DriftParams {
        weightings: vec![Weighting::Revenue],
        ..DriftParams::default()
    }
}

fn rule(params: DriftParams) -> Drift {
    Drift::new(params).unwrap()
}

/// The defaults without the significance gate: these fixtures have three orders a day.
fn ungated() -> DriftParams {
    DriftParams {
        significance_z: 0.0,
        ..revenue_only()
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
    assert_eq!(run(&rule(revenue_only()), &mix, Scope::Partition), []);
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
fn a_revenue_share_is_judged_with_the_spread_of_order_values() {
    // Google keeps its 10 orders but they are all the dearest basket: its revenue share goes
    // from 25% to 15000 / 33000 = 45.5%. Counted as orders (binomial, 40 orders) that is
    // 0.2045 / 0.0685 = 3.0 standard errors; as a ratio of sums it is not: with Q_c = 10 x
    // 1500^2 = 22.5e6 and Q = 39.9e6, the error at p = 0.25 is
    // sqrt(0.5625 x 22.5e6 + 0.0625 x 17.4e6) / 33000 = 0.1123, so z = 1.82.
    let today = vec![
        ("direct", basket(15)),
        ("google", vec![1500.0; 10]),
        ("meta", basket(10)),
        ("bing", basket(5)),
    ];
    let mix = busy(29, today);
    let default = rule(revenue_only());
    assert_eq!(summary(&evaluate_orders(&default, &mix)), []);
    let lenient = rule(DriftParams {
        significance_z: 1.5,
        ..revenue_only()
    });
    let eval = evaluate_orders(&lenient, &mix);
    assert_eq!(
        summary(&eval),
        [row(
            "anomaly:channel_share",
            "2025-03-29",
            15000.0 / 33000.0
        )]
    );
    let f = &eval.findings[0];
    assert_eq!(
        f.message,
        "Channel 'google' revenue share shifted: 45.5% vs baseline 25.0% (spread 11.2 points, \
         z=1.82, change=+81.82%)"
    );
    let c = f.context.as_ref().unwrap();
    let expected_error = (0.5625 * 22.5e6 + 0.0625 * 17.4e6_f64).sqrt() / 33000.0;
    assert!((c["spread_used"].as_f64().unwrap() - expected_error).abs() < 1e-12);
    assert_eq!(c["baseline_std"].as_f64().unwrap(), 0.0);
}

#[test]
fn a_baseline_that_varies_more_than_sampling_sets_the_spread() {
    // Google's share alternates 25% / 45.5% (as above) on ordinary days: its baseline spread
    // (0.104) exceeds the day's sampling error of an ordinary mix (0.089 at p = 0.35), so the
    // spread used is the baseline's, and a 25% day is 0.98 spreads away: no finding at z = 1.5
    // although it is 10 points off.
    let dear = vec![
        ("direct", basket(15)),
        ("google", vec![1500.0; 10]),
        ("meta", basket(10)),
        ("bing", basket(5)),
    ];
    let ordinary = busy(2, dear.clone()).remove(0);
    let mix: Vec<_> = (0..29)
        .map(|i| {
            if i % 2 == 1 {
                dear.clone()
            } else {
                ordinary.clone()
            }
        })
        .collect();
    let lenient = rule(DriftParams {
        significance_z: 1.5,
        abs_change_threshold: 0.05,
        ..revenue_only()
    });
    let eval = evaluate_orders(&lenient, &mix);
    assert_eq!(summary(&eval), []);
    let google = eval
        .observations
        .iter()
        .find(|o| o.metric == "anomaly:channel_share google")
        .unwrap();
    let (center, spread) = google.baseline.unwrap();
    let (low, high) = (0.25, 15000.0 / 33000.0);
    // 28 days, 14 of each: the mean and the sample standard deviation of two levels.
    assert!((center - (low + high) / 2.0).abs() < 1e-12, "{center}");
    let std = ((high - low) / 2.0) * (28.0_f64 / 27.0).sqrt();
    assert!((spread - std).abs() < 1e-12, "{spread} vs {std}");
}

#[test]
fn a_vanished_channel_is_flagged_when_having_none_is_not_chance() {
    // meta (25% of revenue, 10 of 40 orders) has no order today: the other 30 orders at its
    // share would have come with 10 of its own, and e^-10 is far below a 3-sigma tail.
    let today = vec![
        ("direct", basket(15)),
        ("google", basket(10)),
        ("bing", basket(5)),
    ];
    let eval = evaluate_orders(&rule(revenue_only()), &busy(29, today));
    assert_eq!(
        summary(&eval),
        [row("anomaly:channel_disappeared", "2025-03-29", 0.0)]
    );
    let f = &eval.findings[0];
    assert_eq!(
        f.message,
        "Channel 'meta' has no revenue on 2025-03-29 against a baseline share of 25.0%"
    );
    let c = f.context.as_ref().unwrap();
    assert_eq!(c["channel"], "meta");
    // bing (12.5%, 5 orders a day) missing is chance: 35 orders at its share bring 5, and
    // e^-5 = 0.7% is a likelier day than a 3-sigma one (0.13%).
    let today = vec![
        ("direct", basket(15)),
        ("google", basket(10)),
        ("meta", basket(10)),
    ];
    assert_eq!(
        summary(&evaluate_orders(&rule(revenue_only()), &busy(29, today))),
        []
    );
    // The reference cannot see a vanished channel: its own series simply ends.
    let mix = steady(10, vec![("direct", 500.0), ("google", 300.0)]);
    assert_eq!(run(&rule(revenue_only()), &mix, Scope::All), []);
}

#[test]
fn a_channel_that_appears_from_nothing_is_flagged_on_its_first_day() {
    let today = vec![
        ("direct", basket(15)),
        ("google", basket(10)),
        ("meta", basket(10)),
        ("bing", basket(5)),
        ("tiktok", basket(10)),
    ];
    let eval = evaluate_orders(&rule(revenue_only()), &busy(29, today));
    assert_eq!(
        summary(&eval),
        [row("anomaly:channel_appeared", "2025-03-29", 0.2)]
    );
    assert_eq!(
        eval.findings[0].message,
        "Channel 'tiktok' appeared on 2025-03-29 with 20.0% of the revenue (10 orders), after \
         nothing in the 28 days before"
    );
    // Two stray orders are not a channel.
    let today = vec![
        ("direct", basket(15)),
        ("google", basket(10)),
        ("meta", basket(10)),
        ("bing", basket(5)),
        ("tiktok", vec![1500.0, 1500.0]),
    ];
    assert_eq!(
        summary(&evaluate_orders(&rule(revenue_only()), &busy(29, today))),
        []
    );
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
        ..revenue_only()
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
        run(&rule(revenue_only()), &mix, Scope::All),
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
        ..revenue_only()
    })
    .unwrap_err();
    assert_eq!(
        err,
        ParamsError::at("abs_change_threshold", "is a share change between 0 and 1")
    );
}
