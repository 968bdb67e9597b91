//! Every example config in `schema/examples/` carries the schema modeline and loads, and every
//! rule's own example loads as its rule section.

use std::fs;

use vigil_engine::config::Config;
use vigil_tests::repo_root;

#[test]
fn every_example_config_has_the_modeline_and_loads() {
    let registry = vigil_tests::registry();
    let mut loaded = 0;
    for entry in fs::read_dir(repo_root().join("schema/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml" && e != "yaml") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../vigil.schema.json\n"),
            "{} lacks the modeline",
            path.display()
        );
        let config = Config::load(&path, &registry).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !config.rules.is_empty(),
            "{} configures no rule",
            path.display()
        );
        loaded += 1;
    }
    assert!(loaded >= 1, "no example config found");
}

#[test]
fn every_rule_example_loads_as_its_section() {
    let registry = vigil_tests::registry();
    for rule in registry.iter() {
        let meta = &rule.info;
        let indented: String = meta.example.lines().map(|l| format!("    {l}\n")).collect();
        let text = format!("rules:\n  {}:\n{indented}", meta.id);
        let config = Config::from_text(std::path::Path::new("example.yml"), &text, &registry)
            .unwrap_or_else(|e| panic!("the example of `{}` does not load: {e}\n{text}", meta.id));
        assert_eq!(config.rules.len(), 1);
    }
}

#[test]
fn without_a_rules_section_every_rule_runs_with_defaults() {
    let registry = vigil_tests::registry();
    let config =
        Config::from_text(std::path::Path::new("min.yml"), "version: 1\n", &registry).unwrap();
    let ids: Vec<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, registry.ids().collect::<Vec<_>>());
}
