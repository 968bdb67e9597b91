//! A linked rule that panics (while it is built, planned or evaluated) becomes an ERROR finding
//! for that rule; the other rules still run and the reports are written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vigil_rule_api::prelude::*;

/// The step at which [`Panicky`] panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum At {
    Build,
    Plan,
    #[default]
    Evaluate,
}

/// `rules.panicky`.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct PanicParams {
    /// Where to panic.
    at: At,
}

/// A test-only rule that panics where its params say.
struct Panicky {
    at: At,
}

vigil_rule_api::register_rule! {
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
        example: "at: evaluate\n",
    }
}

fn out_of_bounds() {
    let days: Vec<u32> = Vec::new();
    let _ = days[usize::from(days.is_empty())];
}

impl RuleSpec for Panicky {
    type Params = PanicParams;

    fn new(params: PanicParams) -> Result<Self, ParamsError> {
        if params.at == At::Build {
            out_of_bounds();
        }
        Ok(Panicky { at: params.at })
    }
}

impl Rule for Panicky {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        if self.at == At::Plan {
            out_of_bounds();
        }
        Ok(vec![MetricRequest::daily("sessions", Measure::Rows)])
    }

    fn evaluate(&self, _cx: &RunCtx, _metrics: &Metrics) -> Result<Evaluated, RuleError> {
        out_of_bounds();
        Ok(Evaluated::default())
    }
}

#[test]
fn a_panicking_rule_is_an_error_finding_and_the_run_goes_on() {
    vigil_tests::assert_panics_are_isolated("panicky", &[], |_| "index out of bounds".into());
}
