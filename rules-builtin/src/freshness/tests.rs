use std::collections::BTreeMap;

use vigil_engine::config::TableConfig;
use vigil_engine::testing::{day, evaluate, table};

use super::*;

/// Sessions: 03-01 has 3 sessions, 03-02 has 3, 03-03 none, 03-04 has 3, 03-05 has 2
/// (one session spans two rows).
const SESSIONS: &str = "\
session_id,session_start
s1,2025-03-01T10:00:00Z
s2,2025-03-01T11:00:00Z
s3,2025-03-01T12:00:00Z
s4,2025-03-02T10:00:00Z
s5,2025-03-02T10:00:00Z
s6,2025-03-02T10:00:00Z
s7,2025-03-04T10:00:00Z
s8,2025-03-04T10:00:00Z
s9,2025-03-04T10:00:00Z
s10,2025-03-05T10:00:00Z
s10,2025-03-05T10:30:00Z
s11,2025-03-05T23:59:59.999+00:00
";

fn tables() -> BTreeMap<String, TableConfig> {
    BTreeMap::from([(
        "sessions".to_string(),
        table("fct_sessions.csv", Some("session_start")),
    )])
}

fn rule(floor: u64) -> Freshness {
    Freshness::new(FreshnessParams {
        tables: BTreeMap::from([(
            "sessions".into(),
            TableFreshness {
                min_per_day: floor,
                count_distinct: Some("session_id".into()),
                ..TableFreshness::default()
            },
        )]),
    })
    .unwrap()
}

type Summary = (
    Severity,
    String,
    Option<NaiveDate>,
    Option<f64>,
    Option<f64>,
);

fn run(rule: &Freshness, data: &str, expected: &str, scope: Scope) -> Vec<Summary> {
    let eval = evaluate(
        &[("freshness", rule)],
        &tables(),
        &[("sessions", data)],
        day(expected),
        scope,
    );
    eval.findings
        .iter()
        .map(|f| {
            (
                f.severity,
                f.check.clone(),
                f.partition_date,
                f.value,
                f.threshold,
            )
        })
        .collect()
}

fn summary(sev: Severity, check: &str, date: Option<&str>, value: f64, threshold: f64) -> Summary {
    (
        sev,
        check.to_string(),
        date.map(day),
        Some(value),
        Some(threshold),
    )
}

#[test]
fn a_gap_inside_the_window_is_reported_and_a_met_floor_is_not() {
    // Scope partition, expected 03-05: the 03-03 gap is inside the 7-day window, so it is
    // reported; the floor of 2 is met on 03-05.
    assert_eq!(
        run(&rule(2), SESSIONS, "2025-03-05", Scope::Partition),
        [summary(
            Severity::Error,
            "completeness:sessions_missing_days",
            None,
            1.0,
            0.0
        )]
    );
}

#[test]
fn a_stale_table_is_an_error_on_the_expected_partition() {
    let found = run(&rule(0), SESSIONS, "2025-03-07", Scope::Partition);
    assert_eq!(
        found,
        [
            summary(
                Severity::Error,
                "completeness:sessions_missing_days",
                None,
                1.0,
                0.0
            ),
            summary(
                Severity::Error,
                "freshness:sessions_partition",
                Some("2025-03-07"),
                2.0,
                0.0
            ),
        ]
    );
}

#[test]
fn a_newer_partition_than_expected_is_a_warning() {
    let found = run(&rule(0), SESSIONS, "2025-03-02", Scope::Partition);
    assert_eq!(
        found,
        [summary(
            Severity::Warn,
            "freshness:sessions_partition",
            Some("2025-03-02"),
            3.0,
            0.0
        )]
    );
}

#[test]
fn the_floor_judges_the_expected_partition_only_by_default() {
    let found = run(&rule(3), SESSIONS, "2025-03-05", Scope::Partition);
    assert_eq!(
        found,
        [
            summary(
                Severity::Error,
                "completeness:sessions_missing_days",
                None,
                1.0,
                0.0
            ),
            summary(
                Severity::Error,
                "volume:sessions_floor",
                Some("2025-03-05"),
                2.0,
                3.0
            ),
        ]
    );
}

#[test]
fn scope_all_judges_every_day_including_days_without_rows() {
    let found = run(&rule(3), SESSIONS, "2025-03-05", Scope::All);
    assert_eq!(
        found,
        [
            summary(
                Severity::Error,
                "completeness:sessions_missing_days",
                None,
                1.0,
                0.0
            ),
            summary(
                Severity::Error,
                "volume:sessions_floor",
                Some("2025-03-03"),
                0.0,
                3.0
            ),
            summary(
                Severity::Error,
                "volume:sessions_floor",
                Some("2025-03-05"),
                2.0,
                3.0
            ),
        ]
    );
}

#[test]
fn the_completeness_window_and_allowance_limit_what_is_reported() {
    let mut narrow = rule(0);
    narrow
        .params
        .tables
        .get_mut("sessions")
        .unwrap()
        .completeness_window_days = 2;
    assert_eq!(run(&narrow, SESSIONS, "2025-03-05", Scope::Partition), []);
    let mut lenient = rule(0);
    lenient
        .params
        .tables
        .get_mut("sessions")
        .unwrap()
        .allowed_missing_days = 1;
    assert_eq!(run(&lenient, SESSIONS, "2025-03-05", Scope::All), []);
}

#[test]
fn messages_say_what_is_late_and_by_how_much() {
    let eval = evaluate(
        &[("freshness", &rule(0))],
        &tables(),
        &[("sessions", SESSIONS)],
        day("2025-03-07"),
        Scope::All,
    );
    let messages: Vec<&str> = eval.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Missing `sessions` days between 2025-03-01 and 2025-03-05: 2025-03-03",
            "Latest `sessions` partition is 2025-03-05 but 2025-03-07 is expected: 2 day(s) behind",
        ]
    );
}

#[test]
fn no_parsable_date_is_an_error_not_a_crash() {
    let data = "session_id,session_start\ns1,yesterday\ns2,\n";
    let found = run(&rule(5), data, "2025-03-05", Scope::Partition);
    assert_eq!(
        found,
        [
            (
                Severity::Error,
                "freshness:sessions_missing_dates".to_string(),
                None,
                None,
                None
            ),
            // s2's empty date belongs to no day.
            summary(Severity::Error, "sessions:empty_dates", None, 1.0, 0.0),
            summary(Severity::Error, "sessions:unparsable_dates", None, 1.0, 0.0),
        ]
    );
}

#[test]
fn a_missing_volume_column_skips_only_the_floor() {
    let data = "id,session_start\ns1,2025-03-05T10:00:00Z\n";
    let found = run(&rule(5), data, "2025-03-05", Scope::Partition);
    assert_eq!(
        found,
        [
            (
                Severity::Error,
                "freshness:unknown_column".to_string(),
                None,
                None,
                None
            ),
            (
                Severity::Warn,
                "volume:sessions_floor_skipped".to_string(),
                None,
                None,
                None
            )
        ]
    );
}

#[test]
fn a_missing_file_skips_the_checks_and_the_engine_reports_it() {
    let eval = evaluate(
        &[("freshness", &rule(5))],
        &tables(),
        &[],
        day("2025-03-05"),
        Scope::Partition,
    );
    let checks: Vec<&str> = eval.findings.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(
        checks,
        ["sessions:missing_file", "freshness:sessions_skipped"]
    );
}

#[test]
fn the_reference_config_maps_floors_and_severities() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/puffy/monitoring_rules.reference.yml"
    ))
    .expect("the shared Puffy data sits next to the project");
    let legacy: vigil_engine::legacy::LegacyConfig =
        vigil_engine::config::yaml::parse(&text).unwrap();
    let params: FreshnessParams =
        vigil_rule_api::registry::parse_params(legacy.params_of("freshness").unwrap()).unwrap();
    let sessions = &params.tables["sessions"];
    let orders = &params.tables["orders"];
    assert_eq!(
        (
            sessions.min_per_day,
            sessions.count_distinct.as_deref(),
            sessions.floor_severity
        ),
        (1000, Some("session_id"), Severity::Error)
    );
    assert_eq!(
        (
            orders.min_per_day,
            orders.count_distinct.as_deref(),
            orders.floor_severity
        ),
        (5, Some("transaction_id"), Severity::Warn)
    );
    assert_eq!(params.tables.len(), 2);
}

/// A rule whose baselines reach `0` days back and that asks for nothing.
struct Looks(u32);

impl Rule for Looks {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Ok(Vec::new())
    }

    fn lookback_days(&self) -> u32 {
        self.0
    }

    fn evaluate(&self, _cx: &RunCtx, _m: &Metrics) -> Result<Evaluated, RuleError> {
        Ok(Evaluated::default())
    }
}

#[test]
fn a_hole_inside_the_longest_baseline_window_is_a_warning() {
    // 40 days from 02-01 to 03-12 with one session a day, except 02-10 and 03-01.
    let mut data = String::from("session_id,session_start\n");
    for (i, d) in vigil_engine::testing::days("2025-02-01", 40)
        .into_iter()
        .enumerate()
    {
        if d != day("2025-02-10") && d != day("2025-03-01") {
            data.push_str(&format!("s{i},{d}T10:00:00Z\n"));
        }
    }
    let evaluate_with = |lookback: u32| {
        let eval = evaluate(
            &[("freshness", &rule(0)), ("baselines", &Looks(lookback))],
            &tables(),
            &[("sessions", &data)],
            day("2025-03-12"),
            Scope::Partition,
        );
        eval.findings
    };
    // Without baselines, 03-01 is outside the 7-day completeness window: nothing.
    assert!(evaluate_with(0).is_empty());
    // A 28-day baseline reaches 02-12: 03-01 is inside it, 02-10 is not.
    let found = evaluate_with(28);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(
        (f.severity, f.check.as_str(), f.partition_date, f.value),
        (
            Severity::Warn,
            "completeness:sessions_baseline_gaps",
            Some(day("2025-03-12")),
            Some(1.0)
        )
    );
    assert_eq!(
        f.message,
        "Missing `sessions` days inside the 28-day baseline window: 2025-03-01 (baselines that \
         span them are distorted; backfill 2025-03-01..2025-03-01)"
    );
    // A 40-day baseline reaches 02-10 too.
    assert_eq!(evaluate_with(40)[0].value, Some(2.0));
}
