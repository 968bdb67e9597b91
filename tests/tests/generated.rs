//! Generated files stay in sync with the code: the JSON schema and the README rules table.
//! Run `VIGIL_BLESS=1 cargo test -p vigil-tests --test generated` to regenerate them.

use std::fs;

use vigil_tests::repo_root;

fn blessing() -> bool {
    std::env::var_os("VIGIL_BLESS").is_some_and(|v| v == "1")
}

const REGENERATE: &str =
    "run `VIGIL_BLESS=1 cargo test -p vigil-tests --test generated` and commit the result";

#[test]
fn the_checked_in_schema_is_fresh() {
    let path = repo_root().join("schema/vigil.schema.json");
    let generated = vigil_engine::schema::render(&vigil_tests::registry());
    if blessing() {
        fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = fs::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        checked_in == generated,
        "schema/vigil.schema.json is stale: {REGENERATE}"
    );
}

#[test]
fn the_readme_rules_table_is_fresh() {
    let path = repo_root().join("README.md");
    let readme = fs::read_to_string(&path).unwrap().replace("\r\n", "\n");
    let (begin, end) = ("<!-- rules:begin -->\n", "<!-- rules:end -->");
    let start = readme.find(begin).expect("README has a rules:begin marker") + begin.len();
    let stop = readme.find(end).expect("README has a rules:end marker");
    let generated = vigil_engine::docs::rules_table_markdown(&vigil_tests::registry());
    if blessing() {
        fs::write(
            &path,
            format!("{}{generated}{}", &readme[..start], &readme[stop..]),
        )
        .unwrap();
        return;
    }
    assert!(
        readme[start..stop] == generated,
        "the README rules table is stale: {REGENERATE}"
    );
}

#[test]
fn the_schema_is_draft_07_with_an_id_standard_formats_and_every_field_described() {
    let schema = vigil_engine::schema::build(&vigil_tests::registry());
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(schema["$id"]
        .as_str()
        .is_some_and(|id| id.starts_with("https://") && id.ends_with("/schema/vigil.schema.json")));
    let native = &schema["definitions"]["ConfigFile"];
    assert!(native["properties"]["rules"]["properties"]["freshness"].is_object());
    let mut undocumented = Vec::new();
    let mut formats = Vec::new();
    visit("#", &schema, &mut |path, object| {
        for (field, spec) in object["properties"].as_object().into_iter().flatten() {
            if spec.get("description").is_none() {
                undocumented.push(format!("{path}.{field}"));
            }
        }
        if let Some(format) = object.get("format") {
            formats.push(format!("{path}: {format}"));
        }
    });
    assert!(
        undocumented.is_empty(),
        "fields without a description: {undocumented:?}"
    );
    // Only `date` is used; Rust number formats (`uint32`, `double`) became bounds.
    assert!(
        formats.iter().all(|f| f.ends_with("\"date\"")),
        "{formats:?}"
    );
}

#[test]
fn the_schemastore_catalog_entry_points_at_the_schema_and_matches_the_examples() {
    let path = repo_root().join("schema/schemastore-catalog-entry.json");
    let entry: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(entry["url"], vigil_engine::schema::SCHEMA_ID);
    let patterns: Vec<&str> = entry["fileMatch"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    // `*.vigil.yml` and `vigil.yml` as SchemaStore globs match them; the demo writes vigil.yml.
    for name in ["vigil.yml", "puffy.vigil.yml"] {
        let matched = patterns.iter().any(|p| {
            p.strip_prefix('*')
                .map_or(*p == name, |tail| name.ends_with(tail))
        });
        assert!(matched, "{name} is not matched by {patterns:?}");
    }
}

/// Calls `f` on every object of the schema with its path.
fn visit(path: &str, value: &serde_json::Value, f: &mut impl FnMut(&str, &serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            f(path, value);
            for (key, v) in map {
                visit(&format!("{path}.{key}"), v, f);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                visit(&format!("{path}[{i}]"), v, f);
            }
        }
        _ => {}
    }
}
