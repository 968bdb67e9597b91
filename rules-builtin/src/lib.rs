//! vigil's builtin rules. Each rule lives in its own module and registers itself with
//! `vigil_rule_api::register_rule!`; nothing else lists them.

pub mod anomaly;
pub mod drift;
pub mod freshness;
pub mod funnel;
pub mod revenue;
