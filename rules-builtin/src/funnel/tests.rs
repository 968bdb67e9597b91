use std::collections::BTreeMap;

use vigil_engine::testing::{day, days, evaluate, noon, summary, table};

use super::*;

/// Ten days of 200 sessions: per day, how many viewed a page, added to cart, started checkout
/// and purchased (`today` replaces the last day's counts).
fn sessions(today: [usize; 4]) -> String {
    let normal = [180, 60, 30, 20];
    let mut text =
        String::from("session_id,session_start,pageviews,add_to_cart,checkout_started,purchases\n");
    for (i, d) in days("2025-03-01", 10).into_iter().enumerate() {
        let counts = if i == 9 { today } else { normal };
        for s in 0..200 {
            let reached = counts.map(|n| usize::from(s < n));
            text.push_str(&format!(
                "s{i}-{s},{},{},{},{},{}\n",
                noon(d),
                reached[0],
                reached[1],
                reached[2],
                reached[3]
            ));
        }
    }
    text
}

fn evaluate_funnel(rule: &Funnel, data: &str) -> vigil_engine::runner::Evaluation {
    let tables = BTreeMap::from([(
        "sessions".to_string(),
        table("s.csv", Some("session_start")),
    )]);
    evaluate(
        &[("funnel", rule)],
        &tables,
        &[("sessions", data)],
        day("2025-03-10"),
        Scope::Partition,
    )
}

fn run(data: &str) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    summary(&evaluate_funnel(
        &Funnel::new(FunnelParams::default()).unwrap(),
        data,
    ))
}

fn row(sev: &str, check: &str, value: f64) -> (String, String, Option<NaiveDate>, Option<f64>) {
    (
        sev.into(),
        check.into(),
        Some(day("2025-03-10")),
        Some(value),
    )
}

#[test]
fn a_normal_funnel_passes() {
    assert_eq!(run(&sessions([180, 60, 30, 20])), []);
}

#[test]
fn a_checkout_break_names_the_step_that_fell() {
    // Checkout starts fall from 30 to 6; purchases follow (20 -> 4): the conversion drop is an
    // ERROR, the step drop a WARN, and the checkout-to-purchase rate is unchanged.
    assert_eq!(
        run(&sessions([180, 60, 6, 4])),
        [
            row("ERROR", "funnel:conversion", 0.02),
            row("WARN", "funnel:add_to_cart_to_checkout_started", 0.1),
        ]
    );
}

#[test]
fn a_missing_purchases_column_is_an_error_not_a_zero() {
    let data = sessions([180, 60, 30, 20]).replacen("purchases", "orders", 1);
    let rule = Funnel::new(FunnelParams::default()).unwrap();
    let eval = evaluate_funnel(&rule, &data);
    assert_eq!(
        summary(&eval),
        [
            (
                "ERROR".to_string(),
                "funnel:missing_column".to_string(),
                None,
                None
            ),
            (
                "ERROR".to_string(),
                "funnel:unknown_column".to_string(),
                None,
                None
            )
        ]
    );
    assert_eq!(
        eval.findings[0].message,
        "Funnel step `purchases` cannot be measured, its rates are skipped: column `purchases` is missing from s.csv"
    );
}

#[test]
fn steps_are_configurable() {
    let params = FunnelParams {
        steps: vec![FunnelStep {
            name: "cart".into(),
            column: "add_to_cart".into(),
        }],
        ..FunnelParams::default()
    };
    let rule = Funnel::new(params).unwrap();
    let data = sessions([180, 20, 30, 20]);
    let eval = evaluate_funnel(&rule, &data);
    // With one step, the conversion is the cart rate: sessions_to_cart and conversion both fall.
    assert_eq!(
        summary(&eval),
        [
            row("ERROR", "funnel:conversion", 0.1),
            row("WARN", "funnel:sessions_to_cart", 0.1)
        ]
    );
    assert!(Funnel::new(FunnelParams {
        steps: vec![],
        ..FunnelParams::default()
    })
    .is_err());
}
