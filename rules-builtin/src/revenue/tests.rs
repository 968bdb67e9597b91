use std::collections::BTreeMap;

use vigil_engine::testing::{day, days, evaluate, noon, summary, table};

use super::*;

fn tables() -> BTreeMap<String, vigil_engine::config::TableConfig> {
    BTreeMap::from([
        ("orders".to_string(), table("o.csv", Some("order_ts"))),
        (
            "sessions".to_string(),
            table("s.csv", Some("session_start")),
        ),
    ])
}

/// Ten days of 10 orders of 100 with ids `d<day>-<n>`; `today` lists the last day's revenues
/// (and ids, for duplicates). The sessions table has 10 sessions a day, `nulls` of them without
/// a client id on the last day.
fn warehouse(today: &[(&str, &str)], nulls: usize) -> (String, String) {
    let mut orders = String::from("transaction_id,order_ts,revenue\n");
    let mut sessions = String::from("session_id,session_start,client_id\n");
    for (i, d) in days("2025-03-01", 10).into_iter().enumerate() {
        if i < 9 {
            for n in 0..10 {
                orders.push_str(&format!("d{i}-{n},{},100\n", noon(d)));
            }
        } else {
            for (id, revenue) in today {
                orders.push_str(&format!("{id},{},{revenue}\n", noon(d)));
            }
        }
        for s in 0..10 {
            let client = if i == 9 && s < nulls { "" } else { "c" };
            sessions.push_str(&format!("s{i}-{s},{},{client}\n", noon(d)));
        }
    }
    (orders, sessions)
}

fn params() -> RevenueParams {
    RevenueParams {
        null_rates: NullRates {
            table: "sessions".into(),
            max: BTreeMap::from([("client_id".to_string(), 0.05)]),
        },
        ..RevenueParams::default()
    }
}

fn evaluate_revenue(
    orders: &str,
    sessions: &str,
    scope: Scope,
) -> vigil_engine::runner::Evaluation {
    let rule = Revenue::new(params()).unwrap();
    let data = [("orders", orders), ("sessions", sessions)];
    evaluate(
        &[("revenue", &rule)],
        &tables(),
        &data,
        day("2025-03-10"),
        scope,
    )
}

fn run(
    today: &[(&str, &str)],
    nulls: usize,
    scope: Scope,
) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    let (orders, sessions) = warehouse(today, nulls);
    summary(&evaluate_revenue(&orders, &sessions, scope))
}

fn row(sev: &str, check: &str, value: f64) -> (String, String, Option<NaiveDate>, Option<f64>) {
    (
        sev.into(),
        check.into(),
        Some(day("2025-03-10")),
        Some(value),
    )
}

const CLEAN: [(&str, &str); 3] = [("a", "100"), ("b", "250.5"), ("c", "80")];

#[test]
fn a_clean_day_passes() {
    assert_eq!(run(&CLEAN, 0, Scope::Partition), []);
}

#[test]
fn each_integrity_problem_of_the_day_is_reported_once() {
    let today = [
        ("a", "100"),
        ("a", "100"),    // duplicate within the day
        ("d3-1", "100"), // duplicate of an order of 03-04
        ("b", "-20"),    // negative
        ("c", ""),       // empty
        ("d", "twelve"), // not a number
        ("e", "0"),
        ("f", "0.0"),
    ];
    assert_eq!(
        run(&today, 2, Scope::Partition),
        [
            row("ERROR", "orders:duplicate_transactions", 2.0),
            row("ERROR", "orders:invalid_revenue", 2.0),
            row("ERROR", "orders:negative_revenue", 1.0),
            row("ERROR", "sessions:null_rate:client_id", 0.2),
        ]
    );
}

#[test]
fn too_many_zero_revenue_orders_is_a_warning() {
    // 6 of 30 orders (20%) at zero: above the allowance of 5, below a quarter of the day.
    let today: Vec<(String, &str)> = (0..30)
        .map(|n| (format!("z{n}"), if n < 6 { "0" } else { "100" }))
        .collect();
    let today: Vec<(&str, &str)> = today.iter().map(|(id, r)| (id.as_str(), *r)).collect();
    assert_eq!(
        run(&today, 0, Scope::Partition),
        [row("WARN", "orders:zero_revenue_orders", 6.0)]
    );
}

#[test]
fn a_quarter_of_the_day_s_orders_at_zero_revenue_is_an_error() {
    // 8 of 30 orders (26.7%) at zero revenue.
    let today: Vec<(String, &str)> = (0..30)
        .map(|n| (format!("z{n}"), if n < 8 { "0" } else { "100" }))
        .collect();
    let today: Vec<(&str, &str)> = today.iter().map(|(id, r)| (id.as_str(), *r)).collect();
    let (orders, sessions) = warehouse(&today, 0);
    let eval = evaluate_revenue(&orders, &sessions, Scope::Partition);
    assert_eq!(
        summary(&eval),
        [row("ERROR", "orders:zero_revenue_orders", 8.0)]
    );
    assert_eq!(
        eval.findings[0].message,
        "8 zero-revenue orders (allowed: 5): 26.7% of the day's 30 orders, at least 25.0% is an ERROR"
    );
}

#[test]
fn a_zero_revenue_spike_below_the_count_limit_is_a_warning() {
    // 3 of 5 orders at 0 (60%) against a usual 0%: below max_zero_revenue_orders (5), but a spike.
    let today = [
        ("z1", "0"),
        ("z2", "0"),
        ("z3", "0"),
        ("a", "10"),
        ("b", "10"),
    ];
    assert_eq!(
        run(&today, 0, Scope::Partition),
        [row("WARN", "orders:zero_revenue_spike", 0.6)]
    );
}

#[test]
fn a_few_zero_revenue_orders_where_some_are_usual_are_judged_by_their_poisson_tail() {
    // Ten days of 40 orders, one of them at zero revenue on every other day (1.25% usual), then
    // `zeros` of 40 at zero: 3 are 3.55 binomial standard errors above the usual share, yet with
    // 0.5 expected, 3 or more happen on 1.4% of days; 5 or more on 0.017%.
    let day_rows = |i: usize, zeros: usize| -> String {
        (0..40)
            .map(|n| {
                let revenue = if n < zeros { 0 } else { 100 };
                format!("d{i}-{n},2025-03-{:02}T12:00:00Z,{revenue}\n", i + 1)
            })
            .collect()
    };
    let spike = |zeros: usize| {
        let mut orders = String::from("transaction_id,order_ts,revenue\n");
        for i in 0..9 {
            orders.push_str(&day_rows(i, i % 2));
        }
        orders.push_str(&day_rows(9, zeros));
        let (_, sessions) = warehouse(&[], 0);
        summary(&evaluate_revenue(&orders, &sessions, Scope::Partition))
    };
    assert_eq!(spike(3), []);
    assert_eq!(
        spike(5),
        [row("WARN", "orders:zero_revenue_spike", 5.0 / 40.0)]
    );
}

#[test]
fn scope_all_counts_over_the_whole_table_as_the_reference() {
    let today = [("d3-1", "100"), ("b", "-20"), ("c", "0")];
    let (orders, sessions) = warehouse(&today, 5);
    let eval = evaluate_revenue(&orders, &sessions, Scope::All);
    // 5 null client ids of 100 sessions: 5% is not above the 5% limit.
    assert_eq!(
        summary(&eval),
        [
            (
                "ERROR".to_string(),
                "orders:duplicate_transactions".to_string(),
                None,
                Some(1.0)
            ),
            (
                "ERROR".to_string(),
                "orders:negative_revenue".to_string(),
                None,
                Some(1.0)
            ),
        ]
    );
    assert_eq!(
        eval.findings[0].message,
        "1 duplicate transactions (allowed: 0)"
    );
}

#[test]
fn a_missing_null_rate_column_is_skipped_with_a_reason() {
    let (orders, sessions) = warehouse(&CLEAN, 0);
    let sessions = sessions.replace("client_id", "visitor");
    let eval = evaluate_revenue(&orders, &sessions, Scope::Partition);
    assert_eq!(
        summary(&eval),
        [
            (
                "ERROR".to_string(),
                "revenue:unknown_column".to_string(),
                None,
                None
            ),
            (
                "WARN".to_string(),
                "sessions:null_rate:client_id_skipped".to_string(),
                None,
                None
            )
        ]
    );
    assert!(
        eval.findings[0].message.ends_with("does not have"),
        "no close column for `client_id` among the header: {}",
        eval.findings[0].message
    );
}

#[test]
fn rates_outside_zero_to_one_are_refused() {
    let mut p = params();
    p.null_rates.max.insert("client_id".into(), 5.0);
    assert_eq!(
        Revenue::new(p).unwrap_err(),
        ParamsError::at(
            "null_rates.max.client_id",
            "is 5; a rate is between 0 and 1"
        )
    );
}
