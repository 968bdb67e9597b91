//! The registry: the builtin rules are linked, sorted and documented (duplicates: `plugins.rs`).

use vigil_engine::registry::Origin;

#[test]
fn the_builtin_rules_are_linked_and_sorted() {
    let registry = vigil_tests::registry();
    let ids: Vec<&str> = registry.ids().collect();
    assert_eq!(ids, ["anomaly", "drift", "freshness", "funnel", "revenue"]);
    for rule in registry.iter() {
        assert_eq!(rule.origin, Origin::Linked("vigil-rules-builtin".into()));
        assert_eq!(rule.origin.to_string(), "builtin");
    }
}

#[test]
fn every_rule_is_documented() {
    for rule in vigil_tests::registry().iter() {
        let meta = &rule.info;
        let summary = meta.summary();
        assert!(
            !summary.is_empty() && summary.len() <= 100,
            "{}: summary {summary:?}",
            meta.id
        );
        for heading in ["## What it checks", "## Why"] {
            assert!(
                meta.docs.contains(heading),
                "{} docs lack {heading}",
                meta.id
            );
        }
        assert!(
            !meta.example.trim().is_empty(),
            "{} has no example",
            meta.id
        );
    }
}
