use vigil_rule_api::testkit::{day, summary, TestKit};

use super::*;

const ORDERS: &str = "transaction_id,order_ts\nA,2025-03-01T10:00:00Z\nB,2025-03-01T11:00:00Z\nC,2025-03-01T12:00:00Z\nD,2025-03-02T10:00:00Z\n";
/// Rows carry the columns their lookups bring (`orders.order_ts`, `sessions.session_id`): A is
/// complete; B has no first click; C has two last clicks; A's last click names an unknown
/// session (s9, not found); D (03-02) is complete with no sessions.
const ATTRIBUTION: &str = "\
transaction_id,model,attributed_session_id,orders.order_ts,sessions.session_id
A,first_click,s1,2025-03-01T10:00:00Z,s1
A,last_click,s9,2025-03-01T10:00:00Z,
B,last_click,,2025-03-01T11:00:00Z,
C,first_click,,2025-03-01T12:00:00Z,
C,last_click,,2025-03-01T12:00:00Z,
C,last_click,,2025-03-01T12:00:00Z,
D,first_click,,2025-03-02T10:00:00Z,
D,last_click,,2025-03-02T10:00:00Z,
";

fn kit(scope: Scope) -> TestKit {
    TestKit::new("2025-03-01", scope)
        .table("orders", Some("order_ts"), ORDERS)
        .table("attribution", Some("orders.order_ts"), ATTRIBUTION)
}

fn evaluate_coverage(params: CoverageParams, scope: Scope) -> Evaluated {
    let rule = AttributionCoverage::new(params).unwrap();
    kit(scope).evaluate(&rule).unwrap()
}

fn run(
    params: CoverageParams,
    scope: Scope,
) -> Vec<(String, String, Option<NaiveDate>, Option<f64>)> {
    summary(&evaluate_coverage(params, scope).findings)
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
            row("attribution:missing_first_click", 1.0 / 3.0),
            row("attribution:duplicate_last_click", 1.0 / 3.0),
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
fn scope_all_judges_every_day() {
    // 03-02's order D is complete: only 03-01's three gaps, as in the partition scope.
    let all = run(CoverageParams::default(), Scope::All);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|(_, _, d, _)| *d == Some(day("2025-03-01"))));
}

#[test]
fn the_missing_share_is_charted_against_a_fixed_band() {
    let evaluated = evaluate_coverage(CoverageParams::default(), Scope::Partition);
    let first = evaluated
        .observations
        .iter()
        .find(|o| o.metric == "attribution:missing_first_click")
        .unwrap();
    assert_eq!(first.value, 1.0 / 3.0);
    assert_eq!(first.bounds, Some((0.0, 0.0)));
    assert_eq!(first.baseline, None);
    assert!(first.flagged);
    let last = evaluated
        .observations
        .iter()
        .find(|o| o.metric == "attribution:missing_last_click")
        .unwrap();
    assert_eq!(last.value, 0.0);
    assert!(!last.flagged);
}

#[test]
fn without_the_sessions_lookup_the_session_check_is_skipped_with_the_reason() {
    let params = CoverageParams {
        looked_up_session_column: "visits.visit_id".into(),
        ..CoverageParams::default()
    };
    let evaluated = evaluate_coverage(params, Scope::Partition);
    let skipped = evaluated
        .findings
        .iter()
        .find(|f| f.check == "attribution:unknown_sessions_skipped")
        .unwrap();
    assert_eq!(
        skipped.message,
        "Check `attribution:unknown_sessions` skipped: column `visits.visit_id` is not in table `attribution`"
    );
}

#[test]
fn invalid_rates_are_refused_at_their_field() {
    let bad = CoverageParams {
        max_violation_rate: 2.0,
        ..CoverageParams::default()
    };
    let err = AttributionCoverage::new(bad).unwrap_err();
    assert_eq!(err.path, "max_violation_rate");
    assert_eq!(err.message, "is a share between 0 and 1");
}
