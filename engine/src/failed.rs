//! A rule that could not be built for a reason other than its params (it panicked, or its
//! plugin failed): every step fails with that error, so the run reports it as an ERROR finding
//! for the rule and goes on.

use vigil_rule_api::metric::{MetricRequest, Metrics};
use vigil_rule_api::rule::{Evaluated, Rule, RuleError, RunCtx};

/// A rule whose every step fails with the error it was built with.
pub(crate) struct Failed(pub RuleError);

impl Rule for Failed {
    fn plan(&self, _cx: &RunCtx) -> Result<Vec<MetricRequest>, RuleError> {
        Err(self.0.clone())
    }

    fn evaluate(&self, _cx: &RunCtx, _metrics: &Metrics) -> Result<Evaluated, RuleError> {
        Err(self.0.clone())
    }
}
