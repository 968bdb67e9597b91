//! An example vigil rule crate: `attribution_coverage`. Copy this crate to write your own
//! rules; see "Write your own rule" in the README.
//!
//! It depends on `vigil-rule-api` only (never on the engine), so it builds in seconds. The same
//! source works both ways: linked statically into a vigil binary (depend on this crate and name
//! it, as `cli/` does with its `example` feature), or built as a plugin with
//! `cargo build -p vigil-rules-example --features dynamic` and loaded with
//! `vigil --plugin target/debug/libvigil_rules_example.so`.

pub mod coverage;

#[cfg(feature = "dynamic")]
vigil_rule_api::declare_plugin!();
