//! The config's JSON schema (draft-07, for the YAML language server and any JSON-schema
//! validator), built from the config types, the reference format's types and the params of
//! every registered rule, then made editor-ready: integer formats become numeric bounds (only
//! standard formats remain), closed sets are `enum`s with documented values, every field
//! carries its own one-paragraph description (also as `markdownDescription`), so that hover
//! shows the field's documentation.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::config::ConfigFile;
use crate::legacy::LegacyConfig;
use crate::registry::Registry;

/// Where the schema is published; `$id` and the SchemaStore catalog entry name it.
pub const SCHEMA_ID: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/schema/vigil.schema.json");

/// The schema as pretty JSON with a trailing newline (the content of `schema/vigil.schema.json`).
pub fn render(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(&build(registry)).expect("schemas serialize");
    text.push('\n');
    text
}

/// The schema as a JSON value: the native format, or the reference monitor's when the document
/// has a `schemas` key (as `vigil validate` decides).
pub fn build(registry: &Registry) -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let native = generator.subschema_for::<ConfigFile>().to_value();
    let reference = generator.subschema_for::<LegacyConfig>().to_value();
    let mut definitions = generator.take_definitions(true);
    let mut rules = Map::new();
    for entry in registry.iter() {
        let meta = &entry.info;
        let mut params = merge_definitions(&mut definitions, &meta.id, meta.params_schema.clone());
        if let Some(params) = params.as_object_mut() {
            // The params type's own doc (`rules.<id>`) would take the rule's hover.
            params.remove("description");
        }
        rules.insert(
            meta.id.clone(),
            json!({
                "description": format!(
                    "{} ({}); left empty: the rule's defaults.",
                    meta.summary().trim_end_matches('.'),
                    entry.origin
                ),
                "anyOf": [params, {"type": "null"}],
            }),
        );
    }
    if let Some(properties) = definitions
        .get_mut("ConfigFile")
        .and_then(|c| c.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        properties.insert(
            "rules".into(),
            json!({
                "description": "One section per rule id with the rule's settings; a section left \
                                empty uses the rule's defaults. Leave `rules` out, or empty, to \
                                run every registered rule with its defaults; `rules: {}` runs none.",
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": rules,
            }),
        );
    }
    let mut root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "description": "A vigil config: vigil's own format, or the reference monitor's \
                        (`monitoring_rules.yml`, recognised by its `schemas` key).",
        "if": {
            "type": "object",
            "properties": {"schemas": {"description": "The reference format's first section."}},
            "required": ["schemas"],
        },
        "then": reference,
        "else": native,
        "definitions": definitions,
    });
    for_editors(&mut root);
    root
}

/// Makes a generated schema editor-ready (see the module docs).
fn for_editors(root: &mut Value) {
    visit(root, &mut |schema| {
        bounds_from_format(schema);
        documented_enum(schema);
        describe_tags(schema);
        default_as_snippet(schema);
        if let Some(Value::String(text)) = schema.get_mut("description") {
            *text = unwrap_paragraphs(text);
        }
    });
    let mut moved = Map::new();
    if let Some(definitions) = root.get_mut("definitions").and_then(Value::as_object_mut) {
        for (name, definition) in definitions.iter_mut() {
            if let Some(text) = definition
                .as_object_mut()
                .and_then(|d| d.remove("description"))
            {
                moved.insert(format!("#/definitions/{name}"), text);
            }
        }
    }
    describe_refs(root, false, &moved);
    // Descriptions are Markdown (`code`); editors render `markdownDescription` as such.
    visit(root, &mut |schema| {
        if let Some(text) = schema.get("description").cloned() {
            schema.insert("markdownDescription".into(), text);
        }
    });
}

/// Calls `f` on every subschema object of `schema` (not on defaults or examples, which are
/// data), parents first.
fn visit(schema: &mut Value, f: &mut impl FnMut(&mut Map<String, Value>)) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    f(object);
    for (key, value) in object.iter_mut() {
        for sub in subschemas(key, value) {
            visit(sub, f);
        }
    }
}

/// The subschemas under keyword `key` of a schema.
fn subschemas<'v>(key: &str, value: &'v mut Value) -> Vec<&'v mut Value> {
    match key {
        "properties" | "patternProperties" | "definitions" => value
            .as_object_mut()
            .map(|m| m.values_mut().collect())
            .unwrap_or_default(),
        "allOf" | "anyOf" | "oneOf" => value
            .as_array_mut()
            .map(|a| a.iter_mut().collect())
            .unwrap_or_default(),
        "additionalProperties"
        | "items"
        | "propertyNames"
        | "if"
        | "then"
        | "else"
        | "not"
        | "contains" => vec![value],
        _ => Vec::new(),
    }
}

/// Whether keyword `key` holds subschemas that apply to the same value as their parent (so the
/// parent's description already documents it).
fn same_instance(key: &str) -> bool {
    matches!(key, "allOf" | "anyOf" | "oneOf" | "then" | "else")
}

/// Formats every standard draft-07 validator knows.
const STANDARD_FORMATS: [&str; 17] = [
    "date-time",
    "date",
    "time",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Replaces a Rust number format (`uint32`, `double`, ...) with the bounds it stands for,
/// keeping bounds already set (they are tighter); leaves only standard formats.
fn bounds_from_format(schema: &mut Map<String, Value>) {
    let Some(format) = schema.get("format").and_then(Value::as_str) else {
        return;
    };
    if STANDARD_FORMATS.contains(&format) {
        return;
    }
    let (min, max) = match format {
        "uint8" => (json!(0), json!(u8::MAX)),
        "uint16" => (json!(0), json!(u16::MAX)),
        "uint32" => (json!(0), json!(u32::MAX)),
        "uint64" | "uint" => (json!(0), json!(u64::MAX)),
        "int8" => (json!(i8::MIN), json!(i8::MAX)),
        "int16" => (json!(i16::MIN), json!(i16::MAX)),
        "int32" => (json!(i32::MIN), json!(i32::MAX)),
        "int64" | "int" => (json!(i64::MIN), json!(i64::MAX)),
        _ => (Value::Null, Value::Null),
    };
    schema.remove("format");
    for (keyword, bound) in [("minimum", min), ("maximum", max)] {
        if !bound.is_null() && !schema.contains_key(keyword) {
            schema.insert(keyword.into(), bound);
        }
    }
}

/// Turns a `oneOf` of documented string constants (a Rust enum) into an `enum` whose values
/// are documented in `markdownEnumDescriptions`: a value's doc then never replaces the
/// field's in a hover.
fn documented_enum(schema: &mut Map<String, Value>) {
    let Some(Value::Array(options)) = schema.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut docs = Vec::new();
    for option in options {
        let Some(option) = option.as_object() else {
            return;
        };
        let Some(value) = option.get("const").filter(|v| v.is_string()) else {
            return;
        };
        if option
            .keys()
            .any(|k| !matches!(k.as_str(), "const" | "type" | "description"))
        {
            return;
        }
        values.push(value.clone());
        let doc = option.get("description").and_then(Value::as_str);
        docs.push(json!(unwrap_paragraphs(doc.unwrap_or_default())));
    }
    schema.remove("oneOf");
    schema.insert("type".into(), json!("string"));
    schema.insert("enum".into(), Value::Array(values));
    schema.insert("markdownEnumDescriptions".into(), Value::Array(docs));
}

/// Offers a default that holds a list of mappings as a snippet instead: the YAML language
/// server's "Default value" completion inserts such a list as `- [object Object]`, while it
/// writes a snippet's body out (its `null`s left out, which it would glue to their key).
fn default_as_snippet(schema: &mut Map<String, Value>) {
    fn lists_mappings(value: &Value) -> bool {
        match value {
            Value::Array(items) => items.iter().any(|i| i.is_object() || lists_mappings(i)),
            Value::Object(map) => map.values().any(lists_mappings),
            _ => false,
        }
    }
    fn without_nulls(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, without_nulls(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
            other => other,
        }
    }
    if !schema.get("default").is_some_and(lists_mappings) {
        return;
    }
    let body = without_nulls(schema.remove("default").unwrap_or_default());
    let snippet = json!({"label": "the default", "body": body});
    match schema
        .get_mut("defaultSnippets")
        .and_then(Value::as_array_mut)
    {
        Some(snippets) => snippets.push(snippet),
        None => {
            schema.insert("defaultSnippets".into(), json!([snippet]));
        }
    }
}

/// Documents the tag of each variant of a tagged enum (`kind: slack`) with the variant's doc.
fn describe_tags(schema: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = schema.get_mut("oneOf") else {
        return;
    };
    for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
        let Some(doc) = variant.get("description").cloned() else {
            continue;
        };
        let properties = variant.get_mut("properties").and_then(Value::as_object_mut);
        for tag in properties.into_iter().flat_map(|p| p.values_mut()) {
            if let Some(tag) = tag.as_object_mut() {
                if tag.contains_key("const") && !tag.contains_key("description") {
                    tag.insert("description".into(), doc.clone());
                }
            }
        }
    }
}

/// Joins hard-wrapped lines: each paragraph becomes one line (list items and table rows keep
/// their own line).
fn unwrap_paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            let mut joined = String::new();
            for line in paragraph.lines().map(str::trim) {
                if !joined.is_empty() {
                    let block = line.starts_with("- ") || line.starts_with('|');
                    joined.push(if block { '\n' } else { ' ' });
                }
                joined.push_str(line);
            }
            joined
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Puts a definition's description where it is used without one of its own, so that each
/// field's hover shows its documentation, not a definition's.
fn describe_refs(schema: &mut Value, described: bool, moved: &Map<String, Value>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if !described && !object.contains_key("description") {
        if let Some(text) = object
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| moved.get(r))
        {
            let reference = object.remove("$ref").unwrap_or_default();
            object.insert("allOf".into(), json!([{ "$ref": reference }]));
            object.insert("description".into(), text.clone());
        }
    }
    let here = described || object.contains_key("description");
    for (key, value) in object.iter_mut() {
        let inherited = here && same_instance(key);
        for sub in subschemas(key, value) {
            describe_refs(sub, inherited, moved);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_number_formats_become_bounds_and_standard_ones_stay() {
        let mut schema = json!({"properties": {
            "a": {"type": "integer", "format": "uint32", "minimum": 1},
            "b": {"type": "number", "format": "double"},
            "c": {"type": "string", "format": "date"},
        }});
        for_editors(&mut schema);
        assert_eq!(
            schema["properties"]["a"],
            json!({"type": "integer", "minimum": 1, "maximum": 4294967295u32})
        );
        assert_eq!(schema["properties"]["b"], json!({"type": "number"}));
        assert_eq!(schema["properties"]["c"]["format"], "date");
    }

    #[test]
    fn definition_docs_move_to_their_uses_and_enum_values_keep_theirs() {
        let mut schema = json!({
            "properties": {
                "plain": {"$ref": "#/definitions/Level"},
                "own": {"description": "Mine.", "allOf": [{"$ref": "#/definitions/Level"}]},
            },
            "definitions": {"Level": {
                "description": "A level.",
                "oneOf": [
                    {"type": "string", "const": "warn", "description": "Look\ntoday."},
                    {"type": "string", "const": "off"},
                ],
            }},
        });
        for_editors(&mut schema);
        assert_eq!(
            schema["properties"]["plain"],
            json!({
                "allOf": [{"$ref": "#/definitions/Level"}],
                "description": "A level.",
                "markdownDescription": "A level.",
            })
        );
        assert_eq!(schema["properties"]["own"]["description"], "Mine.");
        assert_eq!(
            schema["definitions"]["Level"],
            json!({
                "type": "string",
                "enum": ["warn", "off"],
                "markdownEnumDescriptions": ["Look today.", ""],
            })
        );
    }

    #[test]
    fn a_default_listing_mappings_becomes_a_snippet_without_nulls() {
        let mut schema = json!({"properties": {
            "steps": {"type": "array", "default": [{"name": "a", "column": null}]},
            "days": {"type": "array", "default": [1, 2]},
        }});
        for_editors(&mut schema);
        let steps = &schema["properties"]["steps"];
        assert_eq!(steps.get("default"), None);
        assert_eq!(
            steps["defaultSnippets"],
            json!([{"label": "the default", "body": [{"name": "a"}]}])
        );
        assert_eq!(schema["properties"]["days"]["default"], json!([1, 2]));
    }

    #[test]
    fn paragraphs_are_unwrapped_and_list_items_kept() {
        assert_eq!(
            unwrap_paragraphs("One\nsentence.\n\nItems:\n- a\n- b"),
            "One sentence.\n\nItems:\n- a\n- b"
        );
    }
}
