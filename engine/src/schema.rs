//! The config's JSON schema (draft-07, for the YAML language server), built from the config
//! types and the params of every registered rule.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::config::ConfigFile;
use crate::registry::Registry;

/// The schema as pretty JSON with a trailing newline (the content of `schema/vigil.schema.json`).
pub fn render(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(&build(registry)).expect("schemas serialize");
    text.push('\n');
    text
}

/// The schema as a JSON value.
pub fn build(registry: &Registry) -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut rules = Map::new();
    for entry in registry.iter() {
        let meta = entry.registration.meta;
        let params = (entry.registration.params_schema)(&mut generator);
        rules.insert(
            meta.id.to_string(),
            json!({
                "description": format!("{} ({})", meta.summary(), entry.origin),
                "anyOf": [params.to_value(), {"type": "null"}],
            }),
        );
    }
    let mut root = generator.root_schema_for::<ConfigFile>().to_value();
    root["properties"]["rules"] = json!({
        "description": "One section per rule id with the rule's settings; an empty section uses the \
                        rule's defaults. Leave `rules` out to run every registered rule with its \
                        defaults.",
        "type": "object",
        "additionalProperties": false,
        "properties": rules,
    });
    root
}
