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
    let generator = SchemaSettings::draft07().into_generator();
    let mut root = generator.into_root_schema_for::<ConfigFile>().to_value();
    let mut definitions = match root.as_object_mut().and_then(|r| r.remove("definitions")) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut rules = Map::new();
    for entry in registry.iter() {
        let meta = &entry.info;
        let params = merge_definitions(&mut definitions, &meta.id, meta.params_schema.clone());
        rules.insert(
            meta.id.clone(),
            json!({
                "description": format!("{} ({})", meta.summary(), entry.origin),
                "anyOf": [params, {"type": "null"}],
            }),
        );
    }
    root["definitions"] = Value::Object(definitions);
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

/// Moves the `definitions` of a rule's params schema into the document's, renaming one that
/// another rule defines differently to `<rule>.<name>` (and its refs with it); returns the
/// params schema without its definitions.
fn merge_definitions(definitions: &mut Map<String, Value>, rule: &str, mut schema: Value) -> Value {
    let own = match schema.as_object_mut().and_then(|s| s.remove("definitions")) {
        Some(Value::Object(map)) => map,
        _ => return schema,
    };
    let mut renames: Vec<(String, String)> = Vec::new();
    for (name, definition) in &own {
        if definitions.get(name).is_some_and(|d| d != definition) {
            renames.push((name.clone(), format!("{rule}.{name}")));
        }
    }
    let rename = |mut value: Value| {
        rewrite_refs(&mut value, &renames);
        value
    };
    for (name, definition) in own {
        let name = renames
            .iter()
            .find(|(from, _)| *from == name)
            .map_or(name, |(_, to)| to.clone());
        definitions.insert(name, rename(definition));
    }
    rename(schema)
}

/// Rewrites `#/definitions/<from>` refs to `#/definitions/<to>`.
fn rewrite_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(r) if key == "$ref" => {
                        for (from, to) in renames {
                            if *r == format!("#/definitions/{from}") {
                                *r = format!("#/definitions/{to}");
                            }
                        }
                    }
                    other => rewrite_refs(other, renames),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, renames)),
        _ => {}
    }
}
