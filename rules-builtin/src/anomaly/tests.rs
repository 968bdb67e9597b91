use std::collections::BTreeMap;

use vigil_engine::config::TableConfig;
use vigil_engine::runner::Evaluation;
use vigil_engine::testing::{day, days, evaluate, noon, summary, table};

use super::*;
use serde_json::Value;

fn tables() -> BTreeMap<String, TableConfig> {
    BTreeMap::from([
        (
            "sessions".to_string(),
            table("s.csv", Some("session_start")),
        ),
        ("orders".to_string(), table("o.csv", Some("order_ts"))),
    ])
}

/// Ten days from 03-01: 1000 sessions a day; `orders[i]` orders of `revenue[i]` each; the first
/// `orders[i]` sessions of a day have a purchase.
fn warehouse(orders: &[usize], revenue: &[f64]) -> (String, String) {
    let mut sessions = String::from("session_id,session_start,purchases\n");
    let mut order_rows = String::from("transaction_id,order_ts,revenue\n");
    for (i, d) in days("2025-03-01", orders.len()).into_iter().enumerate() {
        for s in 0..1000 {
            let purchases = usize::from(s < orders[i]);
            sessions.push_str(&format!("s{i}-{s},{},{purchases}\n", noon(d)));
        }
        for o in 0..orders[i] {
            order_rows.push_str(&format!("o{i}-{o},{},{}\n", noon(d), revenue[i]));
        }
    }
    (sessions, order_rows)
}

const ORDERS: [usize; 10] = [100, 110, 90, 100, 120, 100, 110, 90, 100, 100];
const PRICE: [f64; 10] = [100.0; 10];

/// Evaluates `rule` on the last day of a warehouse built from sessions and orders text.
fn evaluate_last_day(
    rule: &Anomaly,
    sessions: &str,
    order_rows: &str,
    days: usize,
    scope: Scope,
) -> Evaluation {
    let expected = day("2025-03-01") + chrono::Days::new(days as u64 - 1);
    let data = [("sessions", sessions), ("orders", order_rows)];
    evaluate(&[("anomaly", rule)], &tables(), &data, expected, scope)
}

fn run(
    rule: &Anomaly,
    orders: &[usize],
    revenue: &[f64],
    scope: Scope,
) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    let (sessions, order_rows) = warehouse(orders, revenue);
    summary(&evaluate_last_day(
        rule,
        &sessions,
        &order_rows,
        orders.len(),
        scope,
    ))
}

fn rule() -> Anomaly {
    Anomaly::new(AnomalyParams::default()).unwrap()
}

fn row(
    sev: &str,
    check: &str,
    date: &str,
    value: f64,
) -> (String, String, Option<NaiveDate>, Option<f64>) {
    (sev.into(), check.into(), Some(day(date)), Some(value))
}

#[test]
fn a_normal_day_passes() {
    assert_eq!(run(&rule(), &ORDERS, &PRICE, Scope::Partition), []);
}

#[test]
fn an_order_drop_is_an_error_on_orders_revenue_and_conversion() {
    let mut orders = ORDERS;
    orders[9] = 30;
    assert_eq!(
        run(&rule(), &orders, &PRICE, Scope::Partition),
        [
            row("ERROR", "anomaly:conversion_rate", "2025-03-10", 0.03),
            row("ERROR", "anomaly:orders", "2025-03-10", 30.0),
            row("ERROR", "anomaly:revenue", "2025-03-10", 3000.0),
        ]
    );
}

#[test]
fn a_spike_has_its_own_severity_and_can_be_off() {
    let mut price = PRICE;
    price[9] = 170.0;
    assert_eq!(
        run(&rule(), &ORDERS, &price, Scope::Partition),
        [
            row("WARN", "anomaly:aov", "2025-03-10", 170.0),
            row("WARN", "anomaly:revenue", "2025-03-10", 17000.0)
        ]
    );
    // Doubled or more is an ERROR whatever the direction's level...
    price[9] = 250.0;
    assert_eq!(
        run(&rule(), &ORDERS, &price, Scope::Partition),
        [
            row("ERROR", "anomaly:aov", "2025-03-10", 250.0),
            row("ERROR", "anomaly:revenue", "2025-03-10", 25000.0)
        ]
    );
    // ...unless turned off, and never in the reference-compatible scope.
    let levels_only = Anomaly::new(AnomalyParams {
        error_beyond_factor: None,
        ..AnomalyParams::default()
    })
    .unwrap();
    assert_eq!(
        run(&levels_only, &ORDERS, &price, Scope::Partition),
        [
            row("WARN", "anomaly:aov", "2025-03-10", 250.0),
            row("WARN", "anomaly:revenue", "2025-03-10", 25000.0)
        ]
    );
    assert!(Anomaly::new(AnomalyParams {
        error_beyond_factor: Some(0.5),
        ..AnomalyParams::default()
    })
    .is_err());
    let mut quiet = AnomalyParams::default();
    quiet.metrics.insert(
        MetricName::Revenue,
        DirectionLevels {
            drop: Level::Error,
            spike: Level::Off,
        },
    );
    quiet.metrics.remove(&MetricName::Aov);
    assert_eq!(
        run(
            &Anomaly::new(quiet).unwrap(),
            &ORDERS,
            &price,
            Scope::Partition
        ),
        []
    );
}

#[test]
fn the_finding_explains_its_baseline() {
    let mut orders = ORDERS;
    orders[9] = 30;
    let (sessions, order_rows) = warehouse(&orders, &PRICE);
    let eval = evaluate_last_day(&rule(), &sessions, &order_rows, 10, Scope::Partition);
    let f = eval
        .findings
        .iter()
        .find(|f| f.check == "anomaly:orders")
        .unwrap();
    let c = f.context.as_ref().unwrap();
    let mean = 920.0 / 9.0;
    assert!((c["baseline_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert_eq!(c["baseline_points"], 9);
    assert_eq!(c["direction"], "drop");
    assert_eq!(c["baseline_window"], json!(["2025-02-10", "2025-03-09"]));
    assert!((c["pct_change"].as_f64().unwrap() - (30.0 - mean) / mean).abs() < 1e-12);
    assert!((c["noise_floor"].as_f64().unwrap() - mean.sqrt()).abs() < 1e-12);
    assert_eq!(f.threshold, Some(3.0));
    assert!(
        f.message
            .starts_with("orders 30.00 is a drop against its baseline (mean 102.22"),
        "{}",
        f.message
    );
}

#[test]
fn too_little_history_is_not_judged_and_says_so() {
    let orders = [100, 100, 100, 10];
    let (sessions, order_rows) = warehouse(&orders, &[100.0; 4]);
    let eval = evaluate_last_day(&rule(), &sessions, &order_rows, 4, Scope::Partition);
    assert_eq!(
        summary(&eval),
        [(
            "WARN".to_string(),
            "anomaly:skipped".to_string(),
            None,
            None
        )]
    );
    assert_eq!(
        eval.findings[0].message,
        "Checks `anomaly:sessions`, `anomaly:orders`, `anomaly:revenue`, `anomaly:aov`, \
         `anomaly:conversion_rate` skipped: too little history for a baseline: 3 usable day(s) in the \
         window, 7 needed"
    );
}

#[test]
fn a_flat_baseline_gives_no_infinity() {
    // Constant AOV of 100, then 150: zero spread, so z is unbounded (null in the context) and
    // the percent gate (50% >= 30%) decides.
    let mut price = PRICE;
    price[9] = 150.0;
    let (sessions, order_rows) = warehouse(&ORDERS, &price);
    let eval = evaluate_last_day(&rule(), &sessions, &order_rows, 10, Scope::Partition);
    let aov = eval
        .findings
        .iter()
        .find(|f| f.check == "anomaly:aov")
        .unwrap();
    let c = aov.context.as_ref().unwrap();
    assert_eq!(
        (c["baseline_std"].as_f64(), c["z"].clone()),
        (Some(0.0), Value::Null)
    );
    assert!(
        aov.message.ends_with("z=∞, change=+50.00%"),
        "{}",
        aov.message
    );
}

#[test]
fn scope_all_judges_history_two_sided_as_the_reference() {
    let mut price = PRICE;
    price[6] = 300.0;
    let found = run(&rule(), &ORDERS, &price, Scope::All);
    // Day 7 (03-07) spikes revenue and AOV: revenue takes its more severe level (ERROR).
    assert_eq!(
        found,
        [
            row("ERROR", "anomaly:revenue", "2025-03-07", 33000.0),
            row("WARN", "anomaly:aov", "2025-03-07", 300.0)
        ]
    );
}

#[test]
fn a_missing_purchases_column_skips_only_conversion() {
    let (sessions, order_rows) = warehouse(&ORDERS, &PRICE);
    let sessions = sessions.replace("purchases", "buys");
    let eval = evaluate_last_day(&rule(), &sessions, &order_rows, 10, Scope::Partition);
    // The column the rule reads is missing: an ERROR naming it, and only conversion skipped.
    assert_eq!(
        summary(&eval),
        [
            (
                "ERROR".to_string(),
                "anomaly:unknown_column".to_string(),
                None,
                None
            ),
            (
                "WARN".to_string(),
                "anomaly:conversion_rate_skipped".to_string(),
                None,
                None
            )
        ]
    );
    assert!(
        eval.findings[0]
            .message
            .starts_with("rule `anomaly` reads column `purchases` of table `sessions`, which"),
        "{}",
        eval.findings[0].message
    );
    assert_eq!(
        eval.findings[1].message,
        "Check `anomaly:conversion_rate` skipped: column `purchases` is missing from s.csv"
    );
}

#[test]
fn the_reference_config_maps_thresholds_and_window() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/puffy/monitoring_rules.reference.yml"
    ))
    .unwrap();
    let legacy: vigil_engine::legacy::LegacyConfig =
        vigil_engine::config::yaml::parse(&text).unwrap();
    let params: AnomalyParams =
        vigil_rule_api::registry::parse_params(legacy.params_of("anomaly").unwrap()).unwrap();
    assert_eq!((params.z_threshold, params.pct_threshold), (3.0, 0.3));
    assert_eq!(
        (params.baseline.window_days, params.baseline.min_points),
        (7, 4)
    );
    assert_eq!(params.metrics.len(), 5);
}
