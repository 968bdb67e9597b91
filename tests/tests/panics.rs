//! A rule that panics becomes an ERROR finding for that rule; the other rules still run and the
//! reports are written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_engine::prelude::*;
use vigil_tests::{json_report, puffy_copy, vigil_run};

/// `rules.panicky`: no settings.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// A test-only rule that panics while it evaluates.
struct Panicky;

vigil_engine::register_rule! {
    /// Panics on purpose (test only).
    ///
    /// ## What it checks
    /// Nothing: it indexes past the end of a list.
    ///
    /// ## Why
    /// To prove that one broken rule cannot take the run down.
    Panicky {
        id: "panicky",
        default_severity: Error,
        example: "{}\n",
    }
}

impl RuleSpec for Panicky {
    type Params = NoParams;

    fn new(_: NoParams) -> Result<Self, String> {
        Ok(Panicky)
    }
}

impl Rule for Panicky {
    fn plan(&self, _cx: &RunCtx<'_>) -> Vec<MetricRequest> {
        vec![MetricRequest::daily("sessions", Measure::Rows)]
    }

    fn evaluate(&self, _cx: &RunCtx<'_>, _metrics: &Metrics) -> Result<Vec<Finding>, RuleError> {
        let days: Vec<u32> = Vec::new();
        let _ = days[usize::from(days.is_empty())];
        Ok(Vec::new())
    }
}

#[test]
fn a_panicking_rule_is_an_error_finding_and_the_run_goes_on() {
    let copy = puffy_copy();
    let config = copy.path().join("vigil.yml");
    std::fs::write(&config, "rules:\n  panicky: {}\n  freshness: {}\n").unwrap();
    let out = copy.path().join("reports");
    let warehouse = copy.path().join("warehouse");
    let result = vigil_run(
        &warehouse,
        &config,
        &out,
        "2025-03-09",
        &["--fail_on_error"],
    );
    assert_eq!(result.code, 1, "{result:?}");
    let report = json_report(&out);
    let checks: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    // freshness still ran (the partition of 03-09 is late).
    assert_eq!(
        checks,
        [
            "freshness:orders_partition",
            "freshness:sessions_partition",
            "panicky:evaluate"
        ]
    );
    let panic = &report["findings"][2];
    assert_eq!(panic["severity"], "ERROR");
    assert!(
        panic["message"]
            .as_str()
            .unwrap()
            .starts_with("rule `panicky` panicked in evaluate: index out of bounds"),
        "{panic}"
    );
    assert!(out.join("monitoring_report.md").exists());
}
