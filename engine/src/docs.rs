//! Rule documentation: `vigil rules`, `vigil explain` and the README rules table, all rendered
//! from the registrations (docs from `///`, params from the params' JSON schema).

use std::fmt::Write;

use serde_json::{json, Map, Value};

use crate::plugin::Plugin;
use crate::registry::{RegisteredRule, Registry};

/// Output format of `rules` and `explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DocFormat {
    /// For a terminal.
    Text,
    /// Markdown.
    Markdown,
    /// JSON, for tools.
    Json,
}

/// The rules table: id, default severity, origin, summary.
pub fn rules_list(registry: &Registry, format: DocFormat) -> String {
    match format {
        DocFormat::Json => {
            let rules: Vec<Value> = registry
                .iter()
                .map(|r| {
                    let m = &r.info;
                    json!({"id": m.id, "default_severity": m.default_severity.label(),
                           "origin": r.origin.to_string(), "summary": m.summary()})
                })
                .collect();
            format!("{}\n", serde_json::to_string_pretty(&rules).expect("json"))
        }
        DocFormat::Markdown => rules_table_markdown(registry),
        DocFormat::Text => {
            let width = registry.ids().map(str::len).max().unwrap_or(0);
            let mut out = String::new();
            for r in registry.iter() {
                let m = &r.info;
                let _ = writeln!(
                    out,
                    "{:width$}  {:5}  {}  [{}]",
                    m.id,
                    m.default_severity.label(),
                    m.summary(),
                    r.origin
                );
            }
            out
        }
    }
}

/// The Markdown table of rules kept in the README between `<!-- rules:begin -->` and
/// `<!-- rules:end -->`.
pub fn rules_table_markdown(registry: &Registry) -> String {
    let mut out = String::from("| rule | default severity | what it checks |\n|---|---|---|\n");
    for r in registry.iter() {
        let m = &r.info;
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            m.id,
            m.default_severity.label(),
            m.summary()
        );
    }
    out
}

/// One rule's documentation: docs, params table, example.
pub fn explain(rule: &RegisteredRule, format: DocFormat) -> String {
    let meta = &rule.info;
    let mut params = meta.params_schema.clone();
    let definitions = params
        .as_object_mut()
        .and_then(|p| p.remove("definitions"))
        .and_then(|d| match d {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    let docs = dedent(&meta.docs);
    if format == DocFormat::Json {
        let explanation = json!({
            "id": meta.id,
            "summary": meta.summary(),
            "default_severity": meta.default_severity.label(),
            "origin": rule.origin.to_string(),
            "docs": docs,
            "example": meta.example,
            "params_schema": {"root": params, "definitions": definitions},
        });
        return format!(
            "{}\n",
            serde_json::to_string_pretty(&explanation).expect("json")
        );
    }
    let resolve = |schema: &Value| -> Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => definitions
                .get(r.rsplit('/').next().unwrap_or(r))
                .cloned()
                .unwrap_or(Value::Null),
            None => schema.clone(),
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", meta.id);
    let _ = writeln!(
        out,
        "Default severity: {} · origin: {}\n",
        meta.default_severity.label(),
        rule.origin
    );
    let _ = writeln!(out, "{}", docs.trim_end());
    let _ = writeln!(out, "\n## Params (`rules.{}`)\n", meta.id);
    out.push_str(&params_table(&resolve(&params), &definitions));
    for (name, definition) in &definitions {
        if definition.get("properties").is_some() {
            let _ = writeln!(out, "\n### {name}\n");
            out.push_str(&params_table(definition, &definitions));
        }
    }
    let _ = writeln!(out, "\n## Example\n\n```yaml\nrules:\n  {}:", meta.id);
    for line in meta.example.trim_end().lines() {
        let _ = writeln!(out, "    {line}");
    }
    out.push_str("```\n");
    out
}

/// Removes the one leading space `///` leaves on every line.
fn dedent(docs: &str) -> String {
    docs.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn params_table(object: &Value, definitions: &Map<String, Value>) -> String {
    let mut out = String::from("| param | type | default | description |\n|---|---|---|---|\n");
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, schema) in properties {
            let default = match schema.get("default") {
                // A structured default is the table of its type below.
                Some(Value::Object(_)) if names_a_type(schema) => "see below".into(),
                Some(d) => format!("`{d}`"),
                None if required.contains(&name.as_str()) => "required".into(),
                None => "–".into(),
            };
            let description = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', " ")
                .replace('|', "\\|");
            let _ = writeln!(
                out,
                "| `{name}` | {} | {default} | {description} |",
                TypeNames(definitions).of(schema)
            );
        }
    }
    out
}

/// Whether a schema is a named type (a `$ref`), possibly with `null` for "left empty".
fn names_a_type(schema: &Value) -> bool {
    schema.get("$ref").is_some()
        || schema["anyOf"]
            .as_array()
            .is_some_and(|options| options.iter().any(|o| o.get("$ref").is_some()))
}

/// Short human names for schema types; enums by their values. `null` is left out: an empty
/// value means the default, which the table shows.
struct TypeNames<'a>(&'a Map<String, Value>);

impl TypeNames<'_> {
    fn of(&self, schema: &Value) -> String {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            return match self.0.get(name) {
                Some(def) if def.get("properties").is_none() => self.of(def),
                _ => name.to_string(),
            };
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
        if let Some(c) = schema.get("const") {
            return format!("`{c}`");
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                let separator = if key == "oneOf" { " \\| " } else { " or " };
                return options
                    .iter()
                    .filter(|o| o["type"] != "null")
                    .map(|o| self.of(o))
                    .collect::<Vec<_>>()
                    .join(separator);
            }
        }
        // `["object", "null"]` names an object (an empty value means the default).
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match types.as_slice() {
            ["array"] => {
                format!(
                    "list of {}",
                    schema.get("items").map(|i| self.of(i)).unwrap_or_default()
                )
            }
            ["object"] => match schema.get("additionalProperties") {
                Some(v @ Value::Object(_)) => format!("map of {}", self.of(v)),
                _ => "object".into(),
            },
            [] => "any".into(),
            several => several.join(" or "),
        }
    }
}

/// What `vigil plugin check` prints: the library, its protocol and API versions, its rules and
/// their params schemas.
pub fn plugin_report(plugin: &Plugin, format: DocFormat) -> String {
    let rules: Vec<Value> = plugin
        .rules
        .iter()
        .map(|r| {
            json!({"id": r.id, "default_severity": r.default_severity.label(),
                   "summary": r.summary(), "package": r.package,
                   "params_schema": r.params_schema})
        })
        .collect();
    if format == DocFormat::Json {
        let report = json!({
            "path": plugin.path.display().to_string(),
            "protocol": plugin.protocol,
            "api_version": plugin.api_version,
            "rules": rules,
        });
        return format!("{}\n", serde_json::to_string_pretty(&report).expect("json"));
    }
    let mut out = String::new();
    let _ = writeln!(out, "plugin {}", plugin.path.display());
    let _ = writeln!(
        out,
        "protocol {} (this vigil speaks {}), built with vigil-rule-api {}",
        plugin.protocol,
        vigil_rule_api::protocol::PROTOCOL_VERSION,
        plugin.api_version
    );
    for rule in &plugin.rules {
        let _ = writeln!(
            out,
            "\nrule `{}` ({}, package {}): {}",
            rule.id,
            rule.default_severity.label(),
            rule.package,
            rule.summary()
        );
        let _ = writeln!(
            out,
            "params schema:\n{}",
            serde_json::to_string_pretty(&rule.params_schema).expect("json")
        );
    }
    out
}
