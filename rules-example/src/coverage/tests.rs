use std::collections::BTreeMap;

use vigil_engine::config::{LookupConfig, TableConfig};
use vigil_engine::runner::Evaluation;
use vigil_engine::testing::{day, evaluate, summary, table};

use super::*;

const ORDERS: &str = "transaction_id,order_ts\nA,2025-03-01T10:00:00Z\nB,2025-03-01T11:00:00Z\nC,2025-03-01T12:00:00Z\nD,2025-03-02T10:00:00Z\n";
const SESSIONS: &str = "session_id,session_start\ns1,2025-03-01T09:00:00Z\n";
/// A is complete; B has no first click; C has two last clicks; A's last click names an unknown
/// session; D (03-02) is complete with no sessions.
const ATTRIBUTION: &str = "\
transaction_id,model,attributed_session_id
A,first_click,s1
A,last_click,s9
B,last_click,
C,first_click,
C,last_click,
C,last_click,
D,first_click,
D,last_click,
";

fn tables() -> BTreeMap<String, TableConfig> {
    BTreeMap::from([
        ("orders".to_string(), table("o.csv", Some("order_ts"))),
        (
            "sessions".to_string(),
            table("s.csv", Some("session_start")),
        ),
        (
            "attribution".to_string(),
            TableConfig {
                lookups: vec![
                    LookupConfig {
                        table: "orders".into(),
                        key: "transaction_id".into(),
                        foreign_key: None,
                        columns: vec!["order_ts".into()],
                    },
                    LookupConfig {
                        table: "sessions".into(),
                        key: "attributed_session_id".into(),
                        foreign_key: Some("session_id".into()),
                        columns: vec!["session_id".into()],
                    },
                ],
                ..table("a.csv", Some("orders.order_ts"))
            },
        ),
    ])
}

fn evaluate_coverage(params: CoverageParams, scope: Scope) -> Evaluation {
    let rule = AttributionCoverage::new(params).unwrap();
    let data = [
        ("orders", ORDERS),
        ("sessions", SESSIONS),
        ("attribution", ATTRIBUTION),
    ];
    evaluate(
        &[("attribution_coverage", &rule)],
        &tables(),
        &data,
        day("2025-03-01"),
        scope,
    )
}

fn run(
    params: CoverageParams,
    scope: Scope,
) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    summary(&evaluate_coverage(params, scope))
        .into_iter()
        .filter(|(_, check, _, _)| {
            check.starts_with("attribution:") && check != "attribution:lookup_misses"
        })
        .collect()
}

fn row(check: &str, value: f64) -> (String, String, Option<NaiveDate>, Option<f64>) {
    (
        "ERROR".into(),
        check.into(),
        Some(day("2025-03-01")),
        Some(value),
    )
}

#[test]
fn each_gap_of_the_day_is_reported() {
    assert_eq!(
        run(CoverageParams::default(), Scope::Partition),
        [
            row("attribution:duplicate_last_click", 1.0 / 3.0),
            row("attribution:missing_first_click", 1.0 / 3.0),
            row("attribution:unknown_sessions", 1.0),
        ]
    );
}

#[test]
fn thresholds_and_severity_are_params() {
    let lenient = CoverageParams {
        max_violation_rate: 0.5,
        max_unknown_sessions: 1,
        ..CoverageParams::default()
    };
    assert_eq!(run(lenient, Scope::Partition), []);
    let off = CoverageParams {
        severity: Level::Off,
        ..CoverageParams::default()
    };
    assert_eq!(run(off, Scope::Partition), []);
}

#[test]
fn without_a_sessions_lookup_the_session_check_is_skipped_with_the_reason() {
    let params = CoverageParams {
        looked_up_session_column: "visits.visit_id".into(),
        ..CoverageParams::default()
    };
    let eval = evaluate_coverage(params, Scope::Partition);
    let skipped = eval
        .findings
        .iter()
        .find(|f| f.check == "attribution:unknown_sessions_skipped")
        .unwrap();
    assert_eq!(
        skipped.message,
        "Check `attribution:unknown_sessions` skipped: column `visits.visit_id` is missing from a.csv"
    );
}

#[test]
fn invalid_rates_are_refused() {
    let bad = CoverageParams {
        max_violation_rate: 2.0,
        ..CoverageParams::default()
    };
    assert_eq!(
        AttributionCoverage::new(bad).unwrap_err(),
        "max_violation_rate is a share between 0 and 1"
    );
}
